//! Engine tests on a fake clock: what each peer would receive, and when the
//! owner is told what.

use super::*;
use crate::config::LegCodec;
use trunkline_media::g711;
use trunkline_media::rtp::{RtpHeader, RtpPacket};

const TIMEOUT: Duration = Duration::from_millis(300);

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Five9 at 192.0.2.10:4000 (PCMU, event 101); agent at 192.0.2.20:5000
/// (PCMA, event 96).
fn legs() -> (LegParams, LegParams) {
    let mut a = LegParams::new(LegCodec::g711(Law::Ulaw));
    a.remote_rtp = Some(addr("192.0.2.10:4000"));
    a.telephone_event = Some(101);
    a.rtcp_mux = true;
    let mut b = LegParams::new(LegCodec::g711(Law::Alaw));
    b.remote_rtp = Some(addr("192.0.2.20:5000"));
    b.telephone_event = Some(96);
    (a, b)
}

struct Harness {
    engine: Engine,
    now: Instant,
    events: Vec<MediaEvent>,
}

impl Harness {
    fn new(a: LegParams, b: LegParams) -> Harness {
        let config = RelayConfig {
            media_timeout: TIMEOUT,
            rtcp_interval: Some(Duration::from_millis(100)),
            ..RelayConfig::default()
        };
        let now = Instant::now();
        Harness {
            engine: Engine::new(config, (a, false), (b, false), Arc::default(), now),
            now,
            events: Vec::new(),
        }
    }

    fn wait(&mut self, ms: u64) {
        self.now += Duration::from_millis(ms);
    }

    /// Sends a packet; returns (destination, payload type, sequence, payload)
    /// as the other peer would receive it.
    fn send(
        &mut self,
        from: LegId,
        src: &str,
        pt: u8,
        seq: u16,
        payload: &[u8],
    ) -> Option<(SocketAddr, u8, u16, Vec<u8>)> {
        let (to, p) = self.relay(from, src, pt, seq, payload)?;
        Some((to, p.payload_type, p.sequence, p.payload))
    }

    /// Sends a packet (timestamp `seq * 160`); returns the header the other
    /// peer would receive.
    fn relay(
        &mut self,
        from: LegId,
        src: &str,
        pt: u8,
        seq: u16,
        payload: &[u8],
    ) -> Option<(SocketAddr, Heard)> {
        let mut buf = [0u8; 256];
        let header = RtpHeader {
            payload_type: pt,
            sequence: seq,
            timestamp: u32::from(seq) * 160,
            ssrc: 0xAB,
            marker: false,
        };
        let len = header.write_packet(payload, &mut buf).unwrap();
        let events = &mut self.events;
        let forward = self
            .engine
            .on_rtp(from, addr(src), &mut buf[..len], self.now, &mut |e| {
                events.push(e)
            })?;
        let Route::Udp(to) = forward.route else {
            panic!("UDP legs only")
        };
        let p = RtpPacket::parse(&buf[..len]).unwrap();
        assert_eq!(p.payload(), &buf[forward.payload.clone()]);
        let heard = Heard {
            payload_type: p.payload_type(),
            sequence: p.sequence(),
            timestamp: p.timestamp(),
            marker: p.marker(),
            payload: p.payload().to_vec(),
        };
        Some((to, heard))
    }

    /// Runs housekeeping; returns the events it produced.
    fn tick(&mut self) -> Vec<MediaEvent> {
        self.events.clear();
        let events = &mut self.events;
        self.engine.on_tick(self.now, &mut |e| events.push(e));
        std::mem::take(&mut self.events)
    }

    fn stats(&self) -> crate::StatsSnapshot {
        self.engine.stats().snapshot()
    }
}

/// A relayed packet as its receiver sees it.
#[derive(Debug)]
struct Heard {
    payload_type: u8,
    sequence: u16,
    timestamp: u32,
    marker: bool,
    payload: Vec<u8>,
}

const FIVE9: &str = "192.0.2.10:4000";
const AGENT: &str = "192.0.2.20:5000";

