//! Counters per transport, for `/metrics` and for tests that check what a
//! peer's garbage cost us.

use std::sync::atomic::{AtomicU64, Ordering};

use super::TransportKind;

/// What one transport has seen since start.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    /// Messages delivered to the gateway.
    pub messages_in: u64,
    /// Messages written to a socket or queued on a connection.
    pub messages_out: u64,
    /// Input that did not become a message and was dropped.
    pub malformed: u64,
    /// Of those, how many were answered (400, 505, 513).
    pub malformed_replies: u64,
    /// CRLF pongs sent for CRLFCRLF keep-alive pings (RFC 5626 §3.5.1).
    pub pongs: u64,
    /// Connections open now (TCP and TLS only).
    pub connections_open: u64,
    /// Connections opened since start, both directions.
    pub connections_total: u64,
}

/// The counters of all three transports at one moment.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// SIP over UDP.
    pub udp: Counters,
    /// SIP over TCP.
    pub tcp: Counters,
    /// SIP over TLS.
    pub tls: Counters,
}

impl StatsSnapshot {
    /// The counters of one transport.
    pub fn get(&self, kind: TransportKind) -> &Counters {
        match kind {
            TransportKind::Udp => &self.udp,
            TransportKind::Tcp => &self.tcp,
            TransportKind::Tls => &self.tls,
        }
    }
}

/// The live counters. `connections_open` is not kept here: the connection
/// table counts its entries, so it cannot drift.
#[derive(Debug, Default)]
pub(super) struct Stats {
    kinds: [KindStats; 3],
}

#[derive(Debug, Default)]
pub(super) struct KindStats {
    pub(super) messages_in: AtomicU64,
    pub(super) messages_out: AtomicU64,
    pub(super) malformed: AtomicU64,
    pub(super) malformed_replies: AtomicU64,
    pub(super) pongs: AtomicU64,
    pub(super) connections_total: AtomicU64,
}

impl Stats {
    pub(super) fn kind(&self, kind: TransportKind) -> &KindStats {
        &self.kinds[kind as usize]
    }

    pub(super) fn snapshot(&self, open: impl Fn(TransportKind) -> u64) -> StatsSnapshot {
        let read = |kind: TransportKind| {
            let s = self.kind(kind);
            Counters {
                messages_in: s.messages_in.load(Ordering::Relaxed),
                messages_out: s.messages_out.load(Ordering::Relaxed),
                malformed: s.malformed.load(Ordering::Relaxed),
                malformed_replies: s.malformed_replies.load(Ordering::Relaxed),
                pongs: s.pongs.load(Ordering::Relaxed),
                connections_open: open(kind),
                connections_total: s.connections_total.load(Ordering::Relaxed),
            }
        };
        StatsSnapshot {
            udp: read(TransportKind::Udp),
            tcp: read(TransportKind::Tcp),
            tls: read(TransportKind::Tls),
        }
    }
}

/// Adds one to a counter.
pub(super) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_land_on_their_transport() {
        let stats = Stats::default();
        bump(&stats.kind(TransportKind::Tcp).messages_in);
        bump(&stats.kind(TransportKind::Tls).malformed);
        let snapshot = stats.snapshot(|kind| u64::from(kind == TransportKind::Tls) * 2);
        assert_eq!(snapshot.get(TransportKind::Tcp).messages_in, 1);
        assert_eq!(snapshot.get(TransportKind::Udp), &Counters::default());
        assert_eq!(snapshot.tls.malformed, 1);
        assert_eq!(snapshot.tls.connections_open, 2);
    }
}
