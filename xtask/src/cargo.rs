//! Finding policy crates and building them with a nested `cargo`.
//!
//! The nested build uses its own target directory (`target/wasm`): an
//! outer `cargo test` holds the lock on `target/` while tests run, so a
//! test that builds policies through the shared directory would wait on
//! itself forever.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The target policies are built for before being turned into components.
pub const CORE_TARGET: &str = "wasm32-unknown-unknown";

/// The cargo profile for policies (root `Cargo.toml`: size-optimised, LTO,
/// stripped, panic = abort).
pub const PROFILE: &str = "policy";

/// One crate folder under `policies/` or `tests/policies/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyCrate {
    /// The folder name; the component's file stem.
    pub folder: String,
    /// The cargo package name.
    pub package: String,
    /// The library's crate name, which names the built `.wasm` file.
    pub lib_name: String,
    /// The Rust target to build for: [`CORE_TARGET`] unless
    /// `[package.metadata.trunkline] target` says otherwise.
    pub target: String,
    /// `[package.metadata.trunkline] marker`: a string that must occur
    /// exactly once in the built component (tests binary-patch it).
    pub marker: Option<String>,
}

impl PolicyCrate {
    /// True when the build output is already a component (e.g.
    /// `wasm32-wasip2`), so it is used as-is instead of encoded.
    pub fn builds_component(&self) -> bool {
        self.target != CORE_TARGET
    }
}

/// Every crate folder directly under `dir` (those with a `Cargo.toml`),
/// sorted by folder name.
pub fn crates_in(dir: &Path) -> Result<Vec<PolicyCrate>> {
    let mut crates = Vec::new();
    let entries = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        let manifest = path.join("Cargo.toml");
        if manifest.is_file() {
            crates.push(read_manifest(&manifest)?);
        }
    }
    crates.sort_by(|a, b| a.folder.cmp(&b.folder));
    Ok(crates)
}

/// Reads the parts of a crate's manifest the build needs.
fn read_manifest(manifest: &Path) -> Result<PolicyCrate> {
    let text = std::fs::read_to_string(manifest)
        .with_context(|| format!("reading {}", manifest.display()))?;
    let doc: toml::Table =
        toml::from_str(&text).with_context(|| format!("parsing {}", manifest.display()))?;
    let folder = manifest
        .parent()
        .and_then(Path::file_name)
        .and_then(|n| n.to_str())
        .with_context(|| format!("no folder name for {}", manifest.display()))?
        .to_owned();
    let package = doc
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
        .with_context(|| format!("{}: no package.name", manifest.display()))?
        .to_owned();
    let lib_name = doc
        .get("lib")
        .and_then(|l| l.get("name"))
        .and_then(|n| n.as_str())
        .map_or_else(|| package.replace('-', "_"), str::to_owned);
    let meta = doc
        .get("package")
        .and_then(|p| p.get("metadata"))
        .and_then(|m| m.get("trunkline"));
    let meta_str = |key: &str| meta.and_then(|m| m.get(key)).and_then(|v| v.as_str());
    Ok(PolicyCrate {
        folder,
        package,
        lib_name,
        target: meta_str("target").unwrap_or(CORE_TARGET).to_owned(),
        marker: meta_str("marker").map(str::to_owned),
    })
}

/// Fails with instructions when the Rust standard library for `target` is
/// not installed for the workspace's toolchain.
pub(crate) fn ensure_target(root: &Path, target: &str) -> Result<()> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let output = Command::new(&rustc)
        .current_dir(root)
        .args(["--print", "target-libdir", "--target", target])
        .output()
        .with_context(|| format!("running {}", rustc.to_string_lossy()))?;
    let libdir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    if !output.status.success() || !libdir.is_dir() {
        bail!(
            "the Rust target {target} is not installed for this workspace's toolchain; \
             run `rustup toolchain install` in the repo root ({}), which installs the \
             targets listed in rust-toolchain.toml",
            root.display()
        );
    }
    Ok(())
}

/// Builds `packages` for `target` with the policy profile into
/// `target_dir`, returning the directory holding the `.wasm` files.
pub(crate) fn build(
    root: &Path,
    target_dir: &Path,
    target: &str,
    packages: &[&str],
) -> Result<PathBuf> {
    ensure_target(root, target)?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(root)
        .args(["build", "--target", target, "--profile", PROFILE])
        .env("CARGO_TARGET_DIR", target_dir)
        // Flags meant for the host build (coverage instrumentation,
        // target-cpu=native) break or bloat wasm builds.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS");
    for package in packages {
        cmd.args(["--package", package]);
    }
    let status = cmd
        .status()
        .with_context(|| format!("running {}", cargo.to_string_lossy()))?;
    if !status.success() {
        bail!(
            "`cargo build --target {target} --profile {PROFILE}` failed for {} ({status})",
            packages.join(", ")
        );
    }
    Ok(target_dir.join(target).join(PROFILE))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_crate(dir: &Path, folder: &str, manifest: &str) {
        let path = dir.join(folder);
        std::fs::create_dir_all(&path).unwrap();
        std::fs::write(path.join("Cargo.toml"), manifest).unwrap();
    }

    #[test]
    fn manifests_name_packages_libs_and_targets() {
        let dir = std::env::temp_dir().join(format!("xtask-crates-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        write_crate(&dir, "zeta", "[package]\nname = \"zeta-policy\"\n");
        write_crate(
            &dir,
            "alpha",
            "[package]\nname = \"alpha\"\n[package.metadata.trunkline]\n\
             target = \"wasm32-wasip2\"\nmarker = \"M-1\"\n[lib]\nname = \"alpha_lib\"\n",
        );
        std::fs::create_dir_all(dir.join("not-a-crate")).unwrap();

        let crates = crates_in(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            crates,
            [
                PolicyCrate {
                    folder: "alpha".into(),
                    package: "alpha".into(),
                    lib_name: "alpha_lib".into(),
                    target: "wasm32-wasip2".into(),
                    marker: Some("M-1".into()),
                },
                PolicyCrate {
                    folder: "zeta".into(),
                    package: "zeta-policy".into(),
                    lib_name: "zeta_policy".into(),
                    target: CORE_TARGET.into(),
                    marker: None,
                },
            ]
        );
        assert!(crates[0].builds_component());
        assert!(!crates[1].builds_component());
    }

    #[test]
    fn unknown_target_gives_the_rustup_hint() {
        let root = crate::workspace_root();
        let err = ensure_target(&root, "wasm32-nonexistent-target").unwrap_err();
        assert!(
            err.to_string().contains("rustup toolchain install"),
            "{err}"
        );
    }
}