#[test]
fn audio_is_transcoded_to_the_receivers_law_and_type() {
    let (a, b) = legs();
    let mut h = Harness::new(a, b);
    let ulaw: Vec<u8> = (0..160).map(|i| i as u8).collect();
    let (to, pt, _, payload) = h.send(LegId::A, FIVE9, 0, 1, &ulaw).unwrap();
    assert_eq!((to, pt), (addr(AGENT), 8));
    let expected: Vec<u8> = ulaw.iter().map(|&c| g711::ulaw_to_alaw(c)).collect();
    assert_eq!(payload, expected);
    // Five9 switching to PCMA (also answered): no transcoding needed.
    let (_, pt, _, payload) = h.send(LegId::A, FIVE9, 8, 2, &[0xD5; 160]).unwrap();
    assert_eq!((pt, payload), (8, vec![0xD5; 160]));
    assert_eq!(h.stats().transcoded, 1);
    assert_eq!(h.stats().packets_a_to_b, 2);
}

#[test]
fn hold_directions_decide_what_is_relayed() {
    use Direction::*;
    // (Five9's direction, agent's direction, relayed A→B, relayed B→A)
    let cases = [
        (SendRecv, SendRecv, true, true),
        (SendOnly, RecvOnly, true, false), // Five9 holds, plays music
        (RecvOnly, SendOnly, false, true), // agent holds
        (Inactive, Inactive, false, false),
        (SendRecv, Inactive, false, false),
    ];
    for (da, db, a_to_b, b_to_a) in cases {
        let (mut a, mut b) = legs();
        (a.direction, b.direction) = (da, db);
        let mut h = Harness::new(a, b);
        let got_ab = h.send(LegId::A, FIVE9, 0, 1, &[0xFF; 160]).is_some();
        let got_ba = h.send(LegId::B, AGENT, 8, 1, &[0xD5; 160]).is_some();
        assert_eq!((got_ab, got_ba), (a_to_b, b_to_a), "{da:?}/{db:?}");
        let dropped = u64::from(!a_to_b) + u64::from(!b_to_a);
        assert_eq!(h.stats().dropped_hold, dropped, "{da:?}/{db:?}");
    }
}

#[test]
fn key_presses_are_remapped_and_reported_once() {
    let (a, b) = legs();
    let mut h = Harness::new(a, b);
    let mut forwarded = Vec::new();
    for (seq, (_, e)) in (10..).zip(trunkline_media::dtmf::event_packets(5, 10, 800, 160)) {
        let mut payload = [0u8; 4];
        e.write(&mut payload).unwrap();
        // All packets of one press share a timestamp, which `Harness::send`
        // would derive from the sequence: build them here.
        let mut buf = [0u8; 64];
        let header = RtpHeader {
            payload_type: 101,
            sequence: seq,
            timestamp: 4000,
            ssrc: 0xAB,
            marker: false,
        };
        let len = header.write_packet(&payload, &mut buf).unwrap();
        let events = &mut h.events;
        let fwd = h
            .engine
            .on_rtp(LegId::A, addr(FIVE9), &mut buf[..len], h.now, &mut |e| {
                events.push(e)
            })
            .unwrap();
        forwarded.push(RtpPacket::parse(&buf[..len]).unwrap().payload_type());
        assert_eq!(fwd.to, LegId::B);
    }
    assert!(forwarded.iter().all(|&pt| pt == 96), "{forwarded:?}");
    let digits: Vec<_> = h
        .events
        .iter()
        .filter(|e| matches!(e, MediaEvent::Dtmf { .. }))
        .collect();
    assert_eq!(
        digits,
        [&MediaEvent::Dtmf {
            leg: LegId::A,
            digit: '5',
            duration_ms: 100, // 800 ticks at 8 kHz
        }]
    );
}

#[test]
fn unfinished_press_is_reported_after_a_second_of_silence() {
    let (a, b) = legs();
    let mut h = Harness::new(a, b);
    h.send(LegId::A, FIVE9, 101, 1, &[7, 10, 0, 160]).unwrap();
    h.wait(500);
    assert!(
        !h.tick()
            .iter()
            .any(|e| matches!(e, MediaEvent::Dtmf { .. }))
    );
    h.wait(600);
    let events = h.tick();
    assert!(events.contains(&MediaEvent::Dtmf {
        leg: LegId::A,
        digit: '7',
        duration_ms: 20, // as far as seen: one packet of 160 ticks
    }));
}

