//! Cutting bytes into messages: limits, the datagram rules, and the reply
//! owed to a malformed request. Streams are in `stream` (RFC 3261 §7.5, §18.3).
//!
//! rsip takes whatever follows the headers as the body: measured, it ignores
//! Content-Length both ways, so two pipelined TCP messages come out as one
//! message whose body is the second, and a truncated datagram is accepted.
//! Content-Length is therefore applied here, before anything else reads a body.

use super::branch::new_tag;
use super::error::ParseError;
use super::head::{find_head_end, parse_head};
use super::method::Method;
use super::sip_message::SipMessage;

/// Limits the framer enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameLimits {
    /// The largest message (headers and body) accepted; larger ones get 513.
    /// On a stream this also bounds how much is buffered while waiting for
    /// the end of the headers.
    pub max_message_size: usize,
}

impl Default for FrameLimits {
    /// 64 KiB: far above any INVITE with SDP and X- headers, and the largest
    /// UDP datagram anyway.
    fn default() -> Self {
        FrameLimits {
            max_message_size: 64 * 1024,
        }
    }
}

/// Input that did not become a message, with what the transport should do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed SIP message: {error}")]
pub struct Malformed {
    /// What is wrong.
    pub error: ParseError,
    /// A ready response (400/505/513 with a reason naming the problem) to
    /// send back, to the packet's source or on its connection. Only present
    /// for a request other than ACK that has a Via: responses are never
    /// answered, and a request without any Via is garbage to us.
    pub reply: Option<Box<SipMessage>>,
    /// Stream only: message boundaries are lost (no usable Content-Length,
    /// garbage, oversize); send `reply` if any, then close the connection.
    pub close_connection: bool,
}

impl SipMessage {
    /// Parses one complete message with the datagram rules of
    /// [`parse_datagram`] and no size limit, except that a header section
    /// need not end with an empty line: this reads captured files (`policy
    /// run`) and test fixtures, where a missing last line end is only an
    /// editor's habit, not a message cut short.
    pub fn parse(bytes: &[u8]) -> Result<SipMessage, ParseError> {
        let limits = FrameLimits {
            max_message_size: usize::MAX,
        };
        match datagram(bytes, &limits, false) {
            Ok(Some(message)) => Ok(message),
            Ok(None) => Err(ParseError::NotSip),
            Err(malformed) => Err(malformed.error),
        }
    }
}

/// Parses one UDP datagram. `Ok(None)` for a keep-alive (only CR/LF).
///
/// RFC 3261 §18.3: without Content-Length the body is the rest of the
/// datagram; bytes past Content-Length are dropped; a Content-Length larger
/// than what arrived is a 400. A datagram whose headers are not ended by an
/// empty line is a 400 too (RFC 4475 `baddn_archive`): it was cut short, and
/// a body it may have had cannot be told from its headers.
pub fn parse_datagram(
    datagram: &[u8],
    limits: &FrameLimits,
) -> Result<Option<SipMessage>, Malformed> {
    self::datagram(datagram, limits, true)
}

fn datagram(
    datagram: &[u8],
    limits: &FrameLimits,
    need_blank_line: bool,
) -> Result<Option<SipMessage>, Malformed> {
    let data = skip_line_ends(datagram);
    if data.is_empty() {
        return Ok(None);
    }
    let end = find_head_end(data, 0);
    let (head_len, body_start) = end.unwrap_or((data.len(), data.len()));
    let (mut message, mut bad_line) = parse_head_only(&data[..head_len], false)?;
    if end.is_none() && need_blank_line {
        bad_line.get_or_insert(ParseError::HeadNotTerminated);
    }
    let rest = &data[body_start..];
    if datagram.len() > limits.max_message_size {
        return Err(reject(
            &message,
            ParseError::TooLarge {
                limit: limits.max_message_size,
            },
            false,
        ));
    }
    let body = match message.content_length() {
        Err(error) => return Err(reject(&message, error, false)),
        Ok(None) => rest,
        Ok(Some(declared)) if declared > rest.len() => {
            let error = ParseError::BodyTruncated {
                declared,
                received: rest.len(),
            };
            return Err(reject(&message, error, false));
        }
        Ok(Some(declared)) => &rest[..declared],
    };
    message.body = body.to_vec();
    finish(message, bad_line, false).map(Some)
}

pub(super) fn skip_line_ends(bytes: &[u8]) -> &[u8] {
    let skip = bytes
        .iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count();
    &bytes[skip..]
}

/// Parses the header section into a body-less message, returning a bad
/// header line separately: the rest of the headers are still needed to find
/// the body and to answer. A start line that cannot be read leaves nothing to
/// answer.
pub(super) fn parse_head_only(
    head: &[u8],
    stream: bool,
) -> Result<(SipMessage, Option<ParseError>), Malformed> {
    let head = parse_head(head).map_err(|error| Malformed {
        error,
        reply: None,
        close_connection: stream,
    })?;
    let message = SipMessage {
        start: head.start,
        headers: head.headers,
        body: Vec::new(),
    };
    Ok((message, head.bad_line))
}

