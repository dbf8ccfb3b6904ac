//! RFC 4733 telephone-events: payloads read and written, key presses
//! detected exactly once from any packet sequence, the sender's packet
//! train read back as the one press it encodes, and payload-type remapping.
#![no_main]

use std::collections::{BTreeSet, VecDeque};

use libfuzzer_sys::fuzz_target;
use trunkline_fuzz::Input;
use trunkline_media::dtmf::{
    DtmfDetector, END_REPEATS, PayloadTypeMap, TelephoneEvent, char_to_event, event_packets,
    event_to_char,
};
use trunkline_media::rtp::{RtpHeader, RtpPacketMut};
use trunkline_media::sdp::Codec;

/// Presses the detector remembers to swallow late copies of.
const REMEMBERED: usize = 8;

fn payload_round_trip(bytes: &[u8]) {
    let Ok(event) = TelephoneEvent::parse(bytes) else {
        assert!(bytes.len() < 4);
        return;
    };
    let mut out = [0u8; 4];
    assert_eq!(event.write(&mut out), Ok(4));
    // Everything but the reserved R bit comes back.
    assert_eq!(out, [bytes[0], bytes[1] & 0xBF, bytes[2], bytes[3]]);
    assert_eq!(event.digit(), event_to_char(event.event));
    if let Some(key) = event.digit() {
        assert_eq!(char_to_event(key), Some(event.event));
    }
}

/// What the detector's user has seen since the last reset.
#[derive(Default)]
struct Heard {
    /// Timestamps of end packets given to the detector.
    ends: BTreeSet<u32>,
    /// The latest reported presses, fewer than the detector remembers.
    recent: VecDeque<u32>,
}

impl Heard {
    fn take(&mut self, detector: &mut DtmfDetector) {
        while let Some(digit) = detector.poll() {
            assert_eq!(digit.key, event_to_char(digit.event));
            assert!(
                !digit.ended || self.ends.contains(&digit.timestamp),
                "{digit:?}"
            );
            assert!(
                !self.recent.contains(&digit.timestamp),
                "{digit:?} reported twice"
            );
            self.recent.push_back(digit.timestamp);
            if self.recent.len() >= REMEMBERED {
                self.recent.pop_front();
            }
        }
    }
}

/// Any packet sequence: a press is reported once, "ended" only when an end
/// packet of it came, and the key matches the event code. Polled after
/// every packet and flush, as the relay does.
fn detector(input: &mut Input<'_>) {
    let mut detector = DtmfDetector::new();
    let mut heard = Heard::default();
    for _ in 0..64 {
        if input.is_empty() {
            break;
        }
        let timestamp = 160 * u32::from(input.byte() % 16);
        let payload = input.bytes(8);
        match input.below(8) {
            0 => {
                detector.flush();
                heard.take(&mut detector);
            }
            1 => {
                detector.reset();
                heard = Heard::default();
            }
            _ => {}
        }
        if TelephoneEvent::parse(payload).is_ok_and(|e| e.end) {
            heard.ends.insert(timestamp);
        }
        let _ = detector.handle(timestamp, payload);
        heard.take(&mut detector);
    }
}

/// What we send for one press reads back as that press, once.
fn packet_train(input: &mut Input<'_>) {
    let event = input.byte() % 17;
    let volume = input.byte() % 64;
    let duration = input.u16().max(1);
    let interval = input.u16().max(80);
    let packets: Vec<_> = event_packets(event, volume, duration, interval).collect();
    assert!(packets.len() >= END_REPEATS);
    assert!(packets[0].0, "first packet carries the marker");
    assert!(packets[1..].iter().all(|(marker, _)| !marker));
    let (updates, tail) = packets.split_at(packets.len() - END_REPEATS);
    assert!(tail.iter().all(|(_, e)| e.end && e.duration == duration));
    assert!(updates.iter().all(|(_, e)| !e.end && e.duration < duration));
    assert!(
        packets
            .windows(2)
            .all(|w| w[0].1.duration <= w[1].1.duration)
    );

    let mut detector = DtmfDetector::new();
    let mut heard = Vec::new();
    for (_, e) in &packets {
        let mut payload = [0u8; 4];
        e.write(&mut payload).expect("fits");
        detector.handle(48_000, &payload).expect("valid payload");
        heard.extend(std::iter::from_fn(|| detector.poll()));
    }
    detector.flush();
    heard.extend(std::iter::from_fn(|| detector.poll()));
    assert_eq!(heard.len(), 1, "{heard:?}");
    assert_eq!(
        (heard[0].event, heard[0].duration, heard[0].ended),
        (event, duration, true)
    );
}

/// Payload types map within 0-127, and unmapped packets are left alone.
fn remap(input: &mut Input<'_>) {
    let codecs = |input: &mut Input<'_>| -> Vec<Codec> {
        (0..input.below(5))
            .map(|_| match input.below(4) {
                0 => Codec::pcmu(),
                1 => Codec::pcma(),
                2 => Codec::telephone_event(input.byte()),
                _ => Codec::dynamic(input.byte(), "opus", 48000, Some(2)),
            })
            .collect()
    };
    let (incoming, outgoing) = (codecs(input), codecs(input));
    let map = PayloadTypeMap::between(&incoming, &outgoing);
    for pt in 0..=255u8 {
        if let Some(to) = map.get(pt) {
            assert!(pt < 128 && to < 128);
        }
    }
    let mut buf = [0u8; 16];
    let header = RtpHeader {
        payload_type: input.byte() & 0x7F,
        ..RtpHeader::default()
    };
    let len = header.write_packet(&[0xFF; 4], &mut buf).expect("fits");
    let mut packet = RtpPacketMut::parse(&mut buf[..len]).expect("RTP");
    let pt = packet.payload_type();
    let forwarded = map.apply(&mut packet);
    assert_eq!(forwarded, map.get(pt).is_some());
    assert_eq!(packet.payload_type(), map.get(pt).unwrap_or(pt));
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    match input.below(4) {
        0 => payload_round_trip(input.rest()),
        1 => detector(&mut input),
        2 => packet_train(&mut input),
        _ => remap(&mut input),
    }
});
