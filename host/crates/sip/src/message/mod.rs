//! SIP messages: framing, normalisation, a message type with typed
//! accessors, building and printing, and the Via rules of the transport.
//!
//! rsip 0.4 is the project's message model, but it is unmaintained since 2022
//! and, measured (see `rsip_bridge` tests), mis-reads much of what real peers
//! send. This layer sits in front of it: bytes go through the framer
//! ([`StreamFramer`], [`parse_datagram`]) into our [`SipMessage`], which keeps
//! the wire order and case of headers (Five9's X- headers go to policies as
//! sent) and is converted with [`SipMessage::to_rsip`] where rsip's typed
//! headers help.
//!
//! # Layout
//! - `framing`: datagrams -> messages, Content-Length, size limit, the reply
//!   owed to a malformed request ([`Malformed`]).
//! - `stream`: [`StreamFramer`] for TCP/TLS connections.
//! - `head`: end of headers, start line, unfolding, compact names.
//! - `sip_message`: [`SipMessage`], typed accessors, validation.
//! - `build`: requests, responses to requests, header edits, printing.
//! - `via`, `name_addr`, `uri`, `host`, `params`, `method`: value parsers.
//! - `transport`: `received`/`rport` stamping, response destination.
//! - `branch`: branch and tag generation.
//! - `rsip_bridge`: conversion to rsip and the measured rsip gaps.
//! - `error`: [`ParseError`] (status it maps to) and [`BuildError`].

mod branch;
mod build;
mod error;
mod framing;
mod head;
mod host;
mod method;
mod name_addr;
mod params;
mod rsip_bridge;
mod sip_message;
mod stream;
mod transport;
mod uri;
mod via;

pub use branch::{is_rfc3261_branch, new_branch, new_tag};
pub use error::{BuildError, ParseError};
pub use framing::{FrameLimits, Malformed, parse_datagram};
pub use head::{Header, StartLine};
pub use host::Host;
pub use method::Method;
pub use name_addr::NameAddr;
pub use params::Param;
pub use rsip_bridge::{TEL_BRIDGE_HOST, tel_as_sip};
pub use sip_message::{CSeq, SipMessage};
pub use stream::StreamFramer;
pub use transport::{ResponseTarget, ViaTrust, response_target, stamp_received};
pub use uri::{Scheme, Uri};
pub use via::{Rport, Transport, Via};

#[cfg(test)]
mod tests {
    //! Whole-layer tests: a real Five9 INVITE end to end, and random input.
    use super::*;
    use std::net::SocketAddr;

    /// A Five9 3rd Party Transfer INVITE as seen in the field: 15 X- headers
    /// carrying call variables and lead data, mixed-case names, SDP offering
    /// G.711 and telephone-event.
    const FIVE9_SDP: &str = "v=0\r\n\
        o=Five9 1714572202 1714572202 IN IP4 198.51.100.21\r\n\
        s=Five9\r\n\
        c=IN IP4 198.51.100.21\r\n\
        t=0 0\r\n\
        m=audio 20000 RTP/AVP 0 8 101\r\n\
        a=rtpmap:0 PCMU/8000\r\n\
        a=rtpmap:8 PCMA/8000\r\n\
        a=rtpmap:101 telephone-event/8000\r\n\
        a=fmtp:101 0-16\r\n\
        a=ptime:20\r\n\
        a=sendrecv\r\n";

