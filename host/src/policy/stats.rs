//! Counters of policy activity: decisions, failures by kind, fallbacks,
//! loads. Read by the status API and the metrics exporter.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// Labelled counters. One uncontended lock per decision; decisions take
/// tens of microseconds, the lock tens of nanoseconds.
#[derive(Debug, Default)]
pub struct PolicyStats {
    counts: Mutex<BTreeMap<(String, &'static str, &'static str), u64>>,
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
