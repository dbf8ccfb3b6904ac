//! Calls the gateway places (`POST /v1/calls`) through an `[[outbound]]`
//! trunk, end to end: SIPp plays Five9's SBC (digest challenge checked
//! with its `verifyauth`, ringing, answer or refusal) and the AI agent;
//! the API answers with the call's progress and, once it ended, its record.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::gateway::{Gateway, OTHER_TENANT_KEY, TEST_KEY};
use support::http;
use support::rtp::{PCMA, PCMU, analyse};
use support::sipp::{Sipp, loopback};
use support::uas::Uas;

const USER: &str = "trunkline-out";
const PASSWORD: &str = "s3cret-out-7731";

/// A gateway with one outbound trunk toward `five9`, its password from the
/// environment.
fn gateway(five9: SocketAddr, extra: &str) -> Gateway {
    Gateway::builder("route-reason")
        .policy_toml("default_agent = \"builtin:menu\"")
        .env("F9_OUT_PASSWORD", PASSWORD)
        .extra_toml(&format!(
            "[[outbound]]\nname = \"five9-out\"\nuri = \"sip:{five9}\"\nring_timeout_secs = 8\n{extra}\n\
             [outbound.auth]\nuser = \"{USER}\"\npassword_env = \"F9_OUT_PASSWORD\"\n\
             [outbound.caller_id]\nuser = \"+18005550100\"\ndisplay = \"Acme Support\"\nassert_identity = true\n\
             [outbound.numbers]\ndefault_country_code = \"1\"\n"
        ))
        .start()
}

fn place(gw: &Gateway, body: Value, key: &str) -> http::Response {
    http::post_json(gw.http, "/v1/calls", Some(key), &body)
}

fn call_id(r: &http::Response) -> String {
    assert_eq!(r.status, 201, "{r}");
    let v: Value = serde_json::from_str(&r.body).expect("JSON");
    assert_eq!(v["state"], "dialling", "{r}");
    v["call_id"].as_str().expect("a call id").to_owned()
}

