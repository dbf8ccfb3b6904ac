//! RFC 4028 negotiation: what we answer as UAS (§9: 422 when too small,
//! who refreshes, Session-Expires and `Require: timer` on the 2xx) and what
//! a 2xx tells us as UAC (§7).
//!
//! [`Negotiated::local_refreshes`] turns the transaction-relative
//! `refresher=uac|uas` into what the owner needs: whether we refresh.

use std::time::Duration;

use super::answer::ALLOW;
use super::error::DialogError;
use super::session_expires::{
    DEFAULT_SESSION_EXPIRES, MIN_SE_FLOOR, Refresher, SessionExpires, add_timer_headers,
    add_timer_tag, min_se, supports_timer,
};
use crate::message::SipMessage;

/// Our session timer policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimerConfig {
    /// The interval we ask for as UAC, and insert as UAS when the request
    /// names none; `None` leaves sessions without a timer unless the peer
    /// asks for one.
    pub session_expires: Option<u32>,
    /// Our Min-SE: shorter intervals get 422 (raised to 90 if lower).
    pub min_se: u32,
    /// Who refreshes when the choice is ours as UAS and the UAC supports
    /// timers. `Uac` leaves the refreshing to the caller (Five9 does it).
    pub refresher: Refresher,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig {
            session_expires: Some(DEFAULT_SESSION_EXPIRES),
            min_se: MIN_SE_FLOOR,
            refresher: Refresher::Uac,
        }
    }
}

/// The session timer both sides agreed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    /// The session interval in seconds.
    pub interval: u32,
    /// The refresher as written on the wire (relative to the transaction).
    pub refresher: Refresher,
    /// Whether we send the refreshes.
    pub local_refreshes: bool,
    /// Whether our 2xx must carry `Require: timer` (UAS, UAC supports it).
    pub require: bool,
}

impl Negotiated {
    /// The session interval.
    pub fn interval(&self) -> Duration {
        Duration::from_secs(self.interval.into())
    }

    /// Writes Session-Expires (refresher named) and, when the UAC supports
    /// timers, `Require: timer` into our 2xx (RFC 4028 §9).
    pub fn apply(&self, response: &mut SipMessage) -> Result<(), DialogError> {
        let value = SessionExpires {
            delta: self.interval,
            refresher: Some(self.refresher),
        };
        response.set_header("Session-Expires", &value.to_string())?;
        if self.require {
            add_timer_tag(response, "Require")?;
        }
        Ok(())
    }

    /// RFC 4028 §7.4: writes into the session refresh request we send as
    /// the refresher (a re-INVITE) `Session-Expires` with the current
    /// interval and `refresher=uac` (we are the UAC of that request and keep
    /// refreshing), `Supported: timer`, `Min-SE` and `Allow`. Without
    /// Session-Expires the peer takes the session timer as switched off
    /// (§9) and stops watching for our refreshes.
    ///
    /// `min_se` is our minimum (raised to 90); it is capped at the interval
    /// so that the request never asks for less than it forbids (a proxy may
    /// have set an interval below 90 on the initial INVITE).
    pub fn refresh_request(
        &self,
        request: &mut SipMessage,
        min_se: u32,
    ) -> Result<(), DialogError> {
        let value = SessionExpires {
            delta: self.interval,
            refresher: Some(Refresher::Uac),
        };
        add_timer_headers(request, value, min_se.max(MIN_SE_FLOOR).min(self.interval))?;
        request.set_header("Allow", ALLOW)?;
        Ok(())
    }
}

/// What the UAS does with a session refresh request (initial INVITE,
/// re-INVITE, UPDATE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UasTimer {
    /// No session timer for this session.
    Off,
    /// Accept, put [`Negotiated::apply`] on the 2xx, run the timer.
    Run(Negotiated),
    /// Reject with [`interval_too_small`]: the interval is below our
    /// minimum and the UAC can retry with a larger one.
    TooSmall {
        /// The Min-SE to put in the 422.
        min_se: u32,
    },
}

