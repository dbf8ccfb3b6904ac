//! The calls' own timers (each call core's next deadline, the session
//! timer), in one queue ordered by deadline.
//!
//! A call that ends leaves its timers in the queue: removing them one by one
//! would need an index per call. They are skipped when they come due, but
//! the maximum-duration timer of every call is `max_call_secs` (12 h by
//! default) away, so without pruning a gateway at 1,600 calls a second
//! would hold ~70 million dead entries (2 GB) before the first one expired.
//! [`CallTimers::prune`] drops the entries of calls that are gone once the
//! queue has doubled since it was last pruned: each entry is visited O(1)
//! times on average, and the queue stays within twice its live entries.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use super::call::CallKey;

/// Timers the calls own (the transactions own theirs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum CallTimer {
    /// The call core's next deadline (`trunkline_call::Call::poll_timeout`:
    /// the ring timeout, the longest duration, the REFER's wait, either
    /// leg's timers) may be due.
    Core,
    /// The session timer (RFC 4028) may be due.
    Session,
}

/// Below this many entries the queue is never pruned: a scan of a small
/// queue costs more than the memory it frees.
const MIN_PRUNE_LEN: usize = 1024;

/// Every call's pending timers.
#[derive(Debug)]
pub(crate) struct CallTimers {
    /// Deadlines, earliest first; entries of ended calls included until
    /// they come due or are pruned.
    queue: BinaryHeap<Reverse<(Instant, CallKey, CallTimer)>>,
    /// [`prune`](Self::prune) scans once the queue is longer than this:
    /// twice its length after the last scan.
    prune_at: usize,
}

impl Default for CallTimers {
    fn default() -> Self {
        Self {
            queue: BinaryHeap::new(),
            prune_at: MIN_PRUNE_LEN,
        }
    }
}

impl CallTimers {
    /// Fires `timer` for call `key` at `at`.
    pub(crate) fn arm(&mut self, at: Instant, key: CallKey, timer: CallTimer) {
        self.queue.push(Reverse((at, key, timer)));
    }

