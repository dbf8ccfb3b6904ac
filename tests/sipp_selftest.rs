//! The SIPp scenarios in `examples/sipp/` played against each other on
//! loopback, with no gateway in between: each pair checks that the flows fit
//! together and that the checks the gateway tests rely on do fail when the
//! peer misbehaves. Also tests the `support/sipp.rs` helper itself.
//!
//! Needs SIPp (`apt-get install sip-tester`); a missing binary fails every
//! test with the install hint.

#[path = "support/sipp.rs"]
mod sipp;

use std::time::Duration;

use sipp::{Outcome, Sipp, loopback};

const LIMIT: Duration = Duration::from_secs(15);

fn peer(scenario: &str) -> Sipp {
    let sipp = Sipp::new(scenario, loopback()).timeout(LIMIT);
    if scenario == "agent_uas.xml" {
        // The agent hangs up after its ACK; without a pause its BYE can
        // reach a loaded Five9 SIPp before that one has moved on to wait
        // for it, which SIPp counts as an unexpected message.
        sipp.pause(Duration::from_millis(200))
    } else {
        sipp
    }
}

/// Runs `uac` against `uas` and returns (uas, uac) outcomes.
fn pair(uas: Sipp, uac: Sipp) -> (Outcome, Outcome) {
    let mut answering = uas.spawn();
    answering.wait_ready(Duration::from_secs(5));
    let calling = uac.remote(answering.addr()).run();
    (answering.wait(), calling)
}

#[test]
fn five9_reads_route_headers_from_the_agents_bye() {
    let metadata = r#"{"intent":"billing","queue":"a|b"}"#;
    let (agent, five9) = pair(
        peer("agent_uas.xml")
            .set("route_reason", "escalation")
            .set("route_type", "queue")
            .set("route_value", "sales")
            .set("route_metadata", metadata)
            .set("expect1", "X-CallSessionID: sess-42")
            .set("expect2", "X-PolyAi-Auth-Token: tok-acme-123")
            .set("expect3", "X-first_name: Ada"),
        peer("five9_uac_expect_route_reason.xml")
            .set("session_id", "sess-42")
            .set("token", "tok-acme-123")
            .set("route_reason", "escalation")
            .set("route_value", "sales")
            .set("route_metadata", metadata),
    );
    agent.assert_passed();
    five9.assert_passed();
    let bye = five9.received_request("BYE").expect("five9 received a BYE");
    assert_eq!(bye.header("X-RouteReason"), Some("escalation"));
    assert_eq!(bye.header("X-RouteType"), Some("queue"));
    assert_eq!(bye.header("X-MetaData"), Some(metadata));
    assert!(
        five9.logs.contains("five9 received BYE: BYE sip:five9@"),
        "{}",
        five9.logs
    );
    let invite = agent
        .received_request("INVITE")
        .expect("agent received an INVITE");
    assert_eq!(invite.header("X-CallSessionID"), Some("sess-42"));
    assert!(invite.text.contains("a=rtpmap:101 telephone-event/8000"));
}

#[test]
fn a_wrong_route_value_fails_the_five9_call() {
    let (agent, five9) = pair(
        peer("agent_uas.xml").set("route_reason", "contained"),
        peer("five9_uac_expect_route_reason.xml").set("route_reason", "escalation"),
    );
    // The agent's side went fine; only Five9's check failed.
    agent.assert_passed();
    five9.assert_failed();
    assert!(
        five9.errors.contains("escalation<=>contained"),
        "{}",
        five9.errors
    );
}

#[test]
fn contained_dialect_headers_are_required() {
    // agent_uas sends only the route dialect unless told otherwise.
    let (_, five9) = pair(
        peer("agent_uas.xml"),
        peer("five9_uac_expect_contained.xml"),
    );
    five9.assert_failed();
    assert!(
        five9.errors.contains("header X-contained: not found"),
        "{}",
        five9.errors
    );

    let (agent, five9) = pair(
        peer("agent_uas.xml")
            .set("bye_header1", "X-contained: false")
            .set("bye_header2", "X-destination: billing-queue"),
        peer("five9_uac_expect_contained.xml")
            .set("contained", "false")
            .set("destination", "billing-queue"),
    );
    agent.assert_passed();
    five9.assert_passed();
}

