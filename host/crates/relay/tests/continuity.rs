//! What a peer's jitter buffer and loss counters see of our stream, between
//! real UDP peers on 127.0.0.1: no invented loss after a hold, and the RTCP
//! a softphone sends taken as RTCP.

mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{Peer, Received};
use tokio::sync::mpsc;
use trunkline_media::g711::Law;
use trunkline_media::sdp::Direction;
use trunkline_relay::{
    Leg, LegCodec, LegId, LegParams, MediaEvent, MediaSession, PortPool, RelayConfig, RelayStats,
    RtcpMode, StatsSnapshot,
};

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const WAIT: Duration = Duration::from_secs(1);
/// How long a peer listens to be sure nothing comes.
const QUIET: Duration = Duration::from_millis(150);

fn params(law: Law, remote: SocketAddr) -> LegParams {
    let mut p = LegParams::new(LegCodec::g711(law));
    p.remote_rtp = Some(remote);
    p.rtcp_mux = true;
    p
}

/// A session on ports `base..base+9`: leg A muxed, leg B with an RTCP port.
/// No sender reports of ours, so a peer receives only relayed RTP.
fn start(base: u16, a: LegParams, b: LegParams) -> (MediaSession, mpsc::Receiver<MediaEvent>) {
    let config = RelayConfig {
        rtcp_interval: None,
        ..RelayConfig::default()
    };
    let pool = PortPool::new(base..=base + 9).unwrap();
    let ports_a = pool.allocate(LOCAL, RtcpMode::Mux).unwrap();
    let ports_b = pool.allocate(LOCAL, RtcpMode::Separate).unwrap();
    MediaSession::start(
        &config,
        Leg::udp(ports_a, a),
        Leg::udp(ports_b, b),
        Arc::new(RelayStats::new()),
    )
    .unwrap()
}

/// Sends `n` PCMA frames 2 ms apart.
async fn talk(peer: &mut Peer, to: SocketAddr, n: usize) {
    for _ in 0..n {
        peer.send(to, 8, &[0xD5; 160]).await;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn assert_one_talkspurt(packets: &[Received]) {
    for pair in packets.windows(2) {
        assert_eq!(
            pair[1].sequence,
            pair[0].sequence.wrapping_add(1),
            "{pair:?}"
        );
        assert!(!pair[1].marker, "{pair:?}");
    }
}

/// Polls the session's counters until `done` holds (at most `WAIT`).
async fn stats_when(
    session: &MediaSession,
    done: impl Fn(&StatsSnapshot) -> bool,
) -> StatsSnapshot {
    let deadline = Instant::now() + WAIT;
    loop {
        let stats = session.stats();
        if done(&stats) || Instant::now() >= deadline {
            return stats;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Five9 holds (sendonly) without the agent being re-INVITEd: the agent keeps
/// sending and the relay drops it. On resume Five9 must see our stream go on
/// at the next sequence number (no loss to count), with the marker bit and a
/// timestamp that moved on by the time the hold lasted.
#[tokio::test]
async fn after_a_hold_our_stream_resumes_at_the_next_number_with_the_marker() {
    let (five9, mut agent) = (Peer::bind("127.0.0.1").await, Peer::bind("127.0.0.1").await);
    let (a, b) = (
        params(Law::Alaw, five9.addr()),
        params(Law::Alaw, agent.addr()),
    );
    let (session, _events) = start(33200, a, b);
    let relay_b = session.local_rtp(LegId::B).unwrap();

    talk(&mut agent, relay_b, 10).await;
    let before = five9.recv_n(10, WAIT).await;
    assert_eq!(before.len(), 10);
    assert_one_talkspurt(&before);
    let held_from = Instant::now();

    let mut held = a;
    held.direction = Direction::SendOnly;
    session.update(LegId::A, held).unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    talk(&mut agent, relay_b, 100).await;
    assert!(five9.recv(QUIET).await.is_none(), "held: nothing to Five9");
    session.update(LegId::A, a).unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;

    let hold_ms = held_from.elapsed().as_millis() as u32;
    talk(&mut agent, relay_b, 10).await;
    let after = five9.recv_n(10, WAIT).await;
    assert_eq!(after.len(), 10);
    let (last, first) = (&before[9], &after[0]);
    assert_eq!(
        first.sequence,
        last.sequence.wrapping_add(1),
        "Five9 would count {} packets lost",
        first.sequence.wrapping_sub(last.sequence).wrapping_sub(1)
    );
    assert!(first.marker, "resume starts a talkspurt");
    assert_eq!(first.ssrc, last.ssrc);
    assert_one_talkspurt(&after);
    // 8 ticks a millisecond; the relay's clock reads each packet a little
    // after the test sent it, so allow slack either way.
    let ticks = first.timestamp.wrapping_sub(last.timestamp);
    let (low, high) = (8 * hold_ms.saturating_sub(100), 8 * (hold_ms + 1000));
    assert!(
        (low..=high).contains(&ticks),
        "timestamp moved {ticks} ticks over {hold_ms} ms of hold"
    );
    let stats = session.stop().await;
    assert_eq!(stats.dropped_hold, 100);
}

/// baresip sends RTCP APP packets, alone or in a compound: they are RTCP
/// (terminated, counted as received), not malformed RTP, on a muxed port and
/// on an RTCP port alike.
#[tokio::test]
async fn rtcp_app_packets_are_rtcp_not_malformed_rtp() {
    let (mut five9, mut agent) = (Peer::bind("127.0.0.1").await, Peer::bind("127.0.0.1").await);
    let (a, b) = (
        params(Law::Alaw, five9.addr()),
        params(Law::Alaw, agent.addr()),
    );
    let (session, _events) = start(33220, a, b);
    let relay_a = session.local_rtp(LegId::A).unwrap();
    let relay_b = session.local_rtp(LegId::B).unwrap();
    let relay_b_rtcp = SocketAddr::new(relay_b.ip(), relay_b.port() + 1);
    // Both peers latch first: RTCP is taken from the latched peer's IP only.
    five9.send(relay_a, 8, &[0xD5; 160]).await;
    agent.send(relay_b, 8, &[0xD5; 160]).await;
    assert!(agent.recv(WAIT).await.is_some());
    assert!(five9.recv(WAIT).await.is_some());

    let app = [0x80, 204, 0, 2, 0, 0, 0x10, 0, b'P', b'I', b'N', b'G'];
    let sdes = [0x81, 202, 0, 2, 0, 0, 0x10, 0, 0, 0, 0, 0];
    let app_compound = [&app[..], &sdes[..]].concat();
    five9.socket.send_to(&app, relay_a).await.unwrap();
    five9.socket.send_to(&app_compound, relay_a).await.unwrap();
    agent.socket.send_to(&app, relay_b_rtcp).await.unwrap();
    agent
        .socket
        .send_to(&app_compound, relay_b_rtcp)
        .await
        .unwrap();

    let stats = stats_when(&session, |s| s.rtcp_received >= 4).await;
    assert_eq!(
        (stats.rtcp_received, stats.dropped_malformed),
        (4, 0),
        "{stats:?}"
    );
    assert!(agent.recv(QUIET).await.is_none(), "RTCP is not relayed");
    assert!(five9.recv(QUIET).await.is_none(), "RTCP is not relayed");
    session.stop().await;
}
