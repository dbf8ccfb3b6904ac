//! Who may latch a leg, between real UDP peers on loopback addresses: a host
//! spraying the relay's ports before the caller's first packet, and a caller
//! behind a NAT whose RTP comes from its SIP address.

mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use support::{Peer, events_within};
use trunkline_media::g711::Law;
use trunkline_relay::{
    Leg, LegCodec, LegId, LegParams, MediaEvent, MediaSession, PortPool, RelayConfig, RelayStats,
    RtcpMode,
};

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const WAIT: Duration = Duration::from_secs(1);
/// How long a peer listens to be sure nothing comes.
const QUIET: Duration = Duration::from_millis(150);

fn params(remote: SocketAddr, signalling: &str) -> LegParams {
    let mut p = LegParams::new(LegCodec::g711(Law::Ulaw))
        .with_signalling_ip(signalling.parse().expect("an IP"));
    p.remote_rtp = Some(remote);
    p.rtcp_mux = true;
    p
}

/// A session on ports `base..base+9`; returns it, its events and the relay's
/// RTP address on each leg.
fn start(
    base: u16,
    a: LegParams,
    b: LegParams,
) -> (
    MediaSession,
    tokio::sync::mpsc::Receiver<MediaEvent>,
    [SocketAddr; 2],
) {
    let pool = PortPool::new(base..=base + 9).unwrap();
    let ports_a = pool.allocate(LOCAL, RtcpMode::Mux).unwrap();
    let ports_b = pool.allocate(LOCAL, RtcpMode::Mux).unwrap();
    let relay = [ports_a.rtp_addr(), ports_b.rtp_addr()];
    let (session, events) = MediaSession::start(
        &RelayConfig::default(),
        Leg::udp(ports_a, a),
        Leg::udp(ports_b, b),
        Arc::new(RelayStats::new()),
    )
    .unwrap();
    (session, events, relay)
}

/// Strict mode on loopback (SDP IP = SIP IP): a sprayer that beats the caller
/// to both legs' ports latches neither, receives nothing, and its audio
/// reaches nobody; the caller and the agent then talk as usual.
#[tokio::test]
async fn a_spray_before_the_first_packet_gets_nothing() {
    let (mut five9, mut agent) = (Peer::bind("127.0.0.1").await, Peer::bind("127.0.0.1").await);
    let mut sprayer = Peer::bind("127.0.0.66").await;
    let (session, mut events, [relay_a, relay_b]) = start(
        33300,
        params(five9.addr(), "127.0.0.1"),
        params(agent.addr(), "127.0.0.1"),
    );
    for _ in 0..5 {
        sprayer.send(relay_a, 0, &[0xEE; 160]).await;
        sprayer.send(relay_b, 0, &[0xEE; 160]).await;
    }
    assert!(agent.recv(QUIET).await.is_none(), "sprayed audio relayed");
    assert!(five9.recv(QUIET).await.is_none(), "sprayed audio relayed");
    five9.send(relay_a, 0, &[1; 160]).await;
    agent.send(relay_b, 0, &[2; 160]).await;
    let at_agent = agent.recv(WAIT).await.map(|p| p.payload);
    let at_five9 = five9.recv(WAIT).await.map(|p| p.payload);
    assert_eq!(
        (at_agent, at_five9),
        (Some(vec![1; 160]), Some(vec![2; 160]))
    );
    assert!(sprayer.recv(QUIET).await.is_none(), "the sprayer got audio");
    let mut latched = events_within(&mut events, Duration::from_millis(100)).await;
    // Both legs' first packets may be read in one turn, in either order.
    latched.sort_by_key(|e| matches!(e, MediaEvent::Latched { leg: LegId::B, .. }));
    assert_eq!(
        latched,
        [
            MediaEvent::Latched {
                leg: LegId::A,
                addr: five9.addr()
            },
            MediaEvent::Latched {
                leg: LegId::B,
                addr: agent.addr()
            },
        ]
    );
    assert_eq!(session.stop().await.dropped_source, 10);
}

/// NAT mode: the caller's SDP names a private address it does not send from
/// (127.0.0.2 stands for its LAN address), its SIP comes from 127.0.0.3 and
/// so does its RTP, on a port of the NAT's choosing. A stranger that latched
/// first within the learning window is replaced by the caller's first
/// packet, and from then on gets nothing.
#[tokio::test]
async fn nat_mode_media_from_the_signalling_ip_latches_over_a_stranger() {
    let lan = Peer::bind("127.0.0.2").await;
    let mut caller = Peer::bind("127.0.0.3").await;
    let mut stranger = Peer::bind("127.0.0.4").await;
    let mut agent = Peer::bind("127.0.0.1").await;
    let (session, mut events, [relay_a, relay_b]) = start(
        33320,
        params(lan.addr(), "127.0.0.3"),
        params(agent.addr(), "127.0.0.1"),
    );
    // Before anyone sends, the agent's audio goes to the SDP address.
    agent.send(relay_b, 0, &[1; 160]).await;
    assert!(lan.recv(WAIT).await.is_some(), "before latching: the SDP");

    stranger.send(relay_a, 0, &[0xEE; 160]).await;
    caller.send(relay_a, 0, &[2; 160]).await;
    let first = agent.recv(WAIT).await.map(|p| p.payload);
    let second = agent.recv(WAIT).await.map(|p| p.payload);
    assert_eq!(
        (first, second),
        (Some(vec![0xEE; 160]), Some(vec![2; 160])),
        "NAT mode: the stranger latched within the window, then the caller"
    );
    let latched = events_within(&mut events, Duration::from_millis(100)).await;
    assert_eq!(
        latched.last(),
        Some(&MediaEvent::Latched {
            leg: LegId::A,
            addr: caller.addr()
        }),
        "{latched:?}"
    );

    // The stranger cannot take the leg back, even in the window.
    stranger.send(relay_a, 0, &[0xEE; 160]).await;
    agent.send(relay_b, 0, &[3; 160]).await;
    let at_caller = caller.recv(WAIT).await.map(|p| p.payload);
    assert_eq!(at_caller, Some(vec![3; 160]));
    assert!(
        stranger.recv(QUIET).await.is_none(),
        "the stranger got audio"
    );
    assert!(
        agent.recv(QUIET).await.is_none(),
        "stranger's audio relayed"
    );
    assert!(lan.recv(QUIET).await.is_none(), "still sent to the SDP");
    assert_eq!(session.stop().await.dropped_source, 1);
}
