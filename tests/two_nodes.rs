//! `examples/two-nodes/` as Five9 would use it: two Trunkline nodes behind
//! the real Kamailio of the example's `kamailio.cfg` (dispatcher,
//! round-robin, Record-Route), sharing outcome records through a real
//! `redis-server`.
//!
//! Real pieces only, all on loopback: Kamailio from Debian (its address and
//! the dispatcher list given with `-A` defines, as the example's README
//! says), two `trunkline` binaries, SIPp as the agent and SIPp as Five9
//! calling Kamailio, and the Handoff API over plain HTTP/1.1.

mod support;

use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::gateway::{Gateway, TEST_KEY};
use support::http;
use support::redis::RedisServer;
use support::sip_text::UdpPeer;
use support::sipp::{Sipp, loopback};
use support::within_two_seconds;

#[test]
fn two_nodes_behind_kamailio_complete_calls_and_answer_for_each_other() {
    let redis = RedisServer::start();
    let store = format!(
        "[store]\nbackend = \"redis\"\npath = \"outcomes.db\"\nredis_url = \"{}\"\n\
         key_prefix = \"tl-two-nodes:\"\n",
        redis.url()
    );
    let agent_addr = loopback();
    let nodes = [gateway(agent_addr, &store), gateway(agent_addr, &store)];
    let kamailio = Kamailio::start(&[nodes[0].sip, nodes[1].sip]);

    for session in ["two-nodes-1", "two-nodes-2"] {
        // The agent both nodes dial, one SIPp per call so that a failing
        // call shows what the agent saw.
        let mut agent = Sipp::new("agent_uas.xml", agent_addr).spawn();
        agent.wait_ready(Duration::from_secs(5));
        let five9 = Sipp::new("five9_uac.xml", loopback())
            .remote(kamailio.addr)
            .set("session_id", session)
            .set("expect1", "X-RouteReason: escalation")
            .set("expect2", "X-RouteValue: sales")
            .run();
        let agent = agent.wait();
        assert!(
            five9.passed() && agent.passed(),
            "call {session} did not complete\n--- five9\n{five9}\n--- agent\n{agent}"
        );
        // Kamailio stayed on the dialog's path both ways: Five9's ACK went
        // back through it (the Record-Route it learnt from the node's 200)
        // and the node's BYE reached Five9 through it.
        let kamailio_uri = format!("sip:{};lr", kamailio.addr);
        let ack = five9.sent_request("ACK").expect("Five9 sent an ACK");
        assert!(
            ack.header("Route")
                .is_some_and(|r| r.contains(&kamailio_uri)),
            "the ACK does not route through Kamailio:\n{}",
            ack.text
        );
        let bye = five9.received_request("BYE").expect("Five9 got a BYE");
        assert!(
            bye.header("Via")
                .is_some_and(|v| v.contains(&kamailio.addr.to_string())),
            "the BYE did not come through Kamailio:\n{}",
            bye.text
        );
    }

    // Round-robin: one call on each node, and which one is in its log.
    let calls: Vec<(String, String)> = nodes
        .iter()
        .map(|node| {
            node.wait_for_log("outcome stored", Duration::from_secs(5));
            routed_call(node)
        })
        .collect();
    assert_ne!(calls[0].0, calls[1].0, "both calls went to one node");

    // Each node answers for the call the other node handled, from Redis.
    for (node, (session, call_id)) in nodes.iter().zip(calls.iter().rev()) {
        let body = within_two_seconds(|| {
            let r = http::post_json(
                node.http,
                "/handoff",
                Some(TEST_KEY),
                &serde_json::json!({"shared_id": session}),
            );
            (r.status == 200).then_some(r.json)
        })
        .unwrap_or_else(|| panic!("node {} does not answer for {session}", node.sip));
        assert_eq!(body["shared_id"], session.as_str());
        assert_eq!(body["call_id"], call_id.as_str());
        assert_eq!(body["destination"], "sales");
        assert_eq!(body["contained"], false);
    }
}

