//! The HTTP API of the real binary: keys and tenants, the control API on a
//! live SIP agent call (SIPp as Five9 and as the agent), the Handoff API
//! after it, `/metrics` moving during the call, and the status endpoints.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::gateway::{Gateway, OTHER_TENANT_KEY, TEST_KEY};
use support::http::{self, get, post_json, post_raw};
use support::sipp::{Sipp, loopback};

fn route_reason_gateway(agent: SocketAddr) -> Gateway {
    Gateway::start(
        "route-reason",
        &format!("default_agent = \"sip:agent@{agent}\""),
        "",
    )
}

/// The value of the series `series` (name and labels exactly as printed),
/// 0 when absent.
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.split(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

fn scrape(gw: &Gateway) -> String {
    let r = get(gw.http, "/metrics", None);
    assert_eq!(r.status, 200, "{r}");
    r.body
}

fn wait_ready(gw: &Gateway) {
    let start = Instant::now();
    while get(gw.http, "/readyz", None).status != 200 {
        assert!(start.elapsed() < Duration::from_secs(10), "never ready");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the key's call list shows a connected call filed under
/// `shared_id`; its call info.
fn wait_connected(gw: &Gateway, shared_id: &str) -> Value {
    let start = Instant::now();
    loop {
        let r = get(gw.http, "/v1/calls", Some(TEST_KEY));
        assert_eq!(r.status, 200, "{r}");
        let found = r.json["calls"]
            .as_array()
            .and_then(|calls| calls.iter().find(|c| c["shared_id"] == shared_id).cloned());
        if let Some(call) = found.filter(|c| c["state"] == "connected") {
            return call;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "call {shared_id} never connected: {r}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn assert_error(r: &http::Response, status: u16, code: &str) {
    assert_eq!(r.status, status, "{r}");
    assert_eq!(r.json["error"], code, "{r}");
    assert!(
        r.json["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{r}"
    );
}

#[test]
fn status_endpoints_keys_and_every_error() {
    let gw = route_reason_gateway(loopback());
    let addr = gw.http;

    let health = get(addr, "/healthz", None);
    assert_eq!(
        (health.status, health.json["status"].clone()),
        (200, json!("ok"))
    );
    wait_ready(&gw);
    assert_eq!(get(addr, "/readyz", None).json["status"], "ready");

    // Keys: none, wrong, wrong scheme → 401 with the Bearer challenge.
    for key in [None, Some("not-a-key"), Some("")] {
        let r = get(addr, "/v1/calls", key);
        assert_error(&r, 401, "unauthorized");
        assert!(
            r.header("www-authenticate")
                .is_some_and(|v| v.starts_with("Bearer")),
            "{r}"
        );
        assert!(
            !r.body.contains("not-a-key"),
            "the presented key is not echoed"
        );
    }
    let basic = http::request(
        addr,
        "GET",
        "/v1/calls",
        &[("Authorization".into(), format!("Basic {TEST_KEY}"))],
        b"",
    );
    assert_error(&basic, 401, "unauthorized");
    assert_error(
        &post_json(addr, "/handoff", None, &json!({"shared_id": "x"})),
        401,
        "unauthorized",
    );
    assert!(!gw.log().contains(TEST_KEY), "keys never reach the log");

    // Policies: the one serving, with its hash and load time.
    let p = get(addr, "/v1/policies", Some(TEST_KEY));
    assert_eq!(p.status, 200, "{p}");
    let policy = &p.json["policies"][0];
    assert_eq!(policy["name"], "route-reason");
    assert_eq!(policy["state"], "serving");
    assert_eq!(policy["hash"].as_str().map(str::len), Some(64), "{p}");
    assert!(
        policy["loaded_at"]
            .as_u64()
            .is_some_and(|t| t > 1_600_000_000),
        "{p}"
    );
    assert_error(&get(addr, "/v1/policies", None), 401, "unauthorized");

    // Control API errors on calls that do not exist or bodies that are wrong.
    assert_eq!(
        get(addr, "/v1/calls", Some(TEST_KEY)).json,
        json!({"calls": []})
    );
    assert_error(
        &get(addr, "/v1/calls/tl-ffff", Some(TEST_KEY)),
        404,
        "not_found",
    );
    assert_error(
        &get(addr, "/v1/calls/garbage", Some(TEST_KEY)),
        404,
        "not_found",
    );
    for undecodable in ["/v1/calls/%FF%FE", "/v1/outcomes/%FF%FE"] {
        assert_error(&get(addr, undecodable, Some(TEST_KEY)), 404, "not_found");
    }
    let attrs = json!({"attributes": {"five9.route_reason": "x"}});
    let unknown = post_json(addr, "/v1/calls/tl-ffff/attributes", Some(TEST_KEY), &attrs);
    assert_error(&unknown, 404, "not_found");
    assert_error(
        &post_json(addr, "/v1/calls/tl-ffff/end", Some(TEST_KEY), &json!({})),
        404,
        "not_found",
    );
    let json_ct = [("Content-Type", "application/json")];
    // (operation, request headers, body, status, error code)
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a [u8], u16, &'a str);
    let cases: [Case; 8] = [
        (
            "attributes",
            &json_ct,
            b"{\"attributes\": ",
            422,
            "invalid_body",
        ),
        (
            "attributes",
            &json_ct,
            b"{\"attributes\": [1]}",
            422,
            "invalid_body",
        ),
        ("attributes", &json_ct, b"{}", 422, "invalid_body"),
        (
            "attributes",
            &json_ct,
            b"{\"attributes\": {\"\": \"v\"}}",
            422,
            "invalid_body",
        ),
        (
            "attributes",
            &json_ct,
            b"{\"attributes\": {\"k\": \"a\\r\\nb\"}}",
            422,
            "invalid_body",
        ),
        (
            "attributes",
            &[("Content-Type", "text/plain")],
            b"{\"attributes\": {}}",
            415,
            "unsupported_media_type",
        ),
        (
            "transfer",
            &json_ct,
            b"{\"attributes\": {}}",
            422,
            "invalid_body",
        ),
        (
            "transfer",
            &json_ct,
            b"{\"destination\": \"  \"}",
            422,
            "invalid_body",
        ),
    ];
    for (op, headers, body, status, code) in cases {
        let r = post_raw(
            addr,
            &format!("/v1/calls/tl-ffff/{op}"),
            Some(TEST_KEY),
            headers,
            body,
        );
        assert_error(&r, status, code);
    }

    // Handoff errors: unknown → 404 not_found; bad bodies → 422/415.
    let unknown = post_json(
        addr,
        "/handoff",
        Some(TEST_KEY),
        &json!({"shared_id": "nope"}),
    );
    assert_error(&unknown, 404, "not_found");
    assert_error(
        &post_json(addr, "/handoff", Some(TEST_KEY), &json!({})),
        422,
        "invalid_body",
    );
    assert_error(
        &post_json(addr, "/handoff", Some(TEST_KEY), &json!({"shared_id": 7})),
        422,
        "invalid_body",
    );
    let broken = post_raw(
        addr,
        "/handoff",
        Some(TEST_KEY),
        &json_ct,
        b"{\"shared_id\"",
    );
    assert_error(&broken, 422, "invalid_body");
    let form = post_raw(
        addr,
        "/handoff",
        Some(TEST_KEY),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"shared_id=x",
    );
    assert_error(&form, 415, "unsupported_media_type");
    assert_error(
        &get(addr, "/v1/outcomes/tl-ffff", Some(TEST_KEY)),
        404,
        "not_found",
    );
    assert_error(
        &get(addr, "/v1/outcomes", Some(TEST_KEY)),
        422,
        "invalid_query",
    );
    assert_error(
        &get(addr, "/v1/outcomes?shared_id=nope", Some(TEST_KEY)),
        404,
        "not_found",
    );

    // Unknown paths and methods answer in the same JSON shape.
    assert_error(&get(addr, "/v2/nothing", Some(TEST_KEY)), 404, "not_found");
    assert_error(
        &get(addr, "/handoff", Some(TEST_KEY)),
        405,
        "method_not_allowed",
    );

    // The metrics counted all of that.
    let m = scrape(&gw);
    assert!(m.contains("# TYPE trunkline_active_calls gauge"), "{m}");
    assert_eq!(
        metric(&m, "trunkline_handoff_queries_total{result=\"not_found\"}"),
        3.0,
        "{m}"
    );
    assert_eq!(
        metric(
            &m,
            "trunkline_handoff_queries_total{result=\"unauthorized\"}"
        ),
        1.0
    );
    assert!(
        metric(&m, "trunkline_handoff_queries_total{result=\"invalid\"}") >= 5.0,
        "{m}"
    );
    assert!(
        metric(
            &m,
            "trunkline_http_requests_total{route=\"/v1/calls\",status=\"401\"}"
        ) >= 3.0,
        "{m}"
    );
    assert_eq!(
        metric(&m, "trunkline_policies{state=\"serving\"}"),
        1.0,
        "{m}"
    );
    assert_eq!(
        metric(
            &m,
            "trunkline_policy_loads_total{policy=\"route-reason\",event=\"loaded\"}"
        ),
        1.0,
        "{m}"
    );
}

#[test]
fn control_api_ends_a_sip_agent_call_and_handoff_returns_what_five9_got() {
    let agent_addr = loopback();
    let gw = route_reason_gateway(agent_addr);
    wait_ready(&gw);
    let before = scrape(&gw);
    let agent = Sipp::new("agent_uas_wait_bye.xml", agent_addr)
        .set("expect1", "X-Trunkline-Call-ID: tl-")
        .spawn();
    let five9 = Sipp::new("five9_uac_expect_route_reason.xml", loopback())
        .remote(gw.sip)
        .set("session_id", "sess-ctl-1")
        .set("audio", "1")
        .set("route_reason", "billing_question")
        .set("route_type", "queue")
        .set("route_value", "Billing_Queue")
        .spawn();

    let call = wait_connected(&gw, "sess-ctl-1");
    let call_id = call["call_id"].as_str().unwrap().to_owned();
    assert_eq!(call["tenant"], "five9");
    assert_eq!(call["trunk"], "five9");
    let one = get(gw.http, &format!("/v1/calls/{call_id}"), Some(TEST_KEY));
    assert_eq!(
        (one.status, one.json["shared_id"].clone()),
        (200, json!("sess-ctl-1")),
        "{one}"
    );

    // Another tenant's key sees nothing, and cannot act on it.
    let other = Some(OTHER_TENANT_KEY);
    assert_eq!(get(gw.http, "/v1/calls", other).json, json!({"calls": []}));
    assert_error(
        &get(gw.http, &format!("/v1/calls/{call_id}"), other),
        404,
        "not_found",
    );
    let grab = json!({"attributes": {"five9.route_reason": "stolen"}});
    let r = post_json(
        gw.http,
        &format!("/v1/calls/{call_id}/attributes"),
        other,
        &grab,
    );
    assert_error(&r, 404, "not_found");
    assert_error(
        &post_json(
            gw.http,
            &format!("/v1/calls/{call_id}/end"),
            other,
            &json!({}),
        ),
        404,
        "not_found",
    );

    // Metrics move while the call is up: a call started, caller audio relayed.
    std::thread::sleep(Duration::from_millis(700));
    let during = scrape(&gw);
    let packets = "trunkline_rtp_packets_total{direction=\"caller_to_agent\"}";
    assert_eq!(
        metric(&during, "trunkline_calls_started_total"),
        metric(&before, "trunkline_calls_started_total") + 1.0
    );
    assert_eq!(metric(&during, "trunkline_active_calls"), 1.0, "{during}");
    // What the core holds for it: one call, its two dialogs, its timers.
    assert_eq!(metric(&during, "trunkline_calls_open"), 1.0, "{during}");
    assert_eq!(
        metric(&during, "trunkline_sip_dialogs_open"),
        2.0,
        "{during}"
    );
    assert!(metric(&during, "trunkline_call_timers") >= 1.0, "{during}");
    assert!(
        metric(&during, packets) > metric(&before, packets),
        "{during}"
    );
    assert!(
        metric(&during, "trunkline_rtp_port_pairs_in_use") >= 2.0,
        "{during}"
    );
    assert_eq!(
        metric(
            &during,
            "trunkline_policy_decision_duration_seconds_count{policy=\"route-reason\",op=\"route\"}"
        ),
        1.0,
        "{during}"
    );

    // The agent reports its outcome as attributes, then ends the call.
    let bad = json!({"attributes": {"": "x"}});
    let r = post_json(
        gw.http,
        &format!("/v1/calls/{call_id}/attributes"),
        Some(TEST_KEY),
        &bad,
    );
    assert_error(&r, 422, "invalid_body");
    let attrs = json!({"attributes": {
        "five9.route_reason": "billing_question",
        "five9.route_type": "queue",
        "five9.route_value": "Billing_Queue",
        "meta.intent": "billing",
    }});
    let set = post_json(
        gw.http,
        &format!("/v1/calls/{call_id}/attributes"),
        Some(TEST_KEY),
        &attrs,
    );
    assert_eq!(set.status, 200, "{set}");
    let has = |k: &str, v: &str| {
        set.json["attributes"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["key"] == k && x["value"] == v))
    };
    assert!(
        has("five9.route_type", "queue") && has("meta.intent", "billing"),
        "{set}"
    );
    let end = post_json(
        gw.http,
        &format!("/v1/calls/{call_id}/end"),
        Some(TEST_KEY),
        &json!({}),
    );
    assert_eq!(
        (end.status, end.json["state"].clone()),
        (202, json!("ending")),
        "{end}"
    );
    // A second order finds the call ending (409) or gone (404), never done twice.
    let again = post_json(
        gw.http,
        &format!("/v1/calls/{call_id}/end"),
        Some(TEST_KEY),
        &json!({}),
    );
    assert!(matches!(again.status, 409 | 404), "{again}");

    let five9 = five9.wait();
    let agent = agent.wait();
    five9.assert_passed();
    agent.assert_passed();
    let bye = five9.received_request("BYE").expect("Five9 got a BYE");
    assert_eq!(bye.header("X-RouteReason"), Some("billing_question"));
    let meta: Value = serde_json::from_str(bye.header("X-MetaData").unwrap()).unwrap();
    assert_eq!(meta["intent"], "billing");

    // The Handoff API returns the outcome and exactly the headers Five9 got.
    gw.wait_for_log("outcome stored", Duration::from_secs(5));
    let r = post_json(
        gw.http,
        "/handoff",
        Some(TEST_KEY),
        &json!({"shared_id": "sess-ctl-1"}),
    );
    assert_eq!(r.status, 200, "{r}");
    let rec = &r.json;
    assert_eq!(rec["shared_id"], "sess-ctl-1");
    assert_eq!(rec["call_id"], call_id.as_str());
    assert_eq!(
        rec["contained"], false,
        "route type queue hands the caller off"
    );
    assert_eq!(rec["destination"], "Billing_Queue");
    assert_eq!(rec["end_reason"], "agent-request");
    assert_eq!(rec["delivery"], "bye");
    assert_eq!(rec["handoff"]["route_reason"], "billing_question");
    assert!(
        rec["ended_ms"].as_u64() >= rec["started_ms"].as_u64(),
        "{r}"
    );
    let sent = rec["headers_sent"].as_array().expect("headers_sent");
    assert!(sent.len() >= 4, "{r}");
    for h in sent {
        let (name, value) = (h["name"].as_str().unwrap(), h["value"].as_str().unwrap());
        assert_eq!(bye.header(name), Some(value), "{name} as Five9 got it");
    }
    assert_eq!(rec["overflow_headers"], json!([]));
    assert_eq!(rec["failure"], Value::Null, "a connected call did not fail");

    // The other look-ups find the same record; the other tenant does not.
    let by_id = get(gw.http, &format!("/v1/outcomes/{call_id}"), Some(TEST_KEY));
    assert_eq!(
        (by_id.status, by_id.json["shared_id"].clone()),
        (200, json!("sess-ctl-1"))
    );
    let by_call = post_json(
        gw.http,
        "/handoff",
        Some(TEST_KEY),
        &json!({"call_id": call_id}),
    );
    assert_eq!(by_call.json, r.json);
    let by_query = get(gw.http, "/v1/outcomes?shared_id=sess-ctl-1", Some(TEST_KEY));
    assert_eq!(by_query.json, r.json);
    let hidden = post_json(
        gw.http,
        "/handoff",
        Some(OTHER_TENANT_KEY),
        &json!({"shared_id": "sess-ctl-1"}),
    );
    assert_error(&hidden, 404, "not_found");
    assert_error(
        &get(
            gw.http,
            &format!("/v1/outcomes/{call_id}"),
            Some(OTHER_TENANT_KEY),
        ),
        404,
        "not_found",
    );
    // The call is over: the control API shows its record, takes no more
    // orders for it, and hides it from another tenant.
    let ended = get(gw.http, &format!("/v1/calls/{call_id}"), Some(TEST_KEY));
    assert_eq!(ended.status, 200, "{ended}");
    let ended: serde_json::Value = serde_json::from_str(&ended.body).unwrap();
    assert_eq!(ended["state"], "ended", "{ended}");
    assert_eq!(ended["end_reason"], "agent-request", "{ended}");
    assert_eq!(ended["outcome"]["shared_id"], "sess-ctl-1", "{ended}");
    assert_error(
        &post_json(
            gw.http,
            &format!("/v1/calls/{call_id}/end"),
            Some(TEST_KEY),
            &json!({}),
        ),
        404,
        "not_found",
    );
    assert_error(
        &get(
            gw.http,
            &format!("/v1/calls/{call_id}"),
            Some(OTHER_TENANT_KEY),
        ),
        404,
        "not_found",
    );

    let after = scrape(&gw);
    assert_eq!(metric(&after, "trunkline_active_calls"), 0.0, "{after}");
    assert_eq!(
        metric(
            &after,
            "trunkline_calls_ended_total{reason=\"agent-request\",contained=\"false\"}"
        ),
        1.0,
        "{after}"
    );
    assert!(
        metric(&after, "trunkline_handoff_queries_total{result=\"found\"}") >= 4.0,
        "{after}"
    );
    assert!(
        metric(&after, "trunkline_sip_responses_sent_total{status=\"200\"}") >= 1.0,
        "{after}"
    );
    assert_eq!(
        metric(
            &after,
            "trunkline_policy_decisions_total{policy=\"route-reason\",op=\"conclude\",result=\"ok\"}"
        ),
        1.0,
        "{after}"
    );
}

#[test]
fn transfer_through_the_control_api_reaches_five9_as_route_headers() {
    let agent_addr = loopback();
    let gw = route_reason_gateway(agent_addr);
    wait_ready(&gw);
    let agent = Sipp::new("agent_uas_wait_bye.xml", agent_addr).spawn();
    let five9 = Sipp::new("five9_uac.xml", loopback())
        .remote(gw.sip)
        .set("session_id", "sess-xfer-1")
        .set("expect1", "X-RouteType: transfer")
        .set("expect2", "X-RouteValue: billing_queue")
        .set("expect3", "X-RouteReason: agent-request")
        .spawn();
    let call = wait_connected(&gw, "sess-xfer-1");
    let call_id = call["call_id"].as_str().unwrap();
    let path = format!("/v1/calls/{call_id}/transfer");
    assert_error(
        &post_json(gw.http, &path, Some(TEST_KEY), &json!({"attributes": {}})),
        422,
        "invalid_body",
    );
    let r = post_json(
        gw.http,
        &path,
        Some(TEST_KEY),
        &json!({"destination": "billing_queue", "attributes": {"meta.intent": "billing"}}),
    );
    assert_eq!(r.status, 202, "{r}");
    assert_eq!(r.json["destination"], "billing_queue", "{r}");
    five9.wait().assert_passed();
    agent.wait().assert_passed();
    let record = post_json(
        gw.http,
        "/handoff",
        Some(TEST_KEY),
        &json!({"shared_id": "sess-xfer-1"}),
    );
    assert_eq!(record.status, 200, "{record}");
    assert_eq!(record.json["contained"], false, "{record}");
    assert_eq!(record.json["destination"], "billing_queue", "{record}");
    assert_eq!(record.json["end_reason"], "agent-request", "{record}");
}
