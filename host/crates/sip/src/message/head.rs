//! The header section: where it ends, the start line, and normalisation of
//! header lines into a list rsip (and we) can rely on.
//!
//! rsip 0.4 parses the raw text itself and, measured: fails the whole message
//! on LF-only line ends, on folded (continuation) lines and on whitespace
//! before the colon, and stores compact names (`i:`, `v:`, `l:`) as unknown
//! headers, so a peer using them seems to have no Call-ID or Via. Everything
//! here runs before any of that text is looked at:
//! - lines end at LF, a CR before it is dropped (LF-only peers work);
//! - a line starting with SP/HTAB continues the previous header and is joined
//!   with one SP (RFC 3261 §7.3.1);
//! - whitespace between a header name and its colon is dropped;
//! - compact names are replaced by their long names (`rfc::COMPACT_FORMS`), so
//!   `i: abc` prints back as `Call-ID: abc`; other names keep their case.

use super::error::ParseError;
use super::method::Method;
use super::params::{is_token, is_token_byte};
use crate::rfc;

/// A request line or a status line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    /// `METHOD Request-URI SIP/2.0`.
    Request {
        /// The method, extension methods included.
        method: Method,
        /// The Request-URI exactly as received (`sip:`, `sips:`, `tel:` or
        /// another scheme the dialog layer may refuse with 416).
        uri: String,
    },
    /// `SIP/2.0 code reason`.
    Response {
        /// The status code, 100..=699.
        code: u16,
        /// The reason phrase as received (may be empty).
        reason: String,
    },
}

/// One header line after normalisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The name as received (case kept), or the long name of a compact form.
    pub name: String,
    /// The value with folding joined and surrounding whitespace trimmed.
    pub value: String,
}

impl Header {
    /// Whether this header is `name`, compared case-insensitively and with
    /// compact forms expanded (`"i"`, `"call-id"` and `"Call-ID"` all match).
    pub fn is(&self, name: &str) -> bool {
        let name = rfc::expand_compact(name).unwrap_or(name);
        self.name.eq_ignore_ascii_case(name)
    }
}

/// The parsed header section of one message.
#[derive(Debug)]
pub(crate) struct Head {
    pub(crate) start: StartLine,
    pub(crate) headers: Vec<Header>,
    /// The first malformed header line. The lines around it are still
    /// collected so a 400 can be sent back with the right Via and Call-ID.
    pub(crate) bad_line: Option<ParseError>,
}

/// Finds the blank line that ends the header section, scanning from `from`.
/// Returns `(head_len, body_start)`. CRLFCRLF and LFLF (and the mixes
/// LF-CRLF, CRLF-LF) all end it.
pub(crate) fn find_head_end(buf: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut i = from;
    while i < buf.len() {
        if buf[i] == b'\n' {
            match (buf.get(i + 1), buf.get(i + 2)) {
                (Some(b'\n'), _) => return Some((i, i + 2)),
                (Some(b'\r'), Some(b'\n')) => return Some((i, i + 3)),
                _ => {}
            }
        }
        i += 1;
    }
    None
}

