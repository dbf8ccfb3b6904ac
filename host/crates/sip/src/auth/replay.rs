//! Nonce-count replay detection (RFC 7616 §3.3 `nc`, §5.10), bounded in
//! memory.
//!
//! Stateless nonces stay valid for their whole lifetime, and a `response`
//! covers the method and Request-URI but not the Call-ID: anyone who sniffs
//! one authenticated INVITE on plain UDP could place calls with it for five
//! minutes. Remembering which `nc` values each nonce has used closes that.
//!
//! Why the table stays small and safe:
//! - An entry is only created after the response verified, so only peers
//!   that know a password can fill it; unauthenticated floods cost nothing.
//! - Entries leave when their nonce expires (an expired nonce is refused
//!   anyway), and when the table is full the oldest nonce is evicted. Every
//!   nonce at or below the newest evicted one is then refused as stale
//!   unless it is still in the table, so eviction can cost a peer one extra
//!   round trip but never lets a replay through.
//! - Per nonce a 64-wide window (as in IPsec anti-replay) accepts counts
//!   arriving a little out of order, which parallel requests over UDP do.
//!
//! Retransmissions never get here: the transaction layer absorbs them before
//! admission, so the same `nc` twice really is a replay.

use super::nonce::NonceId;
use std::collections::BTreeMap;

/// Width of the out-of-order window per nonce.
const WINDOW: u32 = 64;

/// Which nonce counts each nonce has used.
#[derive(Debug)]
pub(crate) struct NonceCounts {
    /// Per nonce: the highest count seen and a bitmap of the `WINDOW` counts
    /// below and including it (bit `i` = `highest - i` was used).
    entries: BTreeMap<NonceId, (u32, u64)>,
    /// The most entries kept; at least 1.
    capacity: usize,
    /// The newest nonce evicted to make room; nonces up to it that are not
    /// in the table may have been seen, so they are refused.
    evicted_through: Option<NonceId>,
}

impl NonceCounts {
    pub(crate) fn new(capacity: usize) -> NonceCounts {
        NonceCounts {
            entries: BTreeMap::new(),
            capacity: capacity.max(1),
            evicted_through: None,
        }
    }

    /// Records that `nonce` was used with count `nc`; `false` when that
    /// count was used before, is too far behind, is 0, or cannot be told
    /// apart from a replay after an eviction. `now_secs` and `lifetime_secs`
    /// drop expired entries.
    pub(crate) fn record(
        &mut self,
        nonce: NonceId,
        nc: u32,
        now_secs: u64,
        lifetime_secs: u64,
    ) -> bool {
        while let Some((oldest, _)) = self.entries.first_key_value() {
            if now_secs.saturating_sub(oldest.issued) <= lifetime_secs {
                break;
            }
            self.entries.pop_first();
        }
        if nc == 0 {
            return false;
        }
        if let Some((highest, seen)) = self.entries.get_mut(&nonce) {
            return mark(highest, seen, nc);
        }
        if self.evicted_through.is_some_and(|mark| nonce <= mark) {
            return false;
        }
        if self.entries.len() >= self.capacity
            && let Some((&oldest, _)) = self.entries.first_key_value()
        {
            // A nonce older than all those held would be the one evicted:
            // refuse it (the peer gets a fresh nonce) and keep the table.
            if nonce < oldest {
                return false;
            }
            self.entries.pop_first();
            self.evicted_through = Some(self.evicted_through.map_or(oldest, |m| m.max(oldest)));
        }
        self.entries.insert(nonce, (nc, 1));
        true
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

/// Marks `nc` in a window; `false` if it was already marked or fell out.
fn mark(highest: &mut u32, seen: &mut u64, nc: u32) -> bool {
    if nc > *highest {
        let shift = nc - *highest;
        *seen = if shift >= WINDOW { 0 } else { *seen << shift };
        *seen |= 1;
        *highest = nc;
        return true;
    }
    let behind = *highest - nc;
    if behind >= WINDOW {
        return false;
    }
    let bit = 1u64 << behind;
    if *seen & bit != 0 {
        return false;
    }
    *seen |= bit;
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(issued: u64, salt: u8) -> NonceId {
        NonceId {
            issued,
            salt: [salt; 8],
        }
    }

    #[test]
    fn counts_in_one_nonce() {
        // (nc, accepted)
        let table = [
            (1, true),
            (1, false),
            (2, true),
            (5, true),
            (3, true),
            (3, false),
            (0, false),
            (100, true),
            (37, true),
            (36, false),
            (100, false),
            (u32::MAX, true),
            (u32::MAX, false),
        ];
        let mut counts = NonceCounts::new(16);
        let nonce = id(1000, 1);
        for (step, (nc, accepted)) in table.into_iter().enumerate() {
            assert_eq!(
                counts.record(nonce, nc, 1000, 300),
                accepted,
                "step {step}: nc {nc}"
            );
        }
    }

    #[test]
    fn nonces_are_independent_and_expire() {
        let mut counts = NonceCounts::new(16);
        assert!(counts.record(id(1000, 1), 1, 1000, 300));
        assert!(counts.record(id(1000, 2), 1, 1000, 300));
        assert!(!counts.record(id(1000, 1), 1, 1100, 300));
        assert_eq!(counts.len(), 2);
        // Once expired they are dropped (and the nonce check refuses them).
        assert!(counts.record(id(1400, 3), 1, 1400, 300));
        assert_eq!(counts.len(), 1);
    }

    #[test]
    fn eviction_never_lets_a_replay_through() {
        let mut counts = NonceCounts::new(2);
        assert!(counts.record(id(10, 1), 1, 20, 300));
        assert!(counts.record(id(11, 1), 1, 20, 300));
        // Full: the oldest (10) goes to make room for 12.
        assert!(counts.record(id(12, 1), 1, 20, 300));
        assert_eq!(counts.len(), 2);
        // Its replay is refused, and so is any unknown nonce at or below it.
        assert!(!counts.record(id(10, 1), 1, 20, 300));
        assert!(!counts.record(id(9, 7), 1, 20, 300));
        // Nonces still held keep working; newer ones are accepted.
        assert!(counts.record(id(11, 1), 2, 20, 300));
        assert!(counts.record(id(13, 1), 1, 20, 300));
        // 13 evicted 11: from now on 11 is refused, whatever its count.
        assert!(!counts.record(id(11, 1), 3, 20, 300));
        assert_eq!(counts.len(), 2);
        // A nonce older than everything held, arriving when full, is refused.
        let mut counts = NonceCounts::new(1);
        assert!(counts.record(id(50, 1), 1, 60, 300));
        assert!(!counts.record(id(40, 1), 1, 60, 300));
    }
}