#[test]
fn timeout_fires_once_and_rearms_when_media_returns() {
    let (a, b) = legs();
    let mut h = Harness::new(a, b);
    h.send(LegId::A, FIVE9, 0, 1, &[0xFF; 160]);
    h.send(LegId::B, AGENT, 8, 1, &[0xD5; 160]);
    h.wait(290);
    h.send(LegId::B, AGENT, 8, 2, &[0xD5; 160]);
    h.wait(10);
    assert_eq!(h.tick(), [MediaEvent::Timeout { leg: LegId::A }]);
    h.wait(100);
    assert_eq!(h.tick(), [], "B is 110 ms silent, A already reported");
    h.send(LegId::A, FIVE9, 0, 2, &[0xFF; 160]);
    h.wait(200);
    assert_eq!(h.tick(), [MediaEvent::Timeout { leg: LegId::B }]);
    h.wait(100);
    assert_eq!(h.tick(), [MediaEvent::Timeout { leg: LegId::A }]);
    assert_eq!(h.stats().timeouts, 3);
}

#[test]
fn hold_suppresses_the_timeout_and_resume_restarts_the_clock() {
    let (a, b) = legs();
    let mut h = Harness::new(a, b);
    let mut held = b;
    held.direction = Direction::SendOnly;
    h.engine.update(LegId::B, held, h.now);
    for _ in 0..10 {
        h.wait(TIMEOUT.as_millis() as u64);
        assert_eq!(h.tick(), [], "no media is expected on hold");
    }
    h.engine.update(LegId::B, b, h.now);
    h.wait(299);
    assert_eq!(h.tick(), []);
    h.wait(1);
    assert_eq!(h.tick().len(), 2, "both legs silent for a full period");
}

#[test]
fn re_invite_keeps_the_outgoing_numbering() {
    let (a, b) = legs();
    let mut h = Harness::new(a, b);
    let (_, _, first, _) = h.send(LegId::A, FIVE9, 0, 100, &[0xFF; 160]).unwrap();
    h.wait(20);
    // Five9 re-INVITEs to PCMA and restarts its sequence numbers.
    let mut pcma = a;
    pcma.codec = LegCodec::g711(Law::Alaw);
    h.engine.update(LegId::A, pcma, h.now);
    let (_, pt, next, _) = h.send(LegId::A, FIVE9, 8, 5, &[0xD5; 160]).unwrap();
    assert_eq!((pt, next), (8, first.wrapping_add(1)));
}

#[test]
fn strangers_and_unknown_types_are_dropped_and_counted() {
    let (a, b) = legs();
    let mut h = Harness::new(a, b);
    // Comfort noise (13) cannot latch, and is not relayed.
    assert!(
        h.send(LegId::A, "203.0.113.5:999", 13, 1, &[0x40])
            .is_none()
    );
    assert_eq!(h.stats().dropped_source, 1);
    h.send(LegId::A, FIVE9, 0, 2, &[0xFF; 160]).unwrap();
    assert!(h.send(LegId::A, FIVE9, 13, 3, &[0x40]).is_none());
    assert_eq!(h.stats().dropped_malformed, 1);
    assert!(
        h.send(LegId::A, "203.0.113.5:999", 0, 4, &[0xFF; 160])
            .is_none()
    );
    assert_eq!(h.stats().dropped_source, 2);
    assert_eq!(h.stats().latches, 1);
    let mut garbage = [0x80u8, 0, 0];
    let events = &mut h.events;
    let none = h
        .engine
        .on_rtp(LegId::A, addr(FIVE9), &mut garbage, h.now, &mut |e| {
            events.push(e)
        });
    assert!(none.is_none());
    assert_eq!(h.stats().dropped_malformed, 2);
}

