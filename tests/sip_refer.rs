//! Transfers end to end: the multi-tenant policy answers an uncontained
//! call with a REFER to the tenant's queue (`tenant.<t>.refer`), and SIPp,
//! playing Five9, accepts, declines or ignores it. What Five9 must see on
//! the wire: the REFER with `Refer-To` and the outcome's X- headers, then a
//! BYE that repeats those headers only when the transfer did not happen.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use support::gateway::Gateway;
use support::sipp::{Outcome, Sipp, loopback};

const QUEUE: &str = "sip:billing@five9.example.com";

/// A gateway whose tenant `acme` (token `tok-acme-123`) is served by the
/// agent at `agent` and transfers uncontained calls to [`QUEUE`].
fn refer_gateway(agent: SocketAddr) -> Gateway {
    refer_gateway_to(agent, QUEUE)
}

/// [`refer_gateway`] with `tenant.acme.refer = refer`.
fn refer_gateway_to(agent: SocketAddr, refer: &str) -> Gateway {
    let policy = tenant_toml(agent, refer);
    Gateway::start("multi-tenant", &policy, "")
}

/// The multi-tenant policy's config for tenant `acme`.
fn tenant_toml(agent: SocketAddr, refer: &str) -> String {
    format!(
        "\"token.tok-acme-123\" = \"acme\"\n\
         \"tenant.acme.agent\" = \"sip:acme@{agent}\"\n\
         \"tenant.acme.refer\" = \"{refer}\"\n"
    )
}

/// Runs one call through a gateway with `gateway_toml` in `[gateway]`: the
/// agent hangs up reporting not contained, destination Billing; Five9 runs
/// `five9_uac_expect_refer.xml` with `five9_vars`.
fn transfer_call(gateway_toml: &str, five9_vars: &[(&str, &str)]) -> (Gateway, Outcome) {
    let agent_addr = loopback();
    let gw = Gateway::start_with(
        "multi-tenant",
        &tenant_toml(agent_addr, QUEUE),
        "",
        gateway_toml,
    );
    let agent = Sipp::new("agent_uas.xml", agent_addr)
        .set("expect1", "X-Tenant: acme")
        .set("bye_header1", "X-contained: false")
        .set("bye_header2", "X-destination: Billing")
        .pause(Duration::from_millis(200))
        .spawn();
    let mut five9 = Sipp::new("five9_uac_expect_refer.xml", loopback())
        .remote(gw.sip)
        .set("token", "tok-acme-123")
        .set("refer_to", QUEUE)
        .set("contained", "false")
        .set("destination", "Billing");
    for (name, value) in five9_vars {
        five9 = five9.set(name, *value);
    }
    let five9 = five9.run();
    agent.wait().assert_passed();
    (gw, five9)
}

/// The REFER Five9 received: to the queue, with the outcome headers.
fn assert_refer_to_queue(five9: &Outcome) {
    let refer = five9.received_request("REFER").expect("Five9 got a REFER");
    assert_eq!(refer.header("Refer-To"), Some(&*format!("<{QUEUE}>")));
    assert_eq!(refer.header("X-contained"), Some("false"), "{refer:?}");
    assert_eq!(refer.header("X-destination"), Some("Billing"), "{refer:?}");
}

/// The stored outcome line says the call was delivered by REFER.
fn assert_stored_as_refer(gw: &Gateway, session: &str) {
    gw.wait_for_log("outcome stored", Duration::from_secs(5));
    let log = gw.log();
    let line = log
        .lines()
        .find(|l| l.contains("outcome stored"))
        .expect("outcome line");
    assert!(
        line.contains(session) && line.contains("delivery=\"refer\""),
        "{line}"
    );
}

#[test]
fn uncontained_call_is_referred_to_the_tenant_queue_then_plain_bye() {
    let (gw, five9) = transfer_call(
        "",
        &[("session_id", "sess-refer-ok"), ("bye_headers", "no")],
    );
    five9.assert_passed();
    assert_refer_to_queue(&five9);
    let bye = five9.received_request("BYE").expect("Five9 got a BYE");
    assert_eq!(bye.header("X-contained"), None, "transferred: {bye:?}");
    assert_eq!(bye.header("X-destination"), None, "transferred: {bye:?}");
    assert_stored_as_refer(&gw, "sess-refer-ok");
}

#[test]
fn declined_refer_ends_with_a_bye_carrying_the_outcome() {
    let (gw, five9) = transfer_call(
        "",
        &[
            ("session_id", "sess-refer-603"),
            ("refer_status", "603"),
            ("bye_headers", "yes"),
        ],
    );
    five9.assert_passed();
    assert_refer_to_queue(&five9);
    let bye = five9.received_request("BYE").expect("Five9 got a BYE");
    assert_eq!(bye.header("X-contained"), Some("false"), "{bye:?}");
    assert_eq!(bye.header("X-destination"), Some("Billing"), "{bye:?}");
    assert!(five9.sent_request("NOTIFY").is_none(), "{five9}");
    assert_stored_as_refer(&gw, "sess-refer-603");
}

