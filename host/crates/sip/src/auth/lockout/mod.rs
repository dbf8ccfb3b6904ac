//! Online password guessing: failures counted per source address and per
//! username across Call-IDs, exponential backoff, then a temporary block.
//!
//! Every digest attempt is one password guess whatever the answer, so the
//! only defence against guessing online is to verify few attempts. The
//! rules, per source address and per (realm, username):
//! - A failure is a verified response that was wrong (any
//!   [`Verification::Invalid`](super::Verification::Invalid)). Missing or
//!   stale credentials are not failures.
//! - Backoff: after the k-th failure, once k reaches `failures / 2`, the
//!   next attempt is only verified when `2^(k - failures/2)` seconds have
//!   passed since that failure (1 s, 2 s, 4 s, ...; never more than a
//!   block); the failures before cost no waiting. An
//!   attempt before then is refused with a bare `403` without verifying
//!   anything (even the right password), which is cheap, and it counts
//!   toward the block: a client that does not wait is not a user.
//! - Block: `failures` counted (failures and refused early attempts) within
//!   `window` of the first one block for `block`. A blocked source gets
//!   `403` for every INVITE, credentials or not, before any hashing; the
//!   right password is refused too. Nothing during a block extends it;
//!   when it ends the record starts afresh.
//! - The backoff level decays only after `block` without a failure, so
//!   waiting out the window does not buy a new set of free guesses.
//!
//! With the defaults (10 failures in 60 s, blocked 900 s) a patient
//! attacker who respects the backoff reaches the 10th failure 31 s in and
//! is blocked: 10 guesses per 931 s, 40 in the first hour and about 39 an
//! hour after, per source. Hammering gets 20 an hour (5 free guesses, then
//! its early attempts block it), and staying under the block by pausing
//! for the window 30 (the backoff keeps doubling). The test
//! `guesses_per_hour_with_the_defaults` plays these strategies.
//!
//! # Usernames, and locking out the real peer
//! Per-username counts catch an attacker spread over many addresses. But a
//! username lock that refused everyone would let anyone lock the real peer
//! out by failing on purpose with its username. So the username rules
//! (backoff and block) only apply to sources that have failed themselves
//! within the last `block` seconds; a source with a clean record is
//! verified as usual. Each address of a botnet thus gets about one guess
//! per `block` on a username under attack, and the real peer, which does
//! not fail, is never refused for it.
//!
//! Known limits: over UDP a source address can be forged, and a wrong
//! answer can be sent with any nonce, so an attacker able to spoof the real
//! peer's address can get that address blocked (restrict such trunks with
//! `allow`, or use TCP/TLS). Peers behind one address share its record.
//! Time comes from the wall clock: a clock stepped back lengthens running
//! blocks by the step, one stepped forward shortens them.
//!
//! # Memory
//! Two tables, each capped at `capacity` records and evicting the oldest;
//! usernames are stored as keyed hashes, so a 60 kB username costs 8 bytes.
//! A collision only merges two counters. An evicted record costs an
//! attacker's address one fresh set of free guesses, never more.

mod record;

use record::Table;
use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::net::IpAddr;
use std::time::Duration;

/// The lockout settings of one trunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockoutConfig {
    /// Failures within `window` that start a block; 0 turns the lockout
    /// off (left: the per-Call-ID 403 only).
    pub failures: u32,
    /// The window the failures are counted in.
    pub window: Duration,
    /// How long a block lasts, and how long a source must go without a
    /// failure for its backoff to decay.
    pub block: Duration,
    /// Records kept per table (sources, usernames).
    pub capacity: usize,
}

impl Default for LockoutConfig {
    /// 10 failures per minute, then blocked for 15 minutes; 4096 records.
    fn default() -> Self {
        LockoutConfig {
            failures: 10,
            window: Duration::from_secs(60),
            block: Duration::from_secs(900),
            capacity: 4096,
        }
    }
}

impl LockoutConfig {
    fn free_failures(&self) -> u32 {
        (self.failures / 2).max(1)
    }

    fn window_ms(&self) -> u64 {
        millis(self.window)
    }