#[test]
fn rtcp_is_terminated_and_our_reports_follow_the_stream() {
    let (a, b) = legs();
    let mut h = Harness::new(a, b);
    let mut buf = [0u8; 256];
    let wall = SystemTime::now();
    h.wait(200);
    assert!(
        h.engine
            .rtcp_report(LegId::B, h.now, wall, &mut buf)
            .is_none(),
        "nothing sent yet: no sender report"
    );
    h.send(LegId::A, FIVE9, 0, 1, &[0xFF; 160]).unwrap();
    h.wait(200);
    let (to, len, via_rtcp) = h
        .engine
        .rtcp_report(LegId::B, h.now, wall, &mut buf)
        .unwrap();
    // The agent did not agree to rtcp-mux: RTP port + 1, from our RTCP port.
    assert_eq!((to, via_rtcp), (addr("192.0.2.20:5001"), true));
    let sr = trunkline_media::rtp::rtcp_packets(&buf[..len])
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(
        sr.sender_info()
            .map(|(_, packets, octets)| (packets, octets)),
        Some((1, 160))
    );
    // Incoming reports: from the peer's IP counted, from others dropped.
    let rr = [0x80, 201, 0, 1, 0, 0, 0, 9];
    h.engine
        .on_rtcp(LegId::A, addr("192.0.2.10:4001"), &rr, false);
    h.engine
        .on_rtcp(LegId::A, addr("203.0.113.5:4001"), &rr, false);
    h.engine.on_rtcp(LegId::A, addr(FIVE9), &rr[..6], false);
    let stats = h.stats();
    assert_eq!(
        (
            stats.rtcp_received,
            stats.dropped_source,
            stats.dropped_malformed
        ),
        (1, 1, 1)
    );
}

#[test]
fn no_timeout_before_the_agent_has_an_address() {
    let (a, b) = legs();
    let mut ringing = b;
    ringing.remote_rtp = None;
    let mut h = Harness::new(a, ringing);
    for _ in 0..5 {
        h.wait(TIMEOUT.as_millis() as u64);
        assert_eq!(h.tick(), [], "Five9 may be silent while the agent rings");
    }
    h.engine.update(LegId::B, b, h.now);
    h.wait(TIMEOUT.as_millis() as u64);
    assert_eq!(h.tick().len(), 2, "answered and still silent");
}

#[test]
fn audio_under_another_ssrc_does_not_repeat_a_press() {
    // Some peers stream tones and telephone-events under different SSRCs
    // from one socket; the audio in between must not make the press count
    // again (it once gave `22222222` for one key), and both streams reach
    // the agent: neither replaces the other in our outgoing numbering.
    let (a, b) = legs();
    let mut h = Harness::new(a, b);
    let mut forwarded: Vec<(u8, u32, u16)> = Vec::new();
    for (seq, (_, e)) in (10..).zip(trunkline_media::dtmf::event_packets(2, 10, 800, 160)) {
        let mut payload = [0u8; 4];
        e.write(&mut payload).unwrap();
        let packets = [
            (101, 0xAB, 4000, payload.to_vec()),
            (0, 0xCD, 9000 + u32::from(seq) * 160, vec![0xFF; 160]),
        ];
        for (pt, ssrc, timestamp, body) in packets {
            let mut buf = [0u8; 256];
            let header = RtpHeader {
                payload_type: pt,
                sequence: seq,
                timestamp,
                ssrc,
                marker: false,
            };
            let len = header.write_packet(&body, &mut buf).unwrap();
            let events = &mut h.events;
            let sent = h
                .engine
                .on_rtp(LegId::A, addr(FIVE9), &mut buf[..len], h.now, &mut |e| {
                    events.push(e)
                });
            if sent.is_some() {
                let p = RtpPacket::parse(&buf[..len]).unwrap();
                forwarded.push((p.payload_type(), p.ssrc(), p.sequence()));
            }
        }
        h.now += Duration::from_millis(20);
    }
    let events_out: Vec<_> = forwarded.iter().filter(|p| p.0 == 96).collect();
    let audio_out: Vec<_> = forwarded.iter().filter(|p| p.0 != 96).collect();
    let sent = trunkline_media::dtmf::event_packets(2, 10, 800, 160).count();
    assert_eq!(
        events_out.len(),
        sent,
        "every event packet reaches the agent"
    );
    assert_eq!(audio_out.len(), sent, "and every audio packet");
    // Each stream keeps one SSRC and consecutive numbering; the two differ.
    // (The first event came before any audio, so it opened the main stream.)
    let main_ssrc = audio_out[0].1;
    assert!(audio_out.iter().all(|p| p.1 == main_ssrc));
    let event_ssrc = events_out[1].1;
    assert_ne!(event_ssrc, main_ssrc);
    assert!(events_out[1..].iter().all(|p| p.1 == event_ssrc));
    for pair in events_out[1..].windows(2) {
        assert_eq!(pair[1].2, pair[0].2.wrapping_add(1), "{events_out:?}");
    }
    for pair in audio_out.windows(2) {
        assert_eq!(pair[1].2, pair[0].2.wrapping_add(1), "{audio_out:?}");
    }
    // Our sender reports toward the agent count the main stream only.
    assert_eq!(
        h.engine.legs[LegId::B.index()].sent_packets as usize,
        audio_out.len() + 1
    );
    let mut seen = std::mem::take(&mut h.events);
    h.wait(1500);
    seen.extend(h.tick());
    let digits: Vec<_> = seen
        .iter()
        .filter(|e| matches!(e, MediaEvent::Dtmf { .. }))
        .collect();
    assert_eq!(
        digits,
        [&MediaEvent::Dtmf {
            leg: LegId::A,
            digit: '2',
            duration_ms: 100,
        }],
        "{seen:?}"
    );
}

