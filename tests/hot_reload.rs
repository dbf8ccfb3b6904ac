//! Hot reload through the real watcher on a real folder: swaps are atomic
//! under concurrent decisions, calls keep the version that routed them, and
//! broken or half-written files never replace a serving version.

mod support;

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use support::*;
use trunkline::config::{PolicySettings, TrunkConfig};
use trunkline::policy::{
    CallEnd, Decision, EndReason, PolicyRegistry, PolicyState, Routed, watcher,
};

const V1: &str = "FIXTURE-VERSION-AAAAAAAA";
const V2: &str = "FIXTURE-VERSION-BBBBBBBB";

fn trunk() -> TrunkConfig {
    TrunkConfig {
        fallback: Default::default(),
        ..TrunkConfig::new("five9", "misbehaving")
    }
}

fn v1() -> Vec<u8> {
    fixture("misbehaving")
}

fn v2() -> Vec<u8> {
    patch(&v1(), V1.as_bytes(), V2.as_bytes())
}

/// A registry serving v1. Its decisions get a deadline of a second, not the
/// usual 10 ms: these tests are about swaps, and four busy deciders plus a
/// compile on two cores can keep a thread off the CPU for longer than 10 ms
/// (a deadline miss is a fallback, which the swap test would count as a
/// failed swap). Deadlines have their own tests in `policy_engine.rs`.
fn setup() -> (tempfile::TempDir, Arc<PolicyRegistry>) {
    let dir = tempfile::tempdir().unwrap();
    drop_atomically(dir.path(), "misbehaving.wasm", &v1());
    let reg = registry_with(
        PolicySettings {
            deadline_ms: 1000,
            ..settings(dir.path())
        },
        &[(
            "misbehaving",
            &[
                ("mode", "ok"),
                ("conclude_mode", "ok"),
                ("target", "sip:agent@127.0.0.1:5080"),
            ],
        )],
    );
    (dir, reg)
}

/// The version marker a decision carries (the fixture puts it in an
/// attribute).
fn marker(routed: &Routed) -> Option<String> {
    match &routed.decision {
        Decision::Connect(c) => c
            .attributes
            .iter()
            .find(|a| a.value.starts_with("FIXTURE-VERSION-"))
            .map(|a| a.value.clone()),
        Decision::Reject(_) => None,
    }
}

fn route(reg: &PolicyRegistry) -> Routed {
    reg.route(&trunk(), &five9_call("1001", &[]))
}

/// Polls `f` every 10 ms until it holds, for at most `limit`.
fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    f()
}

#[test]
fn reload_under_concurrent_decisions_swaps_atomically_and_pins_versions() {
    let (dir, reg) = setup();
    let _w = watcher::watch(reg.clone()).unwrap();
    let first = route(&reg);
    assert_eq!(marker(&first).as_deref(), Some(V1));

    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (reg, stop, failures) = (reg.clone(), stop.clone(), failures.clone());
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                let started = Instant::now();
                // Bounded in count and time.
                while !stop.load(Ordering::Relaxed)
                    && seen.len() < 200_000
                    && started.elapsed() < Duration::from_secs(40)
                {
                    let r = route(&reg);
                    match marker(&r) {
                        Some(m) if r.fallback.is_none() => seen.push(m),
                        _ => {
                            if failures.fetch_add(1, Ordering::Relaxed) < 5 {
                                eprintln!("failed decision: {:?}", r.fallback);
                            }
                        }
                    }
                }
                seen
            })
        })
        .collect();

    std::thread::sleep(Duration::from_millis(100));
    drop_atomically(dir.path(), "misbehaving.wasm", &v2());
    let switched = eventually(Duration::from_secs(30), || {
        marker(&route(&reg)).as_deref() == Some(V2)
    });
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, Ordering::Relaxed);
    let histories: Vec<Vec<String>> = workers.into_iter().map(|w| w.join().unwrap()).collect();

    assert!(switched, "the new version never served");
    assert_eq!(
        failures.load(Ordering::Relaxed),
        0,
        "a decision failed during the reload"
    );
    for seen in &histories {
        let distinct: BTreeSet<&str> = seen.iter().map(String::as_str).collect();
        assert!(distinct.contains(V2), "a worker never saw the new version");
        // Atomic swap: once a worker has seen V2 it never sees V1 again.
        let first_v2 = seen.iter().position(|m| m == V2).unwrap();
        assert!(
            seen[first_v2..].iter().all(|m| m == V2),
            "V1 served after V2"
        );
    }

    // The call routed by V1 before the reload concludes with V1.
    let end = CallEnd {
        call: five9_call("1001", &[]),
        target: "sip:agent@127.0.0.1:5080".into(),
        attributes: vec![],
        agent_bye_headers: vec![],
        dtmf: String::new(),
        reason: EndReason::AgentHangup,
        duration_ms: 1000,
        caller_connected: true,
    };
    let version_of = |o: &trunkline::policy::Outcome| {
        o.headers
            .iter()
            .find(|h| h.name == "X-Fixture-Version")
            .map(|h| h.value.clone())
    };
    let pinned = reg.conclude(&trunk(), first.version.as_ref(), &end);
    assert_eq!(
        version_of(&pinned.outcome).as_deref(),
        Some(V1),
        "{:?}",
        pinned.outcome
    );
    let fresh = reg.conclude(&trunk(), None, &end);
    assert_eq!(version_of(&fresh.outcome).as_deref(), Some(V2));
    assert_eq!(reg.stats().get("misbehaving", "load", "reloaded"), 1);
}