    fn block_ms(&self) -> u64 {
        millis(self.block).max(1)
    }

    /// How long after the `strikes`-th failure the next attempt must wait;
    /// never more than a block.
    fn delay_ms(&self, strikes: u32) -> u64 {
        let free = self.free_failures();
        if strikes < free {
            return 0;
        }
        let exponent = (strikes - free).min(40);
        (1000u64 << exponent).min(self.block_ms())
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Whose record refused a request or started a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The source address.
    Source,
    /// The username (realm and username) the credentials name.
    User,
}

/// Why the lockout refused a request without verifying it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Blocked: every request is refused until the block ends.
    Blocked(Scope),
    /// Too soon after the last failure; counts toward the block.
    Backoff(Scope),
}

/// Blocks that one request started, for the log and the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Blocks {
    /// The source address is now blocked.
    pub source: bool,
    /// The username is now blocked (for sources that failed).
    pub user: bool,
}

impl Blocks {
    /// Whether any block started.
    pub fn any(self) -> bool {
        self.source || self.user
    }
}

/// The lockout's answer before verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gate {
    /// Verify the request.
    Open,
    /// Refuse it with a bare 403.
    Refuse(Refusal, Blocks),
}

/// Failure records of one trunk.
#[derive(Debug)]
pub(crate) struct Lockout {
    config: LockoutConfig,
    /// Keys username hashes, unpredictable to peers.
    hasher: RandomState,
    sources: Table<IpAddr>,
    users: Table<u64>,
}

impl Lockout {
    pub(crate) fn new(config: LockoutConfig) -> Lockout {
        let capacity = config.capacity;
        Lockout {
            config,
            hasher: RandomState::new(),
            sources: Table::new(capacity),
            users: Table::new(capacity),
        }
    }

    fn off(&self) -> bool {
        self.config.failures == 0
    }

    fn user_key(&self, realm: &str, username: &str) -> u64 {
        let mut hasher = self.hasher.build_hasher();
        realm.hash(&mut hasher);
        username.hash(&mut hasher);
        hasher.finish()
    }

    /// Decides before verification. `user` is the (realm, username) the
    /// credentials name; `credentials` whether the request carries any
    /// (a request without them only gets a challenge, so backoff does not
    /// refuse it; a block does).
    pub(crate) fn check(
        &mut self,
        source: IpAddr,
        user: Option<(&str, &str)>,
        credentials: bool,
        now_ms: u64,
    ) -> Gate {
        if self.off() {
            return Gate::Open;
        }
        let config = &self.config;
        let source = source.to_canonical();
        let Some(record) = self.sources.current(source, now_ms, config) else {
            // A clean source: username locks do not apply to it.
            return Gate::Open;
        };
        if record.blocked() {
            return Gate::Refuse(Refusal::Blocked(Scope::Source), Blocks::default());
        }
        if !credentials {
            return Gate::Open;
        }
        let source_backoff = record.backing_off(now_ms, config);
        let failed_lately = record.failed_lately();
        let user_key = user.map(|(realm, name)| self.user_key(realm, name));
        let mut refusal = source_backoff.then_some(Refusal::Backoff(Scope::Source));
        if failed_lately
            && let Some(key) = user_key
            && let Some(user) = self.users.current(key, now_ms, config)
        {
            if user.blocked() {
                return Gate::Refuse(Refusal::Blocked(Scope::User), Blocks::default());
            }
            if refusal.is_none() && user.backing_off(now_ms, config) {
                refusal = Some(Refusal::Backoff(Scope::User));
            }
        }
        let Some(refusal) = refusal else {
            return Gate::Open;
        };
        // An early attempt counts toward the block of both records.
        Gate::Refuse(refusal, self.count(source, user_key, now_ms, false))
    }

    /// Counts a verified failure from `source` for `user`; says which
    /// blocks it started.
    pub(crate) fn failed(
        &mut self,
        source: IpAddr,
        user: Option<(&str, &str)>,
        now_ms: u64,
    ) -> Blocks {
        if self.off() {
            return Blocks::default();
        }
        let user_key = user.map(|(realm, name)| self.user_key(realm, name));
        self.count(source.to_canonical(), user_key, now_ms, true)
    }