#[test]
fn hold_drops_leave_no_sequence_gap_and_resume_starts_a_talkspurt() {
    let (a, b) = legs();
    let mut h = Harness::new(a, b);
    let mut last = None;
    for seq in 1000..1010u16 {
        last = h
            .relay(LegId::B, AGENT, 8, seq, &[0xD5; 160])
            .map(|(_, p)| p);
        h.wait(20);
    }
    let last = last.unwrap();
    // Five9 holds (sendonly) and the agent is not re-INVITEd: it keeps
    // sending, 306 packets over 6.12 s, and the relay drops them all.
    let mut held = a;
    held.direction = Direction::SendOnly;
    h.engine.update(LegId::A, held, h.now);
    for seq in 1010..1316u16 {
        assert!(h.relay(LegId::B, AGENT, 8, seq, &[0xD5; 160]).is_none());
        h.wait(20);
    }
    assert_eq!(h.stats().dropped_hold, 306);
    h.engine.update(LegId::A, a, h.now);
    let (_, resumed) = h.relay(LegId::B, AGENT, 8, 1316, &[0xD5; 160]).unwrap();
    assert_eq!(
        resumed.sequence,
        last.sequence.wrapping_add(1),
        "Five9 would count 306 packets lost"
    );
    assert!(resumed.marker, "a new talkspurt after the hold");
    // Timestamps follow real time: 307 frames of 20 ms since the last one.
    assert_eq!(resumed.timestamp.wrapping_sub(last.timestamp), 307 * 160);
    h.wait(20);
    let (_, next) = h.relay(LegId::B, AGENT, 8, 1317, &[0xD5; 160]).unwrap();
    assert_eq!(next.sequence, resumed.sequence.wrapping_add(1));
    assert!(!next.marker);
    assert_eq!(next.timestamp.wrapping_sub(resumed.timestamp), 160);
}

#[test]
fn an_unrelayable_packet_is_no_loss_for_the_receiver() {
    let (a, b) = legs();
    let mut h = Harness::new(a, b);
    let (_, first) = h.relay(LegId::A, FIVE9, 0, 50, &[0xFF; 160]).unwrap();
    h.wait(20);
    // Comfort noise was not negotiated: dropped, not a hole in our stream.
    assert!(h.relay(LegId::A, FIVE9, 13, 51, &[0x40]).is_none());
    h.wait(20);
    let (_, next) = h.relay(LegId::A, FIVE9, 0, 52, &[0xFF; 160]).unwrap();
    assert_eq!(next.sequence, first.sequence.wrapping_add(1));
    assert!(next.marker);
    assert_eq!(next.timestamp.wrapping_sub(first.timestamp), 320);
}

