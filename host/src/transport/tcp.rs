//! Accepting TCP/TLS connections, and opening them towards agents.
//!
//! Outbound connections are opened one at a time per peer: when a burst of
//! INVITEs for one agent starts at once, the first opens the connection and
//! the rest reuse it, instead of each opening its own. If that connect
//! fails, the ones that waited for it fail at once with the same error
//! rather than each waiting out its own connect timeout.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::ServerName;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::time::{Instant, sleep, timeout};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tracing::{debug, warn};

use super::transports::{Task, lock};
use super::{ConnId, Target, TransportError, TransportKind, Transports, conn};

/// How long a TCP connect may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a TLS handshake may take, either direction.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts connections until shutdown; with an acceptor, each is a TLS
/// handshake first (in its own task, so a slow client does not hold up the
/// others).
pub(super) async fn accept_loop(task: Task, listener: TcpListener, tls: Option<TlsAcceptor>) {
    let kind = match tls {
        Some(_) => TransportKind::Tls,
        None => TransportKind::Tcp,
    };
    let mut shutdown = task.shutdown.clone();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors, mostly: pause instead of spinning
                // until connections close.
                warn!(%error, "cannot accept {kind} connection");
                sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // SIP messages are small and latency matters more than packing.
        let _ = stream.set_nodelay(true);
        let Ok(local) = stream.local_addr() else {
            continue;
        };
        match &tls {
            None => {
                conn::spawn(&task, stream, kind, peer, local);
            }
            Some(acceptor) => {
                let (task, acceptor) = (task.clone(), acceptor.clone());
                tokio::spawn(async move {
                    match timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            conn::spawn(&task, stream, kind, peer, local);
                        }
                        Ok(Err(error)) => debug!(%peer, %error, "TLS handshake failed"),
                        Err(_) => debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        }
    }
    debug!("{kind} listener stopped");
}

/// The last failed connect to a peer, so that callers that queued behind it
/// fail fast.
#[derive(Default)]
pub(super) struct ConnectGate {
    failed: tokio::sync::Mutex<Option<(Instant, io::ErrorKind, String)>>,
}

/// Opens a connection to `target.addr` (or finds one another caller just
/// opened).
pub(super) async fn connect(
    transports: &Transports,
    kind: TransportKind,
    target: &Target,
) -> Result<ConnId, TransportError> {
    let inner = &transports.inner;
    let key = (kind, target.addr);
    let gate = lock(&inner.gates).entry(key).or_default().clone();
    let queued_at = Instant::now();
    let mut failed = gate.failed.lock().await;
    if let Some(id) = inner.conns.find(kind, target.addr) {
        return Ok(id);
    }
    if let Some((at, error_kind, message)) = &*failed
        && *at >= queued_at
    {
        return Err(connect_error(
            kind,
            target.addr,
            *error_kind,
            message.clone(),
        ));
    }
    let result = open(transports, kind, target).await;
    if let Err(TransportError::Connect { source, .. }) = &result {
        *failed = Some((Instant::now(), source.kind(), source.to_string()));
    }
    // Later callers find the connection in the table (or try afresh).
    let mut gates = lock(&inner.gates);
    if gates.get(&key).is_some_and(|g| Arc::ptr_eq(g, &gate)) {
        gates.remove(&key);
    }
    result
}

async fn open(
    transports: &Transports,
    kind: TransportKind,
    target: &Target,
) -> Result<ConnId, TransportError> {
    let addr = target.addr;
    let connector = match kind {
        TransportKind::Tls => {
            let config = transports.inner.tls_client.clone();
            let config = config.ok_or(TransportError::NoTlsClient(addr))?;
            let name = match &target.tls_name {
                Some(name) => ServerName::try_from(name.clone())
                    .map_err(|_| TransportError::ServerName(name.clone()))?,
                None => ServerName::IpAddress(addr.ip().into()),
            };
            Some((TlsConnector::from(config), name))
        }
        _ => None,
    };
    let source = transports.outbound_source(kind);
    let stream = match timeout(CONNECT_TIMEOUT, connect_from(source, addr)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(source)) => return Err(TransportError::Connect { kind, addr, source }),
        Err(_) => {
            return Err(connect_error(
                kind,
                addr,
                io::ErrorKind::TimedOut,
                "connect timed out".into(),
            ));
        }
    };
    let _ = stream.set_nodelay(true);
    let local = stream
        .local_addr()
        .map_err(|source| TransportError::Connect { kind, addr, source })?;
    let task = transports.task().ok_or(TransportError::Shutdown)?;
    let id = match connector {
        None => conn::spawn(&task, stream, kind, addr, local),
        Some((connector, name)) => {
            let stream = match timeout(HANDSHAKE_TIMEOUT, connector.connect(name, stream)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(source)) => return Err(TransportError::Connect { kind, addr, source }),
                Err(_) => {
                    let message = "TLS handshake timed out".into();
                    return Err(connect_error(kind, addr, io::ErrorKind::TimedOut, message));
                }
            };
            conn::spawn(&task, stream, kind, addr, local)
        }
    };
    id.ok_or(TransportError::Shutdown)
}

/// Connects to `addr` from `source` (port 0: an ephemeral port), or from
/// wherever the kernel's routing picks when `source` is `None` or of the
/// other address family, or a loopback address while `addr` is not (the
/// built-in default listens on 127.0.0.1; such a socket could not reach a
/// remote agent at all).
///
/// The port is ephemeral rather than the listener's own: requests to us
/// still reach the listener (our Via and Contact name it), and binding the
/// listening port would need SO_REUSEADDR/SO_REUSEPORT on every socket,
/// letting a second gateway process on the same port share our listener,
/// and would fail with EADDRINUSE on a second connection to the same peer
/// address.
async fn connect_from(source: Option<IpAddr>, addr: SocketAddr) -> io::Result<TcpStream> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    let fits = |ip: &IpAddr| {
        ip.is_ipv4() == addr.is_ipv4() && (!ip.is_loopback() || addr.ip().is_loopback())
    };
    if let Some(ip) = source.filter(fits) {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    socket.connect(addr).await
}

fn connect_error(
    kind: TransportKind,
    addr: SocketAddr,
    error_kind: io::ErrorKind,
    message: String,
) -> TransportError {
    TransportError::Connect {
        kind,
        addr,
        source: io::Error::new(error_kind, message),
    }
}
