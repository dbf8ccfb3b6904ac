//! The relay between real UDP peers on 127.0.0.1: what a caller and an agent
//! would hear, and what the B2BUA would be told.

mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{Peer, Received, dominant_frequency, events_within, sine, snr_db};
use tokio::sync::mpsc;
use trunkline_media::dtmf::event_packets;
use trunkline_media::g711::Law;
use trunkline_media::sdp::Direction;
use trunkline_relay::{
    Leg, LegCodec, LegId, LegParams, MediaEvent, MediaSession, PortPool, RelayConfig, RelayStats,
    RtcpMode, TapFrame, tap,
};

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const WAIT: Duration = Duration::from_secs(1);

fn params(law: Law, remote: SocketAddr) -> LegParams {
    let mut p = LegParams::new(LegCodec::g711(law));
    p.remote_rtp = Some(remote);
    p.rtcp_mux = true;
    p
}

fn config(media_timeout_ms: u64) -> RelayConfig {
    RelayConfig {
        media_timeout: Duration::from_millis(media_timeout_ms),
        ..RelayConfig::default()
    }
}

/// A running session and the relay's address on each leg.
struct Call {
    session: MediaSession,
    events: mpsc::Receiver<MediaEvent>,
    /// Where leg A's peer sends (the port in our answer to Five9).
    relay_a: SocketAddr,
    /// Where leg B's peer sends (the port in our offer to the agent).
    relay_b: SocketAddr,
}

/// Starts a call on ports `base..base+9` (pools skip ports already in use);
/// the pool itself may go: allocations keep their ports until dropped.
fn start(base: u16, config: &RelayConfig, a: LegParams, b: LegParams) -> Call {
    let pool = PortPool::new(base..=base + 9).unwrap();
    let ports_a = pool.allocate(LOCAL, RtcpMode::Mux).unwrap();
    let ports_b = pool.allocate(LOCAL, RtcpMode::Separate).unwrap();
    let (relay_a, relay_b) = (ports_a.rtp_addr(), ports_b.rtp_addr());
    let (session, events) = MediaSession::start(
        config,
        Leg::udp(ports_a, a),
        Leg::udp(ports_b, b),
        Arc::new(RelayStats::new()),
    )
    .unwrap();
    Call {
        session,
        events,
        relay_a,
        relay_b,
    }
}

fn decode(law: Law, packets: &[Received]) -> Vec<i16> {
    let codes: Vec<u8> = packets.iter().flat_map(|p| p.payload.clone()).collect();
    let mut out = vec![0i16; codes.len()];
    law.decode(&codes, &mut out);
    out
}

fn assert_consecutive(packets: &[Received]) {
    for pair in packets.windows(2) {
        assert_eq!(
            pair[1].sequence,
            pair[0].sequence.wrapping_add(1),
            "{pair:?}"
        );
        assert_eq!(pair[1].ssrc, pair[0].ssrc, "one outgoing SSRC per leg");
    }
}

