//! The live set of policies: one serving version per name, swapped
//! atomically on reload, with the status of every file the operator dropped.
//!
//! Loading is driven by [`PolicyRegistry::rescan`]: file-system events are
//! only hints that something changed; the folder's contents and their hashes
//! decide what to do. A file that fails to load leaves the previous version
//! serving.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::engine::PolicyEngine;
use super::error::LoadError;
use super::stats::PolicyStats;
use super::version::PolicyVersion;

/// What the registry knows about one policy name.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyStatus {
    /// The policy's name (file stem).
    pub name: String,
    /// `serving`, `failed` (no version ever loaded), `pending` (the file is
    /// being written) or `unloaded` (the file is gone).
    pub state: PolicyState,
    /// The serving version's content hash.
    pub hash: Option<String>,
    /// When the serving version was loaded (seconds since the Unix epoch).
    pub loaded_at: Option<u64>,
    /// The serving version's size in bytes.
    pub size: Option<usize>,
    /// How long the serving version took to compile or fetch from cache, ms.
    pub load_ms: Option<f64>,
    /// The contract the serving version was built against (`0.2.0`,
    /// `0.1.0`).
    pub contract: Option<&'static str>,
    /// The last load error, kept until a newer file loads.
    pub last_error: Option<String>,
    /// The hash of the file that failed, so it is not retried until changed.
    pub failed_hash: Option<String>,
}

/// The state of a policy name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyState {
    /// A version is serving (possibly with a newer file that failed).
    Serving,
    /// The file is present but no version of it could be loaded.
    Failed,
    /// The file changed moments ago and did not load yet; retried shortly.
    Pending,
    /// The file was removed; calls needing it get the fallback.
    Unloaded,
}

struct Slot {
    serving: Option<Arc<PolicyVersion>>,
    status: PolicyStatus,
}

/// What a rescan did, for logs and tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RescanReport {
    /// Names that got a new serving version.
    pub loaded: Vec<String>,
    /// Names whose new file failed to load.
    pub failed: Vec<String>,
    /// Names removed.
    pub unloaded: Vec<String>,
    /// Set when a file is still settling: rescan again after this long.
    pub retry_after: Option<Duration>,
}

/// The live policies of a gateway.
pub struct PolicyRegistry {
    engine: Arc<PolicyEngine>,
    dir: PathBuf,
    settle: Duration,
    configs: RwLock<BTreeMap<String, Arc<BTreeMap<String, String>>>>,
    slots: RwLock<BTreeMap<String, Slot>>,
    rescan_lock: Mutex<()>,
    stats: PolicyStats,
}

impl PolicyRegistry {
    /// A registry over the folder `dir`, with per-policy key/values.
    pub fn new(
        engine: Arc<PolicyEngine>,
        dir: PathBuf,
        settle: Duration,
        configs: BTreeMap<String, BTreeMap<String, String>>,
    ) -> PolicyRegistry {
        PolicyRegistry {
            engine,
            dir,
            settle,
            configs: RwLock::new(configs.into_iter().map(|(k, v)| (k, Arc::new(v))).collect()),
            slots: RwLock::new(BTreeMap::new()),
            rescan_lock: Mutex::new(()),
            stats: PolicyStats::default(),
        }
    }

    /// The watched folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The engine that loads for this registry.
    pub fn engine(&self) -> &Arc<PolicyEngine> {
        &self.engine
    }

    /// Counters for decisions, errors and loads.
    pub fn stats(&self) -> &PolicyStats {
        &self.stats
    }

    /// The serving version of `name`, if any. Cheap: a read lock and an
    /// `Arc` clone, taken once per call at routing time.
    pub fn get(&self, name: &str) -> Option<Arc<PolicyVersion>> {
        let slots = self.slots.read().unwrap_or_else(|p| p.into_inner());
        slots.get(name).and_then(|s| s.serving.clone())
    }

