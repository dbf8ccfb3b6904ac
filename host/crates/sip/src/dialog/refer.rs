//! REFER (RFC 3515): transferring Five9's caller with a REFER to a fully
//! qualified `sip:queue@host`, reading the NOTIFYs that report how the
//! transfer goes (`message/sipfrag` bodies, e.g. `SIP/2.0 200 OK`), and
//! sending those NOTIFYs when the peer refers us.

use super::error::DialogError;
use super::state::Dialog;
use crate::message::{Method, NameAddr, Scheme, SipMessage};
use crate::rfc;

/// The Content-Type of REFER progress bodies (RFC 3420).
pub const SIPFRAG: &str = "message/sipfrag;version=2.0";

/// How a REFER is going, from one NOTIFY.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferProgress {
    /// The status of the sipfrag status line (100 Trying, 200 OK, 486...).
    pub status: u16,
    /// Its reason phrase (may be empty).
    pub reason: String,
    /// Whether Subscription-State says no more NOTIFYs will come.
    pub terminated: bool,
}

impl ReferProgress {
    /// Reads a NOTIFY for a REFER: `Event: refer` (with or without `;id=`),
    /// a sipfrag status line body, and Subscription-State. Errors map to
    /// 489 (another event package) and 400 (no status line).
    pub fn from_notify(notify: &SipMessage) -> Result<ReferProgress, DialogError> {
        let event = notify.header("Event").unwrap_or_default();
        let package = event.split(';').next().unwrap_or_default().trim();
        if !package.eq_ignore_ascii_case("refer") {
            return Err(DialogError::BadEvent(package.to_string()));
        }
        let (status, reason) = parse_sipfrag(notify.body()).ok_or(DialogError::InvalidSipfrag)?;
        let state = notify.header("Subscription-State").unwrap_or_default();
        let state = state.split(';').next().unwrap_or_default().trim();
        Ok(ReferProgress {
            status,
            reason,
            terminated: state.eq_ignore_ascii_case("terminated"),
        })
    }

    /// Whether the transfer has a final outcome (status 200 or more).
    pub fn is_final(&self) -> bool {
        self.status >= 200
    }

