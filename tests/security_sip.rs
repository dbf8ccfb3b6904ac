//! The gateway on a hostile network, signalling side: what one unadmitted
//! peer can make it do. Nothing may stall the signalling task (a Via or
//! `maddr` naming a host whose name server never answers), no request may
//! earn more than one response (no amplification, no retransmissions for
//! refused INVITEs), answers never go anywhere but back to the source, and
//! open transactions are capped per source and in all.
//!
//! Real binary, raw SIP over UDP on loopback, SIPp as the agent.

mod support;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use support::gateway::Gateway;
use support::sip_text::{Msg, UdpPeer};
use support::sipp::{Sipp, loopback};
use support::unique;

const SOON: Duration = Duration::from_secs(5);

/// The floods of this file do not run beside the 50 ms timing test: on a
/// 2-core machine their bursts would be what the timing measures.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn alone() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

fn branch() -> String {
    format!("z9hG4bK-{}", unique("b"))
}

/// An INVITE from `me` with the given top Via (`{me}` in it is replaced),
/// dialing `number`.
fn invite(me: SocketAddr, gw: SocketAddr, via: &str, number: &str, cid: &str) -> String {
    let ip = me.ip();
    let body = format!(
        "v=0\r\no=caller 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio 30000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
    );
    format!(
        "INVITE sip:{number}@{gw} SIP/2.0\r\n\
         Via: {via}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:+14155550123@five9.example.com>;tag={tag}\r\n\
         To: <sip:{number}@{gw}>\r\n\
         Call-ID: {cid}\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:five9@{me}>\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {len}\r\n\r\n{body}",
        via = via.replace("{me}", &me.to_string()),
        tag = unique("tag"),
        len = body.len(),
    )
}

fn options(me: SocketAddr, gw: SocketAddr, via: &str, cid: &str) -> String {
    format!(
        "OPTIONS sip:trunkline@{gw} SIP/2.0\r\n\
         Via: {via}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:ping@{me}>;tag={tag}\r\n\
         To: <sip:trunkline@{gw}>\r\n\
         Call-ID: {cid}\r\n\
         CSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n",
        via = via.replace("{me}", &me.to_string()),
        tag = unique("tag"),
    )
}

/// A request of ours in the dialog `ok` established (ACK, BYE).
fn in_dialog(method: &str, cseq: u32, me: SocketAddr, cid: &str, ok: &Msg) -> String {
    format!(
        "{method} {target} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {me};branch={b};rport\r\n\
         Max-Forwards: 70\r\n\
         From: {from}\r\n\
         To: {to}\r\n\
         Call-ID: {cid}\r\n\
         CSeq: {cseq} {method}\r\n\
         Content-Length: 0\r\n\r\n",
        target = ok.contact_uri().expect("Contact in the 200 OK"),
        b = branch(),
        from = ok.header("From").expect("From"),
        to = ok.header("To").expect("To"),
    )
}

/// A socket that counts what reaches it (a third host's).
struct Witness {
    sock: UdpSocket,
}

impl Witness {
    fn bind(addr: SocketAddr) -> Witness {
        let sock = UdpSocket::bind(addr).expect("binding a witness");
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        Witness { sock }
    }

    fn addr(&self) -> SocketAddr {
        self.sock.local_addr().expect("bound")
    }

    /// Datagrams that arrived so far (waits 50 ms for stragglers).
    fn count(&self) -> usize {
        let mut buf = [0u8; 65536];
        let mut n = 0;
        while self.sock.recv_from(&mut buf).is_ok() {
            n += 1;
        }
        n
    }
}

/// `N` INVITEs from a peer no trunk admits, never ACKed, their Vias naming
/// a third host and a `maddr`: each gets exactly one answer, at the
/// source, and nothing reaches the hosts the Via names. Then the same on a
/// digest trunk, whose answer is a 401 challenge.
#[test]
fn unacknowledged_invites_get_one_answer_each_and_only_at_their_source() {
    let _alone = alone();
    const N: usize = 100;
    for (trunk, status) in [
        // The trunk admits another address only.
        ("allow = [\"127.0.0.254/32\"]\n", 403),
        (
            "allow = []\n[trunk.auth]\nrealm = \"trunkline\"\nalgorithms = [\"MD5\"]\nusers = { five9 = \"s3cret\" }\n",
            401,
        ),
    ] {
        let gw = Gateway::start(
            "route-reason",
            "default_agent = \"sip:agent@127.0.0.1:9\"",
            trunk,
        );
        let attacker = UdpPeer::new(gw.sip);
        let via_host = Witness::bind(loopback());
        let maddr = Witness::bind(loopback());
        for i in 0..N {
            let via = format!(
                "SIP/2.0/UDP {};branch={};maddr={}",
                via_host.addr(),
                branch(),
                maddr.addr().ip()
            );
            let cid = format!("flood-{i}-{}", unique("c"));
            attacker.send(&invite(attacker.me, gw.sip, &via, "+14155550100", &cid));
        }
        // Retransmissions of a final response would come at T1 = 0.5 s,
        // 1 s, 2 s, 4 s: watch past the fourth.
        let answers = attacker.collect(Duration::from_millis(4500));
        let statuses: Vec<Option<u16>> = answers.iter().map(|(_, m)| m.status()).collect();
        assert_eq!(
            answers.len(),
            N,
            "one answer per INVITE ({status} trunk): {statuses:?}"
        );
        assert!(
            statuses.iter().all(|s| *s == Some(status)),
            "every answer is {status}: {statuses:?}"
        );
        assert_eq!(via_host.count(), 0, "nothing to the Via's sent-by");
        assert_eq!(maddr.count(), 0, "nothing to the Via's maddr");
        let sent = gw.metric(&format!(
            "trunkline_sip_responses_sent_total{{status=\"{status}\"}}"
        ));
        assert_eq!(sent as usize, N, "the gateway counts {N} {status}s sent");
        assert_eq!(
            gw.metric("trunkline_sip_transactions_open"),
            0.0,
            "refused INVITEs leave no transaction behind"
        );
    }
}

