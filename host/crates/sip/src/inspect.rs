//! What a UAS checks before it processes a request (RFC 3261 §8.2.1 to
//! §8.2.3), in the RFC's order: the method, the Request-URI's scheme, the
//! `Require`d extensions, then the body and what the peer will accept back.
//!
//! Trunkline is a B2BUA facing peers it need not trust, so the answers say
//! exactly what it does and nothing it does not: a method it knows but does
//! not implement (REGISTER, MESSAGE, SUBSCRIBE, PUBLISH, PRACK) gets 405 with
//! the `Allow` list, never a registrar's or a relay's answer; an unknown one
//! 501. None of this needs state, so the owner may answer statelessly.
//!
//! ACK and CANCEL are never refused here: an ACK is never answered, and a
//! CANCEL's `Require` must be ignored (§8.2.2.3) and its fate is its
//! INVITE's.

use crate::dialog::{ACCEPT, ALLOW, SUPPORTED};
use crate::message::{BuildError, Method, SipMessage, new_tag};

/// Why a request is refused before it is processed, and the answer owed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A method we recognise but do not implement: 405 with `Allow` (§8.2.1).
    MethodNotAllowed,
    /// A method we do not recognise: 501 (§8.2.1, §21.5.2).
    NotImplemented,
    /// A Request-URI scheme other than `sip:`, `sips:` or `tel:`: 416
    /// (§8.2.2.1).
    UnsupportedScheme,
    /// `Require` lists option-tags we do not support (these, in order): 420
    /// with `Unsupported` (§8.2.2.3).
    BadExtension(Vec<String>),
    /// An INVITE or UPDATE body that is not `application/sdp`, or is
    /// encoded: 415 with `Accept` and `Accept-Encoding` (§8.2.3).
    UnsupportedMediaType,
    /// An INVITE or UPDATE whose `Accept` excludes `application/sdp`, the
    /// only body our answer can carry: 406 with a Warning (§21.4.7; RFC 4475
    /// §3.1.2.17).
    NotAcceptable,
}

impl Refusal {
    /// The status code.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::MethodNotAllowed => 405,
            Refusal::NotImplemented => 501,
            Refusal::UnsupportedScheme => 416,
            Refusal::BadExtension(_) => 420,
            Refusal::UnsupportedMediaType => 415,
            Refusal::NotAcceptable => 406,
        }
    }

    /// The response to `request`, with the headers its status calls for. A
    /// final response outside a dialog carries a To tag (§8.2.6.2): `to_tag`
    /// when given (an INVITE's transaction keeps its own), else a fresh one;
    /// a request that has one keeps it.
    pub fn reply(
        &self,
        request: &SipMessage,
        to_tag: Option<&str>,
    ) -> Result<SipMessage, BuildError> {
        let fresh;
        let tag = match to_tag {
            Some(tag) => tag,
            None => {
                fresh = new_tag();
                &fresh
            }
        };
        let reply = request.reply(self.status(), None, Some(tag))?;
        match self {
            Refusal::MethodNotAllowed => reply.with_header("Allow", ALLOW),
            Refusal::NotImplemented => reply.with_header("Allow", ALLOW),
            Refusal::UnsupportedScheme => Ok(reply),
            Refusal::BadExtension(tags) => reply.with_header("Unsupported", &tags.join(", ")),
            Refusal::UnsupportedMediaType => reply
                .with_header("Accept", ACCEPT)?
                .with_header("Accept-Encoding", "identity"),
            Refusal::NotAcceptable => reply.with_header(
                "Warning",
                "399 trunkline \"Only an application/sdp answer can be sent\"",
            ),
        }
    }
}

