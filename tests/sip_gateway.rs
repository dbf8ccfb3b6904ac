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

#[test]
fn caller_hangs_up_first_agent_gets_bye_and_outcome_is_kept() {
    let agent_addr = loopback();
    let gw = route_reason_gateway(agent_addr);
    let agent = Sipp::new("agent_uas_wait_bye.xml", agent_addr).spawn();
    let five9 = Sipp::new("five9_uac_hangup.xml", loopback())
        .remote(gw.sip)
        .set("session_id", "sess-hangup-1")
        .pause(Duration::from_millis(500))
        .run();
    let agent = agent.wait();
    five9.assert_passed();
    agent.assert_passed();
    assert!(agent.received_request("BYE").is_some(), "{agent}");
    gw.wait_for_log("outcome stored", Duration::from_secs(5));
    let log = gw.log();
    let line = log.lines().find(|l| l.contains("outcome stored")).unwrap();
    assert!(
        line.contains("sess-hangup-1") && line.contains("delivery=\"none\""),
        "{line}"
    );
}

const TENANTS: &str = "\"token.tok-acme-123\" = \"acme\"\n\"extension.1001\" = \"acme\"\n";

fn tenant_gateway(agent: std::net::SocketAddr, trunk: &str) -> Gateway {
    let policy = format!("{TENANTS}\"tenant.acme.agent\" = \"sip:acme@{agent}\"\n");
    Gateway::start("multi-tenant", &policy, trunk)
}

#[test]
fn token_routes_to_the_tenant_and_five9_gets_contained_and_destination() {
    let agent_addr = loopback();
    let gw = tenant_gateway(agent_addr, "");
    let agent = Sipp::new("agent_uas.xml", agent_addr)
        .set("expect1", "X-Tenant: acme")
        .set("bye_header1", "X-contained: false")
        .set("bye_header2", "X-destination: Billing")
        .pause(Duration::from_millis(200))
        .spawn();
    let five9 = Sipp::new("five9_uac_expect_contained.xml", loopback())
        .remote(gw.sip)
        .set("dialed", "5555")
        .set("token", "tok-acme-123")
        .set("session_id", "sess-tok-1")
        .set("contained", "false")
        .set("destination", "Billing")
        .run();
    agent.wait().assert_passed();
    five9.assert_passed();
}

#[test]
fn dialed_extension_routes_and_unknown_extension_is_rejected() {
    let agent_addr = loopback();
    let gw = tenant_gateway(agent_addr, "");
    let agent = Sipp::new("agent_uas.xml", agent_addr)
        .set("expect1", "X-Tenant: acme")
        .spawn();
    Sipp::new("five9_uac.xml", loopback())
        .remote(gw.sip)
        .set("dialed", "1001")
        .set("expect1", "X-contained:")
        .run()
        .assert_passed();
    agent.wait().assert_passed();

    let rejected = Sipp::new("five9_uac_reject.xml", loopback())
        .remote(gw.sip)
        .set("dialed", "9999")
        .set("expect_status", "404")
        .run();
    rejected.assert_passed();
    // And a stolen token gets 403, never a default tenant.
    Sipp::new("five9_uac_reject.xml", loopback())
        .remote(gw.sip)
        .set("dialed", "1001")
        .set("token", "stolen")
        .set("expect_status", "403")
        .run()
        .assert_passed();
}

#[test]
fn busy_agent_gives_486_to_five9() {
    let agent_addr = loopback();
    let gw = route_reason_gateway(agent_addr);
    let agent = Sipp::new("agent_uas_busy.xml", agent_addr).spawn();
    Sipp::new("five9_uac_reject.xml", loopback())
        .remote(gw.sip)
        .set("expect_status", "486")
        .set("session_id", "sess-busy-1")
        .run()
        .assert_passed();
    agent.wait().assert_passed();
    gw.wait_for_log("outcome stored", Duration::from_secs(5));
    // The record says why, typed, for the Handoff API and reports.
    let r = support::http::get(
        gw.http,
        "/v1/outcomes?shared_id=sess-busy-1",
        Some(support::gateway::TEST_KEY),
    );
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(
        r.json["failure"],
        serde_json::json!({"kind": "busy", "status": 486}),
        "{r}"
    );
    assert_eq!(r.json["answered_ms"], serde_json::Value::Null, "{r}");
}

