//! The shared store for several nodes behind one SIP front: each node keeps
//! its records in its own SQLite file (the embedded store) and copies them
//! to one Redis that every node reads.
//!
//! - `put` writes the local file first: once it returns the record survives
//!   `kill -9` even when Redis is down. The copy to Redis is queued to a
//!   background thread, so Redis' round trip (or a dead Redis' timeout)
//!   never delays the BYE to Five9. Five9 asks for the outcome after it got
//!   that BYE, by which time the copy (well under a millisecond on a LAN) is
//!   there.
//! - Redis keys: `PREFIX shared:ID` holds the record's JSON and
//!   `PREFIX call:ID` the shared id, both with the remaining retention as
//!   their TTL, so Redis expires them itself.
//! - Lookups: the local file first (this node's calls), then Redis (other
//!   nodes' calls). After a Redis failure lookups skip Redis for a second
//!   rather than each waiting for the timeout.
//! - Nothing stays local for good: the file marks each record as copied
//!   once Redis has it. At start the copier sends what a previous run left
//!   uncopied (killed with copies queued, or Redis down), and while running
//!   it looks again every [`RESCAN_EVERY`] (copies dropped from a full
//!   queue).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::sqlite::{CopyLedger, NotCopied, SqliteStore};
use super::{Counters, OutcomeRecord, OutcomeStore, StoreError, StoreSettings, StoreStats, now_ms};

/// Records waiting for Redis; past this (Redis down for a long while under
/// load) new records are kept locally only.
const QUEUE: usize = 10_000;
/// How long lookups leave Redis alone after it failed.
const PAUSE_AFTER_FAILURE: Duration = Duration::from_secs(1);
/// The longest wait between two tries of the copy while Redis is down.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(2);
/// How long `flush` (shutdown) waits for queued copies.
const FLUSH_WAIT: Duration = Duration::from_secs(2);
/// Idle read connections kept open.
const MAX_IDLE: usize = 8;
/// How often an idle copier looks for local records Redis lacks.
const RESCAN_EVERY: Duration = Duration::from_secs(30);
/// Records looked up per rescan.
const RESCAN_BATCH: usize = 1_000;
/// Copies marked as done per transaction on the local file (a `put`
/// waits for the writer meanwhile: a few records' worth of time).
const MARK_BATCH: usize = 16;

/// One record on its way to Redis.
struct Copy {
    shared_id: String,
    call_id: String,
    json: String,
    ended_ms: u64,
}

impl From<NotCopied> for Copy {
    fn from(n: NotCopied) -> Copy {
        Copy {
            shared_id: n.shared_id,
            call_id: n.call_id,
            json: n.json,
            ended_ms: n.ended_ms,
        }
    }
}

/// The local SQLite store plus a shared Redis.
#[must_use = "dropping the store stops copying to Redis"]
pub struct RedisStore {
    local: SqliteStore,
    redis: Arc<Redis>,
    queue: Option<SyncSender<Copy>>,
    copier: Option<JoinHandle<()>>,
}

/// What the copier thread and the lookups share.
struct Redis {
    client: ::redis::Client,
    prefix: String,
    timeout: Duration,
    retention_ms: u64,
    /// Idle connections for lookups.
    idle: Mutex<Vec<::redis::Connection>>,
    /// Lookups skip Redis until then.
    paused_until: Mutex<Option<Instant>>,
    /// Copies queued and not yet written or given up.
    pending: AtomicU64,
    counters: Counters,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("local", &self.local)
            .field("prefix", &self.redis.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Opens the local file (errors as for the embedded store) and starts
    /// the copier. A Redis that is down is only logged: records stay local
    /// and are copied once it is back.
    pub fn open(settings: &StoreSettings) -> Result<RedisStore, StoreError> {
        let client = ::redis::Client::open(settings.redis_url.as_str())
            .map_err(|e| StoreError::Settings(format!("redis_url: {e}")))?;
        let local = SqliteStore::open(settings)?;
        let redis = Arc::new(Redis {
            client,
            prefix: settings.key_prefix.clone(),
            timeout: Duration::from_millis(settings.redis_timeout_ms),
            retention_ms: settings.retention().as_millis() as u64,
            idle: Mutex::new(Vec::new()),
            paused_until: Mutex::new(None),
            pending: AtomicU64::new(0),
            counters: Counters::default(),
        });
        match redis.connect() {
            Ok(conn) => redis.give_back(conn),
            Err(e) => tracing::warn!(error = %e,
                "Redis is not reachable yet; outcomes are kept locally until it is"),
        }
        let (queue, jobs) = mpsc::sync_channel(QUEUE);
        let thread_redis = redis.clone();
        let ledger = local.ledger();
        // What an earlier run stored but never got into Redis goes first.
        let backlog = ledger.not_copied(QUEUE).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot list outcomes not yet copied to Redis");
            Vec::new()
        });
        if !backlog.is_empty() {
            tracing::info!(
                records = backlog.len(),
                "copying outcomes an earlier run kept locally to Redis"
            );
        }
        for record in backlog {
            redis.pending.fetch_add(1, Ordering::SeqCst);
            if queue.try_send(Copy::from(record)).is_err() {
                redis.pending.fetch_sub(1, Ordering::SeqCst);
            }
        }
        let copier = std::thread::Builder::new()
            .name("store-redis".into())
            .spawn(move || copy_loop(&thread_redis, &ledger, &jobs))
            .map_err(|e| StoreError::Backend(format!("cannot start the Redis copier: {e}")))?;
        Ok(RedisStore {
            local,
            redis,
            queue: Some(queue),
            copier: Some(copier),
        })
    }

    fn lookup(&self, local: Option<OutcomeRecord>, key: &str) -> Option<OutcomeRecord> {
        if local.is_some() {
            return local;
        }
        let found = self.redis.lookup(key);
        if found.is_some() {
            Counters::add(&self.redis.counters.redis_hits, 1);
        }
        found
    }
}