/// The checks of §8.2.1 to §8.2.3 on a request, in order; `None` when the
/// request may be processed.
pub fn inspect(request: &SipMessage) -> Option<Refusal> {
    let method = request.method()?;
    match method {
        Method::Ack | Method::Cancel => return None,
        Method::Register
        | Method::Message
        | Method::Subscribe
        | Method::Publish
        | Method::Prack => return Some(Refusal::MethodNotAllowed),
        Method::Extension(_) => return Some(Refusal::NotImplemented),
        _ => {}
    }
    let scheme = request
        .request_uri()
        .and_then(|uri| uri.split_once(':'))
        .map(|(scheme, _)| scheme.to_ascii_lowercase());
    if !matches!(scheme.as_deref(), Some("sip" | "sips" | "tel")) {
        return Some(Refusal::UnsupportedScheme);
    }
    let mut unknown: Vec<String> = Vec::new();
    for tag in list(request, "Require") {
        let known = SUPPORTED
            .split(',')
            .any(|s| s.trim().eq_ignore_ascii_case(tag));
        if !known && !unknown.iter().any(|u| u.eq_ignore_ascii_case(tag)) {
            unknown.push(tag.to_owned());
        }
    }
    if !unknown.is_empty() {
        return Some(Refusal::BadExtension(unknown));
    }
    // Only INVITE and UPDATE bodies are read (as SDP), and only their 2xx
    // carries one back. Other methods' bodies (INFO's DTMF, NOTIFY's
    // sipfrag) are read by whoever handles them, or ignored.
    if !matches!(method, Method::Invite | Method::Update) {
        return None;
    }
    if !request.body().is_empty() {
        let sdp = request
            .content_type()
            .is_some_and(|t| media_type(t).eq_ignore_ascii_case(ACCEPT));
        let encoded =
            list(request, "Content-Encoding").any(|e| !e.eq_ignore_ascii_case("identity"));
        if !sdp || encoded {
            return Some(Refusal::UnsupportedMediaType);
        }
    }
    if request.header("Accept").is_some() && !accepts_sdp(request) {
        return Some(Refusal::NotAcceptable);
    }
    None
}

/// Every item of a comma-list header, across its lines, trimmed; empty
/// items skipped.
fn list<'a>(request: &'a SipMessage, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    request
        .header_values(name)
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// `type/subtype` of a media type, parameters dropped.
fn media_type(value: &str) -> &str {
    value.split(';').next().unwrap_or_default().trim()
}

