//! Framing a TCP or TLS byte stream (RFC 3261 §18.3; RFC 5626 §3.5.1).
//!
//! On a stream only Content-Length says where a message ends, so a message
//! without one, with a garbled one, or larger than the limit loses the
//! boundaries for everything after it: those errors close the connection.
//! Problems inside a well-delimited message cost that message only.

use super::error::ParseError;
use super::framing::{FrameLimits, Malformed, finish, parse_head_only, reject, skip_line_ends};
use super::head::{self, find_head_end};
use super::params::is_token_byte;
use super::sip_message::SipMessage;

/// Incremental framer for one TCP or TLS connection: push what was read, then
/// pop messages until it returns `Ok(None)`.
///
/// Work is linear in the bytes received however they are split: a peer
/// trickling a byte at a time must not make us rescan or reparse its headers.
#[derive(Debug)]
pub struct StreamFramer {
    /// Bytes read but not yet returned as messages.
    buf: Vec<u8>,
    limits: FrameLimits,
    /// How far `buf` was searched for the end of the headers (and, while
    /// `start_checked` is false, for the end of the start line).
    scanned: usize,
    /// Whether the start line of the message at the front was checked.
    start_checked: bool,
    /// The parsed headers of the message at the front, waiting for its body.
    pending: Option<Pending>,
    /// RFC 5626 §4.4.1 pongs owed: one per CRLFCRLF ping received.
    pongs: usize,
    /// Line ends skipped since the last message, to recognise pings that
    /// arrive split across reads.
    line_ends: usize,
    /// Set after an error that lost the message boundaries; nothing more is
    /// read from this connection.
    closed: bool,
}

#[derive(Debug)]
struct Pending {
    message: SipMessage,
    bad_line: Option<ParseError>,
    body_start: usize,
    total: usize,
}

impl StreamFramer {
    /// A framer for a new connection.
    pub fn new(limits: FrameLimits) -> Self {
        StreamFramer {
            buf: Vec::new(),
            limits,
            scanned: 0,
            start_checked: false,
            pending: None,
            pongs: 0,
            line_ends: 0,
            closed: false,
        }
    }

