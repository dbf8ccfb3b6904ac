//! Stateless nonces: the gateway recognises its own nonces and their age
//! without remembering any of them, and peers learn nothing from them.
//!
//! A nonce is `base64url(masked || salt || tag)`: `salt` is 8 bytes that
//! make each nonce unique, `masked` the unix time of issue in seconds (8
//! bytes, big-endian) XORed with the first 8 bytes of `HMAC-SHA256(key,
//! "mask" || salt)`, and `tag` the first 16 bytes of `HMAC-SHA256(key,
//! issued || salt || realm)`. 32 bytes, 43 characters. Without the key a
//! peer can read neither the gateway's clock nor how old a nonce is; with
//! it the gateway unmasks the time and checks the tag. A 128-bit tag is as
//! hard to forge as the key is to guess (RFC 2104 §5 allows truncation to
//! half the output).
//!
//! Binding the realm stops a nonce issued for one trunk from being used on
//! another that shares the key. The salt is `HMAC(key, counter)` with a
//! counter that starts at a random value, so nonces do not tell outsiders
//! how many challenges the gateway has sent, and do not repeat across
//! restarts with a configured key.
//!
//! The `opaque` of a challenge is derived from its nonce ([`NonceKey::opaque`]),
//! so it changes with every challenge too.
//!
//! Without a table, a valid nonce can be reused until it expires; that is
//! what nonce-count tracking ([`super::replay`]) is for.

use super::error::KeyError;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

type HmacSha256 = Hmac<Sha256>;

const TAG_LEN: usize = 16;
const NONCE_BYTES: usize = 8 + 8 + TAG_LEN;
/// Length of the base64url text of a nonce (32 bytes, no padding).
const NONCE_CHARS: usize = 43;

/// How far in the future a nonce's timestamp may be, for gateways that
/// share a key and whose clocks differ a little. Further than that it is
/// treated as expired, so the peer simply gets a fresh one.
const MAX_CLOCK_SKEW_SECS: u64 = 30;

/// The secret that signs nonces. `Debug` never prints it.
pub struct NonceKey {
    key: [u8; 32],
    /// Makes each nonce's salt unique within this process.
    counter: AtomicU64,
}

/// A nonce this gateway issued, by its time and salt; ordered by age, which
/// is what the nonce-count table evicts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct NonceId {
    pub(crate) issued: u64,
    pub(crate) salt: [u8; 8],
}

/// What a nonce from a peer turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NonceState {
    /// Ours, for this realm, and within its lifetime.
    Fresh(NonceId),
    /// Ours but too old (or too far in the future).
    Expired,
    /// Not ours: forged, altered, for another realm, or signed with a key
    /// from before a restart.
    Foreign,
}