    const FIVE9_HEADERS: &[(&str, &str)] = &[
        (
            "Via",
            "SIP/2.0/UDP 198.51.100.20:5060;branch=z9hG4bK-524287-1---8a4f2c1e0b9d7a63;rport",
        ),
        ("Max-Forwards", "69"),
        ("Contact", "<sip:5550199@198.51.100.20:5060>"),
        ("To", "<sip:18005550100@trunkline.example.com>"),
        (
            "From",
            "\"John Smith\" <sip:5550199@198.51.100.20>;tag=6f1c2a9b",
        ),
        ("Call-ID", "1a2b3c4d5e6f7a8b9c0d@198.51.100.20"),
        ("CSeq", "1 INVITE"),
        (
            "Allow",
            "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, REFER, NOTIFY",
        ),
        ("Supported", "replaces, timer"),
        ("User-Agent", "Five9 VCC"),
        ("X-CallANI", "5550199"),
        ("X-CallDNIS", "18005550100"),
        ("X-CallID", "300000000012345"),
        ("X-CallSessionID", "8F2A6C4E1B9D4F7A9C3E5B1D7F2A4C6E"),
        ("X-CallCampaign", "Inbound_Support"),
        ("X-CallStartTimestamp", "2024-05-01 14:03:22.118"),
        ("X-CallDomainID", "131877"),
        ("X-first_name", "Jane"),
        ("X-last_name", "O'Neil, Jr."),
        ("X-number1", "5550199"),
        ("X-CustomerTier", "gold"),
        ("X-AccountNumber", "00012345"),
        ("X-Language", "en-US"),
        ("X-PolyAi-Auth-Token", "eyJhbGciOi.eyJ0ZW5hbnQ.c2lnbmF0dXJl"),
        ("X-CallSkill", "Billing"),
        ("Content-Type", "application/sdp"),
    ];

    fn five9_invite() -> Vec<u8> {
        let mut text =
            String::from("INVITE sip:18005550100@trunkline.example.com:5060 SIP/2.0\r\n");
        for (name, value) in FIVE9_HEADERS {
            text.push_str(&format!("{name}: {value}\r\n"));
        }
        text.push_str(&format!(
            "Content-Length: {}\r\n\r\n{FIVE9_SDP}",
            FIVE9_SDP.len()
        ));
        text.into_bytes()
    }

    fn check_five9(msg: &SipMessage) {
        let names: Vec<(&str, &str)> = msg
            .headers()
            .iter()
            .map(|h| (h.name.as_str(), h.value.as_str()))
            .collect();
        let mut expected = FIVE9_HEADERS.to_vec();
        let length = FIVE9_SDP.len().to_string();
        expected.push(("Content-Length", &length));
        assert_eq!(names, expected, "order, case and values kept");
        assert_eq!(
            msg.headers()
                .iter()
                .filter(|h| h.name.starts_with("X-"))
                .count(),
            15
        );
        assert_eq!(
            msg.header("x-callsessionid"),
            Some("8F2A6C4E1B9D4F7A9C3E5B1D7F2A4C6E")
        );
        assert_eq!(msg.request_user().as_deref(), Some("18005550100"));
        assert_eq!(msg.body(), FIVE9_SDP.as_bytes());
        assert_eq!(
            msg.from().ok().and_then(|f| f.display_name),
            Some("John Smith".into())
        );
    }

    #[test]
    fn five9_invite_over_udp_and_tcp() {
        let bytes = five9_invite();
        let udp = parse_datagram(&bytes, &FrameLimits::default())
            .expect("valid")
            .expect("not a keep-alive");
        check_five9(&udp);
        assert_eq!(udp.to_bytes(), bytes, "prints back byte for byte");

        let mut framer = StreamFramer::new(FrameLimits::default());
        for chunk in bytes.chunks(97) {
            framer.push(chunk);
        }
        let tcp = framer.pop().expect("valid").expect("complete");
        check_five9(&tcp);
        assert_eq!(tcp, udp);
    }

    #[test]
    fn five9_invite_answered_from_behind_nat() {
        let mut invite = SipMessage::parse(&five9_invite()).expect("valid");
        let source: SocketAddr = "203.0.113.5:40612".parse().expect("address");
        stamp_received(&mut invite, source).expect("has a Via");
        let ok = invite
            .reply(200, None, Some(&new_tag()))
            .and_then(|r| r.with_header("Contact", "<sip:18005550100@[2001:db8::10]:5060>"))
            .and_then(|r| r.with_body("application/sdp", FIVE9_SDP.as_bytes().to_vec()))
            .expect("builds");
        let via = ok.top_via().expect("copied");
        assert_eq!(
            via.received().map(|ip| ip.to_string()).as_deref(),
            Some("203.0.113.5")
        );
        assert_eq!(
            response_target(&via, source, ViaTrust::Admitted),
            ResponseTarget::Datagram(source)
        );
        let reparsed = SipMessage::parse(&ok.to_bytes()).expect("valid response");
        assert_eq!(reparsed.content_length(), Ok(Some(FIVE9_SDP.len())));
        assert_eq!(
            reparsed.contact().ok().flatten().map(|c| c.uri),
            Some("sip:18005550100@[2001:db8::10]:5060".into())
        );
    }

