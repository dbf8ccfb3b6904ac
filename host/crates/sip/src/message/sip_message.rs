//! [`SipMessage`]: a request or response with its headers in wire order, and
//! the typed accessors transactions and dialogs need.
//!
//! Accessors parse on demand from the header text, so a header changed with
//! [`SipMessage::set_header`] is never out of step with a cached copy. Every
//! message that came out of the framer has passed [`SipMessage::validate`], so
//! `call_id()`, `cseq()`, `from()`, `to()` and `vias()` do not fail on it.

use super::error::ParseError;
use super::head::{Header, StartLine};
use super::method::Method;
use super::name_addr::NameAddr;
use super::uri::Uri;
use super::via::Via;
use std::fmt;

/// Headers whose grammar allows one value only (RFC 3261 §7.3.1, §25.1), so
/// a second line is an error rather than a list. Content-Length has its own
/// rule (several lines must agree, see [`SipMessage::content_length`]).
const SINGLE_VALUED: [&str; 5] = ["Call-ID", "CSeq", "From", "To", "Max-Forwards"];

/// A SIP request or response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipMessage {
    /// Request line or status line.
    pub(crate) start: StartLine,
    /// Headers in wire order (unfolded, compact names expanded, case kept).
    pub(crate) headers: Vec<Header>,
    /// The body: exactly Content-Length bytes of what arrived.
    pub(crate) body: Vec<u8>,
}

/// The CSeq header (RFC 3261 §20.16).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    /// The sequence number (below 2^31).
    pub seq: u32,
    /// The method; equal to the request method in a request.
    pub method: Method,
}

impl CSeq {
    /// Parses `1 INVITE`; `None` for a number of 2^31 or more, a sign, or a
    /// method that is not a token.
    pub fn parse(text: &str) -> Option<CSeq> {
        let mut parts = text.split_ascii_whitespace();
        let (Some(seq), Some(method), None) = (parts.next(), parts.next(), parts.next()) else {
            return None;
        };
        if seq.is_empty() || seq.len() > 10 || !seq.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let seq = seq.parse::<u32>().ok().filter(|s| *s < 1 << 31)?;
        Some(CSeq {
            seq,
            method: Method::parse(method)?,
        })
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

impl SipMessage {
    /// The request or status line.
    pub fn start_line(&self) -> &StartLine {
        &self.start
    }

    /// Whether this is a request.
    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    /// The request method; `None` for a response.
    pub fn method(&self) -> Option<&Method> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    /// The Request-URI exactly as received; `None` for a response.
    pub fn request_uri(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { uri, .. } => Some(uri),
            StartLine::Response { .. } => None,
        }
    }

    /// The dialed extension or DID from the Request-URI, for `sip:`, `sips:`
    /// and `tel:` alike (see [`Uri::dialed_user`]).
    pub fn request_user(&self) -> Option<String> {
        Uri::parse(self.request_uri()?)?.dialed_user()
    }

    /// The status code; `None` for a request.
    pub fn status_code(&self) -> Option<u16> {
        match &self.start {
            StartLine::Response { code, .. } => Some(*code),
            StartLine::Request { .. } => None,
        }
    }

    /// The reason phrase as received; `None` for a request.
    pub fn reason(&self) -> Option<&str> {
        match &self.start {
            StartLine::Response { reason, .. } => Some(reason),
            StartLine::Request { .. } => None,
        }
    }

    /// All headers in wire order.
    pub fn headers(&self) -> &[Header] {
        &self.headers
    }

    /// The first value of a header, by name in any case, long or compact.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| h.is(name))
            .map(|h| h.value.as_str())
    }