#[tokio::test]
async fn pcmu_tone_reaches_a_pcma_agent_as_the_same_tone() {
    let (mut five9, agent) = (Peer::bind("127.0.0.1").await, Peer::bind("127.0.0.1").await);
    let call = start(
        33000,
        &config(5000),
        params(Law::Ulaw, five9.addr()),
        params(Law::Alaw, agent.addr()),
    );
    let tone = sine(1000.0, 16384.0, 160 * 25);
    for frame in tone.chunks(160) {
        let mut ulaw = [0u8; 160];
        Law::Ulaw.encode(frame, &mut ulaw);
        five9.send(call.relay_a, 0, &ulaw).await;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let got = agent.recv_n(25, WAIT).await;
    assert_eq!(got.len(), 25);
    assert!(
        got.iter()
            .all(|p| p.payload_type == 8 && p.from == call.relay_b)
    );
    assert_consecutive(&got);
    let heard = decode(Law::Alaw, &got);
    let f = dominant_frequency(&heard);
    assert!((f - 1000.0).abs() <= 10.0, "agent heard {f} Hz");
    let snr = snr_db(&tone, &heard);
    assert!(snr > 30.0, "SNR {snr:.1} dB");
    let stats = call.session.stop().await;
    assert_eq!((stats.packets_a_to_b, stats.transcoded), (25, 25));
}

#[tokio::test]
async fn equal_codecs_pass_through_byte_exact() {
    let (mut five9, mut agent) = (Peer::bind("127.0.0.1").await, Peer::bind("127.0.0.1").await);
    let call = start(
        33020,
        &config(5000),
        params(Law::Ulaw, five9.addr()),
        params(Law::Ulaw, agent.addr()),
    );
    let payloads: Vec<Vec<u8>> = (0..10u8)
        .map(|i| (0..160).map(|j: u8| j.wrapping_mul(31) ^ i).collect())
        .collect();
    for p in &payloads {
        five9.send(call.relay_a, 0, p).await;
        agent.send(call.relay_b, 0, p).await;
    }
    let at_agent = agent.recv_n(10, WAIT).await;
    let at_five9 = five9.recv_n(10, WAIT).await;
    for got in [&at_agent, &at_five9] {
        let bytes: Vec<_> = got.iter().map(|p| p.payload.clone()).collect();
        assert_eq!(bytes, payloads);
        assert_consecutive(got);
    }
    let stats = call.session.stop().await;
    assert_eq!(stats.transcoded, 0);
    assert_eq!(stats.bytes_a_to_b, 10 * 172);
}

#[tokio::test]
async fn latches_to_the_port_the_agent_really_sends_from() {
    let mut five9 = Peer::bind("127.0.0.1").await;
    // The agent's SDP names an address it does not send from (behind a NAT).
    let decoy = Peer::bind("127.0.0.2").await;
    let mut agent = Peer::bind("127.0.0.1").await;
    let mut call = start(
        33040,
        &config(5000),
        params(Law::Ulaw, five9.addr()),
        params(Law::Ulaw, decoy.addr()),
    );
    five9.send(call.relay_a, 0, &[1; 160]).await;
    assert!(
        decoy.recv(WAIT).await.is_some(),
        "before latching: the SDP address"
    );
    agent.send(call.relay_b, 0, &[2; 160]).await;
    assert_eq!(
        five9.recv(WAIT).await.map(|p| p.payload),
        Some(vec![2; 160])
    );
    let events = events_within(&mut call.events, Duration::from_millis(100)).await;
    assert!(events.contains(&MediaEvent::Latched {
        leg: LegId::B,
        addr: agent.addr()
    }));
    five9.send(call.relay_a, 0, &[3; 160]).await;
    assert_eq!(
        agent.recv(WAIT).await.map(|p| p.payload),
        Some(vec![3; 160])
    );
    assert!(decoy.recv(Duration::from_millis(100)).await.is_none());
    drop(call.session);
}

#[tokio::test]
async fn strangers_are_ignored_after_latching() {
    let (mut five9, mut agent) = (Peer::bind("127.0.0.1").await, Peer::bind("127.0.0.1").await);
    let mut strangers = [Peer::bind("127.0.0.1").await, Peer::bind("127.0.0.2").await];
    let call = start(
        33060,
        &config(5000),
        params(Law::Ulaw, five9.addr()),
        params(Law::Ulaw, agent.addr()),
    );
    five9.send(call.relay_a, 0, &[1; 160]).await;
    assert!(agent.recv(WAIT).await.is_some());
    for s in &mut strangers {
        s.send(call.relay_a, 0, &[0xEE; 160]).await;
    }
    five9.send(call.relay_a, 0, &[2; 160]).await;
    let got = agent.recv(WAIT).await.unwrap();
    assert_eq!(
        got.payload,
        vec![2; 160],
        "injected audio never reaches the agent"
    );
    agent.send(call.relay_b, 0, &[3; 160]).await;
    assert!(
        five9.recv(WAIT).await.is_some(),
        "replies still reach the caller"
    );
    for s in &strangers {
        assert!(
            s.recv(Duration::from_millis(50)).await.is_none(),
            "no audio stolen"
        );
    }
    assert_eq!(call.session.stop().await.dropped_source, 2);
}

#[tokio::test]
async fn hold_stops_forwarding_and_suppresses_the_timeout() {
    let (mut five9, mut agent) = (Peer::bind("127.0.0.1").await, Peer::bind("127.0.0.1").await);
    let (a, b) = (
        params(Law::Ulaw, five9.addr()),
        params(Law::Alaw, agent.addr()),
    );
    let mut call = start(33080, &config(300), a, b);
    // Five9 puts the agent on hold (sendonly); the agent answers recvonly.
    let (mut held_a, mut held_b) = (a, b);
    held_a.direction = Direction::SendOnly;
    held_b.direction = Direction::RecvOnly;
    call.session.update(LegId::A, held_a).unwrap();
    call.session.update(LegId::B, held_b).unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    five9.send(call.relay_a, 0, &[0xFF; 160]).await; // music on hold
    assert!(
        agent.recv(WAIT).await.is_some(),
        "music on hold reaches the agent"
    );
    agent.send(call.relay_b, 8, &[0xD5; 160]).await;
    assert!(
        five9.recv(Duration::from_millis(200)).await.is_none(),
        "held: nothing back"
    );
    // Silence for more than twice the timeout: no complaint while on hold.
    let events = events_within(&mut call.events, Duration::from_millis(700)).await;
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, MediaEvent::Timeout { .. })),
        "{events:?}"
    );
    // Resumed, and still silent: now it is a timeout.
    let resumed = Instant::now();
    call.session.update(LegId::A, a).unwrap();
    call.session.update(LegId::B, b).unwrap();
    let events = events_within(&mut call.events, Duration::from_millis(600)).await;
    assert!(
        events.contains(&MediaEvent::Timeout { leg: LegId::A }),
        "{events:?}"
    );
    assert!(resumed.elapsed() >= Duration::from_millis(300));
    let stats = call.session.stop().await;
    assert_eq!(stats.dropped_hold, 1);
}