#[test]
fn cancel_before_answer_gives_487_and_cancels_the_agent() {
    let agent_addr = loopback();
    let gw = route_reason_gateway(agent_addr);
    let agent = Sipp::new("agent_uas_slow.xml", agent_addr).spawn();
    Sipp::new("five9_uac_cancel.xml", loopback())
        .remote(gw.sip)
        .pause(Duration::from_millis(300))
        .run()
        .assert_passed();
    let agent = agent.wait();
    agent.assert_passed();
    assert!(agent.received_request("CANCEL").is_some(), "{agent}");
    gw.wait_for_log("caller cancelled", Duration::from_secs(5));
}

#[test]
fn options_ping_is_answered_200() {
    let gw = route_reason_gateway(loopback());
    let ping = Sipp::new("options_ping.xml", loopback())
        .remote(gw.sip)
        .run();
    ping.assert_passed();
    let ok = ping.received_response(200).expect("200 to OPTIONS");
    assert!(
        ok.header("Allow").is_some_and(|a| a.contains("INVITE")),
        "{ok:?}"
    );
}

#[test]
fn digest_auth_challenges_then_admits() {
    let agent_addr = loopback();
    let gw = Gateway::start(
        "route-reason",
        &format!("default_agent = \"sip:agent@{agent_addr}\""),
        "allow = []\n[trunk.auth]\nrealm = \"trunkline\"\nalgorithms = [\"MD5\"]\nusers = { five9 = \"s3cret\" }\n",
    );
    let agent = Sipp::new("agent_uas_wait_bye.xml", agent_addr).spawn();
    let five9 = Sipp::new("five9_uac_auth.xml", loopback())
        .remote(gw.sip)
        .credentials("five9", "s3cret")
        .arg("-auth_uri")
        .arg(format!("+14155550100@{}", gw.sip))
        .pause(Duration::from_millis(200))
        .run();
    five9.assert_passed();
    agent.wait().assert_passed();
    assert!(five9.received_response(401).is_some(), "{five9}");

    // Wrong password: a fresh challenge, then 403 on the next failure.
    let wrong = Sipp::new("five9_uac_auth.xml", loopback())
        .remote(gw.sip)
        .credentials("five9", "guess")
        .arg("-auth_uri")
        .arg(format!("+14155550100@{}", gw.sip))
        .timeout(Duration::from_secs(8))
        .run();
    wrong.assert_failed();
    assert!(
        !gw.log().contains("s3cret") && !gw.log().contains("guess"),
        "secrets in the log"
    );
}

#[test]
fn unknown_source_gets_403() {
    let gw = Gateway::start(
        "route-reason",
        "default_agent = \"sip:agent@127.0.0.1:9\"",
        "allow = [\"10.99.0.0/16\"]\n",
    );
    Sipp::new("five9_uac_reject.xml", loopback())
        .remote(gw.sip)
        .set("expect_status", "403")
        .run()
        .assert_passed();
}

#[test]
fn five9_over_tcp() {
    let agent_addr = loopback();
    let gw = route_reason_gateway(agent_addr);
    let agent = Sipp::new("agent_uas.xml", agent_addr)
        .pause(Duration::from_millis(200))
        .spawn();
    let five9 = Sipp::new("five9_uac_expect_route_reason.xml", loopback())
        .remote(gw.sip)
        .arg("-t")
        .arg("t1")
        .run();
    five9.assert_passed();
    agent.wait().assert_passed();
}

#[test]
fn an_agent_over_tcp_takes_the_call() {
    let agent_addr = loopback();
    let gw = Gateway::start(
        "route-reason",
        &format!("default_agent = \"sip:agent@{agent_addr};transport=tcp\""),
        "",
    );
    let agent = Sipp::new("agent_uas.xml", agent_addr)
        .arg("-t")
        .arg("t1")
        .pause(Duration::from_millis(200))
        .spawn();
    let five9 = Sipp::new("five9_uac_expect_route_reason.xml", loopback())
        .remote(gw.sip)
        .run();
    five9.assert_passed();
    agent.wait().assert_passed();
}

