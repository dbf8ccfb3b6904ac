//! From a verification to what the peer is sent: admit, challenge, or 403.
//!
//! First the lockout (see `lockout`) may refuse a request without looking
//! at its credentials: a bare `403`, before any hashing.
//!
//! Then the rule: missing or stale credentials are always challenged.
//! Failed credentials get a fresh challenge (indistinguishable from the
//! first one) `failures_before_forbidden` times per source address and
//! Call-ID; the next failure is answered `403 Forbidden`, with nothing that
//! says why. A success clears the count. A failure that starts a lockout
//! block is answered `403` too.
//!
//! The per-Call-ID 403 is courtesy, not defence: it stops a misconfigured
//! peer from looping on 401s, but a new Call-ID per guess never meets it;
//! the lockout is what limits guessing. That is also why this counter table
//! may forget (it is bounded and evicts the oldest): forgetting costs a
//! peer one extra challenge.

use super::credentials::CredentialStore;
use super::lockout::{Blocks, Gate, Refusal};
use super::nonce::{unix_millis, unix_seconds};
use super::rules::Verification;
use super::server::DigestAuth;
use crate::message::{BuildError, SipMessage};
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::net::IpAddr;
use std::time::SystemTime;

/// What to do with a request after digest auth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Authenticated as this username: go on to routing.
    Admitted(String),
    /// Answer with this instead (401/407 challenge or 403).
    Rejected(Rejection),
    /// Refused by the lockout without verifying anything: answer `403`
    /// ([`Locked::response`]).
    Locked(Locked),
}

/// A request the lockout refused unverified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Locked {
    /// Blocked, or too soon after a failure.
    pub refusal: Refusal,
    /// Blocks this early attempt started (it counts toward them).
    pub blocks: Blocks,
}

impl Locked {
    /// The `403 Forbidden` owed to `request`, with `to_tag` on To.
    pub fn response(
        &self,
        request: &SipMessage,
        to_tag: Option<&str>,
    ) -> Result<SipMessage, BuildError> {
        request.reply(403, None, to_tag)
    }
}

/// A response owed to a request that was not admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// 401, 407 or 403.
    pub status: u16,
    /// Challenge headers to add (none on a 403).
    pub headers: Vec<(&'static str, String)>,
    /// What verification found, for logs and metrics; never sent.
    pub verification: Verification,
    /// Lockout blocks this failure started (then the status is 403).
    pub blocks: Blocks,
}

impl Rejection {
    /// The response to `request`: status, the challenge headers, and
    /// `to_tag` on To (RFC 3261 §8.2.6.2 wants one on every final response).
    pub fn response(
        &self,
        request: &SipMessage,
        to_tag: Option<&str>,
    ) -> Result<SipMessage, BuildError> {
        let mut response = request.reply(self.status, None, to_tag)?;
        for (name, value) in &self.headers {
            response.push_header(name, value)?;
        }
        Ok(response)
    }
}

impl<S: CredentialStore> DigestAuth<S> {
    /// Verifies a new request from `source` and decides its answer (see the
    /// module docs for the rule).
    pub fn admit(&mut self, request: &SipMessage, source: IpAddr, now: SystemTime) -> Admission {
        let now_ms = unix_millis(now);
        let header = self.config.kind.credentials_header();
        let credentials = request.header_values(header).next().is_some();
        // Parsing only: nothing is hashed before the lockout has its say.
        let username = self.credentials_for_realm(request).ok().map(|c| c.username);
        let user = username.as_deref().map(|u| (self.config.realm.as_str(), u));
        if let Gate::Refuse(refusal, blocks) = self.lockout.check(source, user, credentials, now_ms)
        {
            return Admission::Locked(Locked { refusal, blocks });
        }
        let verification = self.verify(request, now);
        // The framer validated the Call-ID; "" only for hand-built messages.
        let call_id = request.call_id().unwrap_or("");
        let stale = match &verification {
            Verification::Ok(username) => {
                self.failures.clear(source, call_id);
                return Admission::Admitted(username.clone());
            }
            Verification::Invalid(_) => {
                let user = username.as_deref().map(|u| (self.config.realm.as_str(), u));
                let blocks = self.lockout.failed(source, user, now_ms);
                let window = self.config.nonce_lifetime.as_secs();
                let failures = self
                    .failures
                    .record(source, call_id, unix_seconds(now), window);
                if blocks.any() || failures > self.config.failures_before_forbidden {
                    return Admission::Rejected(Rejection {
                        status: 403,
                        headers: Vec::new(),
                        verification,
                        blocks,
                    });
                }
                false
            }
            Verification::Stale => true,
            Verification::Missing => false,
        };
        let name = self.config.kind.challenge_header();
        Admission::Rejected(Rejection {
            status: self.config.kind.status(),
            headers: self
                .challenge(now, stale)
                .into_iter()
                .map(|value| (name, value))
                .collect(),
            verification,
            blocks: Blocks::default(),
        })
    }
}

