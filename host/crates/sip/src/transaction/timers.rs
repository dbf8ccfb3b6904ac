//! RFC 3261 timer values (§17, Table 4) and the durations derived from them.
//!
//! T1, T2 and T4 live here rather than in `crate::rfc` because the
//! transaction layer was written first; they are the only place these
//! numbers appear. Every machine takes a [`Timers`] so that tests and LAN
//! deployments can shrink them per transaction.

use std::time::{Duration, Instant};

use super::Reliability;

/// RTT estimate: the first retransmission interval of timers A, E and G.
pub const T1: Duration = Duration::from_millis(500);
/// Cap on the retransmission interval of non-INVITE requests and of INVITE
/// final responses (timers E and G).
pub const T2: Duration = Duration::from_secs(4);
/// Longest time a message may linger in the network: timers I and K.
pub const T4: Duration = Duration::from_secs(5);
/// Timer D over unreliable transports: "at least 32 seconds" (§17.1.1.2),
/// deliberately not tied to T1.
pub const TIMER_D: Duration = Duration::from_secs(32);
/// How long an INVITE server transaction waits for the TU's first response
/// before sending `100 Trying` itself (§17.2.1 "within 200 ms").
pub const TRYING_DELAY: Duration = Duration::from_millis(200);

/// Smallest retransmission interval ever scheduled. A zero T1 from a
/// misconfigured test would otherwise retransmit forever at one instant.
const MIN_INTERVAL: Duration = Duration::from_millis(1);

/// Timer values for one transaction. `Timers::default()` is RFC 3261.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timers {
    /// RTT estimate (default 500 ms).
    pub t1: Duration,
    /// Retransmission cap (default 4 s).
    pub t2: Duration,
    /// Maximum message lifetime in the network (default 5 s).
    pub t4: Duration,
    /// Timer D over unreliable transports (default 32 s).
    pub d: Duration,
    /// Delay before an INVITE server transaction sends its own `100 Trying`
    /// (default 200 ms). `Duration::ZERO` sends it at once.
    pub trying: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Self {
            t1: T1,
            t2: T2,
            t4: T4,
            d: TIMER_D,
            trying: TRYING_DELAY,
        }
    }
}

impl Timers {
    /// 64*T1: timers B, F, H, L, M and J over unreliable transports.
    pub fn transaction_timeout(&self) -> Duration {
        self.t1.saturating_mul(64)
    }

    /// Timer D: how long a completed INVITE client transaction keeps
    /// answering retransmitted final responses with its ACK.
    pub fn timer_d(&self, reliability: Reliability) -> Duration {
        self.unreliable_only(reliability, self.d)
    }

    /// Timer I: how long a confirmed INVITE server transaction absorbs ACKs.
    pub fn timer_i(&self, reliability: Reliability) -> Duration {
        self.unreliable_only(reliability, self.t4)
    }

    /// Timer J: how long a completed non-INVITE server transaction answers
    /// retransmitted requests.
    pub fn timer_j(&self, reliability: Reliability) -> Duration {
        self.unreliable_only(reliability, self.transaction_timeout())
    }

    /// Timer K: how long a completed non-INVITE client transaction absorbs
    /// retransmitted responses.
    pub fn timer_k(&self, reliability: Reliability) -> Duration {
        self.unreliable_only(reliability, self.t4)
    }

    /// Reliable transports never duplicate messages, so the wait states
    /// that only exist to absorb duplicates last zero seconds.
    fn unreliable_only(&self, reliability: Reliability, value: Duration) -> Duration {
        match reliability {
            Reliability::Unreliable => value,
            Reliability::Reliable => Duration::ZERO,
        }
    }
}

/// The name of a transaction timer, as RFC 3261 Table 4 and RFC 6026 call it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Timer {
    /// INVITE request retransmission (client, unreliable only).
    A,
    /// INVITE transaction timeout in Calling (client).
    B,
    /// Wait for response retransmissions after a non-2xx final (INVITE client).
    D,
    /// Non-INVITE request retransmission (client, unreliable only).
    E,
    /// Non-INVITE transaction timeout (client).
    F,
    /// INVITE non-2xx final response retransmission (server, unreliable only).
    G,
    /// Wait for the ACK to a non-2xx final response (INVITE server).
    H,
    /// Wait for ACK retransmissions (INVITE server, Confirmed).
    I,
    /// Wait for request retransmissions (non-INVITE server, Completed).
    J,
    /// Wait for response retransmissions (non-INVITE client, Completed).
    K,
    /// Wait in Accepted for INVITE retransmissions (INVITE server, RFC 6026).
    L,
    /// Wait in Accepted for 2xx retransmissions (INVITE client, RFC 6026).
    M,
    /// The TU did not answer an INVITE within [`Timers::trying`]; the
    /// transaction sends `100 Trying` itself.
    Trying,
}

