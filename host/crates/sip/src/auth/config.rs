//! Per-trunk digest settings, with the defaults RFC 8760 and the field
//! suggest.

use super::algorithm::Algorithm;
use super::error::ConfigError;
use super::lockout::LockoutConfig;
use std::time::Duration;

/// Whether the gateway challenges as a UAS (401) or as a proxy (407).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChallengeKind {
    /// `401 Unauthorized` + `WWW-Authenticate`, answered in `Authorization`.
    /// RFC 3261 §22.2: what a UAS such as Trunkline's inbound leg sends.
    #[default]
    Www,
    /// `407 Proxy Authentication Required` + `Proxy-Authenticate`, answered
    /// in `Proxy-Authorization` (RFC 3261 §22.3), for peers configured to
    /// see Trunkline as their outbound proxy.
    Proxy,
}

impl ChallengeKind {
    /// The status code of the challenge.
    pub fn status(self) -> u16 {
        match self {
            ChallengeKind::Www => 401,
            ChallengeKind::Proxy => 407,
        }
    }

    /// The header carrying challenges.
    pub fn challenge_header(self) -> &'static str {
        match self {
            ChallengeKind::Www => "WWW-Authenticate",
            ChallengeKind::Proxy => "Proxy-Authenticate",
        }
    }

    /// The header the peer answers in.
    pub fn credentials_header(self) -> &'static str {
        match self {
            ChallengeKind::Www => "Authorization",
            ChallengeKind::Proxy => "Proxy-Authorization",
        }
    }
}

/// How one trunk does digest auth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestConfig {
    /// The realm in challenges; responses for any other realm are ignored.
    pub realm: String,
    /// Algorithms offered, one challenge each, in this order, and the only
    /// ones accepted. RFC 8760 §2.4: strongest first, so SHA-256 then MD5.
    /// A peer that reads only the first challenge and knows only MD5 (SIPp
    /// 3.6, some old SBCs) fails on that default: give such trunks `[Md5]`.
    pub algorithms: Vec<Algorithm>,
    /// 401/WWW-Authenticate or 407/Proxy-Authenticate.
    pub kind: ChallengeKind,
    /// How long a nonce may be used. Past it the peer gets `stale=true` and
    /// retries without bothering its user; shorter means a captured nonce is
    /// useful for less time, at the cost of more challenges.
    pub nonce_lifetime: Duration,
    /// Accept RFC 2069 responses (no `qop`, so no `nc`/`cnonce`). Off by
    /// default: every challenge offers `qop="auth"`, which RFC 2617 clients
    /// must then use, and a response without `nc` cannot be checked for
    /// replay. Turn on only for a peer that cannot do better.
    pub allow_rfc2069: bool,
    /// How many nonces to track for `nc` replay (see `replay`); 0 turns
    /// tracking off, leaving a captured response usable for the nonce
    /// lifetime.
    pub nonce_count_capacity: usize,
    /// How many failed responses, per source address and Call-ID, get a
    /// fresh challenge before the next failure is answered 403.
    pub failures_before_forbidden: u32,
    /// How many (source, Call-ID) failure counters to keep.
    pub failure_capacity: usize,
    /// Online guessing: failures per source and per username across
    /// Call-IDs, backoff, then a block (see `lockout`).
    pub lockout: LockoutConfig,
}

impl DigestConfig {
    /// A config for `realm` with the defaults: SHA-256 then MD5, 401, nonces
    /// valid 300 s, RFC 2069 refused, 8192 nonces tracked, one failure
    /// re-challenged then 403, and 10 failures a minute blocking a source
    /// for 15 minutes.
    pub fn new(realm: impl Into<String>) -> DigestConfig {
        DigestConfig {
            realm: realm.into(),
            algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
            kind: ChallengeKind::Www,
            nonce_lifetime: Duration::from_secs(300),
            allow_rfc2069: false,
            nonce_count_capacity: 8192,
            failures_before_forbidden: 1,
            failure_capacity: 4096,
            lockout: LockoutConfig::default(),
        }
    }

    /// Checks that the config can serve a trunk.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.realm.is_empty() || self.realm.chars().any(char::is_control) {
            return Err(ConfigError::InvalidRealm(self.realm.clone()));
        }
        if self.algorithms.is_empty() {
            return Err(ConfigError::NoAlgorithms);
        }
        for (i, algorithm) in self.algorithms.iter().enumerate() {
            if self.algorithms[..i].contains(algorithm) {
                return Err(ConfigError::DuplicateAlgorithm(algorithm.as_str()));
            }
        }
        if self.nonce_lifetime.as_secs() == 0 {
            return Err(ConfigError::ZeroLifetime);
        }
        let lockout = &self.lockout;
        if lockout.failures > 0 && (lockout.window.as_secs() == 0 || lockout.block.as_secs() == 0) {
            return Err(ConfigError::ZeroLockoutTime);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_table() {
        let ok = DigestConfig::new("trunk.example");
        let with = |edit: fn(&mut DigestConfig)| {
            let mut config = ok.clone();
            edit(&mut config);
            config
        };
        let table = [
            (ok.clone(), Ok(())),
            (
                with(|c| c.realm = String::new()),
                Err(ConfigError::InvalidRealm(String::new())),
            ),
            (
                with(|c| c.realm = "a\r\nX-Evil: 1".into()),
                Err(ConfigError::InvalidRealm("a\r\nX-Evil: 1".into())),
            ),
            (
                with(|c| c.algorithms.clear()),
                Err(ConfigError::NoAlgorithms),
            ),
            (
                with(|c| c.algorithms = vec![Algorithm::Md5, Algorithm::Md5]),
                Err(ConfigError::DuplicateAlgorithm("MD5")),
            ),
            (
                with(|c| c.nonce_lifetime = Duration::from_millis(999)),
                Err(ConfigError::ZeroLifetime),
            ),
            (with(|c| c.realm = "\"quoted\" \\ realm".into()), Ok(())),
            (
                with(|c| c.lockout.window = Duration::ZERO),
                Err(ConfigError::ZeroLockoutTime),
            ),
            (
                with(|c| c.lockout.block = Duration::from_millis(10)),
                Err(ConfigError::ZeroLockoutTime),
            ),
            (
                with(|c| {
                    c.lockout.failures = 0;
                    c.lockout.block = Duration::ZERO;
                }),
                Ok(()),
            ),
        ];
        for (config, expected) in table {
            assert_eq!(config.validate(), expected, "{config:?}");
        }
    }

    #[test]
    fn kinds() {
        assert_eq!(ChallengeKind::default(), ChallengeKind::Www);
        assert_eq!(
            (
                ChallengeKind::Www.status(),
                ChallengeKind::Www.challenge_header(),
                ChallengeKind::Www.credentials_header()
            ),
            (401, "WWW-Authenticate", "Authorization")
        );
        assert_eq!(
            (
                ChallengeKind::Proxy.status(),
                ChallengeKind::Proxy.challenge_header(),
                ChallengeKind::Proxy.credentials_header()
            ),
            (407, "Proxy-Authenticate", "Proxy-Authorization")
        );
    }
}