impl OutcomeStore for RedisStore {
    fn put(&self, record: OutcomeRecord) -> Result<(), StoreError> {
        let json = serde_json::to_string(&record)
            .map_err(|e| StoreError::Backend(format!("cannot encode the record: {e}")))?;
        let copy = Copy {
            shared_id: record.shared_id.clone(),
            call_id: record.call_id.clone(),
            json,
            ended_ms: record.ended_ms,
        };
        self.local.put_json(&record, &copy.json, false)?;
        if let Some(queue) = &self.queue {
            self.redis.pending.fetch_add(1, Ordering::SeqCst);
            if let Err(e) = queue.try_send(copy) {
                self.redis.pending.fetch_sub(1, Ordering::SeqCst);
                Counters::add(&self.redis.counters.redis_dropped, 1);
                let shared_id = match &e {
                    TrySendError::Full(c) | TrySendError::Disconnected(c) => &c.shared_id,
                };
                tracing::warn!(%shared_id, "Redis copy queue full; the outcome is local only");
            }
        }
        Ok(())
    }

    fn lookups_may_block(&self) -> bool {
        true // A miss in the local file asks Redis.
    }

    fn by_shared_id(&self, shared_id: &str) -> Option<OutcomeRecord> {
        let local = self.local.by_shared_id(shared_id);
        self.lookup(local, &self.redis.shared_key(shared_id))
    }

    fn by_call_id(&self, call_id: &str) -> Option<OutcomeRecord> {
        let local = self.local.by_call_id(call_id);
        if local.is_some() {
            return local;
        }
        let key = self.redis.call_key(call_id);
        let shared_id = self
            .redis
            .with_conn(|conn| ::redis::cmd("GET").arg(&key).query::<Option<String>>(conn))??;
        self.lookup(None, &self.redis.shared_key(&shared_id))
    }

    /// The local file is checkpointed; copies still queued get up to two
    /// seconds to reach Redis.
    fn flush(&self) -> Result<(), StoreError> {
        let start = Instant::now();
        while self.redis.pending.load(Ordering::SeqCst) > 0 && start.elapsed() < FLUSH_WAIT {
            std::thread::sleep(Duration::from_millis(10));
        }
        let left = self.redis.pending.load(Ordering::SeqCst);
        if left > 0 {
            tracing::warn!(
                left,
                "outcomes not copied to Redis before shutdown; kept locally"
            );
        }
        self.local.flush()
    }

    fn stats(&self) -> StoreStats {
        let local = self.local.stats();
        let redis = self.redis.counters.snapshot();
        // Every lookup asked the local file first; those Redis answered
        // were local misses but are hits for the caller.
        StoreStats {
            lookup_hits: local.lookup_hits + redis.redis_hits,
            lookup_misses: local.lookup_misses.saturating_sub(redis.redis_hits),
            redis_writes: redis.redis_writes,
            redis_errors: redis.redis_errors,
            redis_hits: redis.redis_hits,
            redis_dropped: redis.redis_dropped,
            ..local
        }
    }
}

impl Drop for RedisStore {
    fn drop(&mut self) {
        drop(self.queue.take());
        if let Some(thread) = self.copier.take() {
            let _ = thread.join();
        }
    }
}

