//! Where outcomes are kept for the Handoff API: one record per concluded
//! call, filed under its shared id (Five9's `X-CallSessionID` unless the
//! policy picked another) and its call id.
//!
//! # Layout
//! - this file: the record, the [`OutcomeStore`] trait, counters, settings,
//!   [`open`] and the in-memory store (tests, demos);
//! - [`sqlite`]: the embedded default, a SQLite file in WAL mode: a record is
//!   in the file (survives `kill -9`) once `put` returns;
//! - [`redis`]: several nodes behind one SIP front: the local SQLite file
//!   first, then a shared Redis that every node reads.

pub mod redis;
pub mod sqlite;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

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
    /// Why the call never connected, when it did not: the agent leg's
    /// failure, typed (`busy`, `no-answer`, `unreachable`, `rejected`,
    /// `auth-failed`) with the SIP status behind it. Absent on connected
    /// calls and in records written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureRecord>,
    /// The last transfer the agent asked for (`POST
    /// /v1/calls/{id}/transfer` with a `mode`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer: Option<TransferRecord>,
}

/// A transfer as records and the Handoff API show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferRecord {
    /// The number or URI asked for.
    pub to: String,
    /// `cold` or `warm`.
    pub mode: String,
    /// The `[[outbound]]` trunk.
    pub outbound: String,
    /// `bridged` (the caller reached the target), `failed`, `cancelled`;
    /// `dialling` or `briefing` (a warm transfer's brief) when the call
    /// ended first.
    pub result: String,
    /// Why it failed: `busy`, `no-answer`, `rejected`, `auth-failed`,
    /// `unreachable`, `media`, `capacity`, `target-hangup`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// The SIP status behind the failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// When it was asked for (ms since the Unix epoch).
    pub started_ms: u64,
    /// When the caller was bridged to the target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridged_ms: Option<u64>,
}

/// A leg's failure as records and the Handoff API show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureRecord {
    /// `busy`, `no-answer`, `unreachable`, `rejected`, `auth-failed`,
    /// `policy`.
    pub kind: String,
    /// The SIP status received (408 for a transaction timeout); absent
    /// for our ring timeout and failures below SIP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

impl From<trunkline_sip::leg::LegFailure> for FailureRecord {
    fn from(f: trunkline_sip::leg::LegFailure) -> FailureRecord {
        FailureRecord {
            kind: f.kind.as_str().to_owned(),
            status: f.status,
        }
    }
}

/// Why the store could not be opened or a record could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file cannot be opened, created or written: the gateway
    /// does not start, since every outcome would be lost.
    #[error("database file {}: {reason}", path.display())]
    Open {
        /// The database file.
        path: PathBuf,
        /// What SQLite or the file system said.
        reason: String,
    },
    /// A `[store]` setting is out of range or malformed.
    #[error("[store] {0}")]
    Settings(String),
    /// The backend refused or failed the write.
    #[error("outcome store: {0}")]
    Backend(String),
}

/// A place to keep outcome records.
///
/// `put` is called on the gateway's core task right before the BYE goes to
/// Five9, so it must be quick; lookups come from HTTP handlers on other
/// threads and must not wait for writes.
pub trait OutcomeStore: Send + Sync {
    /// Stores (or replaces) the record; returns once it is durable for
    /// durable backends.
    fn put(&self, record: OutcomeRecord) -> Result<(), StoreError>;
    /// The record filed under `shared_id`, unless it expired.
    fn by_shared_id(&self, shared_id: &str) -> Option<OutcomeRecord>;
    /// The record of Trunkline call `call_id`, unless it expired.
    fn by_call_id(&self, call_id: &str) -> Option<OutcomeRecord>;
    /// Makes everything written so far durable (shutdown).
    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }
    /// Counters since the store was opened (for `/metrics`).
    fn stats(&self) -> StoreStats {
        StoreStats::default()
    }
    /// The record as stored JSON, for serving without decoding it: what
    /// the Handoff API answers. By shared id or call id.
    fn json(&self, key: &LookupKey) -> Option<StoredJson> {
        let record = match key {
            LookupKey::SharedId(id) => self.by_shared_id(id)?,
            LookupKey::CallId(id) => self.by_call_id(id)?,
        };
        Some(StoredJson {
            json: serde_json::to_string(&record).ok()?,
            tenant: record.tenant,
        })
    }
    /// Whether a lookup may wait on the network (then callers run it off
    /// the async workers); local stores answer in microseconds.
    fn lookups_may_block(&self) -> bool {
        false
    }
}

