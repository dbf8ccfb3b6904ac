//! RTP and RTCP from anyone who finds a media port: the packet views, and
//! the relay's per-call engine (latching, DTMF, hold, transcoding, SSRC /
//! sequence rewriting, RTCP termination, sender reports) driven by any
//! sequence of packets, clock steps and re-INVITEs.
//!
//! The engine must never panic, never send anywhere but to an address the
//! SDP or a real source of that leg gave, never grow a packet, and keep one
//! outgoing SSRC per stream of a leg.
#![no_main]

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use libfuzzer_sys::fuzz_target;
use trunkline_fuzz::Input;
use trunkline_media::g711::Law;
use trunkline_media::rtp::{
    PacketKind, RtpHeader, RtpPacket, classify, is_rtcp, is_valid_compound, rtcp_packets,
};
use trunkline_media::sdp::Direction;
use trunkline_relay::fuzzing::FuzzEngine;
use trunkline_relay::{LegCodec, LegId, LegParams, MediaEvent, RelayConfig};

/// Addresses peers may send from: each leg's SDP address, another port on
/// the same host, a NAT's public side, and a stranger.
const SOURCES: [&str; 6] = [
    "192.0.2.10:4000",
    "192.0.2.10:4002",
    "192.0.2.20:5000",
    "192.0.2.20:5002",
    "203.0.113.7:61000",
    "198.51.100.66:7000",
];

fn addr(i: usize) -> SocketAddr {
    SOURCES[i % SOURCES.len()].parse().expect("address")
}

fn direction(input: &mut Input<'_>) -> Direction {
    [
        Direction::SendRecv,
        Direction::SendOnly,
        Direction::RecvOnly,
        Direction::Inactive,
    ][input.below(4)]
}

fn leg_params(input: &mut Input<'_>, home: usize) -> LegParams {
    let law = if input.bool() { Law::Alaw } else { Law::Ulaw };
    let mut codec = LegCodec::g711(law);
    if input.bool() {
        codec.payload_type = 96 + input.below(32) as u8;
    }
    let mut params = LegParams::new(codec);
    params.remote_rtp = match input.below(4) {
        0 => None,
        1 => Some(addr(input.below(SOURCES.len()))),
        _ => Some(addr(home)),
    };
    params.remote_rtcp = input.bool().then(|| addr(input.below(SOURCES.len())));
    params.rtcp_mux = input.bool();
    params.telephone_event = match input.below(3) {
        0 => None,
        1 => Some(101),
        _ => Some(96 + input.below(32) as u8),
    };
    params.direction = direction(input);
    params.signalling_ip = input.bool().then(|| addr(input.below(SOURCES.len())).ip());
    params
}

/// Checks that hold for any buffer: views stay inside it.
fn views(buf: &[u8]) {
    if let Ok(p) = RtpPacket::parse(buf) {
        assert!(p.header_len() + p.payload().len() <= buf.len());
        assert!(p.csrcs().count() <= 15);
        if let Some((_, ext)) = p.extension() {
            assert!(ext.len() <= buf.len());
        }
        assert_ne!(classify(buf), PacketKind::Stun);
    }
    let mut total = 0;
    for p in rtcp_packets(buf) {
        let Ok(p) = p else { break };
        total += p.len();
        let _ = (p.packet_type(), p.count(), p.ssrc(), p.sender_info());
    }
    assert!(total <= buf.len());
}

struct Legs {
    params: [LegParams; 2],
    tap: [bool; 2],
    /// Addresses each leg was told about or heard from.
    known: [BTreeSet<SocketAddr>; 2],
}

impl Legs {
    fn note(&mut self, leg: LegId, p: &LegParams) {
        let i = index(leg);
        self.params[i] = *p;
        self.known[i].extend(p.remote_rtp);
        self.known[i].extend(p.remote_rtcp);
    }
}

fn index(leg: LegId) -> usize {
    match leg {
        LegId::A => 0,
        // C is the agent's stand-in during a warm transfer's brief, which
        // this target does not start: it shares B's slot.
        LegId::B | LegId::C => 1,
    }
}