#[tokio::test]
async fn media_timeout_fires_for_the_silent_leg_only() {
    let (mut five9, mut agent) = (Peer::bind("127.0.0.1").await, Peer::bind("127.0.0.1").await);
    let mut call = start(
        33100,
        &config(300),
        params(Law::Ulaw, five9.addr()),
        params(Law::Ulaw, agent.addr()),
    );
    let started = Instant::now();
    five9.send(call.relay_a, 0, &[0xFF; 160]).await;
    let mut timed_out = None;
    // The agent keeps talking for 700 ms; Five9 went silent after one packet.
    for _ in 0..35 {
        agent.send(call.relay_b, 0, &[0xFF; 160]).await;
        while let Ok(event) = call.events.try_recv() {
            if let MediaEvent::Timeout { leg } = event {
                assert_eq!(leg, LegId::A, "the talking agent is not silent");
                timed_out.get_or_insert(started.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let after = timed_out.expect("no timeout within 700 ms");
    assert!(after >= Duration::from_millis(300), "fired after {after:?}");
    let stats = call.session.stop().await;
    assert_eq!(stats.timeouts, 1, "reported once");
}

#[tokio::test]
async fn dtmf_is_reported_once_per_press_and_remapped() {
    let (mut five9, agent) = (Peer::bind("127.0.0.1").await, Peer::bind("127.0.0.1").await);
    let (mut a, mut b) = (
        params(Law::Ulaw, five9.addr()),
        params(Law::Ulaw, agent.addr()),
    );
    a.telephone_event = Some(101);
    b.telephone_event = Some(96);
    let mut call = start(33120, &config(5000), a, b);
    let mut sent = 0;
    for (i, key) in [5u8, 11].into_iter().enumerate() {
        let ts = 16_000 * (i as u32 + 1);
        for (_, event) in event_packets(key, 10, 800, 160) {
            let mut payload = [0u8; 4];
            event.write(&mut payload).unwrap();
            five9.send_at(call.relay_a, 101, ts, &payload).await;
            sent += 1;
        }
    }
    let got = agent.recv_n(sent, WAIT).await;
    assert_eq!(
        got.len(),
        sent,
        "every packet is forwarded (3 end copies each)"
    );
    assert!(got.iter().all(|p| p.payload_type == 96));
    let digits: Vec<_> = events_within(&mut call.events, Duration::from_millis(200))
        .await
        .into_iter()
        .filter_map(|e| match e {
            MediaEvent::Dtmf {
                leg,
                digit,
                duration_ms,
            } => Some((leg, digit, duration_ms)),
            _ => None,
        })
        .collect();
    // 800 ticks of the 8 kHz event clock: held 100 ms.
    assert_eq!(digits, [(LegId::A, '5', 100), (LegId::A, '#', 100)]);
    drop(call.session);
}

#[tokio::test]
async fn exhausted_pool_refuses_and_ports_return_after_the_call() {
    let five9 = Peer::bind("127.0.0.1").await;
    let pool = PortPool::new(33140..=33143).unwrap();
    let a = pool.allocate(LOCAL, RtcpMode::Mux).unwrap();
    let b = pool.allocate(LOCAL, RtcpMode::Separate).unwrap();
    let err = pool.allocate(LOCAL, RtcpMode::Mux).unwrap_err();
    assert_eq!(err.status(), 503);
    let p = params(Law::Ulaw, five9.addr());
    let (session, _events) = MediaSession::start(
        &RelayConfig::default(),
        Leg::udp(a, p),
        Leg::udp(b, p),
        Arc::new(RelayStats::new()),
    )
    .unwrap();
    assert_eq!(pool.stats().in_use, 2);
    session.stop().await;
    let stats = pool.stats();
    assert_eq!((stats.in_use, stats.exhausted), (0, 1));
    let again = [
        pool.allocate(LOCAL, RtcpMode::Separate),
        pool.allocate(LOCAL, RtcpMode::Separate),
    ];
    assert!(again.iter().all(Result::is_ok), "{again:?}");
}

#[tokio::test]
async fn sequence_continues_across_a_source_ssrc_change() {
    let (mut five9, agent) = (Peer::bind("127.0.0.1").await, Peer::bind("127.0.0.1").await);
    let call = start(
        33160,
        &config(5000),
        params(Law::Ulaw, five9.addr()),
        params(Law::Alaw, agent.addr()),
    );
    for i in 0..20 {
        if i == 10 {
            // Five9's media server fails over: new SSRC, new numbering.
            (five9.ssrc, five9.sequence, five9.timestamp) = (0x2000, 50_000, 123_456_789);
        }
        five9.send(call.relay_a, 0, &[0xFF; 160]).await;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let got = agent.recv_n(20, WAIT).await;
    assert_eq!(got.len(), 20);
    assert_consecutive(&got);
    assert!(got[10].marker, "the switch is flagged as a new talkspurt");
    let step = got[11].timestamp.wrapping_sub(got[10].timestamp);
    assert_eq!(step, 160, "timestamps keep the 20 ms step after the switch");
    drop(call.session);
}

#[tokio::test]
async fn re_invite_moves_the_agent_and_changes_its_codec_without_a_jump() {
    let (mut five9, old) = (Peer::bind("127.0.0.1").await, Peer::bind("127.0.0.1").await);
    let new = Peer::bind("127.0.0.1").await;
    let call = start(
        33180,
        &config(5000),
        params(Law::Ulaw, five9.addr()),
        params(Law::Alaw, old.addr()),
    );
    five9.send(call.relay_a, 0, &[0xFF; 160]).await;
    let before = old.recv(WAIT).await.unwrap();
    call.session
        .update(LegId::B, params(Law::Ulaw, new.addr()))
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    five9.send(call.relay_a, 0, &[0xFF; 160]).await;
    let after = new.recv(WAIT).await.unwrap();
    assert_eq!(after.payload_type, 0);
    assert_eq!(after.payload, vec![0xFF; 160], "no transcoding any more");
    assert_eq!(after.sequence, before.sequence.wrapping_add(1));
    assert_eq!(after.ssrc, before.ssrc);
    drop(call.session);
}

#[tokio::test]
async fn a_tap_leg_exchanges_frames_in_its_own_law() {
    let mut five9 = Peer::bind("127.0.0.1").await;
    let pool = PortPool::new(33200..=33209).unwrap();
    let ports = pool.allocate(LOCAL, RtcpMode::Mux).unwrap();
    let relay_a = ports.rtp_addr();
    let (end, mut handle) = tap(Law::Alaw, 64);
    let (session, _events) = MediaSession::start(
        &RelayConfig::default(),
        Leg::udp(ports, params(Law::Ulaw, five9.addr())),
        Leg::tap(end),
        Arc::new(RelayStats::new()),
    )
    .unwrap();
    let tone = sine(440.0, 12000.0, 160 * 10);
    for frame in tone.chunks(160) {
        let mut ulaw = [0u8; 160];
        Law::Ulaw.encode(frame, &mut ulaw);
        five9.send(relay_a, 0, &ulaw).await;
    }
    let mut heard = Vec::new();
    for _ in 0..10 {
        let frame = tokio::time::timeout(WAIT, handle.from_relay.recv())
            .await
            .unwrap()
            .unwrap();
        let mut pcm = [0i16; 160];
        Law::Alaw.decode(frame.payload(), &mut pcm);
        heard.extend_from_slice(&pcm);
    }
    assert!(snr_db(&tone, &heard) > 30.0);
    for frame in tone.chunks(160) {
        let mut alaw = [0u8; 160];
        Law::Alaw.encode(frame, &mut alaw);
        handle
            .to_relay
            .send(TapFrame::new(&alaw).unwrap())
            .await
            .unwrap();
    }
    let got = five9.recv_n(10, WAIT).await;
    assert_eq!(got.len(), 10);
    assert!(got.iter().all(|p| p.payload_type == 0));
    assert_consecutive(&got);
    let f = dominant_frequency(&decode(Law::Ulaw, &got));
    assert!((f - 440.0).abs() <= 10.0, "caller heard {f} Hz");
    session.stop().await;
}
