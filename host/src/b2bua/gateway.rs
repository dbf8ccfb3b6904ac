//! The signalling core: one task that owns every transaction, dialog and
//! call, fed by the transports, the media plane and the rest of the host.
//!
//! Everything protocol-shaped below it is free of I/O (`trunkline-sip`);
//! this file is where messages meet sockets and timers meet the clock. One
//! task keeps the state lock-free; a decision (~20 µs) runs inline.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};
use trunkline_relay::MediaEvent;
use trunkline_sip::dialog::DialogId;
use trunkline_sip::message::{Method, SipMessage, ViaTrust};
use trunkline_sip::transaction::{
    self, Event, Reliability, Routed, Timers, TransactionKey, Transactions, Transmit,
};

use super::admission::Gatekeeper;
use super::call::{Call, CallKey, Leg, format_call_id};
use super::control::{CallInfo, ControlError, ControlOrder};
use super::media::MediaPlane;
pub(crate) use super::timers::CallTimer;
use super::timers::CallTimers;
use super::wire::Wire;
use crate::config::Config;
use crate::policy::{EndReason, PolicyRegistry};
use crate::store::OutcomeStore;
use crate::transport::{Inbound, Resolver, Target, TransportKind, Transports, reply_target};

/// Something for the core from outside the SIP sockets.
#[derive(Debug)]
pub enum GatewayEvent {
    /// From a call's relay.
    Media(u64, MediaEvent),
    /// From a call's WebSocket or builtin agent.
    Connector(u64, crate::connector::Report),
    /// A control-API order for a call.
    Control {
        /// Trunkline call id.
        call_id: String,
        /// What to do.
        order: ControlOrder,
        /// The result.
        reply: oneshot::Sender<Result<(), ControlError>>,
    },
    /// One call's state, if it is active and of tenant `.1` (`None`: any).
    GetCall(String, Option<String>, oneshot::Sender<Option<CallInfo>>),
    /// Every active call.
    ListCalls(oneshot::Sender<Vec<CallInfo>>),
    /// How many calls are active.
    ActiveCalls(oneshot::Sender<usize>),
    /// Stop taking new calls (`503` to new INVITEs); calls in progress go on.
    Drain,
    /// Place a call (`POST /v1/calls`); the answer is its call id.
    Originate(
        super::originate::OriginateRequest,
        oneshot::Sender<Result<String, super::originate::OriginateError>>,
    ),
    /// Internal: the trunk of a call being placed was looked up.
    #[doc(hidden)]
    OriginateResolved(Box<super::originate::Pending>, Result<SocketAddr, String>),
    /// Internal: the trunk of a transfer was looked up.
    #[doc(hidden)]
    TransferResolved(
        Box<super::transfer::PendingTransfer>,
        Result<SocketAddr, String>,
    ),
    /// Internal: the agent's host name was resolved for call `.0`.
    #[doc(hidden)]
    AgentResolved(u64, Result<(SocketAddr, TransportKind), String>),
    /// Internal: a message of transaction `.0` could not be delivered
    /// (a connection that could not be opened; `.1` says why).
    #[doc(hidden)]
    TransportError(TransactionKey, String),
    /// Internal: the messages waiting for a connection to this peer are
    /// sent (or failed).
    #[doc(hidden)]
    Connected((TransportKind, SocketAddr)),
}

/// How long BYEs sent at shutdown may take to complete.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(4);

/// The running gateway's handle.
#[derive(Clone)]
pub struct GatewayHandle {
    events: mpsc::Sender<GatewayEvent>,
    /// The core's counters.
    pub stats: Arc<super::stats::GatewayStats>,
    /// The relay's counters (every call's packets).
    pub relay_stats: Arc<trunkline_relay::RelayStats>,
    /// The RTP port pool.
    pub ports: trunkline_relay::PortPool,
    transports: Transports,
    /// Where SIP listens.
    pub sip_udp: Option<SocketAddr>,
    /// Where SIP listens on TCP.
    pub sip_tcp: Option<SocketAddr>,
}