    /// The status of every policy name seen, sorted by name.
    pub fn statuses(&self) -> Vec<PolicyStatus> {
        let slots = self.slots.read().unwrap_or_else(|p| p.into_inner());
        slots.values().map(|s| s.status.clone()).collect()
    }

    /// Replaces the per-policy key/values (after a config reload). Versions
    /// already serving keep theirs; the next load of each name uses these.
    pub fn set_configs(&self, configs: BTreeMap<String, BTreeMap<String, String>>) {
        let mut c = self.configs.write().unwrap_or_else(|p| p.into_inner());
        *c = configs.into_iter().map(|(k, v)| (k, Arc::new(v))).collect();
    }

    fn config_for(&self, name: &str) -> Arc<BTreeMap<String, String>> {
        let c = self.configs.read().unwrap_or_else(|p| p.into_inner());
        c.get(name).cloned().unwrap_or_default()
    }

    /// Reads the folder and brings the serving set in line with it: new or
    /// changed files (by content hash) are loaded and swapped in, removed
    /// ones unloaded. Safe to call from any thread; calls are serialised.
    pub fn rescan(&self) -> RescanReport {
        let _guard = self.rescan_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut report = RescanReport::default();
        let files = match candidates(&self.dir) {
            Ok(f) => f,
            Err(e) => {
                tracing::error!(dir = %self.dir.display(), error = %e, "cannot read the policy folder");
                return report;
            }
        };
        for (name, path) in &files {
            self.rescan_one(name, path, &mut report);
        }
        let gone: Vec<String> = {
            let slots = self.slots.read().unwrap_or_else(|p| p.into_inner());
            slots
                .iter()
                .filter(|(n, s)| !files.contains_key(*n) && s.status.state != PolicyState::Unloaded)
                .map(|(n, _)| n.clone())
                .collect()
        };
        for name in gone {
            let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
            if let Some(slot) = slots.get_mut(&name) {
                slot.serving = None;
                slot.status.state = PolicyState::Unloaded;
                slot.status.hash = None;
                slot.status.failed_hash = None;
            }
            drop(slots);
            self.stats.load_event(&name, "unloaded");
            tracing::warn!(policy = %name, "policy file removed; unloaded (calls needing it get the trunk fallback)");
            report.unloaded.push(name);
        }
        report
    }

