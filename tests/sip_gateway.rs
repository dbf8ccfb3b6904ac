//! The gateway end to end with real SIP peers on loopback: SIPp plays Five9
//! and plays the AI agent; Trunkline routes with a real policy component.

mod support;

use std::time::Duration;

use support::gateway::Gateway;
use support::sipp::{Sipp, loopback};

fn route_reason_gateway(agent: std::net::SocketAddr) -> Gateway {
    Gateway::start(
        "route-reason",
        &format!("default_agent = \"sip:agent@{agent}\""),
        "",
    )
}

#[test]
fn agent_hangs_up_and_five9_gets_the_route_reason_headers() {
    let agent_addr = loopback();
    let gw = route_reason_gateway(agent_addr);
    let agent = Sipp::new("agent_uas.xml", agent_addr)
        .set("route_reason", "billing_question")
        .set("route_type", "queue")
        .set("route_value", "Billing_Queue")
        .set("expect1", "X-Trunkline-Call-ID: tl-")
        .pause(Duration::from_millis(300))
        .spawn();
    let five9 = Sipp::new("five9_uac_expect_route_reason.xml", loopback())
        .remote(gw.sip)
        .set("session_id", "sess-route-1")
        .run();
    let agent = agent.wait();
    five9.assert_passed();
    agent.assert_passed();
    let bye = five9.received_request("BYE").expect("Five9 got a BYE");
    assert_eq!(
        bye.header("X-RouteReason"),
        Some("billing_question"),
        "{bye:?}"
    );
    assert_eq!(bye.header("X-RouteType"), Some("queue"));
    assert_eq!(bye.header("X-RouteValue"), Some("Billing_Queue"));
    let meta: serde_json::Value = serde_json::from_str(bye.header("X-MetaData").unwrap()).unwrap();
    assert_eq!(meta["intent"], "billing");
    gw.wait_for_log("outcome stored", Duration::from_secs(5));
    assert!(gw.log().contains("sess-route-1"));
}