/// The flood rig's assumption checked: a refused INVITE retransmitted by a
/// well-behaved client is answered again each time, one for one.
#[test]
fn a_retransmitted_refused_invite_is_answered_once_per_copy() {
    let gw = Gateway::start(
        "route-reason",
        "default_agent = \"sip:agent@127.0.0.1:9\"",
        "allow = [\"127.0.0.254/32\"]\n",
    );
    let peer = UdpPeer::new(gw.sip);
    let cid = unique("retx");
    let text = invite(
        peer.me,
        gw.sip,
        &format!("SIP/2.0/UDP {{me}};branch={};rport", branch()),
        "+14155550100",
        &cid,
    );
    for _ in 0..3 {
        peer.send(&text);
        let (r, _) = peer.wait_for("403", SOON, |m| m.status().is_some());
        assert_eq!(r.status(), Some(403), "{r:?}");
    }
    assert!(peer.collect(Duration::from_millis(1200)).is_empty());
}

/// Whether this process may make a mount namespace (root, as in CI).
fn can_unshare() -> bool {
    std::process::Command::new("unshare")
        .args(["-m", "true"])
        .status()
        .is_ok_and(|s| s.success())
}

/// The resolver points at a name server that never answers. A live call
/// is up; then requests whose Via and `maddr` name hosts only that server
/// could resolve arrive, and a call is routed to an agent named by such a
/// host. Meanwhile an OPTIONS and the live call's BYE are answered within
/// 50 ms, and the call to the unresolvable agent fails with 503 once the
/// look-up's deadline passes.
#[test]
fn a_black_holed_resolver_stalls_no_signalling() {
    let _alone = alone();
    if !can_unshare() {
        eprintln!("skipped: needs a mount namespace (run as root, as CI does)");
        return;
    }
    // The black hole: a name server socket that reads and never answers.
    let dns = UdpSocket::bind((loopback().ip(), 53)).expect("binding the black-hole DNS");
    dns.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let dir = tempfile::tempdir().expect("tempdir");
    let resolv = dir.path().join("resolv.conf");
    std::fs::write(
        &resolv,
        format!(
            "nameserver {}\noptions timeout:5 attempts:2\n",
            dns.local_addr().expect("bound").ip()
        ),
    )
    .expect("writing resolv.conf");
    let mount = format!(
        "mount --bind {} /etc/resolv.conf && exec \"$@\"",
        resolv.display()
    );

    let agent_addr = loopback();
    let mut agent = Sipp::new("agent_uas_wait_bye.xml", agent_addr).spawn();
    agent.wait_ready(SOON);
    let gw = Gateway::builder("route-reason")
        .policy_toml(&format!(
            "default_agent = \"sip:agent@{agent_addr}\"\n\
             \"did.+14155550199\" = \"sip:agent@bot.blackhole.test:5060\""
        ))
        .gateway_toml("dns_timeout_ms = 1500")
        .wrapped(&["unshare", "-m", "sh", "-c", &mount, "sh"])
        .start();

    // The live call.
    let five9 = UdpPeer::new(gw.sip);
    let cid = unique("live");
    let via = format!("SIP/2.0/UDP {{me}};branch={};rport", branch());
    five9.send(&invite(five9.me, gw.sip, &via, "+14155550100", &cid));
    let (ok, _) = five9.wait_for("200 OK", Duration::from_secs(10), |m| {
        m.status().is_some_and(|s| s >= 200)
    });
    assert_eq!(ok.status(), Some(200), "{ok:?}");
    five9.send(&in_dialog("ACK", 1, five9.me, &cid, &ok));

    // The attack: three OPTIONS whose Via and maddr name black-holed
    // hosts, and a call routed to a black-holed agent name.
    let attacker = UdpPeer::new(gw.sip);
    for i in 0..3 {
        let via = format!(
            "SIP/2.0/UDP sip{i}.blackhole.test:5060;branch={};rport;maddr=relay{i}.blackhole.test",
            branch()
        );
        attacker.send(&options(attacker.me, gw.sip, &via, &unique("stall")));
    }
    let slow_cid = unique("slow");
    let via = format!("SIP/2.0/UDP {{me}};branch={};rport", branch());
    attacker.send(&invite(
        attacker.me,
        gw.sip,
        &via,
        "+14155550199",
        &slow_cid,
    ));
    std::thread::sleep(Duration::from_millis(100));

    // Meanwhile: an OPTIONS from Five9 and the live call's BYE.
    let ping = unique("ping");
    let via = format!("SIP/2.0/UDP {{me}};branch={};rport", branch());
    let sent = Instant::now();
    five9.send(&options(five9.me, gw.sip, &via, &ping));
    let (pong, _) = five9.wait_for("200 to OPTIONS", SOON, |m| {
        m.header("Call-ID") == Some(ping.as_str())
    });
    let options_took = sent.elapsed();
    assert_eq!(pong.status(), Some(200), "{pong:?}");
    let sent = Instant::now();
    five9.send(&in_dialog("BYE", 2, five9.me, &cid, &ok));
    let (bye_ok, _) = five9.wait_for("200 to BYE", SOON, |m| m.cseq_method() == Some("BYE"));
    let bye_took = sent.elapsed();
    assert_eq!(bye_ok.status(), Some(200), "{bye_ok:?}");
    assert!(
        options_took < Duration::from_millis(50) && bye_took < Duration::from_millis(50),
        "answered within 50 ms while the resolver hangs: OPTIONS {options_took:?}, BYE {bye_took:?}"
    );
    agent.wait().assert_passed();

    // The attacker's OPTIONS were answered at their source, and the call to
    // the unresolvable agent ends in 503 after the look-up's deadline.
    let (failed, seen) = attacker.wait_for("503 for the unresolvable agent", SOON, |m| {
        m.header("Call-ID") == Some(slow_cid.as_str()) && m.status().is_some_and(|s| s >= 300)
    });
    assert_eq!(failed.status(), Some(503), "{failed:?}");
    let pongs = seen
        .iter()
        .filter(|m| m.cseq_method() == Some("OPTIONS") && m.status() == Some(200))
        .count();
    assert_eq!(
        pongs, 3,
        "each stalling OPTIONS answered at its source: {seen:#?}"
    );
    // And the resolver really was asked: the black hole saw the query.
    let mut buf = [0u8; 512];
    let mut queries = 0;
    while dns.recv_from(&mut buf).is_ok() {
        queries += 1;
    }
    assert!(
        queries >= 1,
        "the agent's name went to the black-holed name server"
    );
}