    /// Whether the transfer target answered (2xx): the caller is gone from
    /// our leg and ours can be hung up.
    pub fn succeeded(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// The status line of a `message/sipfrag` body: `SIP/2.0 200 OK` ->
/// `(200, "OK")`. Line ends before it are skipped and anything after its
/// line is ignored (a fragment may carry headers). `None` when the first
/// line is not a SIP/2.0 status line.
pub fn parse_sipfrag(body: &[u8]) -> Option<(u16, String)> {
    let text = String::from_utf8_lossy(body);
    let line = text.trim_start().lines().next()?.trim_end();
    let rest = line.strip_prefix(rfc::SIP_VERSION)?.strip_prefix(' ')?;
    let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let code: u16 = code.parse().ok().filter(|c| (100..=699).contains(c))?;
    Some((code, reason.trim().to_string()))
}

impl Dialog {
    /// A REFER asking the peer to call `target` (`sip:queue@host` or
    /// `<sip:queue@host>`), with `Referred-By` (our own URI when `None`) and
    /// the policy's X- headers. Five9 silently drops a REFER to a bare
    /// extension, so anything but a `sip:`/`sips:` URI with a user and a
    /// host is refused here, where the policy can still fall back to BYE.
    pub fn refer(
        &mut self,
        target: &str,
        referred_by: Option<&str>,
        extra: &[(&str, &str)],
    ) -> Result<SipMessage, DialogError> {
        let refer_to = NameAddr::parse(target)
            .filter(|t| {
                t.parsed_uri().is_some_and(|u| {
                    matches!(u.scheme, Scheme::Sip | Scheme::Sips) && u.user.is_some()
                })
            })
            .ok_or_else(|| DialogError::InvalidReferTarget(target.to_string()))?;
        let referred_by = match referred_by {
            Some(value) => value.to_string(),
            None => NameAddr::new(self.local.uri.clone()).to_string(),
        };
        for (name, _) in extra {
            let long = rfc::expand_compact(name).unwrap_or(name);
            if ["Refer-To", "Referred-By"]
                .iter()
                .any(|r| r.eq_ignore_ascii_case(long))
            {
                return Err(DialogError::ReservedHeader(name.to_string()));
            }
        }
        let refer_to = refer_to.to_string();
        let mut headers = vec![
            ("Refer-To", refer_to.as_str()),
            ("Referred-By", &referred_by),
        ];
        headers.extend_from_slice(extra);
        self.request(Method::Refer, None, &headers)
    }

    /// A NOTIFY telling the peer how the REFER it sent us (CSeq
    /// `refer_cseq`) is going: `status` as a sipfrag, the subscription
    /// ending with the first final status (RFC 3515 §2.4.7).
    pub fn notify_refer(
        &mut self,
        refer_cseq: u32,
        status: u16,
        reason: Option<&str>,
    ) -> Result<SipMessage, DialogError> {
        // Built as a response first so the status and reason are checked
        // like any status line we send.
        let frag = SipMessage::response(status, reason)?;
        let reason = frag.reason().unwrap_or_default();
        let body = format!("{} {status} {reason}\r\n", rfc::SIP_VERSION);
        let state = if status >= 200 {
            "terminated;reason=noresource"
        } else {
            "active;expires=60"
        };
        let event = format!("refer;id={refer_cseq}");
        let extra = [("Event", event.as_str()), ("Subscription-State", state)];
        self.request(Method::Notify, Some((SIPFRAG, body.as_bytes())), &extra)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::{DialogError, Incoming};
    use super::*;

    #[test]
    fn refer_to_a_five9_queue() {
        let mut dialog = uas_dialog();
        let refer = dialog
            .refer(
                "sip:billing_queue@five9.example.com",
                None,
                &[("X-RouteReason", "escalate")],
            )
            .expect("builds");
        let printed = lines(&refer);
        assert_eq!(printed[0], "REFER sip:5550199@198.51.100.20:5060 SIP/2.0");
        let tail: Vec<&str> = printed[10..14].iter().map(String::as_str).collect();
        assert_eq!(
            tail,
            [
                "Contact: <sip:trunkline@192.0.2.10:5060>",
                "Refer-To: <sip:billing_queue@five9.example.com>",
                "Referred-By: <sip:18005550100@trunkline.example.com>",
                "X-RouteReason: escalate",
            ]
        );
        assert_eq!(refer.header("CSeq"), Some("1 REFER"));
        let second = dialog
            .refer(
                "<sips:q2@five9.example.com>",
                Some("<sip:ai@trunkline.example.com>"),
                &[],
            )
            .expect("builds");
        assert_eq!(second.header("CSeq"), Some("2 REFER"));
        assert_eq!(
            second.header("Referred-By"),
            Some("<sip:ai@trunkline.example.com>")
        );
    }

    #[test]
    fn targets_five9_would_drop_are_refused() {
        let mut dialog = uas_dialog();
        for target in [
            "1234",
            "sip:1234",
            "tel:+15550100",
            "<sip:q@h",
            "http://x/q",
        ] {
            assert_eq!(
                dialog.refer(target, None, &[]).err(),
                Some(DialogError::InvalidReferTarget(target.into())),
                "{target}"
            );
        }
        assert_eq!(
            dialog.refer("sip:q@h", None, &[("r", "<sip:x@y>")]).err(),
            Some(DialogError::ReservedHeader("r".into()))
        );
        assert_eq!(dialog.local_seq(), 0, "nothing was sent");
    }

    #[test]
    fn sipfrag_status_lines() {
        type Row<'a> = (&'a [u8], Option<(u16, &'a str)>);
        let table: &[Row] = &[
            (b"SIP/2.0 200 OK\r\n", Some((200, "OK"))),
            (b"SIP/2.0 100 Trying", Some((100, "Trying"))),
            (b"\r\nSIP/2.0 180 Ringing\r\n", Some((180, "Ringing"))),
            (
                b"SIP/2.0 503 Service Unavailable\r\nRetry-After: 5\r\n",
                Some((503, "Service Unavailable")),
            ),
            (b"SIP/2.0 486\n", Some((486, ""))),
            (b"SIP/2.0 2000 OK", None),
            (b"SIP/2.0 099 Low", None),
            (b"HTTP/1.1 200 OK", None),
            (b"INVITE sip:a@b SIP/2.0", None),
            (b"", None),
            (b"\xff\xfe", None),
        ];
        for (body, expected) in table {
            let parsed = parse_sipfrag(body);
            let parsed = parsed.as_ref().map(|(c, r)| (*c, r.as_str()));
            assert_eq!(parsed, *expected, "{:?}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn notify_from_five9_reports_the_transfer() {
        let mut dialog = uas_dialog();
        dialog
            .refer("sip:q@five9.example.com", None, &[])
            .expect("REFER");
        let notify = |cseq, state: &str, frag: &str| {
            let extra = format!(
                "Event: refer;id=1\r\nSubscription-State: {state}\r\nContent-Type: {SIPFRAG}\r\n"
            );
            from_five9(
                "NOTIFY sip:trunkline@192.0.2.10:5060 SIP/2.0",
                cseq,
                &extra,
                frag,
            )
        };
        // (NOTIFY, status, final, succeeded, terminated)
        let table = [
            (
                notify(2, "active;expires=60", "SIP/2.0 100 Trying\r\n"),
                100,
                false,
                false,
                false,
            ),
            (
                notify(3, "terminated;reason=noresource", "SIP/2.0 200 OK\r\n"),
                200,
                true,
                true,
                true,
            ),
        ];
        for (request, status, is_final, succeeded, terminated) in table {
            let Ok(Incoming::Notify { reply, progress }) = dialog.on_request(&request) else {
                panic!("not a NOTIFY")
            };
            assert_eq!(reply.status_code(), Some(200));
            assert_eq!(
                (
                    progress.status,
                    progress.is_final(),
                    progress.succeeded(),
                    progress.terminated
                ),
                (status, is_final, succeeded, terminated)
            );
        }
        let garbled = notify(4, "active", "hello");
        let Ok(Incoming::Reply(bad)) = dialog.on_request(&garbled) else {
            panic!("no reply")
        };
        assert_eq!(bad.status_code(), Some(400));
    }

    #[test]
    fn notifies_we_send_round_trip() {
        let mut dialog = uac_dialog();
        for (status, terminated) in [(100, false), (180, false), (200, true), (603, true)] {
            let notify = dialog.notify_refer(7, status, None).expect("builds");
            assert_eq!(notify.header("Event"), Some("refer;id=7"));
            assert_eq!(notify.content_type(), Some(SIPFRAG));
            let reparsed = SipMessage::parse(&notify.to_bytes()).expect("valid");
            let progress = ReferProgress::from_notify(&reparsed).expect("reads back");
            assert_eq!(progress.status, status);
            assert_eq!(progress.reason, rfc::default_reason(status));
            assert_eq!(progress.terminated, terminated, "{status}");
        }
        assert!(dialog.notify_refer(7, 200, Some("OK\r\nX: y")).is_err());
    }
}
