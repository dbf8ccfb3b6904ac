//! `cargo xtask test`: the whole check, as CI runs it on a fresh machine.
//!
//! 1. installs the Debian packages the end-to-end tests talk to (real SIP
//!    peers), when they are missing, and the Python peers (`peers.rs`);
//! 2. `cargo fmt --check` and `cargo clippy -D warnings` on the workspace;
//! 3. `cargo build --workspace --tests --bins`, then `cargo test --workspace`
//!    with `TRUNKLINE_BIN` naming the gateway binary that build made;
//! 4. the fuzz smoke: every target in `tests/fuzz` for a few seconds
//!    ([`crate::fuzz`]), failing on any crash.
//!
//! The end-to-end tests run the real `trunkline` binary. Left to themselves
//! they `cargo build -p trunkline`, whose feature set differs from the test
//! build's (dev-dependencies add features to wasmparser, tokio, ...), so
//! wasmtime and the gateway library would be compiled and stored twice.
//! Building the binary in the same invocation as the tests shares them, and
//! no incremental cache is kept: a fresh `target/` stays small.

use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::workspace_root;

/// Programs the tests run, and the Debian package each comes from.
const TOOLS: &[(&str, &str)] = &[
    ("sipp", "sip-tester"),
    ("redis-server", "redis-server"),
    ("kamailio", "kamailio"),
    ("svcrack", "sipvicious"),
    // tests/lossy_network.rs: NFQUEUE rules for the netem stand-in.
    ("iptables", "iptables"),
];

/// Runs the checks in order, stopping at the first failure.
pub fn run() -> Result<()> {
    install_tools()?;
    crate::peers::install()?;
    cargo(&["fmt", "--all", "--check"])?;
    cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])?;
    cargo(&["build", "--workspace", "--tests", "--bins"])?;
    cargo(&["test", "--workspace"])?;
    crate::fuzz::run(&["--secs".to_string(), SMOKE_SECS.to_string()])
}

/// Seconds per fuzz target in the smoke: enough to replay the seeds and
/// the corpus and mutate a little, for nine targets within a few minutes.
const SMOKE_SECS: u64 = crate::fuzz::DEFAULT_SECS;

fn cargo(args: &[&str]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    eprintln!("xtask: cargo {}", args.join(" "));
    let status = Command::new(&cargo)
        .args(args)
        .current_dir(workspace_root())
        .env("CARGO_INCREMENTAL", "0")
        .env("TRUNKLINE_BIN", target.join("debug/trunkline"))
        .env("TRUNKLINE_PYTHON", crate::peers::python())
        .status()
        .with_context(|| format!("running {cargo}"))?;
    if !status.success() {
        bail!("`cargo {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

fn on_path(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Installs what is missing with apt-get (as root), or says exactly what to
/// install.
fn install_tools() -> Result<()> {
    let missing: Vec<&str> = TOOLS
        .iter()
        .filter(|(program, _)| !on_path(program))
        .map(|(_, package)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false);
    if !is_root {
        bail!(
            "the tests need Debian packages that are not installed: run `sudo apt-get install -y {}`",
            missing.join(" ")
        );
    }
    eprintln!("xtask: installing {}", missing.join(" "));
    let apt = |args: &[&str]| -> Result<()> {
        let status = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .context("running apt-get")?;
        if !status.success() {
            bail!("`apt-get {}` failed ({status})", args.join(" "));
        }
        Ok(())
    };
    apt(&["update", "-q"])?;
    let mut install = vec!["install", "-y", "-q", "--no-install-recommends"];
    install.extend(&missing);
    apt(&install)
}