fn leg_id(i: usize) -> LegId {
    if i == 0 { LegId::A } else { LegId::B }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let a = leg_params(&mut input, 0);
    let b = leg_params(&mut input, 2);
    let b_tap = input.below(4) == 0;
    let config = RelayConfig {
        media_timeout: Duration::from_millis(500),
        learning_window: Duration::from_millis(300),
        relatch_after: Duration::from_millis(200),
        rtcp_interval: Some(Duration::from_millis(100)),
        event_capacity: 8,
    };
    let start = Instant::now();
    let mut now = start;
    let mut engine = FuzzEngine::new(config, (a, false), (b, b_tap), now, 0x5EED);
    let mut legs = Legs {
        params: [a, b],
        tap: [false, b_tap],
        known: [BTreeSet::new(), BTreeSet::new()],
    };
    legs.note(LegId::A, &a);
    legs.note(LegId::B, &b);
    // Outgoing SSRCs seen per leg: the main stream and the events' own.
    let mut ssrcs: HashMap<usize, BTreeSet<u32>> = HashMap::new();
    let mut events = Vec::new();

    for _ in 0..200 {
        if input.is_empty() {
            break;
        }
        now += Duration::from_millis(u64::from(input.byte()) * 4);
        let from = leg_id(input.below(2));
        match input.below(8) {
            0..=4 => {
                let source = addr(input.below(SOURCES.len()));
                let mut buf = [0u8; 512];
                let len = if input.below(4) == 0 {
                    let raw = input.bytes(buf.len());
                    buf[..raw.len()].copy_from_slice(raw);
                    raw.len()
                } else {
                    let p = &legs.params[index(from)];
                    let pt = match input.below(4) {
                        0 => p.codec.payload_type,
                        1 => p.telephone_event.unwrap_or(13),
                        2 => [0, 8, 13, 127][input.below(4)],
                        _ => input.byte() & 0x7F,
                    };
                    let header = RtpHeader {
                        marker: input.bool(),
                        payload_type: pt,
                        sequence: 1000u16.wrapping_add(input.byte().into()),
                        timestamp: 160 * u32::from(input.byte()),
                        ssrc: u32::from(input.below(3) as u8),
                    };
                    let payload = input.bytes(320);
                    header.write_packet(payload, &mut buf).expect("fits")
                };
                views(&buf[..len]);
                if !legs.tap[index(from)] {
                    legs.known[index(from)].insert(source);
                }
                let before =
                    RtpPacket::parse(&buf[..len]).map(|p| (p.header_len(), p.payload().len()));
                let sent = engine.on_rtp(from, source, &mut buf[..len], now, &mut events);
                if let Some(f) = sent {
                    let to = index(from.other());
                    assert_eq!(f.to, from.other());
                    let (header_len, payload_len) = before.expect("only RTP is forwarded");
                    assert_eq!(f.payload, header_len..header_len + payload_len, "same size");
                    let out = RtpPacket::parse(&buf[..len]).expect("still RTP");
                    let dst = &legs.params[to];
                    assert!(
                        out.payload_type() == dst.codec.payload_type
                            || Some(out.payload_type()) == dst.telephone_event,
                        "{} is not a type of the receiving leg",
                        out.payload_type()
                    );
                    let seen = ssrcs.entry(to).or_default();
                    seen.insert(out.ssrc());
                    assert!(seen.len() <= 2, "{seen:?}: one SSRC per outgoing stream");
                    match f.udp {
                        None => assert!(legs.tap[to]),
                        Some(dest) => assert!(
                            legs.known[to].contains(&dest),
                            "sent to {dest}, which leg {to} never named or used"
                        ),
                    }
                }
            }
            5 => {
                let source = addr(input.below(SOURCES.len()));
                let raw = input.bytes(256);
                views(raw);
                legs.known[index(from)].insert(source);
                engine.on_rtcp(from, source, raw, input.bool());
            }
            6 => {
                engine.on_tick(now, &mut events);
                let mut buf = [0u8; 256];
                let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_750_000_000);
                if let Some((dest, len, _)) = engine.rtcp_report(from, now, wall, &mut buf) {
                    let report = &buf[..len];
                    assert!(is_valid_compound(report) && is_rtcp(report));
                    assert_eq!(classify(report), PacketKind::Rtcp);
                    let i = index(from);
                    let near = legs.known[i].iter().any(|k| {
                        k.ip() == dest.ip()
                            && (k.port() == dest.port()
                                || k.port().checked_add(1) == Some(dest.port()))
                    });
                    assert!(near, "report to {dest}, not toward leg {i}'s peer");
                }
            }
            _ => {
                let home = if from == LegId::A { 0 } else { 2 };
                let p = leg_params(&mut input, home);
                legs.note(from, &p);
                engine.update(from, p, now);
            }
        }
        for e in events.drain(..) {
            match e {
                MediaEvent::Latched { leg, addr } => {
                    assert!(legs.known[index(leg)].contains(&addr), "latched to {addr}");
                }
                MediaEvent::Dtmf { digit, .. } => {
                    assert!("0123456789*#ABCD".contains(digit), "{digit}");
                }
                MediaEvent::Timeout { .. } => {}
            }
        }
    }
});
