//! Building requests and responses, editing headers, and printing to bytes.
//!
//! Everything that reaches the wire passes through here, so every name is
//! checked to be a token and every value to be free of CR/LF/NUL: a policy
//! that copies a peer's header into an X- header can never forge a second
//! header line. Content-Length is always computed from the body.

use super::error::BuildError;
use super::head::{Header, StartLine};
use super::method::Method;
use super::name_addr::NameAddr;
use super::params::is_token;
use super::sip_message::SipMessage;
use crate::rfc;
use std::fmt;

/// Headers a response copies from its request (RFC 3261 §8.2.6.2).
const COPIED_TO_RESPONSE: &[&str] = &["Via", "From", "To", "Call-ID", "CSeq"];

impl SipMessage {
    /// A request with a start line only; add headers with
    /// [`SipMessage::with_header`].
    pub fn request(method: Method, uri: &str) -> Result<SipMessage, BuildError> {
        if uri.is_empty()
            || uri
                .bytes()
                .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return Err(BuildError::InvalidRequestUri(uri.to_string()));
        }
        Ok(SipMessage {
            start: StartLine::Request {
                method,
                uri: uri.to_string(),
            },
            headers: Vec::new(),
            body: Vec::new(),
        })
    }

    /// A response with a status line only; `reason` defaults to the RFC phrase.
    pub fn response(code: u16, reason: Option<&str>) -> Result<SipMessage, BuildError> {
        if !(100..=699).contains(&code) {
            return Err(BuildError::InvalidStatus(code));
        }
        let reason = reason.unwrap_or_else(|| rfc::default_reason(code));
        check_text("reason phrase", reason)?;
        Ok(SipMessage {
            start: StartLine::Response {
                code,
                reason: reason.to_string(),
            },
            headers: Vec::new(),
            body: Vec::new(),
        })
    }

    /// A response to this request (RFC 3261 §8.2.6): Via (all of them, in
    /// order), From, To, Call-ID and CSeq copied, plus Timestamp on a 100.
    /// With `to_tag`, a tag is added to To unless the request already had one
    /// (an in-dialog request keeps the dialog's tag). Add further headers and
    /// a body with [`SipMessage::with_header`] and [`SipMessage::with_body`].
    pub fn reply(
        &self,
        code: u16,
        reason: Option<&str>,
        to_tag: Option<&str>,
    ) -> Result<SipMessage, BuildError> {
        let mut response = SipMessage::response(code, reason)?;
        // §12.1.1: a response that establishes a dialog carries the
        // request's Record-Route values, in order, so the caller routes its
        // ACK and later requests through the same proxies.
        let establishes = (101..300).contains(&code) && self.method() == Some(&Method::Invite);
        for header in &self.headers {
            let copied = COPIED_TO_RESPONSE.iter().any(|name| header.is(name))
                || (code == 100 && header.is("Timestamp"))
                || (establishes && header.is("Record-Route"));
            if !copied {
                continue;
            }
            let mut header = header.clone();
            if let (true, Some(tag)) = (header.is("To"), to_tag) {
                check_text("To tag", tag)?;
                // A To that does not parse is copied untouched; it only
                // exists on messages being rejected anyway.
                if let Some(mut to) = NameAddr::parse(&header.value).filter(|to| to.tag().is_none())
                {
                    to.set_param("tag", Some(tag));
                    header.value = to.to_string();
                }
            }
            response.headers.push(header);
        }
        Ok(response)
    }

    /// Appends a header line.
    pub fn push_header(&mut self, name: &str, value: &str) -> Result<(), BuildError> {
        check_name(name)?;
        check_text(name, value)?;
        self.headers.push(Header {
            name: name.to_string(),
            value: value.to_string(),
        });
        Ok(())
    }

    /// Appends a header line, builder style.
    pub fn with_header(mut self, name: &str, value: &str) -> Result<SipMessage, BuildError> {
        self.push_header(name, value)?;
        Ok(self)
    }

    /// Replaces every line of a header by one line holding `value`, at the
    /// position of the first (appended when absent).
    pub fn set_header(&mut self, name: &str, value: &str) -> Result<(), BuildError> {
        check_name(name)?;
        check_text(name, value)?;
        match self.headers.iter().position(|h| h.is(name)) {
            Some(first) => {
                self.headers[first].value = value.to_string();
                let mut index = 0;
                self.headers.retain(|h| {
                    index += 1;
                    index - 1 == first || !h.is(name)
                });
            }
            None => self.headers.push(Header {
                name: name.to_string(),
                value: value.to_string(),
            }),
        }
        Ok(())
    }

    /// Removes every line of a header; returns how many were removed.
    pub fn remove_header(&mut self, name: &str) -> usize {
        let before = self.headers.len();
        self.headers.retain(|h| !h.is(name));
        before - self.headers.len()
    }

    /// Sets the body and its Content-Type, builder style.
    pub fn with_body(
        mut self,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<SipMessage, BuildError> {
        self.set_header("Content-Type", content_type)?;
        self.body = body;
        Ok(self)
    }

    /// Replaces the body, keeping the headers.
    pub fn set_body(&mut self, body: Vec<u8>) {
        self.body = body;
    }

    /// The message as sent: CRLF line ends, one `Content-Length` equal to the
    /// body length (at the place of the first one, or last), then the body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.headers.len() * 32 + self.body.len());
        match &self.start {
            StartLine::Request { method, uri } => {
                out.extend_from_slice(
                    format!("{method} {uri} {}\r\n", rfc::SIP_VERSION).as_bytes(),
                );
            }
            StartLine::Response { code, reason } => {
                out.extend_from_slice(
                    format!("{} {code} {reason}\r\n", rfc::SIP_VERSION).as_bytes(),
                );
            }
        }
        let length_line = format!("Content-Length: {}\r\n", self.body.len());
        let mut length_written = false;
        for header in &self.headers {
            if header.is("Content-Length") {
                if !length_written {
                    out.extend_from_slice(length_line.as_bytes());
                    length_written = true;
                }
                continue;
            }
            out.extend_from_slice(header.name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(header.value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        if !length_written {
            out.extend_from_slice(length_line.as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }
}

impl fmt::Display for SipMessage {
    /// The wire form, with non-UTF-8 body bytes replaced (for logs).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.to_bytes()))
    }
}

fn check_name(name: &str) -> Result<(), BuildError> {
    if is_token(name) {
        Ok(())
    } else {
        Err(BuildError::InvalidHeaderName(name.to_string()))
    }
}

fn check_text(field: &str, value: &str) -> Result<(), BuildError> {
    if value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
        Err(BuildError::UnsafeText(field.to_string()))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &str = "INVITE sip:100@10.0.0.1 SIP/2.0\r\n\
        v: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK1\r\n\
        Via: SIP/2.0/UDP [2001:db8::1];branch=z9hG4bK0\r\n\
        Max-Forwards: 70\r\n\
        From: \"A\" <sip:a@x>;tag=f1\r\n\
        To: <sip:100@10.0.0.1>\r\n\
        Call-ID: c1\r\n\
        CSeq: 5 INVITE\r\n\
        Timestamp: 54\r\n\
        Contact: <sip:a@10.0.0.2>\r\n\
        Content-Length: 0\r\n\r\n";

    fn invite() -> SipMessage {
        SipMessage::parse(INVITE.as_bytes()).expect("valid")
    }

    #[test]
    fn reply_copies_the_transaction_headers() {
        let response = invite()
            .reply(200, None, Some("t9"))
            .and_then(|r| r.with_header("Contact", "<sip:100@[2001:db8::2]:5060>"))
            .and_then(|r| r.with_body("application/sdp", b"v=0\r\n".to_vec()))
            .expect("builds");
        let text = String::from_utf8(response.to_bytes()).expect("utf-8");
        assert_eq!(
            text,
            "SIP/2.0 200 OK\r\n\
             Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK1\r\n\
             Via: SIP/2.0/UDP [2001:db8::1];branch=z9hG4bK0\r\n\
             From: \"A\" <sip:a@x>;tag=f1\r\n\
             To: <sip:100@10.0.0.1>;tag=t9\r\n\
             Call-ID: c1\r\n\
             CSeq: 5 INVITE\r\n\
             Contact: <sip:100@[2001:db8::2]:5060>\r\n\
             Content-Type: application/sdp\r\n\
             Content-Length: 5\r\n\
             \r\n\
             v=0\r\n"
        );
        let reparsed = SipMessage::parse(&response.to_bytes()).expect("reparses");
        assert_eq!(reparsed.to_bytes(), response.to_bytes());
        assert_eq!(
            reparsed
                .to()
                .ok()
                .and_then(|t| t.tag().map(String::from))
                .as_deref(),
            Some("t9")
        );
    }

    #[test]
    fn dialog_establishing_replies_carry_the_record_route() {
        let mut invite = invite();
        invite
            .push_header("Record-Route", "<sip:10.0.0.9;lr;ftag=f1>")
            .and_then(|_| invite.push_header("Record-Route", "<sip:10.0.0.8;lr>"))
            .expect("valid");
        for (code, carried) in [(100, false), (180, true), (200, true), (486, false)] {
            let r = invite.reply(code, None, Some("t")).expect("builds");
            let rr: Vec<&str> = r.header_values("Record-Route").collect();
            if carried {
                assert_eq!(
                    rr,
                    ["<sip:10.0.0.9;lr;ftag=f1>", "<sip:10.0.0.8;lr>"],
                    "{code}"
                );
            } else {
                assert!(rr.is_empty(), "{code}: {rr:?}");
            }
        }
    }

    #[test]
    fn reply_details() {
        let trying = invite().reply(100, None, None).expect("builds");
        assert_eq!(trying.reason(), Some("Trying"));
        assert_eq!(trying.header("Timestamp"), Some("54"), "RFC 3261 §8.2.6.1");
        assert_eq!(
            trying.to().ok().and_then(|t| t.tag().map(String::from)),
            None
        );

        let mut in_dialog = invite();
        in_dialog
            .set_header("To", "<sip:100@10.0.0.1>;tag=dialog")
            .expect("valid");
        let ok = in_dialog
            .reply(200, Some("Fine"), Some("new"))
            .expect("builds");
        assert_eq!(ok.header("To"), Some("<sip:100@10.0.0.1>;tag=dialog"));
        assert_eq!(ok.reason(), Some("Fine"));
        assert_eq!(ok.header("Timestamp"), None);
        assert_eq!(ok.header("Contact"), None);
    }

    #[test]
    fn build_a_request_and_round_trip() {
        let request = SipMessage::request(Method::Extension("FOO".into()), "tel:+15550100")
            .and_then(|r| r.with_header("Via", "SIP/2.0/TCP [::1]:5070;branch=z9hG4bKx"))
            .and_then(|r| r.with_header("From", "<sip:t@h>;tag=1"))
            .and_then(|r| r.with_header("To", "<tel:+15550100>"))
            .and_then(|r| r.with_header("Call-ID", "k"))
            .and_then(|r| r.with_header("CSeq", "1 FOO"))
            .and_then(|r| r.with_header("Content-Length", "999"))
            .and_then(|r| r.with_header("X-CallANI", "5550199"))
            .expect("builds");
        let bytes = request.to_bytes();
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.starts_with("FOO tel:+15550100 SIP/2.0\r\n"), "{text}");
        assert!(
            text.contains("\r\nContent-Length: 0\r\nX-CallANI: 5550199\r\n\r\n"),
            "{text}"
        );
        let reparsed = SipMessage::parse(&bytes).expect("reparses");
        assert_eq!(reparsed.request_user().as_deref(), Some("+15550100"));
        assert_eq!(reparsed.to_bytes(), bytes);
    }

    #[test]
    fn injection_and_bad_input_are_refused() {
        let msg = invite();
        let table: Vec<(Result<SipMessage, BuildError>, BuildError)> = vec![
            (
                msg.clone().with_header("X-A", "x\r\nBYE: y"),
                BuildError::UnsafeText("X-A".into()),
            ),
            (
                msg.clone().with_header("X-A", "x\0"),
                BuildError::UnsafeText("X-A".into()),
            ),
            (
                msg.clone().with_header("X A", "x"),
                BuildError::InvalidHeaderName("X A".into()),
            ),
            (
                msg.clone().with_header("", "x"),
                BuildError::InvalidHeaderName(String::new()),
            ),
            (
                msg.reply(486, Some("Busy\r\nX: y"), None),
                BuildError::UnsafeText("reason phrase".into()),
            ),
            (
                msg.reply(200, None, Some("t\n")),
                BuildError::UnsafeText("To tag".into()),
            ),
            (msg.reply(99, None, None), BuildError::InvalidStatus(99)),
            (
                SipMessage::request(Method::Invite, "sip:a b"),
                BuildError::InvalidRequestUri("sip:a b".into()),
            ),
            (
                SipMessage::request(Method::Invite, ""),
                BuildError::InvalidRequestUri(String::new()),
            ),
        ];
        for (result, expected) in table {
            assert_eq!(result, Err(expected));
        }
    }

    #[test]
    fn set_and_remove_headers() {
        let mut msg = invite();
        msg.push_header("X-Extra", "1").expect("valid");
        msg.push_header("x-extra", "2").expect("valid");
        msg.set_header("X-EXTRA", "3").expect("valid");
        let values: Vec<&str> = msg.header_values("x-extra").collect();
        assert_eq!(values, ["3"]);
        assert_eq!(
            msg.headers()
                .iter()
                .find(|h| h.is("x-extra"))
                .map(|h| h.name.as_str()),
            Some("X-Extra")
        );
        assert_eq!(msg.remove_header("v"), 2, "compact name removes every Via");
        assert_eq!(msg.remove_header("Via"), 0);
    }

    #[test]
    fn every_accepted_form_round_trips() {
        let base = INVITE;
        let table: Vec<(&str, String)> = vec![
            ("compact", base.replace("From:", "f:").replace("To:", "t:").replace("Call-ID:", "i:").replace("Contact:", "m:").replace("Content-Length:", "l:")),
            ("more compact", base.replace("Timestamp: 54", "k: timer\r\ns: hi\r\nc: text/plain\r\ne: gzip\r\no: dialog\r\nu: talk\r\nr: <sip:x@y>\r\nb: <sip:z@y>\r\nx: 1800\r\na: *;audio\r\nj: *;video\r\nd: proxy\r\ny: abc\r\nn: <https://x>")),
            ("folded", base.replace("From: \"A\" <sip:a@x>;tag=f1", "From: \"A\"\r\n   <sip:a@x>\r\n\t;tag=f1")),
            ("space before colon", base.replace("Call-ID:", "Call-ID  :").replace("CSeq:", "CSeq\t:")),
            ("LF-only", base.replace("\r\n", "\n")),
            ("tel", base.replace("INVITE sip:100@10.0.0.1", "INVITE tel:+1-555-0100").replace("<sip:100@10.0.0.1>", "<tel:+15550100;phone-context=+1>")),
            ("IPv6", base.replace("<sip:a@10.0.0.2>", "<sip:a@[2001:db8::2]:5062;transport=tcp>").replace("10.0.0.2:5060", "[2001:db8::2]:5062")),
            ("Via list", base.replace("\r\nVia: ", ", ")),
            ("escaped display name", base.replace("\"A\"", "\"O\\\"Neil, \\\\ Jr\"")),
            ("extension method", base.replace("INVITE sip", "FOO sip").replace("5 INVITE", "5 FOO")),
            ("response", base.replace("INVITE sip:100@10.0.0.1 SIP/2.0", "SIP/2.0 183 Session Progress")),
        ];
        for (what, text) in table {
            let first =
                SipMessage::parse(text.as_bytes()).unwrap_or_else(|e| panic!("{what}: {e}"));
            let printed = first.to_bytes();
            let second =
                SipMessage::parse(&printed).unwrap_or_else(|e| panic!("{what} reprint: {e}"));
            assert_eq!(second, first, "{what}");
            assert_eq!(second.to_bytes(), printed, "{what}");
            let lines: Vec<&[u8]> = printed.split(|&b| b == b'\n').collect();
            let head = &lines[..lines
                .iter()
                .position(|l| *l == b"\r")
                .unwrap_or(lines.len())];
            for line in head {
                assert!(line.ends_with(b"\r"), "{what}: CRLF line ends");
                assert!(
                    !line.starts_with(b" ") && !line.starts_with(b"\t"),
                    "{what}: unfolded"
                );
                assert!(line.get(1) != Some(&b':'), "{what}: compact name printed");
            }
        }
    }
}
