//! 200 calls through the real gateway over an impaired network, per
//! impairment: 5% loss each way, then 5% loss plus 20 ± 10 ms delay plus
//! 10% reordering each way.
//!
//! Three test hosts in network namespaces of their own (names carry the
//! pid): Five9 (SIPp, `five9_uac_expect_route_reason.xml`, 10.201.1.2), the
//! gateway (`TRUNKLINE_BIN`, 10.201.1.1) and the SIP agent (SIPp,
//! `agent_uas.xml`, 10.201.2.2). Only the Five9 ↔ gateway veth is
//! impaired, both ways: its signalling and its media (the agent plays audio
//! for as long as its call lasts, Five9 echoes it back, `-rtp_echo`). The kernel has no
//! netem, so the shared tools' `nfq_netem.py` applies netem's rules to every
//! packet leaving either end of that veth (see `support/netns.rs`).
//!
//! Every call must end with the agent's X-Route* headers on the BYE Five9
//! gets (checked by the scenario for each call, and here again from its
//! log), and afterwards the gateway's `/metrics` must show no call, dialog,
//! transaction or media port left. A failed call is shown with its SIPp
//! errors and messages and what the network did to each of its packets.
//!
//! Needs root (namespaces, iptables NFQUEUE), `iptables`, `python3` and
//! SIPp; as root on CI. Without root the test fails and says so.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use support::gateway::Gateway;
use support::http;
use support::netns::{self, Impairment, Netem, Netns};
use support::sipp::{Outcome, Sipp};

const CALLS: u32 = 200;
/// Calls per second: with 1 s calls about 15 are up at once.
const RATE: u32 = 10;
/// Five9 stays this long after its 200 to the BYE, answering the
/// gateway's retransmitted BYE: they come 0.5, 1.5, 3.5 and 7.5 s after it.
const LINGER_MS: &str = "8000";
/// 64·T1: how long an RFC 3261 transaction may outlive its last message
/// (Timer L after the 2xx, J after a non-INVITE's answer).
const TRANSACTION_LINGER: Duration = Duration::from_secs(32);

const FIVE9: &str = "10.201.1.2:5070";
const GATEWAY: &str = "10.201.1.1:5060";
const AGENT: &str = "10.201.2.2:5080";
/// The gateway's HTTP API, on its own namespace's loopback.
const GATEWAY_HTTP: &str = "127.0.0.1:8080";

const REASON: &str = "lossy_escalation";
const ROUTE_TYPE: &str = "queue";
const VALUE: &str = "Sales_Queue";
const METADATA: &str = "{\"intent\":\"billing\",\"score\":0.92}";

/// The two impairments share the machine's two cores: one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[test]
fn two_hundred_calls_over_five_percent_loss_each_way() {
    impaired_calls(
        "loss",
        Impairment {
            loss: 0.05,
            delay_ms: 0.0,
            jitter_ms: 0.0,
            reorder: 0.0,
        },
    );
}

#[test]
fn two_hundred_calls_over_loss_delay_jitter_and_reordering() {
    impaired_calls(
        "reorder",
        Impairment {
            loss: 0.05,
            delay_ms: 20.0,
            jitter_ms: 10.0,
            reorder: 0.10,
        },
    );
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("a socket address")
}

