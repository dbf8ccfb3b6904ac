//! Counters of policy activity: decisions, failures by kind, fallbacks,
//! loads, and how long decisions take. Read by the status API and the
//! metrics exporter.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the decision-latency buckets. A warm decision
/// takes tens of microseconds; the default deadline is 10 ms, so the
/// buckets are fine below it and coarse above (overruns end at the
/// deadline anyway).
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1,
];

/// Decision latencies of one policy and operation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LatencyHistogram {
    /// Decisions per bucket of [`LATENCY_BUCKETS`] (not cumulative); the
    /// last entry counts those slower than the last bound.
    pub buckets: [u64; LATENCY_BUCKETS.len() + 1],
    /// Sum of all latencies, seconds.
    pub sum: f64,
    /// Number of decisions.
    pub count: u64,
}

impl LatencyHistogram {
    fn observe(&mut self, took: Duration) {
        let secs = took.as_secs_f64();
        let i = LATENCY_BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[i] += 1;
        self.sum += secs;
        self.count += 1;
    }
}

/// Labelled counters. One uncontended lock per decision; decisions take
/// tens of microseconds, the lock tens of nanoseconds.
#[derive(Debug, Default)]
pub struct PolicyStats {
    counts: Mutex<BTreeMap<(String, &'static str, &'static str), u64>>,
    latency: Mutex<BTreeMap<(String, &'static str), LatencyHistogram>>,
}

impl PolicyStats {
    fn add(&self, policy: &str, what: &'static str, label: &'static str) {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        *c.entry((policy.to_owned(), what, label)).or_default() += 1;
    }

    /// A decision ran: `op` is `route` or `conclude`, `result` `ok` or an
    /// error kind.
    pub fn decision(&self, policy: &str, op: &'static str, result: &'static str) {
        self.add(policy, op, result);
    }

    /// How long a decision (`route` or `conclude`) took, whatever its
    /// result: instantiation and the guest's run, not the fallback.
    pub fn decision_latency(&self, policy: &str, op: &'static str, took: Duration) {
        let mut l = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        match l.get_mut(&(policy.to_owned(), op)) {
            Some(h) => h.observe(took),
            None => {
                let mut h = LatencyHistogram::default();
                h.observe(took);
                l.insert((policy.to_owned(), op), h);
            }
        }
    }

    /// Every latency histogram as `(policy, op, histogram)`.
    pub fn latencies(&self) -> Vec<(String, &'static str, LatencyHistogram)> {
        let l = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        l.iter()
            .map(|((p, op), h)| (p.clone(), *op, h.clone()))
            .collect()
    }

    /// A trunk's fallback was used instead of a policy answer.
    pub fn fallback(&self, policy: &str, op: &'static str) {
        self.add(policy, "fallback", op);
    }

    /// A load event: `loaded`, `reloaded` or `unloaded`.
    pub fn load_event(&self, policy: &str, event: &'static str) {
        self.add(policy, "load", event);
    }

    /// A file failed to load, by error kind.
    pub fn load_failure(&self, policy: &str, kind: &'static str) {
        self.add(policy, "load-failure", kind);
    }

    /// The value of one counter (0 when never incremented).
    pub fn get(&self, policy: &str, what: &str, label: &str) -> u64 {
        let c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        c.iter()
            .find(|((p, w, l), _)| p == policy && *w == what && *l == label)
            .map_or(0, |(_, v)| *v)
    }

    /// Every counter as `(policy, what, label, value)`.
    pub fn snapshot(&self) -> Vec<(String, &'static str, &'static str, u64)> {
        let c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        c.iter()
            .map(|((p, w, l), v)| (p.clone(), *w, *l, *v))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_land_in_their_buckets() {
        let stats = PolicyStats::default();
        for micros in [10, 30, 30, 900, 200_000] {
            stats.decision_latency("p", "route", Duration::from_micros(micros));
        }
        stats.decision_latency("p", "conclude", Duration::from_micros(60));
        let all = stats.latencies();
        assert_eq!(all.len(), 2);
        let (_, op, route) = all.iter().find(|(_, op, _)| *op == "route").unwrap();
        assert_eq!(*op, "route");
        assert_eq!(route.count, 5);
        assert_eq!(route.buckets[0], 1, "10 µs ≤ 25 µs");
        assert_eq!(route.buckets[1], 2, "30 µs ≤ 50 µs");
        assert_eq!(route.buckets[5], 1, "900 µs ≤ 1 ms");
        assert_eq!(
            route.buckets[LATENCY_BUCKETS.len()],
            1,
            "200 ms is past every bound"
        );
        assert!((route.sum - 0.200_97).abs() < 1e-9, "{}", route.sum);
    }
}
