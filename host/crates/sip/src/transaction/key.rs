//! Transaction keys: which transaction a message belongs to (RFC 3261
//! §17.1.3 for responses, §17.2.3 for requests).
//!
//! Keys are built from plain values (branch, sent-by, method) so that any
//! message representation can produce them: a message adapter reads the top
//! Via and the method (the request line's, or the CSeq's for a response) and
//! calls [`TransactionKey::client`] or [`TransactionKey::server`].
//!
//! Only RFC 3261 branches (starting with the `z9hG4bK` cookie) are keyed.
//! RFC 2543 matching (Request-URI, tags, Call-ID, CSeq and the whole Via) is
//! not implemented: such requests get [`KeyError::Rfc2543Branch`], and the
//! owner should reject them (400) or handle them statelessly.

use std::fmt;

use crate::rfc::BRANCH_MAGIC_COOKIE;

/// Which side of the transaction this element is on. Kept in the key so a
/// request looping back with our own branch never matches our client
/// transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// We sent the request; responses are matched by branch and CSeq method.
    Client,
    /// We received the request; requests are matched by branch, sent-by
    /// and method.
    Server,
}

/// The `sent-by` of a top Via: host and optional port, as the peer wrote
/// them. Retransmissions carry the same Via, so textual equality (host
/// case-insensitive) is what §17.2.3 needs; no default port is filled in.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SentBy {
    /// Host name or IP address, lower-cased (`[...]` kept for IPv6).
    host: String,
    /// Port, if the Via named one.
    port: Option<u16>,
}

impl SentBy {
    /// A sent-by from its parts; the host is compared case-insensitively.
    pub fn new(host: &str, port: Option<u16>) -> Self {
        Self {
            host: host.to_ascii_lowercase(),
            port,
        }
    }

    /// The host, lower-cased.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, if the Via named one.
    pub fn port(&self) -> Option<u16> {
        self.port
    }
}

impl fmt::Display for SentBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(port) => write!(f, "{}:{port}", self.host),
            None => f.write_str(&self.host),
        }
    }
}

/// Identifies one transaction.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransactionKey {
    /// Client or server side.
    role: Role,
    /// The top Via's branch, lower-cased: branch is a token, and tokens
    /// compare case-insensitively (§7.3.1).
    branch: String,
    /// The method that created the transaction. Case-sensitive (§7.1).
    method: String,
    /// The top Via's sent-by; server keys only (§17.2.3). A client branch
    /// is ours and unique, so §17.1.3 does not compare sent-by.
    sent_by: Option<SentBy>,
}

/// Why a key could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The branch lacks the `z9hG4bK` cookie (or is missing), so the peer
    /// follows RFC 2543, whose matching rules this layer does not implement.
    #[error("branch {0:?} lacks the z9hG4bK cookie (RFC 2543 peer)")]
    Rfc2543Branch(String),
    /// The method is empty.
    #[error("empty method")]
    EmptyMethod,
}

impl TransactionKey {
    /// The key of a client transaction, and of each response to it: the
    /// branch we put in the top Via and the request's method (for a
    /// response, the CSeq method, which tells an INVITE's responses from its
    /// CANCEL's: both share the branch, §9.1).
    pub fn client(branch: &str, method: &str) -> Result<Self, KeyError> {
        Self::build(Role::Client, branch, method, None)
    }

    /// The key of a received request: top Via branch and sent-by, and the
    /// request-line method. An ACK's key is not its transaction's key: see
    /// [`TransactionKey::matching_transaction`].
    pub fn server(branch: &str, sent_by: SentBy, method: &str) -> Result<Self, KeyError> {
        Self::build(Role::Server, branch, method, Some(sent_by))
    }

    fn build(
        role: Role,
        branch: &str,
        method: &str,
        sent_by: Option<SentBy>,
    ) -> Result<Self, KeyError> {
        if !branch.starts_with(BRANCH_MAGIC_COOKIE) {
            return Err(KeyError::Rfc2543Branch(branch.to_owned()));
        }
        if method.is_empty() {
            return Err(KeyError::EmptyMethod);
        }
        Ok(Self {
            role,
            branch: branch.to_ascii_lowercase(),
            method: method.to_owned(),
            sent_by,
        })
    }

    /// Client or server side.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The branch, lower-cased.
    pub fn branch(&self) -> &str {
        &self.branch
    }

    /// The method this key was built with.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The sent-by of a server key.
    pub fn sent_by(&self) -> Option<&SentBy> {
        self.sent_by.as_ref()
    }

    /// Whether the method is INVITE (the INVITE state machines apply).
    pub fn is_invite(&self) -> bool {
        self.method == "INVITE"
    }

    /// Whether the method is ACK, which never starts a transaction.
    pub fn is_ack(&self) -> bool {
        self.method == "ACK"
    }

    /// The key of the transaction a received request belongs to. An ACK
    /// belongs to the INVITE server transaction with the same branch and
    /// sent-by (§17.2.3): that is how the ACK for a non-2xx final reaches
    /// it. An ACK for a 2xx carries a new branch and so matches nothing; it
    /// goes to the dialog.
    pub fn matching_transaction(&self) -> TransactionKey {
        if self.role == Role::Server && self.is_ack() {
            self.with_method("INVITE")
        } else {
            self.clone()
        }
    }