fn impaired_calls(tag: &str, imp: Impairment) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    netns::require_root_and_tools();
    netns::nfq_netem_script();
    let pid = std::process::id();
    // Declared first, so dropped last: the processes in them go first.
    let five9_ns = Netns::add(&format!("tl-five9-{pid}-{tag}"));
    let gw_ns = Netns::add(&format!("tl-gw-{pid}-{tag}"));
    let agent_ns = Netns::add(&format!("tl-agent-{pid}-{tag}"));
    netns::veth(
        &five9_ns,
        "to-gw",
        "10.201.1.2/24",
        &gw_ns,
        "to-five9",
        "10.201.1.1/24",
    );
    netns::veth(
        &agent_ns,
        "to-gw",
        "10.201.2.2/24",
        &gw_ns,
        "to-agent",
        "10.201.2.1/24",
    );
    // The gateway speaks to the agent from its one address, 10.201.1.1.
    agent_ns.ip(&["route", "add", "10.201.1.0/24", "via", "10.201.2.1"]);

    let logs = tempfile::tempdir().expect("a folder for the netem logs");
    let five9_log = logs.path().join("netem_five9.log");
    let gw_log = logs.path().join("netem_gw.log");
    let to_gw = Netem::start(&five9_ns, "to-gw", "five9-egress", imp, 11, &five9_log);
    let to_five9 = Netem::start(&gw_ns, "to-five9", "gw-egress", imp, 22, &gw_log);

    let gw = Gateway::builder("route-reason")
        // A decision's wall time is capped at 4x its CPU budget; on a
        // shared 2-core machine a 10 ms budget can lose a call to a busy
        // neighbour, which is not what this test measures.
        .engine_toml("deadline_ms = 100")
        .policy_toml(&format!("default_agent = \"sip:agent@{AGENT}\""))
        .trunk_toml("allow = [\"10.201.1.0/24\"]")
        .addresses(addr(GATEWAY), addr(GATEWAY_HTTP))
        .wrapped(&["ip", "netns", "exec", gw_ns.name()])
        .env("RUST_LOG", "info")
        .start();

    let mut agent = Sipp::new("agent_uas.xml", addr(AGENT))
        .netns(agent_ns.name())
        .calls(CALLS)
        .pause(Duration::from_secs(1))
        .timeout(Duration::from_secs(150))
        .set("route_reason", REASON)
        .set("route_type", ROUTE_TYPE)
        .set("route_value", VALUE)
        .set("route_metadata", METADATA)
        .set("codec", "PCMA")
        .set("audio", "1")
        .spawn();
    agent.wait_ready(Duration::from_secs(10));

    let started = Instant::now();
    let five9 = Sipp::new("five9_uac_expect_route_reason.xml", addr(FIVE9))
        .netns(five9_ns.name())
        .remote(addr(GATEWAY))
        .calls(CALLS)
        .arg("-r")
        .arg(RATE.to_string())
        // SIPp's default cap on open calls (3 × rate × -d, and -d is 0
        // here) would throttle the rate: a call lives 1 s + the linger.
        .arg("-l")
        .arg(CALLS.to_string())
        .timeout(Duration::from_secs(120))
        .set("route_reason", REASON)
        .set("route_type", ROUTE_TYPE)
        .set("route_value", VALUE)
        .set("route_metadata", METADATA)
        .set("linger_ms", LINGER_MS)
        .arg("-rtp_echo")
        .run();
    let calls_done = started.elapsed();
    let agent = agent.wait_within(Duration::from_secs(10));

    // What is still open once the last call's transactions may have ended.
    let scrape = || gw_ns.enter(|| open_state(&gw));
    let drain_until = Instant::now() + TRANSACTION_LINGER + Duration::from_secs(10);
    let left = loop {
        let left = scrape();
        if left.values().all(|v| *v == 0.0) || Instant::now() >= drain_until {
            break left;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let wall = started.elapsed();
    drop((to_gw, to_five9));
    let five9_net = std::fs::read_to_string(&five9_log).unwrap_or_default();
    let gw_net = std::fs::read_to_string(&gw_log).unwrap_or_default();

    let good_byes = byes_with_route_headers(&five9);
    let failed_calls: Vec<String> = call_ids(&five9)
        .into_iter()
        .filter(|id| !good_byes.contains(id) || mentions(&five9.errors, id))
        .collect();
    let figures = Figures {
        imp,
        gw_log: gw.log(),
        five9: &five9,
        agent: &agent,
        good_byes: good_byes.len(),
        five9_net: &five9_net,
        gw_net: &gw_net,
        calls_done,
        wall,
    };
    println!("{figures}");
    let explain = || {
        explain(
            &failed_calls,
            &five9,
            &agent,
            &five9_net,
            &gw_net,
            &gw.log(),
        )
    };

    assert!(
        five9.passed() && five9.successful == u64::from(CALLS),
        "{figures}\n{}\n{five9}",
        explain()
    );
    assert_eq!(
        good_byes.len(),
        CALLS as usize,
        "every call's BYE carries the agent's X-Route* headers\n{}",
        explain()
    );
    assert!(
        agent.passed() && agent.successful == u64::from(CALLS),
        "the agent saw every call through\n{}\n{agent}",
        explain()
    );
    assert!(
        left.values().all(|v| *v == 0.0),
        "the gateway holds nothing {:?} after the last call: {left:?}\n{figures}",
        TRANSACTION_LINGER + Duration::from_secs(10)
    );
}

/// The gauges that must fall back to zero once every call is over.
fn open_state(gw: &Gateway) -> BTreeMap<&'static str, f64> {
    let r = http::get(gw.http, "/metrics", None);
    assert_eq!(r.status, 200, "{r}");
    let value = |series: &str| {
        r.body
            .lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .and_then(|v| v.split(' ').next()?.parse().ok())
            .unwrap_or(f64::NAN)
    };
    [
        "trunkline_active_calls",
        "trunkline_sip_dialogs_open",
        "trunkline_sip_transactions_open",
        "trunkline_rtp_port_pairs_in_use",
    ]
    .into_iter()
    .map(|s| (s, value(s)))
    .collect()
}

