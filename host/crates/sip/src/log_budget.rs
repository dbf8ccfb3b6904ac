//! [`LogBudget`]: at most so many log lines per interval about refused
//! requests, and a count of the ones left out.
//!
//! A flood of 20,000 unauthenticated INVITEs would otherwise write 20,000
//! lines, filling disks and burying everything else. Within each interval
//! the first `lines` refusals are logged; the rest only counted. The next
//! line logged after that carries the count, so the caller prints one
//! summary ("so many refusals not logged") before it. The count waits for
//! the next refusal: when a flood stops dead, its last suppressed refusals
//! are reported with the next one (the metrics count them all at once).

use std::time::{Duration, Instant};

/// What to do with one log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogPermit {
    /// Write the line; first a summary of `suppressed` lines left out since
    /// the last one written, when not 0.
    Log {
        /// Lines left out since the last one written.
        suppressed: u64,
    },
    /// Leave it out (it is counted).
    Suppress,
}

/// A budget of log lines per interval.
#[derive(Debug, Clone)]
pub struct LogBudget {
    /// Lines allowed per interval.
    lines: u32,
    interval: Duration,
    /// Start of the current interval; `None` before the first line.
    started: Option<Instant>,
    /// Lines written in the current interval.
    used: u32,
    /// Lines left out since the last one written.
    suppressed: u64,
}

impl LogBudget {
    /// At most `lines` lines per `interval`.
    pub fn new(lines: u32, interval: Duration) -> LogBudget {
        LogBudget {
            lines,
            interval,
            started: None,
            used: 0,
            suppressed: 0,
        }
    }

    /// Asks to write one line at `now`.
    pub fn permit(&mut self, now: Instant) -> LogPermit {
        let fresh = self
            .started
            .is_none_or(|start| now.saturating_duration_since(start) >= self.interval);
        if fresh {
            self.started = Some(now);
            self.used = 0;
        }
        if self.used >= self.lines {
            self.suppressed = self.suppressed.saturating_add(1);
            return LogPermit::Suppress;
        }
        self.used += 1;
        LogPermit::Log {
            suppressed: std::mem::take(&mut self.suppressed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_gets_its_budget_then_one_summary() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut budget = LogBudget::new(3, Duration::from_secs(1));
        // 20,000 refusals within 2 s (10 per ms).
        let permits: Vec<LogPermit> = (0..20_000).map(|i| budget.permit(at(i / 10))).collect();
        let written: Vec<(usize, u64)> = permits
            .iter()
            .enumerate()
            .filter_map(|(i, p)| match p {
                LogPermit::Log { suppressed } => Some((i, *suppressed)),
                LogPermit::Suppress => None,
            })
            .collect();
        // Three lines a second; the first of the second second reports the
        // 9,997 left out of the first.
        assert_eq!(
            written,
            [
                (0, 0),
                (1, 0),
                (2, 0),
                (10_000, 9_997),
                (10_001, 0),
                (10_002, 0)
            ]
        );
        // A refusal long after the flood reports the rest.
        assert_eq!(
            budget.permit(at(60_000)),
            LogPermit::Log { suppressed: 9_997 }
        );
        assert_eq!(budget.permit(at(60_001)), LogPermit::Log { suppressed: 0 });
    }

    #[test]
    fn a_trickle_is_logged_in_full() {
        let t0 = Instant::now();
        let mut budget = LogBudget::new(2, Duration::from_secs(1));
        for i in 0..100 {
            let now = t0 + Duration::from_millis(600 * i);
            assert_eq!(budget.permit(now), LogPermit::Log { suppressed: 0 });
        }
        // A zero budget writes nothing but keeps counting.
        let mut none = LogBudget::new(0, Duration::from_secs(1));
        for _ in 0..5 {
            assert_eq!(none.permit(t0), LogPermit::Suppress);
        }
    }
}