    /// For a CANCEL key, the key of the INVITE it cancels (same role, branch
    /// and sent-by, §9.2). The CANCEL is still its own non-INVITE
    /// transaction under its own key.
    pub fn cancelled_invite(&self) -> Option<TransactionKey> {
        (self.method == "CANCEL").then(|| self.with_method("INVITE"))
    }

    /// For an INVITE key, the key of a CANCEL for it: on the client side,
    /// the CANCEL we send reuses the INVITE's branch (§9.1).
    pub fn cancel(&self) -> Option<TransactionKey> {
        self.is_invite().then(|| self.with_method("CANCEL"))
    }

    fn with_method(&self, method: &str) -> TransactionKey {
        TransactionKey {
            method: method.to_owned(),
            ..self.clone()
        }
    }
}

impl fmt::Display for TransactionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let role = match self.role {
            Role::Client => "client",
            Role::Server => "server",
        };
        write!(f, "{role} {} {}", self.method, self.branch)?;
        if let Some(sent_by) = &self.sent_by {
            write!(f, " via {sent_by}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BRANCH: &str = "z9hG4bK776asdhds";

    fn server(branch: &str, host: &str, port: Option<u16>, method: &str) -> TransactionKey {
        TransactionKey::server(branch, SentBy::new(host, port), method).expect("valid key")
    }

    #[test]
    fn server_request_matching_follows_17_2_3() {
        let invite = server(BRANCH, "pc33.atlanta.com", Some(5060), "INVITE");
        // (request key, matches the INVITE server transaction?)
        let cases = [
            (
                server(BRANCH, "pc33.atlanta.com", Some(5060), "INVITE"),
                true,
            ),
            (
                server(BRANCH, "PC33.Atlanta.COM", Some(5060), "INVITE"),
                true,
            ),
            (
                server("z9hG4bK776ASDHDS", "pc33.atlanta.com", Some(5060), "INVITE"),
                true,
            ),
            // ACK for a non-2xx final carries the INVITE's branch.
            (server(BRANCH, "pc33.atlanta.com", Some(5060), "ACK"), true),
            // ACK for a 2xx has a branch of its own.
            (
                server("z9hG4bKnew", "pc33.atlanta.com", Some(5060), "ACK"),
                false,
            ),
            // CANCEL is its own transaction.
            (
                server(BRANCH, "pc33.atlanta.com", Some(5060), "CANCEL"),
                false,
            ),
            // Same branch from another host is another transaction.
            (
                server(BRANCH, "pc34.atlanta.com", Some(5060), "INVITE"),
                false,
            ),
            (
                server(BRANCH, "pc33.atlanta.com", Some(5070), "INVITE"),
                false,
            ),
            (
                server(BRANCH, "pc33.atlanta.com", Some(5060), "invite"),
                false,
            ),
        ];
        for (key, want) in cases {
            assert_eq!(key.matching_transaction() == invite, want, "{key}");
        }
    }

    #[test]
    fn cancel_finds_the_invite_but_is_its_own_transaction() {
        let invite = server(BRANCH, "pc33.atlanta.com", None, "INVITE");
        let cancel = server(BRANCH, "pc33.atlanta.com", None, "CANCEL");
        assert_ne!(cancel.matching_transaction(), invite);
        assert_eq!(cancel.cancelled_invite(), Some(invite.clone()));
        assert_eq!(invite.cancelled_invite(), None);
        assert_eq!(invite.cancel(), Some(cancel));
    }

    #[test]
    fn client_responses_match_by_branch_and_cseq_method() {
        let invite = TransactionKey::client(BRANCH, "INVITE").expect("valid");
        let cancel = invite.cancel().expect("INVITE can be cancelled");
        let resp_to_cancel = TransactionKey::client(BRANCH, "CANCEL").expect("valid");
        let resp_to_invite = TransactionKey::client(BRANCH, "INVITE").expect("valid");
        assert_eq!(resp_to_cancel, cancel);
        assert_eq!(resp_to_invite, invite);
        assert_ne!(resp_to_cancel, invite);
        // A client key never matches a server transaction with the same branch.
        assert_ne!(invite, server(BRANCH, "a", None, "INVITE"));
    }

    #[test]
    fn rfc_2543_branches_and_empty_methods_are_refused() {
        let cases = [
            ("", "INVITE", Err(KeyError::Rfc2543Branch(String::new()))),
            (
                "776asdhds",
                "INVITE",
                Err(KeyError::Rfc2543Branch("776asdhds".into())),
            ),
            (BRANCH, "", Err(KeyError::EmptyMethod)),
        ];
        for (branch, method, want) in cases {
            assert_eq!(TransactionKey::client(branch, method).map(|_| ()), want);
        }
    }

    #[test]
    fn display_names_the_transaction() {
        let key = server(BRANCH, "10.0.0.1", Some(5060), "INVITE");
        assert_eq!(
            key.to_string(),
            "server INVITE z9hg4bk776asdhds via 10.0.0.1:5060"
        );
    }
}
