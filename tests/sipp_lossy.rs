//! The Five9 SIPp scenarios on a lossy network, played against a raw UDP
//! peer that stands in for the gateway: a 180 reordered behind the 200 must
//! not fail the call, and a BYE retransmitted because our 200 was lost must
//! be answered with 200 again. No gateway runs here.
//!
//! Needs SIPp (`apt-get install sip-tester`).

mod support;

use std::time::Duration;

use support::sip_text::{Msg, UdpPeer};
use support::sipp::{Outcome, Sipp, loopback};

const LIMIT: Duration = Duration::from_secs(5);

/// A response to `invite` with `code`, a To tag and, for a 200, an SDP answer.
fn answer(invite: &Msg, code: &str, peer: &UdpPeer) -> String {
    let mut head = format!("SIP/2.0 {code}\r\n");
    for name in ["Via", "From", "Call-ID", "CSeq"] {
        for value in invite.headers(name) {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    let to = invite.header("To").expect("INVITE To");
    head.push_str(&format!("To: {to};tag=gw-1\r\n"));
    head.push_str(&format!("Contact: <sip:gw@{}>\r\n", peer.me));
    if !code.starts_with("200") {
        return head + "Content-Length: 0\r\n\r\n";
    }
    let ip = peer.me.ip();
    let sdp = format!(
        "v=0\r\no=gw 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
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

/// Plays the gateway against `scenario`: 100, 200, a late 180, the ACK, then
/// our BYE twice (the first 200 "lost"). Returns SIPp's outcome and the two
/// responses to the BYE.
fn lossy_call(scenario: &str) -> (Outcome, Vec<Msg>) {
    let five9_addr = loopback();
    let peer = UdpPeer::new(five9_addr);
    let mut five9 = Sipp::new(scenario, five9_addr)
        .remote(peer.me)
        .timeout(Duration::from_secs(15))
        .spawn();
    five9.wait_ready(LIMIT);
    let invite = peer.wait_for_msg("INVITE", LIMIT, |m| m.method() == Some("INVITE"));
    peer.send(&answer(&invite, "100 Trying", &peer));
    peer.send(&answer(&invite, "200 OK", &peer));
    peer.send(&answer(&invite, "180 Ringing", &peer));
    peer.wait_for_msg("ACK", LIMIT, |m| m.method() == Some("ACK"));
    std::thread::sleep(Duration::from_millis(300));
    let bye = bye(&invite, &peer);
    let mut answers = Vec::new();
    for _ in 0..2 {
        peer.send(&bye);
        match peer.recv(LIMIT) {
            Some(m) if m.cseq_method() == Some("BYE") => answers.push(m),
            other => panic!(
                "{scenario}: no answer to BYE #{}: {other:?}\n{}",
                answers.len() + 1,
                five9.wait()
            ),
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    (five9.wait(), answers)
}

fn assert_survives(scenario: &str) {
    let (five9, answers) = lossy_call(scenario);
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

/// Plays the gateway against a scenario that hangs up itself: 100, 200, a
/// late 180, then the scenario's BYE gets a 200. Returns SIPp's outcome.
fn late_180_then_caller_bye(scenario: &str) -> Outcome {
    let five9_addr = loopback();
    let peer = UdpPeer::new(five9_addr);
    let mut five9 = Sipp::new(scenario, five9_addr)
        .remote(peer.me)
        .timeout(Duration::from_secs(15))
        .pause(Duration::from_millis(300))
        .spawn();
    five9.wait_ready(LIMIT);
    let invite = peer.wait_for_msg("INVITE", LIMIT, |m| m.method() == Some("INVITE"));
    peer.send(&answer(&invite, "100 Trying", &peer));
    peer.send(&answer(&invite, "200 OK", &peer));
    peer.send(&answer(&invite, "180 Ringing", &peer));
    peer.wait_for_msg("ACK", LIMIT, |m| m.method() == Some("ACK"));
    match peer.recv(LIMIT) {
        Some(m) if m.method() == Some("BYE") => {
            let mut ok = String::from("SIP/2.0 200 OK\r\n");
            for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
                for value in m.headers(name) {
                    ok.push_str(&format!("{name}: {value}\r\n"));
                }
            }
            peer.send(&(ok + "Content-Length: 0\r\n\r\n"));
        }
        other => panic!("{scenario}: no BYE: {other:?}\n{}", five9.wait()),
    }
    five9.wait()
}

#[test]
fn five9_uac_hangup_survives_a_late_180() {
    late_180_then_caller_bye("five9_uac_hangup.xml").assert_passed();
}

#[test]
fn bench_uac_survives_a_late_180() {
    late_180_then_caller_bye("bench_uac.xml").assert_passed();
}