/// Whether `text` names Call-ID `id` (`12-345@…` is not in `112-345@…`).
fn mentions(text: &str, id: &str) -> bool {
    text.match_indices(id).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + id.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-')
            && !after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '.')
    })
}

/// The SIP Call-IDs of every call Five9 placed (its message trace).
fn call_ids(five9: &Outcome) -> BTreeSet<String> {
    five9
        .messages
        .iter()
        .filter_map(|m| m.header("Call-ID").map(str::to_owned))
        .collect()
}

/// Calls whose first BYE, as Five9 logged it, carries all four headers with
/// the agent's values.
fn byes_with_route_headers(five9: &Outcome) -> BTreeSet<String> {
    let want = [
        ("X-RouteReason", REASON),
        ("X-RouteType", ROUTE_TYPE),
        ("X-RouteValue", VALUE),
        ("X-MetaData", METADATA),
    ];
    five9
        .logs
        .split("five9 received BYE: ")
        .skip(1)
        .filter_map(|bye| {
            let head = |name: &str| {
                bye.lines()
                    .take_while(|l| !l.trim().is_empty())
                    .filter_map(|l| l.split_once(':'))
                    .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.trim().to_owned())
            };
            let all = want.iter().all(|(n, v)| head(n).as_deref() == Some(*v));
            all.then(|| head("Call-ID")).flatten()
        })
        .collect()
}

/// What the network did: drops and immediate sends (reordering), all
/// packets and SIP only, from one side's netem log.
fn netem_counts(log: &str) -> (usize, usize, usize, usize) {
    let decisions = log.lines().filter(|l| !l.starts_with('#'));
    let (mut packets, mut drops, mut sip_drops, mut reordered) = (0, 0, 0, 0);
    for l in decisions {
        packets += 1;
        if l.contains(" DROP ") {
            drops += 1;
            if l.contains(" | ") {
                sip_drops += 1;
            }
        } else if l.contains(" NOW ") {
            reordered += 1;
        }
    }
    (packets, drops, sip_drops, reordered)
}

/// SIP messages the gateway sent toward Five9 more than once (the same
/// first line, Call-ID and CSeq): its retransmissions, by first word.
fn gateway_retransmissions(gw_net: &str) -> BTreeMap<String, usize> {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for l in gw_net.lines().filter(|l| !l.starts_with('#')) {
        if let Some((_, sip)) = l.split_once(" | ") {
            *seen.entry(sip).or_default() += 1;
        }
    }
    let mut by_kind = BTreeMap::new();
    for (sip, n) in seen.into_iter().filter(|(_, n)| *n > 1) {
        let cseq = sip.rsplit("CSeq: ").next().unwrap_or("");
        let first = sip.split(" | ").next().unwrap_or("");
        let kind = if first.starts_with("SIP/2.0") {
            let code = first.split(' ').nth(1).unwrap_or("?");
            format!("{code} ({})", cseq.split(' ').nth(1).unwrap_or("?"))
        } else {
            first.split(' ').next().unwrap_or("?").to_owned()
        };
        *by_kind.entry(kind).or_default() += n - 1;
    }
    by_kind
}

struct Figures<'a> {
    imp: Impairment,
    gw_log: String,
    five9: &'a Outcome,
    agent: &'a Outcome,
    good_byes: usize,
    five9_net: &'a str,
    gw_net: &'a str,
    calls_done: Duration,
    wall: Duration,
}

