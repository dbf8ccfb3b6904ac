//! Shared set-up for the end-to-end tests: real components built from the
//! workspace's policy crates, engines over temporary folders, Five9-like
//! calls.

#![allow(dead_code)]

pub mod gateway;
pub mod http;
pub mod netns;
pub mod redis;
pub mod rtp;
pub mod sip_text;
pub mod sipp;
pub mod tls;
pub mod uas;
pub mod ws_agent;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use trunkline::config::PolicySettings;
use trunkline::policy::{Call, Codec, Header, PolicyEngine, PolicyRegistry, Transport};

/// Where the built components are.
pub struct Built {
    /// `cargo xtask policies` output: the example policies.
    pub policies: PathBuf,
    /// `cargo xtask fixtures` output: misbehaving test components.
    pub fixtures: PathBuf,
}

/// Builds the example policies and the fixtures once per test binary.
pub fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let root = xtask::workspace_root();
        let policies = root.join("target/policies");
        let fixtures = root.join("target/test-policies");
        xtask::build_policies(&policies).expect("building the example policies");
        xtask::build_fixtures(&fixtures).expect("building the test fixtures");
        Built { policies, fixtures }
    })
}

pub fn policy(name: &str) -> Vec<u8> {
    let p = built().policies.join(format!("{name}.wasm"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

pub fn fixture(name: &str) -> Vec<u8> {
    let p = built().fixtures.join(format!("{name}.wasm"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

pub fn settings(dir: &Path) -> PolicySettings {
    PolicySettings {
        dir: dir.to_owned(),
        deadline_ms: 10,
        memory_mib: 16,
        max_concurrent: 32,
        cache_dir: None,
        settle_ms: 300,
    }
}

pub fn engine(dir: &Path) -> Arc<PolicyEngine> {
    PolicyEngine::new(&settings(dir)).expect("engine")
}

pub fn registry(dir: &Path, configs: &[(&str, &[(&str, &str)])]) -> Arc<PolicyRegistry> {
    registry_with(settings(dir), configs)
}

/// [`registry`] with other engine settings (a longer deadline, say).
pub fn registry_with(
    settings: PolicySettings,
    configs: &[(&str, &[(&str, &str)])],
) -> Arc<PolicyRegistry> {
    let dir = settings.dir.clone();
    let configs: BTreeMap<String, BTreeMap<String, String>> = configs
        .iter()
        .map(|(name, kv)| {
            (
                name.to_string(),
                kv.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
        })
        .collect();
    Arc::new(PolicyRegistry::new(
        PolicyEngine::new(&settings).expect("engine"),
        dir,
        Duration::from_millis(300),
        configs,
    ))
}

pub fn kv(pairs: &[(&str, &str)]) -> Arc<BTreeMap<String, String>> {
    Arc::new(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

pub fn h(name: &str, value: &str) -> Header {
    Header {
        name: name.into(),
        value: value.into(),
    }
}

/// A call as Five9's 3rd Party Transfer module places it, dialing `dialed`,
/// with `extra` headers appended.
pub fn five9_call(dialed: &str, extra: &[(&str, &str)]) -> Call {
    let mut headers = vec![
        h("Via", "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1;rport"),
        h("Max-Forwards", "70"),
        h(
            "From",
            "\"Five9\" <sip:+14155550123@five9.example.com>;tag=f9",
        ),
        h("To", &format!("<sip:{dialed}@trunkline.example.com>")),
        h("Call-ID", "f9-call-1@127.0.0.1"),
        h("CSeq", "1 INVITE"),
        h("Contact", "<sip:five9@127.0.0.1:5070>"),
        h("X-CallANI", "+14155550123"),
        h("X-CallDNIS", dialed),
        h("X-CallID", "300000000001"),
        h("X-CallSessionID", "F9SESSION0001"),
        h("X-CallCampaign", "Inbound Sales"),
        h("X-CallStartTimestamp", "1763870000000"),
        h("X-CallDomainID", "131"),
        h("X-first_name", "Ada"),
        h("X-last_name", "Lovelace"),
        h("Content-Type", "application/sdp"),
    ];
    headers.extend(extra.iter().map(|(n, v)| h(n, v)));
    Call {
        call_id: "tl-1".into(),
        sip_call_id: "f9-call-1@127.0.0.1".into(),
        trunk: "five9".into(),
        request_uri: format!("sip:{dialed}@trunkline.example.com"),
        dialed: Some(dialed.into()),
        from_uri: "sip:+14155550123@five9.example.com".into(),
        from_display: Some("Five9".into()),
        to_uri: format!("sip:{dialed}@trunkline.example.com"),
        headers,
        source_ip: "127.0.0.1".into(),
        source_port: 5070,
        direction: trunkline::policy::Direction::Inbound,
        transport: Transport::Udp,
        codecs: vec![
            Codec {
                name: "PCMU".into(),
                clock_rate: 8000,
                payload_type: 0,
            },
            Codec {
                name: "PCMA".into(),
                clock_rate: 8000,
                payload_type: 8,
            },
            Codec {
                name: "telephone-event".into(),
                clock_rate: 8000,
                payload_type: 101,
            },
        ],
    }
}

/// Writes `bytes` to `dir/name` atomically (temp dotfile, then rename), the
/// way the README tells operators to.
pub fn drop_atomically(dir: &Path, name: &str, bytes: &[u8]) {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, dir.join(name)).unwrap();
}

/// `bytes` with every `from` replaced by `to` (same length): a second,
/// different but valid version of a fixture.
pub fn patch(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let mut out = bytes.to_vec();
    let mut found = 0;
    let mut i = 0;
    while i + from.len() <= out.len() {
        if &out[i..i + from.len()] == from {
            out[i..i + from.len()].copy_from_slice(to);
            found += 1;
            i += from.len();
        } else {
            i += 1;
        }
    }
    assert!(found > 0, "marker not found in the component");
    out
}

/// The `trunkline` binary of this workspace: `TRUNKLINE_BIN` when set
/// (`cargo xtask test` builds it alongside the tests and sets it), else
/// built (debug) on first use.
///
/// Cargo does not build another package's binaries for a test, so this runs
/// `cargo build` once per test binary; the outer `cargo test` holds no
/// build lock while tests run.
pub fn trunkline_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("TRUNKLINE_BIN") {
            let bin = PathBuf::from(bin);
            assert!(
                bin.is_file(),
                "TRUNKLINE_BIN={} is not a file",
                bin.display()
            );
            return bin;
        }
        let root = xtask::workspace_root();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = std::process::Command::new(cargo)
            .current_dir(&root)
            .args(["build", "--quiet", "-p", "trunkline", "--bin", "trunkline"])
            .status()
            .expect("running cargo build");
        assert!(status.success(), "cargo build -p trunkline failed");
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target"));
        target.join("debug/trunkline")
    })
}

/// A Call-ID, tag, branch or session-id suffix no other message of this
/// run uses: `WHAT-PID-N`.
pub fn unique(what: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{what}-{}-{n}", std::process::id())
}

/// Retries `f` every 20 ms for up to two seconds; its first `Some`.
pub fn within_two_seconds<T>(mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = std::time::Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if start.elapsed() > Duration::from_secs(2) {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