#[test]
fn an_agent_refusing_the_connection_gives_503_at_once() {
    // Nothing listens there: the TCP connect is refused. Five9 hears 503
    // right away (RFC 3261 §8.1.3.1), not after the ring timeout.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap();
    let gw = Gateway::start(
        "route-reason",
        &format!("default_agent = \"sip:agent@{closed};transport=tcp\""),
        "",
    );
    let start = std::time::Instant::now();
    Sipp::new("five9_uac_reject.xml", loopback())
        .remote(gw.sip)
        .set("expect_status", "503")
        .run()
        .assert_passed();
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "took {:?} (the ring timeout is 10 s)",
        start.elapsed()
    );
    assert!(gw.log().contains("agent unreachable"), "{}", gw.log());
}

#[test]
fn hold_and_resume_reinvites_are_answered() {
    let agent_addr = loopback();
    let gw = route_reason_gateway(agent_addr);
    let agent = Sipp::new("agent_uas_wait_bye.xml", agent_addr).spawn();
    let five9 = Sipp::new("five9_uac_reinvite.xml", loopback())
        .remote(gw.sip)
        .pause(Duration::from_millis(200))
        .run();
    five9.assert_passed();
    agent.wait().assert_passed();
}

#[test]
fn max_duration_ends_the_call_through_conclude() {
    let agent_addr = loopback();
    let gw = Gateway::start_with(
        "route-reason",
        &format!("default_agent = \"sip:agent@{agent_addr}\""),
        "",
        "max_call_secs = 1",
    );
    let agent = Sipp::new("agent_uas_wait_bye.xml", agent_addr).spawn();
    let five9 = Sipp::new("five9_uac.xml", loopback())
        .remote(gw.sip)
        .set("expect1", "X-RouteReason: max-duration")
        .run();
    five9.assert_passed();
    agent.wait().assert_passed();
}

#[test]
fn session_timers_are_negotiated() {
    let agent_addr = loopback();
    let gw = route_reason_gateway(agent_addr);
    // Too small an interval: 422 with our minimum.
    let small = Sipp::new("five9_uac_reject.xml", loopback())
        .remote(gw.sip)
        .set("extra_header", "Session-Expires: 30")
        .set("extra_header2", "Supported: timer")
        .set("expect_status", "422")
        .run();
    small.assert_passed();
    let r = small.received_response(422).expect("422");
    assert_eq!(r.header("Min-SE"), Some("90"));

    // A caller that supports timers gets the interval and refresher back.
    let agent = Sipp::new("agent_uas.xml", agent_addr)
        .pause(Duration::from_millis(200))
        .spawn();
    let five9 = Sipp::new("five9_uac.xml", loopback())
        .remote(gw.sip)
        .set("extra_header", "Session-Expires: 600;refresher=uac")
        .set("extra_header2", "Supported: timer")
        .set("expect1", "X-RouteReason:")
        .run();
    five9.assert_passed();
    agent.wait().assert_passed();
    let ok = five9.received_response(200).expect("200 OK");
    let se = ok
        .header("Session-Expires")
        .expect("Session-Expires on the 200");
    assert!(
        se.starts_with("600") && se.contains("refresher=uac"),
        "{se}"
    );
    assert!(
        ok.header("Require").is_some_and(|r| r.contains("timer")),
        "{ok:?}"
    );
}

#[test]
fn agent_hold_and_resume_reinvites_are_answered() {
    let agent_addr = loopback();
    let gw = route_reason_gateway(agent_addr);
    let agent = Sipp::new("agent_uas_hold.xml", agent_addr)
        .set("route_reason", "held_then_resumed")
        .pause(Duration::from_millis(200))
        .spawn();
    let five9 = Sipp::new("five9_uac.xml", loopback())
        .remote(gw.sip)
        .set("expect1", "X-RouteReason: held_then_resumed")
        .run();
    let agent = agent.wait();
    agent.assert_passed();
    five9.assert_passed();
}

