//! The embedded store: one SQLite file in WAL mode, no server.
//!
//! Durability: a `put` is one autocommit transaction, i.e. a `write()` of the
//! changed pages into the write-ahead log. Once `put` returns the record is
//! in the kernel's page cache for that file, so `kill -9` of Trunkline cannot
//! lose it; with `sync = "full"` SQLite also fsyncs the log on every commit,
//! so a power loss cannot either.
//!
//! Latency: the gateway's core task calls `put` right before the BYE, so the
//! writer never checkpoints (`wal_autocheckpoint = 0`): a background thread
//! copies the log into the database file about every second and deletes
//! expired records every minute in small batches. Readers (HTTP handlers)
//! use their own connections and see the last commit without waiting for
//! the writer: that is what WAL mode gives.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::{
    Counters, LookupKey, OutcomeRecord, OutcomeStore, StoreError, StoreSettings, StoreStats,
    StoredJson, SyncMode, now_ms,
};

/// How often the log is copied into the database file (and fsynced there).
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);
/// How often expired records are deleted.
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// Rows deleted per transaction by the sweep: the writer lock is held for
/// about a millisecond, so a `put` that arrives meanwhile waits that long at
/// most.
const SWEEP_BATCH: usize = 500;
/// Idle read connections kept open; more are opened under load and closed.
const MAX_IDLE_READERS: usize = 16;
/// Memory-mapped reads of the database file for the read connections:
/// lookups read pages without a `read()` each. The writer and the
/// checkpointer map nothing: the writer has its own page cache
/// ([`WRITER_CACHE_KIB`]), and a mapping would only add the pages its
/// inserts and sweeps touch to the process's RSS, growing with the file
/// for as long as the gateway runs (the soak saw +14 MB in 8 minutes).
const MMAP_BYTES: i64 = 256 << 20;
/// Page cache of the writer (KiB): the indexes of ~100k records stay hot.
const WRITER_CACHE_KIB: i64 = 32 << 10;
/// How long a connection waits on a lock held by another connection (the
/// checkpointer, another process) before it gives up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(2);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS outcomes (
    shared_id TEXT PRIMARY KEY NOT NULL,
    call_id   TEXT NOT NULL,
    tenant    TEXT NOT NULL,
    ended_ms  INTEGER NOT NULL,
    record    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS outcomes_call_id ON outcomes (call_id);
CREATE INDEX IF NOT EXISTS outcomes_ended_ms ON outcomes (ended_ms);
";

/// `copied` is for the Redis store (`redis.rs`): 0 until the record's copy
/// reached Redis, so a restart copies what a killed node had only queued.
/// Added to files made before it existed; the embedded store leaves it 1.
const ADD_COPIED: &str = "ALTER TABLE outcomes ADD COLUMN copied INTEGER NOT NULL DEFAULT 1";

const UPSERT: &str = "
INSERT INTO outcomes (shared_id, call_id, tenant, ended_ms, record, copied)
VALUES (?1, ?2, ?3, ?4, ?5, ?6)
ON CONFLICT (shared_id) DO UPDATE SET
    call_id = excluded.call_id, tenant = excluded.tenant,
    ended_ms = excluded.ended_ms, record = excluded.record,
    copied = excluded.copied";

/// Only the version that was copied counts: a record replaced meanwhile
/// stays to be copied.
const MARK_COPIED: &str = "UPDATE outcomes SET copied = 1 WHERE shared_id = ?1 AND record = ?2";

const NOT_COPIED: &str = "SELECT shared_id, call_id, ended_ms, record FROM outcomes
     WHERE copied = 0 AND ended_ms >= ?1 ORDER BY ended_ms LIMIT ?2";

const BY_SHARED_ID: &str =
    "SELECT record, tenant FROM outcomes WHERE shared_id = ?1 AND ended_ms >= ?2";

const BY_CALL_ID: &str = "SELECT record, tenant FROM outcomes WHERE call_id = ?1 AND ended_ms >= ?2
     ORDER BY ended_ms DESC LIMIT 1";

const SWEEP: &str = "DELETE FROM outcomes WHERE rowid IN
     (SELECT rowid FROM outcomes WHERE ended_ms < ?1 LIMIT ?2)";

