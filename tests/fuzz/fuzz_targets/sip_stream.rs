//! A TCP/TLS byte stream cut into messages by Content-Length, fed in
//! chunks of any size: the same messages and errors come out whatever the
//! chunking, and the framer never buffers more than its limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trunkline_fuzz::{Input, exercise};
use trunkline_sip::message::{FrameLimits, SipMessage, StreamFramer};

const LIMIT: usize = 2048;

/// What the peer notices: each message accepted, each reply sent for a
/// bad one and whether the connection closes, in order. (Which error is
/// named may depend on how much had arrived: a line that runs past the
/// limit is "too large" while it lasts, "not SIP" once it ends.)
#[derive(Debug, PartialEq)]
enum Seen {
    Message(SipMessage),
    Error { reply: Option<u16>, close: bool },
}

fn drain(framer: &mut StreamFramer, seen: &mut Vec<Seen>) {
    // Every pop consumes bytes, fails or waits: bounded by the input size.
    for _ in 0..=LIMIT * 4 {
        if framer.is_closed() {
            return;
        }
        match framer.pop() {
            Ok(Some(msg)) => seen.push(Seen::Message(msg)),
            Ok(None) => {
                // The limit, plus the first bytes of a blank line.
                assert!(
                    framer.buffered() <= LIMIT + 3,
                    "{} buffered",
                    framer.buffered()
                );
                return;
            }
            Err(malformed) => {
                if let Some(reply) = &malformed.reply {
                    trunkline_fuzz::check_reply(reply, malformed.error.status());
                }
                seen.push(Seen::Error {
                    reply: malformed.reply.as_ref().and_then(|r| r.status_code()),
                    close: malformed.close_connection,
                })
            }
        }
    }
    panic!("the framer neither made progress nor waited");
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let cuts: Vec<usize> = (0..input.below(8)).map(|_| 1 + input.below(64)).collect();
    let stream = input.rest();
    if stream.len() > LIMIT * 3 {
        return;
    }
    let limits = FrameLimits {
        max_message_size: LIMIT,
    };

    let mut whole = StreamFramer::new(limits);
    let mut at_once = Vec::new();
    whole.push(stream);
    drain(&mut whole, &mut at_once);

    let mut framer = StreamFramer::new(limits);
    let mut chunked = Vec::new();
    let mut rest = stream;
    let mut sizes = cuts.iter().cycle();
    while !rest.is_empty() && !framer.is_closed() {
        let size = sizes.next().copied().unwrap_or(rest.len()).min(rest.len());
        let (chunk, tail) = rest.split_at(size);
        framer.push(chunk);
        rest = tail;
        drain(&mut framer, &mut chunked);
    }
    assert_eq!(chunked, at_once, "chunking changed what came out");
    assert_eq!(framer.is_closed(), whole.is_closed());
    for seen in &at_once {
        if let Seen::Message(msg) = seen {
            exercise(msg);
        }
    }
});