impl NonceKey {
    /// A key from the operating system's randomness. Nonces from before a
    /// restart then stop verifying; peers holding one get a fresh challenge
    /// (with `stale=true` when their password was right).
    pub fn generate() -> Result<NonceKey, KeyError> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| KeyError(e.to_string()))?;
        Ok(NonceKey::from_secret(key))
    }

    /// A key from configuration, so that gateways behind one address accept
    /// each other's nonces and a restart keeps them valid. Nonce-count
    /// tracking stays per process, so a replay to another gateway is not
    /// caught within the nonce lifetime.
    pub fn from_secret(secret: [u8; 32]) -> NonceKey {
        // Without OS randomness the counter starts at 0: salts then repeat
        // after a restart, which only matters within a nonce lifetime.
        let mut start = [0u8; 8];
        let _ = getrandom::fill(&mut start);
        NonceKey {
            key: secret,
            counter: AtomicU64::new(u64::from_be_bytes(start)),
        }
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC takes keys of any length, so this cannot fail.
        <HmacSha256 as Mac>::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!())
    }

    fn tag(&self, issued: u64, salt: &[u8; 8], realm: &str) -> HmacSha256 {
        let mut mac = self.mac();
        mac.update(b"trunkline nonce v2\0");
        mac.update(&issued.to_be_bytes());
        mac.update(salt);
        mac.update(realm.as_bytes());
        mac
    }

    /// A new nonce for `realm`, stamped with `now`.
    pub(crate) fn issue(&self, realm: &str, now: SystemTime) -> String {
        let count = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut mac = self.mac();
        mac.update(b"trunkline salt\0");
        mac.update(&count.to_be_bytes());
        let mut salt = [0u8; 8];
        salt.copy_from_slice(&mac.finalize().into_bytes()[..8]);
        self.issue_with_salt(realm, unix_seconds(now), salt)
    }

    /// What hides the time of issue of a nonce with this salt.
    fn mask(&self, salt: &[u8; 8]) -> u64 {
        let mut mac = self.mac();
        mac.update(b"trunkline nonce mask\0");
        mac.update(salt);
        let mut mask = [0u8; 8];
        mask.copy_from_slice(&mac.finalize().into_bytes()[..8]);
        u64::from_be_bytes(mask)
    }

    fn issue_with_salt(&self, realm: &str, issued: u64, salt: [u8; 8]) -> String {
        let tag = self.tag(issued, &salt, realm).finalize().into_bytes();
        let mut bytes = [0u8; NONCE_BYTES];
        bytes[..8].copy_from_slice(&(issued ^ self.mask(&salt)).to_be_bytes());
        bytes[8..16].copy_from_slice(&salt);
        bytes[16..].copy_from_slice(&tag[..TAG_LEN]);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Checks a nonce a peer echoed. The tag is compared in constant time.
    pub(crate) fn check(
        &self,
        nonce: &str,
        realm: &str,
        now: SystemTime,
        lifetime_secs: u64,
    ) -> NonceState {
        if nonce.len() != NONCE_CHARS {
            return NonceState::Foreign;
        }
        let mut bytes = [0u8; NONCE_BYTES];
        match URL_SAFE_NO_PAD.decode_slice(nonce, &mut bytes) {
            Ok(NONCE_BYTES) => {}
            _ => return NonceState::Foreign,
        }
        let mut masked = [0u8; 8];
        masked.copy_from_slice(&bytes[..8]);
        let mut salt = [0u8; 8];
        salt.copy_from_slice(&bytes[8..16]);
        let issued = u64::from_be_bytes(masked) ^ self.mask(&salt);
        if self
            .tag(issued, &salt, realm)
            .verify_truncated_left(&bytes[16..])
            .is_err()
        {
            return NonceState::Foreign;
        }
        let now = unix_seconds(now);
        let too_old = now.saturating_sub(issued) > lifetime_secs;
        let too_new = issued > now.saturating_add(MAX_CLOCK_SKEW_SECS);
        if too_old || too_new {
            NonceState::Expired
        } else {
            NonceState::Fresh(NonceId { issued, salt })
        }
    }
}

impl NonceKey {
    /// The `opaque` sent with `nonce`. It carries nothing the nonce does not
    /// (the nonce's tag already proves a challenge was ours) and is not
    /// checked on the way back, as some UAs drop it; it is sent because
    /// some UAs expect one. Derived from the nonce, so it changes with each
    /// challenge and tells nothing about the realm or the gateway; short,
    /// as SIPp keeps at most 63 characters.
    pub(crate) fn opaque(&self, nonce: &str) -> String {
        let mut mac = self.mac();
        mac.update(b"trunkline opaque\0");
        mac.update(nonce.as_bytes());
        URL_SAFE_NO_PAD.encode(&mac.finalize().into_bytes()[..12])
    }
}

impl fmt::Debug for NonceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NonceKey(<redacted>)")
    }
}

