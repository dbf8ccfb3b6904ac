//! Relay counters, per session and for the whole relay.
//!
//! A session's task is the only writer of its [`RelayStats`] (relaxed atomic
//! adds on a cache line no other core writes: a few ns per packet). The
//! relay-wide [`RelayStats`] is shared by every task, so writing it per packet
//! would bounce one cache line between cores; tasks add their deltas to it on
//! their housekeeping tick and when they end, so global figures lag by at
//! most one tick (≤ 250 ms).

use std::sync::atomic::{AtomicU64, Ordering};

/// Declares the counters once: the atomic struct, its plain snapshot, and
/// the delta/merge helpers.
macro_rules! counters {
    ($($(#[doc = $doc:literal])* $name:ident,)*) => {
        /// Live counters (see module docs for who writes them).
        #[derive(Debug, Default)]
        pub struct RelayStats {
            $($(#[doc = $doc])* pub(crate) $name: AtomicU64,)*
        }

        /// A copy of the counters at one moment.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct StatsSnapshot {
            $($(#[doc = $doc])* pub $name: u64,)*
        }

        impl RelayStats {
            /// Reads every counter.
            pub fn snapshot(&self) -> StatsSnapshot {
                StatsSnapshot { $($name: self.$name.load(Ordering::Relaxed),)* }
            }

            /// Adds `delta` to every counter.
            pub(crate) fn add_snapshot(&self, delta: &StatsSnapshot) {
                $(if delta.$name != 0 {
                    self.$name.fetch_add(delta.$name, Ordering::Relaxed);
                })*
            }
        }

        impl StatsSnapshot {
            /// What was counted between `earlier` and `self`.
            pub fn since(&self, earlier: &StatsSnapshot) -> StatsSnapshot {
                StatsSnapshot { $($name: self.$name.wrapping_sub(earlier.$name),)* }
            }
        }
    };
}

counters! {
    /// RTP packets relayed from leg A to leg B.
    packets_a_to_b,
    /// RTP bytes (whole packets) relayed from leg A to leg B.
    bytes_a_to_b,
    /// RTP packets relayed from leg B to leg A.
    packets_b_to_a,
    /// RTP bytes (whole packets) relayed from leg B to leg A.
    bytes_b_to_a,
    /// Relayed packets whose payload was transcoded PCMU ↔ PCMA.
    transcoded,
    /// Packets dropped because they came from a source other than the latched one.
    dropped_source,
    /// Datagrams that were not valid RTP/RTCP (or unknown payload types).
    dropped_malformed,
    /// Packets not relayed because of hold: the sender declared it does not
    /// send, or the receiver that it does not receive.
    dropped_hold,
    /// Packets with nowhere to go: no remote address yet, no telephone-event
    /// on the receiving leg, stale sequence numbers, or a full tap.
    dropped_unroutable,
    /// Datagrams the OS refused to send (full socket buffer, unreachable).
    send_errors,
    /// Latches and re-latches to a source address.
    latches,
    /// RTCP packets received (and terminated).
    rtcp_received,
    /// RTCP sender reports the relay sent.
    rtcp_sent,
    /// Key presses detected (RFC 4733).
    dtmf_digits,
    /// Media timeouts reported.
    timeouts,
    /// Events dropped because the owner's channel was full.
    events_lost,
}

impl RelayStats {
    /// A zeroed set of counters.
    pub fn new() -> RelayStats {
        RelayStats::default()
    }
}

/// Adds `n` to a counter owned by one writer.
#[inline]
pub(crate) fn bump(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_move_into_the_global_counters() {
        let session = RelayStats::new();
        let global = RelayStats::new();
        bump(&session.packets_a_to_b, 3);
        bump(&session.bytes_a_to_b, 516);
        let first = session.snapshot();
        global.add_snapshot(&first.since(&StatsSnapshot::default()));
        bump(&session.packets_a_to_b, 2);
        let second = session.snapshot();
        global.add_snapshot(&second.since(&first));
        let total = global.snapshot();
        assert_eq!((total.packets_a_to_b, total.bytes_a_to_b), (5, 516));
        assert_eq!(total.dropped_source, 0);
    }
}