/// Polls `GET /v1/calls/{id}` until its state is `want` (or `limit`
/// passes); returns the last answer.
fn wait_state(gw: &Gateway, id: &str, want: &str, limit: Duration) -> Value {
    let until = Instant::now() + limit;
    loop {
        let r = http::get(gw.http, &format!("/v1/calls/{id}"), Some(TEST_KEY));
        let v: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
        if v["state"] == want || Instant::now() >= until {
            return v;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_placed_call_answers_the_challenge_reaches_the_agent_and_ends_with_the_outcome() {
    let five9_addr = loopback();
    let agent_addr = loopback();
    let gw = gateway(five9_addr, "");
    let mut five9 = Sipp::new("five9_uas_outbound.xml", five9_addr)
        .set("user", USER)
        .set("password", PASSWORD)
        .set("expect1", "P-Asserted-Identity: <sip:+18005550100@")
        .set("expect2", "X-Campaign: renewals")
        .spawn();
    let mut agent = Sipp::new("agent_uas.xml", agent_addr)
        .set("route_reason", "sale_closed")
        .set("expect1", "X-Trunkline-Call-ID: tl-")
        .pause(Duration::from_millis(800))
        .spawn();
    five9.wait_ready(Duration::from_secs(5));
    agent.wait_ready(Duration::from_secs(5));

    let r = place(
        &gw,
        json!({
            "to": "(415) 555-0100",
            "outbound": "five9-out",
            "agent": format!("sip:agent@{agent_addr}"),
            "headers": {"X-Campaign": "renewals"},
            "attributes": {"lead": "42"}
        }),
        TEST_KEY,
    );
    let id = call_id(&r);
    let up = wait_state(&gw, &id, "connected", Duration::from_secs(10));
    assert_eq!(up["state"], "connected", "{up}");
    assert_eq!(up["outbound"], "five9-out");

    let agent = agent.wait();
    let five9 = five9.wait_within(Duration::from_secs(10));
    agent.assert_passed();
    five9.assert_passed();

    // What Five9 got: the number in E.164 on the trunk's host, our caller
    // id, the API's header, then the BYE with the policy's outcome.
    let invite = five9
        .last_received_request("INVITE")
        .expect("Five9 got the INVITE");
    assert!(
        invite
            .start_line()
            .starts_with(&format!("INVITE sip:+14155550100@{five9_addr};user=phone ")),
        "{}",
        invite.start_line()
    );
    assert!(invite.header("From").unwrap().contains("+18005550100"));
    assert!(invite.header("Authorization").unwrap().contains(USER));
    assert_eq!(invite.header("X-Campaign"), Some("renewals"));
    let bye = five9.received_request("BYE").expect("Five9 got a BYE");
    assert_eq!(bye.header("X-RouteReason"), Some("sale_closed"), "{bye:?}");

    let ended = wait_state(&gw, &id, "ended", Duration::from_secs(5));
    assert_eq!(ended["state"], "ended", "{ended}");
    assert_eq!(ended["end_reason"], "agent-hangup", "{ended}");
    assert!(ended.get("failure").is_none(), "{ended}");
    assert!(ended["answered_ms"].as_u64().is_some(), "{ended}");
    assert!(!gw.log().contains(PASSWORD), "the password reached the log");
}

#[test]
fn a_busy_number_ends_the_call_with_a_busy_failure_and_no_agent() {
    let five9_addr = loopback();
    let gw = gateway(five9_addr, "");
    let mut five9 = Sipp::new("five9_uas_outbound.xml", five9_addr)
        .set("user", USER)
        .set("password", PASSWORD)
        .set("busy", "1")
        .spawn();
    five9.wait_ready(Duration::from_secs(5));
    let id = call_id(&place(
        &gw,
        json!({"to": "+14155550111", "outbound": "five9-out", "agent": "sip:agent@127.0.0.1:9"}),
        TEST_KEY,
    ));
    five9.wait_within(Duration::from_secs(10)).assert_passed();
    let ended = wait_state(&gw, &id, "ended", Duration::from_secs(5));
    assert_eq!(ended["state"], "ended", "{ended}");
    assert_eq!(ended["failure"]["kind"], "busy", "{ended}");
    assert_eq!(ended["failure"]["status"], 486, "{ended}");
    assert_eq!(ended["end_reason"], "error", "{ended}");
}

#[test]
fn wrong_credentials_end_the_call_as_auth_failed_with_five9s_403() {
    let five9_addr = loopback();
    let gw = gateway(five9_addr, "");
    let mut five9 = Sipp::new("five9_uas_outbound.xml", five9_addr)
        .set("user", USER)
        .set("password", "not-the-password")
        .spawn();
    five9.wait_ready(Duration::from_secs(5));
    let id = call_id(&place(
        &gw,
        json!({"to": "+14155550122", "outbound": "five9-out", "agent": "builtin:menu"}),
        TEST_KEY,
    ));
    five9.wait_within(Duration::from_secs(10)).assert_passed();
    let ended = wait_state(&gw, &id, "ended", Duration::from_secs(5));
    assert_eq!(ended["failure"]["kind"], "auth-failed", "{ended}");
    assert_eq!(ended["failure"]["status"], 403, "{ended}");
}

#[test]
fn bad_requests_get_422_and_a_full_trunk_429() {
    // Nothing listens at Five9's address: the call keeps ringing (its
    // INVITE unanswered) and holds the trunk's one slot.
    let five9_addr = loopback();
    let gw = gateway(five9_addr, "max_concurrent = 1");
    let cases = [
        (
            json!({"to": "+14155550100", "outbound": "nope"}),
            "no [[outbound]] trunk",
        ),
        (
            json!({"to": "1234", "outbound": "five9-out"}),
            "bare extension",
        ),
        (
            json!({"to": "+14155550100", "outbound": "five9-out", "headers": {"Via": "x"}}),
            "only X- headers",
        ),
        (
            json!({"to": "+14155550100", "outbound": "five9-out", "ring_timeout_secs": 0}),
            "ring_timeout_secs",
        ),
        (json!({"outbound": "five9-out"}), "to"),
    ];
    for (body, needle) in cases {
        let r = place(&gw, body.clone(), TEST_KEY);
        assert_eq!(r.status, 422, "{body}: {r}");
        assert!(r.body.contains(needle), "{body}: {r}");
    }
    // No key, no call.
    let r = http::post_json(
        gw.http,
        "/v1/calls",
        None,
        &json!({"to": "+14155550100", "outbound": "five9-out", "agent": "builtin:menu"}),
    );
    assert_eq!(r.status, 401, "{r}");
    // Another tenant's key does not see the trunk at all.
    let r = place(
        &gw,
        json!({"to": "+14155550100", "outbound": "five9-out", "agent": "builtin:menu"}),
        OTHER_TENANT_KEY,
    );
    assert_eq!(r.status, 422, "{r}");
    assert!(r.body.contains("no [[outbound]] trunk"), "{r}");

    // No agent in the request: the policy's `route` picks it (here its
    // default agent).
    let first = call_id(&place(
        &gw,
        json!({"to": "+14155550100", "outbound": "five9-out"}),
        TEST_KEY,
    ));
    let ringing = wait_state(&gw, &first, "dialling", Duration::from_secs(2));
    assert_eq!(ringing["state"], "dialling", "{ringing}");
    assert_eq!(ringing["target"], "builtin:menu", "{ringing}");
    assert_eq!(ringing["outbound"], "five9-out", "{ringing}");
    let r = place(
        &gw,
        json!({"to": "+14155550199", "outbound": "five9-out", "agent": "builtin:menu"}),
        TEST_KEY,
    );
    assert_eq!(r.status, 429, "{r}");
    assert_eq!(r.header("retry-after"), Some("5"), "{r}");

    // Ended through the control API while still dialling: a CANCEL is not
    // due (no provisional came), the record says why.
    let r = http::post_json(
        gw.http,
        &format!("/v1/calls/{first}/end"),
        Some(TEST_KEY),
        &json!({}),
    );
    assert_eq!(r.status, 202, "{r}");
    let ended = wait_state(&gw, &first, "ended", Duration::from_secs(5));
    assert_eq!(ended["end_reason"], "agent-request", "{ended}");
}

#[test]
fn a_placed_call_carries_audio_both_ways_between_pcma_five9_and_a_pcmu_agent() {
    let five9_sip = loopback();
    let gw = Gateway::builder("route-reason")
        .policy_toml("default_agent = \"builtin:menu\"")
        .extra_toml(&format!(
            "[[outbound]]\nname = \"plain\"\nuri = \"sip:{five9_sip}\"\n\
             [outbound.caller_id]\nuser = \"+18005550100\"\n"
        ))
        .start();
    // Five9's SBC on the trunk's address; the agent anywhere.
    let five9 = Uas::at(five9_sip, gw.sip);
    let agent = Uas::new(gw.sip);
    let id = call_id(&place(
        &gw,
        json!({"to": "+14155550100", "outbound": "plain", "agent": format!("sip:agent@{}", agent.sip.me)}),
        TEST_KEY,
    ));
    // Our offer toward Five9: G.711 only, with telephone-event.
    let offer = five9.answer(PCMA);
    let payloads = offer.audio_payloads();
    assert_eq!(payloads, ["0", "8", "101"], "{offer:?}");
    // The agent is called only now, once the number answered.
    let to_agent = agent.answer(PCMU);
    assert!(
        to_agent
            .header("X-Trunkline-Call-ID")
            .is_some_and(|v| v == id),
        "{to_agent:?}"
    );
    // The agent sees who it talks to: the number dialled.
    assert!(
        to_agent
            .header("From")
            .is_some_and(|f| f.contains("sip:+14155550100@")),
        "{to_agent:?}"
    );
    let up = wait_state(&gw, &id, "connected", Duration::from_secs(5));
    assert_eq!(up["state"], "connected", "{up}");

    // Five9 says 1004 Hz in PCMA, the agent 440 Hz in PCMU: each hears the
    // other's tone in its own codec.
    let f9_tone = five9.rtp.send_tone(offer.rtp_target(), PCMA, 1004.0);
    let agent_tone = agent.rtp.send_tone(to_agent.rtp_target(), PCMU, 440.0);
    std::thread::sleep(Duration::from_millis(300));
    five9.rtp.drain();
    agent.rtp.drain();
    let heard_by_agent = agent.rtp.collect(Duration::from_secs(1), Some(PCMU));
    let heard_by_five9 = five9.rtp.collect(Duration::from_secs(1), Some(PCMA));
    f9_tone.stop();
    agent_tone.stop();
    let a = analyse(&heard_by_agent).expect("the agent heard audio");
    let f = analyse(&heard_by_five9).expect("Five9 heard audio");
    assert!((a.freq - 1004.0).abs() < 5.0, "the agent heard {a:?}");
    assert!((f.freq - 440.0).abs() < 5.0, "Five9 heard {f:?}");
    assert!(a.snr_db > 30.0 && f.snr_db > 30.0, "{a:?} {f:?}");

    // Ended through the control API: both sides get a BYE.
    let r = http::post_json(
        gw.http,
        &format!("/v1/calls/{id}/end"),
        Some(TEST_KEY),
        &json!({}),
    );
    assert_eq!(r.status, 202, "{r}");
    agent.take_bye();
    five9.take_bye();
    let ended = wait_state(&gw, &id, "ended", Duration::from_secs(5));
    assert_eq!(ended["end_reason"], "agent-request", "{ended}");
}