/// Milliseconds since the unix epoch (0 before 1970).
pub(crate) fn unix_millis(now: SystemTime) -> u64 {
    now.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Seconds since the unix epoch; a clock set before 1970 reads as 0, which
/// only makes nonces look old.
pub(crate) fn unix_seconds(now: SystemTime) -> u64 {
    now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    const T0: u64 = 1_714_572_202;

    #[test]
    fn nonce_text_is_pinned() {
        let key = NonceKey::from_secret([7; 32]);
        let nonce = key.issue_with_salt("trunk.example", T0, [1, 2, 3, 4, 5, 6, 7, 8]);
        // Recomputed with Python's hmac module: masked time, salt, tag.
        assert_eq!(nonce, "QqFs-NlYGpcBAgMEBQYHCD6RQPu0hP3jM22QCINVrHk");
        assert_eq!(key.opaque(&nonce), "AUDnN4VtkLEmogW6");
        assert_eq!(nonce.len(), NONCE_CHARS);
        assert!(
            nonce
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
    }

    #[test]
    fn age_table() {
        let key = NonceKey::from_secret([7; 32]);
        let nonce = key.issue("trunk.example", at(T0));
        let table = [
            (T0, true),
            (T0 + 300, true),
            (T0 + 301, false),
            (T0 - 30, true),
            (T0 - 31, false),
        ];
        for (now, fresh) in table {
            let state = key.check(&nonce, "trunk.example", at(now), 300);
            match (state, fresh) {
                (NonceState::Fresh(id), true) => assert_eq!(id.issued, T0),
                (NonceState::Expired, false) => {}
                other => panic!("at {now}: {other:?}"),
            }
        }
    }

    #[test]
    fn foreign_nonces() {
        let key = NonceKey::from_secret([7; 32]);
        let nonce = key.issue("trunk.example", at(T0));
        let later = key.issue_with_salt("trunk.example", T0 + 3600, [0; 8]);
        // The timestamp of a fresh nonce glued to the tag of an older one:
        // an attempt to extend a captured nonce's life.
        let spliced = format!("{}{}", &later[..11], &nonce[11..]);
        let mut flipped = nonce.clone().into_bytes();
        flipped[20] = if flipped[20] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).expect("ascii");
        let other_key = NonceKey::from_secret([8; 32]).issue("trunk.example", at(T0));
        let table = [
            ("another realm", nonce.clone(), "other.example"),
            ("spliced", spliced, "trunk.example"),
            ("one character changed", flipped, "trunk.example"),
            ("another key", other_key, "trunk.example"),
            (
                "RFC 2617 nonce",
                "dcd98b7102dd2f0e8b11d0f600bfb0c093".into(),
                "trunk.example",
            ),
            ("padded", format!("{nonce}="), "trunk.example"),
            ("not base64", "!".repeat(NONCE_CHARS), "trunk.example"),
            ("empty", String::new(), "trunk.example"),
        ];
        for (what, nonce, realm) in table {
            assert_eq!(
                key.check(&nonce, realm, at(T0), 300),
                NonceState::Foreign,
                "{what}"
            );
        }
    }

    #[test]
    fn nonces_do_not_repeat() {
        let key = NonceKey::generate().expect("os randomness");
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            assert!(seen.insert(key.issue("r", at(T0))));
        }
        assert_eq!(format!("{key:?}"), "NonceKey(<redacted>)");
    }

    #[test]
    fn opaque_follows_the_nonce() {
        let key = NonceKey::from_secret([7; 32]);
        let (a, b) = (key.issue("r", at(T0)), key.issue("r", at(T0)));
        assert_eq!(key.opaque(&a), key.opaque(&a));
        assert_ne!(key.opaque(&a), key.opaque(&b));
        assert_ne!(key.opaque(&a), NonceKey::from_secret([8; 32]).opaque(&a));
        assert_eq!(key.opaque(&a).len(), 16);
    }

    #[test]
    fn nonces_do_not_show_the_clock() {
        let key = NonceKey::from_secret([7; 32]);
        // Issued one second apart with the same salt: only the key tells
        // the times apart, so the first 8 bytes share no readable time.
        let salt = [9; 8];
        let (a, b) = (
            key.issue_with_salt("r", T0, salt),
            key.issue_with_salt("r", T0 + 1, salt),
        );
        let first8 = |n: &str| URL_SAFE_NO_PAD.decode(n).expect("base64")[..8].to_vec();
        assert_ne!(first8(&a), T0.to_be_bytes());
        // XOR of the masked times is exactly T0 ^ (T0 + 1): same mask.
        let x = |n: &str| u64::from_be_bytes(first8(n).try_into().expect("8"));
        assert_eq!(x(&a) ^ x(&b), T0 ^ (T0 + 1));
        // With other salts the masks differ, and the time stays hidden.
        let times: std::collections::HashSet<u64> =
            (0..50).map(|_| x(&key.issue("r", at(T0)))).collect();
        assert_eq!(times.len(), 50);
    }
}
