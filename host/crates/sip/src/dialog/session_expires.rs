//! RFC 4028 session timer headers: Session-Expires (compact `x`) with
//! `refresher=uac|uas`, Min-SE, and the `timer` option tag in
//! Supported/Require.
//!
//! `uac` and `uas` name the sides of the *session refresh transaction*, not
//! of the call: in a re-INVITE sent by the original callee, `uac` is the
//! callee.

use std::fmt;

use super::error::DialogError;
use crate::message::{ParseError, SipMessage};

/// RFC 4028 §4/§5: no session interval may be shorter than 90 s.
pub const MIN_SE_FLOOR: u32 = 90;
/// RFC 4028 §4: the recommended session interval, 30 minutes.
pub const DEFAULT_SESSION_EXPIRES: u32 = 1800;

/// Which side of the refresh transaction sends the refreshes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refresher {
    /// The side that sent the request.
    Uac,
    /// The side that answered it.
    Uas,
}

impl Refresher {
    fn as_str(self) -> &'static str {
        match self {
            Refresher::Uac => "uac",
            Refresher::Uas => "uas",
        }
    }
}

/// A Session-Expires value: `1800;refresher=uac`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionExpires {
    /// The session interval in seconds.
    pub delta: u32,
    /// Who refreshes, when named.
    pub refresher: Option<Refresher>,
}

impl SessionExpires {
    /// Parses `delta-seconds *(;param)`; other parameters are ignored, a
    /// refresher other than `uac`/`uas` is refused.
    pub fn parse(text: &str) -> Option<SessionExpires> {
        let mut parts = text.split(';');
        let delta = parse_delta(parts.next()?)?;
        let mut refresher = None;
        for param in parts {
            let (name, value) = param.split_once('=').unwrap_or((param, ""));
            if name.trim().eq_ignore_ascii_case("refresher") {
                refresher = Some(match value.trim().to_ascii_lowercase().as_str() {
                    "uac" => Refresher::Uac,
                    "uas" => Refresher::Uas,
                    _ => return None,
                });
            }
        }
        Some(SessionExpires { delta, refresher })
    }

    /// The Session-Expires of a message, `None` when absent.
    pub fn of(msg: &SipMessage) -> Result<Option<SessionExpires>, DialogError> {
        msg.header("Session-Expires")
            .map(|v| SessionExpires::parse(v).ok_or(ParseError::InvalidHeader("Session-Expires")))
            .transpose()
            .map_err(Into::into)
    }
}

impl fmt::Display for SessionExpires {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.delta)?;
        if let Some(refresher) = self.refresher {
            write!(f, ";refresher={}", refresher.as_str())?;
        }
        Ok(())
    }
}

fn parse_delta(text: &str) -> Option<u32> {
    let text = text.trim();
    let digits = !text.is_empty() && text.len() <= 10 && text.bytes().all(|b| b.is_ascii_digit());
    text.parse().ok().filter(|_| digits)
}

/// The Min-SE of a message in seconds, `None` when absent.
pub fn min_se(msg: &SipMessage) -> Result<Option<u32>, DialogError> {
    msg.header("Min-SE")
        .map(|v| parse_delta(v.split(';').next().unwrap_or_default()))
        .map(|v| v.ok_or(DialogError::from(ParseError::InvalidHeader("Min-SE"))))
        .transpose()
}

/// Whether the message lists the `timer` option tag in Supported or Require.
pub fn supports_timer(msg: &SipMessage) -> bool {
    lists_tag(msg, "Supported") || lists_tag(msg, "Require")
}

fn lists_tag(msg: &SipMessage, header: &str) -> bool {
    msg.header_values(header)
        .flat_map(|v| v.split(','))
        .any(|tag| tag.trim().eq_ignore_ascii_case("timer"))
}

