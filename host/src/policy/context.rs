//! The per-decision store data: what a component may reach through its
//! imports (its own config, the log) and the limits it runs under.
//!
//! A fresh `DecisionCtx` (and a fresh Store) is made for every `route` and
//! `conclude`, so nothing a policy does can leak into another call or tenant.

use std::collections::BTreeMap;
use std::sync::Arc;

use wasmtime::component::HasData;

use super::bindings::trunkline::policy::{config, log, types};

/// Log lines longer than this are cut: a policy must not be able to flood the
/// host's log with one call.
const MAX_LOG_LINE: usize = 4096;
/// After this many lines in one decision the rest are dropped (and counted).
const MAX_LOG_LINES: u32 = 64;

/// The data of one decision's Store.
pub(crate) struct DecisionCtx {
    /// The policy's name, for log lines.
    pub(crate) policy: Arc<str>,
    /// The policy's short content hash, for log lines.
    pub(crate) version: Arc<str>,
    /// The call the decision is about, for log lines.
    pub(crate) call_id: String,
    /// The operator's key/values for this policy.
    pub(crate) config: Arc<BTreeMap<String, String>>,
    /// Enforces the memory cap and remembers that it was hit, so a trap can
    /// be reported as "memory cap" rather than a generic trap.
    pub(crate) limiter: MemoryCap,
    /// Lines logged so far in this decision.
    pub(crate) log_lines: u32,
}

/// A `ResourceLimiter` that refuses linear memory beyond a cap.
pub(crate) struct MemoryCap {
    /// The cap in bytes.
    pub(crate) max_bytes: usize,
    /// Set when a growth past the cap was refused.
    pub(crate) hit: bool,
}

impl wasmtime::ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.hit = true;
            // Refusing with an error (rather than `Ok(false)`) traps at once
            // instead of letting the guest's allocator spin on failures.
            return Err(wasmtime::Error::msg(format!(
                "memory cap of {} bytes exceeded (wanted {desired})",
                self.max_bytes
            )));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// Marker for `bindgen!`'s `add_to_linker`: the import traits are
/// implemented on `DecisionCtx` itself.
pub(crate) struct Imports;

impl HasData for Imports {
    type Data<'a> = &'a mut DecisionCtx;
}

impl types::Host for DecisionCtx {}

impl log::Host for DecisionCtx {
    fn log(&mut self, level: log::Level, message: String) {
        self.log_lines += 1;
        if self.log_lines > MAX_LOG_LINES {
            if self.log_lines == MAX_LOG_LINES + 1 {
                tracing::warn!(policy = %self.policy, call_id = %self.call_id,
                    "policy logged more than {MAX_LOG_LINES} lines in one decision; dropping the rest");
            }
            return;
        }
        let mut message = message;
        if message.len() > MAX_LOG_LINE {
            let mut cut = MAX_LOG_LINE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        let (policy, version, call_id) = (&*self.policy, &*self.version, &self.call_id);
        match level {
            log::Level::Trace => {
                tracing::trace!(target: "policy", policy, version, call_id, "{message}")
            }
            log::Level::Debug => {
                tracing::debug!(target: "policy", policy, version, call_id, "{message}")
            }
            log::Level::Info => {
                tracing::info!(target: "policy", policy, version, call_id, "{message}")
            }
            log::Level::Warn => {
                tracing::warn!(target: "policy", policy, version, call_id, "{message}")
            }
            log::Level::Error => {
                tracing::error!(target: "policy", policy, version, call_id, "{message}")
            }
        }
    }
}

impl config::Host for DecisionCtx {
    fn get(&mut self, key: String) -> Option<String> {
        self.config.get(&key).cloned()
    }

    fn entries(&mut self) -> Vec<(String, String)> {
        self.config
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}
