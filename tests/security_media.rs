//! Security: the call's media belongs to the peers that signalled it. A host
//! that sprays RTP at every port of the gateway's media range, starting
//! before the caller's first packet and going on for the whole call, must
//! neither take the call's audio nor get its own audio into the call.
//!
//! The caller (Five9) and the agent are raw SIP peers, each sending RTP from
//! its own SIP address, as a peer with no NAT in between does; the attacker
//! sits on another loopback address (127.0.0.66) and has signalled nothing.

mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use support::gateway::Gateway;
use support::http::get;
use support::rtp::{PCMU, Packet, RtpPeer, analyse, encode, packet, tone};
use support::sip_text::{Msg, UdpPeer as SipPeer};
use support::sipp::loopback;
use support::unique;

/// How long a message the gateway owes us may take (debug build, shared
/// cores).
const SOON: Duration = Duration::from_secs(5);
/// The caller's and the agent's tone (ITU-T O.133's 1004 Hz).
const TONE_HZ: f64 = 1004.0;
/// The attacker's tone: audio of its reaching a peer would show.
const ATTACK_HZ: f64 = 400.0;
const ATTACKER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 66);
/// The media range: 10 RTP/RTCP pairs, sprayed in full.
const RANGE_PORTS: u16 = 20;

/// An SDP body offering or answering PCMU on `rtp`.
fn sdp(rtp: SocketAddr) -> String {
    let ip = rtp.ip();
    format!(
        "v=0\r\no=peer 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n",
        rtp.port()
    )
}

/// Our response to `req`, with `extra` header lines and `body`.
fn reply_to(req: &Msg, status: &str, extra: &str, body: &str) -> String {
    let mut text = format!("SIP/2.0 {status}\r\n");
    for via in req.headers("Via") {
        text += &format!("Via: {via}\r\n");
    }
    let to = req.header("To").unwrap_or_default();
    let to = if to.contains(";tag=") {
        to.to_owned()
    } else {
        format!("{to};tag=agent")
    };
    text += &format!("To: {to}\r\n");
    for name in ["From", "Call-ID", "CSeq"] {
        text += &format!("{name}: {}\r\n", req.header(name).unwrap_or_default());
    }
    text + extra + &format!("Content-Length: {}\r\n\r\n{body}", body.len())
}

/// An RTP peer on `ip` (a port of the kernel's choosing).
fn rtp_on(ip: IpAddr) -> RtpPeer {
    let sock = UdpSocket::bind((ip, 0)).expect("binding an RTP peer");
    let addr = sock.local_addr().expect("its address");
    RtpPeer { sock, addr }
}

/// What the attacker sent and received.
#[derive(Debug, Default)]
struct Spray {
    sent: u64,
    received: u64,
}

/// A thread sending one PCMU packet of [`ATTACK_HZ`] to every port of
/// `ports` on `ip` each 20 ms, counting every datagram that comes back,
/// until stopped (at most 60 s).
struct Sprayer {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Spray>,
}

impl Sprayer {
    fn start(ip: IpAddr, ports: RangeInclusive<u16>) -> Sprayer {
        let sock = UdpSocket::bind((ATTACKER, 0)).expect("binding the attacker");
        sock.set_nonblocking(true).expect("non-blocking");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut spray = Spray::default();
            let mut buf = [0u8; 2048];
            let started = Instant::now();
            let mut n: u64 = 0;
            while !flag.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(60) {
                let samples = tone(ATTACK_HZ, 8000.0, n * 160, 160);
                let payload = encode(PCMU, &samples);
                let dgram = packet(PCMU, n == 0, n as u16, (n * 160) as u32, 0x0bad, &payload);
                for port in ports.clone() {
                    if sock.send_to(&dgram, SocketAddr::new(ip, port)).is_ok() {
                        spray.sent += 1;
                    }
                }
                // Bounded by the socket's queue; errors (ICMP) are not packets.
                while let Ok((_, _)) = sock.recv_from(&mut buf) {
                    spray.received += 1;
                }
                n += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            while let Ok((_, _)) = sock.recv_from(&mut buf) {
                spray.received += 1;
            }
            spray
        });
        Sprayer { stop, thread }
    }

    fn finish(self) -> Spray {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("the sprayer")
    }
}