#[test]
fn corrupt_file_leaves_the_previous_version_serving() {
    let (dir, reg) = setup();
    let _w = watcher::watch(reg.clone()).unwrap();
    assert_eq!(marker(&route(&reg)).as_deref(), Some(V1));

    let mut broken = v2();
    broken.truncate(broken.len() * 2 / 3);
    drop_atomically(dir.path(), "misbehaving.wasm", &broken);
    // Reported once the file has settled (300 ms in these tests).
    let reported = eventually(Duration::from_secs(20), || {
        reg.statuses().iter().any(|s| s.last_error.is_some())
    });
    assert!(
        reported,
        "the failure never became visible: {:?}",
        reg.statuses()
    );
    let status = &reg.statuses()[0];
    assert_eq!(status.state, PolicyState::Serving);
    assert!(status.hash.as_deref().is_some_and(|h| !h.is_empty()));
    assert!(
        status
            .last_error
            .as_deref()
            .unwrap()
            .contains("invalid component"),
        "{status:?}"
    );
    assert_eq!(reg.stats().get("misbehaving", "load-failure", "invalid"), 1);
    assert_eq!(marker(&route(&reg)).as_deref(), Some(V1));

    // Fixing the file brings the new version in.
    drop_atomically(dir.path(), "misbehaving.wasm", &v2());
    assert!(eventually(Duration::from_secs(20), || marker(&route(&reg))
        .as_deref()
        == Some(V2)));
    assert!(reg.statuses()[0].last_error.is_none());
}

#[test]
fn slow_in_place_copy_is_never_loaded_half_written() {
    let (dir, reg) = setup();
    let _w = watcher::watch(reg.clone()).unwrap();
    assert_eq!(marker(&route(&reg)).as_deref(), Some(V1));

    let bytes = v2();
    let path = dir.path().join("misbehaving.wasm");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    // Write in chunks with pauses, like a copy over a slow link.
    for chunk in bytes.chunks(bytes.len() / 5 + 1) {
        f.write_all(chunk).unwrap();
        f.flush().unwrap();
        std::thread::sleep(Duration::from_millis(60));
        let r = route(&reg);
        assert!(
            r.fallback.is_none(),
            "decision failed mid-copy: {:?}",
            r.fallback
        );
        assert_eq!(
            marker(&r).as_deref(),
            Some(V1),
            "a half-written file was loaded"
        );
    }
    drop(f);
    assert!(eventually(Duration::from_secs(20), || marker(&route(&reg))
        .as_deref()
        == Some(V2)));
    // The partial states were never reported as failures.
    assert_eq!(reg.stats().get("misbehaving", "load-failure", "invalid"), 0);
    assert_eq!(
        reg.stats().get("misbehaving", "load-failure", "not-wasm"),
        0
    );
}

#[test]
fn deleted_file_is_unloaded_and_ignored_files_are_ignored() {
    let (dir, reg) = setup();
    let _w = watcher::watch(reg.clone()).unwrap();
    assert!(route(&reg).fallback.is_none());

    // Dotfiles, temporaries and other extensions are never policies.
    for name in [
        ".hidden.wasm",
        "misbehaving.wasm.tmp",
        "notes.txt",
        "misbehaving.wasm~",
    ] {
        std::fs::write(dir.path().join(name), v2()).unwrap();
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(reg.statuses().len(), 1);
    assert_eq!(marker(&route(&reg)).as_deref(), Some(V1));

    std::fs::remove_file(dir.path().join("misbehaving.wasm")).unwrap();
    assert!(eventually(Duration::from_secs(20), || route(&reg)
        .fallback
        .is_some()));
    let r = route(&reg);
    assert_eq!(r.fallback.unwrap().kind(), "not-loaded");
    assert_eq!(reg.statuses()[0].state, PolicyState::Unloaded);
}
