//! The Five9 SIPp scenarios on a lossy network, played against a raw UDP
//! peer that stands in for the gateway: a 100/180 reordered behind a later
//! response, or arriving during a pause, must not fail the call; a BYE (or
//! a final response) retransmitted because our answer was lost must be
//! answered again. No gateway runs here; `tests/lossy_network.rs` plays the
//! real one over an impaired network.
//!
//! Needs SIPp (`apt-get install sip-tester`).

mod support;

use std::time::{Duration, Instant};

use support::sip_text::{Msg, UdpPeer};
use support::sipp::{Outcome, Sipp, loopback};

const LIMIT: Duration = Duration::from_secs(5);

/// A response to `invite` with `code`, a To tag and, for a 200, an SDP answer.
fn answer(invite: &Msg, code: &str, peer: &UdpPeer) -> String {
    answer_with(invite, code, peer, "")
}

/// [`answer`] with `sdp_extra` (whole lines) at the end of a 200's SDP.
fn answer_with(invite: &Msg, code: &str, peer: &UdpPeer, sdp_extra: &str) -> String {
    let mut head = format!("SIP/2.0 {code}\r\n");
    for name in ["Via", "From", "Call-ID", "CSeq"] {
        for value in invite.headers(name) {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    let to = invite.header("To").expect("INVITE To");
    if to.contains("tag=") {
        head.push_str(&format!("To: {to}\r\n"));
    } else {
        head.push_str(&format!("To: {to};tag=gw-1\r\n"));
    }
    head.push_str(&format!("Contact: <sip:gw@{}>\r\n", peer.me));
    if !code.starts_with("200") {
        return head + "Content-Length: 0\r\n\r\n";
    }
    let ip = peer.me.ip();
    let sdp = format!(
        "v=0\r\no=gw 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n{sdp_extra}"
    );
    head + &format!(
        "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
}

/// The gateway's BYE for the dialog `invite` set up, with the X- headers
/// every Five9 scenario accepts by default.
fn bye(invite: &Msg, peer: &UdpPeer) -> String {
    let from = invite.header("From").expect("INVITE From");
    let to = invite.header("To").expect("INVITE To");
    let call_id = invite.header("Call-ID").expect("INVITE Call-ID");
    let contact = invite.contact_uri().expect("INVITE Contact");
    format!(
        "BYE {contact} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bK-gw-bye-1\r\n\
         Max-Forwards: 70\r\nFrom: {to};tag=gw-1\r\nTo: {from}\r\nCall-ID: {call_id}\r\n\
         CSeq: 1 BYE\r\nX-contained: true\r\nX-destination: sip:agent@example.com\r\n\
         X-RouteReason: contained\r\nX-RouteType: agent\r\nX-RouteValue: a\r\nX-MetaData: {{}}\r\n\
         Content-Length: 0\r\n\r\n",
        peer.me
    )
}

/// The 200 OK to request `m`.
fn ok(m: &Msg) -> String {
    let mut ok = String::from("SIP/2.0 200 OK\r\n");
    for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
        for value in m.headers(name) {
            ok.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    ok + "Content-Length: 0\r\n\r\n"
}

fn is(method: &'static str) -> impl Fn(&Msg) -> bool {
    move |m: &Msg| m.method() == Some(method)
}

/// Sleeps until `offset` after `from`.
fn sleep_until(from: Instant, offset: Duration) {
    std::thread::sleep((from + offset).saturating_duration_since(Instant::now()));
}

/// Plays the gateway against `scenario` (extra SIPp arguments `args`): 100,
/// 200, the ACK, a late 180 `late_180` after it, then our BYE at each of
/// `byes` after the ACK (the same message: the 200s before the last "lost").
/// Returns SIPp's outcome and the responses to the BYEs.
fn lossy_call(
    scenario: &str,
    args: &[&str],
    late_180: Duration,
    byes: &[Duration],
) -> (Outcome, Vec<Msg>) {
    let five9_addr = loopback();
    let peer = UdpPeer::new(five9_addr);
    let mut sipp = Sipp::new(scenario, five9_addr)
        .remote(peer.me)
        .timeout(Duration::from_secs(15));
    for pair in args.chunks(2) {
        sipp = sipp.set(pair[0], pair[1]);
    }
    let mut five9 = sipp.spawn();
    five9.wait_ready(LIMIT);
    let invite = peer.wait_for_msg("INVITE", LIMIT, is("INVITE"));
    peer.send(&answer(&invite, "100 Trying", &peer));
    peer.send(&answer(&invite, "200 OK", &peer));
    peer.wait_for_msg("ACK", LIMIT, is("ACK"));
    let acked = Instant::now();
    sleep_until(acked, late_180);
    peer.send(&answer(&invite, "180 Ringing", &peer));
    let bye = bye(&invite, &peer);
    let mut answers = Vec::new();
    for at in byes {
        sleep_until(acked, *at);
        peer.send(&bye);
        match peer.recv(LIMIT) {
            Some(m) if m.cseq_method() == Some("BYE") => answers.push(m),
            other => panic!(
                "{scenario}: no answer to BYE #{} at {at:?}: {other:?}\n{}",
                answers.len() + 1,
                five9.wait()
            ),
        }
    }
    (five9.wait(), answers)
}

/// A late 180 right after the ACK; the BYE at 300 ms, again at 800 ms.
fn assert_survives(scenario: &str) {
    let byes = [Duration::from_millis(300), Duration::from_millis(800)];
    let (five9, answers) = lossy_call(scenario, &[], Duration::ZERO, &byes);
    assert_eq!(answers.len(), 2);
    for a in &answers {
        assert_eq!(a.status(), Some(200), "{scenario}: {}", a.0);
    }
    five9.assert_passed();
}

#[test]
fn five9_uac_survives_a_late_180_and_a_retransmitted_bye() {
    assert_survives("five9_uac.xml");
}

#[test]
fn five9_uac_expect_contained_survives_a_late_180_and_a_retransmitted_bye() {
    assert_survives("five9_uac_expect_contained.xml");
}

#[test]
fn five9_uac_expect_route_reason_survives_a_late_180_and_a_retransmitted_bye() {
    assert_survives("five9_uac_expect_route_reason.xml");
}

#[test]
fn five9_uac_builtin_survives_a_180_during_its_pause_and_a_retransmitted_bye() {
    // The scenario listens to the prompt for 1.5 s before it waits for a BYE.
    let byes = [Duration::from_millis(1700), Duration::from_millis(2200)];
    let late = Duration::from_millis(300);
    let (five9, answers) = lossy_call("five9_uac_builtin.xml", &["key", "none"], late, &byes);
    assert_eq!(answers.len(), 2);
    five9.assert_passed();
}

#[test]
fn with_linger_ms_the_bye_is_answered_until_the_last_retransmission() {
    // The gateway's schedule after three lost 200s: 0, 0.5, 1.5, 3.5 s.
    let byes = [300, 800, 1800, 3800].map(Duration::from_millis);
    let (five9, answers) = lossy_call(
        "five9_uac_expect_route_reason.xml",
        &["linger_ms", "4000"],
        Duration::ZERO,
        &byes,
    );
    assert_eq!(answers.len(), 4);
    assert!(answers.iter().all(|a| a.status() == Some(200)));
    five9.assert_passed();
}

/// Plays the gateway against a scenario that hangs up itself: 100, 200, the
/// ACK, a late 180 `late_180` after it, then the scenario's BYE gets a 200.
fn late_180_then_caller_bye(scenario: &str, late_180: Duration, pause: Duration) -> Outcome {
    let five9_addr = loopback();
    let peer = UdpPeer::new(five9_addr);
    let mut five9 = Sipp::new(scenario, five9_addr)
        .remote(peer.me)
        .timeout(Duration::from_secs(15))
        .pause(pause)
        .spawn();
    five9.wait_ready(LIMIT);
    let invite = peer.wait_for_msg("INVITE", LIMIT, is("INVITE"));
    peer.send(&answer(&invite, "100 Trying", &peer));
    peer.send(&answer(&invite, "200 OK", &peer));
    peer.wait_for_msg("ACK", LIMIT, is("ACK"));
    std::thread::sleep(late_180);
    peer.send(&answer(&invite, "180 Ringing", &peer));
    match peer.recv(LIMIT) {
        Some(m) if m.method() == Some("BYE") => peer.send(&ok(&m)),
        other => panic!("{scenario}: no BYE: {other:?}\n{}", five9.wait()),
    }
    five9.wait()
}

#[test]
fn five9_uac_hangup_survives_a_late_180() {
    late_180_then_caller_bye(
        "five9_uac_hangup.xml",
        Duration::ZERO,
        Duration::from_millis(300),
    )
    .assert_passed();
}

#[test]
fn five9_uac_hangup_survives_a_180_during_its_pause() {
    let (late, pause) = (Duration::from_millis(200), Duration::from_millis(600));
    late_180_then_caller_bye("five9_uac_hangup.xml", late, pause).assert_passed();
}

#[test]
fn bench_uac_survives_a_late_180() {
    late_180_then_caller_bye("bench_uac.xml", Duration::ZERO, Duration::from_millis(300))
        .assert_passed();
}

#[test]
fn bench_uac_survives_a_180_during_its_pause() {
    let (late, pause) = (Duration::from_millis(200), Duration::from_millis(600));
    late_180_then_caller_bye("bench_uac.xml", late, pause).assert_passed();
}

/// The soak's "media-timeout" calls: the bench UAC's BYE is lost and a
/// retransmission of our INVITE 200 (its ACK lost too) reaches SIPp first.
/// SIPp must ACK that 200 again and keep retransmitting its BYE until the
/// BYE itself is answered; it used to take the INVITE's 200 for the BYE's,
/// call the call done, and leave the gateway holding it for 30 s.
#[test]
fn bench_uac_does_not_take_a_retransmitted_invite_200_for_its_bye_200() {
    let five9_addr = loopback();
    let peer = UdpPeer::new(five9_addr);
    let mut five9 = Sipp::new("bench_uac.xml", five9_addr)
        .remote(peer.me)
        .timeout(Duration::from_secs(15))
        .pause(Duration::from_millis(100))
        .spawn();
    five9.wait_ready(LIMIT);
    let invite = peer.wait_for_msg("INVITE", LIMIT, is("INVITE"));
    let answered = answer(&invite, "200 OK", &peer);
    peer.send(&answered);
    peer.wait_for_msg("ACK", LIMIT, is("ACK"));
    let first_bye = peer.wait_for_msg("BYE", LIMIT, is("BYE"));
    // The BYE "lost": the 200 to the INVITE comes again instead.
    peer.send(&answered);
    peer.wait_for_msg("the ACK again", LIMIT, is("ACK"));
    let again = peer.wait_for_msg(
        "the BYE retransmitted (SIPp took the INVITE's 200 for the BYE's)",
        Duration::from_secs(2),
        is("BYE"),
    );
    assert_eq!(again.header("CSeq"), first_bye.header("CSeq"));
    peer.send(&ok(&again));
    five9.wait().assert_passed();
}

#[test]
fn five9_uac_reinvite_survives_a_late_180_and_a_retransmitted_200() {
    let five9_addr = loopback();
    let peer = UdpPeer::new(five9_addr);
    let mut five9 = Sipp::new("five9_uac_reinvite.xml", five9_addr)
        .remote(peer.me)
        .timeout(Duration::from_secs(15))
        .pause(Duration::from_millis(400))
        .spawn();
    five9.wait_ready(LIMIT);
    let invite = peer.wait_for_msg("INVITE", LIMIT, is("INVITE"));
    peer.send(&answer(&invite, "100 Trying", &peer));
    peer.send(&answer(&invite, "200 OK", &peer));
    peer.wait_for_msg("ACK", LIMIT, is("ACK"));
    std::thread::sleep(Duration::from_millis(100));
    peer.send(&answer(&invite, "180 Ringing", &peer));
    // Hold: our 200 "lost" once, so it goes again after the ACK.
    let hold = peer.wait_for_msg("hold re-INVITE", LIMIT, is("INVITE"));
    let held = answer_with(&hold, "200 OK", &peer, "a=recvonly\r\n");
    peer.send(&held);
    peer.wait_for_msg("ACK to the hold", LIMIT, is("ACK"));
    peer.send(&held);
    peer.wait_for_msg("the ACK again", LIMIT, is("ACK"));
    let resume = peer.wait_for_msg("resume re-INVITE", LIMIT, is("INVITE"));
    peer.send(&answer(&resume, "200 OK", &peer));
    peer.wait_for_msg("ACK to the resume", LIMIT, is("ACK"));
    let bye = peer.wait_for_msg("BYE", LIMIT, is("BYE"));
    peer.send(&ok(&bye));
    five9.wait().assert_passed();
}

#[test]
fn five9_uac_auth_survives_a_late_100_and_a_late_180() {
    let five9_addr = loopback();
    let peer = UdpPeer::new(five9_addr);
    let mut five9 = Sipp::new("five9_uac_auth.xml", five9_addr)
        .remote(peer.me)
        .timeout(Duration::from_secs(15))
        .pause(Duration::from_millis(400))
        .credentials("five9", "s3cret")
        .spawn();
    five9.wait_ready(LIMIT);
    let first = peer.wait_for_msg("INVITE", LIMIT, is("INVITE"));
    let challenge = answer(&first, "401 Unauthorized", &peer).replace(
        "Content-Length: 0",
        "WWW-Authenticate: Digest realm=\"five9\", nonce=\"n-1\", algorithm=MD5, qop=\"auth\"\r\n\
         Content-Length: 0",
    );
    peer.send(&challenge);
    peer.wait_for_msg("ACK to the 401", LIMIT, is("ACK"));
    // The first INVITE's 100, reordered behind its 401.
    peer.send(&answer(&first, "100 Trying", &peer));
    let second = peer.wait_for_msg("INVITE with credentials", LIMIT, is("INVITE"));
    assert!(second.header("Authorization").is_some(), "{}", second.0);
    peer.send(&answer(&second, "200 OK", &peer));
    peer.wait_for_msg("ACK", LIMIT, is("ACK"));
    std::thread::sleep(Duration::from_millis(100));
    peer.send(&answer(&second, "180 Ringing", &peer));
    let bye = peer.wait_for_msg("BYE", LIMIT, is("BYE"));
    peer.send(&ok(&bye));
    five9.wait().assert_passed();
}

#[test]
fn five9_uac_reject_survives_a_late_180_and_a_retransmitted_486() {
    let five9_addr = loopback();
    let peer = UdpPeer::new(five9_addr);
    let mut five9 = Sipp::new("five9_uac_reject.xml", five9_addr)
        .remote(peer.me)
        .timeout(Duration::from_secs(15))
        .set("expect_status", "486")
        .spawn();
    five9.wait_ready(LIMIT);
    let invite = peer.wait_for_msg("INVITE", LIMIT, is("INVITE"));
    let busy = answer(&invite, "486 Busy Here", &peer);
    peer.send(&busy);
    peer.wait_for_msg("ACK", LIMIT, is("ACK"));
    peer.send(&answer(&invite, "180 Ringing", &peer));
    // Our first retransmission comes T1 after the 486: the ACK was "lost".
    std::thread::sleep(Duration::from_millis(500));
    peer.send(&busy);
    peer.wait_for_msg("the ACK again", LIMIT, is("ACK"));
    five9.wait().assert_passed();
}

#[test]
fn five9_uac_cancel_takes_the_487_before_the_200_to_its_cancel() {
    let five9_addr = loopback();
    let peer = UdpPeer::new(five9_addr);
    let mut five9 = Sipp::new("five9_uac_cancel.xml", five9_addr)
        .remote(peer.me)
        .timeout(Duration::from_secs(15))
        .pause(Duration::from_millis(300))
        .spawn();
    five9.wait_ready(LIMIT);
    let invite = peer.wait_for_msg("INVITE", LIMIT, is("INVITE"));
    peer.send(&answer(&invite, "180 Ringing", &peer));
    // The 100, reordered behind the 180.
    peer.send(&answer(&invite, "100 Trying", &peer));
    let cancel = peer.wait_for_msg("CANCEL", LIMIT, is("CANCEL"));
    peer.send(&answer(&invite, "487 Request Terminated", &peer));
    peer.send(&ok(&cancel));
    peer.wait_for_msg("ACK", LIMIT, is("ACK"));
    five9.wait().assert_passed();
}

#[test]
fn agent_uas_takes_a_retransmitted_invite_after_its_200() {
    let agent_addr = loopback();
    let peer = UdpPeer::new(agent_addr);
    let mut agent = Sipp::new("agent_uas.xml", agent_addr)
        .timeout(Duration::from_secs(15))
        .pause(Duration::from_millis(300))
        .spawn();
    agent.wait_ready(LIMIT);
    let me = peer.me;
    let sdp = format!(
        "v=0\r\no=gw 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n",
        ip = me.ip()
    );
    let invite = format!(
        "INVITE sip:agent@{agent_addr} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-gw-inv-1\r\n\
         Max-Forwards: 70\r\nFrom: <sip:five9@{me}>;tag=gw-a\r\nTo: <sip:agent@{agent_addr}>\r\n\
         Call-ID: {}\r\nCSeq: 1 INVITE\r\nContact: <sip:gw@{me}>\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        support::unique("agent-call"),
        sdp.len()
    );
    peer.send(&invite);
    let ok200 = peer.wait_for_msg("200", LIMIT, |m| m.status() == Some(200));
    // Our INVITE again, as if its retransmission had crossed the 200.
    peer.send(&invite);
    let to = ok200.header("To").expect("To").to_owned();
    let ack = format!(
        "ACK sip:agent@{agent_addr} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-gw-ack-1\r\n\
         Max-Forwards: 70\r\nFrom: <sip:five9@{me}>;tag=gw-a\r\nTo: {to}\r\n\
         Call-ID: {}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
        ok200.header("Call-ID").expect("Call-ID")
    );
    peer.send(&ack);
    let bye = peer.wait_for_msg("BYE", LIMIT, is("BYE"));
    peer.send(&ok(&bye));
    agent.wait().assert_passed();
}
