//! `cargo xtask peers`: the Python peers the end-to-end tests run, in a
//! virtual environment of their own (`target/peers/venv`).
//!
//! - `pipecat-ai`: its `TwilioFrameSerializer` is a real WebSocket agent
//!   framework's view of the media stream (`tests/agents/pipecat_agent.py`).
//!
//! Versions are pinned: a test that passes today must not fail because a
//! new release changed what it checks.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::workspace_root;

/// What goes into the environment, pinned.
const PACKAGES: &[&str] = &["pipecat-ai==1.14.0"];

/// The environment's Python, which the tests find as `TRUNKLINE_PYTHON`.
pub fn python() -> PathBuf {
    venv().join("bin/python")
}

fn venv() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    target.join("peers/venv")
}

/// Creates the environment when it is missing, then installs what it
/// lacks (pip does nothing for a package already at its pinned version).
pub fn install() -> Result<()> {
    let venv = venv();
    if !python().exists() {
        eprintln!("xtask: creating {}", venv.display());
        run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
    }
    let installed = Command::new(python())
        .args(["-m", "pip", "freeze"])
        .output()
        .context("running pip freeze")?;
    let have = String::from_utf8_lossy(&installed.stdout).to_lowercase();
    let missing: Vec<&str> = PACKAGES
        .iter()
        .copied()
        .filter(|p| !have.lines().any(|l| l == p.to_lowercase()))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("xtask: pip install {}", missing.join(" "));
    run(Command::new(python())
        .args(["-m", "pip", "install", "-q", "--disable-pip-version-check"])
        .args(&missing))
}

fn run(command: &mut Command) -> Result<()> {
    let status = command
        .status()
        .with_context(|| format!("running {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed ({status})");
    }
    Ok(())
}
