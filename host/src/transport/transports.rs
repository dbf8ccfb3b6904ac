//! [`Transports`]: the bound sockets, the connection table and the tasks,
//! behind one cheap handle.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ClientConfig;
use tracing::{debug, info, warn};
use trunkline_sip::message::{FrameLimits, Malformed, SipMessage, stamp_received};

use super::conn::ConnTable;
use super::stats::{Stats, StatsSnapshot, bump};
use super::tcp::{self, ConnectGate};
use super::{ConnId, Inbound, ListenConfig, Target, TransportError, TransportKind, tls, udp};

/// How many received messages may wait for the gateway. When it is full the
/// receive tasks wait: TCP peers are slowed by flow control, UDP bursts
/// queue in SO_RCVBUF.
const INBOUND_QUEUE: usize = 4096;

/// The SIP transports: bound sockets and their tasks. Clones share them.
///
/// The tasks run until [`Transports::shutdown`]; dropping every handle does
/// not stop them.
#[derive(Clone)]
pub struct Transports {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    /// The framer limits for every transport.
    pub(super) limits: FrameLimits,
    /// Connections quiet for this long are closed.
    pub(super) idle: Duration,
    /// The UDP socket; taken at shutdown so the port is released.
    udp: Mutex<Option<Arc<UdpSocket>>>,
    /// The bound addresses (with the real port when 0 was configured).
    locals: [Option<SocketAddr>; 3],
    /// Where outbound connections leave from when their listener is a
    /// wildcard or off: the gateway's `advertise` address, set once.
    wildcard_source: OnceLock<IpAddr>,
    /// Open TCP/TLS connections.
    pub(super) conns: ConnTable,
    /// One outbound connect at a time per peer.
    pub(super) gates: Mutex<HashMap<(TransportKind, SocketAddr), Arc<ConnectGate>>>,
    /// Counters.
    pub(super) stats: Stats,
    /// For outbound TLS; `None` refuses TLS targets.
    pub(super) tls_client: Option<Arc<ClientConfig>>,
    /// Set once at shutdown; every task watches it.
    shutdown: watch::Sender<bool>,
    /// Handed to each task; taken at shutdown so the gateway's receiver ends
    /// once the last task has gone.
    inbound: Mutex<Option<mpsc::Sender<Inbound>>>,
    /// Each task holds a clone; shutdown waits until all are dropped.
    alive: Mutex<Option<mpsc::Sender<()>>>,
    all_done: tokio::sync::Mutex<mpsc::Receiver<()>>,
}

/// What a spawned task needs; `None` from [`Transports::task`] after shutdown.
#[derive(Clone)]
pub(super) struct Task {
    pub(super) transports: Transports,
    pub(super) inbound: mpsc::Sender<Inbound>,
    pub(super) shutdown: watch::Receiver<bool>,
    _alive: mpsc::Sender<()>,
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section is a map or Option update that cannot be left
    // half done, so a panic elsewhere does not make the data unusable.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Transports {
    /// Binds the configured sockets and starts the receive tasks. Messages
    /// arrive on the returned receiver, which ends after [`shutdown`].
    /// Outbound TLS checks certificates as `config.tls_client` says.
    ///
    /// [`shutdown`]: Transports::shutdown
    pub async fn bind(
        config: &ListenConfig,
    ) -> Result<(Transports, mpsc::Receiver<Inbound>), TransportError> {
        let client = tls::client_config(&config.tls_client)?;
        Transports::bind_with_tls_client(config, Some(Arc::new(client))).await
    }

    /// [`Transports::bind`], with the rustls client configuration used to
    /// open TLS connections to agents (roots, client certificate).
    pub async fn bind_with_tls_client(
        config: &ListenConfig,
        tls_client: Option<Arc<ClientConfig>>,
    ) -> Result<(Transports, mpsc::Receiver<Inbound>), TransportError> {
        // Read the TLS files before binding anything: a bad path is the
        // likeliest mistake and should not leave sockets half bound.
        let acceptor = match &config.tls {
            Some(listen) => Some((listen.addr, TlsAcceptor::from(tls::server_config(listen)?))),
            None => None,
        };
        let bind_err = |kind, addr| move |source| TransportError::Bind { kind, addr, source };
        let udp = match config.udp {
            Some(addr) => Some(
                udp::bind(addr, config.udp_recv_buffer)
                    .map_err(bind_err(TransportKind::Udp, addr))?,
            ),
            None => None,
        };
        let tcp = match config.tcp {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(bind_err(TransportKind::Tcp, addr))?,
            ),
            None => None,
        };
        let tls = match acceptor {
            Some((addr, acceptor)) => Some((
                TcpListener::bind(addr)
                    .await
                    .map_err(bind_err(TransportKind::Tls, addr))?,
                acceptor,
            )),
            None => None,
        };

