//! Build helpers for Trunkline: policy crates to policy components.
//!
//! `cargo xtask policies` builds every crate under `policies/` and
//! `cargo xtask fixtures` every crate under `tests/policies/`; the same is
//! available as [`build_policies`] and [`build_fixtures`] for test crates
//! that load real components.
//!
//! A policy crate is built for `wasm32-unknown-unknown` with the `policy`
//! profile, then its core module is encoded as a component with
//! `wit-component` (validated) using the WIT metadata the guest SDK embeds.
//! A crate may instead declare `[package.metadata.trunkline] target =
//! "wasm32-wasip2"`, whose output is already a component and is copied
//! as-is (the `wasi-imports` fixture). `[package.metadata.trunkline]
//! marker = "..."` makes the build check the marker occurs exactly once.
//!
//! # Layout
//!
//! - `cargo`: finding crates, checking targets, the nested `cargo build`.
//! - `component`: encoding, and reading a component's imports and exports.

mod cargo;
mod component;
pub mod demo;
pub mod fuzz;
pub mod peers;
pub mod test;

pub use cargo::{CORE_TARGET, PROFILE, PolicyCrate, crates_in};
pub use component::{
    ALLOWED_IMPORT_PREFIX, Interface, REQUIRED_EXPORTS, check_policy, componentize,
    count_occurrences, interface,
};

use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The workspace root (the folder holding the root `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// The target directory of the nested wasm builds, apart from `target/` so
/// an outer `cargo test` holding that lock never blocks them.
pub fn wasm_target_dir() -> PathBuf {
    workspace_root().join("target").join("wasm")
}

/// The default output folder of [`build_policies`].
pub fn default_policies_out() -> PathBuf {
    workspace_root().join("target").join("policies")
}

/// The default output folder of [`build_fixtures`].
pub fn default_fixtures_out() -> PathBuf {
    workspace_root().join("target").join("test-policies")
}

/// Builds every crate under `policies/` into `<out>/<folder>.wasm`.
///
/// Each component is checked to import only `trunkline:policy/*` and to
/// export `route` and `conclude`. Returns the written paths, sorted by
/// name.
pub fn build_policies(out: &Path) -> Result<Vec<PathBuf>> {
    let crates = crates_in(&workspace_root().join("policies"))?;
    build_all(&crates, out, true)
}

/// Builds every crate under `tests/policies/` into `<out>/<folder>.wasm`.
///
/// Core-module fixtures (`misbehaving`) are encoded and checked like
/// policies; component fixtures (`wasi-imports`, built for
/// `wasm32-wasip2`) are copied as-is, since importing WASI is their point.
pub fn build_fixtures(out: &Path) -> Result<Vec<PathBuf>> {
    let crates = crates_in(&workspace_root().join("tests").join("policies"))?;
    build_all(&crates, out, false)
}

/// Builds `crates` (one `cargo build` per target) and writes their
/// components to `out`.
fn build_all(crates: &[PolicyCrate], out: &Path, policies_only: bool) -> Result<Vec<PathBuf>> {
    if crates.is_empty() {
        bail!("no crates to build");
    }
    let root = workspace_root();
    let mut by_target: BTreeMap<&str, Vec<&PolicyCrate>> = BTreeMap::new();
    for krate in crates {
        if policies_only && krate.builds_component() {
            bail!(
                "policies/{} targets {}: policies must build for {CORE_TARGET}",
                krate.folder,
                krate.target
            );
        }
        by_target.entry(&krate.target).or_default().push(krate);
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;

    let mut written = Vec::new();
    for (target, group) in by_target {
        let packages: Vec<&str> = group.iter().map(|c| c.package.as_str()).collect();
        let artifacts = cargo::build(&root, &wasm_target_dir(), target, &packages)?;
        for krate in group {
            written.push(write_component(krate, &artifacts, out)?);
        }
    }
    written.sort();
    Ok(written)
}

/// Turns one build output into `<out>/<folder>.wasm`, checking it.
fn write_component(krate: &PolicyCrate, artifacts: &Path, out: &Path) -> Result<PathBuf> {
    let built = artifacts.join(format!("{}.wasm", krate.lib_name));
    let bytes = std::fs::read(&built).with_context(|| {
        format!(
            "reading {} (is `crate-type` missing \"cdylib\"?)",
            built.display()
        )
    })?;
    let component = if krate.builds_component() {
        interface(&bytes)
            .with_context(|| format!("{}: output is not a component", krate.folder))?;
        bytes
    } else {
        let component =
            componentize(&bytes).with_context(|| format!("{}: encoding failed", krate.folder))?;
        check_policy(&component)
            .with_context(|| format!("{}: not a valid policy", krate.folder))?;
        component
    };
    if let Some(marker) = &krate.marker {
        let count = count_occurrences(&component, marker.as_bytes());
        if count != 1 {
            bail!(
                "{}: marker {marker:?} occurs {count} times in the component; tests patch it, so it must occur exactly once",
                krate.folder
            );
        }
    }
    let path = out.join(format!("{}.wasm", krate.folder));
    std::fs::write(&path, &component).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}
