//! The HTTP listener's own accept loop: a cap on open connections and
//! timeouts for each phase of a connection, so slow or idle clients cannot
//! hold sockets and tasks open (slowloris).
//!
//! A connection is always in one phase, and each phase has a deadline:
//!
//! | phase | from | deadline |
//! |---|---|---|
//! | head | the accept, or the first byte after an idle pause | `header_timeout_secs` |
//! | request | the end of the head | `body_timeout_secs` (body read, answer ready) |
//! | idle | the answer | `idle_timeout_secs` |
//!
//! Past its deadline the connection is dropped (closed) without an answer.
//! hyper's own `header_read_timeout` is not used: it starts when hyper
//! waits for a head, so it also bounds the keep-alive pause and a long idle
//! timeout could not go with a short header one.
//!
//! On shutdown the listener closes; idle connections and heads still
//! arriving are dropped at once, and a request being served gets
//! [`SHUTDOWN_GRACE`] to be answered.
//!
//! Beyond `max_connections`, a new connection gets a canned `503` (written
//! only if the socket takes it at once) and is closed, before any of its
//! bytes are read.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore, watch};
use tokio::time::Instant;

use crate::config::HttpSettings;

/// After the shutdown signal, connections still busy get this long to
/// finish their request before they are dropped.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Pause after a failed `accept` (out of file descriptors, say), so the
/// loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The answer to a connection over the cap.
const REFUSED: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\n\
content-type: application/json\r\ncontent-length: 73\r\n\r\n\
{\"error\":\"unavailable\",\"message\":\"too many connections; try again later\"}";

/// The limits, from `[http]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) header: Duration,
    pub(crate) body: Duration,
    pub(crate) idle: Duration,
    pub(crate) max_connections: usize,
}

impl Limits {
    pub(crate) fn new(http: &HttpSettings) -> Limits {
        Limits {
            header: Duration::from_secs(http.header_timeout_secs),
            body: Duration::from_secs(http.body_timeout_secs),
            idle: Duration::from_secs(http.idle_timeout_secs),
            max_connections: http.max_connections.max(1),
        }
    }

    fn of(&self, phase: Phase) -> Duration {
        match phase {
            Phase::Head => self.header,
            Phase::Request => self.body,
            Phase::Idle => self.idle,
        }
    }
}

/// What the listener counts, for `/metrics`.
#[derive(Debug, Default)]
pub struct ConnCounters {
    open: AtomicI64,
    refused: AtomicU64,
    /// Connections closed at a deadline, by [`Phase`] (head, request, idle).
    timed_out: [AtomicU64; 3],
}

impl ConnCounters {
    /// Connections open now.
    pub fn open(&self) -> i64 {
        self.open.load(Ordering::Relaxed)
    }

    /// Connections refused over the cap.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Connections closed at a deadline, as `(phase, count)`.
    pub fn timed_out(&self) -> [(&'static str, u64); 3] {
        [Phase::Head, Phase::Request, Phase::Idle]
            .map(|p| (p.name(), self.timed_out[p as usize].load(Ordering::Relaxed)))
    }
}

/// Where a connection is (see the module table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Head = 0,
    Request = 1,
    Idle = 2,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Head => "header",
            Phase::Request => "body",
            Phase::Idle => "idle",
        }
    }
}

/// One connection's phase, shared by its socket wrapper, its service and
/// its watchdog (all polled on the connection's task).
struct Tracker {
    state: Mutex<(Phase, Instant)>,
    limits: Limits,
    /// Woken when the deadline moves earlier (idle → head).
    earlier: Notify,
}

impl Tracker {
    fn new(limits: Limits) -> Tracker {
        Tracker {
            state: Mutex::new((Phase::Head, Instant::now())),
            limits,
            earlier: Notify::new(),
        }
    }

    fn current(&self) -> (Phase, Instant) {
        *self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn deadline(&self) -> (Phase, Instant) {
        let (phase, since) = self.current();
        (phase, since + self.limits.of(phase))
    }

    /// Enters `phase` now; `only_from` restricts the change to one phase.
    fn enter(&self, phase: Phase, only_from: Option<Phase>) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if only_from.is_some_and(|from| s.0 != from) {
            return;
        }
        let old = s.1 + self.limits.of(s.0);
        let now = Instant::now();
        *s = (phase, now);
        drop(s);
        if now + self.limits.of(phase) < old {
            self.earlier.notify_one();
        }
    }
}