/// Whether some `Accept` range takes `application/sdp` with a q above 0.
/// An `Accept` with no ranges at all accepts nothing (§20.1).
fn accepts_sdp(request: &SipMessage) -> bool {
    list(request, "Accept").any(|range| {
        let mut parts = range.split(';');
        let kind = parts.next().unwrap_or_default().trim();
        let refused = parts.any(|p| {
            p.split_once('=').is_some_and(|(name, q)| {
                name.trim().eq_ignore_ascii_case("q") && q.trim().parse::<f32>() == Ok(0.0)
            })
        });
        let matches = ["*/*", "application/*", ACCEPT]
            .iter()
            .any(|k| k.eq_ignore_ascii_case(kind));
        matches && !refused
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request from Five9's side: `line`, then `extra` headers, then `body`.
    fn request(line: &str, extra: &str, body: &str) -> SipMessage {
        let method = line.split(' ').next().unwrap_or_default();
        let text = format!(
            "{line} SIP/2.0\r\n\
             Via: SIP/2.0/UDP 192.0.2.20:5060;branch=z9hG4bK-1\r\n\
             From: <sip:5550199@192.0.2.20>;tag=f\r\n\
             To: <sip:100@192.0.2.10>\r\n\
             Call-ID: inspect-1\r\n\
             CSeq: 1 {method}\r\n\
             {extra}Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        SipMessage::parse(text.as_bytes()).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    const SDP: &str = "v=0\r\n";

    #[test]
    fn refusals_in_the_order_of_8_2() {
        type Row<'a> = (&'a str, SipMessage, Option<u16>);
        let sdp = "Content-Type: application/sdp\r\n";
        let table: Vec<Row> = vec![
            (
                "INVITE with SDP",
                request("INVITE sip:100@192.0.2.10", sdp, SDP),
                None,
            ),
            (
                "SDP type with parameters, any case",
                request(
                    "INVITE sip:100@h",
                    "Content-Type: Application/SDP; charset=utf-8\r\n",
                    SDP,
                ),
                None,
            ),
            ("OPTIONS ping", request("OPTIONS sip:h", "", ""), None),
            (
                "tel: Request-URI",
                request("INVITE tel:+15550100", "", ""),
                None,
            ),
            (
                "Require of what we support",
                request("INVITE sip:h", "Require: timer\r\n", ""),
                None,
            ),
            (
                "BYE outside a dialog: the dialog layer's",
                request("BYE sip:h", "", ""),
                None,
            ),
            (
                "INFO with a DTMF body",
                request(
                    "INFO sip:h",
                    "Content-Type: application/dtmf-relay\r\n",
                    "Signal=1\r\n",
                ),
                None,
            ),
            // RFC 4475 escnull, regaut01, cparam01: not a registrar.
            (
                "REGISTER",
                request("REGISTER sip:example.com", "", ""),
                Some(405),
            ),
            // RFC 4475 mpart01: not a message relay.
            ("MESSAGE", request("MESSAGE sip:h", "", ""), Some(405)),
            ("SUBSCRIBE", request("SUBSCRIBE sip:h", "", ""), Some(405)),
            ("PUBLISH", request("PUBLISH sip:h", "", ""), Some(405)),
            (
                "PRACK: no 100rel",
                request("PRACK sip:h", "", ""),
                Some(405),
            ),
            // RFC 4475 intmeth, esc02.
            (
                "unknown method",
                request("RE%47IST%45R sip:h", "", ""),
                Some(501),
            ),
            (
                "method before scheme",
                request("REGISTER isbn:2983792873", "", ""),
                Some(405),
            ),
            // RFC 4475 unkscm, novelsc.
            (
                "unknown scheme",
                request("OPTIONS nobodyKnowsThisScheme:totallyopaquecontent", "", ""),
                Some(416),
            ),
            (
                "soap.beep",
                request("OPTIONS soap.beep://192.0.2.103:3002", "", ""),
                Some(416),
            ),
            // RFC 4475 bext01.
            (
                "Require of the unknown",
                request(
                    "OPTIONS sip:h",
                    "Require: nothingSupportsThis, nothingSupportsThisEither\r\n\
                     Proxy-Require: noProxiesSupportThis\r\n",
                    "",
                ),
                Some(420),
            ),
            (
                "scheme before Require",
                request("OPTIONS urn:x", "Require: foo\r\n", ""),
                Some(416),
            ),
            (
                "100rel required",
                request("INVITE sip:h", "Require: 100rel\r\n", ""),
                Some(420),
            ),
            // RFC 4475 invut.
            (
                "unknown body type",
                request(
                    "INVITE sip:h",
                    "Content-Type: application/unknownformat\r\n",
                    "<body/>",
                ),
                Some(415),
            ),
            (
                "multipart body",
                request(
                    "INVITE sip:h",
                    "Content-Type: multipart/mixed;boundary=x\r\n",
                    "--x--",
                ),
                Some(415),
            ),
            (
                "a body without Content-Type",
                request("UPDATE sip:h", "", SDP),
                Some(415),
            ),
            (
                "compressed SDP",
                request(
                    "INVITE sip:h",
                    &format!("{sdp}Content-Encoding: gzip\r\n"),
                    SDP,
                ),
                Some(415),
            ),
            (
                "identity encoding",
                request("INVITE sip:h", &format!("{sdp}e: identity\r\n"), SDP),
                None,
            ),
            (
                "Require before the body",
                request(
                    "INVITE sip:h",
                    "Require: foo\r\nContent-Type: text/plain\r\n",
                    "x",
                ),
                Some(420),
            ),
            // RFC 4475 sdp01.
            (
                "Accept without SDP",
                request(
                    "INVITE sip:h",
                    &format!("{sdp}Accept: text/nobodyKnowsThis\r\n"),
                    SDP,
                ),
                Some(406),
            ),
            (
                "Accept with SDP refused by q=0",
                request("INVITE sip:h", "Accept: application/sdp;q=0\r\n", ""),
                Some(406),
            ),
            (
                "empty Accept: nothing acceptable",
                request("INVITE sip:h", "Accept:\r\n", ""),
                Some(406),
            ),
            (
                "Accept with SDP among others, over two lines",
                request(
                    "INVITE sip:h",
                    "Accept: text/html\r\nAccept: application/sdp;q=0.5, */*\r\n",
                    "",
                ),
                None,
            ),
            (
                "Accept of everything",
                request("UPDATE sip:h", "Accept: */*\r\n", ""),
                None,
            ),
            (
                "an OPTIONS Accept is not ours to judge",
                request("OPTIONS sip:h", "Accept: text/plain\r\n", ""),
                None,
            ),
            (
                "ACK is never refused",
                request("ACK urn:x", "Require: foo\r\nContent-Type: text/x\r\n", "x"),
                None,
            ),
            (
                "CANCEL ignores Require",
                request("CANCEL sip:h", "Require: foo\r\n", ""),
                None,
            ),
        ];
        for (what, msg, want) in table {
            assert_eq!(inspect(&msg).map(|r| r.status()), want, "{what}");
        }
    }

    #[test]
    fn each_refusal_carries_what_its_status_calls_for() {
        let register = request("REGISTER sip:example.com", "", "");
        let r = Refusal::MethodNotAllowed
            .reply(&register, None)
            .expect("builds");
        assert_eq!(r.status_code(), Some(405));
        assert_eq!(r.header("Allow"), Some(ALLOW));
        assert!(
            r.to()
                .ok()
                .and_then(|t| t.tag().map(String::from))
                .is_some()
        );

        let options = request(
            "OPTIONS sip:h",
            "Require: nothingSupportsThis, timer\r\nRequire: nothingSupportsThisEither, NOTHINGSUPPORTSTHIS\r\n",
            "",
        );
        let refusal = inspect(&options).expect("refused");
        let r = refusal.reply(&options, Some("t1")).expect("builds");
        assert_eq!(
            r.header("Unsupported"),
            Some("nothingSupportsThis, nothingSupportsThisEither")
        );
        assert_eq!(
            r.to().ok().and_then(|t| t.tag().map(String::from)),
            Some("t1".into())
        );

        let invut = request(
            "INVITE sip:h",
            "Content-Type: application/unknownformat\r\n",
            "x",
        );
        let r = inspect(&invut)
            .expect("refused")
            .reply(&invut, None)
            .expect("builds");
        assert_eq!(
            (
                r.status_code(),
                r.header("Accept"),
                r.header("Accept-Encoding")
            ),
            (Some(415), Some("application/sdp"), Some("identity"))
        );

        let sdp01 = request("INVITE sip:h", "Accept: text/nobodyKnowsThis\r\n", "");
        let r = inspect(&sdp01)
            .expect("refused")
            .reply(&sdp01, None)
            .expect("builds");
        assert_eq!(r.status_code(), Some(406));
        assert!(r.header("Warning").is_some_and(|w| w.starts_with("399 ")));

        let unknown = request("FOO sip:h", "", "");
        let r = inspect(&unknown)
            .expect("refused")
            .reply(&unknown, None)
            .expect("builds");
        assert_eq!(r.status_code(), Some(501));

        // In a dialog the request's To tag stays.
        let tagged = request("MESSAGE sip:h", "", "").to_bytes();
        let tagged = String::from_utf8(tagged).expect("utf-8").replace(
            "To: <sip:100@192.0.2.10>",
            "To: <sip:100@192.0.2.10>;tag=dlg",
        );
        let tagged = SipMessage::parse(tagged.as_bytes()).expect("valid");
        let r = Refusal::MethodNotAllowed
            .reply(&tagged, None)
            .expect("builds");
        assert_eq!(
            r.to().ok().and_then(|t| t.tag().map(String::from)),
            Some("dlg".into())
        );
    }
}