impl Redis {
    fn shared_key(&self, shared_id: &str) -> String {
        format!("{}shared:{shared_id}", self.prefix)
    }

    fn call_key(&self, call_id: &str) -> String {
        format!("{}call:{call_id}", self.prefix)
    }

    fn connect(&self) -> ::redis::RedisResult<::redis::Connection> {
        let conn = self.client.get_connection_with_timeout(self.timeout)?;
        conn.set_read_timeout(Some(self.timeout))?;
        conn.set_write_timeout(Some(self.timeout))?;
        Ok(conn)
    }

    fn give_back(&self, conn: ::redis::Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
    }

    fn failed(&self, what: &str, e: &::redis::RedisError) {
        Counters::add(&self.counters.redis_errors, 1);
        *self.paused_until.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(Instant::now() + PAUSE_AFTER_FAILURE);
        tracing::warn!(error = %e, "Redis {what} failed");
    }

    /// Runs `f` on an idle (or new) connection; `None` when Redis is paused
    /// or failed. A connection that failed is dropped, so the next call
    /// reconnects.
    fn with_conn<T>(
        &self,
        f: impl FnOnce(&mut ::redis::Connection) -> ::redis::RedisResult<T>,
    ) -> Option<T> {
        let paused = *self.paused_until.lock().unwrap_or_else(|p| p.into_inner());
        if paused.is_some_and(|until| Instant::now() < until) {
            return None;
        }
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut conn = match idle.map(Ok).unwrap_or_else(|| self.connect()) {
            Ok(conn) => conn,
            Err(e) => {
                self.failed("connect", &e);
                return None;
            }
        };
        match f(&mut conn) {
            Ok(value) => {
                self.give_back(conn);
                Some(value)
            }
            Err(e) => {
                self.failed("lookup", &e);
                None
            }
        }
    }

    /// The live record under `key`, counted as a lookup.
    fn lookup(&self, key: &str) -> Option<OutcomeRecord> {
        let json = self
            .with_conn(|conn| ::redis::cmd("GET").arg(key).query::<Option<String>>(conn))
            .flatten();
        let record = json.and_then(|json| match serde_json::from_str::<OutcomeRecord>(&json) {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::warn!(key, error = %e, "unreadable outcome record in Redis");
                None
            }
        });
        let cutoff = now_ms().saturating_sub(self.retention_ms);
        record.filter(|r| r.ended_ms >= cutoff)
    }

    /// Writes one copy on `conn` (opened first if there is none; dropped
    /// after an error) and counts it.
    fn copy(
        &self,
        conn: &mut Option<::redis::Connection>,
        copy: &Copy,
    ) -> ::redis::RedisResult<()> {
        let mut c = match conn.take() {
            Some(c) => c,
            None => self.connect()?,
        };
        self.write(&mut c, copy)?;
        *conn = Some(c);
        Counters::add(&self.counters.redis_writes, 1);
        Ok(())
    }

    /// Writes one copy; `Ok(false)` when it had expired already.
    fn write(&self, conn: &mut ::redis::Connection, copy: &Copy) -> ::redis::RedisResult<bool> {
        let expires_ms = copy.ended_ms.saturating_add(self.retention_ms);
        let ttl_secs = expires_ms.saturating_sub(now_ms()) / 1000;
        if ttl_secs == 0 {
            return Ok(false);
        }
        ::redis::pipe()
            .atomic()
            .cmd("SET")
            .arg(self.shared_key(&copy.shared_id))
            .arg(&copy.json)
            .arg("EX")
            .arg(ttl_secs)
            .ignore()
            .cmd("SET")
            .arg(self.call_key(&copy.call_id))
            .arg(&copy.shared_id)
            .arg("EX")
            .arg(ttl_secs)
            .ignore()
            .query::<()>(conn)?;
        Ok(true)
    }
}