/// Parses the header section (without its terminating blank line).
pub(crate) fn parse_head(head: &[u8]) -> Result<Head, ParseError> {
    let mut lines = head.split(|&b| b == b'\n').map(strip_cr);
    let (start, deferred) = parse_start_line(lines.next().unwrap_or_default())?;
    let mut headers: Vec<Header> = Vec::new();
    // A wrong version or a sloppy request line is reported after the headers
    // are read, so that the 505 or 400 can be answered with the request's
    // Via and Call-ID.
    let mut bad_line = deferred;
    for line in lines {
        if line.is_empty() {
            // Only possible at the very end (a datagram without the blank
            // line, or a test's trailing CRLF): nothing to read.
            continue;
        }
        if line.contains(&b'\r') {
            // A bare CR ends the line for some parsers and not for others:
            // kept, it went back out in our replies (`To: a\rFrom: x`, found
            // by fuzzing) as a line of our own to whoever splits on it.
            bad_line.get_or_insert(ParseError::InvalidHeaderLine);
            continue;
        }
        if line.first().is_some_and(|&b| b == b' ' || b == b'\t') {
            let more = String::from_utf8_lossy(line);
            let more = more.trim();
            match headers.last_mut() {
                Some(last) if !more.is_empty() => {
                    if !last.value.is_empty() {
                        last.value.push(' ');
                    }
                    last.value.push_str(more);
                }
                Some(_) => {}
                None => {
                    bad_line.get_or_insert(ParseError::InvalidHeaderLine);
                }
            }
            continue;
        }
        match parse_header_line(line) {
            Some(header) => headers.push(header),
            None => {
                bad_line.get_or_insert(ParseError::InvalidHeaderLine);
            }
        }
    }
    Ok(Head {
        start,
        headers,
        bad_line,
    })
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn parse_header_line(line: &[u8]) -> Option<Header> {
    let colon = line.iter().position(|&b| b == b':')?;
    let name = line[..colon].trim_ascii_end();
    // Header names are ASCII tokens, so this conversion cannot lose anything.
    let name = std::str::from_utf8(name).ok().filter(|n| is_token(n))?;
    let name = rfc::expand_compact(name).unwrap_or(name).to_string();
    // Values may carry UTF-8 display names; a peer sending Latin-1 gets U+FFFD
    // in place of those bytes rather than a failed call.
    let value = String::from_utf8_lossy(&line[colon + 1..])
        .trim()
        .to_string();
    Some(Header { name, value })
}

/// Parses a request or status line. The error beside the line is one to
/// answer once the headers are read: [`ParseError::UnsupportedVersion`] for a
/// version other than SIP/2.0, [`ParseError::InvalidRequestLine`] for a
/// request line that is SIP but not exactly `Method SP Request-URI SP
/// SIP-Version`. An `Err` is input nobody should answer.
pub(crate) fn parse_start_line(line: &[u8]) -> Result<(StartLine, Option<ParseError>), ParseError> {
    if !line.first().is_some_and(|&b| is_token_byte(b)) {
        return Err(ParseError::NotSip);
    }
    let line = std::str::from_utf8(line).map_err(|_| ParseError::NotSip)?;
    let version_error = |version: &str| {
        (!version.eq_ignore_ascii_case("2.0")).then_some(ParseError::UnsupportedVersion)
    };
    if let Some(rest) = strip_prefix_ignore_case(line, "SIP/") {
        let (version, rest) = rest.split_once(' ').ok_or(ParseError::InvalidStartLine)?;
        let rest = rest.trim_start();
        // Some UAs send `SIP/2.0 200` with no reason phrase at all.
        let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
        let valid = code.len() == 3 && code.bytes().all(|b| b.is_ascii_digit());
        let code = code
            .parse::<u16>()
            .ok()
            .filter(|c| valid && (100..=699).contains(c))
            .ok_or(ParseError::InvalidStartLine)?;
        let start = StartLine::Response {
            code,
            reason: reason.trim().to_string(),
        };
        return Ok((start, version_error(version)));
    }
    // Method, then whatever lies before the last word, then that word: the
    // version. Only once both ends read as SIP is the middle judged.
    let method_end = line
        .find(|c: char| c.is_ascii_whitespace())
        .ok_or(ParseError::InvalidStartLine)?;
    let (method, rest) = line.split_at(method_end);
    let trimmed = rest.trim_end_matches(|c: char| c.is_ascii_whitespace());
    let version_start = trimmed
        .rfind(|c: char| c.is_ascii_whitespace())
        .map_or(trimmed.len(), |i| i + 1);
    let (middle, version) = trimmed.split_at(version_start);
    let Some(version) = strip_prefix_ignore_case(version, "SIP/") else {
        // HTTP or something else on the SIP port.
        return Err(ParseError::NotSip);
    };
    let method = Method::parse(method).ok_or(ParseError::InvalidStartLine)?;
    let uri = middle.trim();
    if uri.is_empty() {
        return Err(ParseError::InvalidStartLine);
    }
    let exact = trimmed.len() == rest.len()
        && middle.len() == uri.len() + 2
        && middle.starts_with(' ')
        && middle.ends_with(' ')
        && !uri.contains(|c: char| c.is_ascii_whitespace());
    let deferred = if exact {
        version_error(version)
    } else {
        Some(ParseError::InvalidRequestLine)
    };
    // Kept without whitespace, so even a message only being refused holds
    // a Request-URI that could be printed.
    let uri = uri.split_ascii_whitespace().collect::<String>();
    Ok((StartLine::Request { method, uri }, deferred))
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Head {
        parse_head(text.as_bytes()).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    fn names_values(head: &Head) -> Vec<(String, String)> {
        head.headers
            .iter()
            .map(|h| (h.name.clone(), h.value.clone()))
            .collect()
    }

    #[test]
    fn every_compact_form_is_expanded() {
        for (short, long) in rfc::COMPACT_FORMS {
            for name in [short.to_string(), short.to_ascii_uppercase().to_string()] {
                let parsed = head(&format!("OPTIONS sip:a@b SIP/2.0\r\n{name}: v\r\n"));
                assert_eq!(parsed.headers[0].name, *long, "{name}");
                assert!(parsed.headers[0].is(long) && parsed.headers[0].is(&name));
            }
        }
    }

    #[test]
    fn normalisation_table() {
        type Row<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);
        let table: &[Row] = &[
            (
                "folded lines join with one space",
                "INVITE sip:a@b SIP/2.0\r\nSubject: hello\r\n \t world\r\nFrom: <sip:x@y>\r\n\t;tag=1\r\n",
                &[("Subject", "hello world"), ("From", "<sip:x@y> ;tag=1")],
            ),
            (
                "space and tab before the colon",
                "INVITE sip:a@b SIP/2.0\r\nVia : x\r\nTo\t: y\r\nCall-ID  :z\r\n",
                &[("Via", "x"), ("To", "y"), ("Call-ID", "z")],
            ),
            (
                "LF-only line ends",
                "INVITE sip:a@b SIP/2.0\nCall-ID: a\nCSeq: 1 INVITE\n",
                &[("Call-ID", "a"), ("CSeq", "1 INVITE")],
            ),
            (
                "case of names is kept, values trimmed",
                "INVITE sip:a@b SIP/2.0\r\nX-CallANI:   5550100 \r\ncall-id: q\r\n",
                &[("X-CallANI", "5550100"), ("call-id", "q")],
            ),
            (
                "empty values and colons inside values",
                "INVITE sip:a@b SIP/2.0\r\nSubject:\r\nX-Time: 12:30:00\r\n",
                &[("Subject", ""), ("X-Time", "12:30:00")],
            ),
            (
                "a fold after an empty value",
                "INVITE sip:a@b SIP/2.0\r\nSubject:\r\n  later\r\n",
                &[("Subject", "later")],
            ),
        ];
        for (what, input, expected) in table {
            let parsed = head(input);
            assert!(parsed.bad_line.is_none(), "{what}");
            let expected: Vec<(String, String)> = expected
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect();
            assert_eq!(names_values(&parsed), expected, "{what}");
        }
    }

    #[test]
    fn bad_header_lines_are_flagged_but_others_kept() {
        for line in [
            " leading fold",
            "NoColonHere",
            ": empty name",
            "Bad Name: x",
            "X\u{e9}: y",
        ] {
            let text = if line.starts_with(' ') {
                format!("INVITE sip:a@b SIP/2.0\r\n{line}\r\nCall-ID: c\r\n")
            } else {
                format!("INVITE sip:a@b SIP/2.0\r\nCall-ID: c\r\n{line}\r\n")
            };
            let parsed = head(&text);
            assert_eq!(
                parsed.bad_line,
                Some(ParseError::InvalidHeaderLine),
                "{line:?}"
            );
            assert!(parsed.headers.iter().any(|h| h.is("Call-ID")), "{line:?}");
        }
    }

    #[test]
    fn start_lines() {
        let request = |method: Method, uri: &str| StartLine::Request {
            method,
            uri: uri.into(),
        };
        let response = |code: u16, reason: &str| StartLine::Response {
            code,
            reason: reason.into(),
        };
        let table: &[(&str, Result<StartLine, ParseError>)] = &[
            (
                "INVITE sip:100@h SIP/2.0",
                Ok(request(Method::Invite, "sip:100@h")),
            ),
            (
                "INVITE tel:+1555 sip/2.0",
                Ok(request(Method::Invite, "tel:+1555")),
            ),
            (
                "FOO sip:h SIP/2.0",
                Ok(request(Method::Extension("FOO".into()), "sip:h")),
            ),
            // RFC 4475 lwsstart, trws, lwsruri: SIP, but sloppy (400).
            ("FOO  sip:h   SIP/2.0", Err(ParseError::InvalidRequestLine)),
            (
                "OPTIONS sip:h SIP/2.0  ",
                Err(ParseError::InvalidRequestLine),
            ),
            (
                "INVITE sip:u@h; lr SIP/2.0",
                Err(ParseError::InvalidRequestLine),
            ),
            ("INVITE\tsip:h SIP/2.0", Err(ParseError::InvalidRequestLine)),
            ("INVITE sip:h  SIP/3.0", Err(ParseError::InvalidRequestLine)),
            ("SIP/2.0 200 OK", Ok(response(200, "OK"))),
            ("SIP/2.0 180", Ok(response(180, ""))),
            ("SIP/2.0 486 Busy  Here ", Ok(response(486, "Busy  Here"))),
            ("SIP/3.0 200 OK", Err(ParseError::UnsupportedVersion)),
            ("INVITE sip:h SIP/3.0", Err(ParseError::UnsupportedVersion)),
            ("SIP/2.0 2000 OK", Err(ParseError::InvalidStartLine)),
            ("SIP/2.0 099 Low", Err(ParseError::InvalidStartLine)),
            ("SIP/2.0 +20 x", Err(ParseError::InvalidStartLine)),
            ("INVITE sip:h", Err(ParseError::NotSip)),
            ("INVITE SIP/2.0", Err(ParseError::InvalidStartLine)),
            ("INVITE sip:h SIP/2.0 extra", Err(ParseError::NotSip)),
            ("IN\"VITE sip:h SIP/2.0", Err(ParseError::InvalidStartLine)),
            ("GET / HTTP/1.1", Err(ParseError::NotSip)),
            ("\u{16}\u{3}\u{1}", Err(ParseError::NotSip)),
            ("", Err(ParseError::NotSip)),
        ];
        for (line, expected) in table {
            let parsed = parse_start_line(line.as_bytes())
                .and_then(|(start, deferred)| deferred.map_or(Ok(start), Err));
            assert_eq!(&parsed, expected, "{line:?}");
        }
    }

    #[test]
    fn head_end_table() {
        type Row<'a> = (&'a [u8], Option<(usize, usize)>);
        let table: &[Row] = &[
            (b"A\r\nB: c\r\n\r\nbody", Some((8, 11))),
            (b"A\nB: c\n\nbody", Some((6, 8))),
            (b"A\nB: c\n\r\nbody", Some((6, 9))),
            (b"A\r\nB: c\r\n\nbody", Some((8, 10))),
            (b"A\r\nB: c\r\n\r", None),
            (b"A\r\nB: c\r\n", None),
            (b"", None),
        ];
        for (buf, expected) in table {
            assert_eq!(
                find_head_end(buf, 0),
                *expected,
                "{:?}",
                String::from_utf8_lossy(buf)
            );
        }
    }
}
