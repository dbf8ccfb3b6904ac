//! Hot swap under load: while SIPp places 1,000 calls through the real
//! gateway, the trunk's policy file is replaced every second, alternating
//! two real policies that send calls to different agents. No call may fail,
//! the swaps must really happen, and every call must be decided (and
//! concluded) by the version that was serving when it arrived.

mod support;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use support::gateway::{Gateway, TEST_KEY};
use support::http::{get, post_json};
use support::sipp::{Sipp, loopback};
use support::{drop_atomically, policy};

const CALLS: u32 = 1000;
const CPS: u32 = 50;
const SWAP_EVERY: Duration = Duration::from_secs(1);
/// A call's INVITE is stamped just after its decision: a call stamped this
/// soon after a new version was seen may still have been decided by the
/// old one.
const STAMP_SLACK_MS: u64 = 10;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The serving hash of `route-reason`, per `/v1/policies`.
fn serving_hash(gw: &Gateway) -> Option<String> {
    let r = get(gw.http, "/v1/policies", Some(TEST_KEY));
    r.json["policies"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == "route-reason" && p["state"] == "serving")?["hash"]
        .as_str()
        .map(str::to_owned)
}

/// Replaces the policy file every `SWAP_EVERY` until `stop`, alternating
/// `versions` (starting with the second: the first is serving); returns
/// when each file was dropped (ms since the epoch) and which one it was.
fn swap_until(stop: &AtomicBool, dir: &Path, versions: &[Vec<u8>; 2]) -> Vec<(u64, usize)> {
    let mut drops = Vec::new();
    let mut next = Instant::now() + SWAP_EVERY;
    let started = Instant::now();
    // Bounded in time as well: the load takes 20 s.
    while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(50) {
        if Instant::now() < next {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        let which = (drops.len() + 1) % 2;
        drops.push((now_ms(), which));
        drop_atomically(dir, "route-reason.wasm", &versions[which]);
        next += SWAP_EVERY;
    }
    drops
}

#[test]
fn policy_swapped_every_second_under_load_fails_no_call() {
    // route-reason sends every call to agent A (its default agent);
    // multi-tenant, dropped in under the same name, sends extension 1001
    // to tenant acme's agent B. (Built first: the bound below is the run's.)
    let versions = [policy("route-reason"), policy("multi-tenant")];
    let test_started = Instant::now();
    let hashes = [hash(&versions[0]), hash(&versions[1])];
    let agent = |addr| {
        Sipp::new("agent_uas.xml", addr)
            .calls(CALLS)
            .pause(Duration::from_millis(300))
            .timeout(Duration::from_secs(80))
            .spawn()
    };
    let (a_addr, b_addr) = (loopback(), loopback());
    let mut agent_a = agent(a_addr);
    let mut agent_b = agent(b_addr);
    agent_a.wait_ready(Duration::from_secs(5));
    agent_b.wait_ready(Duration::from_secs(5));
    let targets = [format!("sip:a@{a_addr}"), format!("sip:b@{b_addr}")];
    let gw = Gateway::builder("route-reason")
        .policy_toml(&format!(
            "default_agent = \"{}\"\nextension.1001 = \"acme\"\n\
             tenant.acme.agent = \"{}\"\ntenant.acme.destination = \"Human_Queue\"\n",
            targets[0], targets[1]
        ))
        .start();
    assert_eq!(serving_hash(&gw).as_deref(), Some(hashes[0].as_str()));
    let policies = gw.dir().join("policies");

    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let (stop, dir, versions) = (stop.clone(), policies.clone(), versions.clone());
        std::thread::spawn(move || swap_until(&stop, &dir, &versions))
    };
    // Each hash change /v1/policies shows, and when it was first seen.
    let watcher = {
        let (stop, http) = (stop.clone(), gw.http);
        std::thread::spawn(move || {
            let mut seen: Vec<(u64, String)> = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let r = get(http, "/v1/policies", Some(TEST_KEY));
                let h = r.json["policies"][0]["hash"].as_str().map(str::to_owned);
                if let Some(h) = h
                    && seen.last().is_none_or(|(_, last)| *last != h)
                {
                    seen.push((now_ms(), h));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            seen
        })
    };

    let five9 = Sipp::new("five9_uac.xml", loopback())
        .remote(gw.sip)
        .calls(CALLS)
        .set("dialed", "1001")
        .arg("-r")
        .arg(CPS.to_string())
        .timeout(Duration::from_secs(50))
        .spawn();
    let five9_pid = five9.pid().expect("SIPp is running");
    let five9 = five9.wait();
    stop.store(true, Ordering::Relaxed);
    let drops = swapper.join().unwrap();
    let seen = watcher.join().unwrap();
    let a = agent_a.stop(Duration::from_secs(5));
    let b = agent_b.stop(Duration::from_secs(5));

    // Not one call failed, on either side.
    five9.assert_passed();
    assert_eq!(five9.successful, u64::from(CALLS), "{five9}");
    assert_eq!((a.failed, b.failed), (0, 0), "agent A:\n{a}\nagent B:\n{b}");
    assert_eq!(
        a.successful + b.successful,
        u64::from(CALLS),
        "A {a}\nB {b}"
    );
    assert!(
        a.successful > 0 && b.successful > 0,
        "both policies must have routed calls: A {}, B {}",
        a.successful,
        b.successful
    );
    assert_eq!(
        gw.metric("trunkline_policy_fallbacks_total{policy=\"route-reason\",op=\"route\"}")
            + gw.metric(
                "trunkline_policy_fallbacks_total{policy=\"route-reason\",op=\"conclude\"}"
            ),
        0.0,
        "a decision fell back during the swaps"
    );

    // The swaps happened: the serving version changed at least ten times
    // while the calls came in.
    let changes = seen.len().saturating_sub(1);
    assert!(
        changes >= 10,
        "only {changes} version changes seen: {seen:?}"
    );
    assert!(
        seen.iter().all(|(_, h)| hashes.contains(h)),
        "an unknown version served: {seen:?}"
    );
    assert!(
        gw.metric("trunkline_policy_loads_total{policy=\"route-reason\",event=\"reloaded\"}")
            >= 10.0
    );

    // Every call's record says which version routed it: it went to that
    // version's agent and was concluded by the same version (its headers
    // to Five9 are that policy's).
    let mut records = Vec::new();
    for n in 1..=CALLS {
        let shared_id = format!("f9-{n}-{five9_pid}");
        let r = post_json(
            gw.http,
            "/handoff",
            Some(TEST_KEY),
            &json!({ "shared_id": shared_id }),
        );
        assert_eq!(r.status, 200, "no outcome for {shared_id}: {r}");
        records.push(r.json);
    }
    let sent = |rec: &Value, name: &str| {
        rec["headers_sent"]
            .as_array()
            .is_some_and(|hs| hs.iter().any(|h| h["name"] == name))
    };
    for rec in &records {
        let version = hashes
            .iter()
            .position(|h| rec["policy_version"] == h.as_str())
            .unwrap_or_else(|| panic!("routed by an unknown version: {rec}"));
        assert_eq!(rec["target"], targets[version].as_str(), "{rec}");
        assert_eq!(rec["end_reason"], "agent-hangup", "{rec}");
        let header = ["X-RouteReason", "X-contained"][version];
        assert!(sent(rec, header), "concluded by another version: {rec}");
    }

    // Calls that arrived after a new version was seen, and before the next
    // file was dropped, were decided by that version.
    let mut windows_checked = 0;
    let mut calls_checked = 0;
    for &(seen_at, ref h) in &seen {
        let version = hashes.iter().position(|x| x == h).unwrap();
        // The drop that brought this version in (none for the first),
        // and the next one after it.
        let brought = drops
            .iter()
            .rposition(|&(at, which)| at <= seen_at && which == version);
        let until = match brought {
            Some(i) => drops.get(i + 1).map(|&(at, _)| at),
            None => drops.first().map(|&(at, _)| at),
        };
        let Some(until) = until else { continue };
        let from = seen_at + STAMP_SLACK_MS;
        let inside: Vec<&Value> = records
            .iter()
            .filter(|r| {
                r["started_ms"]
                    .as_u64()
                    .is_some_and(|t| t >= from && t < until)
            })
            .collect();
        for rec in &inside {
            assert_eq!(
                rec["policy_version"],
                h.as_str(),
                "a call arriving {} ms after version {} was seen was decided by another: {rec}",
                rec["started_ms"].as_u64().unwrap_or(0) - seen_at,
                &h[..12]
            );
        }
        if !inside.is_empty() {
            windows_checked += 1;
            calls_checked += inside.len();
        }
    }
    assert!(
        windows_checked >= 10,
        "only {windows_checked} swap windows held calls ({calls_checked} calls): seen {seen:?}, drops {drops:?}"
    );
    eprintln!(
        "{} swaps dropped, {changes} version changes seen, {calls_checked} calls in {windows_checked} \
         windows checked; agent A {} calls, agent B {}; {:.1} s",
        drops.len(),
        a.successful,
        b.successful,
        test_started.elapsed().as_secs_f64()
    );
    assert!(
        test_started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        test_started.elapsed()
    );
}
