//! `trunkline policy check` and `trunkline policy run`, as a policy author
//! uses them: the real binary on real component and INVITE files.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use support::*;

fn trunkline(args: &[&str]) -> Output {
    Command::new(trunkline_bin())
        .args(args)
        .output()
        .expect("running trunkline")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn example(rel: &str) -> String {
    xtask::workspace_root()
        .join(rel)
        .to_string_lossy()
        .into_owned()
}

#[test]
fn check_prints_world_imports_size_and_compile_time() {
    let file = built().policies.join("route-reason.wasm");
    let out = trunkline(&["policy", "check", path(&file), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["world"], "trunkline:policy/policy@0.2.0");
    assert_eq!(report["contract"], "0.2.0");
    let imports: Vec<String> = serde_json::from_value(report["imports"].clone()).unwrap();
    assert!(
        imports.iter().any(|i| i == "trunkline:policy/log@0.2.0"),
        "{imports:?}"
    );
    assert!(
        imports.iter().any(|i| i == "trunkline:policy/config@0.2.0"),
        "{imports:?}"
    );
    assert!(
        imports.iter().all(|i| !i.starts_with("wasi:")),
        "{imports:?}"
    );
    assert_eq!(
        report["size_bytes"],
        std::fs::metadata(&file).unwrap().len()
    );
    assert!(report["compile_ms"].as_f64().unwrap() > 0.0);

    let text = trunkline(&["policy", "check", path(&file)]);
    assert!(stdout(&text).contains("compile"), "{}", stdout(&text));
}

#[test]
fn check_refuses_bad_files_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.wasm");
    std::fs::write(&garbage, b"definitely not wasm").unwrap();
    let wasi = built().fixtures.join("wasi-imports.wasm");
    let missing = dir.path().join("missing.wasm");
    for (file, needle) in [
        (&garbage, "not a WebAssembly file"),
        (&wasi, "forbidden import(s): wasi:"),
        (&missing, "cannot read"),
    ] {
        let out = trunkline(&["policy", "check", path(file)]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        let err = stderr(&out);
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(err.contains(needle), "{err}");
    }
}

#[test]
fn run_prints_the_decision_and_outcome_for_a_captured_invite() {
    let file = built().policies.join("route-reason.wasm");
    let invite = example("examples/invites/five9.sip");
    let config = example("examples/loopback.toml");
    let out = trunkline(&[
        "policy",
        "run",
        path(&file),
        "--invite",
        &invite,
        "--config",
        &config,
        "--attr",
        "five9.route_reason=billing",
        "--attr",
        "five9.route_type=queue",
        "--bye-header",
        "X-RouteValue: Billing_Queue",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        v["decision"]["Connect"]["target"], "sip:agent@127.0.0.1:5080",
        "{v:#}"
    );
    assert_eq!(v["call"]["dialed"], "+14155550100");
    let headers = v["outcome"]["headers"].as_array().unwrap();
    let get = |n: &str| {
        headers
            .iter()
            .find(|h| h["name"] == n)
            .map(|h| h["value"].clone())
    };
    assert_eq!(get("X-RouteReason"), Some("billing".into()));
    assert_eq!(get("X-RouteType"), Some("queue".into()));
    assert_eq!(get("X-RouteValue"), Some("Billing_Queue".into()));
    assert_eq!(v["outcome"]["destination"], "Billing_Queue");
}

#[test]
fn run_shows_the_fallback_and_exits_3_when_the_policy_fails() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("trap.toml");
    std::fs::write(
        &config,
        "[policies.misbehaving]\nmode = \"trap\"\n\n[[trunk]]\nname = \"five9\"\npolicy = \"misbehaving\"\nallow = [\"127.0.0.0/8\"]\nfallback = { action = \"reject\", status = 480 }\n",
    )
    .unwrap();
    let file = built().fixtures.join("misbehaving.wasm");
    let out = trunkline(&[
        "policy",
        "run",
        path(&file),
        "--invite",
        &example("examples/invites/five9.sip"),
        "--config",
        path(&config),
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["decision"]["Reject"]["status"], 480);
    assert!(
        v["route_error"].as_str().unwrap().starts_with("trap"),
        "{v:#}"
    );
}

#[test]
fn run_refuses_a_bad_invite_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.sip");
    std::fs::write(
        &bad,
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK-1\r\n\r\n",
    )
    .unwrap();
    let file = built().policies.join("route-reason.wasm");
    let out = trunkline(&["policy", "run", path(&file), "--invite", path(&bad)]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("is not a usable INVITE"), "{err}");
}

#[test]
fn run_accepts_a_capture_pasted_with_lf_endings_and_warns() {
    // A CRLF capture pasted with LF endings: Content-Length still counts
    // the CRs. The dry run uses the body as it is and says so on stderr.
    let crlf = std::fs::read_to_string(example("examples/invites/five9.sip")).unwrap();
    let lf = crlf.replace("\r\n", "\n");
    let declared: usize = crlf
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let body = lf.split_once("\n\n").unwrap().1.len();
    assert!(body < declared, "the test needs a body with CRLF endings");
    let dir = tempfile::tempdir().unwrap();
    let invite = dir.path().join("five9-lf.sip");
    std::fs::write(&invite, &lf).unwrap();
    let file = built().policies.join("route-reason.wasm");
    let out = trunkline(&[
        "policy",
        "run",
        path(&file),
        "--invite",
        path(&invite),
        "--config",
        &example("examples/loopback.toml"),
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["call"]["dialed"], "+14155550100");
    assert!(v["decision"].is_object(), "{v:#}");
    let want = format!("warning: Content-Length says {declared} but the body has {body} bytes");
    assert!(err.contains(&want), "{err}");
    assert!(err.contains("LF line endings"), "{err}");
}

#[test]
fn check_names_the_contract_an_old_component_was_built_against() {
    let file = built().fixtures.join("contract-v0-1.wasm");
    let out = trunkline(&["policy", "check", path(&file), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["world"], "trunkline:policy/policy@0.1.0");
    assert_eq!(report["contract"], "0.1.0");
}
