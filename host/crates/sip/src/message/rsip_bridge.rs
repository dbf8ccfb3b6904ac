//! Handing a message to rsip 0.4 for code that wants its typed headers (for
//! example digest `Authorization`), after the normalisation rsip needs.
//!
//! The tests below measure each rsip gap on raw wire text, then show the same
//! input read correctly through [`SipMessage::to_rsip`]. Two gaps cannot be
//! closed from outside rsip and stay ours to handle: IPv6 hosts (rsip's URI
//! and Via parsers fail on them; use [`SipMessage::vias`] and
//! [`Uri`](super::Uri) instead) and extension methods (rsip refuses the whole
//! message; the dialog layer answers 501 from our [`SipMessage`]).

use super::head::StartLine;
use super::name_addr::NameAddr;
use super::sip_message::SipMessage;

/// The host put in a `tel:` URI rewritten for rsip. `.invalid` (RFC 2606)
/// can never be mistaken for a real domain, and the original `tel:` text
/// stays on our [`SipMessage`].
pub const TEL_BRIDGE_HOST: &str = "tel.invalid";

/// `tel:+1555;phone-context=x` as `sip:+1555;phone-context=x@tel.invalid;user=phone`
/// (the mapping of RFC 3261 §19.1.6); `None` when `uri` is not `tel:`.
pub fn tel_as_sip(uri: &str) -> Option<String> {
    let (scheme, number) = uri.split_once(':')?;
    scheme
        .eq_ignore_ascii_case("tel")
        .then(|| format!("sip:{number}@{TEL_BRIDGE_HOST};user=phone"))
}