#[test]
fn rtcp_of_every_type_is_rtcp_not_malformed() {
    let (a, b) = legs();
    let mut h = Harness::new(a, b);
    h.send(LegId::A, FIVE9, 0, 1, &[0xFF; 160]).unwrap();
    // baresip's lone APP ("PING", no data), then compounds led by APP, by
    // PSFB (picture loss) and by XR, and an SR-led one for comparison.
    let app = [0x80, 204, 0, 2, 0, 0, 0, 7, b'P', b'I', b'N', b'G'];
    let pli = [0x81, 206, 0, 2, 0, 0, 0, 7, 0, 0, 0, 9];
    let xr = [0x80, 207, 0, 1, 0, 0, 0, 7];
    let sdes = [0x81, 202, 0, 2, 0, 0, 0, 7, 0, 0, 0, 0];
    let rr = [0x80, 201, 0, 1, 0, 0, 0, 7];
    let datagrams: [Vec<u8>; 5] = [
        app.to_vec(),
        [&app[..], &sdes[..]].concat(),
        [&pli[..], &sdes[..]].concat(),
        [&xr[..], &rr[..]].concat(),
        [&rr[..], &sdes[..], &app[..]].concat(),
    ];
    for d in &datagrams {
        h.engine.on_rtcp(LegId::A, addr(FIVE9), d, false);
    }
    let stats = h.stats();
    assert_eq!((stats.rtcp_received, stats.dropped_malformed), (5, 0));
    // An APP whose length runs past the datagram is still malformed.
    h.engine.on_rtcp(LegId::A, addr(FIVE9), &app[..10], false);
    assert_eq!(h.stats().dropped_malformed, 1);
}

#[test]
fn a_replaced_leg_takes_the_new_peer_and_the_other_side_hears_one_stream() {
    let (a, b) = legs();
    let mut h = Harness::new(a, b);
    let (_, _, first, _) = h.send(LegId::B, AGENT, 8, 700, &[0xD5; 160]).unwrap();
    h.send(LegId::A, FIVE9, 0, 10, &[0xFF; 160])
        .expect("to the agent");
    h.wait(20);

    // A transfer target (PCMU, event 101) in place of the agent.
    const HUMAN: &str = "198.51.100.9:7000";
    let mut target = LegParams::new(LegCodec::g711(Law::Ulaw));
    target.remote_rtp = Some(addr(HUMAN));
    target.telephone_event = Some(101);
    h.engine.replace(LegId::B, target, false, h.now);

    assert!(
        h.send(LegId::B, AGENT, 8, 701, &[0xD5; 160]).is_none(),
        "the old agent is a stranger now"
    );
    let (to, heard) = h
        .relay(LegId::B, HUMAN, 0, 3, &[0xFF; 160])
        .expect("the target reaches the caller");
    assert_eq!(to, addr(FIVE9));
    assert_eq!(heard.payload_type, 0, "Five9's PCMU");
    assert_eq!(heard.payload, [0xFF; 160], "same law: passed through");
    assert_eq!(
        heard.sequence,
        first.wrapping_add(1),
        "our numbering toward the caller goes on"
    );
    assert!(heard.marker, "a new talkspurt");
    let (to, pt, _, payload) = h
        .send(LegId::A, FIVE9, 0, 11, &[0xFF; 160])
        .expect("the caller reaches the target");
    assert_eq!((to, pt), (addr(HUMAN), 0));
    assert_eq!(payload, [0xFF; 160], "no transcoding to a PCMU target");
}

/// A transfer target (PCMU, event 101) at 198.51.100.9:7000.
const HUMAN: &str = "198.51.100.9:7000";

fn human() -> LegParams {
    let mut p = LegParams::new(LegCodec::g711(Law::Ulaw));
    p.remote_rtp = Some(addr(HUMAN));
    p.telephone_event = Some(101);
    p
}