impl std::fmt::Debug for GatewayHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayHandle")
            .field("sip_udp", &self.sip_udp)
            .field("sip_tcp", &self.sip_tcp)
            .finish_non_exhaustive()
    }
}

impl GatewayHandle {
    /// The SIP transports' counters.
    pub fn transport_stats(&self) -> crate::transport::StatsSnapshot {
        self.transports.stats()
    }

    /// Sends an event to the core; `false` if it has stopped.
    pub async fn send(&self, ev: GatewayEvent) -> bool {
        self.events.send(ev).await.is_ok()
    }

    /// Active call `call_id`, if it belongs to `tenant` (`None`: any
    /// tenant); `Err(Stopped)` once the core has stopped. An unknown id and
    /// another tenant's call take the same path and give the same `None`,
    /// so neither the answer nor its timing tells them apart.
    pub async fn call(
        &self,
        call_id: &str,
        tenant: Option<&str>,
    ) -> Result<Option<CallInfo>, ControlError> {
        let (tx, rx) = oneshot::channel();
        let ev = GatewayEvent::GetCall(call_id.to_owned(), tenant.map(str::to_owned), tx);
        if !self.send(ev).await {
            return Err(ControlError::Stopped);
        }
        rx.await.map_err(|_| ControlError::Stopped)
    }