impl SipMessage {
    /// This message as an `rsip::SipMessage`: printed with CRLF line ends,
    /// long header names, no folding, one correct Content-Length, To and From
    /// re-printed in canonical form, and `tel:` in the Request-URI, To and
    /// From rewritten with [`tel_as_sip`].
    /// Fails for extension methods, which rsip cannot represent.
    pub fn to_rsip(&self) -> Result<rsip::SipMessage, rsip::Error> {
        let mut copy = self.clone();
        if let StartLine::Request { uri, .. } = &mut copy.start
            && let Some(mapped) = tel_as_sip(uri)
        {
            *uri = mapped;
        }
        for header in copy
            .headers
            .iter_mut()
            .filter(|h| h.is("To") || h.is("From"))
        {
            // Re-printed even without tel:, because an unfolded
            // `<sip:a@b> ;tag=1` (RFC 3261 §7.3.1 keeps one SP) fails rsip's
            // typed From/To; our printer writes `<sip:a@b>;tag=1`.
            if let Some(mut value) = NameAddr::parse(&header.value) {
                if let Some(mapped) = tel_as_sip(&value.uri) {
                    value.uri = mapped;
                }
                header.value = value.to_string();
            }
        }
        rsip::SipMessage::try_from(copy.to_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{FrameLimits, StreamFramer};
    use rsip::prelude::*;

    const BASE: &str = "INVITE sip:100@10.0.0.1 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK1\r\n\
        From: <sip:a@x>;tag=1\r\n\
        To: <sip:100@10.0.0.1>\r\n\
        Call-ID: abc\r\n\
        CSeq: 1 INVITE\r\n\
        Content-Length: 0\r\n\r\n";

    /// Reads what transactions need through rsip: Call-ID, typed Via, typed
    /// To, Request-URI user. `Err` names the first thing rsip got wrong.
    fn rsip_reads(msg: &rsip::SipMessage) -> Result<(), &'static str> {
        let call_id = msg.call_id_header().map_err(|_| "no Call-ID")?;
        if call_id.value() != "abc" {
            return Err("wrong Call-ID");
        }
        msg.via_header()
            .map_err(|_| "no Via")?
            .typed()
            .map_err(|_| "bad Via")?;
        msg.to_header()
            .map_err(|_| "no To")?
            .typed()
            .map_err(|_| "bad To")?;
        msg.from_header()
            .map_err(|_| "no From")?
            .typed()
            .map_err(|_| "bad From")?;
        Ok(())
    }

    #[test]
    fn rsip_gaps_measured_then_closed() {
        let table: Vec<(&str, String)> = vec![
            (
                "compact forms",
                BASE.replace("Via:", "v:")
                    .replace("Call-ID:", "i:")
                    .replace("To:", "t:")
                    .replace("From:", "f:")
                    .replace("Content-Length:", "l:"),
            ),
            (
                "folded line",
                BASE.replace("From: <sip:a@x>;tag=1", "From: <sip:a@x>\r\n ;tag=1"),
            ),
            (
                "space before colon",
                BASE.replace("Via:", "Via :")
                    .replace("Call-ID:", "Call-ID\t:"),
            ),
            ("LF-only", BASE.replace("\r\n", "\n")),
            (
                "tel: Request-URI",
                BASE.replace(
                    "INVITE sip:100@10.0.0.1",
                    "INVITE tel:+15550100;phone-context=+1",
                ),
            ),
            (
                "tel: To and From",
                BASE.replace("<sip:100@10.0.0.1>", "<tel:+15550100>")
                    .replace("<sip:a@x>", "\"A\" <tel:+1-555-0199>"),
            ),
        ];
        for (gap, raw) in table {
            let before = rsip::SipMessage::try_from(raw.as_str())
                .map_err(|_| "rejected")
                .and_then(|m| rsip_reads(&m));
            assert!(
                before.is_err(),
                "{gap}: rsip now handles it; this layer may be simplified"
            );
            let ours = SipMessage::parse(raw.as_bytes()).unwrap_or_else(|e| panic!("{gap}: {e}"));
            assert_eq!(ours.call_id(), Ok("abc"), "{gap}");
            let bridged = ours.to_rsip().unwrap_or_else(|e| panic!("{gap}: {e}"));
            assert_eq!(rsip_reads(&bridged), Ok(()), "{gap}");
        }
    }

    #[test]
    fn tel_keeps_its_number_through_rsip_and_its_text_with_us() {
        let raw = BASE.replace(
            "INVITE sip:100@10.0.0.1",
            "INVITE tel:+1-555-0100;phone-context=+1",
        );
        let ours = SipMessage::parse(raw.as_bytes()).expect("parses");
        assert_eq!(ours.request_uri(), Some("tel:+1-555-0100;phone-context=+1"));
        assert_eq!(ours.request_user().as_deref(), Some("+15550100"));
        let Ok(rsip::SipMessage::Request(request)) = ours.to_rsip() else {
            panic!("rsip refused the bridged tel: request");
        };
        assert_eq!(request.uri.user(), Some("+1-555-0100;phone-context=+1"));
        assert_eq!(request.uri.host().to_string(), TEL_BRIDGE_HOST);
    }

    #[test]
    fn content_length_is_applied_before_rsip_sees_a_body() {
        // rsip takes everything after the headers as the body.
        let pipelined = format!("{BASE}{BASE}");
        let swallowed = rsip::SipMessage::try_from(pipelined.as_str()).expect("rsip parses");
        assert_eq!(
            swallowed.body().len(),
            BASE.len(),
            "rsip read the 2nd message as a body"
        );
        let truncated = BASE.replace(
            "Content-Length: 0\r\n\r\n",
            "Content-Length: 40\r\n\r\nabcd",
        );
        assert!(
            rsip::SipMessage::try_from(truncated.as_str()).is_ok(),
            "rsip accepts a lost body"
        );

        let mut framer = StreamFramer::new(FrameLimits::default());
        framer.push(pipelined.as_bytes());
        for _ in 0..2 {
            let msg = framer.pop().expect("frames").expect("complete");
            assert!(msg.to_rsip().expect("rsip parses").body().is_empty());
        }
        assert_eq!(
            SipMessage::parse(truncated.as_bytes()).map_err(|e| e.status()),
            Err(Some(400))
        );
    }

    #[test]
    fn gaps_left_to_this_crate() {
        let ipv6 = BASE.replace("10.0.0.2:5060", "[2001:db8::1]:5060");
        let raw = rsip::SipMessage::try_from(ipv6.as_str()).expect("rsip parses untyped");
        assert!(raw.via_header().map(|v| v.typed().is_err()).unwrap_or(true));
        let ours = SipMessage::parse(ipv6.as_bytes()).expect("parses");
        assert_eq!(
            ours.top_via().map(|v| v.host.to_string()),
            Ok("[2001:db8::1]".into())
        );

        let unknown = BASE
            .replace("INVITE sip", "FOO sip")
            .replace("1 INVITE", "1 FOO");
        assert!(rsip::SipMessage::try_from(unknown.as_str()).is_err());
        let ours = SipMessage::parse(unknown.as_bytes()).expect("parses");
        assert_eq!(ours.method().map(|m| m.as_str()), Some("FOO"));
        assert!(ours.to_rsip().is_err());
    }

    #[test]
    fn tel_mapping() {
        let table = [
            (
                "tel:+15550100",
                Some("sip:+15550100@tel.invalid;user=phone"),
            ),
            (
                "TEL:7042;phone-context=x.com",
                Some("sip:7042;phone-context=x.com@tel.invalid;user=phone"),
            ),
            ("sip:a@b", None),
            ("telx", None),
        ];
        for (input, expected) in table {
            assert_eq!(tel_as_sip(input).as_deref(), expected, "{input}");
        }
    }
}