impl Harness {
    /// The hold packet due now, as the caller would receive it.
    fn hold(&mut self) -> Option<(SocketAddr, u8, u16, u32, Vec<u8>)> {
        let mut buf = [0u8; 256];
        let (forward, len) = self.engine.hold_packet(self.now, &mut buf)?;
        let Route::Udp(to) = forward.route else {
            panic!("UDP legs only")
        };
        let p = RtpPacket::parse(&buf[..len]).unwrap();
        Some((
            to,
            p.payload_type(),
            p.sequence(),
            p.ssrc(),
            p.payload().to_vec(),
        ))
    }
}

#[test]
fn a_brief_puts_the_caller_on_hold_audio_and_the_agent_with_the_target() {
    let (a, b) = legs();
    let mut h = Harness::new(a, b);
    let (_, _, first, _) = h.send(LegId::B, AGENT, 8, 700, &[0xD5; 160]).unwrap();
    h.send(LegId::A, FIVE9, 0, 10, &[0xFF; 160]).unwrap();
    assert!(h.hold().is_none(), "no hold audio outside a brief");
    h.wait(20);

    h.engine.brief(human(), false, h.now);
    assert!(h.engine.holding());
    // The caller hears our tone on its own codec, our stream going on.
    let (to, pt, seq, _, tone) = h.hold().expect("hold audio for the caller");
    assert_eq!((to, pt), (addr(FIVE9), 0));
    assert_eq!(seq, first.wrapping_add(1), "the caller's stream goes on");
    let mut samples = [0i16; 160];
    g711::decode_ulaw(&tone, &mut samples);
    let peak = samples.iter().map(|s| s.unsigned_abs()).max().unwrap();
    assert!((2000..8000).contains(&peak), "an audible tone: peak {peak}");
    let (_, _, next, _, again) = h.hold().unwrap();
    assert_eq!(
        (next, again),
        (seq.wrapping_add(1), tone.clone()),
        "frames join"
    );
    // What the caller says goes nowhere; agent and target hear each other.
    assert!(h.send(LegId::A, FIVE9, 0, 11, &[0xFF; 160]).is_none());
    let (to, pt, _, _) = h
        .send(LegId::B, AGENT, 8, 701, &[0xD5; 160])
        .expect("to the target");
    assert_eq!(
        (to, pt),
        (addr(HUMAN), 0),
        "transcoded to the target's PCMU"
    );
    let (to, pt, _, _) = h
        .send(LegId::C, HUMAN, 0, 1, &[0xFF; 160])
        .expect("to the agent");
    assert_eq!((to, pt), (addr(AGENT), 8));

    // Completed: the caller and the target; the agent is a stranger.
    let hold_seq = h.hold().unwrap().2;
    h.engine.complete(h.now);
    assert!(!h.engine.holding() && h.hold().is_none());
    let (to, _, seq, _) = h
        .send(LegId::B, HUMAN, 0, 2, &[0xFF; 160])
        .expect("to the caller");
    assert_eq!(to, addr(FIVE9));
    assert_eq!(
        seq,
        hold_seq.wrapping_add(1),
        "one stream toward the caller"
    );
    assert!(h.send(LegId::B, AGENT, 8, 702, &[0xD5; 160]).is_none());
    let (to, pt, _, _) = h
        .send(LegId::A, FIVE9, 0, 12, &[0xFF; 160])
        .expect("to the target");
    assert_eq!((to, pt), (addr(HUMAN), 0));
}

#[test]
fn an_unbrief_returns_the_caller_to_the_agent_and_drops_the_target() {
    let (a, b) = legs();
    let mut h = Harness::new(a, b);
    h.engine.brief(human(), false, h.now);
    h.send(LegId::C, HUMAN, 0, 1, &[0xFF; 160])
        .expect("to the agent");
    h.engine.unbrief(h.now);
    assert!(h.hold().is_none());
    assert!(
        h.send(LegId::C, HUMAN, 0, 2, &[0xFF; 160]).is_none(),
        "the target is gone"
    );
    let (to, _, _, _) = h
        .send(LegId::A, FIVE9, 0, 10, &[0xFF; 160])
        .expect("to the agent");
    assert_eq!(to, addr(AGENT));
    let (to, _, _, _) = h
        .send(LegId::B, AGENT, 8, 9, &[0xD5; 160])
        .expect("to the caller");
    assert_eq!(to, addr(FIVE9));
}

