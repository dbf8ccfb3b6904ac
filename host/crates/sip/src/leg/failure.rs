//! Why a leg did not connect, typed, and the one place where a kind of
//! failure becomes a SIP status.
//!
//! The kinds are what a policy's `conclude`, the call record and the
//! control API report (`busy`, `no-answer`, ...); the SIP status the peer
//! sent, if any, travels beside the kind.

use std::fmt;

/// The kind of a leg's failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// The peer said busy: `486 Busy Here`, `600 Busy Everywhere`.
    Busy,
    /// It rang and nobody answered: our ring timeout, or the peer's `408`
    /// or `480`.
    NoAnswer,
    /// Nothing answered at all: no response before Timer B, a connection or
    /// TLS failure, a name that did not resolve.
    Unreachable,
    /// Any other final status from the peer (`status` says which).
    Rejected,
    /// The peer refused our credentials (a second `401`/`407`, or `403`
    /// to a request that carried them), or challenged in a way we cannot
    /// answer, or challenged a leg that has none.
    AuthFailed,
    /// The policy refused the call (`status` is the one it chose).
    Policy,
}

impl FailureKind {
    /// The name policies, records and the API use.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Busy => "busy",
            FailureKind::NoAnswer => "no-answer",
            FailureKind::Unreachable => "unreachable",
            FailureKind::Rejected => "rejected",
            FailureKind::AuthFailed => "auth-failed",
            FailureKind::Policy => "policy",
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A leg's failure: its kind and the SIP status behind it, when a status
/// was involved (a peer's final response, 408 for Timer B, the policy's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LegFailure {
    /// What happened.
    pub kind: FailureKind,
    /// The status received (or 408 for a transaction timeout); `None` for
    /// our own ring timeout and for failures below SIP (transport, DNS).
    pub status: Option<u16>,
}

impl LegFailure {
    /// A failure of `kind` with no SIP status.
    pub fn new(kind: FailureKind) -> LegFailure {
        LegFailure { kind, status: None }
    }

    /// The failure a final status (300–699) to our INVITE means.
    /// `sent_credentials`: the INVITE carried an answer to a challenge, so
    /// a `403` refuses those credentials (a trunk with a wrong password
    /// answers 403, "403 on outbound").
    pub fn from_status(status: u16, sent_credentials: bool) -> LegFailure {
        let kind = match status {
            486 | 600 => FailureKind::Busy,
            408 | 480 => FailureKind::NoAnswer,
            401 | 407 => FailureKind::AuthFailed,
            403 if sent_credentials => FailureKind::AuthFailed,
            _ => FailureKind::Rejected,
        };
        LegFailure {
            kind,
            status: Some(status),
        }
    }

    /// Our ring timeout: the peer rang (or stayed silent) too long.
    pub fn ring_timeout() -> LegFailure {
        LegFailure::new(FailureKind::NoAnswer)
    }

    /// Timer B: no final response to the INVITE (RFC 3261 §17.1.1.2 maps
    /// it to 408).
    pub fn timed_out() -> LegFailure {
        LegFailure {
            kind: FailureKind::Unreachable,
            status: Some(408),
        }
    }

    /// The transport could not deliver the INVITE (§8.1.3.1: as a 503), or
    /// the target's name did not resolve.
    pub fn unreachable() -> LegFailure {
        LegFailure::new(FailureKind::Unreachable)
    }

    /// The policy refused with `status`.
    pub fn policy(status: u16) -> LegFailure {
        LegFailure {
            kind: FailureKind::Policy,
            status: Some(status),
        }
    }

    /// The final status for the caller whose call this leg was to carry
    /// (the agent leg of an inbound call). Five9 branches on a handful of
    /// well-known codes: busy is 486, a ring timeout 480, a timeout 408, and
    /// what is our side's trouble (5xx, credentials, unreachable) 503, so
    /// Five9 may try elsewhere.
    pub fn caller_status(&self) -> u16 {
        match (self.kind, self.status) {
            (FailureKind::Busy, _) => 486,
            (FailureKind::NoAnswer | FailureKind::Unreachable, Some(408)) => 408,
            (FailureKind::NoAnswer, _) => 480,
            (FailureKind::Unreachable | FailureKind::AuthFailed, _) => 503,
            (FailureKind::Rejected, Some(603)) => 486,
            (FailureKind::Rejected, Some(500..=599)) => 503,
            (FailureKind::Rejected, _) => 480,
            (FailureKind::Policy, Some(s @ 300..=699)) => s,
            (FailureKind::Policy, _) => 403,
        }
    }
}

impl fmt::Display for LegFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            Some(s) => write!(f, "{} ({s})", self.kind),
            None => write!(f, "{}", self.kind),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_have_kinds() {
        let kind = |s, creds| LegFailure::from_status(s, creds).kind;
        assert_eq!(kind(486, false), FailureKind::Busy);
        assert_eq!(kind(600, false), FailureKind::Busy);
        assert_eq!(kind(480, false), FailureKind::NoAnswer);
        assert_eq!(kind(408, false), FailureKind::NoAnswer);
        assert_eq!(kind(401, false), FailureKind::AuthFailed);
        assert_eq!(kind(407, true), FailureKind::AuthFailed);
        assert_eq!(kind(403, true), FailureKind::AuthFailed, "403 on outbound");
        assert_eq!(kind(403, false), FailureKind::Rejected);
        assert_eq!(kind(404, false), FailureKind::Rejected);
        assert_eq!(kind(603, false), FailureKind::Rejected);
        assert_eq!(kind(503, false), FailureKind::Rejected);
        assert_eq!(LegFailure::from_status(404, false).status, Some(404));
    }

    /// What Five9 gets when the agent leg of its call fails: the codes
    /// the gateway sent before failures were typed.
    #[test]
    fn caller_statuses_are_the_ones_five9_branches_on() {
        let caller = |s| LegFailure::from_status(s, false).caller_status();
        for (agent, want) in [
            (486, 486),
            (600, 486),
            (603, 486),
            (408, 408),
            (401, 503),
            (407, 503),
            (500, 503),
            (503, 503),
            (404, 480),
            (480, 480),
            (403, 480),
        ] {
            assert_eq!(caller(agent), want, "agent said {agent}");
        }
        assert_eq!(LegFailure::ring_timeout().caller_status(), 480);
        assert_eq!(LegFailure::timed_out().caller_status(), 408);
        assert_eq!(LegFailure::unreachable().caller_status(), 503);
        assert_eq!(LegFailure::policy(404).caller_status(), 404);
        assert_eq!(
            LegFailure::policy(200).caller_status(),
            403,
            "not a failure status"
        );
    }

    #[test]
    fn kinds_print_as_policies_see_them() {
        assert_eq!(
            LegFailure::from_status(486, false).to_string(),
            "busy (486)"
        );
        assert_eq!(LegFailure::ring_timeout().to_string(), "no-answer");
        assert_eq!(FailureKind::AuthFailed.as_str(), "auth-failed");
    }
}
