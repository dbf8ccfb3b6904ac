//! TCP and TLS connections: the table that finds them, and per connection a
//! reader task (framer, keep-alive pongs, idle timeout) and a writer task
//! fed by a bounded queue.
//!
//! The reader owns the connection's life: whatever ends it (end of stream,
//! a framing error that loses message boundaries, idle timeout, a failed
//! write, shutdown) it removes the table entry. That drops the last queue
//! sender, so the writer flushes what was queued (a 400 owed to the peer,
//! say) and then closes the stream. After an end of stream or a framing
//! error the entry stays for [`CLOSE_LINGER`] first, if messages were
//! delivered: their answers are still to come.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::{Notify, mpsc};
use tokio::time::{Instant, sleep_until, timeout};
use tracing::debug;
use trunkline_sip::message::StreamFramer;

use super::stats::bump;
use super::transports::{Task, lock};
use super::{ConnId, TransportError, TransportKind};

/// Messages that may wait for one connection's writer. Full means the peer
/// stopped reading; further sends fail rather than pile up.
const WRITE_QUEUE: usize = 256;
/// A write that does not finish in this time closes the connection.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes read from the socket at once.
const READ_CHUNK: usize = 16 * 1024;
/// RFC 5626 §3.5.1: one CRLF answers each CRLFCRLF ping.
const PONG: &[u8] = b"\r\n";
/// How long a connection stays writable after its peer stopped sending or
/// sent bytes that lost the message boundaries, when it delivered messages
/// before that: their answers come from the signalling task a moment
/// later, and without the connection they would be lost (RFC 4475 `dblreq`
/// on a stream: the REGISTER before the junk is still owed its 405).
/// Nothing more is read meanwhile.
const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// Open connections, by id and by peer address.
#[derive(Default)]
pub(super) struct ConnTable {
    next_id: AtomicU64,
    table: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    by_id: HashMap<ConnId, Entry>,
    /// The connection a send to this peer reuses: the newest one.
    by_peer: HashMap<(TransportKind, SocketAddr), ConnId>,
}

struct Entry {
    kind: TransportKind,
    peer: SocketAddr,
    queue: mpsc::Sender<Bytes>,
}

impl ConnTable {
    fn insert(&self, kind: TransportKind, peer: SocketAddr, queue: mpsc::Sender<Bytes>) -> ConnId {
        let id = ConnId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let mut table = lock(&self.table);
        table.by_id.insert(id, Entry { kind, peer, queue });
        table.by_peer.insert((kind, peer), id);
        id
    }

    fn remove(&self, id: ConnId) {
        let mut table = lock(&self.table);
        if let Some(entry) = table.by_id.remove(&id) {
            let key = (entry.kind, entry.peer);
            if table.by_peer.get(&key) == Some(&id) {
                table.by_peer.remove(&key);
            }
        }
    }

    /// The newest open connection to `peer`.
    pub(super) fn find(&self, kind: TransportKind, peer: SocketAddr) -> Option<ConnId> {
        lock(&self.table).by_peer.get(&(kind, peer)).copied()
    }

    /// How many connections of this kind are open.
    pub(super) fn open(&self, kind: TransportKind) -> u64 {
        let table = lock(&self.table);
        table.by_id.values().filter(|e| e.kind == kind).count() as u64
    }

    /// Queues bytes on a connection. `Ok(false)` when it is gone or closing;
    /// an error when its queue is full.
    pub(super) fn queue(&self, id: ConnId, bytes: &Bytes) -> Result<bool, TransportError> {
        let Some((peer, queue)) = lock(&self.table)
            .by_id
            .get(&id)
            .map(|e| (e.peer, e.queue.clone()))
        else {
            return Ok(false);
        };
        match queue.try_send(bytes.clone()) {
            Ok(()) => Ok(true),
            Err(mpsc::error::TrySendError::Full(_)) => Err(TransportError::Backlog(peer)),
            Err(mpsc::error::TrySendError::Closed(_)) => Ok(false),
        }
    }
}

/// When the connection last moved bytes either way.
struct Activity {
    start: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn touch(&self) {
        let ms = self.start.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }
}

/// What the reader knows about its connection.
struct Conn {
    id: ConnId,
    kind: TransportKind,
    peer: SocketAddr,
    local: SocketAddr,
    queue: mpsc::Sender<Bytes>,
}

/// Registers a connected stream and starts its reader and writer. `None`
/// (the stream is dropped) once shutdown has begun.
pub(super) fn spawn<S>(
    task: &Task,
    stream: S,
    kind: TransportKind,
    peer: SocketAddr,
    local: SocketAddr,
) -> Option<ConnId>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    // A clone made before shutdown may outlive it; re-check.
    let task = task.transports.task()?;
    let inner = &task.transports.inner;
    let (queue, queued) = mpsc::channel(WRITE_QUEUE);
    let id = inner.conns.insert(kind, peer, queue.clone());
    bump(&inner.stats.kind(kind).connections_total);
    debug!(%peer, %local, "{kind} {id} open");
    let (reader, writer) = tokio::io::split(stream);
    let activity = Arc::new(Activity {
        start: Instant::now(),
        last_ms: AtomicU64::new(0),
    });
    let broken = Arc::new(Notify::new());
    tokio::spawn(write_loop(
        task.clone(),
        writer,
        queued,
        activity.clone(),
        broken.clone(),
    ));
    let conn = Conn {
        id,
        kind,
        peer,
        local,
        queue,
    };
    tokio::spawn(read_loop(task, conn, reader, activity, broken));
    Some(id)
}

