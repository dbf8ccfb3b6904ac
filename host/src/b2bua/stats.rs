//! Counters of the signalling core, read by the metrics exporter.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::connector::ws::playback::PlayoutStats;
use std::sync::atomic::{AtomicU64, Ordering};

/// What the gateway counts. Cheap: atomics, and short uncontended locks for
/// the labelled maps.
#[derive(Debug, Default)]
pub struct GatewayStats {
    started: AtomicU64,
    ended: Mutex<BTreeMap<(&'static str, bool), u64>>,
    responses: Mutex<BTreeMap<u16, u64>>,
    store_errors: AtomicU64,
    connector: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    lockouts: Mutex<BTreeMap<&'static str, u64>>,
    lockout_refusals: Mutex<BTreeMap<&'static str, u64>>,
    transactions: AtomicU64,
    calls_open: AtomicU64,
    dialogs: AtomicU64,
    timers: AtomicU64,
    overloaded: AtomicU64,
    /// WebSocket agents' playout (their streams count into it).
    pub(crate) playout: Arc<PlayoutStats>,
}

/// The sizes of the core's tables after a turn of its loop.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tables {
    /// SIP transactions open.
    pub(crate) transactions: usize,
    /// Call records held, ending ones included.
    pub(crate) calls: usize,
    /// Dialogs indexed (up to two per call).
    pub(crate) dialogs: usize,
    /// Call timers queued, stale ones included.
    pub(crate) timers: usize,
}

/// A copy of every counter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GatewayStatsSnapshot {
    /// Calls admitted and routed (a call record exists).
    pub calls_started: u64,
    /// Calls concluded, by end reason and whether the AI contained them.
    pub calls_ended: BTreeMap<(&'static str, bool), u64>,
    /// SIP responses sent, by status (retransmissions included).
    pub responses_sent: BTreeMap<u16, u64>,
    /// Outcome records the store refused.
    pub store_errors: u64,
    /// Connector events by kind (`websocket`, `builtin`) and what
    /// (`connect-failed`, `closed`, …).
    pub connector_events: BTreeMap<(&'static str, &'static str), u64>,
    /// Digest lockout blocks started, by scope (`source`, `user`).
    pub lockouts: BTreeMap<&'static str, u64>,
    /// INVITEs the digest lockout refused unverified, by reason
    /// (`blocked`, `backoff`).
    pub lockout_refusals: BTreeMap<&'static str, u64>,
    /// SIP transactions open (client and server).
    pub transactions: u64,
    /// Call records held in memory: calls in progress, and ended ones
    /// until their last transaction ends (the agent INVITE's lasts 32 s
    /// after its 2xx, RFC 6026, so a retransmitted 2xx is still ACKed).
    pub calls_open: u64,
    /// SIP dialogs held (both legs of every call).
    pub dialogs: u64,
    /// Call timers queued (ring, maximum duration, session, 2xx
    /// retransmission, REFER), ended calls' included until pruned.
    pub timers: u64,
    /// Requests answered statelessly (or dropped) because the caps on open
    /// server transactions were reached.
    pub overloaded: u64,
    /// Frames of WebSocket agent audio sent with silence padded into them
    /// (where the agent stopped, or fell behind the playout delay).
    pub playout_padded: u64,
    /// Times a WebSocket agent's playout queue ran dry while it was still
    /// talking.
    pub playout_underruns: u64,
}

impl GatewayStatsSnapshot {
    /// Calls started and not concluded yet.
    pub fn active_calls(&self) -> u64 {
        let ended: u64 = self.calls_ended.values().sum();
        self.calls_started.saturating_sub(ended)
    }
}

fn copy<K: Ord + Clone>(map: &Mutex<BTreeMap<K, u64>>) -> BTreeMap<K, u64> {
    map.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

fn bump<K: Ord>(map: &Mutex<BTreeMap<K, u64>>, key: K) {
    let mut m = map.lock().unwrap_or_else(|p| p.into_inner());
    *m.entry(key).or_default() += 1;
}

impl GatewayStats {
    pub(crate) fn call_started(&self) {
        self.started.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn call_ended(&self, reason: &'static str, contained: bool) {
        bump(&self.ended, (reason, contained));
    }

    pub(crate) fn response_sent(&self, status: u16) {
        bump(&self.responses, status);
    }

    pub(crate) fn store_error(&self) {
        self.store_errors.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn connector_event(&self, kind: &'static str, what: &'static str) {
        bump(&self.connector, (kind, what));
    }

    pub(crate) fn lockout(&self, scope: &'static str) {
        bump(&self.lockouts, scope);
    }

    pub(crate) fn lockout_refusal(&self, reason: &'static str) {
        bump(&self.lockout_refusals, reason);
    }

    pub(crate) fn set_tables(&self, t: Tables) {
        self.transactions
            .store(t.transactions as u64, Ordering::Relaxed);
        self.calls_open.store(t.calls as u64, Ordering::Relaxed);
        self.dialogs.store(t.dialogs as u64, Ordering::Relaxed);
        self.timers.store(t.timers as u64, Ordering::Relaxed);
    }

    pub(crate) fn overloaded(&self) {
        self.overloaded.fetch_add(1, Ordering::Relaxed);
    }

    /// Reads every counter.
    pub fn snapshot(&self) -> GatewayStatsSnapshot {
        GatewayStatsSnapshot {
            calls_started: self.started.load(Ordering::Relaxed),
            calls_ended: copy(&self.ended),
            responses_sent: copy(&self.responses),
            store_errors: self.store_errors.load(Ordering::Relaxed),
            connector_events: copy(&self.connector),
            lockouts: copy(&self.lockouts),
            lockout_refusals: copy(&self.lockout_refusals),
            transactions: self.transactions.load(Ordering::Relaxed),
            calls_open: self.calls_open.load(Ordering::Relaxed),
            dialogs: self.dialogs.load(Ordering::Relaxed),
            timers: self.timers.load(Ordering::Relaxed),
            overloaded: self.overloaded.load(Ordering::Relaxed),
            playout_padded: self.playout.padded(),
            playout_underruns: self.playout.underruns(),
        }
    }
}
