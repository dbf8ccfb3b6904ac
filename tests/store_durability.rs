//! The outcome store as Five9 relies on it: an outcome written before the
//! BYE survives `kill -9` of the gateway, and with a shared Redis any node
//! answers for a call another node handled, including a call stored while
//! Redis was down and the node was then killed.
//!
//! Real pieces only: the `trunkline` binary, SIPp as Five9 and as the agent,
//! a `redis-server` from Debian on a loopback port, and the Handoff API over
//! plain HTTP/1.1.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::gateway::{Gateway, TEST_KEY};
use support::redis::RedisServer;
use support::sipp::{Sipp, loopback};
use support::within_two_seconds;

/// One Five9 call through `gw` to a SIPp agent, ended by the agent with the
/// route-reason headers; returns once the gateway logged the stored
/// outcome.
fn place_call(gw: &Gateway, agent_addr: SocketAddr, session_id: &str) {
    let agent = Sipp::new("agent_uas.xml", agent_addr)
        .set("route_reason", "billing_question")
        .set("route_type", "queue")
        .set("route_value", "Billing_Queue")
        .pause(Duration::from_millis(200))
        .spawn();
    let five9 = Sipp::new("five9_uac_expect_route_reason.xml", loopback())
        .remote(gw.sip)
        .set("session_id", session_id)
        .run();
    agent.wait().assert_passed();
    five9.assert_passed();
    gw.wait_for_log("outcome stored", Duration::from_secs(5));
    let log = gw.log();
    let line = log
        .lines()
        .find(|l| l.contains("outcome stored"))
        .expect("the line");
    assert!(line.contains(session_id), "{line}");
}

fn gateway(agent_addr: SocketAddr, store_toml: &str) -> Gateway {
    Gateway::builder("route-reason")
        .policy_toml(&format!("default_agent = \"sip:agent@{agent_addr}\""))
        .extra_toml(store_toml)
        .start()
}

/// `POST /handoff` with `body`, retried while the API is not listening yet
/// (right after a restart); the status and the parsed body.
fn handoff(http: SocketAddr, body: &serde_json::Value) -> (u16, serde_json::Value) {
    let start = Instant::now();
    loop {
        match post(http, "/handoff", TEST_KEY, &body.to_string()) {
            Ok(answer) => return answer,
            Err(e) if start.elapsed() < Duration::from_secs(10) => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("no answer from the Handoff API at {http}: {e}"),
        }
    }
}

/// A bare HTTP/1.1 POST (one request per connection).
fn post(
    http: SocketAddr,
    path: &str,
    key: &str,
    body: &str,
) -> std::io::Result<(u16, serde_json::Value)> {
    let mut conn = TcpStream::connect_timeout(&http, Duration::from_secs(2))?;
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        conn,
        "POST {path} HTTP/1.1\r\nHost: {http}\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut answer = String::new();
    conn.read_to_string(&mut answer)?;
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not HTTP: {answer:?}"));
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    Ok((status, serde_json::from_str(body).unwrap_or_default()))
}

/// The JSON record filed under `shared_id` in the SQLite file, read with a
/// connection of our own, as an operator would.
fn record_in_file(db: &Path, shared_id: &str) -> Option<serde_json::Value> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap_or_else(|e| panic!("{}: {e}", db.display()));
    let json: Option<String> = conn
        .query_row(
            "SELECT record FROM outcomes WHERE shared_id = ?1",
            [shared_id],
            |r| r.get(0),
        )
        .ok();
    json.map(|j| serde_json::from_str(&j).unwrap())
}

#[test]
fn an_outcome_stored_before_the_bye_survives_kill_9() {
    let agent_addr = loopback();
    let mut gw = gateway(
        agent_addr,
        "[store]\nbackend = \"embedded\"\npath = \"outcomes.db\"",
    );
    place_call(&gw, agent_addr, "sess-durable-1");

    gw.crash_and_restart();

    let db = gw.dir().join("outcomes.db");
    let record = record_in_file(&db, "sess-durable-1").expect("the record is in the file");
    assert_eq!(record["destination"], "Billing_Queue", "{record}");
    let (status, body) = handoff(gw.http, &serde_json::json!({"shared_id": "sess-durable-1"}));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["shared_id"], "sess-durable-1");
    assert_eq!(body["contained"], false);
    assert_eq!(body["destination"], "Billing_Queue");
    let call_id = body["call_id"].as_str().expect("a call id").to_owned();
    let (status, by_call) = handoff(gw.http, &serde_json::json!({"call_id": call_id}));
    assert_eq!(status, 200, "{by_call}");
    assert_eq!(by_call["shared_id"], "sess-durable-1");
}