async fn read_loop<S: AsyncRead>(
    mut task: Task,
    conn: Conn,
    mut reader: ReadHalf<S>,
    activity: Arc<Activity>,
    broken: Arc<Notify>,
) {
    let idle = task.transports.inner.idle;
    let mut framer = StreamFramer::new(task.transports.inner.limits);
    let mut buf = vec![0; READ_CHUNK];
    let mut shutdown = task.shutdown.clone();
    let mut delivered = false;
    let why = loop {
        let read = tokio::select! {
            read = reader.read(&mut buf) => read,
            _ = sleep_until(activity.last() + idle) => {
                // A write may have moved the deadline while we slept.
                if activity.last().elapsed() >= idle {
                    break "idle";
                }
                continue;
            }
            _ = broken.notified() => break "write failed",
            _ = shutdown.wait_for(|stop| *stop) => break "shutdown",
        };
        let len = match read {
            Ok(0) => break CLOSED_BY_PEER,
            Ok(len) => len,
            Err(error) => {
                debug!(peer = %conn.peer, %error, "{} {} read error", conn.kind, conn.id);
                break "read error";
            }
        };
        activity.touch();
        framer.push(&buf[..len]);
        if let Some(why) = drain_framer(&mut task, &conn, &mut framer, &mut delivered).await {
            break why;
        }
    };
    if delivered && matches!(why, CLOSED_BY_PEER | BOUNDARIES_LOST) {
        tokio::select! {
            _ = tokio::time::sleep(CLOSE_LINGER) => {}
            _ = broken.notified() => {}
            _ = shutdown.wait_for(|stop| *stop) => {}
        }
    }
    task.transports.inner.conns.remove(conn.id);
    debug!(peer = %conn.peer, "{} {} closed: {why}", conn.kind, conn.id);
}

/// The peer ended its stream; answers may still be owed ([`CLOSE_LINGER`]).
const CLOSED_BY_PEER: &str = "closed by peer";
/// Bytes that start no message arrived; answers to the messages before
/// them may still be owed ([`CLOSE_LINGER`]).
const BOUNDARIES_LOST: &str = "message boundaries lost";

/// Delivers every complete message (setting `delivered`), answers pings and
/// malformed requests. Returns why the connection must close, if it must.
async fn drain_framer(
    task: &mut Task,
    conn: &Conn,
    framer: &mut StreamFramer,
    delivered: &mut bool,
) -> Option<&'static str> {
    loop {
        let popped = framer.pop();
        // Pings are counted while the framer looks for the next message, so
        // pong after each pop, in order with any reply queued below.
        let pongs = framer.take_pongs();
        for _ in 0..pongs {
            // A full queue drops a pong; the peer retries the ping.
            let _ = conn.queue.try_send(Bytes::from_static(PONG));
            bump(&task.transports.inner.stats.kind(conn.kind).pongs);
        }
        match popped {
            Ok(None) => return None,
            Ok(Some(msg)) => {
                let (source, kind) = (conn.peer, conn.kind);
                if !task
                    .deliver(msg, source, kind, Some(conn.id), conn.local)
                    .await
                {
                    return Some("shutdown");
                }
                *delivered = true;
            }
            Err(malformed) => {
                let close = malformed.close_connection || framer.is_closed();
                if let Some(reply) = task.malformed(malformed, conn.peer, conn.kind) {
                    let _ = conn.queue.try_send(reply);
                }
                if close {
                    return Some(BOUNDARIES_LOST);
                }
            }
        }
    }
}

async fn write_loop<S: AsyncWrite>(
    _task: Task,
    mut writer: WriteHalf<S>,
    mut queued: mpsc::Receiver<Bytes>,
    activity: Arc<Activity>,
    broken: Arc<Notify>,
) {
    while let Some(bytes) = queued.recv().await {
        let write = async {
            writer.write_all(&bytes).await?;
            // Flush once the queue is empty: a burst becomes one TLS record
            // flush instead of one per message.
            if queued.is_empty() {
                writer.flush().await?;
            }
            std::io::Result::Ok(())
        };
        match timeout(WRITE_TIMEOUT, write).await {
            Ok(Ok(())) => activity.touch(),
            Ok(Err(error)) => {
                debug!(%error, "write failed");
                broken.notify_one();
                return;
            }
            Err(_) => {
                debug!("write timed out: peer not reading");
                broken.notify_one();
                return;
            }
        }
    }
    // Sends TLS close_notify, then FIN.
    let _ = timeout(WRITE_TIMEOUT, writer.shutdown()).await;
}