    /// The earliest deadline, stale entries included (waking for one is
    /// harmless: nothing is due and the loop sleeps again).
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.queue.peek().map(|Reverse((at, _, _))| *at)
    }

    /// The next timer due at or before `now`, removed from the queue. The
    /// caller skips those of calls that are gone.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(CallKey, CallTimer)> {
        match self.queue.peek() {
            Some(Reverse((at, _, _))) if *at <= now => self
                .queue
                .pop()
                .map(|Reverse((_, key, timer))| (key, timer)),
            _ => None,
        }
    }

    /// Entries queued, stale ones included (`/metrics`: a number that
    /// grows with the call rate instead of the calls in progress is a leak).
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    /// Called after a call is forgotten, with the number of calls left:
    /// once the queue has doubled since the last scan, drops every entry
    /// whose call `is_live` denies; with no call left, drops them all.
    pub(crate) fn prune(&mut self, calls_left: usize, is_live: impl Fn(CallKey) -> bool) {
        if calls_left == 0 {
            // A new queue, not `clear`: the old one's capacity is what a
            // busy hour needed.
            self.queue = BinaryHeap::new();
            self.prune_at = MIN_PRUNE_LEN;
            return;
        }
        if self.queue.len() <= self.prune_at {
            return;
        }
        self.queue.retain(|Reverse((_, key, _))| is_live(*key));
        self.prune_at = (2 * self.queue.len()).max(MIN_PRUNE_LEN);
        self.queue.shrink_to(self.prune_at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::time::Duration;

    #[test]
    fn due_timers_come_out_in_deadline_order() {
        let t0 = Instant::now();
        let mut timers = CallTimers::default();
        timers.arm(t0 + Duration::from_secs(3), 1, CallTimer::Core);
        timers.arm(t0 + Duration::from_secs(1), 2, CallTimer::Core);
        timers.arm(t0 + Duration::from_secs(2), 3, CallTimer::Session);
        assert_eq!(timers.next_deadline(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(timers.pop_due(t0), None, "nothing is due yet");
        let now = t0 + Duration::from_secs(2);
        assert_eq!(timers.pop_due(now), Some((2, CallTimer::Core)));
        assert_eq!(timers.pop_due(now), Some((3, CallTimer::Session)));
        assert_eq!(timers.pop_due(now), None);
        assert_eq!(timers.len(), 1);
    }

    /// The soak's leak: a steady rate of short calls, each arming a
    /// maximum-duration timer hours away. The queue must stay in
    /// proportion to the calls alive, not to the calls ever placed.
    #[test]
    fn ended_calls_timers_do_not_accumulate() {
        let t0 = Instant::now();
        let twelve_hours = Duration::from_secs(12 * 3600);
        let mut timers = CallTimers::default();
        let mut live: HashSet<CallKey> = HashSet::new();
        let mut peak = 0;
        // 100,000 calls, 200 alive at a time (a call ends 200 calls after
        // it started), three timers each.
        for key in 0..100_000u64 {
            live.insert(key);
            timers.arm(t0 + twelve_hours, key, CallTimer::Core);
            timers.arm(t0 + Duration::from_secs(60), key, CallTimer::Core);
            timers.arm(t0 + Duration::from_millis(500), key, CallTimer::Core);
            if key >= 200 {
                live.remove(&(key - 200));
                timers.prune(live.len(), |k| live.contains(&k));
            }
            peak = peak.max(timers.len());
        }
        // Alive: 200 calls x 3 entries; the queue may double past what the
        // last scan kept, or sit at the floor below which it is not scanned.
        assert!(
            peak <= 2 * MIN_PRUNE_LEN.max(3 * 200) + 3,
            "the queue grew to {peak} entries for 200 live calls"
        );
        // What is left belongs to live calls or is waiting for the next scan.
        let far = t0 + twelve_hours + Duration::from_secs(1);
        let mut due_live = 0;
        while let Some((key, _)) = timers.pop_due(far) {
            if live.contains(&key) {
                due_live += 1;
            }
        }
        assert_eq!(due_live, 3 * 200, "a live call's timer was pruned");
    }

    #[test]
    fn prune_keeps_every_live_timer_and_the_order() {
        let t0 = Instant::now();
        let mut timers = CallTimers::default();
        for key in 0..3000u64 {
            let at = t0 + Duration::from_millis(3000 - key);
            timers.arm(at, key, CallTimer::Session);
        }
        // Even keys ended.
        timers.prune(1500, |k| k % 2 == 1);
        assert_eq!(timers.len(), 1500);
        let mut last = None;
        let mut seen = 0;
        while let Some((key, _)) = timers.pop_due(t0 + Duration::from_secs(4)) {
            assert_eq!(key % 2, 1, "an ended call's timer survived the prune");
            // Deadlines fall as keys rise: keys come out in descending order.
            assert!(last.is_none_or(|l| key < l));
            last = Some(key);
            seen += 1;
        }
        assert_eq!(seen, 1500);
    }

    #[test]
    fn a_small_queue_is_not_scanned() {
        let t0 = Instant::now();
        let mut timers = CallTimers::default();
        for key in 0..10u64 {
            timers.arm(t0, key, CallTimer::Core);
        }
        timers.prune(3, |k| k < 3);
        assert_eq!(timers.len(), 10, "pruned below the floor");
    }

    #[test]
    fn the_last_call_gone_empties_the_queue() {
        let t0 = Instant::now();
        let mut timers = CallTimers::default();
        for key in 0..10u64 {
            timers.arm(t0 + Duration::from_secs(43_200), key, CallTimer::Core);
        }
        timers.prune(0, |_| false);
        assert_eq!(timers.len(), 0);
        assert_eq!(timers.next_deadline(), None);
    }
}