        let local = |socket: Option<std::io::Result<SocketAddr>>| socket.and_then(Result::ok);
        let locals = [
            local(udp.as_ref().map(|s| s.local_addr())),
            local(tcp.as_ref().map(|l| l.local_addr())),
            local(tls.as_ref().map(|(l, _)| l.local_addr())),
        ];
        let (inbound_tx, inbound_rx) = mpsc::channel(INBOUND_QUEUE);
        let (alive_tx, all_done) = mpsc::channel(1);
        let udp = udp.map(Arc::new);
        let transports = Transports {
            inner: Arc::new(Inner {
                limits: config.limits(),
                idle: config.idle_timeout(),
                udp: Mutex::new(udp.clone()),
                locals,
                wildcard_source: OnceLock::new(),
                conns: ConnTable::default(),
                gates: Mutex::default(),
                stats: Stats::default(),
                tls_client,
                shutdown: watch::Sender::new(false),
                inbound: Mutex::new(Some(inbound_tx)),
                alive: Mutex::new(Some(alive_tx)),
                all_done: tokio::sync::Mutex::new(all_done),
            }),
        };
        if let Some(task) = transports.task() {
            if let Some(socket) = udp {
                tokio::spawn(udp::receive_loop(task.clone(), socket));
            }
            if let Some(listener) = tcp {
                tokio::spawn(tcp::accept_loop(task.clone(), listener, None));
            }
            if let Some((listener, acceptor)) = tls {
                tokio::spawn(tcp::accept_loop(task, listener, Some(acceptor)));
            }
        }
        for kind in [TransportKind::Udp, TransportKind::Tcp, TransportKind::Tls] {
            if let Some(addr) = transports.local_addr(kind) {
                info!(%addr, "SIP listening on {kind}");
            }
        }
        Ok((transports, inbound_rx))
    }

    /// The address a transport is bound to (with the real port when port 0
    /// was configured), for Via and Contact; `None` when it is off.
    pub fn local_addr(&self, kind: TransportKind) -> Option<SocketAddr> {
        self.inner.locals[kind as usize]
    }

    /// Sets the address outbound TCP/TLS connections leave from when their
    /// listener is a wildcard (`0.0.0.0`) or off: the gateway passes
    /// `[gateway] advertise`. Only the first call counts. An address this
    /// host does not have (a NAT's public address) is refused with a
    /// warning, and such connections then leave from whatever address the
    /// kernel's routing picks.
    pub fn set_wildcard_source(&self, ip: IpAddr) {
        let probe = match ip {
            IpAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
            IpAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
        };
        match probe.and_then(|socket| socket.bind(SocketAddr::new(ip, 0))) {
            Ok(()) => {
                let _ = self.inner.wildcard_source.set(ip);
            }
            Err(error) => warn!(
                %ip, %error,
                "outbound TCP/TLS cannot leave from the advertised address; not binding them"
            ),
        }
    }

    /// The address outbound connections over `kind` leave from, so that an
    /// IP allow list on the peer sees the address our Via names: the
    /// listener's own address, else (wildcard or off) the one given to
    /// [`Transports::set_wildcard_source`], else that of another listener
    /// when this one is off, else `None` (the kernel picks).
    pub(super) fn outbound_source(&self, kind: TransportKind) -> Option<IpAddr> {
        let specific = |kind: TransportKind| {
            self.local_addr(kind)
                .map(|addr| addr.ip())
                .filter(|ip| !ip.is_unspecified())
        };
        if let Some(ip) = specific(kind) {
            return Some(ip);
        }
        if let Some(ip) = self.inner.wildcard_source.get() {
            return Some(*ip);
        }
        if self.local_addr(kind).is_some() {
            return None;
        }
        [TransportKind::Tcp, TransportKind::Tls, TransportKind::Udp]
            .into_iter()
            .find_map(specific)
    }

    /// Sends a message. UDP: one datagram from the bound socket. TCP/TLS: on
    /// `target.conn` while it is open, else on an open connection to
    /// `target.addr`, else on a new connection (connecting takes at most
    /// 5 s, a TLS handshake 10 s more). For a TCP/TLS target, `Ok` means
    /// queued on a live connection: a write that fails later closes it.
    pub async fn send(&self, target: &Target, msg: &SipMessage) -> Result<(), TransportError> {
        self.send_bytes(target, Bytes::from(msg.to_bytes())).await
    }

    /// [`Transports::send`] for printed bytes; retransmissions can keep one
    /// [`Bytes`] and resend it without printing or copying again.
    pub async fn send_bytes(&self, target: &Target, bytes: Bytes) -> Result<(), TransportError> {
        if *self.inner.shutdown.borrow() {
            return Err(TransportError::Shutdown);
        }
        match target.kind {
            TransportKind::Udp => {
                let socket = self
                    .udp_socket()
                    .ok_or(TransportError::NotEnabled(TransportKind::Udp))?;
                socket
                    .send_to(&bytes, target.addr)
                    .await
                    .map_err(|source| TransportError::Send {
                        kind: TransportKind::Udp,
                        addr: target.addr,
                        source,
                    })?;
            }
            kind => self.send_stream(kind, target, bytes).await?,
        }
        bump(&self.inner.stats.kind(target.kind).messages_out);
        Ok(())
    }

    async fn send_stream(
        &self,
        kind: TransportKind,
        target: &Target,
        bytes: Bytes,
    ) -> Result<(), TransportError> {
        let conns = &self.inner.conns;
        if let Some(id) = target.conn
            && conns.queue(id, &bytes)?
        {
            return Ok(());
        }
        if let Some(id) = conns.find(kind, target.addr)
            && conns.queue(id, &bytes)?
        {
            return Ok(());
        }
        let id = tcp::connect(self, kind, target).await?;
        match conns.queue(id, &bytes)? {
            true => Ok(()),
            false => Err(TransportError::Connect {
                kind,
                addr: target.addr,
                source: std::io::ErrorKind::ConnectionReset.into(),
            }),
        }
    }

    /// The connection open to `addr` over `kind`, if any (the one a send to
    /// that address would reuse).
    pub fn connection_to(&self, kind: TransportKind, addr: SocketAddr) -> Option<ConnId> {
        self.inner.conns.find(kind, addr)
    }

    /// Counters per transport.
    pub fn stats(&self) -> StatsSnapshot {
        self.inner
            .stats
            .snapshot(|kind| self.inner.conns.open(kind))
    }

    /// Stops listening and closes every connection (queued writes are
    /// flushed first, each for at most 10 s), then waits for the tasks to
    /// end; the inbound receiver then ends. Call it after calls have
    /// drained: nothing is received afterwards, so BYEs sent during the
    /// drain must have been answered. Sends fail with
    /// [`TransportError::Shutdown`] from now on.
    pub async fn shutdown(&self) {
        self.inner.shutdown.send_replace(true);
        lock(&self.inner.inbound).take();
        lock(&self.inner.alive).take();
        lock(&self.inner.udp).take();
        let mut all_done = self.inner.all_done.lock().await;
        // No task sends on this channel: recv returns None once every
        // task's clone of the sender has been dropped.
        while all_done.recv().await.is_some() {}
        debug!("SIP transports shut down");
    }

    /// What a new task needs, or `None` once shutdown has begun.
    pub(super) fn task(&self) -> Option<Task> {
        let inbound = lock(&self.inner.inbound).clone()?;
        let alive = lock(&self.inner.alive).clone()?;
        Some(Task {
            transports: self.clone(),
            inbound,
            shutdown: self.inner.shutdown.subscribe(),
            _alive: alive,
        })
    }

    fn udp_socket(&self) -> Option<Arc<UdpSocket>> {
        lock(&self.inner.udp).clone()
    }
}