/// Adds the `timer` option tag to a header, keeping what is there.
pub(super) fn add_timer_tag(msg: &mut SipMessage, header: &str) -> Result<(), DialogError> {
    if lists_tag(msg, header) {
        return Ok(());
    }
    let existing: Vec<&str> = msg.header_values(header).collect();
    let value = existing
        .iter()
        .chain(&["timer"])
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    Ok(msg.set_header(header, &value)?)
}

/// RFC 4028 §7.1/§7.4: puts `Supported: timer`, Session-Expires and Min-SE
/// on a session refresh request we send.
pub fn add_timer_headers(
    request: &mut SipMessage,
    session_expires: SessionExpires,
    min_se: u32,
) -> Result<(), DialogError> {
    add_timer_tag(request, "Supported")?;
    request.set_header("Session-Expires", &session_expires.to_string())?;
    request.set_header("Min-SE", &min_se.to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn session_expires_parse_print() {
        let uac = Some(Refresher::Uac);
        let uas = Some(Refresher::Uas);
        // (input, parsed, printed)
        type Row<'a> = (&'a str, Option<(u32, Option<Refresher>)>, &'a str);
        let table: &[Row] = &[
            ("1800", Some((1800, None)), "1800"),
            (
                "1800;refresher=uac",
                Some((1800, uac)),
                "1800;refresher=uac",
            ),
            (
                " 90 ; Refresher = UAS ",
                Some((90, uas)),
                "90;refresher=uas",
            ),
            (
                "4000;x-foo=1;refresher=uas",
                Some((4000, uas)),
                "4000;refresher=uas",
            ),
            ("", None, ""),
            ("abc", None, ""),
            ("-90", None, ""),
            ("99999999999", None, ""),
            ("1800;refresher=both", None, ""),
        ];
        for (input, parsed, printed) in table {
            let se = SessionExpires::parse(input);
            assert_eq!(se.map(|s| (s.delta, s.refresher)), *parsed, "{input:?}");
            if let Some(se) = se {
                assert_eq!(se.to_string(), *printed);
                assert_eq!(SessionExpires::parse(printed), Some(se), "round trip");
            }
        }
    }
    #[test]
    fn timer_headers_on_our_requests() {
        let mut invite = message(
            &AGENT_INVITE.replace(
                "Supported: timer\r\nSession-Expires: 1800\r\nMin-SE: 90\r\n",
                "Supported: replaces\r\n",
            ),
            "",
        );
        add_timer_headers(
            &mut invite,
            SessionExpires {
                delta: 1800,
                refresher: None,
            },
            90,
        )
        .expect("adds");
        assert_eq!(invite.header("Supported"), Some("replaces, timer"));
        assert_eq!(invite.header("Session-Expires"), Some("1800"));
        assert_eq!(invite.header("Min-SE"), Some("90"));
    }

    #[test]
    fn option_tags_and_min_se() {
        // (what, extra header lines, supports timer, Min-SE)
        type Row<'a> = (&'a str, &'a str, bool, Result<Option<u32>, DialogError>);
        let table: &[Row] = &[
            ("none", "", false, Ok(None)),
            (
                "Supported list",
                "Supported: 100rel, Timer\r\n",
                true,
                Ok(None),
            ),
            ("compact k", "k: timer\r\n", true, Ok(None)),
            (
                "Require",
                "Require: timer\r\nMin-SE: 120\r\n",
                true,
                Ok(Some(120)),
            ),
            (
                "a lookalike",
                "Supported: timers\r\nMin-SE: 90;lr\r\n",
                false,
                Ok(Some(90)),
            ),
            (
                "bad Min-SE",
                "Min-SE: ninety\r\n",
                false,
                Err(ParseError::InvalidHeader("Min-SE").into()),
            ),
        ];
        for (what, lines, supported, min) in table {
            let msg = message(
                &format!(
                    "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:x@h>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n{lines}"
                ),
                "",
            );
            assert_eq!(supports_timer(&msg), *supported, "{what}");
            assert_eq!(&min_se(&msg), min, "{what}");
        }
    }
}