#[test]
fn generic_five9_expectations_match_header_line_prefixes() {
    let (_, five9) = pair(
        peer("agent_uas.xml"),
        peer("five9_uac.xml")
            .set("expect1", "X-RouteType: queue")
            .set("expect2", "X-MetaData:"),
    );
    five9.assert_passed();

    let (_, five9) = pair(
        peer("agent_uas.xml"),
        peer("five9_uac.xml").set("expect1", "X-contained:"),
    );
    five9.assert_failed();
}

#[test]
fn agent_fails_when_a_forwarded_header_is_missing() {
    let (agent, five9) = pair(
        peer("agent_uas.xml").set("expect1", "X-PolyAi-Auth-Token:"),
        // No token set: Five9 leaves the header out.
        peer("five9_uac.xml"),
    );
    agent.assert_failed();
    // The failed check does not break the call flow for the other side.
    five9.assert_passed();
    let invite = agent.received_request("INVITE").expect("INVITE");
    assert_eq!(invite.header("X-PolyAi-Auth-Token"), None);
}

#[test]
fn five9_defaults_fill_every_call_variable() {
    let (agent, _) = pair(
        peer("agent_uas.xml"),
        peer("five9_uac.xml").set("dialed", "7001"),
    );
    agent.assert_passed();
    let invite = agent.received_request("INVITE").expect("INVITE");
    assert!(
        invite.start_line().starts_with("INVITE sip:7001@"),
        "{}",
        invite.start_line()
    );
    for name in [
        "X-CallANI",
        "X-CallDNIS",
        "X-CallID",
        "X-CallSessionID",
        "X-CallCampaign",
        "X-CallStartTimestamp",
        "X-CallDomainID",
        "X-first_name",
        "X-last_name",
    ] {
        let value = invite
            .header(name)
            .unwrap_or_else(|| panic!("{name} missing"));
        assert!(!value.is_empty(), "{name} is empty");
    }
    let ts: u64 = invite
        .header("X-CallStartTimestamp")
        .unwrap()
        .parse()
        .expect("epoch ms");
    assert!(ts > 1_700_000_000_000, "{ts} is not epoch milliseconds");
}

#[test]
fn caller_hangs_up_first() {
    let (agent, five9) = pair(
        peer("agent_uas_wait_bye.xml").set("codec", "PCMA"),
        peer("five9_uac_hangup.xml").pause(Duration::from_millis(200)),
    );
    agent.assert_passed();
    five9.assert_passed();
    assert!(agent.received_request("BYE").is_some());
    let answer = five9.received_response(200).expect("200 to the INVITE");
    assert!(
        answer.text.contains("m=audio 6000 RTP/AVP 8 101"),
        "{}",
        answer.text
    );
}

#[test]
fn cancel_before_answer_gets_487() {
    let (agent, five9) = pair(peer("agent_uas_slow.xml"), peer("five9_uac_cancel.xml"));
    agent.assert_passed();
    five9.assert_passed();
    let terminated = five9.received_response(487).expect("487");
    assert_eq!(terminated.header("CSeq"), Some("1 INVITE"));
    let invite = five9
        .sent_request("INVITE")
        .unwrap()
        .header("Via")
        .unwrap()
        .to_owned();
    let cancel = five9
        .sent_request("CANCEL")
        .unwrap()
        .header("Via")
        .unwrap()
        .to_owned();
    assert_eq!(invite, cancel, "CANCEL must reuse the INVITE's branch");
}