#[test]
fn failed_transfer_in_the_notify_ends_with_a_bye_carrying_the_outcome() {
    let (_gw, five9) = transfer_call(
        "",
        &[("sipfrag", "SIP/2.0 486 Busy Here"), ("bye_headers", "yes")],
    );
    five9.assert_passed();
    assert_refer_to_queue(&five9);
    let bye = five9.received_request("BYE").expect("Five9 got a BYE");
    assert_eq!(bye.header("X-contained"), Some("false"), "{bye:?}");
    assert_eq!(bye.header("X-destination"), Some("Billing"), "{bye:?}");
}

#[test]
fn refer_without_a_notify_times_out_into_a_bye_with_the_outcome() {
    let (gw, five9) = transfer_call(
        "refer_timeout_secs = 2",
        &[("refer_status", "silent"), ("bye_headers", "yes")],
    );
    five9.assert_passed();
    assert_refer_to_queue(&five9);
    let bye = five9.received_request("BYE").expect("Five9 got a BYE");
    assert_eq!(bye.header("X-destination"), Some("Billing"), "{bye:?}");
    // The configured wait, not the default 8 s, between REFER and BYE.
    let refer_at = received_at(&five9, "REFER").expect("REFER time");
    let bye_at = received_at(&five9, "BYE").expect("BYE time");
    let waited = bye_at - refer_at;
    assert!((1.8..6.0).contains(&waited), "waited {waited} s\n{five9}");
    assert!(
        gw.log().contains("no final NOTIFY for the REFER"),
        "{}",
        gw.log()
    );
}

#[test]
fn contained_call_is_not_referred() {
    let agent_addr = loopback();
    let gw = refer_gateway(agent_addr);
    let agent = Sipp::new("agent_uas.xml", agent_addr)
        .set("bye_header1", "X-contained: true")
        .pause(Duration::from_millis(200))
        .spawn();
    let five9 = Sipp::new("five9_uac_expect_contained.xml", loopback())
        .remote(gw.sip)
        .set("token", "tok-acme-123")
        .set("contained", "true")
        .run();
    agent.wait().assert_passed();
    // five9_uac_expect_contained.xml requires X-destination, which a
    // contained call does not get: judge the BYE here instead.
    assert!(five9.received_request("REFER").is_none(), "{five9}");
    let bye = five9.received_request("BYE").expect("Five9 got a BYE");
    assert_eq!(bye.header("X-contained"), Some("true"), "{bye:?}");
}

#[test]
fn refer_target_without_a_user_falls_back_to_the_bye_with_the_outcome() {
    // Five9 would drop a REFER to a bare host; the policy ends with the BYE
    // so the IVR still learns X-contained/X-destination.
    let agent_addr = loopback();
    let gw = refer_gateway_to(agent_addr, "sip:five9.example.com");
    let agent = Sipp::new("agent_uas.xml", agent_addr)
        .set("bye_header1", "X-contained: false")
        .set("bye_header2", "X-destination: Billing")
        .pause(Duration::from_millis(200))
        .spawn();
    let five9 = Sipp::new("five9_uac_expect_contained.xml", loopback())
        .remote(gw.sip)
        .set("token", "tok-acme-123")
        .set("contained", "false")
        .set("destination", "Billing")
        .run();
    agent.wait().assert_passed();
    five9.assert_passed();
    assert!(five9.received_request("REFER").is_none(), "{five9}");
    gw.wait_for_log("outcome stored", Duration::from_secs(5));
    assert!(
        gw.log().contains("is not a sip:user@host URI"),
        "{}",
        gw.log()
    );
}

/// When SIPp received the first `method` request, in seconds since
/// midnight, from the `-trace_msg` entry headers
/// (`----- 2026-11-23 05:36:14.487128`).
fn received_at(run: &Outcome, method: &str) -> Option<f64> {
    let mut stamp = None;
    let mut received = false;
    for line in run.message_trace.lines() {
        if let Some(rest) = line.strip_prefix("-----") {
            let time = rest.trim_start_matches('-').split_whitespace().nth(1);
            stamp = time.and_then(seconds_of_day);
            received = false;
        } else if line.contains(" message received") {
            received = true;
        } else if received && line.starts_with(&format!("{method} ")) {
            return stamp;
        }
    }
    None
}

/// `05:36:14.487128` -> seconds since midnight.
fn seconds_of_day(time: &str) -> Option<f64> {
    let mut parts = time.split(':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let s: f64 = parts.next()?.parse().ok()?;
    Some(h * 3600.0 + m * 60.0 + s)
}