/// The copier thread: writes queued records to Redis in order, retrying
/// one until Redis takes it (the queue fills meanwhile), and marks them
/// copied in the local file; when idle, copies what the file still lacks
/// in Redis. Runs until the store is dropped.
fn copy_loop(redis: &Redis, ledger: &CopyLedger, jobs: &Receiver<Copy>) {
    let mut conn: Option<::redis::Connection> = None;
    let mut done: Vec<(String, String)> = Vec::new();
    let mut last_rescan = Instant::now();
    loop {
        let copy = match jobs.recv_timeout(Duration::from_millis(200)) {
            Ok(copy) => copy,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                mark(ledger, &mut done);
                if last_rescan.elapsed() >= RESCAN_EVERY {
                    last_rescan = Instant::now();
                    rescan(redis, ledger, &mut conn);
                }
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        let mut wait = Duration::from_millis(50);
        loop {
            match redis.copy(&mut conn, &copy) {
                Ok(()) => {
                    done.push((copy.shared_id.clone(), copy.json.clone()));
                    if done.len() >= MARK_BATCH {
                        mark(ledger, &mut done);
                    }
                    break;
                }
                Err(e) => {
                    Counters::add(&redis.counters.redis_errors, 1);
                    tracing::warn!(shared_id = %copy.shared_id, error = %e,
                        retry_in_ms = wait.as_millis() as u64, "Redis copy failed");
                    // Stop retrying when the store is closing and nobody
                    // waits any longer: the record is in the local file,
                    // marked as not copied, for the next start.
                    if matches!(jobs.try_recv(), Err(mpsc::TryRecvError::Disconnected)) {
                        Counters::add(&redis.counters.redis_dropped, 1);
                        break;
                    }
                    mark(ledger, &mut done);
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(MAX_RETRY_WAIT);
                }
            }
        }
        redis.pending.fetch_sub(1, Ordering::SeqCst);
    }
    mark(ledger, &mut done);
}

/// Records the copies in `done` as copied in the local file.
fn mark(ledger: &CopyLedger, done: &mut Vec<(String, String)>) {
    if done.is_empty() {
        return;
    }
    if let Err(e) = ledger.mark_copied(done) {
        // They are copied again at the next rescan or start: harmless.
        tracing::warn!(error = %e, "cannot mark outcomes as copied to Redis");
    }
    done.clear();
}

/// Copies records the local file has and Redis may not (dropped from a
/// full queue); stops at the first failure until the next rescan.
fn rescan(redis: &Redis, ledger: &CopyLedger, conn: &mut Option<::redis::Connection>) {
    let missing = match ledger.not_copied(RESCAN_BATCH) {
        Ok(missing) => missing,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list outcomes not yet copied to Redis");
            return;
        }
    };
    if missing.is_empty() {
        return;
    }
    let mut done = Vec::new();
    let mut copied = 0usize;
    for record in missing.into_iter().map(Copy::from) {
        match redis.copy(conn, &record) {
            Ok(()) => {
                copied += 1;
                done.push((record.shared_id, record.json));
                if done.len() >= MARK_BATCH {
                    mark(ledger, &mut done);
                }
            }
            Err(e) => {
                Counters::add(&redis.counters.redis_errors, 1);
                tracing::debug!(error = %e, "Redis still unreachable; outcomes stay local for now");
                break;
            }
        }
    }
    mark(ledger, &mut done);
    if copied > 0 {
        tracing::info!(records = copied, "outcomes kept locally are now in Redis");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{StoreBackend, sample};

    /// A port nothing listens on: Redis is "down".
    fn dead_redis() -> String {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        format!("redis://127.0.0.1:{port}/")
    }

    fn settings(dir: &std::path::Path, url: String) -> StoreSettings {
        StoreSettings {
            backend: StoreBackend::Redis,
            path: dir.join("local.db"),
            redis_url: url,
            redis_timeout_ms: 50,
            ..StoreSettings::default()
        }
    }

    #[test]
    fn redis_down_still_stores_locally_and_put_stays_fast() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedisStore::open(&settings(dir.path(), dead_redis())).unwrap();
        let rec = sample("sess-1", "tl-1", Duration::ZERO);
        let start = Instant::now();
        store.put(rec.clone()).unwrap();
        assert!(
            start.elapsed() < Duration::from_millis(40),
            "{:?}",
            start.elapsed()
        );
        assert_eq!(store.by_shared_id("sess-1"), Some(rec.clone()));
        assert_eq!(store.by_call_id("tl-1"), Some(rec));
        assert_eq!(store.by_shared_id("elsewhere"), None);
        assert!(store.stats().redis_errors > 0);
        drop(store);
        // And the record is still there for the next start.
        let store = RedisStore::open(&settings(dir.path(), dead_redis())).unwrap();
        assert!(store.by_shared_id("sess-1").is_some());
    }

    #[test]
    fn a_bad_url_is_a_settings_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = RedisStore::open(&settings(dir.path(), "http://nope".into())).unwrap_err();
        assert!(err.to_string().contains("redis_url"), "{err}");
    }

    #[test]
    fn keys_carry_the_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedisStore::open(&StoreSettings {
            key_prefix: "tl-test:".into(),
            ..settings(dir.path(), dead_redis())
        })
        .unwrap();
        assert_eq!(store.redis.shared_key("s1"), "tl-test:shared:s1");
        assert_eq!(store.redis.call_key("c1"), "tl-test:call:c1");
    }
}