    /// Counts a failure (`verified`) or an early attempt for both records.
    fn count(&mut self, source: IpAddr, user: Option<u64>, now_ms: u64, verified: bool) -> Blocks {
        let config = &self.config;
        let source = self
            .sources
            .entry(source, now_ms, config)
            .count(now_ms, config, verified);
        let user = user.is_some_and(|key| {
            self.users
                .entry(key, now_ms, config)
                .count(now_ms, config, verified)
        });
        Blocks { source, user }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const USER: Option<(&str, &str)> = Some(("trunk.example", "five9"));

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    fn secs(s: u64) -> u64 {
        s * 1000
    }

    fn small() -> LockoutConfig {
        LockoutConfig {
            failures: 5,
            window: Duration::from_secs(60),
            block: Duration::from_secs(30),
            capacity: 16,
        }
    }

    /// An attacker at `source` that guesses at the given times (ms);
    /// returns how many guesses were verified (each one a failure).
    fn verified(lockout: &mut Lockout, source: IpAddr, times: &[u64]) -> usize {
        times
            .iter()
            .filter(|&&t| match lockout.check(source, USER, true, t) {
                Gate::Open => {
                    lockout.failed(source, USER, t);
                    true
                }
                Gate::Refuse(..) => false,
            })
            .count()
    }

    #[test]
    fn delays_double_after_the_free_failures() {
        let config = LockoutConfig::default();
        let delays: Vec<u64> = (0..12).map(|k| config.delay_ms(k) / 1000).collect();
        assert_eq!(delays, [0, 0, 0, 0, 0, 1, 2, 4, 8, 16, 32, 64]);
        // Never longer than a block, however many strikes.
        assert_eq!(config.delay_ms(u32::MAX), secs(900));
        assert_eq!(small().delay_ms(2), secs(1));
    }

    #[test]
    fn a_hammering_source_is_blocked_and_refused_before_verification() {
        let mut lockout = Lockout::new(small());
        let a = ip("192.0.2.1");
        let mut gates = Vec::new();
        for i in 0..8 {
            let t = 100 * i;
            let gate = lockout.check(a, USER, true, t);
            if gate == Gate::Open {
                lockout.failed(a, USER, t);
            }
            gates.push(gate);
        }
        use Refusal::*;
        let backoff = |blocks| Gate::Refuse(Backoff(Scope::Source), blocks);
        let started = Blocks {
            source: true,
            user: true,
        };
        assert_eq!(
            gates,
            [
                Gate::Open,
                Gate::Open,
                backoff(Blocks::default()),
                backoff(Blocks::default()),
                backoff(started),
                Gate::Refuse(Blocked(Scope::Source), Blocks::default()),
                Gate::Refuse(Blocked(Scope::Source), Blocks::default()),
                Gate::Refuse(Blocked(Scope::Source), Blocks::default()),
            ]
        );
        // Without credentials too, for the whole block: attempts during it
        // do not extend it.
        assert!(matches!(
            lockout.check(a, None, false, secs(29)),
            Gate::Refuse(..)
        ));
        let end = 400 + secs(30);
        assert!(matches!(
            lockout.check(a, USER, true, end - 1),
            Gate::Refuse(..)
        ));
        assert_eq!(lockout.check(a, USER, true, end), Gate::Open);
    }

    #[test]
    fn a_patient_source_is_blocked_within_the_budget() {
        let mut lockout = Lockout::new(small());
        let a = ip("192.0.2.1");
        // Free, free, then 1 s, 2 s, 4 s apart: the fifth failure blocks.
        assert_eq!(lockout.failed(a, None, 0), Blocks::default());
        assert_eq!(lockout.failed(a, None, 10), Blocks::default());
        assert_eq!(lockout.check(a, None, true, 1010), Gate::Open);
        assert_eq!(lockout.failed(a, None, 1010), Blocks::default());
        assert_eq!(lockout.check(a, None, true, 3010), Gate::Open);
        assert_eq!(lockout.failed(a, None, 3010), Blocks::default());
        assert_eq!(lockout.check(a, None, true, 7010), Gate::Open);
        let blocks = lockout.failed(a, None, 7010);
        assert!(blocks.source && !blocks.user);
        assert!(matches!(
            lockout.check(a, None, true, secs(20)),
            Gate::Refuse(Refusal::Blocked(Scope::Source), _)
        ));
    }

    #[test]
    fn sources_and_the_window_are_separate() {
        let mut lockout = Lockout::new(LockoutConfig {
            block: Duration::from_secs(120),
            ..small()
        });
        let (a, b) = (ip("192.0.2.1"), ip("192.0.2.2"));
        lockout.failed(a, None, 0);
        lockout.failed(a, None, 0);
        assert_eq!(lockout.check(b, None, true, 1), Gate::Open);
        assert!(matches!(lockout.check(a, None, true, 1), Gate::Refuse(..)));
        // IPv4-mapped IPv6 is the same source.
        let mapped = ip("::ffff:192.0.2.1");
        assert!(matches!(
            lockout.check(mapped, None, true, 1),
            Gate::Refuse(..)
        ));
        // Waiting out the window resets the block count but not the
        // backoff: after the third failure the next attempt waits 2 s.
        assert_eq!(lockout.check(a, None, true, secs(61)), Gate::Open);
        lockout.failed(a, None, secs(61));
        assert!(matches!(
            lockout.check(a, None, true, secs(62)),
            Gate::Refuse(..)
        ));
        assert_eq!(lockout.check(a, None, true, secs(63)), Gate::Open);
        // Quiet for a block's length: a clean slate.
        assert_eq!(lockout.check(a, None, true, secs(61 + 120)), Gate::Open);
        assert_eq!(lockout.sources.len(), 0);
    }

    #[test]
    fn a_username_lock_spares_clean_sources() {
        let mut lockout = Lockout::new(small());
        // Five addresses fail once each on the same username: it is blocked.
        let bots: Vec<IpAddr> = (1..=5).map(|i| ip(&format!("198.51.100.{i}"))).collect();
        let mut started = Blocks::default();
        for bot in &bots {
            assert_eq!(lockout.check(*bot, USER, true, 0), Gate::Open);
            started = lockout.failed(*bot, USER, 0);
        }
        assert!(started.user && !started.source);
        // A bot that failed is refused for that username...
        assert_eq!(
            lockout.check(bots[0], USER, true, 10),
            Gate::Refuse(Refusal::Blocked(Scope::User), Blocks::default())
        );
        // ...but not for another one, and a clean source (the real peer)
        // is verified as usual.
        let other = Some(("trunk.example", "acme"));
        assert_eq!(lockout.check(bots[0], other, true, 10), Gate::Open);
        let clean = ip("203.0.113.7");
        assert_eq!(lockout.check(clean, USER, true, 10), Gate::Open);
        // Once it fails it is refused too; its failure does not extend the
        // username's block.
        assert_eq!(lockout.failed(clean, USER, secs(10)), Blocks::default());
        assert!(matches!(
            lockout.check(clean, USER, true, secs(11)),
            Gate::Refuse(..)
        ));
        // The bots stay refused for a block's length after their failure.
        assert!(matches!(
            lockout.check(bots[1], USER, true, secs(29)),
            Gate::Refuse(..)
        ));
        assert_eq!(lockout.check(bots[1], USER, true, secs(30)), Gate::Open);
    }

    #[test]
    fn username_backoff_applies_to_failing_sources_only() {
        let mut lockout = Lockout::new(small());
        let (a, b, c) = (ip("192.0.2.1"), ip("192.0.2.2"), ip("192.0.2.3"));
        lockout.failed(a, USER, 0);
        lockout.failed(b, USER, 0);
        // The username has 2 failures (backoff 1 s); a has 1 (none).
        assert_eq!(
            lockout.check(a, USER, true, 10),
            Gate::Refuse(Refusal::Backoff(Scope::User), Blocks::default())
        );
        assert_eq!(lockout.check(c, USER, true, 10), Gate::Open);
        assert_eq!(lockout.check(a, USER, true, 1000), Gate::Open);
    }

    #[test]
    fn tables_stay_bounded() {
        let mut lockout = Lockout::new(small());
        for i in 0..1000u32 {
            let source = IpAddr::from((0x0a00_0000 + i).to_be_bytes());
            let name = format!("{i}{}", "x".repeat(10_000));
            lockout.failed(source, Some(("r", &name)), u64::from(i));
            assert!(lockout.sources.len() <= 16 && lockout.users.len() <= 16);
            assert!(lockout.sources.order.len() <= 32);
        }
        // The newest survive; the oldest were evicted and start over.
        let newest = IpAddr::from((0x0a00_0000u32 + 999).to_be_bytes());
        let oldest = IpAddr::from(0x0a00_0000u32.to_be_bytes());
        lockout.failed(newest, None, 1000);
        assert!(matches!(
            lockout.check(newest, None, true, 1001),
            Gate::Refuse(..)
        ));
        assert_eq!(lockout.check(oldest, None, true, 1001), Gate::Open);
        // Records that go idle leave the queue bounded too.
        let mut lockout = Lockout::new(small());
        for i in 0..1000u64 {
            let source = IpAddr::from(((i % 3) as u32).to_be_bytes());
            lockout.failed(source, None, secs(31 * i));
            assert!(lockout.sources.order.len() <= 32);
        }
    }

    #[test]
    fn zero_failures_turns_it_off() {
        let mut lockout = Lockout::new(LockoutConfig {
            failures: 0,
            ..small()
        });
        let a = ip("192.0.2.1");
        for t in 0..100 {
            assert_eq!(lockout.check(a, USER, true, t), Gate::Open);
            assert_eq!(lockout.failed(a, USER, t), Blocks::default());
        }
    }

    /// The figure in the module docs: guesses verified per hour from one
    /// source with the defaults, for the strategies that could do best.
    #[test]
    fn guesses_per_hour_with_the_defaults() {
        let hour = secs(3600);
        let a = ip("192.0.2.1");
        // Hammering: one guess every 10 ms.
        let mut lockout = Lockout::new(LockoutConfig::default());
        let times: Vec<u64> = (0..hour / 10).map(|i| i * 10).collect();
        let hammering = verified(&mut lockout, a, &times);
        // Patient: each guess as soon as the backoff allows, never early.
        let mut lockout = Lockout::new(LockoutConfig::default());
        let (mut t, mut patient) = (0, 0);
        while t < hour {
            match lockout.check(a, USER, true, t) {
                Gate::Open => {
                    lockout.failed(a, USER, t);
                    patient += 1;
                    t += 1;
                }
                Gate::Refuse(Refusal::Blocked(_), _) => t += 1000,
                // Not sent: the attacker waits; no early attempt is made.
                Gate::Refuse(Refusal::Backoff(_), _) => unreachable!("never early"),
            }
            let strikes = lockout
                .sources
                .entries
                .get(&a)
                .map_or(0, |(r, _)| r.strikes);
            let last = lockout
                .sources
                .entries
                .get(&a)
                .map_or(0, |(r, _)| r.last_failure);
            t = t.max(last + lockout.config.delay_ms(strikes));
        }
        // Evading the block: 9 guesses, then waiting for the window to end.
        let mut lockout = Lockout::new(LockoutConfig::default());
        let mut t = 0;
        let mut evading = 0;
        while t < hour {
            let (strikes, last, in_window) = lockout
                .sources
                .entries
                .get(&a)
                .map_or((0, 0, 0), |(r, _)| (r.strikes, r.last_failure, r.in_window));
            t = t.max(last + lockout.config.delay_ms(strikes));
            if in_window >= 9 {
                t = t.max(lockout.sources.entries[&a].0.window_start + secs(60));
            }
            if t >= hour {
                break;
            }
            assert_eq!(lockout.check(a, USER, true, t), Gate::Open);
            lockout.failed(a, USER, t);
            evading += 1;
        }
        assert!(hammering <= 40, "hammering: {hammering}");
        assert!(patient <= 40, "patient: {patient}");
        assert!(evading <= 40, "evading: {evading}");
        // Pinned, so that the documented figures stay true.
        assert_eq!((hammering, patient, evading), (20, 40, 30));
    }
}