/// Outcome records in a SQLite file. Dropping it stops the background
/// thread and closes the file (which checkpoints it).
#[must_use = "dropping the store closes the database"]
pub struct SqliteStore {
    shared: Arc<Shared>,
    /// Dropped to stop the maintenance thread.
    stop: Option<mpsc::Sender<()>>,
    maintenance: Option<JoinHandle<()>>,
}

struct Shared {
    path: PathBuf,
    /// The one connection that writes: `put` and the sweep take turns.
    writer: Mutex<Connection>,
    /// Idle read-only connections, taken by one lookup at a time.
    readers: Mutex<Vec<Connection>>,
    retention_ms: u64,
    counters: Counters,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.shared.path)
            .field("retention_ms", &self.shared.retention_ms)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (or creates) `settings.path`, checks it can be written and
    /// starts the maintenance thread. The folder must exist.
    pub fn open(settings: &StoreSettings) -> Result<SqliteStore, StoreError> {
        let path = settings.path.clone();
        let writer = open_writer(&path, settings.sync).map_err(|e| open_error(&path, e))?;
        // A read connection now, so a file that can be written but not read
        // back (or a broken schema) fails here rather than on the first
        // Five9 lookup.
        let reader = open_reader(&path).map_err(|e| open_error(&path, e))?;
        let shared = Arc::new(Shared {
            path: path.clone(),
            writer: Mutex::new(writer),
            readers: Mutex::new(vec![reader]),
            retention_ms: settings.retention().as_millis() as u64,
            counters: Counters::default(),
        });
        let checkpointer = open_read_write(&path).map_err(|e| open_error(&path, e))?;
        let (stop, stopped) = mpsc::channel();
        let thread_shared = shared.clone();
        let maintenance = std::thread::Builder::new()
            .name("store-maintenance".into())
            .spawn(move || maintain(&thread_shared, &checkpointer, &stopped))
            .map_err(|e| open_error(&path, e))?;
        tracing::info!(path = %path.display(), sync = ?settings.sync,
            retention_hours = settings.retention_hours, "outcome store open");
        Ok(SqliteStore {
            shared,
            stop: Some(stop),
            maintenance: Some(maintenance),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Deletes every expired record now (the maintenance thread does this
    /// every minute); returns how many went.
    pub fn sweep(&self) -> Result<u64, StoreError> {
        self.shared.sweep()
    }

    /// Records stored, expired ones included (until the sweep).
    pub fn len(&self) -> Result<u64, StoreError> {
        let conn = self.shared.writer();
        conn.query_row("SELECT count(*) FROM outcomes", [], |r| r.get(0))
            .map_err(backend)
    }

    /// Whether no record is stored.
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        self.len().map(|n| n == 0)
    }

    /// The stored JSON and tenant of a live record.
    fn lookup_json(&self, sql: &str, key: &str) -> Option<StoredJson> {
        let cutoff = now_ms().saturating_sub(self.shared.retention_ms);
        let found = self.shared.with_reader(|conn| {
            conn.prepare_cached(sql)?
                .query_row(params![key, cutoff as i64], |r| {
                    Ok(StoredJson {
                        json: r.get(0)?,
                        tenant: r.get(1)?,
                    })
                })
                .optional()
        });
        match found {
            Ok(found) => found,
            Err(e) => {
                Counters::add(&self.shared.counters.lookup_errors, 1);
                tracing::warn!(path = %self.shared.path.display(), error = %e,
                    "outcome store lookup failed");
                None
            }
        }
    }

    fn lookup(&self, sql: &str, key: &str) -> Option<OutcomeRecord> {
        let json = self.lookup_json(sql, key).map(|s| s.json);
        let record = json.and_then(|json| match serde_json::from_str(&json) {
            Ok(record) => Some(record),
            Err(e) => {
                // Written by a newer or older Trunkline with another shape.
                tracing::warn!(key, error = %e, "unreadable outcome record");
                None
            }
        });
        self.shared.counters.lookup(record)
    }
}

impl SqliteStore {
    /// Stores `record` encoded as `json`; `copied: false` marks it as still
    /// to be copied to Redis (see [`CopyLedger`]).
    pub(crate) fn put_json(
        &self,
        record: &OutcomeRecord,
        json: &str,
        copied: bool,
    ) -> Result<(), StoreError> {
        let result = {
            let conn = self.shared.writer();
            conn.prepare_cached(UPSERT)
                .and_then(|mut stmt| {
                    stmt.execute(params![
                        record.shared_id,
                        record.call_id,
                        record.tenant,
                        record.ended_ms as i64,
                        json,
                        copied,
                    ])
                })
                .map(|_| ())
                .map_err(backend)
        };
        let counter = match result {
            Ok(()) => &self.shared.counters.writes,
            Err(_) => &self.shared.counters.write_errors,
        };
        Counters::add(counter, 1);
        result
    }

    /// The Redis store's view of which records reached Redis.
    pub(crate) fn ledger(&self) -> CopyLedger {
        CopyLedger {
            shared: Arc::clone(&self.shared),
        }
    }
}

/// A record stored locally whose copy has not reached Redis yet.
#[derive(Debug, Clone)]
pub(crate) struct NotCopied {
    pub(crate) shared_id: String,
    pub(crate) call_id: String,
    pub(crate) ended_ms: u64,
    pub(crate) json: String,
}

/// Which local records reached Redis (the `copied` column), for the Redis
/// store's copier thread.
pub(crate) struct CopyLedger {
    shared: Arc<Shared>,
}

impl CopyLedger {
    /// Marks these (shared id, JSON) copies as in Redis, in one
    /// transaction: callers pass a few at a time, since `put` waits for the
    /// writer meanwhile.
    pub(crate) fn mark_copied(&self, copies: &[(String, String)]) -> Result<(), StoreError> {
        let mut conn = self.shared.writer();
        let tx = conn.transaction().map_err(backend)?;
        {
            let mut stmt = tx.prepare_cached(MARK_COPIED).map_err(backend)?;
            for (shared_id, json) in copies {
                stmt.execute(params![shared_id, json]).map_err(backend)?;
            }
        }
        tx.commit().map_err(backend)
    }

    /// Up to `limit` live records not yet copied, oldest first.
    pub(crate) fn not_copied(&self, limit: usize) -> Result<Vec<NotCopied>, StoreError> {
        let cutoff = now_ms().saturating_sub(self.shared.retention_ms);
        self.shared
            .with_reader(|conn| {
                let mut stmt = conn.prepare_cached(NOT_COPIED)?;
                let rows = stmt.query_map(params![cutoff as i64, limit as i64], |r| {
                    Ok(NotCopied {
                        shared_id: r.get(0)?,
                        call_id: r.get(1)?,
                        ended_ms: r.get::<_, i64>(2)?.max(0) as u64,
                        json: r.get(3)?,
                    })
                })?;
                rows.collect()
            })
            .map_err(backend)
    }
}

impl OutcomeStore for SqliteStore {
    fn put(&self, record: OutcomeRecord) -> Result<(), StoreError> {
        match serde_json::to_string(&record) {
            Ok(json) => self.put_json(&record, &json, true),
            Err(e) => {
                Counters::add(&self.shared.counters.write_errors, 1);
                Err(StoreError::Backend(format!(
                    "cannot encode the record: {e}"
                )))
            }
        }
    }

    fn by_shared_id(&self, shared_id: &str) -> Option<OutcomeRecord> {
        self.lookup(BY_SHARED_ID, shared_id)
    }

    fn by_call_id(&self, call_id: &str) -> Option<OutcomeRecord> {
        self.lookup(BY_CALL_ID, call_id)
    }

    fn json(&self, key: &LookupKey) -> Option<StoredJson> {
        let found = match key {
            LookupKey::SharedId(id) => self.lookup_json(BY_SHARED_ID, id),
            LookupKey::CallId(id) => self.lookup_json(BY_CALL_ID, id),
        };
        self.shared.counters.lookup(found)
    }

    /// Copies the log into the database file and fsyncs both, so even a
    /// power loss right after shutdown keeps every record.
    fn flush(&self) -> Result<(), StoreError> {
        let conn = self.shared.writer();
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(backend)
    }

    fn stats(&self) -> StoreStats {
        self.shared.counters.snapshot()
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.maintenance.take() {
            let _ = thread.join();
        }
    }
}

impl Shared {
    fn writer(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding it cannot leave SQLite half-written: the
        // transaction is rolled back by SQLite itself.
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn with_reader<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        let idle = self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => open_reader(&self.path)?,
        };
        let result = f(&conn);
        let mut idle = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE_READERS {
            idle.push(conn);
        }
        result
    }

    fn sweep(&self) -> Result<u64, StoreError> {
        let cutoff = now_ms().saturating_sub(self.retention_ms);
        let mut total = 0u64;
        loop {
            let deleted = {
                let conn = self.writer();
                conn.prepare_cached(SWEEP)
                    .and_then(|mut s| s.execute(params![cutoff as i64, SWEEP_BATCH as i64]))
                    .map_err(backend)?
            };
            total += deleted as u64;
            Counters::add(&self.counters.expired_deleted, deleted as u64);
            if deleted < SWEEP_BATCH {
                return Ok(total);
            }
            // Let a waiting `put` have the writer between batches.
            std::thread::yield_now();
        }
    }
}

/// The maintenance thread: checkpoints every second, sweeps every minute,
/// until the store is dropped.
fn maintain(shared: &Shared, checkpointer: &Connection, stop: &mpsc::Receiver<()>) {
    let mut last_sweep = Instant::now();
    loop {
        match stop.recv_timeout(CHECKPOINT_EVERY) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
        // PASSIVE never blocks the writer or the readers; what a reader
        // still needs stays in the log for the next round.
        if let Err(e) = checkpointer.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(path = %shared.path.display(), error = %e, "outcome store checkpoint failed");
        }
        if last_sweep.elapsed() >= SWEEP_EVERY {
            last_sweep = Instant::now();
            match shared.sweep() {
                Ok(0) => {}
                Ok(n) => tracing::debug!(deleted = n, "expired outcome records deleted"),
                Err(e) => tracing::warn!(error = %e, "outcome store sweep failed"),
            }
        }
    }
}