#[test]
fn agent_named_by_dns_is_resolved() {
    // 127.0.0.1 and a free port: `localhost` resolves there.
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let agent_addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let gw = Gateway::start(
        "route-reason",
        &format!("default_agent = \"sip:agent@localhost:{port}\""),
        "",
    );
    let agent = Sipp::new("agent_uas.xml", agent_addr)
        .pause(Duration::from_millis(200))
        .spawn();
    Sipp::new("five9_uac_expect_route_reason.xml", loopback())
        .remote(gw.sip)
        .run()
        .assert_passed();
    agent.wait().assert_passed();

    // A name that does not resolve: the caller gets 503, not silence.
    let gw = Gateway::start(
        "route-reason",
        "default_agent = \"sip:agent@no-such-host.invalid\"",
        "",
    );
    Sipp::new("five9_uac_reject.xml", loopback())
        .remote(gw.sip)
        .set("expect_status", "503")
        .run()
        .assert_passed();
}

/// Outbound TCP leaves from the SIP listener's address, the one our Via
/// names: on a multi-homed host an agent (or Five9) that allow-lists our
/// IP sees that address, not whichever one the kernel's routing picks.
/// The gateway listens on 127.0.0.x (never 127.0.0.1, which the kernel
/// picks for an unbound socket); a raw TCP agent on another loopback
/// address checks the connection's source, then answers 486 on it and
/// Five9 hears that 486.
#[test]
fn outbound_tcp_leaves_from_the_listener_address() {
    use std::io::{Read, Write};

    let agent_addr = loopback();
    let listener = std::net::TcpListener::bind(agent_addr).expect("agent listens");
    listener.set_nonblocking(true).unwrap();
    let gw = Gateway::start(
        "route-reason",
        &format!("default_agent = \"sip:agent@{agent_addr};transport=tcp\""),
        "",
    );
    assert_ne!(gw.sip.ip(), agent_addr.ip(), "two addresses");
    assert_ne!(gw.sip.ip().to_string(), "127.0.0.1");
    let agent = std::thread::spawn(move || {
        let until = std::time::Instant::now() + Duration::from_secs(15);
        let (mut stream, peer) = loop {
            match listener.accept() {
                Ok(accepted) => break accepted,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    assert!(std::time::Instant::now() < until, "no connection in 15 s");
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("accept: {e}"),
            }
        };
        stream.set_nonblocking(false).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut text = Vec::new();
        let mut buf = [0; 4096];
        for _ in 0..100 {
            if text.windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
            let n = stream.read(&mut buf).expect("the INVITE");
            assert!(n > 0, "connection closed before the INVITE");
            text.extend_from_slice(&buf[..n]);
        }
        let invite = support::sip_text::Msg(String::from_utf8_lossy(&text).into_owned());
        let mut busy = String::from("SIP/2.0 486 Busy Here\r\n");
        for via in invite.headers("Via") {
            busy += &format!("Via: {via}\r\n");
        }
        for name in ["From", "Call-ID", "CSeq"] {
            busy += &format!("{name}: {}\r\n", invite.header(name).unwrap_or_default());
        }
        busy += &format!(
            "To: {};tag=busy-agent\r\nContent-Length: 0\r\n\r\n",
            invite.header("To").unwrap_or_default()
        );
        stream.write_all(busy.as_bytes()).expect("486 written");
        // Keep the connection up for the gateway's ACK.
        let _ = stream.read(&mut buf);
        (peer, invite)
    });
    let five9 = Sipp::new("five9_uac_reject.xml", loopback())
        .remote(gw.sip)
        .set("expect_status", "486")
        .run();
    let (source, invite) = agent.join().expect("agent thread");
    assert_eq!(
        source.ip(),
        gw.sip.ip(),
        "the connection to the agent leaves from the SIP listener's address"
    );
    let via = invite.header("Via").expect("Via");
    let sent_by = via.split_whitespace().nth(1).unwrap_or_default();
    assert_eq!(
        sent_by.rsplit_once(':').map(|(host, _)| host),
        Some(gw.sip.ip().to_string().as_str()),
        "{via}"
    );
    five9.assert_passed();
}