/// How a record is looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupKey {
    /// By the id Five9 scripting knows (`X-CallSessionID` by default).
    SharedId(String),
    /// By Trunkline's call id.
    CallId(String),
}

/// A record as stored: its tenant (for the key check) and its JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredJson {
    /// The record's tenant.
    pub tenant: String,
    /// The record, as JSON text.
    pub json: String,
}

/// What a store has done since it was opened. Every field only grows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Records stored (`put` returned `Ok`).
    pub writes: u64,
    /// `put` calls that failed: those outcomes are not kept.
    pub write_errors: u64,
    /// Lookups that found a live record.
    pub lookup_hits: u64,
    /// Lookups that found nothing (unknown or expired).
    pub lookup_misses: u64,
    /// Lookups that failed in the backend (answered as not found).
    pub lookup_errors: u64,
    /// Expired records deleted by the sweep.
    pub expired_deleted: u64,
    /// Records copied to the shared Redis (Redis backend).
    pub redis_writes: u64,
    /// Redis commands or connections that failed (Redis backend).
    pub redis_errors: u64,
    /// Lookups answered from Redis, i.e. records written by another node
    /// (they are counted in `lookup_hits` too).
    pub redis_hits: u64,
    /// Records never copied to Redis because its queue was full or the
    /// retries ran out: other nodes cannot answer for them.
    pub redis_dropped: u64,
}

/// Lock-free counters behind [`StoreStats`], shared by the backends.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) writes: AtomicU64,
    pub(crate) write_errors: AtomicU64,
    pub(crate) lookup_hits: AtomicU64,
    pub(crate) lookup_misses: AtomicU64,
    pub(crate) lookup_errors: AtomicU64,
    pub(crate) expired_deleted: AtomicU64,
    pub(crate) redis_writes: AtomicU64,
    pub(crate) redis_errors: AtomicU64,
    pub(crate) redis_hits: AtomicU64,
    pub(crate) redis_dropped: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts a lookup by its result and passes the result on.
    pub(crate) fn lookup<T>(&self, found: Option<T>) -> Option<T> {
        let counter = if found.is_some() {
            &self.lookup_hits
        } else {
            &self.lookup_misses
        };
        Self::add(counter, 1);
        found
    }

    pub(crate) fn snapshot(&self) -> StoreStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StoreStats {
            writes: get(&self.writes),
            write_errors: get(&self.write_errors),
            lookup_hits: get(&self.lookup_hits),
            lookup_misses: get(&self.lookup_misses),
            lookup_errors: get(&self.lookup_errors),
            expired_deleted: get(&self.expired_deleted),
            redis_writes: get(&self.redis_writes),
            redis_errors: get(&self.redis_errors),
            redis_hits: get(&self.redis_hits),
            redis_dropped: get(&self.redis_dropped),
        }
    }
}

/// Records in memory; lost on restart. No expiry: meant for tests and demos.
#[derive(Debug, Default)]
pub struct MemoryStore {
    records: RwLock<HashMap<String, OutcomeRecord>>,
    call_ids: RwLock<HashMap<String, String>>,
    counters: Counters,
}

impl OutcomeStore for MemoryStore {
    fn put(&self, record: OutcomeRecord) -> Result<(), StoreError> {
        let mut ids = self.call_ids.write().unwrap_or_else(|p| p.into_inner());
        ids.insert(record.call_id.clone(), record.shared_id.clone());
        let mut recs = self.records.write().unwrap_or_else(|p| p.into_inner());
        recs.insert(record.shared_id.clone(), record);
        Counters::add(&self.counters.writes, 1);
        Ok(())
    }