pub(super) fn finish(
    message: SipMessage,
    bad_line: Option<ParseError>,
    stream: bool,
) -> Result<SipMessage, Malformed> {
    match bad_line.map_or_else(|| message.validate(), Err) {
        Ok(()) => Ok(message),
        Err(error) => Err(reject(&message, error, stream)),
    }
}

/// Wraps an error with the reply it deserves, when one may be sent: to a
/// request other than ACK that has a Via at all (a garbled one is copied into
/// the 400 as it came; the transports send such replies to the packet's
/// source, never where the Via points).
pub(super) fn reject(message: &SipMessage, error: ParseError, close_connection: bool) -> Malformed {
    let answerable =
        matches!(message.method(), Some(m) if *m != Method::Ack) && message.header("Via").is_some();
    let reply = match (error.status(), error.reason_phrase()) {
        (Some(code), Some(reason)) if answerable => {
            // RFC 3261 §8.2.6.2: every final response but 100 carries a To tag.
            message
                .reply(code, Some(&reason), Some(&new_tag()))
                .ok()
                .map(Box::new)
        }
        _ => None,
    };
    Malformed {
        error,
        reply,
        close_connection,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "INVITE sip:100@10.0.0.1 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK1\r\n\
        From: <sip:a@x>;tag=1\r\n\
        To: <sip:100@10.0.0.1>\r\n\
        Call-ID: abc\r\n\
        CSeq: 1 INVITE\r\n";

    fn with_length(length: &str, body: &str) -> String {
        format!("{HEAD}Content-Length: {length}\r\n\r\n{body}")
    }

    fn limits(max: usize) -> FrameLimits {
        FrameLimits {
            max_message_size: max,
        }
    }

    /// The status line and reason of a reply, if one was formed.
    fn reply_line(malformed: &Malformed) -> Option<(u16, String)> {
        let reply = malformed.reply.as_ref()?;
        Some((reply.status_code()?, reply.reason()?.to_string()))
    }

    #[test]
    fn datagram_content_length_table() {
        // (what, datagram, Ok(body) or Err((status, reply reason)))
        type Expected = Result<&'static str, (Option<u16>, Option<&'static str>)>;
        let bad = |status, reason| Err((Some(status), Some(reason)));
        let table: Vec<(&str, String, Expected)> = vec![
            ("exact", with_length("4", "abcd"), Ok("abcd")),
            (
                "missing: rest of datagram",
                format!("{HEAD}\r\nabcdefgh"),
                Ok("abcdefgh"),
            ),
            (
                "shorter: truncated",
                with_length("4", "abcdefgh"),
                Ok("abcd"),
            ),
            ("compact l", format!("{HEAD}l: 2\r\n\r\nabcd"), Ok("ab")),
            (
                "LFLF ends headers",
                format!("{HEAD}Content-Length: 3\n\nxyz"),
                Ok("xyz"),
            ),
            (
                "leading CRLF ignored",
                format!("\r\n\r\n{}", with_length("0", "")),
                Ok(""),
            ),
            (
                "no blank line: cut short",
                HEAD.to_string(),
                bad(400, "Bad Request - Header section not terminated"),
            ),
            (
                "larger: lost body",
                with_length("40", "abcd"),
                bad(
                    400,
                    "Bad Request - Content-Length 40 exceeds the 4 body bytes received",
                ),
            ),
            (
                "garbage",
                with_length("abc", ""),
                bad(400, "Bad Request - Invalid Content-Length"),
            ),
            (
                "negative",
                with_length("-1", ""),
                bad(400, "Bad Request - Invalid Content-Length"),
            ),
            (
                "too many digits",
                with_length("99999999999999999999", ""),
                bad(400, "Bad Request - Invalid Content-Length"),
            ),
            (
                "two that disagree",
                format!("{HEAD}Content-Length: 1\r\nl: 2\r\n\r\nab"),
                bad(400, "Bad Request - Invalid Content-Length"),
            ),
            (
                "too large",
                with_length("300", &"x".repeat(300)),
                bad(513, "Message Too Large"),
            ),
        ];
        for (what, datagram, expected) in table {
            let result = parse_datagram(datagram.as_bytes(), &limits(400));
            match (result, expected) {
                (Ok(Some(msg)), Ok(body)) => assert_eq!(msg.body(), body.as_bytes(), "{what}"),
                (Err(malformed), Err((status, reason))) => {
                    assert_eq!(malformed.error.status(), status, "{what}");
                    let line = reply_line(&malformed);
                    assert_eq!(line.as_ref().map(|(_, r)| r.as_str()), reason, "{what}");
                    assert_eq!(line.map(|(c, _)| c), status, "{what}");
                    assert!(!malformed.close_connection, "{what}");
                }
                (other, expected) => panic!("{what}: {other:?}, wanted {expected:?}"),
            }
        }
    }

    #[test]
    fn keep_alives_are_not_messages() {
        for datagram in ["", "\r\n", "\r\n\r\n", "\n"] {
            assert_eq!(
                parse_datagram(datagram.as_bytes(), &limits(400)),
                Ok(None),
                "{datagram:?}"
            );
        }
    }

    #[test]
    fn who_gets_an_answer() {
        let no_via =
            with_length("0", "").replace("Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK1\r\n", "");
        let no_call_id = with_length("0", "").replace("Call-ID: abc\r\n", "");
        let response = no_call_id.replace("INVITE sip:100@10.0.0.1 SIP/2.0", "SIP/2.0 200 OK");
        let ack = no_call_id.replace("INVITE", "ACK");
        type Row<'a> = (&'a str, &'a [u8], Option<u16>, Option<u16>);
        let table: &[Row] = &[
            (
                "binary garbage",
                b"\x16\x03\x01\x02\x00\x01\x00",
                None,
                None,
            ),
            ("HTTP", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", None, None),
            ("no Via: nowhere to answer", no_via.as_bytes(), None, None),
            (
                // RFC 4475 badinv01: the 400 goes to the packet's source.
                "garbled Via",
                with_length("0", "")
                    .replace("10.0.0.2:5060;branch=z9hG4bK1", "192.0.2.15;;,;,,")
                    .into_bytes()
                    .leak(),
                Some(400),
                Some(400),
            ),
            (
                // RFC 4475 lwsruri: SIP, but not a Request-Line.
                "LWS in the Request-URI",
                with_length("0", "")
                    .replace("sip:100@10.0.0.1 SIP", "sip:100@10.0.0.1; lr SIP")
                    .into_bytes()
                    .leak(),
                Some(400),
                Some(400),
            ),
            ("no Call-ID", no_call_id.as_bytes(), Some(400), Some(400)),
            (
                "a response is never answered",
                response.as_bytes(),
                Some(400),
                None,
            ),
            ("an ACK is never answered", ack.as_bytes(), Some(400), None),
            (
                "bad header line",
                format!("{HEAD}Broken\r\n\r\n").into_bytes().leak(),
                Some(400),
                Some(400),
            ),
            (
                "SIP/3.0",
                with_length("0", "")
                    .replace("SIP/2.0\r\n", "SIP/3.0\r\n")
                    .into_bytes()
                    .leak(),
                Some(505),
                Some(505),
            ),
        ];
        for (what, datagram, status, reply) in table {
            let malformed = parse_datagram(datagram, &limits(4000)).expect_err(what);
            assert_eq!(malformed.error.status(), *status, "{what}");
            assert_eq!(reply_line(&malformed).map(|(c, _)| c), *reply, "{what}");
        }
    }

    #[test]
    fn files_may_end_without_the_blank_line() {
        // A capture saved by an editor: `SipMessage::parse` (files, tests)
        // takes it, the network path does not.
        let msg = SipMessage::parse(HEAD.as_bytes()).expect("a file's message");
        assert_eq!(msg.call_id(), Ok("abc"));
        let malformed = parse_datagram(HEAD.as_bytes(), &limits(4000)).expect_err("cut short");
        assert_eq!(malformed.error, ParseError::HeadNotTerminated);
    }

    #[test]
    fn replies_copy_via_and_tag_the_to() {
        let text = with_length("0", "").replace("Call-ID: abc\r\n", "");
        let malformed = parse_datagram(text.as_bytes(), &limits(4000)).expect_err("no Call-ID");
        let reply = malformed.reply.expect("answerable");
        assert_eq!(reply.reason(), Some("Bad Request - Missing Call-ID"));
        assert_eq!(
            reply.header("Via"),
            Some("SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK1")
        );
        assert_eq!(reply.header("CSeq"), Some("1 INVITE"));
        assert!(
            reply
                .to()
                .ok()
                .and_then(|t| t.tag().map(String::from))
                .is_some()
        );
        assert_eq!(reply.call_id(), Err(ParseError::MissingHeader("Call-ID")));
    }

    /// Found by the `sip_datagram` fuzz target: a bare CR inside a header
    /// line was kept, and the 400 copied it back (`To: a\rFrom: x` reads
    /// as two lines to a peer that splits on CR).
    #[test]
    fn a_bare_cr_in_a_header_line_is_a_400_that_does_not_echo_it() {
        let text = "INVITE sip:100@10.0.0.1 SIP/2.0\r\n\
            Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK1\r\n\
            From: <sip:a@x>;tag=1\r\n\
            To: <sip:100@10.0.0.1>\rX-Injected: 1\r\n\
            Call-ID: abc\r\n\
            CSeq: 1 INVITE\r\n\
            Content-Length: 0\r\n\r\n";
        let malformed = parse_datagram(text.as_bytes(), &limits(4096)).expect_err("refused");
        assert_eq!(malformed.error, ParseError::InvalidHeaderLine);
        let reply = malformed.reply.expect("answered");
        assert_eq!(reply.status_code(), Some(400));
        let printed = reply.to_bytes();
        assert!(
            !printed.windows(2).any(|w| w[0] == b'\r' && w[1] != b'\n'),
            "bare CR echoed"
        );
        assert!(!String::from_utf8_lossy(&printed).contains("X-Injected"));
    }
}