#[test]
fn an_unwritable_store_path_stops_the_gateway_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("trunkline.toml");
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    std::fs::write(
        &config,
        "[policy]\ndir = \"policies\"\n\n[sip]\nudp = \"127.0.0.1:0\"\n\n\
         [store]\nbackend = \"embedded\"\npath = \"no-such-folder/outcomes.db\"\n",
    )
    .unwrap();
    let out = Command::new(support::trunkline_bin())
        .args(["run", "--config"])
        .arg(&config)
        .output()
        .expect("running trunkline");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no-such-folder/outcomes.db") && stderr.contains("outcome store"),
        "{stderr}"
    );
}

#[test]
fn two_nodes_sharing_redis_answer_for_each_others_calls() {
    let redis = RedisServer::start();
    let store = format!(
        "[store]\nbackend = \"redis\"\npath = \"outcomes.db\"\nredis_url = \"{}\"\n\
         key_prefix = \"tl-test:\"\n",
        redis.url()
    );
    let agent_addr = loopback();
    let node_a = gateway(agent_addr, &store);
    let node_b = gateway(agent_addr, &store);
    place_call(&node_a, agent_addr, "sess-shared-1");

    // Node B never saw the call: its own file does not have it...
    assert!(record_in_file(&node_b.dir().join("outcomes.db"), "sess-shared-1").is_none());
    // ...yet it answers Five9 for it, from Redis.
    let body = within_two_seconds(|| {
        let (status, body) = handoff(
            node_b.http,
            &serde_json::json!({"shared_id": "sess-shared-1"}),
        );
        (status == 200).then_some(body)
    })
    .expect("node B answers for node A's call");
    assert_eq!(body["shared_id"], "sess-shared-1");
    assert_eq!(body["destination"], "Billing_Queue");
    let call_id = body["call_id"].as_str().expect("a call id").to_owned();
    let (status, by_call) = handoff(node_b.http, &serde_json::json!({"call_id": call_id}));
    assert_eq!(status, 200, "{by_call}");
    assert_eq!(by_call["shared_id"], "sess-shared-1");

    // A third node opened in-process (the library API) sees it too, and an
    // unknown id stays unknown.
    let dir = tempfile::tempdir().unwrap();
    let settings = trunkline::store::StoreSettings {
        backend: trunkline::store::StoreBackend::Redis,
        path: dir.path().join("c.db"),
        redis_url: redis.url(),
        key_prefix: "tl-test:".into(),
        ..Default::default()
    };
    let node_c = trunkline::store::open(&settings).unwrap();
    let record = node_c.by_shared_id("sess-shared-1").expect("from Redis");
    assert_eq!(record.call_id, call_id);
    assert!(node_c.by_call_id(&call_id).is_some());
    assert!(node_c.by_shared_id("sess-never-seen").is_none());
    assert_eq!(node_c.stats().redis_hits, 2);
}

#[test]
fn an_outcome_that_never_reached_redis_is_copied_when_the_node_restarts() {
    // Redis is down while node A takes a call: the outcome is in A's file
    // only. A is killed; Redis comes up; A restarts and copies the record,
    // so node B (another node on the same Redis) answers for the call.
    let port = RedisServer::free_port();
    let store = format!(
        "[store]\nbackend = \"redis\"\npath = \"outcomes.db\"\nredis_url = \"{}\"\n\
         key_prefix = \"tl-replay:\"\nredis_timeout_ms = 200\n",
        RedisServer::url_of(port)
    );
    let agent_addr = loopback();
    let mut node_a = gateway(agent_addr, &store);
    place_call(&node_a, agent_addr, "sess-replay-1");
    let db = node_a.dir().join("outcomes.db");
    assert!(record_in_file(&db, "sess-replay-1").is_some());

    let _redis = RedisServer::start_on(port);
    node_a.crash_and_restart();
    let node_b = gateway(agent_addr, &store);
    let body = within_two_seconds(|| {
        let (status, body) = handoff(
            node_b.http,
            &serde_json::json!({"shared_id": "sess-replay-1"}),
        );
        (status == 200).then_some(body)
    })
    .unwrap_or_else(|| {
        panic!(
            "node B never found the record; node A's log:\n{}",
            node_a.log()
        )
    });
    assert_eq!(body["destination"], "Billing_Queue", "{body}");
    assert!(
        node_a
            .log()
            .contains("copying outcomes an earlier run kept locally to Redis"),
        "{}",
        node_a.log()
    );
}