    fn by_shared_id(&self, shared_id: &str) -> Option<OutcomeRecord> {
        let recs = self.records.read().unwrap_or_else(|p| p.into_inner());
        self.counters.lookup(recs.get(shared_id).cloned())
    }

    fn by_call_id(&self, call_id: &str) -> Option<OutcomeRecord> {
        let shared = {
            let ids = self.call_ids.read().unwrap_or_else(|p| p.into_inner());
            ids.get(call_id).cloned()
        };
        match shared {
            Some(shared) => self.by_shared_id(&shared),
            None => self.counters.lookup(None),
        }
    }

    fn stats(&self) -> StoreStats {
        self.counters.snapshot()
    }
}

/// `[store]`: where outcome records are kept.
///
/// ```toml
/// [store]
/// backend = "embedded"          # or "redis", "memory"
/// path = "trunkline-outcomes.db"
/// sync = "normal"               # or "full"
/// retention_hours = 24
/// # backend = "redis" only:
/// redis_url = "redis://127.0.0.1:6379/"
/// key_prefix = "trunkline:"
/// redis_timeout_ms = 200
/// ```
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSettings {
    /// Which store: `embedded` (the default), `redis` or `memory`.
    pub backend: StoreBackend,
    /// The SQLite file of the embedded store, and the local copy of the
    /// Redis backend (relative to the config file). Its folder must exist.
    pub path: PathBuf,
    /// How hard each write is pushed to disk (embedded and Redis backends).
    pub sync: SyncMode,
    /// How long a record is answered after its call ended, in hours
    /// (at least 1). Older records are not returned and are deleted within
    /// about a minute; Redis keys carry it as their TTL.
    pub retention_hours: u64,
    /// The shared Redis server (`backend = "redis"`):
    /// `redis://[:password@]host:port/[db]`.
    pub redis_url: String,
    /// Prepended to every Redis key, so several deployments can share one
    /// Redis: keys are `PREFIX shared:ID` and `PREFIX call:ID`.
    pub key_prefix: String,
    /// Connect, read and write timeout for Redis, in milliseconds. A lookup
    /// that goes to Redis waits at most about twice this long.
    pub redis_timeout_ms: u64,
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

/// How a write reaches the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncMode {
    /// Each write is in the file (the WAL) when `put` returns: it survives
    /// `kill -9` of Trunkline; the disk is flushed at checkpoints (about
    /// every second), so a power loss may take the last second of records.
    /// Writes cost tens of microseconds.
    #[default]
    Normal,
    /// Each write is flushed to the disk (fsync) before `put` returns: it
    /// survives a power loss, at the cost of a disk flush (often
    /// milliseconds) on every call's teardown.
    Full,
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            backend: StoreBackend::Embedded,
            path: "trunkline-outcomes.db".into(),
            sync: SyncMode::Normal,
            retention_hours: 24,
            redis_url: "redis://127.0.0.1:6379/".into(),
            key_prefix: "trunkline:".into(),
            redis_timeout_ms: 200,
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

    /// How long records are kept.
    pub fn retention(&self) -> Duration {
        Duration::from_secs(self.retention_hours.saturating_mul(3600))
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.retention_hours == 0 {
            return Err(StoreError::Settings(
                "retention_hours must be at least 1".into(),
            ));
        }
        if self.retention_hours > 24 * 366 {
            return Err(StoreError::Settings(
                "retention_hours must be at most a year (8784)".into(),
            ));
        }
        if self.redis_timeout_ms == 0 {
            return Err(StoreError::Settings(
                "redis_timeout_ms must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// Opens the store the settings name. Fails when the settings are out of
/// range or the database file cannot be opened and written; a Redis server
/// that is down is not an error (records stay local until it is back).
pub fn open(settings: &StoreSettings) -> Result<Arc<dyn OutcomeStore>, StoreError> {
    settings.check()?;
    Ok(match settings.backend {
        StoreBackend::Memory => Arc::new(MemoryStore::default()),
        StoreBackend::Embedded => Arc::new(self::sqlite::SqliteStore::open(settings)?),
        StoreBackend::Redis => Arc::new(self::redis::RedisStore::open(settings)?),
    })
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A record for tests: call `call_id`, filed under `shared_id`, ended `age`
/// ago.
#[cfg(test)]
pub(crate) fn sample(shared_id: &str, call_id: &str, age: Duration) -> OutcomeRecord {
    let ended_ms = now_ms().saturating_sub(age.as_millis() as u64);
    OutcomeRecord {
        shared_id: shared_id.into(),
        call_id: call_id.into(),
        sip_call_id: format!("{call_id}@five9"),
        trunk: "five9".into(),
        tenant: "five9".into(),
        contained: false,
        destination: "Billing_Queue".into(),
        delivery: "bye".into(),
        refer_to: None,
        headers_sent: vec![Header {
            name: "X-RouteReason".into(),
            value: "billing".into(),
        }],
        overflow_headers: Vec::new(),
        handoff: serde_json::Map::new(),
        end_reason: "agent-hangup".into(),
        target: "sip:agent@127.0.0.1".into(),
        policy: "route-reason".into(),
        policy_version: "abc".into(),
        policy_error: None,
        started_ms: ended_ms.saturating_sub(60_000),
        answered_ms: Some(ended_ms.saturating_sub(59_000)),
        ended_ms,
        failure: None,
        transfer: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_round_trips_and_older_records_have_none() {
        let mut rec = sample("s-1", "tl-1", Duration::ZERO);
        let plain = serde_json::to_value(&rec).unwrap();
        assert!(plain.get("failure").is_none(), "absent, not null: {plain}");
        let old: OutcomeRecord = serde_json::from_value(plain).unwrap();
        assert_eq!(old.failure, None);
        rec.failure = Some(trunkline_sip::leg::LegFailure::from_status(486, false).into());
        let text = serde_json::to_string(&rec).unwrap();
        assert!(
            text.contains(r#""failure":{"kind":"busy","status":486}"#),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<OutcomeRecord>(&text).unwrap(), rec);
        let timeout: FailureRecord = trunkline_sip::leg::LegFailure::ring_timeout().into();
        assert_eq!(
            serde_json::to_string(&timeout).unwrap(),
            r#"{"kind":"no-answer"}"#
        );
    }

    #[test]
    fn settings_defaults_and_every_field_parse() {
        let s: StoreSettings = toml::from_str("").unwrap();
        assert_eq!(s.backend, StoreBackend::Embedded);
        assert_eq!(s.sync, SyncMode::Normal);
        assert_eq!(s.retention(), Duration::from_secs(24 * 3600));
        let s: StoreSettings = toml::from_str(
            "backend = \"redis\"\npath = \"x.db\"\nsync = \"full\"\nretention_hours = 2\n\
             redis_url = \"redis://10.0.0.1:6380/\"\nkey_prefix = \"tl:\"\nredis_timeout_ms = 50\n",
        )
        .unwrap();
        assert_eq!(s.backend, StoreBackend::Redis);
        assert_eq!(s.sync, SyncMode::Full);
        assert_eq!(s.retention_hours, 2);
        assert_eq!(s.key_prefix, "tl:");
        assert_eq!(s.redis_timeout_ms, 50);
    }

    #[test]
    fn unknown_fields_and_bad_values_are_refused() {
        assert!(toml::from_str::<StoreSettings>("retention = 3").is_err());
        assert!(toml::from_str::<StoreSettings>("sync = \"sometimes\"").is_err());
        let zero = StoreSettings {
            retention_hours: 0,
            backend: StoreBackend::Memory,
            ..StoreSettings::default()
        };
        let err = open(&zero).err().expect("refused");
        assert!(err.to_string().contains("retention_hours"), "{err}");
    }

    #[test]
    fn memory_store_round_trips_and_counts() {
        let store = MemoryStore::default();
        let rec = sample("s1", "tl-1", Duration::ZERO);
        store.put(rec.clone()).unwrap();
        assert_eq!(store.by_shared_id("s1"), Some(rec.clone()));
        assert_eq!(store.by_call_id("tl-1"), Some(rec));
        assert_eq!(store.by_call_id("tl-2"), None);
        let stats = store.stats();
        assert_eq!(
            (stats.writes, stats.lookup_hits, stats.lookup_misses),
            (1, 2, 1)
        );
    }
}