/// A retransmission timer whose interval doubles after each firing, up to
/// an optional cap (A doubles without bound; E and G stop at T2).
#[derive(Clone, Copy, Debug)]
pub(super) struct Backoff {
    /// When the next retransmission is due.
    pub(super) at: Instant,
    /// The interval that produced `at`; the next one is twice this.
    interval: Duration,
    /// Largest interval ever used (T2), if any.
    cap: Option<Duration>,
}

impl Backoff {
    /// First firing after `interval` from `now`.
    pub(super) fn start(now: Instant, interval: Duration, cap: Option<Duration>) -> Self {
        let interval = interval.max(MIN_INTERVAL);
        Self {
            at: now + interval,
            interval,
            cap,
        }
    }

    /// Reschedules after a firing at `now` with twice the previous interval,
    /// capped. Counting from `now` rather than from `at` means a late owner
    /// gets one retransmission, not a burst of the ones it missed.
    pub(super) fn double(&mut self, now: Instant) {
        let mut next = self.interval.saturating_mul(2);
        if let Some(cap) = self.cap {
            next = next.min(cap);
        }
        self.fixed(now, next);
    }

    /// Reschedules after a firing at `now` with exactly `interval`.
    pub(super) fn fixed(&mut self, now: Instant, interval: Duration) {
        self.interval = interval.max(MIN_INTERVAL);
        self.at = now + self.interval;
    }
}

/// Earliest of the given deadlines, with the timer that owns it. On a tie
/// the first listed wins, so machines list their timeouts before their
/// retransmissions: a transaction that is timing out sends nothing more.
pub(super) fn earliest(timers: &[(Timer, Option<Instant>)]) -> Option<(Timer, Instant)> {
    let mut best: Option<(Timer, Instant)> = None;
    for &(timer, at) in timers {
        if let Some(at) = at
            && best.is_none_or(|(_, b)| at < b)
        {
            best = Some((timer, at));
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn defaults_are_rfc_3261_table_4() {
        let t = Timers::default();
        assert_eq!((t.t1, t.t2, t.t4), (ms(500), ms(4_000), ms(5_000)));
        assert_eq!(t.transaction_timeout(), ms(32_000));
    }

    #[test]
    fn wait_timers_are_zero_on_reliable_transports() {
        let t = Timers::default();
        let cases = [
            ("D", t.timer_d(Reliability::Unreliable), ms(32_000)),
            ("D", t.timer_d(Reliability::Reliable), Duration::ZERO),
            ("I", t.timer_i(Reliability::Unreliable), ms(5_000)),
            ("I", t.timer_i(Reliability::Reliable), Duration::ZERO),
            ("J", t.timer_j(Reliability::Unreliable), ms(32_000)),
            ("J", t.timer_j(Reliability::Reliable), Duration::ZERO),
            ("K", t.timer_k(Reliability::Unreliable), ms(5_000)),
            ("K", t.timer_k(Reliability::Reliable), Duration::ZERO),
        ];
        for (name, got, want) in cases {
            assert_eq!(got, want, "timer {name}");
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let t0 = Instant::now();
        let mut b = Backoff::start(t0, ms(500), Some(ms(4_000)));
        let mut fired = vec![];
        for _ in 0..7 {
            fired.push(b.at - t0);
            b.double(b.at);
        }
        let want = [500, 1_500, 3_500, 7_500, 11_500, 15_500, 19_500].map(ms);
        assert_eq!(fired, want);
    }

    #[test]
    fn zero_interval_still_moves_time_forward() {
        let t0 = Instant::now();
        let mut b = Backoff::start(t0, Duration::ZERO, None);
        assert!(b.at > t0);
        b.double(b.at);
        assert!(b.at > t0 + MIN_INTERVAL);
    }

    #[test]
    fn earliest_prefers_the_first_listed_on_a_tie() {
        let t0 = Instant::now();
        let got = earliest(&[
            (Timer::F, Some(t0 + ms(5))),
            (Timer::E, Some(t0 + ms(5))),
            (Timer::K, None),
        ]);
        assert_eq!(got, Some((Timer::F, t0 + ms(5))));
        assert_eq!(earliest(&[(Timer::K, None)]), None);
    }
}