#[test]
fn reject_checks_the_status_code() {
    let (agent, five9) = pair(
        peer("agent_uas_busy.xml"),
        peer("five9_uac_reject.xml").set("expect_status", "486"),
    );
    agent.assert_passed();
    five9.assert_passed();

    let (_, five9) = pair(
        peer("agent_uas_busy.xml"),
        peer("five9_uac_reject.xml").set("expect_status", "404"),
    );
    five9.assert_failed();
    assert!(five9.errors.contains("404<=>486"), "{}", five9.errors);
}

#[test]
fn an_answered_call_fails_the_reject_scenario() {
    let (_, five9) = pair(peer("agent_uas.xml"), peer("five9_uac_reject.xml"));
    five9.assert_failed();
}

#[test]
fn hold_and_resume() {
    let (agent, five9) = pair(
        peer("agent_uas_reinvite.xml"),
        peer("five9_uac_reinvite.xml").pause(Duration::from_millis(100)),
    );
    agent.assert_passed();
    five9.assert_passed();
    let invites = five9
        .messages
        .iter()
        .filter(|m| m.sent && m.method() == Some("INVITE"));
    assert_eq!(invites.count(), 3);
}

#[test]
fn digest_challenge_is_answered() {
    let (gateway, five9) = pair(
        peer("selftest/auth_challenge_uas.xml")
            .set("user", "five9")
            .set("password", "s3cret"),
        peer("five9_uac_auth.xml").credentials("five9", "s3cret"),
    );
    gateway.assert_passed();
    five9.assert_passed();
    let retry = five9
        .messages
        .iter()
        .filter(|m| m.sent && m.method() == Some("INVITE"))
        .nth(1);
    let auth = retry
        .and_then(|m| m.header("Authorization"))
        .expect("Authorization on the retry");
    assert!(auth.starts_with("Digest username=\"five9\""), "{auth}");

    let (gateway, five9) = pair(
        peer("selftest/auth_challenge_uas.xml")
            .set("user", "five9")
            .set("password", "s3cret"),
        peer("five9_uac_auth.xml").credentials("five9", "wrong"),
    );
    gateway.assert_failed();
    five9.assert_failed();
}

#[test]
fn options_ping_gets_200() {
    let (_, ping) = pair(peer("selftest/options_uas.xml"), peer("options_ping.xml"));
    ping.assert_passed();
    assert_eq!(ping.successful, 1);
}

#[test]
fn bench_pair_completes_calls_at_a_rate() {
    let (uas, uac) = pair(
        peer("bench_uas.xml").calls(20),
        peer("bench_uac.xml")
            .calls(20)
            .arg("-r")
            .arg("50")
            .arg("-s")
            .arg("bench"),
    );
    uac.assert_passed();
    uas.assert_passed();
    assert_eq!((uac.successful, uac.failed), (20, 0));
}

#[test]
fn no_peer_fails_by_sipps_own_timeout() {
    let started = std::time::Instant::now();
    // Nobody listens at this address: the INVITE goes unanswered.
    let out = peer("five9_uac.xml")
        .remote(loopback())
        .timeout(Duration::from_secs(2))
        .run();
    assert!(!out.passed());
    assert!(!out.killed, "SIPp should stop on its -timeout\n{out}");
    assert_eq!(out.status, Some(255), "-timeout_error exits 255\n{out}");
    assert!(started.elapsed() < Duration::from_secs(6));
}

#[test]
fn helper_kills_a_sipp_that_outlives_its_deadline() {
    let mut waiting = peer("agent_uas.xml")
        .timeout(Duration::from_secs(60))
        .kill_after(Duration::from_secs(1))
        .spawn();
    waiting.wait_ready(Duration::from_secs(5));
    let out = waiting.wait();
    assert!(out.killed);
    assert!(!out.passed());
}

#[test]
fn an_undeclared_variable_is_refused() {
    let out = peer("options_ping.xml")
        .set("no_such_variable", "1")
        .remote(loopback())
        .run();
    assert!(!out.passed());
    assert!(out.stdout.contains("no_such_variable"), "{out}");
}