    /// Appends bytes read from the connection (ignored once closed).
    pub fn push(&mut self, bytes: &[u8]) {
        if !self.closed {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// Bytes buffered and not yet returned.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Whether a fatal error was returned; the connection should be closed.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// How many CRLFCRLF keep-alive pings arrived since the last call. The
    /// transport answers each with a single CRLF pong (RFC 5626 §4.4.1); a
    /// client that gets no pong thinks the flow is dead and re-registers.
    pub fn take_pongs(&mut self) -> usize {
        std::mem::take(&mut self.pongs)
    }

    /// The next complete message, `Ok(None)` when more bytes are needed.
    /// An `Err` with `close_connection == false` concerns one message only
    /// (answer it and keep reading); otherwise the framer is closed.
    pub fn pop(&mut self) -> Result<Option<SipMessage>, Malformed> {
        if self.closed {
            return Ok(None);
        }
        if self.pending.is_none() {
            match self.frame_head()? {
                Some(pending) => self.pending = Some(pending),
                None => return Ok(None),
            }
        }
        let total = self.pending.as_ref().map_or(usize::MAX, |p| p.total);
        if self.buf.len() < total {
            return Ok(None);
        }
        let Some(Pending {
            mut message,
            bad_line,
            body_start,
            total,
        }) = self.pending.take()
        else {
            return Ok(None);
        };
        message.body = self.buf[body_start..total].to_vec();
        self.buf.drain(..total);
        self.scanned = 0;
        self.start_checked = false;
        self.line_ends = 0;
        // The boundaries were sound, so a bad header or a missing Call-ID
        // costs this one message, not the connection.
        finish(message, bad_line, false).map(Some)
    }

    /// Finds and parses the header section of the message at the front.
    fn frame_head(&mut self) -> Result<Option<Pending>, Malformed> {
        // RFC 5626 keep-alive pings (CRLFCRLF) and the CRLFs RFC 3261 §7.5
        // says to ignore before a start line.
        let skip = self.buf.len() - skip_line_ends(&self.buf).len();
        let line_ends = self.line_ends + self.buf[..skip].iter().filter(|&&b| b == b'\n').count();
        self.pongs += line_ends / 2;
        self.line_ends = line_ends % 2;
        self.buf.drain(..skip);
        self.scanned = self.scanned.saturating_sub(skip);
        if self.buf.is_empty() {
            return Ok(None);
        }
        if let Err(error) = self.check_start() {
            return Err(self.fatal(None, error));
        }
        let max = self.limits.max_message_size;
        let Some((head_len, body_start)) = find_head_end(&self.buf, self.scanned.saturating_sub(2))
        else {
            // Past `max` by more than a partial blank line (`\r\n\r` of its
            // `\r\n\r\n`), the headers themselves are too long.
            if self.buf.len() > max + 3 {
                return Err(self.fatal(None, ParseError::TooLarge { limit: max }));
            }
            self.scanned = self.buf.len();
            return Ok(None);
        };
        if head_len > max {
            // The same answer as when these headers arrive in pieces and the
            // buffer fills before their end: none, whatever the segmenting
            // (a 513 came back only when they arrived whole; found by
            // fuzzing).
            return Err(self.fatal(None, ParseError::TooLarge { limit: max }));
        }
        let (message, bad_line) = match parse_head_only(&self.buf[..head_len], true) {
            Ok(parsed) => parsed,
            Err(malformed) => return Err(self.fatal(None, malformed.error)),
        };
        let length = match message.content_length() {
            Ok(Some(length)) => length,
            // RFC 3261 §18.3: on a stream Content-Length is what delimits the
            // body, so without it the next message cannot be found.
            Ok(None) => {
                let error = ParseError::MissingHeader("Content-Length");
                return Err(self.fatal(Some(&message), error));
            }
            Err(error) => return Err(self.fatal(Some(&message), error)),
        };
        let total = body_start.saturating_add(length);
        if total > max {
            return Err(self.fatal(Some(&message), ParseError::TooLarge { limit: max }));
        }
        Ok(Some(Pending {
            message,
            bad_line,
            body_start,
            total,
        }))
    }

    /// Refuses garbage as soon as its first line is complete (or its first
    /// byte cannot start SIP, as with a TLS handshake on a plain port), rather
    /// than buffering up to the size limit.
    fn check_start(&mut self) -> Result<(), ParseError> {
        if self.start_checked {
            return Ok(());
        }
        if !is_token_byte(self.buf[0]) {
            return Err(ParseError::NotSip);
        }
        // No LF lies before `scanned`: the start line would have been
        // checked when it arrived.
        let from = self.scanned.min(self.buf.len());
        let Some(line_end) = self.buf[from..].iter().position(|&b| b == b'\n') else {
            return Ok(());
        };
        let line = &self.buf[..from + line_end];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        head::parse_start_line(line)?;
        self.start_checked = true;
        Ok(())
    }

    fn fatal(&mut self, message: Option<&SipMessage>, error: ParseError) -> Malformed {
        self.closed = true;
        self.buf = Vec::new();
        self.pending = None;
        match message {
            Some(message) => reject(message, error, true),
            None => Malformed {
                error,
                reply: None,
                close_connection: true,
            },
        }
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

    fn reply_line(malformed: &Malformed) -> Option<(u16, String)> {
        let reply = malformed.reply.as_ref()?;
        Some((reply.status_code()?, reply.reason()?.to_string()))
    }

    #[test]
    fn stream_pipelined_split_and_keep_alive() {
        let one = with_length("4", "abcd");
        let two = with_length("0", "").replace("CSeq: 1", "CSeq: 2");
        // Two messages and keep-alives in one read.
        let mut framer = StreamFramer::new(FrameLimits::default());
        framer.push(format!("\r\n\r\n{one}\r\n\r\n{two}\r\n\r\n").as_bytes());
        let first = framer.pop().expect("ok").expect("first");
        assert_eq!(
            (first.cseq().map(|c| c.seq), first.body()),
            (Ok(1), &b"abcd"[..])
        );
        let second = framer.pop().expect("ok").expect("second");
        assert_eq!(second.cseq().map(|c| c.seq), Ok(2));
        assert_eq!(framer.pop(), Ok(None));
        assert_eq!(framer.buffered(), 0);
        assert_eq!(framer.take_pongs(), 3, "one CRLF pong per CRLFCRLF ping");
        assert_eq!(framer.take_pongs(), 0);

        // A ping split across reads still earns its pong.
        let mut framer = StreamFramer::new(FrameLimits::default());
        framer.push(b"\r\n");
        assert_eq!(framer.pop(), Ok(None));
        assert_eq!(framer.take_pongs(), 0);
        framer.push(b"\r\n");
        assert_eq!(framer.pop(), Ok(None));
        assert_eq!(framer.take_pongs(), 1);

        // The same bytes a byte at a time: nothing until the last body byte.
        let mut framer = StreamFramer::new(FrameLimits::default());
        let bytes = one.as_bytes();
        for (i, byte) in bytes.iter().enumerate() {
            framer.push(&[*byte]);
            let popped = framer.pop().expect("ok");
            assert_eq!(popped.is_some(), i == bytes.len() - 1, "after byte {i}");
        }

        // Split inside the CRLFCRLF and inside the body, LF-only.
        let lf = one.replace("\r\n", "\n");
        let cut = lf.find("\n\n").expect("blank line") + 1;
        let mut framer = StreamFramer::new(FrameLimits::default());
        framer.push(&lf.as_bytes()[..cut]);
        assert_eq!(framer.pop(), Ok(None));
        framer.push(&lf.as_bytes()[cut..lf.len() - 2]);
        assert_eq!(framer.pop(), Ok(None));
        framer.push(&lf.as_bytes()[lf.len() - 2..]);
        assert_eq!(
            framer.pop().ok().flatten().map(|m| m.body().to_vec()),
            Some(b"abcd".to_vec())
        );
    }

    #[test]
    fn stream_errors_that_close_the_connection() {
        type Row<'a> = (&'a str, Vec<u8>, Option<u16>, Option<&'a str>);
        let table: Vec<Row> = vec![
            (
                "missing Content-Length",
                format!("{HEAD}\r\n").into_bytes(),
                Some(400),
                Some("Bad Request - Missing Content-Length"),
            ),
            (
                "garbage Content-Length",
                with_length("1x", "").into_bytes(),
                Some(400),
                Some("Bad Request - Invalid Content-Length"),
            ),
            (
                "declared body too large",
                with_length("500", "").into_bytes(),
                Some(513),
                Some("Message Too Large"),
            ),
            (
                "headers never end",
                format!("{HEAD}X-Pad: {}\r\n", "p".repeat(600)).into_bytes(),
                Some(513),
                None,
            ),
            (
                "TLS handshake on a plain port",
                vec![0x16, 0x03, 0x01],
                None,
                None,
            ),
            ("HTTP", b"GET / HTTP/1.1\r\n".to_vec(), None, None),
            (
                "binary after a token byte",
                b"I\x00\xff\r\n".to_vec(),
                None,
                None,
            ),
        ];
        for (what, bytes, status, reason) in table {
            let mut framer = StreamFramer::new(limits(400));
            framer.push(&bytes);
            let malformed = framer.pop().expect_err(what);
            assert!(malformed.close_connection, "{what}");
            assert_eq!(malformed.error.status(), status, "{what}");
            assert_eq!(
                reply_line(&malformed).map(|(_, r)| r),
                reason.map(String::from),
                "{what}"
            );
            assert!(framer.is_closed(), "{what}");
            framer.push(with_length("0", "").as_bytes());
            assert_eq!(framer.pop(), Ok(None), "{what}: nothing after close");
        }
    }

    #[test]
    fn stream_errors_that_cost_one_message() {
        let broken = with_length("0", "").replace("Call-ID: abc\r\n", "");
        let version = with_length("0", "").replace("SIP/2.0\r\n", "SIP/3.0\r\n");
        let good = with_length("0", "");
        let mut framer = StreamFramer::new(FrameLimits::default());
        framer.push(format!("{broken}{version}{good}").as_bytes());
        let first = framer.pop().expect_err("no Call-ID");
        assert!(!first.close_connection);
        assert_eq!(reply_line(&first).map(|(c, _)| c), Some(400));
        let second = framer.pop().expect_err("SIP/3.0");
        assert_eq!(
            reply_line(&second),
            Some((505, "Version Not Supported".into()))
        );
        assert!(
            framer.pop().expect("ok").is_some(),
            "the next message still arrives"
        );
    }

    #[test]
    fn a_complete_request_comes_out_before_the_broken_one_closes() {
        // RFC 4475 dblreq on a stream: a REGISTER, a CRLF, an INVITE, then
        // octets that start no message. Both requests come out, in order,
        // before the error that closes the connection, so each is answered.
        let register = "REGISTER sip:example.com SIP/2.0\r\n\
            To: sip:j.user@example.com\r\n\
            From: sip:j.user@example.com;tag=43251j3j324\r\n\
            Max-Forwards: 8\r\n\
            I: dblreq.0ha0isndaksdj99sdfafnl3lk233412\r\n\
            CSeq: 8 REGISTER\r\n\
            Via: SIP/2.0/UDP 192.0.2.125;branch=z9hG4bKkdjuw23492\r\n\
            Content-Length: 0\r\n\r\n";
        let invite = with_length("4", "v=0\n");
        let mut framer = StreamFramer::new(FrameLimits::default());
        framer.push(format!("{register}\r\n{invite}C\r\n\r\n").as_bytes());
        let first = framer.pop().expect("valid").expect("the REGISTER");
        assert_eq!(first.method(), Some(&super::super::Method::Register));
        let second = framer.pop().expect("valid").expect("the INVITE");
        assert_eq!(second.body(), b"v=0\n");
        let broken = framer.pop().expect_err("junk");
        assert!(broken.close_connection && framer.is_closed());
        assert_eq!(broken.reply, None, "nothing to answer in `C`");
    }

    #[test]
    fn sloppy_request_lines_cost_one_message() {
        // RFC 4475 lwsruri, lwsstart, trws: framed by Content-Length as
        // usual, answered 400, and the stream goes on.
        let mut framer = StreamFramer::new(FrameLimits::default());
        for line in [
            "INVITE sip:100@10.0.0.1; lr SIP/2.0",
            "INVITE  sip:100@10.0.0.1  SIP/2.0",
            "INVITE sip:100@10.0.0.1 SIP/2.0  ",
        ] {
            let text = with_length("0", "").replace("INVITE sip:100@10.0.0.1 SIP/2.0", line);
            framer.push(text.as_bytes());
            let malformed = framer.pop().expect_err(line);
            assert!(!malformed.close_connection, "{line}");
            assert_eq!(
                reply_line(&malformed),
                Some((400, "Bad Request - Malformed Request-Line".into())),
                "{line}"
            );
        }
        framer.push(with_length("0", "").as_bytes());
        assert!(framer.pop().expect("valid").is_some());
    }

    #[test]
    fn a_trickling_peer_costs_linear_time() {
        // 56 KiB a byte at a time: rescanning or reparsing on every byte would
        // take minutes here; linear framing takes well under a second.
        let pad = "p".repeat(48 * 1024);
        let body = "b".repeat(8 * 1024);
        let text = format!(
            "{HEAD}X-Pad: {pad}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let mut framer = StreamFramer::new(limits(64 * 1024));
        let mut popped = None;
        for byte in text.as_bytes() {
            framer.push(&[*byte]);
            if let Some(msg) = framer.pop().expect("valid") {
                popped = Some(msg);
            }
        }
        assert_eq!(popped.map(|m| m.body().len()), Some(body.len()));
    }

    /// Found by the `sip_stream` fuzz target: headers longer than the
    /// limit got a 513 when they arrived in one segment and none (only the
    /// close) when they trickled in. Now neither way answers, and headers
    /// within the limit get the same 513 either way.
    #[test]
    fn oversized_headers_are_answered_the_same_whatever_the_segmenting() {
        let outcome = |text: &str, chunk: usize| {
            let mut framer = StreamFramer::new(limits(256));
            for piece in text.as_bytes().chunks(chunk) {
                framer.push(piece);
                match framer.pop() {
                    Ok(None) => {}
                    Ok(Some(_)) => return "message".to_string(),
                    Err(m) => return format!("{:?} close={}", reply_line(&m), m.close_connection),
                }
            }
            "waiting".to_string()
        };
        let long_head = format!(
            "{HEAD}X-Pad: {}\r\nContent-Length: 0\r\n\r\n",
            "p".repeat(300)
        );
        // Headers of exactly the limit, a body that does not fit.
        let head = format!("{HEAD}Content-Length: 10\r\nX-Pad: ");
        let fits = format!(
            "{head}{}\r\n\r\n0123456789",
            "p".repeat(256 - 4 - head.len())
        );
        for text in [long_head, fits] {
            let whole = outcome(&text, text.len());
            for chunk in [1, 2, 3, 7, 64] {
                assert_eq!(outcome(&text, chunk), whole, "chunks of {chunk}");
            }
        }
    }
}