impl Task {
    /// Turns a framed message into an [`Inbound`] (stamping requests) and
    /// hands it to the gateway. False when the gateway is gone or shutdown
    /// began: the caller's loop should end.
    pub(super) async fn deliver(
        &mut self,
        mut msg: SipMessage,
        source: SocketAddr,
        kind: TransportKind,
        conn: Option<ConnId>,
        local: SocketAddr,
    ) -> bool {
        let stats = self.transports.inner.stats.kind(kind);
        if msg.is_request()
            && let Err(error) = stamp_received(&mut msg, source)
        {
            // The framer validated the Via list, so this is not expected;
            // without a Via there is nowhere to answer anyway.
            debug!(%source, %error, "dropping {kind} request: cannot stamp Via");
            bump(&stats.malformed);
            return true;
        }
        bump(&stats.messages_in);
        let inbound = Inbound {
            msg,
            source,
            kind,
            conn,
            local,
        };
        tokio::select! {
            sent = self.inbound.send(inbound) => sent.is_ok(),
            _ = self.shutdown.wait_for(|stop| *stop) => false,
        }
    }

    /// Counts and logs malformed input; returns the reply to send, if any.
    pub(super) fn malformed(
        &self,
        malformed: Malformed,
        source: SocketAddr,
        kind: TransportKind,
    ) -> Option<Bytes> {
        let stats = self.transports.inner.stats.kind(kind);
        bump(&stats.malformed);
        let reply = malformed.reply.map(|reply| {
            bump(&stats.malformed_replies);
            Bytes::from(reply.to_bytes())
        });
        debug!(
            %source,
            error = %malformed.error,
            replied = reply.is_some(),
            close = malformed.close_connection,
            "malformed SIP over {kind}"
        );
        reply
    }
}