/// Asserts `packets` carry the test tone as PCMU.
fn assert_tone(what: &str, packets: &[Packet]) {
    assert!(
        packets.len() >= 25,
        "{what}: too few packets arrived ({})",
        packets.len()
    );
    assert!(packets.iter().all(|p| p.pt == PCMU), "{what}: PCMU only");
    let a = analyse(packets).unwrap_or_else(|| panic!("{what}: no analysable run of audio"));
    assert!(
        (a.freq - TONE_HZ).abs() < 3.0,
        "{what}: the tone arrives at {TONE_HZ} Hz, not the attacker's: {a:?}"
    );
    assert!(a.snr_db > 25.0, "{what}: the tone arrives clean: {a:?}");
}

/// The value of the `/metrics` series `series` (name and labels as printed).
fn metric(gw: &Gateway, series: &str) -> f64 {
    let r = get(gw.http, "/metrics", None);
    assert_eq!(r.status, 200, "{r}");
    r.body
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.split(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

/// Sprayed from before the INVITE to after the BYE: the caller's tone
/// reaches the agent, the agent's reaches the caller, and the attacker gets
/// not one datagram.
#[test]
fn rtp_spray_before_the_callers_first_packet_gets_nothing() {
    let agent_sip = UdpSocket::bind(loopback()).expect("binding the agent");
    let agent_me = agent_sip.local_addr().expect("agent address");
    let base = 48_000 + RANGE_PORTS * (std::process::id() % 800) as u16;
    let last = base + RANGE_PORTS - 1;
    let gw = Gateway::start_with_media(
        "route-reason",
        &format!("default_agent = \"sip:agent@{agent_me}\""),
        "",
        "",
        &format!("port_min = {base}\nport_max = {last}"),
    );
    let media_ip = gw.sip.ip();
    let sprayer = Sprayer::start(media_ip, base..=last);
    std::thread::sleep(Duration::from_millis(200));

    let five9 = SipPeer::new(gw.sip);
    let f9_rtp = rtp_on(five9.me.ip());
    let agent = SipPeer {
        sock: agent_sip,
        me: agent_me,
        gw: gw.sip,
    };
    let agent_rtp = rtp_on(agent_me.ip());
    let (ok, invite) = std::thread::scope(|s| {
        let answering = s.spawn(|| {
            let inv = agent.wait_for_msg("the gateway's INVITE", SOON * 2, |m| {
                m.method() == Some("INVITE")
            });
            let extra =
                format!("Contact: <sip:agent@{agent_me}>\r\nContent-Type: application/sdp\r\n");
            agent.send(&reply_to(&inv, "200 OK", &extra, &sdp(agent_rtp.addr)));
            agent.wait_for_msg("ACK of the agent's 200", SOON, |m| {
                m.method() == Some("ACK")
            });
            inv
        });
        let ok = call(&five9, &sdp(f9_rtp.addr));
        (ok, answering.join().expect("the agent answered"))
    });
    assert_eq!(ok.status(), Some(200), "call connected: {ok:?}");
    let (to_gw_a, to_gw_b) = (ok.rtp_target(), invite.rtp_target());
    assert!(
        (base..=last).contains(&to_gw_a.port()) && (base..=last).contains(&to_gw_b.port()),
        "both legs in the sprayed range: {to_gw_a}, {to_gw_b}"
    );
    // The relay has been reading (and refusing) the spray for a while before
    // the caller's first packet.
    std::thread::sleep(Duration::from_millis(300));

    // An AI agent greets first: its audio flows toward the caller's leg
    // while the caller has not sent yet, the moment a latched attacker
    // would take it.
    let _agent_tone = agent_rtp.send_tone(to_gw_b, PCMU, TONE_HZ);
    std::thread::sleep(Duration::from_millis(300));
    let _caller_tone = f9_rtp.send_tone(to_gw_a, PCMU, TONE_HZ);
    std::thread::sleep(Duration::from_millis(200));
    agent_rtp.drain();
    f9_rtp.drain();
    let at_agent = agent_rtp.collect(Duration::from_millis(1000), None);
    let at_five9 = f9_rtp.collect(Duration::from_millis(1000), None);
    assert_tone("caller -> agent", &at_agent);
    assert_tone("agent -> caller", &at_five9);
    assert!(
        at_agent.iter().all(|p| p.from == to_gw_b),
        "from our offer's port"
    );
    assert!(
        at_five9.iter().all(|p| p.from == to_gw_a),
        "from our answer's port"
    );

    hang_up(&five9, &ok, &agent);
    std::thread::sleep(Duration::from_millis(300));
    let spray = sprayer.finish();
    assert!(
        spray.sent >= 40 * u64::from(RANGE_PORTS),
        "the attack ran through the call: {spray:?}"
    );
    let refused = metric(&gw, "trunkline_rtp_dropped_total{reason=\"source\"}");
    eprintln!("spray: {spray:?}; refused by the relay: {refused}");
    assert_eq!(spray.received, 0, "the attacker got media: {spray:?}");
    assert!(
        refused >= 20.0,
        "the relay saw and refused the spray: {refused}"
    );
}

/// Five9's INVITE offering `body`; returns the final response, ACKed when
/// it is a 200.
fn call(five9: &SipPeer, body: &str) -> Msg {
    let (me, gw) = (five9.me, five9.gw);
    let cid = unique("spray");
    five9.send(&format!(
        "INVITE sip:+14155550100@{gw} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {me};branch=z9hG4bK-{b};rport\r\n\
         Max-Forwards: 70\r\n\
         From: \"Five9\" <sip:+14155550123@five9.example.com>;tag=f9\r\n\
         To: <sip:+14155550100@{gw}>\r\n\
         Call-ID: {cid}\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:five9@{me}>\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {len}\r\n\r\n{body}",
        b = unique("b"),
        len = body.len(),
    ));
    let last = five9.wait_for_msg("final response to the INVITE", SOON * 2, |m| {
        m.header("Call-ID") == Some(cid.as_str()) && m.status().is_some_and(|s| s >= 200)
    });
    if last.status() == Some(200) {
        five9.send(&in_dialog(five9, &last, "ACK", 1));
    }
    last
}

/// An in-dialog request of Five9's in the dialog `ok` set up.
fn in_dialog(five9: &SipPeer, ok: &Msg, method: &str, cseq: u32) -> String {
    format!(
        "{method} {target} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {me};branch=z9hG4bK-{b};rport\r\n\
         Max-Forwards: 70\r\n\
         From: {from}\r\n\
         To: {to}\r\n\
         Call-ID: {cid}\r\n\
         CSeq: {cseq} {method}\r\n\
         Content-Length: 0\r\n\r\n",
        target = ok.contact_uri().expect("Contact in the 200 OK"),
        me = five9.me,
        b = unique("b"),
        from = ok.header("From").expect("From"),
        to = ok.header("To").expect("To"),
        cid = ok.header("Call-ID").expect("Call-ID"),
    )
}

/// Five9 hangs up; the agent answers the BYE it is sent.
fn hang_up(five9: &SipPeer, ok: &Msg, agent: &SipPeer) {
    five9.send(&in_dialog(five9, ok, "BYE", 2));
    let bye = agent.wait_for_msg("BYE to the agent", SOON, |m| m.method() == Some("BYE"));
    agent.send(&reply_to(&bye, "200 OK", "", ""));
    let done = five9.wait_for_msg("200 to our BYE", SOON, |m| {
        m.header("CSeq") == Some("2 BYE") && m.status().is_some()
    });
    assert_eq!(done.status(), Some(200), "BYE answered: {done:?}");
}