    fn rescan_one(&self, name: &str, path: &Path, report: &mut RescanReport) {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            // Removed between listing and reading: the next rescan unloads it.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e) => {
                self.record_failure(name, None, LoadError::Io(e.to_string()), report);
                return;
            }
        };
        let hash = hex::encode(Sha256::digest(&bytes));
        {
            let slots = self.slots.read().unwrap_or_else(|p| p.into_inner());
            if let Some(slot) = slots.get(name) {
                let serving_same = slot.serving.as_ref().is_some_and(|v| v.hash() == hash);
                let known_bad = slot.status.failed_hash.as_deref() == Some(hash.as_str());
                if serving_same || known_bad {
                    return;
                }
            }
        }
        match self.engine.load(name, &bytes, self.config_for(name)) {
            Ok(version) => {
                let version = Arc::new(version);
                let info = version.info().clone();
                let previous = {
                    let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
                    let slot = slots.entry(name.to_owned()).or_insert_with(|| Slot {
                        serving: None,
                        status: empty_status(name),
                    });
                    let previous = slot.serving.replace(version.clone());
                    slot.status = PolicyStatus {
                        name: name.to_owned(),
                        state: PolicyState::Serving,
                        hash: Some(hash.clone()),
                        loaded_at: info
                            .loaded_at
                            .duration_since(SystemTime::UNIX_EPOCH)
                            .ok()
                            .map(|d| d.as_secs()),
                        size: Some(info.size),
                        load_ms: Some(info.load_time.as_secs_f64() * 1e3),
                        contract: Some(info.contract),
                        last_error: None,
                        failed_hash: None,
                    };
                    previous
                };
                self.stats.load_event(
                    name,
                    if previous.is_some() {
                        "reloaded"
                    } else {
                        "loaded"
                    },
                );
                tracing::info!(policy = %name, version = %version.short_hash(), size = info.size,
                    load_ms = info.load_time.as_secs_f64() * 1e3, from_cache = info.from_cache,
                    contract = info.contract,
                    replaced = previous.as_ref().map(|p| p.short_hash()).unwrap_or("-"),
                    "policy serving");
                report.loaded.push(name.to_owned());
            }
            Err(e) => {
                if recently_modified(path, self.settle) {
                    // Probably still being copied in place: say nothing yet,
                    // look again once the file has been left alone.
                    let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
                    let slot = slots.entry(name.to_owned()).or_insert_with(|| Slot {
                        serving: None,
                        status: empty_status(name),
                    });
                    if slot.serving.is_none() {
                        slot.status.state = PolicyState::Pending;
                    }
                    report.retry_after = Some(self.settle);
                    tracing::debug!(policy = %name, error = %e, "policy file does not load yet; waiting for it to settle");
                    return;
                }
                self.record_failure(name, Some(hash), e, report);
            }
        }
    }

    fn record_failure(
        &self,
        name: &str,
        hash: Option<String>,
        e: LoadError,
        report: &mut RescanReport,
    ) {
        let still_serving = {
            let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
            let slot = slots.entry(name.to_owned()).or_insert_with(|| Slot {
                serving: None,
                status: empty_status(name),
            });
            slot.status.last_error = Some(e.to_string());
            slot.status.failed_hash = hash;
            slot.status.state = if slot.serving.is_some() {
                PolicyState::Serving
            } else {
                PolicyState::Failed
            };
            slot.serving.as_ref().map(|v| v.short_hash().to_owned())
        };
        self.stats.load_failure(name, e.kind());
        tracing::error!(policy = %name, error = %e, kind = e.kind(),
            still_serving = still_serving.as_deref().unwrap_or("nothing"),
            "policy file failed to load; the previous version keeps serving");
        report.failed.push(name.to_owned());
    }
}

fn empty_status(name: &str) -> PolicyStatus {
    PolicyStatus {
        name: name.to_owned(),
        state: PolicyState::Pending,
        hash: None,
        loaded_at: None,
        size: None,
        load_ms: None,
        contract: None,
        last_error: None,
        failed_hash: None,
    }
}

/// The policy files of a folder by name: `NAME.wasm` regular files, not
/// dotfiles (editors' and `rsync`'s temporaries, the cache folder) and not
/// names with characters an operator would not give a policy.
fn candidates(dir: &Path) -> std::io::Result<BTreeMap<String, PathBuf>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let Some(file) = path.file_name().and_then(|f| f.to_str()) else {
            continue;
        };
        let Some(stem) = file.strip_suffix(".wasm") else {
            continue;
        };
        if stem.is_empty() || stem.starts_with('.') || !valid_name(stem) {
            continue;
        }
        // Follow symlinks (operators use them for blue/green), but only
        // regular files count.
        if std::fs::metadata(&path)
            .map(|m| m.is_file())
            .unwrap_or(false)
        {
            out.insert(stem.to_owned(), path);
        }
    }
    Ok(out)
}

/// Policy names are what operators write in the config: letters, digits,
/// `-`, `_`, `.`.
pub(crate) fn valid_name(name: &str) -> bool {
    name.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

fn recently_modified(path: &Path, settle: Duration) -> bool {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|age| age < settle)
}

/// Ensures the set of names the config needs is known, for readiness.
pub fn missing<'a>(
    registry: &PolicyRegistry,
    names: impl IntoIterator<Item = &'a str>,
) -> BTreeSet<String> {
    names
        .into_iter()
        .filter(|n| registry.get(n).is_none())
        .map(str::to_owned)
        .collect()
}
