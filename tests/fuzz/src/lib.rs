//! What the fuzz targets share: a reader that turns the fuzzer's bytes into
//! choices, and the checks every accepted SIP message must pass.
//!
//! The targets live in `fuzz_targets/`, one per input surface; each calls the
//! real parsing or validation code and asserts what must hold for a peer's
//! bytes to be handled safely (printing what we accepted gives something we
//! accept again, the same way; sizes stay within their bounds), not only
//! that nothing panics.

use std::net::SocketAddr;

use trunkline_sip::message::{
    ResponseTarget, SipMessage, ViaTrust, response_target, stamp_received,
};

/// Choices drawn from the front of the fuzzer's input; once it runs out,
/// every choice is zero.
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    /// Reads from `data`.
    pub fn new(data: &'a [u8]) -> Input<'a> {
        Input { data }
    }

    /// One byte.
    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    /// A big-endian u16.
    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.byte(), self.byte()])
    }

    /// A big-endian u32.
    pub fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }

    /// A choice below `n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        usize::from(self.byte()) % n.max(1)
    }

    /// A bool.
    pub fn bool(&mut self) -> bool {
        self.byte() & 1 == 1
    }

    /// Up to `max` bytes, the length read first.
    pub fn bytes(&mut self, max: usize) -> &'a [u8] {
        let len = (usize::from(self.u16())).min(max).min(self.data.len());
        let (taken, rest) = self.data.split_at(len);
        self.data = rest;
        taken
    }

    /// A string of up to `max` bytes (invalid UTF-8 replaced).
    pub fn string(&mut self, max: usize) -> String {
        String::from_utf8_lossy(self.bytes(max)).into_owned()
    }

    /// Everything not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }

    /// Whether everything was read.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// Everything the gateway does with a message it accepted, and the round
/// trip: the printed message parses again, to the same values, and prints
/// the same.
pub fn exercise(msg: &SipMessage) {
    let _ = msg.to_rsip();
    let _ = (msg.max_forwards(), msg.contact(), msg.request_user());
    let source: SocketAddr = "192.0.2.1:5060".parse().expect("address");
    if let Ok(via) = msg.top_via() {
        // Nothing in a Via aims our answers at a host other than the
        // source: an unadmitted peer is answered exactly at its source, an
        // admitted one at its source IP (or a multicast maddr).
        let unadmitted = response_target(&via, source, ViaTrust::Unadmitted);
        assert!(
            matches!(unadmitted, ResponseTarget::Datagram(to) | ResponseTarget::SameConnection { fallback: to } if to == source),
            "{via} -> {unadmitted:?}"
        );
        match response_target(&via, source, ViaTrust::Admitted) {
            ResponseTarget::Datagram(to) | ResponseTarget::SameConnection { fallback: to } => {
                assert!(
                    to.ip() == source.ip() || to.ip().is_multicast(),
                    "{via} -> {to}"
                );
            }
        }
    }
    if msg.is_request() {
        let reply = msg
            .reply(400, None, Some("t"))
            .expect("a request can be answered");
        reparse(&reply);
        let mut stamped = msg.clone();
        let v6: SocketAddr = "[2001:db8::1]:5060".parse().expect("address");
        if stamp_received(&mut stamped, v6).is_ok() {
            let stamped = reparse(&stamped);
            let top = stamped.top_via().expect("stamped Via reads back");
            assert!(top.received().is_none_or(|ip| ip == v6.ip()), "{top}");
        }
    }
    reparse(msg);
}

/// The message printed and parsed back: same start line, headers, body and
/// typed values, and printing is a fixed point.
pub fn reparse(msg: &SipMessage) -> SipMessage {
    let printed = msg.to_bytes();
    let again = SipMessage::parse(&printed).unwrap_or_else(|e| {
        panic!(
            "{e}: the printed form is refused:\n{}",
            String::from_utf8_lossy(&printed)
        )
    });
    assert_eq!(again.start_line(), msg.start_line());
    assert_eq!(again.body(), msg.body());
    assert_eq!(again.call_id().ok(), msg.call_id().ok());
    assert_eq!(again.cseq().ok(), msg.cseq().ok());
    assert_eq!(again.from().ok(), msg.from().ok());
    assert_eq!(again.to().ok(), msg.to().ok());
    assert_eq!(again.vias().ok(), msg.vias().ok());
    assert_eq!(again.max_forwards().ok(), msg.max_forwards().ok());
    assert_eq!(again.content_length(), Ok(Some(msg.body().len())));
    assert_eq!(again.to_bytes(), printed, "printing is a fixed point");
    again
}

/// The ready reply to a malformed request: a response with the error's
/// status; what it copies from the request cannot add header lines (a NUL
/// in a quoted display name is legal, RFC 4475 §3.1.1.3, and is copied as
/// it came). Its Via need not parse: a request whose Via is garbled (RFC
/// 4475 `badinv01`) still gets its 400, sent to the packet's source.
pub fn check_reply(reply: &SipMessage, status: Option<u16>) {
    assert!(!reply.is_request());
    assert_eq!(reply.status_code(), status);
    for h in reply.headers() {
        assert!(!h.value.contains(['\r', '\n']), "{h:?}");
    }
}
