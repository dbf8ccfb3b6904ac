//! RFC 4475's SIP torture messages against the real gateway, over UDP and
//! over TCP: the 51 messages byte-exact, sent by the shared conformance
//! runner (`../shared/conformance/rfc4475/run_torture.py`), which judges
//! every answer and requires an OPTIONS probe to be answered after each one.
//!
//! Asserted from the runner's JSON, per message and transport:
//! - the lenient verdict passes, with liberal acceptance only where the RFC
//!   allows it (`--allow-liberal`);
//! - the gateway answered the OPTIONS probe after it (a crash, a hang or a
//!   wedged signalling task fails here);
//! - the strict verdict (the RFC's best answer for a B2BUA acting as UAS)
//!   passes, except for the messages in [`DELIBERATELY_DIFFERENT`].
//!
//! The two runs go to two gateways at once: the RFC's messages share
//! branches and sent-bys, so one gateway would rightly take a TCP copy for
//! a retransmission of the UDP one. Each run takes about 50 s (the runner
//! keeps messages that share a transaction key 34 s apart).
//!
//! Calls are routed to the builtin agent, so every INVITE the gateway takes
//! is answered 200 at once and the runner ACKs and BYEs it.

mod support;

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use support::gateway::Gateway;

/// Messages whose answer we deliberately keep different from the RFC's
/// strict one: (name, transport, the status we give, why). None today: every
/// strict answer is also what a B2BUA facing untrusted peers should give.
/// An entry must keep failing the strict verdict with exactly that status,
/// so the list cannot go stale.
const DELIBERATELY_DIFFERENT: &[(&str, &str, u16, &str)] = &[];

/// Where the shared suite lives: next to the repository, as CI checks both
/// out.
fn suite() -> PathBuf {
    let dir = xtask::workspace_root().join("../shared/conformance/rfc4475");
    assert!(
        dir.join("run_torture.py").is_file() && dir.join("manifest.json").is_file(),
        "the RFC 4475 conformance suite is missing: expected run_torture.py and \
         manifest.json in {} (the `shared` folder is checked out next to the repository)",
        dir.display()
    );
    dir
}

/// A loopback address other than the gateways' (127.0.0.100..=249) on which
/// the ports the messages' Vias name (5060, and 5050, 5061, 5070) are free:
/// over UDP the gateway answers at the packet's source address and the Via's
/// port (RFC 3261 §18.2.2), and the runner listens there. `skip` is taken.
fn runner_host(skip: Option<Ipv4Addr>) -> Ipv4Addr {
    (2..100)
        .map(|n| Ipv4Addr::new(127, 0, 0, n))
        .filter(|ip| Some(*ip) != skip)
        .find(|ip| {
            [5060, 5050, 5061, 5070]
                .iter()
                .all(|port| UdpSocket::bind((*ip, *port)).is_ok())
        })
        .expect("a loopback address with UDP ports 5050, 5060, 5061 and 5070 free")
}

/// Runs the runner against `gw` over `transport`; its JSON rows.
fn run(suite: &Path, gw: &Gateway, transport: &str, bind: Ipv4Addr) -> Vec<Value> {
    let json = gw.dir().join(format!("torture-{transport}.json"));
    let output = Command::new("python3")
        .arg(suite.join("run_torture.py"))
        .args(["--target", &gw.sip.to_string()])
        .args(["--transport", transport])
        .args(["--bind", &bind.to_string()])
        // A debug build on two shared cores: a little more than the default
        // 2 s for answers and for the liveness probe.
        .args(["--timeout", "3", "--probe-timeout", "3"])
        .arg("--allow-liberal")
        .arg("--json")
        .arg(&json)
        .output()
        .expect("python3 runs (the conformance runner needs it)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let text = std::fs::read_to_string(&json).unwrap_or_else(|e| {
        panic!(
            "{transport}: the runner wrote no JSON ({e}), exit {:?}:\n{stdout}\n{stderr}",
            output.status
        )
    });
    let rows: Vec<Value> = serde_json::from_str(&text).expect("the runner's JSON");
    eprintln!("--- {transport}\n{stdout}{stderr}");
    rows
}