    /// Every line of a header, in order. Comma-separated values within one
    /// line are not split (display names may contain commas).
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |h| h.is(name))
            .map(|h| h.value.as_str())
    }

    /// The body bytes.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The Call-ID.
    pub fn call_id(&self) -> Result<&str, ParseError> {
        let value = self
            .header("Call-ID")
            .ok_or(ParseError::MissingHeader("Call-ID"))?;
        if value.is_empty() || value.bytes().any(|b| b.is_ascii_whitespace()) {
            return Err(ParseError::InvalidHeader("Call-ID"));
        }
        Ok(value)
    }

    /// The CSeq number and method.
    pub fn cseq(&self) -> Result<CSeq, ParseError> {
        let value = self
            .header("CSeq")
            .ok_or(ParseError::MissingHeader("CSeq"))?;
        CSeq::parse(value).ok_or(ParseError::InvalidHeader("CSeq"))
    }

    /// The From header: URI text, display name, tag.
    pub fn from(&self) -> Result<NameAddr, ParseError> {
        self.name_addr("From")
    }

    /// The To header: URI text, display name, tag.
    pub fn to(&self) -> Result<NameAddr, ParseError> {
        self.name_addr("To")
    }

    fn name_addr(&self, name: &'static str) -> Result<NameAddr, ParseError> {
        let value = self.header(name).ok_or(ParseError::MissingHeader(name))?;
        NameAddr::parse(value).ok_or(ParseError::InvalidHeader(name))
    }

    /// Every Via value, top first, across Via lines and comma lists.
    pub fn vias(&self) -> Result<Vec<Via>, ParseError> {
        let mut vias = Vec::new();
        for value in self.header_values("Via") {
            vias.extend(Via::parse_list(value).ok_or(ParseError::InvalidHeader("Via"))?);
        }
        if vias.is_empty() {
            return Err(ParseError::MissingHeader("Via"));
        }
        Ok(vias)
    }

    /// The topmost Via: the one that names this hop and its branch.
    pub fn top_via(&self) -> Result<Via, ParseError> {
        let value = self.header("Via").ok_or(ParseError::MissingHeader("Via"))?;
        let first = super::params::split_outside_quotes(value, b',')[0];
        Via::parse(first).ok_or(ParseError::InvalidHeader("Via"))
    }

    /// Max-Forwards (0..=255), `None` when absent.
    pub fn max_forwards(&self) -> Result<Option<u8>, ParseError> {
        let Some(value) = self.header("Max-Forwards") else {
            return Ok(None);
        };
        let valid = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
        value
            .parse::<u8>()
            .ok()
            .filter(|_| valid)
            .map(Some)
            .ok_or(ParseError::InvalidHeader("Max-Forwards"))
    }

    /// The first Contact value, `None` when there is no Contact.
    pub fn contact(&self) -> Result<Option<NameAddr>, ParseError> {
        let Some(value) = self.header("Contact") else {
            return Ok(None);
        };
        let list = NameAddr::parse_list(value).ok_or(ParseError::InvalidHeader("Contact"))?;
        Ok(list.into_iter().next())
    }

    /// The Content-Type as written (`application/sdp`), if any.
    pub fn content_type(&self) -> Option<&str> {
        self.header("Content-Type")
    }

    /// Content-Length as declared, `None` when absent. Several Content-Length
    /// lines must agree: two different lengths let a peer smuggle a second
    /// message past whatever reads the first one.
    pub fn content_length(&self) -> Result<Option<usize>, ParseError> {
        let mut length = None;
        for value in self.header_values("Content-Length") {
            let valid =
                !value.is_empty() && value.len() <= 10 && value.bytes().all(|b| b.is_ascii_digit());
            let parsed = value
                .parse::<usize>()
                .ok()
                .filter(|_| valid)
                .ok_or(ParseError::InvalidHeader("Content-Length"))?;
            if length.is_some_and(|l| l != parsed) {
                return Err(ParseError::InvalidHeader("Content-Length"));
            }
            length = Some(parsed);
        }
        Ok(length)
    }

    /// Checks what RFC 3261 §8.1.1 makes mandatory and what transactions rely
    /// on. Via is checked first: without it no answer can be sent, so the
    /// error then has no status and the message is dropped silently.
    ///
    /// Requests are also held to what a B2BUA facing untrusted peers should
    /// not guess at (RFC 4475 §3.1.2, §3.3): one line each for the headers
    /// that take one value, a Contact that parses, and no `?headers` in the
    /// Request-URI. A response's Contact is left to whoever reads it: a
    /// response is never answered, only dropped.
    pub fn validate(&self) -> Result<(), ParseError> {
        self.vias()?;
        for name in SINGLE_VALUED {
            if self.header_values(name).nth(1).is_some() {
                return Err(ParseError::DuplicateHeader(name));
            }
        }
        self.call_id()?;
        let cseq = self.cseq()?;
        self.from()?;
        self.to()?;
        self.max_forwards()?;
        self.content_length()?;
        if let StartLine::Request { method, uri } = &self.start {
            if cseq.method != *method {
                return Err(ParseError::CSeqMethodMismatch);
            }
            // RFC 3986 §3.1: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), so
            // `<sip:...>` (RFC 4475 ltgtruri) names no scheme at all.
            let scheme = uri
                .split_once(':')
                .map(|(s, _)| s.to_ascii_lowercase())
                .filter(|s| {
                    s.starts_with(|c: char| c.is_ascii_alphabetic())
                        && s.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
                });
            let ours = matches!(scheme.as_deref(), Some("sip" | "sips" | "tel"));
            let valid = match Uri::parse(uri) {
                // §19.1.5: headers are not allowed in a Request-URI, and an
                // element must never turn them into real headers.
                Some(parsed) => parsed.headers.is_none(),
                None => !ours,
            };
            if scheme.is_none() || !valid {
                return Err(ParseError::InvalidRequestUri);
            }
            for value in self.header_values("Contact") {
                NameAddr::parse_list(value).ok_or(ParseError::InvalidHeader("Contact"))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &str = "INVITE sip:+15550100@trunkline.example.com SIP/2.0\r\n\
        Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK1, SIP/2.0/UDP [2001:db8::7];branch=z9hG4bK0\r\n\
        Via: SIP/2.0/TCP edge.example.com;branch=z9hG4bKe\r\n\
        Max-Forwards: 69\r\n\
        f: \"Caller, The\" <sip:5550199@five9.example.com>;tag=abc\r\n\
        t: <tel:+1-555-0100>\r\n\
        i: call-1@10.0.0.2\r\n\
        CSeq: 42 INVITE\r\n\
        m: <sip:five9@[2001:db8::7]:5070;transport=tcp>;expires=60\r\n\
        c: application/sdp\r\n\
        l: 4\r\n\r\nv=0\n";

    fn invite() -> SipMessage {
        SipMessage::parse(INVITE.as_bytes()).expect("valid INVITE")
    }

    #[test]
    fn typed_accessors() {
        let msg = invite();
        assert_eq!(msg.method(), Some(&Method::Invite));
        assert_eq!(
            msg.request_uri(),
            Some("sip:+15550100@trunkline.example.com")
        );
        assert_eq!(msg.request_user().as_deref(), Some("+15550100"));
        assert_eq!(msg.call_id(), Ok("call-1@10.0.0.2"));
        assert_eq!(
            msg.cseq().map(|c| (c.seq, c.method)),
            Ok((42, Method::Invite))
        );
        let from = msg.from().expect("From");
        assert_eq!(from.display_name.as_deref(), Some("Caller, The"));
        assert_eq!(from.tag(), Some("abc"));
        let to = msg.to().expect("To");
        assert_eq!((to.uri.as_str(), to.tag()), ("tel:+1-555-0100", None));
        let vias = msg.vias().expect("Vias");
        let hosts: Vec<String> = vias.iter().map(|v| v.host.to_string()).collect();
        assert_eq!(hosts, ["10.0.0.2", "[2001:db8::7]", "edge.example.com"]);
        assert_eq!(
            msg.top_via().map(|v| v.branch().map(String::from)),
            Ok(Some("z9hG4bK1".into()))
        );
        assert_eq!(msg.max_forwards(), Ok(Some(69)));
        let contact = msg.contact().expect("Contact").expect("present");
        assert_eq!(contact.uri, "sip:five9@[2001:db8::7]:5070;transport=tcp");
        assert_eq!(contact.parsed_uri().and_then(|u| u.port), Some(5070));
        assert_eq!(msg.content_type(), Some("application/sdp"));
        assert_eq!(msg.content_length(), Ok(Some(4)));
        assert_eq!(msg.body(), b"v=0\n");
    }

    #[test]
    fn lookup_by_any_case_or_compact_name() {
        let msg = invite();
        for name in ["Call-ID", "call-id", "CALL-ID", "i", "I"] {
            assert_eq!(msg.header(name), Some("call-1@10.0.0.2"), "{name}");
        }
        assert_eq!(msg.header_values("v").count(), 2);
        assert_eq!(msg.header("X-Missing"), None);
        assert_eq!(msg.status_code(), None);
        assert_eq!(msg.reason(), None);
    }

    #[test]
    fn validation_names_the_problem() {
        let replace = |from: &str, to: &str| INVITE.replace(from, to);
        let table: &[(String, ParseError)] = &[
            (
                replace("i: call-1@10.0.0.2\r\n", ""),
                ParseError::MissingHeader("Call-ID"),
            ),
            (
                replace("i: call-1@10.0.0.2", "i: two words"),
                ParseError::InvalidHeader("Call-ID"),
            ),
            (
                replace("CSeq: 42 INVITE\r\n", ""),
                ParseError::MissingHeader("CSeq"),
            ),
            (
                replace("CSeq: 42 INVITE", "CSeq: 2147483648 INVITE"),
                ParseError::InvalidHeader("CSeq"),
            ),
            (
                replace("CSeq: 42 INVITE", "CSeq: -1 INVITE"),
                ParseError::InvalidHeader("CSeq"),
            ),
            (
                replace("CSeq: 42 INVITE", "CSeq: 42 BYE"),
                ParseError::CSeqMethodMismatch,
            ),
            (
                replace(
                    "f: \"Caller, The\" <sip:5550199@five9.example.com>;tag=abc\r\n",
                    "",
                ),
                ParseError::MissingHeader("From"),
            ),
            (
                replace("t: <tel:+1-555-0100>", "t: <tel:+1"),
                ParseError::InvalidHeader("To"),
            ),
            (
                replace("Max-Forwards: 69", "Max-Forwards: 256"),
                ParseError::InvalidHeader("Max-Forwards"),
            ),
            (
                replace(
                    "INVITE sip:+15550100@trunkline.example.com",
                    "INVITE sip:a@b:x",
                ),
                ParseError::InvalidRequestUri,
            ),
            (
                replace(
                    "INVITE sip:+15550100@trunkline.example.com",
                    "INVITE nocolon",
                ),
                ParseError::InvalidRequestUri,
            ),
            // RFC 4475 ltgtruri: brackets are not part of a Request-URI.
            (
                replace(
                    "INVITE sip:+15550100@trunkline.example.com",
                    "INVITE <sip:+15550100@trunkline.example.com>",
                ),
                ParseError::InvalidRequestUri,
            ),
            (
                replace("m: <sip:five9", "m: <sip:five9 x"),
                ParseError::InvalidHeader("Contact"),
            ),
            // RFC 4475 multi01: which Call-ID, CSeq, From or To is meant?
            (
                replace(
                    "CSeq: 42 INVITE\r\n",
                    "CSeq: 42 INVITE\r\nCSeq: 43 INVITE\r\n",
                ),
                ParseError::DuplicateHeader("CSeq"),
            ),
            (
                replace(
                    "i: call-1@10.0.0.2\r\n",
                    "i: call-1@10.0.0.2\r\nCall-ID: other\r\n",
                ),
                ParseError::DuplicateHeader("Call-ID"),
            ),
            (
                replace(
                    "t: <tel:+1-555-0100>\r\n",
                    "t: <tel:+1-555-0100>\r\nTo: <sip:x@y>\r\n",
                ),
                ParseError::DuplicateHeader("To"),
            ),
            (
                replace(
                    "Max-Forwards: 69\r\n",
                    "Max-Forwards: 69\r\nMax-Forwards: 70\r\n",
                ),
                ParseError::DuplicateHeader("Max-Forwards"),
            ),
            // RFC 4475 escruri: headers never belong in a Request-URI.
            (
                replace(
                    "INVITE sip:+15550100@trunkline.example.com",
                    "INVITE sip:user@example.com?Route=%3Csip:example.com%3E",
                ),
                ParseError::InvalidRequestUri,
            ),
            // RFC 4475 regbadct: a URI with `?` must be in `<>`.
            (
                replace(
                    "m: <sip:five9@[2001:db8::7]:5070;transport=tcp>;expires=60",
                    "m: sip:user@example.com?Route=%3Csip:sip.example.com%3E",
                ),
                ParseError::InvalidHeader("Contact"),
            ),
            // RFC 4475 baddn, badaspec.
            (
                replace("f: \"Caller, The\"", "f: Caller, The"),
                ParseError::InvalidHeader("From"),
            ),
            (
                replace("t: <tel:+1-555-0100>", "t: < tel:+1-555-0100 >"),
                ParseError::InvalidHeader("To"),
            ),
        ];
        for (text, error) in table {
            let msg = head_only(text);
            let result = msg.validate().and_then(|()| msg.contact().map(|_| ()));
            assert_eq!(result, Err(error.clone()), "{text}");
        }
    }

    #[test]
    fn a_response_may_repeat_nothing_but_its_contact_is_not_judged() {
        let response = INVITE
            .replace(
                "INVITE sip:+15550100@trunkline.example.com SIP/2.0",
                "SIP/2.0 200 OK",
            )
            .replace("m: <sip:five9", "m: <sip:five9 x");
        assert_eq!(head_only(&response).validate(), Ok(()));
        let twice = response.replace(
            "CSeq: 42 INVITE\r\n",
            "CSeq: 42 INVITE\r\nCSeq: 42 INVITE\r\n",
        );
        assert_eq!(
            head_only(&twice).validate(),
            Err(ParseError::DuplicateHeader("CSeq"))
        );
    }

    #[test]
    fn missing_or_bad_via_is_reported_first() {
        let text = INVITE
            .replace("Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK1, SIP/2.0/UDP [2001:db8::7];branch=z9hG4bK0\r\n", "")
            .replace("Via: SIP/2.0/TCP edge.example.com;branch=z9hG4bKe\r\n", "")
            .replace("i: call-1@10.0.0.2\r\n", "");
        assert_eq!(
            head_only(&text).validate(),
            Err(ParseError::MissingHeader("Via"))
        );
        let text = INVITE.replace("SIP/2.0/TCP edge.example.com", "SIP/2.0/TCP [edge");
        assert_eq!(
            head_only(&text).validate(),
            Err(ParseError::InvalidHeader("Via"))
        );
    }

    #[test]
    fn other_request_uri_schemes_are_left_to_the_dialog_layer() {
        let text = INVITE.replace(
            "sip:+15550100@trunkline.example.com SIP",
            "urn:service:sos SIP",
        );
        let msg = head_only(&text);
        assert_eq!(msg.validate(), Ok(()));
        assert_eq!(msg.request_user(), None);
    }

    #[test]
    fn cseq_table() {
        let table = [
            ("1 INVITE", Some((1, "INVITE"))),
            ("  2147483647   BYE ", Some((2147483647, "BYE"))),
            ("7 FOO", Some((7, "FOO"))),
            ("2147483648 BYE", None),
            ("+1 BYE", None),
            ("1", None),
            ("1 BYE extra", None),
            ("x BYE", None),
        ];
        for (input, expected) in table {
            let parsed = CSeq::parse(input);
            assert_eq!(
                parsed.as_ref().map(|c| (c.seq, c.method.as_str())),
                expected,
                "{input:?}"
            );
            if let Some(cseq) = parsed {
                assert_eq!(CSeq::parse(&cseq.to_string()), Some(cseq));
            }
        }
    }

    /// Header section only, without validation, for checking `validate`.
    fn head_only(text: &str) -> SipMessage {
        let end = text.find("\r\n\r\n").unwrap_or(text.len());
        let head = super::super::head::parse_head(&text.as_bytes()[..end]).expect("head parses");
        SipMessage {
            start: head.start,
            headers: head.headers,
            body: Vec::new(),
        }
    }
}