impl std::fmt::Display for Figures<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let i = self.imp;
        writeln!(
            f,
            "impairment each way: loss {}%, delay {} ± {} ms, reorder {}%",
            i.loss * 100.0,
            i.delay_ms,
            i.jitter_ms,
            i.reorder * 100.0
        )?;
        writeln!(
            f,
            "  calls {CALLS}: completed {}, failed {}, BYE with the right headers {}",
            self.five9.successful, self.five9.failed, self.good_byes
        )?;
        let retrans = |o: &Outcome| o.stat("Retransmissions(C)").unwrap_or(0);
        writeln!(
            f,
            "  SIPp retransmissions: Five9 {}, agent {}; gateway's toward Five9: {:?}",
            retrans(self.five9),
            retrans(self.agent),
            gateway_retransmissions(self.gw_net)
        )?;
        for (side, log) in [
            ("Five9 -> gateway", self.five9_net),
            ("gateway -> Five9", self.gw_net),
        ] {
            let (packets, drops, sip_drops, reordered) = netem_counts(log);
            writeln!(
                f,
                "  {side}: {packets} packets, {drops} dropped ({sip_drops} SIP), {reordered} sent ahead"
            )?;
        }
        // A starved machine shows here before it shows as lost calls.
        let count = |text: &str, what: &str| text.matches(what).count();
        writeln!(
            f,
            "  load: policy fallbacks {} (route) {} (conclude); SIPp watchdog trips {}",
            count(&self.gw_log, "route failed; using the trunk's fallback"),
            count(&self.gw_log, "conclude failed; using the trunk's fallback"),
            count(&self.five9.errors, "watchdog timer")
                + count(&self.agent.errors, "watchdog timer"),
        )?;
        write!(
            f,
            "  wall time: {:.1} s (calls done after {:.1} s, the rest waits out 64*T1)",
            self.wall.as_secs_f64(),
            self.calls_done.as_secs_f64()
        )
    }
}

/// For each failed call (at most five): SIPp's errors about it, its
/// messages as each SIPp saw them, what the network did to each of its SIP
/// packets, and the gateway's log lines that name it.
fn explain(
    failed: &[String],
    five9: &Outcome,
    agent: &Outcome,
    five9_net: &str,
    gw_net: &str,
    gw_log: &str,
) -> String {
    // The agent sees the gateway's own Call-IDs: its failures come whole.
    let agent_side = if agent.failed > 0 {
        // Its errors log also lists every late message to an ended call.
        let why: Vec<&str> = agent
            .errors
            .lines()
            .filter(|l| {
                ["Aborting", "timeout", "retrans", "watchdog", "Failed"]
                    .iter()
                    .any(|w| l.contains(w))
            })
            .take(20)
            .collect();
        format!(
            "--- the agent's SIPp failed {} call(s):\n{}\n",
            agent.failed,
            why.join("\n")
        )
    } else {
        String::new()
    };
    if failed.is_empty() {
        return agent_side
            + "no call is named by Five9's errors or lacks the right BYE headers here: \
               a failed check in the scenario names no call, see SIPp's errors below";
    }
    let mut out = format!("{agent_side}{} failed call(s): {failed:?}\n", failed.len());
    for id in failed.iter().take(5) {
        let _ = writeln!(out, "=== call {id}");
        let lines = |text: &str| -> Vec<String> {
            text.lines()
                .filter(|l| mentions(l, id))
                .map(str::to_owned)
                .collect()
        };
        let _ = writeln!(
            out,
            "--- Five9 SIPp errors\n{}",
            lines(&five9.errors).join("\n")
        );
        let _ = writeln!(out, "--- Five9's messages");
        for m in five9
            .messages
            .iter()
            .filter(|m| m.header("Call-ID") == Some(id))
        {
            let dir = if m.sent { "sent" } else { "recv" };
            let _ = writeln!(
                out,
                "  {dir} {} | CSeq: {}",
                m.start_line(),
                m.header("CSeq").unwrap_or("")
            );
        }
        let _ = writeln!(
            out,
            "--- the network, Five9 -> gateway\n{}",
            lines(five9_net).join("\n")
        );
        let _ = writeln!(
            out,
            "--- the network, gateway -> Five9\n{}",
            lines(gw_net).join("\n")
        );
        // The gateway's log names a call by its shared id, X-CallSessionID.
        let session = five9
            .messages
            .iter()
            .find(|m| m.sent && m.header("Call-ID") == Some(id) && m.method() == Some("INVITE"))
            .and_then(|m| m.header("X-CallSessionID"))
            .map(|sid| format!("shared_id=\"{sid}\""));
        let gw_lines: Vec<&str> = match &session {
            Some(sid) => gw_log
                .lines()
                .filter(|l| l.contains(sid.as_str()))
                .collect(),
            None => Vec::new(),
        };
        let _ = writeln!(
            out,
            "--- gateway log ({session:?})\n{}",
            gw_lines.join("\n")
        );
    }
    out
}
