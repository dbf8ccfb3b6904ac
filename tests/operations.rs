//! Running the gateway unattended: SIGTERM drains calls through `conclude`,
//! and secrets never reach the log.

mod support;

use std::time::{Duration, Instant};

use support::gateway::{Gateway, TEST_KEY};
use support::sipp::{Sipp, loopback};

#[test]
fn sigterm_refuses_new_calls_then_ends_active_ones_through_conclude() {
    let agent_addr = loopback();
    let mut gw = Gateway::builder("route-reason")
        .policy_toml(&format!("default_agent = \"sip:agent@{agent_addr}\""))
        .gateway_toml("drain_secs = 2")
        .start();
    let agent = Sipp::new("agent_uas_wait_bye.xml", agent_addr).spawn();
    // The call in progress is ended by the drain: conclude runs (reason
    // `error`, the shutdown) and Five9 gets its BYE with the headers.
    let five9 = Sipp::new("five9_uac.xml", loopback())
        .remote(gw.sip)
        .set("session_id", "sess-drain-1")
        .set("expect1", "X-RouteReason: error")
        .spawn();
    gw.wait_for_log("call connected", Duration::from_secs(10));

    let term_at = Instant::now();
    gw.signal("TERM");
    gw.wait_for_log("draining", Duration::from_secs(5));
    // A new call while draining: 503, never routed.
    Sipp::new("five9_uac_reject.xml", loopback())
        .remote(gw.sip)
        .set("expect_status", "503")
        .run()
        .assert_passed();
    assert!(
        gw.log().matches("routing call").count() == 1,
        "only the first call was routed:\n{}",
        gw.log()
    );

    let five9 = five9.wait();
    five9.assert_passed();
    agent.wait().assert_passed();
    let status = gw
        .wait_exit(Duration::from_secs(15))
        .expect("the gateway exits after draining");
    assert!(status.success(), "exit status {status:?}");
    let waited = term_at.elapsed();
    assert!(
        waited >= Duration::from_secs(2),
        "the active call was given drain_secs before being ended ({waited:?})"
    );
    let log = gw.log();
    let stored = log
        .lines()
        .find(|l| l.contains("outcome stored"))
        .unwrap_or_else(|| panic!("outcome stored before exit:\n{log}"));
    assert!(stored.contains("sess-drain-1"), "{stored}");
    assert!(log.contains("stopped"), "{log}");
}

#[test]
fn tokens_keys_and_digest_values_never_reach_the_log() {
    let agent_addr = loopback();
    let gw = Gateway::builder("multi-tenant")
        .policy_toml(&format!(
            "\"tenant.acme.agent\" = \"sip:agent@{agent_addr}\"\n\"token.tok-acme-secret-77\" = \"acme\"\n"
        ))
        .trunk_toml(
            "allow = []\n[trunk.auth]\nrealm = \"trunkline\"\nusers = { five9 = \"pw-very-secret-99\" }\nalgorithms = [\"MD5\"]\n",
        )
        // The SIP trace prints every message: the redaction must hold there.
        .env("RUST_LOG", "info,trunkline=trace")
        .start();
    let agent = Sipp::new("agent_uas_wait_bye.xml", agent_addr).spawn();
    let five9 = Sipp::new("five9_uac_auth.xml", loopback())
        .remote(gw.sip)
        .credentials("five9", "pw-very-secret-99")
        .arg("-auth_uri")
        .arg(format!("+14155550100@{}", gw.sip))
        .set("token", "tok-acme-secret-77")
        // An API key showing up in a call variable (a misconfigured IVR):
        // still scrubbed, by value.
        .set("session_id", TEST_KEY)
        .run();
    five9.assert_passed();
    agent.wait().assert_passed();
    gw.wait_for_log("outcome stored", Duration::from_secs(5));
    let log = gw.log();
    assert!(log.contains("SIP in"), "the SIP trace is on:\n{log}");
    assert!(log.contains("Authorization: Digest"), "{log}");
    for secret in ["tok-acme-secret-77", TEST_KEY, "pw-very-secret-99"] {
        assert!(!log.contains(secret), "{secret} leaked:\n{log}");
    }
    let digest = log
        .lines()
        .find(|l| l.starts_with("Authorization: Digest"))
        .unwrap();
    assert!(digest.contains("response=\"[redacted]\""), "{digest}");
    assert!(log.contains("[redacted]"));
}

#[test]
fn json_logs_carry_the_call_span_on_every_call_line() {
    let agent_addr = loopback();
    let gw = Gateway::builder("route-reason")
        .policy_toml(&format!("default_agent = \"sip:agent@{agent_addr}\""))
        .extra_toml("[log]\nformat = \"json\"\n")
        .start();
    let agent = Sipp::new("agent_uas.xml", agent_addr)
        .set("route_reason", "billing_question")
        .pause(Duration::from_millis(300))
        .spawn();
    Sipp::new("five9_uac.xml", loopback())
        .remote(gw.sip)
        .set("session_id", "sess-json-1")
        .run()
        .assert_passed();
    agent.wait().assert_passed();
    gw.wait_for_log("outcome stored", Duration::from_secs(5));
    let log = gw.log();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    // Lines about the call, from routing to the stored outcome, sit in its
    // span: call id, shared id, trunk, policy and version.
    let about_call: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["span"]["name"] == "call")
        .collect();
    let messages: Vec<&str> = about_call
        .iter()
        .filter_map(|l| l["fields"]["message"].as_str())
        .collect();
    for wanted in ["routing call", "call connected", "outcome stored"] {
        assert!(
            messages.iter().any(|m| m.contains(wanted)),
            "{wanted:?} not in the call span: {messages:?}"
        );
    }
    let span = &about_call.last().unwrap()["span"];
    assert!(
        span["call_id"].as_str().unwrap().starts_with("tl-"),
        "{span}"
    );
    assert_eq!(span["shared_id"], "sess-json-1", "{span}");
    assert_eq!(span["trunk"], "five9");
    assert_eq!(span["policy"], "route-reason");
    assert_eq!(span["version"].as_str().map(str::len), Some(64), "{span}");
}
