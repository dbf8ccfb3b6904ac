//! How many server transactions may be open at once: in total and per
//! source address.
//!
//! A server transaction outlives its request by up to 64·T1 (32 s) on UDP,
//! waiting out retransmissions, so an attacker's memory bill is rate × 32 s.
//! The [`Transactions`](super::Transactions) table counts every server
//! transaction against the address its request came from and refuses new
//! ones past these caps; the owner then answers statelessly (or drops the
//! request), and nothing about it is kept.
//!
//! The defaults are sized for a busy trunk. A call leaves two server
//! transactions held 32 s after their answer (its INVITE, RFC 6026 Timer L,
//! and its BYE, Timer J), so a source sending N calls a second holds 64·N.
//! 40,000 per source is 600 calls a second from one Five9 edge; 100,000 in
//! all is 1,500 a second, a few hundred MB of held messages at most.

use std::collections::HashMap;
use std::net::IpAddr;

/// The caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Server transactions open at once, from every source together.
    pub total: usize,
    /// Server transactions open at once from one source IP.
    pub per_source: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            total: 100_000,
            per_source: 40_000,
        }
    }
}

/// Which cap a new server transaction would break.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Overload {
    /// [`ServerLimits::total`].
    #[error("too many server transactions open")]
    Total,
    /// [`ServerLimits::per_source`] for this request's source.
    #[error("too many server transactions open for {0}")]
    Source(IpAddr),
}

/// Counts open server transactions per source. Bounded by the caps: a
/// source has an entry only while it has transactions open.
#[derive(Debug, Default)]
pub(crate) struct Budget {
    limits: ServerLimits,
    total: usize,
    per_source: HashMap<IpAddr, usize>,
}

impl Budget {
    pub(crate) fn new(limits: ServerLimits) -> Budget {
        Budget {
            limits,
            ..Budget::default()
        }
    }

    pub(crate) fn set_limits(&mut self, limits: ServerLimits) {
        self.limits = limits;
    }

    /// Whether one more transaction from `source` fits.
    pub(crate) fn check(&self, source: IpAddr) -> Result<(), Overload> {
        if self.total >= self.limits.total {
            return Err(Overload::Total);
        }
        let open = self.per_source.get(&source).copied().unwrap_or(0);
        if open >= self.limits.per_source {
            return Err(Overload::Source(source));
        }
        Ok(())
    }

    /// Counts one more transaction from `source`, if it fits.
    pub(crate) fn take(&mut self, source: IpAddr) -> Result<(), Overload> {
        self.check(source)?;
        self.total += 1;
        *self.per_source.entry(source).or_insert(0) += 1;
        Ok(())
    }

    /// One transaction from `source` ended.
    pub(crate) fn give_back(&mut self, source: IpAddr) {
        self.total = self.total.saturating_sub(1);
        if let Some(open) = self.per_source.get_mut(&source) {
            *open -= 1;
            if *open == 0 {
                self.per_source.remove(&source);
            }
        }
    }

    /// Open transactions from `source`.
    pub(crate) fn open_from(&self, source: IpAddr) -> usize {
        self.per_source.get(&source).copied().unwrap_or(0)
    }

    /// Open transactions in all.
    pub(crate) fn open(&self) -> usize {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    #[test]
    fn per_source_cap_leaves_other_sources_alone() {
        let mut b = Budget::new(ServerLimits {
            total: 10,
            per_source: 3,
        });
        for _ in 0..3 {
            b.take(ip(1)).expect("fits");
        }
        assert_eq!(b.take(ip(1)), Err(Overload::Source(ip(1))));
        b.take(ip(2)).expect("another source fits");
        b.give_back(ip(1));
        b.take(ip(1)).expect("room again");
        assert_eq!(b.open_from(ip(1)), 3);
        assert_eq!(b.open(), 4);
    }

    #[test]
    fn total_cap_and_entries_go_when_empty() {
        let mut b = Budget::new(ServerLimits {
            total: 2,
            per_source: 5,
        });
        b.take(ip(1)).expect("fits");
        b.take(ip(2)).expect("fits");
        assert_eq!(b.take(ip(3)), Err(Overload::Total));
        b.give_back(ip(1));
        b.give_back(ip(2));
        assert!(b.per_source.is_empty());
        assert_eq!(b.open(), 0);
        // Giving back more than was taken never underflows.
        b.give_back(ip(9));
        assert_eq!(b.open(), 0);
    }
}