    /// xorshift64*: deterministic, so a failure reproduces.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    /// Everything a caller might do with whatever came out; none may panic,
    /// and whatever we accept must print to something we accept again.
    fn exercise(msg: &SipMessage) {
        let _ = (
            msg.call_id(),
            msg.cseq(),
            msg.from(),
            msg.to(),
            msg.vias(),
            msg.top_via(),
        );
        let _ = (
            msg.max_forwards(),
            msg.contact(),
            msg.content_length(),
            msg.request_user(),
        );
        let _ = msg.to_rsip();
        if let Ok(via) = msg.top_via() {
            let source = "192.0.2.1:5060".parse().expect("address");
            let _ = response_target(&via, source, ViaTrust::Admitted);
            let _ = response_target(&via, source, ViaTrust::Unadmitted);
        }
        let mut stamped = msg.clone();
        let _ = stamp_received(&mut stamped, "[2001:db8::1]:5060".parse().expect("address"));
        if msg.is_request() {
            assert!(msg.reply(400, None, Some("t")).is_ok());
        }
        let printed = msg.to_bytes();
        let again = SipMessage::parse(&printed).unwrap_or_else(|e| {
            panic!(
                "{e}: printed form refused:\n{}",
                String::from_utf8_lossy(&printed)
            )
        });
        assert_eq!(again.to_bytes(), printed);
    }

    fn feed(input: &[u8], rng: &mut Rng) {
        if let Ok(Some(msg)) = parse_datagram(input, &FrameLimits::default()) {
            exercise(&msg);
        }
        let mut framer = StreamFramer::new(FrameLimits {
            max_message_size: 4096,
        });
        let mut rest = input;
        while !rest.is_empty() {
            let (chunk, tail) = rest.split_at(1 + rng.below(rest.len()));
            framer.push(chunk);
            rest = tail;
            // Each pop either consumes bytes, errors or waits, so this ends.
            for _ in 0..=input.len() {
                match framer.pop() {
                    Ok(Some(msg)) => exercise(&msg),
                    Ok(None) => break,
                    Err(_) if framer.is_closed() => break,
                    Err(_) => {}
                }
            }
        }
    }

    #[test]
    fn random_and_truncated_input_never_panics() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let invite = five9_invite();
        // Every truncation of a real INVITE.
        for end in 0..invite.len() {
            feed(&invite[..end], &mut rng);
        }
        // Random bytes, biased towards the characters SIP parsers split on.
        const SIP_BYTES: &[u8] =
            b"SIP/2.0 INVITE sip:tel:@[]:;,<>\"\\= \t\r\n\r\n0123456789abcdefvilmt";
        for _ in 0..3000 {
            let len = rng.below(300);
            let bytes: Vec<u8> = (0..len)
                .map(|_| match rng.below(4) {
                    0 => rng.next() as u8,
                    _ => SIP_BYTES[rng.below(SIP_BYTES.len())],
                })
                .collect();
            feed(&bytes, &mut rng);
        }
        // Mutations of the real INVITE: overwrite, insert, delete.
        for _ in 0..1500 {
            let mut bytes = invite.clone();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(bytes.len());
                match rng.below(3) {
                    0 => bytes[at] = SIP_BYTES[rng.below(SIP_BYTES.len())],
                    1 => bytes.insert(at, rng.next() as u8),
                    _ => {
                        bytes.remove(at);
                    }
                }
            }
            feed(&bytes, &mut rng);
        }
    }
}
