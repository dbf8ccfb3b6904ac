//! Branch and tag generation (RFC 3261 §8.1.1.7, §19.3).
//!
//! Branches must be unique across space and time, and should not be
//! guessable: a peer that can predict our next branch can CANCEL or answer a
//! transaction it never saw. The randomness comes from SipHash keyed with the
//! per-process random keys std already draws from the OS for `HashMap`,
//! applied to a process-wide counter; that keeps this crate free of I/O and of
//! extra dependencies while giving values nobody outside can predict.

use crate::rfc::BRANCH_MAGIC_COOKIE;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn random_u64() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.finish()
}

/// A new branch: the magic cookie and 96 random bits in hex
/// (`z9hG4bK` + 24 hex digits).
pub fn new_branch() -> String {
    format!(
        "{BRANCH_MAGIC_COOKIE}{:016x}{:08x}",
        random_u64(),
        random_u64() as u32
    )
}

/// A new From/To tag: 64 random bits in hex. RFC 3261 §19.3 asks for at
/// least 32.
pub fn new_tag() -> String {
    format!("{:016x}", random_u64())
}

/// Whether a branch was made by an RFC 3261 peer (starts with the magic
/// cookie, which is case-sensitive), so it alone identifies a transaction.
pub fn is_rfc3261_branch(branch: &str) -> bool {
    branch.len() > BRANCH_MAGIC_COOKIE.len() && branch.starts_with(BRANCH_MAGIC_COOKIE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn branches_carry_the_cookie_and_do_not_repeat() {
        let branches: HashSet<String> = (0..10_000).map(|_| new_branch()).collect();
        assert_eq!(branches.len(), 10_000);
        for branch in branches.iter().take(50) {
            assert!(is_rfc3261_branch(branch), "{branch}");
            assert_eq!(branch.len(), 7 + 24, "{branch}");
            assert!(super::super::params::is_token(branch), "{branch}");
        }
    }

    #[test]
    fn tags_do_not_repeat() {
        let tags: HashSet<String> = (0..10_000).map(|_| new_tag()).collect();
        assert_eq!(tags.len(), 10_000);
    }

    #[test]
    fn cookie_detection() {
        let table = [
            ("z9hG4bK776asdhds", true),
            ("z9hG4bK", false),
            ("Z9HG4BK776", false),
            ("776asdhds", false),
            ("", false),
        ];
        for (branch, expected) in table {
            assert_eq!(is_rfc3261_branch(branch), expected, "{branch:?}");
        }
    }
}
