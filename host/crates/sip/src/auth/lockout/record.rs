//! The record of one source or username, and the bounded table of them.

use super::LockoutConfig;
use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

/// The failures of one source or username. Times in unix milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Record {
    /// When the first failure counted in `in_window` happened.
    pub(super) window_start: u64,
    /// Failures and early attempts since `window_start`.
    pub(super) in_window: u32,
    /// Failures since the last quiet period of a block's length: the
    /// backoff level.
    pub(super) strikes: u32,
    /// When the last failure happened (early attempts do not move it).
    pub(super) last_failure: u64,
    /// End of the running block; 0 when not blocked.
    pub(super) blocked_until: u64,
}

impl Record {
    /// Lets time pass: ends a block, closes the window, decays the backoff.
    pub(super) fn refresh(&mut self, now: u64, config: &LockoutConfig) {
        if self.blocked_until != 0 {
            if now >= self.blocked_until {
                *self = Record::default();
            }
            return;
        }
        if self.in_window > 0 && now.saturating_sub(self.window_start) >= config.window_ms() {
            self.in_window = 0;
        }
        if self.strikes > 0 && now.saturating_sub(self.last_failure) >= config.block_ms() {
            self.strikes = 0;
        }
    }

    pub(super) fn blocked(&self) -> bool {
        self.blocked_until != 0
    }

    pub(super) fn backing_off(&self, now: u64, config: &LockoutConfig) -> bool {
        let delay = config.delay_ms(self.strikes);
        delay > 0 && now < self.last_failure.saturating_add(delay)
    }

    /// Whether this source failed within the last block's length.
    pub(super) fn failed_lately(&self) -> bool {
        self.strikes > 0 || self.blocked()
    }

    /// Nothing left to remember.
    pub(super) fn idle(&self) -> bool {
        self.in_window == 0 && self.strikes == 0 && !self.blocked()
    }

    /// Counts a failure (`verified`) or an early attempt; true when this
    /// starts a block.
    pub(super) fn count(&mut self, now: u64, config: &LockoutConfig, verified: bool) -> bool {
        if self.blocked() {
            // A username block is not extended by sources that fail on it
            // for the first time.
            return false;
        }
        if self.in_window == 0 {
            self.window_start = now;
        }
        self.in_window = self.in_window.saturating_add(1);
        if verified {
            self.strikes = self.strikes.saturating_add(1);
            self.last_failure = now;
        }
        if self.in_window >= config.failures {
            self.blocked_until = now.saturating_add(config.block_ms());
            return true;
        }
        false
    }
}

/// Records by key, at most `capacity`, the oldest evicted first.
#[derive(Debug)]
pub(super) struct Table<K> {
    /// Key -> (record, insertion number).
    pub(super) entries: HashMap<K, (Record, u64)>,
    /// Keys in insertion order; an item whose number no longer matches its
    /// entry is stale and skipped.
    pub(super) order: VecDeque<(K, u64)>,
    next: u64,
    capacity: usize,
}

impl<K: Hash + Eq + Copy> Table<K> {
    pub(super) fn new(capacity: usize) -> Table<K> {
        Table {
            entries: HashMap::new(),
            order: VecDeque::new(),
            next: 0,
            capacity: capacity.max(1),
        }
    }

    /// The key's record after `refresh`; idle records are dropped.
    pub(super) fn current(
        &mut self,
        key: K,
        now: u64,
        config: &LockoutConfig,
    ) -> Option<&mut Record> {
        let (record, _) = self.entries.get_mut(&key)?;
        record.refresh(now, config);
        if record.idle() {
            self.entries.remove(&key);
            return None;
        }
        self.entries.get_mut(&key).map(|(record, _)| record)
    }

    /// The key's record, created (evicting the oldest when full) if absent.
    pub(super) fn entry(&mut self, key: K, now: u64, config: &LockoutConfig) -> &mut Record {
        if self.current(key, now, config).is_none() {
            while self.entries.len() >= self.capacity {
                let Some((old, n)) = self.order.pop_front() else {
                    break;
                };
                if self.entries.get(&old).is_some_and(|(_, m)| *m == n) {
                    self.entries.remove(&old);
                }
            }
            // Stale queue items pile up when records go idle; compacting at
            // twice the capacity keeps the queue bounded at O(1) amortised.
            if self.order.len() >= self.capacity.saturating_mul(2) {
                let entries = &self.entries;
                self.order
                    .retain(|(k, n)| entries.get(k).is_some_and(|(_, m)| m == n));
            }
            let n = self.next;
            self.next += 1;
            self.order.push_back((key, n));
            self.entries.insert(key, (Record::default(), n));
        }
        &mut self
            .entries
            .get_mut(&key)
            .unwrap_or_else(|| unreachable!("inserted above"))
            .0
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_evicts_the_oldest() {
        let config = LockoutConfig::default();
        let mut table = Table::new(2);
        table.entry(1u8, 0, &config).count(0, &config, true);
        table.entry(2, 0, &config).count(0, &config, true);
        table.entry(3, 0, &config).count(0, &config, true);
        assert_eq!(table.len(), 2);
        assert!(table.current(1, 0, &config).is_none());
        assert_eq!(table.current(3, 0, &config).map(|r| r.strikes), Some(1));
        // Counting again reuses the record.
        table.entry(3, 1, &config).count(1, &config, true);
        assert_eq!(table.current(3, 1, &config).map(|r| r.strikes), Some(2));
    }
}