/// Every verdict of one run, as failures worded for a person.
fn failures(transport: &str, rows: &[Value], names: &BTreeSet<String>) -> Vec<String> {
    let mut out = Vec::new();
    let seen: BTreeSet<String> = rows
        .iter()
        .filter_map(|r| r["name"].as_str())
        .map(|n| n.trim_end_matches("[tcp]").to_owned())
        .collect();
    for missing in names.difference(&seen) {
        out.push(format!("{transport} {missing}: not run"));
    }
    for row in rows {
        let name = row["name"].as_str().unwrap_or("?");
        let got = row["got"].as_str().unwrap_or("?");
        let what = format!("{transport} {name} (got {got})");
        if row["live"] != "ok" {
            out.push(format!(
                "{what}: OPTIONS after it was not answered in time ({})",
                row["live"]
            ));
        }
        if row["lenient"] != true {
            out.push(format!(
                "{what}: lenient verdict failed, wanted {} {}",
                row["expected"], row["violations"]
            ));
        }
        let different = DELIBERATELY_DIFFERENT
            .iter()
            .find(|(n, t, _, _)| *n == name && *t == row["transport"]);
        match (different, row["strict"] == true) {
            (None, true) => {}
            (None, false) => out.push(format!(
                "{what}: strict verdict failed, wanted {}",
                row["strict_expected"]
            )),
            (Some((_, _, status, why)), strict) => {
                if strict || row["status"] != *status {
                    out.push(format!(
                        "{what}: listed as answered {status} on purpose ({why}), \
                         but strict={strict}: update DELIBERATELY_DIFFERENT"
                    ));
                }
            }
        }
    }
    out
}

#[test]
fn rfc_4475_torture_messages_over_udp_and_tcp() {
    let suite = suite();
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(suite.join("manifest.json")).expect("manifest.json"),
    )
    .expect("manifest.json is JSON");
    let names: BTreeSet<String> = manifest["messages"]
        .as_array()
        .expect("a message list")
        .iter()
        .filter_map(|m| m["name"].as_str().map(str::to_owned))
        .collect();
    assert!(
        names.len() >= 51,
        "the manifest lists {} messages",
        names.len()
    );

    let start = || {
        Gateway::builder("route-reason")
            .policy_toml("default_agent = \"builtin:\"")
            .start()
    };
    let (udp_gw, tcp_gw) = std::thread::scope(|s| {
        let udp = s.spawn(start);
        let tcp = s.spawn(start);
        (
            udp.join().expect("UDP gateway"),
            tcp.join().expect("TCP gateway"),
        )
    });
    let udp_host = runner_host(None);
    let tcp_host = runner_host(Some(udp_host));
    let (udp, tcp) = std::thread::scope(|s| {
        let udp = s.spawn(|| run(&suite, &udp_gw, "udp", udp_host));
        let tcp = s.spawn(|| run(&suite, &tcp_gw, "tcp", tcp_host));
        (udp.join().expect("UDP run"), tcp.join().expect("TCP run"))
    });

    let mut problems = failures("udp", &udp, &names);
    problems.extend(failures("tcp", &tcp, &names));
    for gw in [&udp_gw, &tcp_gw] {
        let health = support::http::get(gw.http, "/healthz", None);
        if health.status != 200 {
            problems.push(format!(
                "the gateway at {} stopped serving: {health}",
                gw.sip
            ));
        }
        if gw.log().contains("panicked") {
            problems.push(format!("the gateway at {} panicked:\n{}", gw.sip, gw.log()));
        }
    }
    assert!(
        problems.is_empty(),
        "{} RFC 4475 verdicts failed:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
