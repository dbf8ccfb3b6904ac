//! The policy engine with real components built from `tests/policies/`:
//! failures of every kind end in the trunk's fallback, never in a crash;
//! forbidden imports are refused; the compiled-artifact cache works.

mod support;

use std::time::{Duration, Instant};

use support::*;
use trunkline::config::{RouteFallback, TrunkConfig};
use trunkline::policy::{
    CallEnd, Decision, DecisionError, Direction, EndReason, LoadError, Transfer,
};

const MARKER: &str = "FIXTURE-VERSION-AAAAAAAA";

fn trunk(policy: &str) -> TrunkConfig {
    TrunkConfig {
        fallback: RouteFallback::Reject {
            status: 480,
            reason: Some("Policy Unavailable".into()),
        },
        ..TrunkConfig::new("five9", policy)
    }
}

fn misbehaving(
    mode: &str,
    conclude_mode: &str,
) -> (
    tempfile::TempDir,
    std::sync::Arc<trunkline::policy::PolicyRegistry>,
) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("misbehaving.wasm"), fixture("misbehaving")).unwrap();
    let reg = registry(
        dir.path(),
        &[(
            "misbehaving",
            &[
                ("mode", mode),
                ("conclude_mode", conclude_mode),
                ("target", "sip:agent@127.0.0.1:5080"),
            ],
        )],
    );
    let report = reg.rescan();
    assert_eq!(report.loaded, vec!["misbehaving".to_string()], "{report:?}");
    (dir, reg)
}

fn end_of(call: trunkline::policy::Call, reason: EndReason) -> CallEnd {
    CallEnd {
        call,
        target: "sip:agent@127.0.0.1:5080".into(),
        attributes: vec![],
        agent_bye_headers: vec![],
        dtmf: String::new(),
        reason,
        duration_ms: 61_000,
        caller_connected: true,
    }
}

fn assert_fallback(routed: &trunkline::policy::Routed, kind: &str) {
    match &routed.decision {
        Decision::Reject(r) => {
            assert_eq!(r.status, 480);
            assert_eq!(r.reason, "Policy Unavailable");
        }
        other => panic!("expected the trunk fallback, got {other:?}"),
    }
    let e = routed.fallback.as_ref().expect("fallback reason");
    assert_eq!(e.kind(), kind, "{e}");
}

#[test]
fn healthy_fixture_routes_and_concludes() {
    let (_dir, reg) = misbehaving("ok", "ok");
    let routed = reg.route(&trunk("misbehaving"), &five9_call("1001", &[]));
    assert!(routed.fallback.is_none(), "{:?}", routed.fallback);
    match &routed.decision {
        Decision::Connect(c) => {
            assert_eq!(c.target, "sip:agent@127.0.0.1:5080");
            assert!(c.attributes.iter().any(|a| a.value == MARKER), "{c:?}");
        }
        other => panic!("{other:?}"),
    }
    let concluded = reg.conclude(
        &trunk("misbehaving"),
        routed.version.as_ref(),
        &end_of(five9_call("1001", &[]), EndReason::AgentHangup),
    );
    assert!(concluded.fallback.is_none(), "{:?}", concluded.fallback);
    assert_eq!(reg.stats().get("misbehaving", "route", "ok"), 1);
    assert_eq!(reg.stats().get("misbehaving", "conclude", "ok"), 1);
}

#[test]
fn trap_gives_fallback_and_the_next_call_still_works() {
    let (_dir, reg) = misbehaving("trap", "trap");
    for _ in 0..3 {
        let routed = reg.route(&trunk("misbehaving"), &five9_call("1001", &[]));
        assert_fallback(&routed, "trap");
    }
    assert_eq!(reg.stats().get("misbehaving", "route", "trap"), 3);
    assert_eq!(reg.stats().get("misbehaving", "fallback", "route"), 3);

    let concluded = reg.conclude(
        &trunk("misbehaving"),
        None,
        &end_of(five9_call("1001", &[]), EndReason::CallerHangup),
    );
    assert_eq!(concluded.fallback.as_ref().map(|e| e.kind()), Some("trap"));
    assert!(!concluded.outcome.contained);
    assert_eq!(concluded.outcome.transfer, Transfer::Bye);
    let err = concluded
        .outcome
        .handoff
        .iter()
        .find(|f| f.key == "policy_error")
        .expect("the failure is kept in the handoff data");
    assert!(err.json.contains("trap"), "{}", err.json);
}