impl Harness {
    /// The generated key-press packet toward `to` due now: (marker,
    /// sequence, timestamp, event) as its peer would receive it.
    fn digit(
        &mut self,
        to: LegId,
    ) -> Option<(bool, u16, u32, trunkline_media::dtmf::TelephoneEvent)> {
        let mut buf = [0u8; 256];
        let (forward, len) = self.engine.digit_packet(to, self.now, &mut buf)?;
        assert_eq!(forward.to, to);
        let p = RtpPacket::parse(&buf[..len]).unwrap();
        assert_eq!(
            Some(p.payload_type()),
            self.engine.legs[to.index()].params.telephone_event
        );
        let e = trunkline_media::dtmf::TelephoneEvent::parse(p.payload()).unwrap();
        Some((p.marker(), p.sequence(), p.timestamp(), e))
    }
}

#[test]
fn key_presses_toward_a_leg_are_100_ms_events_with_three_end_packets_and_pauses() {
    let (a, b) = legs();
    let mut h = Harness::new(a, b);
    let (_, _, last_audio, _) = h.send(LegId::B, AGENT, 8, 700, &[0xD5; 160]).unwrap();
    h.engine
        .send_digits(LegId::A, "1#")
        .expect("Five9 takes telephone-event 101");
    assert!(h.engine.needs_clock());
    // The agent's audio is withheld while the keys play.
    assert!(h.send(LegId::B, AGENT, 8, 701, &[0xD5; 160]).is_none());

    let mut seen = Vec::new();
    for _ in 0..40 {
        h.wait(20);
        seen.push(h.digit(LegId::A));
    }
    let packets: Vec<_> = seen.iter().flatten().collect();
    assert_eq!(packets.len(), 14, "7 packets per key: {seen:?}");
    for key in packets.chunks(7) {
        let (marker, _, ts, first) = key[0];
        assert!(*marker && !first.end && first.duration == 160, "{key:?}");
        assert!(
            key.iter().all(|(_, _, t, _)| t == ts),
            "one timestamp per key"
        );
        let durations: Vec<u16> = key.iter().map(|(_, _, _, e)| e.duration).collect();
        assert_eq!(durations, [160, 320, 480, 640, 800, 800, 800]);
        assert_eq!(key.iter().filter(|(_, _, _, e)| e.end).count(), 3);
    }
    assert_eq!(
        (packets[0].3.event, packets[7].3.event),
        (1, 11),
        "1 then #"
    );
    assert_eq!(
        packets[0].1,
        last_audio.wrapping_add(1),
        "our stream goes on"
    );
    let seqs: Vec<u16> = packets.iter().map(|p| p.1).collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0].wrapping_add(1)),
        "{seqs:?}"
    );
    assert_eq!(
        packets[7].2.wrapping_sub(packets[0].2),
        10 * 160,
        "a 60 ms pause between keys"
    );
    // Done: the clock stops and the agent is heard again.
    assert!(!h.engine.needs_clock(), "{seen:?}");
    assert!(h.send(LegId::B, AGENT, 8, 702, &[0xD5; 160]).is_some());
}

#[test]
fn key_presses_need_telephone_event_real_keys_and_a_bounded_queue() {
    let (a, mut b) = legs();
    b.telephone_event = None;
    let mut h = Harness::new(a, b);
    assert_eq!(
        h.engine.send_digits(LegId::B, "1"),
        Err(DigitError::NoTelephoneEvent)
    );
    assert_eq!(
        h.engine.send_digits(LegId::A, "1x"),
        Err(DigitError::NotAKey('x'))
    );
    assert!(!h.engine.needs_clock(), "nothing queued by a refusal");
    let many = "1".repeat(crate::MAX_QUEUED_DIGITS + 1);
    assert_eq!(
        h.engine.send_digits(LegId::A, &many),
        Err(DigitError::TooMany)
    );
    assert!(!h.engine.needs_clock());
}