/// Failed attempts per (source address, Call-ID), bounded.
#[derive(Debug)]
pub(crate) struct FailureTracker {
    /// Keys are hashes of (address, Call-ID), so a peer sending 60 kB
    /// Call-IDs cannot make entries large; the random hasher keeps
    /// collisions unpredictable, and one only merges two counters.
    hasher: RandomState,
    /// Hash -> (failures, time of the first one in unix seconds).
    entries: HashMap<u64, (u32, u64)>,
    capacity: usize,
}

impl FailureTracker {
    pub(crate) fn new(capacity: usize) -> FailureTracker {
        FailureTracker {
            hasher: RandomState::new(),
            entries: HashMap::new(),
            capacity: capacity.max(1),
        }
    }

    fn key(&self, source: IpAddr, call_id: &str) -> u64 {
        let mut hasher = self.hasher.build_hasher();
        source.to_canonical().hash(&mut hasher);
        call_id.hash(&mut hasher);
        hasher.finish()
    }

    /// Counts a failure; returns the failures in the current window,
    /// this one included. A counter older than `window_secs` starts over.
    pub(crate) fn record(
        &mut self,
        source: IpAddr,
        call_id: &str,
        now_secs: u64,
        window_secs: u64,
    ) -> u32 {
        let key = self.key(source, call_id);
        let expired = |first: u64| now_secs.saturating_sub(first) > window_secs;
        if let Some((count, first)) = self.entries.get_mut(&key) {
            if expired(*first) {
                (*count, *first) = (1, now_secs);
            } else {
                *count = count.saturating_add(1);
            }
            return *count;
        }
        if self.entries.len() >= self.capacity {
            self.entries.retain(|_, (_, first)| !expired(*first));
        }
        if self.entries.len() >= self.capacity
            && let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, (_, first))| *first)
                .map(|(key, _)| *key)
        {
            self.entries.remove(&oldest);
        }
        self.entries.insert(key, (1, now_secs));
        1
    }

    /// Forgets the failures of a (source, Call-ID) that authenticated.
    pub(crate) fn clear(&mut self, source: IpAddr, call_id: &str) {
        let key = self.key(source, call_id);
        self.entries.remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::test_support::*;
    use crate::auth::{ChallengeKind, DigestConfig};

    fn statuses(auth: &mut DigestAuth<crate::auth::Credentials>, steps: &[Step]) -> Vec<u16> {
        steps
            .iter()
            .map(|step| {
                let request = step.request(auth);
                match auth.admit(&request, step.source, at(T0 + step.offset)) {
                    Admission::Admitted(user) => {
                        assert_eq!(user, USER);
                        200
                    }
                    Admission::Rejected(rejection) => {
                        let response = rejection.response(&request, Some("totag")).expect("builds");
                        assert_eq!(response.status_code(), Some(rejection.status));
                        let challenges = response
                            .header_values(auth.config().kind.challenge_header())
                            .count();
                        let expected = if rejection.status == 403 { 0 } else { 2 };
                        assert_eq!(challenges, expected, "{rejection:?}");
                        if rejection.status == 403 {
                            assert_eq!(response.reason(), Some("Forbidden"));
                        }
                        rejection.status
                    }
                    Admission::Locked(locked) => {
                        let response = locked.response(&request, Some("totag")).expect("builds");
                        assert_eq!(response.status_code(), Some(403));
                        let header = auth.config().kind.challenge_header();
                        assert_eq!(response.header_values(header).count(), 0);
                        403
                    }
                }
            })
            .collect()
    }

    #[test]
    fn bad_credentials_get_one_fresh_challenge_then_403() {
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let b: IpAddr = "192.0.2.2".parse().expect("ip");
        let table: &[(&str, Vec<Step>, &[u16])] = &[
            (
                "no credentials are always challenged",
                vec![
                    Step::none(a, "c1"),
                    Step::none(a, "c1"),
                    Step::none(a, "c1"),
                ],
                &[401, 401, 401],
            ),
            (
                "wrong, wrong, wrong",
                vec![
                    Step::wrong(a, "c1"),
                    Step::wrong(a, "c1"),
                    Step::wrong(a, "c1"),
                ],
                &[401, 403, 403],
            ),
            (
                "wrong then right then wrong: success clears the count",
                vec![
                    Step::wrong(a, "c1"),
                    Step::right(a, "c1"),
                    Step::wrong(a, "c1"),
                ],
                &[401, 200, 401],
            ),
            (
                "counts are per Call-ID and per source",
                vec![
                    Step::wrong(a, "c1"),
                    Step::wrong(a, "c2"),
                    Step::wrong(b, "c1"),
                ],
                &[401, 401, 401],
            ),
            (
                "a count older than the nonce lifetime starts over",
                vec![Step::wrong(a, "c1"), Step::wrong(a, "c1").after(301)],
                &[401, 401],
            ),
        ];
        for (what, steps, expected) in table {
            let mut auth = trunk(DigestConfig::new(REALM));
            assert_eq!(statuses(&mut auth, steps), *expected, "{what}");
        }
    }

    #[test]
    fn forbidden_threshold_and_proxy_kind() {
        let a: IpAddr = "2001:db8::1".parse().expect("ip");
        let mut config = DigestConfig::new(REALM);
        config.failures_before_forbidden = 0;
        let mut auth = trunk(config);
        assert_eq!(statuses(&mut auth, &[Step::wrong(a, "c")]), [403]);

        let mut config = DigestConfig::new(REALM);
        config.kind = ChallengeKind::Proxy;
        let mut auth = trunk(config);
        let steps = [Step::none(a, "c"), Step::right(a, "c")];
        assert_eq!(statuses(&mut auth, &steps), [407, 200]);
    }

    #[test]
    fn stale_challenges_say_so() {
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let mut auth = trunk(DigestConfig::new(REALM));
        let request = Step::right(a, "c").request(&auth);
        let Admission::Rejected(rejection) = auth.admit(&request, a, at(T0 + 301)) else {
            panic!("an expired nonce is not admitted");
        };
        assert_eq!(rejection.verification, Verification::Stale);
        assert_eq!(rejection.status, 401);
        assert!(rejection.headers.iter().all(|(name, value)| {
            *name == "WWW-Authenticate" && value.ends_with(", stale=true")
        }));
    }

    fn lockout_trunk() -> DigestAuth<crate::auth::Credentials> {
        let mut config = DigestConfig::new(REALM);
        config.lockout.failures = 5;
        config.lockout.block = std::time::Duration::from_secs(120);
        trunk(config)
    }

    #[test]
    fn new_call_ids_do_not_escape_the_lockout() {
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let b: IpAddr = "192.0.2.2".parse().expect("ip");
        let mut auth = lockout_trunk();
        // Wrong guesses, each on a fresh Call-ID, 1 s apart: two free, the
        // third within the 1 s backoff is refused unverified, and so on
        // until the fifth counted attempt blocks the source.
        let guesses = [
            Step::wrong(a, "g1"),
            Step::wrong(a, "g2"),
            Step::wrong(a, "g3"),
            Step::wrong(a, "g4").after(2),
            Step::wrong(a, "g5").after(3),
            Step::wrong(a, "g6").after(4),
        ];
        assert_eq!(
            statuses(&mut auth, &guesses),
            [401, 401, 403, 401, 403, 403]
        );
        // Blocked: no challenge, and the right password is refused.
        let blocked = [
            Step::none(a, "n1").after(5),
            Step::right(a, "r1").after(6),
            Step::right(a, "r2").after(120),
        ];
        assert_eq!(statuses(&mut auth, &blocked), [403, 403, 403]);
        // Another source is not affected (it never failed).
        assert_eq!(statuses(&mut auth, &[Step::right(b, "b1").after(6)]), [200]);
        // The block ends 120 s after it started (at 3 s).
        let request = Step::right(a, "r3").request(&auth);
        let Admission::Locked(locked) = auth.admit(&request, a, at(T0 + 122)) else {
            panic!("still blocked");
        };
        assert_eq!(locked.refusal, Refusal::Blocked(crate::auth::Scope::Source));
        assert_eq!(
            auth.admit(&request, a, at(T0 + 124)),
            Admission::Admitted(USER.into())
        );
    }

    #[test]
    fn the_blocking_failure_says_so() {
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let mut auth = lockout_trunk();
        let mut blocks = Vec::new();
        for (i, call_id) in ["c1", "c2", "c3", "c4", "c5"].into_iter().enumerate() {
            let request = Step::wrong(a, call_id).request(&auth);
            // Patient: each guess once the backoff (1, 2, 4 s) has passed.
            let t = [0, 0, 1, 3, 7][i];
            match auth.admit(&request, a, at(T0 + t)) {
                Admission::Rejected(r) => blocks.push((r.status, r.blocks.source, r.blocks.user)),
                other => panic!("guess {i}: {other:?}"),
            }
        }
        assert_eq!(
            blocks,
            [
                (401, false, false),
                (401, false, false),
                (401, false, false),
                (401, false, false),
                (403, true, true)
            ]
        );
    }

    #[test]
    fn tracker_stays_bounded() {
        let mut tracker = FailureTracker::new(3);
        let ip: IpAddr = "192.0.2.1".parse().expect("ip");
        for i in 0..100u64 {
            assert_eq!(tracker.record(ip, &format!("call-{i}"), i, 1000), 1);
            assert!(tracker.entries.len() <= 3);
        }
        // The newest survive; an evicted one starts over.
        assert_eq!(tracker.record(ip, "call-99", 100, 1000), 2);
        assert_eq!(tracker.record(ip, "call-0", 100, 1000), 1);
        // IPv4-mapped IPv6 is the same source.
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().expect("ip");
        assert_eq!(tracker.record(mapped, "call-99", 101, 1000), 3);
    }
}