/// A source that keeps INVITEs unanswered fills only its own share of
/// server transactions: past its cap its INVITEs get one stateless 503
/// with Retry-After, other sources are still served up to the total cap,
/// and the metric counts the refusals.
#[test]
fn server_transactions_are_capped_per_source_and_in_all() {
    let _alone = alone();
    // An agent that never answers: every call rings until the ring timeout.
    let silent = UdpSocket::bind(loopback()).expect("binding the silent agent");
    let gw = Gateway::builder("route-reason")
        .policy_toml(&format!(
            "default_agent = \"sip:agent@{}\"",
            silent.local_addr().expect("bound")
        ))
        .gateway_toml("max_transactions = 6\nmax_transactions_per_source = 4")
        .start();
    let send_invites = |peer: &UdpPeer, n: usize| -> Vec<String> {
        (0..n)
            .map(|_| {
                let cid = unique("cap");
                let via = format!("SIP/2.0/UDP {{me}};branch={};rport", branch());
                peer.send(&invite(peer.me, gw.sip, &via, "+14155550100", &cid));
                cid
            })
            .collect()
    };
    // First status seen for each Call-ID.
    let first_status = |peer: &UdpPeer, cids: &[String]| -> Vec<u16> {
        let got = peer.collect(Duration::from_millis(1500));
        cids.iter()
            .map(|cid| {
                got.iter()
                    .map(|(_, m)| m)
                    .find(|m| m.header("Call-ID") == Some(cid.as_str()))
                    .and_then(Msg::status)
                    .unwrap_or(0)
            })
            .collect()
    };
    let a = UdpPeer::new(gw.sip);
    let cids = send_invites(&a, 6);
    let seen = first_status(&a, &cids);
    // The agent INVITEs are client transactions: only server ones count.
    assert_eq!(
        seen.iter().filter(|s| **s == 100).count(),
        4,
        "source A: its cap of 4 proceed: {seen:?}"
    );
    assert_eq!(
        seen.iter().filter(|s| **s == 503).count(),
        2,
        "source A: the rest get 503: {seen:?}"
    );

    let b = UdpPeer::new(gw.sip);
    let cids = send_invites(&b, 3);
    let seen = first_status(&b, &cids);
    assert_eq!(
        seen,
        [100, 100, 503],
        "source B: served until the total cap of 6"
    );
    assert!(gw.metric("trunkline_sip_overload_refusals_total") >= 3.0);
    assert!(gw.metric("trunkline_sip_transactions_open") <= 6.0 + 6.0);
}