#[test]
fn infinite_loop_is_cut_at_the_deadline() {
    let (_dir, reg) = misbehaving("loop", "loop");
    let started = Instant::now();
    let routed = reg.route(&trunk("misbehaving"), &five9_call("1001", &[]));
    let took = started.elapsed();
    assert_fallback(&routed, "deadline");
    assert!(matches!(routed.fallback, Some(DecisionError::Deadline(10))));
    // 10 ms deadline, 1 ms epoch ticks: well under a tenth of a second even
    // on a loaded CI machine; an unbounded loop would never return.
    assert!(took >= Duration::from_millis(9), "{took:?}");
    assert!(took < Duration::from_millis(500), "{took:?}");

    let concluded = reg.conclude(
        &trunk("misbehaving"),
        routed.version.as_ref(),
        &end_of(five9_call("1001", &[]), EndReason::AgentHangup),
    );
    assert_eq!(
        concluded.fallback.as_ref().map(|e| e.kind()),
        Some("deadline")
    );
}

#[test]
fn memory_bomb_hits_the_cap_and_the_pool_slot_is_reused() {
    // A generous CPU budget, so the cap (not the deadline) is what stops the
    // bomb even in an unoptimised host on a busy machine.
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path());
    s.deadline_ms = 2000;
    s.max_concurrent = 1; // one slot: the healthy call below reuses it
    let engine = trunkline::policy::PolicyEngine::new(&s).unwrap();
    let bomb = engine
        .load("m", &fixture("misbehaving"), kv(&[("mode", "memory")]))
        .unwrap();
    let healthy = engine
        .load(
            "m",
            &fixture("misbehaving"),
            kv(&[("mode", "ok"), ("target", "sip:agent@127.0.0.1:5080")]),
        )
        .unwrap();
    let e = bomb.route(&five9_call("1001", &[])).unwrap_err();
    assert!(matches!(e, DecisionError::MemoryCap(_)), "{e}");
    assert!(e.to_string().contains("memory cap"), "{e}");
    assert!(matches!(
        healthy.route(&five9_call("1001", &[])),
        Ok(Decision::Connect(_))
    ));
}

#[test]
fn invalid_answers_are_refused() {
    for (mode, needle) in [
        ("bad-status", "200"),
        ("bad-header", "token"),
        ("crlf", "CR, LF"),
    ] {
        let (_dir, reg) = misbehaving(mode, "ok");
        let routed = reg.route(&trunk("misbehaving"), &five9_call("1001", &[]));
        assert_fallback(&routed, "invalid");
        let msg = routed.fallback.unwrap().to_string();
        assert!(msg.contains(needle), "{mode}: {msg}");
    }
}

#[test]
fn outcome_headers_past_the_limit_are_kept_not_sent() {
    let (_dir, reg) = misbehaving("ok", "too-many-headers");
    let concluded = reg.conclude(
        &trunk("misbehaving"),
        None,
        &end_of(five9_call("1001", &[]), EndReason::AgentHangup),
    );
    assert!(concluded.fallback.is_none(), "{:?}", concluded.fallback);
    assert_eq!(concluded.outcome.headers.len(), 10);
    assert_eq!(concluded.overflow.len(), 15);
    // Order is kept: the first ten go on the wire, the rest in order after.
    let first_spilled = &concluded.overflow[0].name;
    assert!(
        !concluded
            .outcome
            .headers
            .iter()
            .any(|h| &h.name == first_spilled)
    );
}

#[test]
fn missing_policy_gives_fallback() {
    let dir = tempfile::tempdir().unwrap();
    let reg = registry(dir.path(), &[]);
    reg.rescan();
    let routed = reg.route(&trunk("nope"), &five9_call("1001", &[]));
    assert_fallback(&routed, "not-loaded");
}

#[test]
fn wasi_component_is_refused_naming_the_import() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path())
        .load("wasi-imports", &fixture("wasi-imports"), kv(&[]))
        .expect_err("a component importing WASI must be refused");
    match &e {
        LoadError::ForbiddenImports(names) => {
            assert!(names.iter().any(|n| n.starts_with("wasi:")), "{names:?}");
        }
        other => panic!("{other:?}"),
    }
    let msg = e.to_string();
    assert!(
        msg.contains("forbidden import") && msg.contains("wasi:"),
        "{msg}"
    );
}

#[test]
fn garbage_and_core_modules_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path());
    let e = engine.load("x", b"hello", kv(&[])).unwrap_err();
    assert_eq!(e, LoadError::NotWasm);
    // A core module (magic + version 1) is not a component.
    let core = b"\0asm\x01\0\0\0";
    let e = engine.load("x", core, kv(&[])).unwrap_err();
    assert_eq!(e.kind(), "not-component", "{e}");
    let mut truncated = fixture("misbehaving");
    truncated.truncate(truncated.len() / 2);
    let e = engine.load("x", &truncated, kv(&[])).unwrap_err();
    assert_eq!(e.kind(), "invalid", "{e}");
}