/// The socket, noting when an idle connection starts a new request.
struct Tracked {
    stream: TcpStream,
    tracker: Arc<Tracker>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.tracker.enter(Phase::Head, Some(Phase::Idle));
        }
        polled
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Serves `router` on `listener` until `shutdown` turns true, then lets
/// the open connections finish (idle ones close at once) and returns.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    counters: Arc<ConnCounters>,
    mut shutdown: watch::Receiver<bool>,
) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.wait_for(|s| *s) => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "HTTP accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            counters.refused.fetch_add(1, Ordering::Relaxed);
            // Never waits: a full send buffer just means no answer.
            let _ = stream.try_write(REFUSED);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (router, counters, shutdown) = (router.clone(), counters.clone(), shutdown.clone());
        tokio::spawn(async move {
            counters.open.fetch_add(1, Ordering::Relaxed);
            connection(stream, peer, router, limits, &counters, shutdown).await;
            counters.open.fetch_sub(1, Ordering::Relaxed);
            drop(slot);
        });
    }
    drop(listener);
    // Every connection holds a slot until it ends.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
    Ok(())
}

/// Serves one connection until it ends, a deadline passes, or the
/// shutdown grace is over.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: Limits,
    counters: &ConnCounters,
    mut shutdown: watch::Receiver<bool>,
) {
    let tracker = Arc::new(Tracker::new(limits));
    let io = TokioIo::new(Tracked {
        stream,
        tracker: tracker.clone(),
    });
    let service = {
        let tracker = tracker.clone();
        hyper::service::service_fn(move |req: Request<Incoming>| {
            let tracker = tracker.clone();
            let router = TowerToHyperService::new(router.clone());
            async move {
                tracker.enter(Phase::Request, None);
                let answer: Result<_, Infallible> =
                    hyper::service::Service::call(&router, req).await;
                tracker.enter(Phase::Idle, None);
                answer
            }
        })
    };
    let conn = http1::Builder::new()
        .header_read_timeout(None)
        .serve_connection(io, service);
    tokio::pin!(conn);
    let mut grace_until: Option<Instant> = None;
    loop {
        let (phase, mut deadline) = tracker.deadline();
        if let Some(g) = grace_until {
            deadline = deadline.min(g);
        }
        tokio::select! {
            done = conn.as_mut() => {
                if let Err(e) = done {
                    tracing::debug!(%peer, error = %e, "HTTP connection failed");
                }
                return;
            }
            _ = tokio::time::sleep_until(deadline) => {
                if grace_until.is_some_and(|g| Instant::now() >= g) {
                    tracing::debug!(%peer, "HTTP connection dropped at shutdown");
                    return;
                }
                // The phase may have moved on (and its deadline later).
                if tracker.deadline() == (phase, deadline) {
                    counters.timed_out[phase as usize].fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%peer, phase = phase.name(), "HTTP connection timed out: closed");
                    return;
                }
            }
            _ = tracker.earlier.notified() => {}
            _ = shutdown.wait_for(|s| *s), if grace_until.is_none() => {
                // A head still arriving is dropped like a connection not
                // yet accepted (hyper would wait for it); idle connections
                // close now; a request in progress ends with its answer
                // (keep-alive is off from here).
                if tracker.current().0 == Phase::Head {
                    return;
                }
                conn.as_mut().graceful_shutdown();
                grace_until = Some(Instant::now() + SHUTDOWN_GRACE);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            header: Duration::from_secs(10),
            body: Duration::from_secs(30),
            idle: Duration::from_secs(60),
            max_connections: 4,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn each_phase_has_its_deadline_and_only_idle_turns_into_head() {
        let t = Tracker::new(limits());
        let start = Instant::now();
        assert_eq!(t.deadline(), (Phase::Head, start + Duration::from_secs(10)));

        tokio::time::advance(Duration::from_secs(2)).await;
        t.enter(Phase::Request, None);
        assert_eq!(t.deadline().0, Phase::Request);
        assert_eq!(t.deadline().1, start + Duration::from_secs(32));
        // Body bytes are read during a request: the phase stays.
        t.enter(Phase::Head, Some(Phase::Idle));
        assert_eq!(t.deadline().0, Phase::Request);

        tokio::time::advance(Duration::from_secs(1)).await;
        t.enter(Phase::Idle, None);
        assert_eq!(t.deadline(), (Phase::Idle, start + Duration::from_secs(63)));

        // The next request's first byte: the (earlier) header deadline, and
        // the watchdog is told.
        tokio::time::advance(Duration::from_secs(5)).await;
        t.enter(Phase::Head, Some(Phase::Idle));
        assert_eq!(t.deadline(), (Phase::Head, start + Duration::from_secs(18)));
        tokio::time::timeout(Duration::from_millis(1), t.earlier.notified())
            .await
            .expect("an earlier deadline wakes the watchdog");
    }

    #[test]
    fn the_refusal_is_a_complete_503() {
        let text = std::str::from_utf8(REFUSED).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 503 "));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["error"], "unavailable");
    }

    #[test]
    fn counters_name_the_phases() {
        let c = ConnCounters::default();
        c.timed_out[Phase::Request as usize].fetch_add(2, Ordering::Relaxed);
        assert_eq!(c.timed_out(), [("header", 0), ("body", 2), ("idle", 0)]);
    }
}
