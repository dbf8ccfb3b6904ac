//! Our 2xx to an INVITE, re-sent over an unreliable transport until the
//! ACK comes (RFC 3261 §13.3.1.4): first after T1, the interval doubling
//! up to T2, given up 64*T1 after the 2xx was first sent. The INVITE
//! server transaction is gone by then (RFC 6026 keeps it only to absorb
//! retransmitted INVITEs), so the UA core owns this timer.

use std::time::{Duration, Instant};

use crate::transaction::Timers;

/// What a due retransmission timer asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OkStep {
    /// Send the 2xx again.
    Resend,
    /// 64*T1 passed without an ACK: the dialog is to be ended with a BYE
    /// (§13.3.1.4).
    GiveUp,
}

/// The retransmission schedule of one 2xx (see the module docs).
#[derive(Debug, Clone)]
pub struct OkRetransmit {
    next: Option<Instant>,
    interval: Duration,
    t2: Duration,
    give_up: Instant,
}

impl OkRetransmit {
    /// The schedule of a 2xx first sent at `now`.
    pub fn new(now: Instant, timers: &Timers) -> OkRetransmit {
        let t1 = timers.t1.max(Duration::from_millis(1));
        OkRetransmit {
            next: Some(now + t1),
            interval: t1,
            t2: timers.t2.max(t1),
            give_up: now + t1 * 64,
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) is next due; `None`
    /// once acknowledged or given up.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next
    }

    /// The timer fired at `now`: what to do, or nothing if it is not due
    /// (an early or stale wake-up).
    pub fn handle_timeout(&mut self, now: Instant) -> Option<OkStep> {
        let next = self.next?;
        if now < next {
            return None;
        }
        if now >= self.give_up {
            self.next = None;
            return Some(OkStep::GiveUp);
        }
        self.interval = (self.interval * 2).min(self.t2);
        // From now, not from the missed deadline: a task that woke late
        // sends once, not a burst of the retransmissions it slept through.
        self.next = Some((now + self.interval).min(self.give_up));
        Some(OkStep::Resend)
    }

    /// The ACK came: no more retransmissions.
    pub fn acked(&mut self) {
        self.next = None;
    }

    /// Whether the schedule still runs.
    pub fn is_running(&self) -> bool {
        self.next.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the schedule to its end on a fake clock, firing exactly at each
    /// deadline; returns the resend times (ms after the 2xx) and the time
    /// it gave up.
    fn run(timers: &Timers) -> (Vec<u64>, u64) {
        let t0 = Instant::now();
        let mut s = OkRetransmit::new(t0, timers);
        let mut sent = Vec::new();
        for _ in 0..1000 {
            let at = s.poll_timeout().expect("runs until it gives up");
            assert_eq!(
                s.handle_timeout(at - Duration::from_millis(1)),
                None,
                "not due yet"
            );
            let ms = (at - t0).as_millis() as u64;
            match s.handle_timeout(at) {
                Some(OkStep::Resend) => sent.push(ms),
                Some(OkStep::GiveUp) => {
                    assert_eq!(s.poll_timeout(), None);
                    return (sent, ms);
                }
                None => panic!("due at {ms} ms but did nothing"),
            }
        }
        panic!("never gave up");
    }

    #[test]
    fn doubles_from_t1_to_t2_and_gives_up_at_64_t1() {
        let (sent, gave_up) = run(&Timers::default());
        // 0.5, 1, 2, then every 4 s: at 0.5, 1.5, 3.5, 7.5, 11.5, ... 31.5 s.
        let mut want = vec![500, 1500, 3500];
        let mut at = 3500;
        while at + 4000 < 32_000 {
            at += 4000;
            want.push(at);
        }
        assert_eq!(sent, want);
        assert_eq!(gave_up, 32_000);
    }

    #[test]
    fn a_short_t1_shrinks_the_whole_schedule() {
        let timers = Timers {
            t1: Duration::from_millis(10),
            ..Timers::default()
        };
        let (sent, gave_up) = run(&timers);
        assert_eq!(sent, vec![10, 30, 70, 150, 310, 630]);
        assert_eq!(gave_up, 640);
    }

    #[test]
    fn the_ack_stops_it() {
        let t0 = Instant::now();
        let mut s = OkRetransmit::new(t0, &Timers::default());
        assert_eq!(
            s.handle_timeout(t0 + Duration::from_millis(500)),
            Some(OkStep::Resend)
        );
        s.acked();
        assert!(!s.is_running());
        assert_eq!(s.poll_timeout(), None);
        assert_eq!(s.handle_timeout(t0 + Duration::from_secs(40)), None);
    }

    #[test]
    fn a_late_wake_up_sends_once_and_keeps_the_give_up_time() {
        let t0 = Instant::now();
        let mut s = OkRetransmit::new(t0, &Timers::default());
        // The task was busy for 10 s: one resend, not a burst.
        assert_eq!(
            s.handle_timeout(t0 + Duration::from_secs(10)),
            Some(OkStep::Resend)
        );
        assert_eq!(s.handle_timeout(t0 + Duration::from_secs(10)), None);
        assert_eq!(
            s.handle_timeout(t0 + Duration::from_secs(33)),
            Some(OkStep::GiveUp)
        );
    }
}