/// A node of the example: route-reason to the agent, outcomes in Redis.
fn gateway(agent_addr: SocketAddr, store_toml: &str) -> Gateway {
    Gateway::builder("route-reason")
        .policy_toml(&format!("default_agent = \"sip:agent@{agent_addr}\""))
        .extra_toml(store_toml)
        .start()
}

/// The one call `node` routed: its shared id (X-CallSessionID) and
/// Trunkline call id, from the "routing call" log line.
fn routed_call(node: &Gateway) -> (String, String) {
    let log = node.log();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("routing call")).collect();
    assert_eq!(lines.len(), 1, "node {} routed {lines:#?}", node.sip);
    let field = |name: &str| {
        lines[0]
            .split([' ', '{', '}'])
            .find_map(|w| w.strip_prefix(name))
            .map(|v| v.trim_matches('"').to_owned())
            .unwrap_or_else(|| panic!("no {name} in {}", lines[0]))
    };
    (field("shared_id="), field("call_id="))
}

/// Kamailio with `examples/two-nodes/kamailio.cfg`, in the foreground, on a
/// fresh loopback address, with a dispatcher list of `nodes`, working in a
/// folder of its own; stopped on drop.
struct Kamailio {
    child: Child,
    /// Where it listens (UDP).
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Kamailio {
    fn start(nodes: &[SocketAddr]) -> Kamailio {
        let bin = kamailio_binary();
        let cfg = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/two-nodes/kamailio.cfg");
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("dispatcher.list");
        let entries: String = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| format!("1 sip:{n};transport=udp 0 0 duid=node-{i}\n"))
            .collect();
        std::fs::write(&list, entries).unwrap();
        let addr = loopback();
        let log = std::fs::File::create(dir.path().join("kamailio.log")).unwrap();
        let child = Command::new(bin)
            .arg("-f")
            .arg(&cfg)
            .args(["-DD", "-E", "-w"])
            .arg(dir.path())
            .arg("-Y")
            .arg(dir.path())
            .arg("-P")
            .arg(dir.path().join("kamailio.pid"))
            .arg("-A")
            .arg(format!("LISTEN=udp:{addr}"))
            .arg("-A")
            .arg(format!("DISPATCHER_LIST=\"{}\"", list.display()))
            // Its own process group: the worker processes go with it.
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting kamailio");
        let kamailio = Kamailio { child, addr, dir };
        kamailio.wait_ready(Duration::from_secs(10));
        kamailio
    }

    /// Waits until Kamailio answers an OPTIONS to itself (the cfg's 200).
    fn wait_ready(&self, limit: Duration) {
        let peer = UdpPeer::new(self.addr);
        let start = Instant::now();
        for n in 0.. {
            assert!(
                start.elapsed() < limit,
                "kamailio did not answer OPTIONS on {}:\n{}",
                self.addr,
                self.log()
            );
            let me = peer.me;
            peer.send(&format!(
                "OPTIONS sip:{addr} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-ready-{n}\r\n\
                 Max-Forwards: 70\r\nFrom: <sip:test@{me}>;tag=ready\r\nTo: <sip:{addr}>\r\n\
                 Call-ID: ready-{n}@{ip}\r\nCSeq: {n} OPTIONS\r\nContent-Length: 0\r\n\r\n",
                addr = self.addr,
                ip = me.ip(),
            ));
            if peer
                .recv(Duration::from_millis(200))
                .is_some_and(|m| m.status() == Some(200))
            {
                return;
            }
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("kamailio.log")).unwrap_or_default()
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- kamailio log\n{}", self.log());
        }
        // SIGTERM lets the main process stop its workers; whatever is left
        // of the group after a moment is killed.
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(3) {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
    }
}

/// `kamailio` on `PATH`, or where Debian puts it (`/usr/sbin` is not on
/// every user's `PATH`).
fn kamailio_binary() -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .chain(["/usr/sbin".into(), "/usr/local/sbin".into()])
        .map(|dir| dir.join("kamailio"))
        .find(|p| p.is_file())
        .expect(
            "kamailio is not installed: `sudo apt-get install -y kamailio` \
             (cargo xtask test installs it)",
        )
}