/// RFC 4028 §9: decides the timer for a request we answer.
pub fn negotiate_uas(request: &SipMessage, config: &TimerConfig) -> Result<UasTimer, DialogError> {
    let asked = SessionExpires::of(request)?;
    let their_min = min_se(request)?.unwrap_or(0);
    let our_min = config.min_se.max(MIN_SE_FLOOR);
    let uac_supports = supports_timer(request);
    // A UAC that does not support timers cannot refresh, whatever a proxy
    // wrote in the refresher parameter.
    let choose = |named: Option<Refresher>| match (uac_supports, named) {
        (false, _) => Refresher::Uas,
        (true, Some(refresher)) => refresher,
        (true, None) => config.refresher,
    };
    let (interval, refresher) = match (asked, config.session_expires) {
        (Some(asked), _) if asked.delta < our_min && uac_supports => {
            return Ok(UasTimer::TooSmall { min_se: our_min });
        }
        // Too small but inserted by a proxy: the UAC could not retry, and
        // the UAS must not raise it (§9); we refresh, so it only costs us.
        (Some(asked), _) => (asked.delta, choose(asked.refresher)),
        (None, Some(ours)) => (ours.max(our_min).max(their_min), choose(None)),
        (None, None) => return Ok(UasTimer::Off),
    };
    Ok(UasTimer::Run(Negotiated {
        interval,
        refresher,
        local_refreshes: refresher == Refresher::Uas,
        require: uac_supports,
    }))
}

/// 422 Session Interval Too Small with our Min-SE (RFC 4028 §6). `to_tag`
/// is needed when answering an initial INVITE.
pub fn interval_too_small(
    request: &SipMessage,
    min_se: u32,
    to_tag: Option<&str>,
) -> Result<SipMessage, DialogError> {
    Ok(request
        .reply(422, Some("Session Interval Too Small"), to_tag)?
        .with_header("Min-SE", &min_se.to_string())?)
}

/// RFC 4028 §7.2: the timer a 2xx to our session refresh request set up;
/// `None` when the 2xx has no Session-Expires (no session expiration). A
/// missing refresher leaves the refreshing to us.
pub fn negotiate_uac(response: &SipMessage) -> Result<Option<Negotiated>, DialogError> {
    Ok(SessionExpires::of(response)?.map(|se| {
        let refresher = se.refresher.unwrap_or(Refresher::Uac);
        Negotiated {
            interval: se.delta,
            refresher,
            local_refreshes: refresher == Refresher::Uac,
            require: false,
        }
    }))
}

