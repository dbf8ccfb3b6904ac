//! Where outcomes are kept for the Handoff API: one record per concluded
//! call, filed under its shared id (Five9's `X-CallSessionID` unless the
//! policy picked another) and its call id.
//!
//! This is the interface and an in-memory store; the durable embedded store
//! and the shared Redis store implement the same trait.

use std::collections::HashMap;
use std::sync::RwLock;

use serde::{Deserialize, Serialize};

use crate::policy::Header;

/// Everything the Handoff API returns about one call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutcomeRecord {
    /// The id Five9 scripting looks the record up by.
    pub shared_id: String,
    /// Trunkline's call id.
    pub call_id: String,
    /// The caller leg's SIP Call-ID.
    pub sip_call_id: String,
    /// The trunk the call came in on.
    pub trunk: String,
    /// The trunk's tenant: only API keys of this tenant (or `*`) see it.
    pub tenant: String,
    /// Did the AI contain the call?
    pub contained: bool,
    /// Where the call should go next.
    pub destination: String,
    /// `bye`, `refer` or `none` (the caller had already hung up).
    pub delivery: String,
    /// The REFER target, when the outcome was delivered by REFER.
    pub refer_to: Option<String>,
    /// The headers that went to the caller on the BYE/REFER.
    pub headers_sent: Vec<Header>,
    /// Headers past the trunk's limit: kept here, not sent.
    pub overflow_headers: Vec<Header>,
    /// The policy's handoff data, as a JSON object.
    pub handoff: serde_json::Map<String, serde_json::Value>,
    /// Why the call ended (`agent-hangup`, `caller-hangup`, ...).
    pub end_reason: String,
    /// The agent target the call was connected to.
    pub target: String,
    /// The policy name and content hash that concluded the call.
    pub policy: String,
    /// The policy version (hash), empty when the fallback concluded.
    pub policy_version: String,
    /// Set when the policy failed and the trunk's fallback outcome was used.
    pub policy_error: Option<String>,
    /// When the INVITE arrived (ms since the Unix epoch).
    pub started_ms: u64,
    /// When the agent answered (ms since the Unix epoch), if it did.
    pub answered_ms: Option<u64>,
    /// When the call ended (ms since the Unix epoch).
    pub ended_ms: u64,
}

/// Why a record could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend refused or failed the write.
    #[error("outcome store: {0}")]
    Backend(String),
}

/// A place to keep outcome records.
pub trait OutcomeStore: Send + Sync {
    /// Stores (or replaces) the record; returns once it is durable for
    /// durable backends.
    fn put(&self, record: OutcomeRecord) -> Result<(), StoreError>;
    /// The record filed under `shared_id`.
    fn by_shared_id(&self, shared_id: &str) -> Option<OutcomeRecord>;
    /// The record of Trunkline call `call_id`.
    fn by_call_id(&self, call_id: &str) -> Option<OutcomeRecord>;
    /// Makes everything written so far durable (shutdown).
    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Records in memory; lost on restart.
#[derive(Debug, Default)]
pub struct MemoryStore {
    records: RwLock<HashMap<String, OutcomeRecord>>,
    call_ids: RwLock<HashMap<String, String>>,
}

impl OutcomeStore for MemoryStore {
    fn put(&self, record: OutcomeRecord) -> Result<(), StoreError> {
        let mut ids = self.call_ids.write().unwrap_or_else(|p| p.into_inner());
        ids.insert(record.call_id.clone(), record.shared_id.clone());
        let mut recs = self.records.write().unwrap_or_else(|p| p.into_inner());
        recs.insert(record.shared_id.clone(), record);
        Ok(())
    }

    fn by_shared_id(&self, shared_id: &str) -> Option<OutcomeRecord> {
        let recs = self.records.read().unwrap_or_else(|p| p.into_inner());
        recs.get(shared_id).cloned()
    }

    fn by_call_id(&self, call_id: &str) -> Option<OutcomeRecord> {
        let shared = {
            let ids = self.call_ids.read().unwrap_or_else(|p| p.into_inner());
            ids.get(call_id).cloned()?
        };
        self.by_shared_id(&shared)
    }
}

/// `[store]`: where outcome records are kept.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSettings {
    /// Which store: `embedded` (the default), `redis` or `memory`.
    pub backend: StoreBackend,
    /// The database file of the embedded store (relative to the config).
    pub path: std::path::PathBuf,
}

/// The kinds of outcome store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    /// A crash-safe database file; no server.
    #[default]
    Embedded,
    /// A Redis server shared by several nodes.
    Redis,
    /// In memory only: lost on restart (tests, demos).
    Memory,
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            backend: StoreBackend::Embedded,
            path: "trunkline-outcomes.db".into(),
        }
    }
}

impl StoreSettings {
    /// Makes relative paths relative to the config file's folder.
    pub fn resolve_paths(&mut self, base: &std::path::Path) {
        if self.path.is_relative() {
            self.path = base.join(&self.path);
        }
    }
}

/// Opens the store the settings name.
pub fn open(settings: &StoreSettings) -> Result<std::sync::Arc<dyn OutcomeStore>, StoreError> {
    match settings.backend {
        StoreBackend::Memory => Ok(std::sync::Arc::new(MemoryStore::default())),
        other => Err(StoreError::Backend(format!(
            "store backend {other:?} is not built yet"
        ))),
    }
}