#[test]
fn compiled_artifacts_are_cached_by_content_hash() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path());
    s.cache_dir = Some(".cache".into());
    let bytes = fixture("misbehaving");
    let first = trunkline::policy::PolicyEngine::new(&s).unwrap();
    let v1 = first.load("m", &bytes, kv(&[])).unwrap();
    assert!(!v1.info().from_cache);
    drop((v1, first));
    // A new engine (a restart) finds the artifact and skips compilation.
    let second = trunkline::policy::PolicyEngine::new(&s).unwrap();
    let v2 = second
        .load(
            "m",
            &bytes,
            kv(&[("mode", "ok"), ("target", "sip:a@127.0.0.1")]),
        )
        .unwrap();
    assert!(v2.info().from_cache);
    assert!(
        v2.info().load_time < v1_load_bound(),
        "{:?}",
        v2.info().load_time
    );
    let d = v2.route(&five9_call("1001", &[])).unwrap();
    assert!(matches!(d, Decision::Connect(_)));
    // A cached entry is keyed by content: another version compiles afresh.
    let other = patch(&bytes, b"AAAAAAAA", b"CCCCCCCC");
    assert!(!second.load("m", &other, kv(&[])).unwrap().info().from_cache);
}

fn v1_load_bound() -> Duration {
    Duration::from_millis(200)
}

/// Components built against the first contract (`trunkline:policy@0.1.0`)
/// keep loading and deciding beside current ones; each sees what its
/// contract knows.
#[test]
fn a_component_built_against_contract_0_1_0_still_routes_and_concludes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("contract-v0-1.wasm"),
        fixture("contract-v0-1"),
    )
    .unwrap();
    std::fs::write(dir.path().join("misbehaving.wasm"), fixture("misbehaving")).unwrap();
    let reg = registry(
        dir.path(),
        &[
            ("contract-v0-1", &[("target", "sip:agent@127.0.0.1:5080")]),
            (
                "misbehaving",
                &[("mode", "ok"), ("target", "sip:agent@127.0.0.1:5080")],
            ),
        ],
    );
    let mut report = reg.rescan();
    report.loaded.sort();
    assert_eq!(
        report.loaded,
        ["contract-v0-1", "misbehaving"],
        "{report:?}"
    );
    let old = reg.get("contract-v0-1").expect("loaded");
    let new = reg.get("misbehaving").expect("loaded");
    assert_eq!(old.contract(), "0.1.0");
    assert_eq!(new.contract(), "0.2.0");

    let call = five9_call("1001", &[]);
    let routed = reg.route(&trunk("contract-v0-1"), &call);
    assert!(routed.fallback.is_none(), "{:?}", routed.fallback);
    let Decision::Connect(c) = &routed.decision else {
        panic!("{:?}", routed.decision)
    };
    assert_eq!(c.target, "sip:agent@127.0.0.1:5080");
    let attr = |k: &str| {
        c.attributes
            .iter()
            .find(|a| a.key == k)
            .map(|a| a.value.as_str())
    };
    assert_eq!(attr("contract"), Some("0.1.0"));
    assert_eq!(attr("dialed"), Some("1001"));
    assert_eq!(attr("trunk"), Some(call.trunk.as_str()));

    let concluded = reg.conclude(
        &trunk("contract-v0-1"),
        routed.version.as_ref(),
        &end_of(five9_call("1001", &[]), EndReason::CallerHangup),
    );
    assert!(concluded.fallback.is_none(), "{:?}", concluded.fallback);
    let o = &concluded.outcome;
    assert!(o.contained);
    assert_eq!(o.destination, "v0.1.0");
    assert_eq!(o.transfer, Transfer::Bye);
    let names: Vec<(&str, &str)> = o
        .headers
        .iter()
        .map(|h| (h.name.as_str(), h.value.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("X-Contract", "0.1.0"),
            ("X-End-Reason", "caller-hangup"),
            ("X-Dialed", "1001")
        ]
    );

    // The current contract carries the direction: an outbound call is
    // seen as one.
    let mut placed = five9_call("+14155550100", &[]);
    placed.direction = Direction::Outbound;
    let routed = reg.route(&trunk("misbehaving"), &placed);
    let Decision::Connect(c) = &routed.decision else {
        panic!("{:?}", routed.decision)
    };
    assert!(
        c.attributes
            .iter()
            .any(|a| a.key == "direction" && a.value == "outbound"),
        "{c:?}"
    );
    // ... and the old one routes it as it routes any call.
    let routed = reg.route(&trunk("contract-v0-1"), &placed);
    assert!(routed.fallback.is_none(), "{:?}", routed.fallback);
}