/// RFC 4028 §7.3: after a 422, the retry carries Min-SE and a
/// Session-Expires of at least this many seconds (the larger of what we
/// asked and the 422's Min-SE). `None` when the 422 has no usable Min-SE.
pub fn retry_after_422(response: &SipMessage, asked: u32) -> Option<u32> {
    let min = min_se(response).ok().flatten()?;
    Some(min.max(asked))
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    fn invite_with(timer_headers: &str) -> SipMessage {
        let head = FIVE9_INVITE
            .replace("Supported: timer, replaces\r\n", "")
            .replace("Session-Expires: 1800;refresher=uac\r\n", "")
            .replace("Min-SE: 90\r\n", timer_headers);
        message(&head, "")
    }

    #[test]
    fn uas_negotiation() {
        let run = |interval, refresher, local_refreshes, require| {
            UasTimer::Run(Negotiated {
                interval,
                refresher,
                local_refreshes,
                require,
            })
        };
        let (uac, uas) = (Refresher::Uac, Refresher::Uas);
        let ours_uas = TimerConfig {
            refresher: uas,
            ..TimerConfig::default()
        };
        let no_insert = TimerConfig {
            session_expires: None,
            ..TimerConfig::default()
        };
        let strict = TimerConfig {
            min_se: 600,
            ..TimerConfig::default()
        };
        let d = TimerConfig::default();
        // (what, timer headers, config, decision)
        let table: Vec<(&str, &str, &TimerConfig, UasTimer)> = vec![
            (
                "Five9 asks, refreshes itself",
                "Supported: timer\r\nSession-Expires: 1800;refresher=uac\r\n",
                &d,
                run(1800, uac, false, true),
            ),
            (
                "compact x and k",
                "k: timer\r\nx: 1200\r\n",
                &d,
                run(1200, uac, false, true),
            ),
            (
                "choice left to us, we refresh",
                "Supported: timer\r\nSession-Expires: 1800\r\n",
                &ours_uas,
                run(1800, uas, true, true),
            ),
            (
                "too small",
                "Supported: timer\r\nSession-Expires: 60\r\n",
                &d,
                UasTimer::TooSmall { min_se: 90 },
            ),
            (
                "below our stricter minimum",
                "Supported: timer\r\nSession-Expires: 300\r\n",
                &strict,
                UasTimer::TooSmall { min_se: 600 },
            ),
            (
                "too small, from a proxy",
                "Session-Expires: 60;refresher=uac\r\n",
                &d,
                run(60, uas, true, false),
            ),
            (
                "no timer asked, UAC supports",
                "Supported: timer\r\n",
                &d,
                run(1800, uac, false, true),
            ),
            (
                "no timer asked, no support",
                "",
                &d,
                run(1800, uas, true, false),
            ),
            (
                "their Min-SE above ours",
                "Supported: timer\r\nMin-SE: 3600\r\n",
                &d,
                run(3600, uac, false, true),
            ),
            (
                "nothing asked, none wanted",
                "Supported: timer\r\n",
                &no_insert,
                UasTimer::Off,
            ),
            (
                "Require: timer",
                "Require: timer\r\nSession-Expires: 900;refresher=uas\r\n",
                &no_insert,
                run(900, uas, true, true),
            ),
        ];
        for (what, headers, config, expected) in table {
            let decision = negotiate_uas(&invite_with(headers), config);
            assert_eq!(decision, Ok(expected), "{what}");
        }
        let bad = negotiate_uas(&invite_with("Session-Expires: soon\r\n"), &d);
        assert_eq!(bad.map_err(|e| e.status()), Err(Some(400)));
    }

    #[test]
    fn uas_answers_422_then_2xx_with_require() {
        let small = invite_with("Supported: timer\r\nSession-Expires: 60\r\n");
        let UasTimer::TooSmall { min_se } =
            negotiate_uas(&small, &TimerConfig::default()).expect("reads")
        else {
            panic!("not too small")
        };
        let rejection = interval_too_small(&small, min_se, Some("tl-9")).expect("builds");
        assert_eq!(rejection.status_code(), Some(422));
        assert_eq!(rejection.header("Min-SE"), Some("90"));
        // The UAC retries with what the 422 asked for.
        assert_eq!(retry_after_422(&rejection, 60), Some(90));
        assert_eq!(retry_after_422(&rejection, 1800), Some(1800));

        let invite = five9_invite();
        let UasTimer::Run(negotiated) =
            negotiate_uas(&invite, &TimerConfig::default()).expect("reads")
        else {
            panic!("no timer")
        };
        let mut ok = five9_ok(&invite)
            .with_header("Require", "100rel")
            .expect("builds");
        negotiated.apply(&mut ok).expect("applies");
        assert_eq!(ok.header("Session-Expires"), Some("1800;refresher=uac"));
        assert_eq!(ok.header("Require"), Some("100rel, timer"));
        assert_eq!(negotiated.interval(), Duration::from_secs(1800));
    }

    #[test]
    fn uac_side() {
        // (what, 2xx Session-Expires line, negotiated)
        let table = [
            (
                "agent refreshes",
                "Session-Expires: 1800;refresher=uas\r\n",
                Some((1800, false)),
            ),
            (
                "we refresh",
                "Session-Expires: 1800;refresher=uac\r\n",
                Some((1800, true)),
            ),
            (
                "refresher left out: we refresh",
                "Session-Expires: 900\r\n",
                Some((900, true)),
            ),
            ("no session timer", "", None),
        ];
        for (what, line, expected) in table {
            let ok = message(
                &AGENT_200.replace("Session-Expires: 1800;refresher=uas\r\n", line),
                "",
            );
            let negotiated = negotiate_uac(&ok).expect("reads");
            assert_eq!(
                negotiated.map(|n| (n.interval, n.local_refreshes)),
                expected,
                "{what}"
            );
        }
    }

    #[test]
    fn refresh_request_names_the_interval_refresher_and_methods() {
        // (negotiated interval, our Min-SE, Session-Expires, Min-SE)
        let table = [
            (1800, 90, "1800;refresher=uac", "90"),
            (600, 0, "600;refresher=uac", "90"),
            (120, 300, "120;refresher=uac", "120"),
            (60, 90, "60;refresher=uac", "60"),
        ];
        for (interval, our_min, se, min) in table {
            let negotiated = Negotiated {
                interval,
                refresher: Refresher::Uas,
                local_refreshes: true,
                require: true,
            };
            let mut reinvite = invite_with("Supported: replaces\r\n");
            negotiated
                .refresh_request(&mut reinvite, our_min)
                .expect("headers written");
            let printed = SipMessage::parse(&reinvite.to_bytes()).expect("reparses");
            assert_eq!(printed.header("Session-Expires"), Some(se), "{interval}");
            assert_eq!(printed.header("Min-SE"), Some(min), "{interval}");
            assert!(supports_timer(&printed), "{interval}");
            assert_eq!(printed.header("Supported"), Some("replaces, timer"));
            assert_eq!(printed.header("Allow"), Some(ALLOW));
            let asked = SessionExpires::of(&printed).expect("parses");
            assert_eq!(asked.and_then(|a| a.refresher), Some(Refresher::Uac));
        }
    }
}