fn open_writer(path: &Path, sync: SyncMode) -> rusqlite::Result<Connection> {
    let conn = open_read_write(path)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        // E.g. a file system without shared memory: no crash-safe fast mode.
        return Err(rusqlite::Error::InvalidParameterName(format!(
            "the database refused WAL mode (journal_mode = {mode})"
        )));
    }
    let sync = match sync {
        SyncMode::Normal => "NORMAL",
        SyncMode::Full => "FULL",
    };
    conn.execute_batch(&format!(
        "PRAGMA synchronous = {sync};
         PRAGMA wal_autocheckpoint = 0;
         PRAGMA journal_size_limit = 67108864;
         PRAGMA cache_size = -{WRITER_CACHE_KIB};
         {SCHEMA}"
    ))?;
    let has_copied: bool = conn.query_row(
        "SELECT count(*) > 0 FROM pragma_table_info('outcomes') WHERE name = 'copied'",
        [],
        |r| r.get(0),
    )?;
    if !has_copied {
        conn.execute_batch(ADD_COPIED)?;
    }
    Ok(conn)
}

/// A read-write connection, without memory-mapped I/O (see [`MMAP_BYTES`]).
fn open_read_write(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.execute_batch("PRAGMA mmap_size = 0;")?;
    Ok(conn)
}

fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.execute_batch(&format!("PRAGMA mmap_size = {MMAP_BYTES};"))?;
    // Fails on a file that is not this store's database.
    conn.prepare_cached(BY_SHARED_ID)?;
    Ok(conn)
}

fn open_error(path: &Path, e: impl std::fmt::Display) -> StoreError {
    // SQLite only says "unable to open database file"; the usual cause is a
    // folder that is not there (the store does not create folders).
    let reason = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => {
            format!("its folder {} does not exist", dir.display())
        }
        _ => e.to_string(),
    };
    StoreError::Open {
        path: path.to_owned(),
        reason,
    }
}

fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{StoreBackend, sample};

    const HOUR: Duration = Duration::from_secs(3600);

    fn settings(dir: &Path) -> StoreSettings {
        StoreSettings {
            backend: StoreBackend::Embedded,
            path: dir.join("outcomes.db"),
            ..StoreSettings::default()
        }
    }

    #[test]
    fn round_trip_by_shared_id_and_call_id() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&settings(dir.path())).unwrap();
        let rec = sample("sess-1", "tl-1", Duration::ZERO);
        store.put(rec.clone()).unwrap();
        assert_eq!(store.by_shared_id("sess-1"), Some(rec.clone()));
        assert_eq!(store.by_call_id("tl-1"), Some(rec));
        assert_eq!(store.by_shared_id("tl-1"), None);
        assert_eq!(store.by_call_id("sess-1"), None);
        let stats = store.stats();
        assert_eq!(
            (stats.writes, stats.lookup_hits, stats.lookup_misses),
            (1, 2, 2)
        );
        // The JSON path (what the Handoff API serves) holds the same record.
        for key in [
            LookupKey::SharedId("sess-1".into()),
            LookupKey::CallId("tl-1".into()),
        ] {
            let stored = store.json(&key).expect("found");
            assert_eq!(stored.tenant, "five9");
            let back: OutcomeRecord = serde_json::from_str(&stored.json).unwrap();
            assert_eq!(store.by_shared_id("sess-1"), Some(back));
        }
        assert_eq!(store.json(&LookupKey::SharedId("nope".into())), None);
    }

    #[test]
    fn a_second_put_replaces_the_record() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&settings(dir.path())).unwrap();
        let mut rec = sample("sess-1", "tl-1", Duration::ZERO);
        store.put(rec.clone()).unwrap();
        rec.delivery = "bye-after-failed-refer".into();
        store.put(rec.clone()).unwrap();
        assert_eq!(
            store.by_call_id("tl-1").unwrap().delivery,
            "bye-after-failed-refer"
        );
        assert_eq!(store.len().unwrap(), 1);
    }

    #[test]
    fn the_ledger_lists_records_until_the_copied_version_is_marked() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&settings(dir.path())).unwrap();
        let ledger = store.ledger();
        // Plain puts (the embedded store) are never "to copy".
        store
            .put(sample("sess-local", "tl-0", Duration::ZERO))
            .unwrap();
        let mut rec = sample("sess-1", "tl-1", Duration::ZERO);
        let json = serde_json::to_string(&rec).unwrap();
        store.put_json(&rec, &json, false).unwrap();
        let listed = ledger.not_copied(10).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(
            (listed[0].shared_id.as_str(), listed[0].call_id.as_str()),
            ("sess-1", "tl-1")
        );
        assert_eq!(listed[0].json, json);
        assert_eq!(listed[0].ended_ms, rec.ended_ms);

        // Replaced before the first version's copy was marked: the newer
        // version still has to go.
        rec.delivery = "bye-after-failed-refer".into();
        let newer = serde_json::to_string(&rec).unwrap();
        store.put_json(&rec, &newer, false).unwrap();
        ledger
            .mark_copied(&[("sess-1".into(), json.clone())])
            .unwrap();
        assert_eq!(ledger.not_copied(10).unwrap()[0].json, newer);
        ledger.mark_copied(&[("sess-1".into(), newer)]).unwrap();
        assert!(ledger.not_copied(10).unwrap().is_empty());

        // Expired records are not copied any more.
        let old = sample("sess-old", "tl-old", 25 * HOUR);
        store
            .put_json(&old, &serde_json::to_string(&old).unwrap(), false)
            .unwrap();
        assert!(ledger.not_copied(10).unwrap().is_empty());
    }

    #[test]
    fn a_file_from_before_the_copied_column_gets_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outcomes.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE outcomes (shared_id TEXT PRIMARY KEY NOT NULL, \
                 call_id TEXT NOT NULL, tenant TEXT NOT NULL, \
                 ended_ms INTEGER NOT NULL, record TEXT NOT NULL);",
            )
            .unwrap();
            let rec = sample("sess-old-file", "tl-9", Duration::ZERO);
            conn.execute(
                "INSERT INTO outcomes VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    rec.shared_id,
                    rec.call_id,
                    rec.tenant,
                    rec.ended_ms as i64,
                    serde_json::to_string(&rec).unwrap()
                ],
            )
            .unwrap();
        }
        let store = SqliteStore::open(&settings(dir.path())).unwrap();
        assert!(store.by_shared_id("sess-old-file").is_some());
        // Old records count as copied: nothing floods Redis on upgrade.
        assert!(store.ledger().not_copied(10).unwrap().is_empty());
        store
            .put(sample("sess-new", "tl-10", Duration::ZERO))
            .unwrap();
        assert_eq!(store.len().unwrap(), 2);
    }

    #[test]
    fn expired_records_are_not_returned_and_the_sweep_deletes_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&StoreSettings {
            retention_hours: 2,
            ..settings(dir.path())
        })
        .unwrap();
        store.put(sample("old", "tl-old", 3 * HOUR)).unwrap();
        store.put(sample("fresh", "tl-fresh", HOUR)).unwrap();
        assert_eq!(store.by_shared_id("old"), None);
        assert_eq!(store.by_call_id("tl-old"), None);
        assert!(store.by_shared_id("fresh").is_some());
        assert_eq!(store.sweep().unwrap(), 1);
        assert_eq!(store.len().unwrap(), 1);
        assert_eq!(store.stats().expired_deleted, 1);
    }

    #[test]
    fn the_sweep_deletes_more_than_one_batch() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&settings(dir.path())).unwrap();
        let n = SWEEP_BATCH * 2 + 7;
        for i in 0..n {
            store
                .put(sample(&format!("s{i}"), &format!("c{i}"), 30 * HOUR))
                .unwrap();
        }
        store.put(sample("keep", "c-keep", Duration::ZERO)).unwrap();
        assert_eq!(store.sweep().unwrap(), n as u64);
        assert_eq!(store.len().unwrap(), 1);
    }

    #[test]
    fn records_survive_closing_and_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let rec = sample("sess-1", "tl-1", Duration::ZERO);
        {
            let store = SqliteStore::open(&settings(dir.path())).unwrap();
            store.put(rec.clone()).unwrap();
        }
        let store = SqliteStore::open(&settings(dir.path())).unwrap();
        assert_eq!(store.by_shared_id("sess-1"), Some(rec));
    }

    #[test]
    fn a_record_is_in_the_file_before_any_checkpoint() {
        // What kill -9 leaves: the WAL, never checkpointed. A fresh
        // connection (as after a restart) must see the record.
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&settings(dir.path())).unwrap();
        store.put(sample("sess-1", "tl-1", Duration::ZERO)).unwrap();
        let other = Connection::open(dir.path().join("outcomes.db")).unwrap();
        let n: i64 = other
            .query_row(
                "SELECT count(*) FROM outcomes WHERE shared_id = 'sess-1'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 1);
        store.flush().unwrap();
    }

    #[test]
    fn full_sync_stores_too() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&StoreSettings {
            sync: SyncMode::Full,
            ..settings(dir.path())
        })
        .unwrap();
        store.put(sample("sess-1", "tl-1", Duration::ZERO)).unwrap();
        assert!(store.by_shared_id("sess-1").is_some());
    }

    #[test]
    fn bad_paths_fail_at_open_with_the_path_in_the_message() {
        let dir = tempfile::tempdir().unwrap();
        let not_a_db = dir.path().join("notes.txt");
        std::fs::write(
            &not_a_db,
            "hello, this is not SQLite at all, just some text\n".repeat(100),
        )
        .unwrap();
        for path in [
            dir.path().join("no/such/folder/outcomes.db"),
            dir.path().to_owned(),
            not_a_db,
        ] {
            let err = SqliteStore::open(&StoreSettings {
                path: path.clone(),
                ..settings(dir.path())
            })
            .err()
            .unwrap_or_else(|| panic!("{} opened", path.display()));
            let text = err.to_string();
            assert!(text.contains(&path.display().to_string()), "{text}");
            assert!(!text.contains('\n'), "{text}");
        }
    }

    #[test]
    fn readers_and_the_writer_work_from_many_threads() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&settings(dir.path())).unwrap());
        let writers: Vec<_> = (0..4)
            .map(|t| {
                let store = store.clone();
                std::thread::spawn(move || {
                    for i in 0..100 {
                        let id = format!("t{t}-{i}");
                        store
                            .put(sample(&id, &format!("c-{id}"), Duration::ZERO))
                            .unwrap();
                        assert!(store.by_shared_id(&id).is_some(), "{id}");
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        assert_eq!(store.len().unwrap(), 400);
    }
}