    /// Every active call.
    pub async fn calls(&self) -> Vec<CallInfo> {
        let (tx, rx) = oneshot::channel();
        if !self.send(GatewayEvent::ListCalls(tx)).await {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }

    /// Carries out a control order on call `call_id`.
    pub async fn control(&self, call_id: &str, order: ControlOrder) -> Result<(), ControlError> {
        let (tx, rx) = oneshot::channel();
        let ev = GatewayEvent::Control {
            call_id: call_id.to_owned(),
            order,
            reply: tx,
        };
        if !self.send(ev).await {
            return Err(ControlError::Stopped);
        }
        rx.await.unwrap_or(Err(ControlError::Stopped))
    }

    /// How many calls are active (`None` when the gateway has stopped).
    pub async fn active_calls(&self) -> Option<usize> {
        let (tx, rx) = oneshot::channel();
        if !self.send(GatewayEvent::ActiveCalls(tx)).await {
            return None;
        }
        rx.await.ok()
    }

    /// Places a call; its call id once it is on its way (`201`).
    pub async fn originate(
        &self,
        request: super::originate::OriginateRequest,
    ) -> Result<String, super::originate::OriginateError> {
        let (tx, rx) = oneshot::channel();
        let stopped =
            || super::originate::OriginateError::Unavailable("the gateway has stopped".into());
        if !self.send(GatewayEvent::Originate(request, tx)).await {
            return Err(stopped());
        }
        rx.await.unwrap_or_else(|_| Err(stopped()))
    }

    /// Stops taking new calls (`503`); calls in progress go on.
    pub async fn drain(&self) {
        self.send(GatewayEvent::Drain).await;
    }
}

pub(crate) struct Gateway {
    pub(crate) config: Arc<Config>,
    pub(crate) registry: Arc<PolicyRegistry>,
    pub(crate) store: Arc<dyn OutcomeStore>,
    pub(crate) transports: Transports,
    pub(crate) media: MediaPlane,
    pub(crate) gatekeeper: Gatekeeper,
    pub(crate) table: Transactions<Wire>,
    pub(crate) timer_config: Timers,
    pub(crate) calls: HashMap<CallKey, Call>,
    /// Dialog id -> call and leg.
    pub(crate) by_dialog: HashMap<DialogId, (CallKey, Leg)>,
    /// Transaction -> call and leg (server INVITE of the caller, client
    /// transactions toward either leg).
    pub(crate) by_tx: HashMap<TransactionKey, (CallKey, Leg)>,
    /// The calls' timers; an ended call's are pruned (see `timers`).
    pub(crate) timers: CallTimers,
    pub(crate) events_tx: mpsc::Sender<GatewayEvent>,
    /// Messages waiting for a TCP/TLS connection being opened, per peer, in
    /// order (see [`Gateway::flush`]).
    connecting: HashMap<(TransportKind, SocketAddr), mpsc::UnboundedSender<Transmit<Wire>>>,
    /// Our address for Via, Contact and SDP.
    pub(crate) advertise: IpAddr,
    /// Agent host names, looked up off this task.
    pub(crate) resolver: Resolver,
    /// Our listening port per transport.
    pub(crate) ports: HashMap<TransportKind, u16>,
    /// Shutting down: new INVITEs get `503`.
    pub(crate) draining: bool,
    pub(crate) stats: Arc<super::stats::GatewayStats>,
    /// Paces the log lines about refused in-dialog requests (`peers`).
    pub(crate) refusal_log: trunkline_sip::log_budget::LogBudget,
    /// Calls placed on each outbound trunk that have not ended yet (its
    /// `max_concurrent`).
    pub(crate) outbound_active: HashMap<String, usize>,
}

/// Starts the SIP core: binds the listeners and spawns the task. It stops
/// when `shutdown` turns true.
pub async fn start(
    config: Arc<Config>,
    registry: Arc<PolicyRegistry>,
    store: Arc<dyn OutcomeStore>,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<(GatewayHandle, tokio::task::JoinHandle<()>)> {
    let (transports, mut inbound) = Transports::bind(&config.sip).await?;
    if let Some(ip) = config.gateway.advertise {
        transports.set_wildcard_source(ip);
    }
    let sip_udp = transports.local_addr(TransportKind::Udp);
    let sip_tcp = transports.local_addr(TransportKind::Tcp);
    let bound = sip_udp
        .or(sip_tcp)
        .ok_or_else(|| anyhow::anyhow!("[sip] enables neither UDP nor TCP"))?;
    let advertise = match config.gateway.advertise {
        Some(ip) => ip,
        None if bound.ip().is_unspecified() => anyhow::bail!(
            "SIP listens on {bound}, a wildcard address: set [gateway] advertise to the address peers reach"
        ),
        None => bound.ip(),
    };
    let mut ports = HashMap::new();
    for kind in [TransportKind::Udp, TransportKind::Tcp, TransportKind::Tls] {
        if let Some(a) = transports.local_addr(kind) {
            ports.insert(kind, a.port());
        }
    }
    let media =
        MediaPlane::new(&config.media, advertise).map_err(|e| anyhow::anyhow!("media: {e}"))?;
    let stats = Arc::new(super::stats::GatewayStats::default());
    let gatekeeper = Gatekeeper::new(&config.trunks, stats.clone())?;
    let timer_config = Timers {
        t1: Duration::from_millis(config.gateway.t1_ms.max(1)),
        ..Timers::default()
    };
    let (events_tx, mut events_rx) = mpsc::channel(1024);
    let config_dns = (config.gateway.dns_timeout_ms, config.gateway.dns_cache_secs);
    let mut table = Transactions::new(timer_config);
    table.limit_servers(trunkline_sip::transaction::ServerLimits {
        total: config.gateway.max_transactions.max(1),
        per_source: config.gateway.max_transactions_per_source.max(1),
    });
    let mut gw = Gateway {
        config,
        registry,
        store,
        transports,
        media,
        gatekeeper,
        table,
        timer_config,
        calls: HashMap::new(),
        by_dialog: HashMap::new(),
        by_tx: HashMap::new(),
        timers: CallTimers::default(),
        events_tx: events_tx.clone(),
        connecting: HashMap::new(),
        resolver: Resolver::new(
            Duration::from_millis(config_dns.0.max(1)),
            Duration::from_secs(config_dns.1),
        ),
        advertise,
        ports,
        draining: false,
        stats,
        refusal_log: trunkline_sip::log_budget::LogBudget::new(
            1,
            super::peers::REFUSAL_LOG_INTERVAL,
        ),
        outbound_active: HashMap::new(),
    };
    let handle = GatewayHandle {
        events: events_tx.clone(),
        stats: gw.stats.clone(),
        relay_stats: gw.media.stats(),
        ports: gw.media.pool(),
        transports: gw.transports.clone(),
        sip_udp,
        sip_tcp,
    };
    let task = tokio::spawn(async move {
        // Once shutting down: the BYEs of the calls ended get a few seconds
        // to be answered (and retransmitted over UDP) before the sockets go.
        let mut stop_by: Option<Instant> = None;
        loop {
            if let Some(at) = stop_by
                && (gw.calls.is_empty() || Instant::now() >= at)
            {
                break;
            }
            let deadline = match (gw.next_deadline(), stop_by) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            tokio::select! {
                msg = inbound.recv() => match msg {
                    Some(m) => gw.on_inbound(m),
                    None => break,
                },
                Some(ev) = events_rx.recv() => gw.on_event(ev),
                _ = sleep_until(deadline) => gw.on_timeout(Instant::now()),
                _ = shutdown.changed(), if stop_by.is_none() => {
                    if *shutdown.borrow() {
                        gw.shutdown();
                        stop_by = Some(Instant::now() + SHUTDOWN_GRACE);
                    }
                }
            }
            gw.flush().await;
            gw.stats.set_tables(super::stats::Tables {
                transactions: gw.table.len(),
                calls: gw.calls.len(),
                dialogs: gw.by_dialog.len(),
                timers: gw.timers.len(),
            });
        }
        gw.transports.shutdown().await;
    });
    Ok((handle, task))
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

impl Gateway {
    /// A random key no live call has (a clash is a 2^-64 chance per call,
    /// so the loop all but never runs twice).
    pub(crate) fn new_key(&mut self) -> CallKey {
        loop {
            let key = super::call::random_key();
            if !self.calls.contains_key(&key) {
                return key;
            }
        }
    }

    fn next_deadline(&mut self) -> Option<Instant> {
        let tx = self.table.poll_timeout();
        let call = self.timers.next_deadline();
        match (tx, call) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The session-timer settings of the config.
    pub(crate) fn session_timer_config(&self) -> trunkline_sip::dialog::TimerConfig {
        trunkline_sip::dialog::TimerConfig {
            session_expires: Some(self.config.gateway.session_expires_secs),
            ..trunkline_sip::dialog::TimerConfig::default()
        }
    }

    pub(crate) fn arm(&mut self, key: CallKey, after: Duration, timer: CallTimer) {
        self.timers.arm(Instant::now() + after, key, timer);
    }

    fn on_timeout(&mut self, now: Instant) {
        self.table.handle_timeout(now);
        while let Some((key, timer)) = self.timers.pop_due(now) {
            if self.calls.contains_key(&key) {
                let _span = self.call_span(key).entered();
                self.on_call_timer(key, timer);
            }
        }
    }

    /// Sends what the transactions queued and hands their events to the
    /// calls, until nothing is left (an event may queue more messages).
    pub(crate) async fn flush(&mut self) {
        loop {
            let mut idle = true;
            while let Some(t) = self.table.poll_transmit() {
                idle = false;
                // Through a clone of the transports: the gateway itself is
                // not `Sync` (transactions hold `FnMut` ACK builders), so no
                // `&self` may live across an await.
                let transports = self.transports.clone();
                if let Some(status) = t.message.msg.status_code() {
                    self.stats.response_sent(status);
                }
                trace_out(&t.message);
                let target = &t.message.target;
                // Opening a TCP/TLS connection (connect, handshake) may take
                // seconds: not on this task, which serves every call.
                let peer = (target.kind, target.addr);
                // (A preferred connection that has closed counts as none.)
                let connecting = target.kind != TransportKind::Udp
                    && transports.connection_to(target.kind, target.addr).is_none();
                if connecting || self.connecting.contains_key(&peer) {
                    self.send_when_connected(peer, t);
                } else if let Err(e) = transports.send(target, &t.message.msg).await {
                    tracing::warn!(?target, error = %e, "cannot send a SIP message");
                    self.table.handle_transport_error(Instant::now(), &t.key);
                }
            }
            while let Some((key, event)) = self.table.poll_event() {
                idle = false;
                self.on_tx_event(key, event);
            }
            if idle {
                break;
            }
        }
    }

    /// Queues `t` behind the connection being opened to `peer` (opening it
    /// if nobody is): one task per peer sends its messages in order, then
    /// ends. A failure is reported to each message's transaction.
    fn send_when_connected(&mut self, peer: (TransportKind, SocketAddr), t: Transmit<Wire>) {
        let t = match self.connecting.get(&peer) {
            Some(queue) => match queue.send(t) {
                Ok(()) => return,
                Err(mpsc::error::SendError(t)) => t, // That task is ending.
            },
            None => t,
        };
        let (queue, mut waiting) = mpsc::unbounded_channel::<Transmit<Wire>>();
        let _ = queue.send(t);
        self.connecting.insert(peer, queue);
        let transports = self.transports.clone();
        let events = self.events_tx.clone();
        tokio::spawn(async move {
            // Ends once the queue is empty: it is closed first, so a message
            // queued meanwhile is still sent here, and a later one finds it
            // closed and goes by a new task (or, once the gateway has heard
            // `Connected`, straight on the open connection).
            loop {
                let t = match waiting.try_recv() {
                    Ok(t) => t,
                    Err(_) => {
                        waiting.close();
                        match waiting.try_recv() {
                            Ok(t) => t,
                            Err(_) => break,
                        }
                    }
                };
                let (target, msg) = (&t.message.target, &t.message.msg);
                if let Err(e) = transports.send(target, msg).await {
                    tracing::warn!(?target, error = %e, "cannot send a SIP message");
                    let why = e.to_string();
                    let _ = events.send(GatewayEvent::TransportError(t.key, why)).await;
                }
            }
            let _ = events.send(GatewayEvent::Connected(peer)).await;
        });
    }

    /// Sends a message outside any transaction (2xx retransmissions, ACK
    /// for 2xx, stateless replies). The core task sends it at its next
    /// flush through the same socket as everything else.
    pub(crate) fn send_now(&self, wire: Wire) {
        if let Some(status) = wire.msg.status_code() {
            self.stats.response_sent(status);
        }
        trace_out(&wire);
        let transports = self.transports.clone();
        tokio::spawn(async move {
            if let Err(e) = transports.send(&wire.target, &wire.msg).await {
                tracing::warn!(target = ?wire.target, error = %e, "cannot send a SIP message");
            }
        });
    }

    fn on_inbound(&mut self, inbound: Inbound) {
        tracing::trace!(kind = ?inbound.kind, source = %inbound.source,
            "SIP in\n{}", crate::redact::redact_message(&inbound.msg.to_string()));
        let reliability = inbound.kind.reliability();
        if inbound.msg.is_request() {
            // Nothing here may wait (no DNS): one request must not hold up
            // every other call's signalling.
            let trust = if self.gatekeeper.lists(inbound.source.ip()) {
                ViaTrust::Admitted
            } else {
                ViaTrust::Unadmitted
            };
            let reply_to = match reply_target(&inbound, trust) {
                Ok(t) => t,
                Err(e) => {
                    tracing::debug!(source = %inbound.source, error = %e, "request with no reply route; dropped");
                    return;
                }
            };
            self.on_request(inbound.msg, reply_to, inbound.source, reliability, trust);
        } else {
            let mut from = Target::new(inbound.kind, inbound.source);
            from.conn = inbound.conn;
            self.on_response(inbound.msg, from);
        }
    }

    fn on_request(
        &mut self,
        msg: SipMessage,
        reply_to: Target,
        source: SocketAddr,
        reliability: Reliability,
        trust: ViaTrust,
    ) {
        let now = Instant::now();
        let Some(method) = msg.method().cloned() else {
            return;
        };
        // §17.2.3: by branch, sent-by and method, or for an RFC 2543 peer
        // (no `z9hG4bK` branch: RFC 4475 wsinv, longreq, inv2543) by
        // Request-URI, tags, Call-ID, CSeq and top Via. The framer checked
        // everything the key reads.
        let Some(key) = transaction::server_key(&msg) else {
            return;
        };
        let wire = Wire::new(reply_to.clone(), msg);
        let wire = match self.table.handle_request(now, &key, wire) {
            Routed::Matched => return,
            Routed::Unmatched(w) => w,
        };
        let msg = wire.msg.clone();
        // The packet's own source, for the in-dialog checks (`peers`).
        let origin = super::peers::Origin {
            addr: source,
            kind: reply_to.kind,
            conn: reply_to.conn,
        };
        let in_dialog = msg
            .to()
            .ok()
            .and_then(|t| t.tag().map(str::to_owned))
            .is_some();
        let new_invite = method == Method::Invite && !in_dialog;
        // RFC 3261 §8.2 (405/501, 416, 420, 415, 406) before anything reads
        // the request; a new INVITE is checked after admission instead, so
        // a stranger learns nothing beyond its 403.
        if !new_invite && self.refused_by_inspection(now, &key, &wire, reliability, trust) {
            return;
        }
        match method {
            Method::Ack => self.on_ack(&msg, &origin),
            Method::Cancel => self.on_cancel(now, key, wire, reliability, &origin),
            _ if in_dialog => self.on_in_dialog(now, key, wire, reliability, &origin),
            Method::Invite => self.on_new_invite(now, key, wire, source, reliability),
            _ => self.on_out_of_dialog(now, key, wire, reliability, trust),
        }
    }

    fn on_response(&mut self, msg: SipMessage, from: Target) {
        let now = Instant::now();
        let (Ok(via), Ok(cseq), Some(status)) = (msg.top_via(), msg.cseq(), msg.status_code())
        else {
            return;
        };
        let Some(branch) = via.branch() else { return };
        let Ok(key) = TransactionKey::client(branch, cseq.method.as_str()) else {
            return;
        };
        let wire = Wire::new(from, msg);
        if let Routed::Unmatched(w) = self.table.handle_response(now, &key, status, wire) {
            // A 2xx retransmitted after the INVITE transaction ended: the
            // dialog answers it with its ACK again.
            if (200..300).contains(&status) && cseq.method == Method::Invite {
                self.on_late_2xx(&w.msg);
            }
        }
    }

    /// The tracing span of call `key` (none once it is forgotten): entered
    /// around everything done for the call, so every log line carries its
    /// call id, shared id, trunk and policy version.
    pub(crate) fn call_span(&self, key: CallKey) -> tracing::Span {
        self.calls
            .get(&key)
            .map_or_else(tracing::Span::none, |c| c.span.clone())
    }

    fn on_event(&mut self, ev: GatewayEvent) {
        let key = match &ev {
            GatewayEvent::Media(k, _)
            | GatewayEvent::Connector(k, _)
            | GatewayEvent::AgentResolved(k, _) => Some(*k),
            GatewayEvent::Control { call_id, .. } => super::call::parse_call_id(call_id),
            _ => None,
        };
        let _span = key.map(|k| self.call_span(k).entered());
        match ev {
            GatewayEvent::Media(
                key,
                MediaEvent::Dtmf {
                    digit,
                    leg,
                    duration_ms,
                },
            ) => {
                if let Some(call) = self.calls.get_mut(&key) {
                    call.dtmf.push(digit);
                }
                if leg == trunkline_relay::LegId::A {
                    self.connector_dtmf(key, digit, duration_ms);
                }
            }
            GatewayEvent::Media(key, MediaEvent::Timeout { leg })
                if self
                    .calls
                    .get(&key)
                    .is_some_and(|c| !c.state().is_calling()) =>
            {
                tracing::info!(call_id = %format_call_id(key), ?leg, "no media: ending the call");
                self.end_call(key, EndReason::MediaTimeout);
            }
            GatewayEvent::Media(key, MediaEvent::Timeout { leg }) => {
                // Early media before the answer: the caller need not send,
                // the agent may pause between prompts; the ring timeout
                // bounds this phase.
                tracing::debug!(call_id = %format_call_id(key), ?leg, "no early media; still ringing");
            }
            GatewayEvent::Media(key, MediaEvent::Latched { leg, addr }) => {
                tracing::debug!(call_id = %format_call_id(key), ?leg, %addr, "media latched");
            }
            GatewayEvent::Control {
                call_id,
                order,
                reply,
            } => {
                let _ = reply.send(self.on_control(&call_id, order));
            }
            GatewayEvent::GetCall(call_id, tenant, reply) => {
                let info = super::call::parse_call_id(&call_id)
                    .and_then(|k| self.calls.get(&k))
                    .filter(|c| !c.state().is_ending())
                    .filter(|c| {
                        tenant
                            .as_deref()
                            .is_none_or(|t| self.config.trunks[c.trunk].tenant() == t)
                    })
                    .map(|c| self.call_info(c));
                let _ = reply.send(info);
            }
            GatewayEvent::ListCalls(reply) => {
                let mut all: Vec<CallInfo> = self
                    .calls
                    .values()
                    .filter(|c| !c.state().is_ending())
                    .map(|c| self.call_info(c))
                    .collect();
                all.sort_by_key(|c| c.started_ms);
                let _ = reply.send(all);
            }
            GatewayEvent::Originate(request, reply) => self.on_originate(request, reply),
            GatewayEvent::OriginateResolved(pending, result) => {
                self.on_originate_resolved(*pending, result)
            }
            GatewayEvent::TransferResolved(pending, result) => {
                self.on_transfer_resolved(*pending, result)
            }
            GatewayEvent::Drain => {
                tracing::info!("draining: new calls get 503");
                self.draining = true;
            }
            GatewayEvent::Connector(key, report) => self.on_connector(key, report),
            GatewayEvent::AgentResolved(key, Ok((addr, kind))) => {
                self.start_agent_leg(key, addr, kind)
            }
            GatewayEvent::AgentResolved(key, Err(why)) => {
                tracing::warn!(call_id = %format_call_id(key), %why, "cannot reach the agent");
                self.agent_unreachable(key);
            }
            GatewayEvent::Connected(peer) => {
                if self.connecting.get(&peer).is_some_and(|q| q.is_closed()) {
                    self.connecting.remove(&peer);
                }
            }
            GatewayEvent::TransportError(tx, _why) => {
                // Logged where it happened; the transaction ends and tells
                // its call (RFC 3261 §8.1.3.1: as if a 503 had come).
                self.table.handle_transport_error(Instant::now(), &tx);
            }
            GatewayEvent::ActiveCalls(reply) => {
                let active = self
                    .calls
                    .values()
                    .filter(|c| !c.state().is_ending())
                    .count();
                let _ = reply.send(active);
            }
        }
    }

    fn on_tx_event(&mut self, key: TransactionKey, event: Event<Wire>) {
        let Some(&(call, leg)) = self.by_tx.get(&key) else {
            return;
        };
        if matches!(event, Event::Terminated) {
            self.by_tx.remove(&key);
            if let Some(c) = self.calls.get_mut(&call) {
                c.pending.retain(|k| k != &key);
            }
            self.maybe_forget(call);
            return;
        }
        let _span = self.call_span(call).entered();
        self.on_call_tx_event(call, leg, key, event);
    }

    /// Ends every call (shutdown): each goes through `conclude` with reason
    /// `error` and the attribute `trunkline.shutdown=true`.
    fn shutdown(&mut self) {
        self.draining = true;
        let keys: Vec<CallKey> = self.calls.keys().copied().collect();
        for k in keys {
            let _span = self.call_span(k).entered();
            if let Some(call) = self.calls.get_mut(&k)
                && !call.state().is_ending()
            {
                call.set_attribute("trunkline.shutdown", "true");
                tracing::info!("ending the call: the gateway is shutting down");
            }
            self.end_call(k, EndReason::Error);
        }
    }
}

/// The SIP trace (`trunkline=trace`): every message sent, credentials
/// redacted.
fn trace_out(wire: &Wire) {
    tracing::trace!(target = ?wire.target, "SIP out\n{}",
        crate::redact::redact_message(&wire.msg.to_string()));
}
