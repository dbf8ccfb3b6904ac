//! Who may authenticate: a user store keyed by realm and username, holding a
//! password or only its HA1 hashes.
//!
//! Storing HA1 (`H(user:realm:password)`) instead of the password means a
//! leaked config does not reveal the password itself, though an HA1 is still
//! enough to authenticate in that realm, so it must be kept as secret.

use super::algorithm::{Algorithm, HashFn};
use super::error::SecretError;
use std::collections::HashMap;
use std::fmt;

/// What the gateway knows about one user. `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Inner);

#[derive(Clone, PartialEq, Eq)]
enum Inner {
    Password(String),
    /// Lowercase hex HA1 per hash family; an algorithm whose family has no
    /// HA1 cannot be answered for this user.
    Hashed {
        md5: Option<String>,
        sha256: Option<String>,
    },
}

impl Secret {
    /// A clear-text password: every configured algorithm works.
    pub fn password(password: impl Into<String>) -> Secret {
        Secret(Inner::Password(password.into()))
    }

    /// Precomputed HA1 values (see [`super::ha1`]) for the MD5 family
    /// (`MD5`, `MD5-sess`) and the SHA-256 family. A user with only an MD5
    /// HA1 fails a SHA-256 response, so give both where both are offered.
    pub fn hashed(md5: Option<&str>, sha256: Option<&str>) -> Result<Secret, SecretError> {
        let check = |value: Option<&str>, hash: HashFn| {
            value
                .map(|hex| {
                    let hex = hex.trim();
                    if hex.len() == hash.hex_len() && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                        Ok(hex.to_ascii_lowercase())
                    } else {
                        Err(SecretError {
                            algorithm: hash.name(),
                            expected: hash.hex_len(),
                        })
                    }
                })
                .transpose()
        };
        Ok(Secret(Inner::Hashed {
            md5: check(md5, HashFn::Md5)?,
            sha256: check(sha256, HashFn::Sha256)?,
        }))
    }

    /// `H(username:realm:password)` for `algorithm`'s hash family, or `None`
    /// when only a hash of another family is stored.
    pub(crate) fn ha1(&self, algorithm: Algorithm, username: &str, realm: &str) -> Option<String> {
        match &self.0 {
            Inner::Password(password) => {
                Some(super::algorithm::ha1(algorithm, username, realm, password))
            }
            Inner::Hashed { md5, sha256 } => match algorithm.hash_fn() {
                HashFn::Md5 => md5.clone(),
                HashFn::Sha256 => sha256.clone(),
            },
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Inner::Password(_) => f.write_str("Secret::Password(<redacted>)"),
            Inner::Hashed { .. } => f.write_str("Secret::Hashed(<redacted>)"),
        }
    }
}

/// Looks up the secret of a user in a realm. Implemented by [`Credentials`]
/// and by any `Fn(&str, &str) -> Option<Secret>` (realm, username), so the
/// host can back it with its config without copying.
pub trait CredentialStore {
    /// The secret of `username` in `realm`, `None` for an unknown user.
    fn lookup(&self, realm: &str, username: &str) -> Option<Secret>;
}

impl<F> CredentialStore for F
where
    F: Fn(&str, &str) -> Option<Secret>,
{
    fn lookup(&self, realm: &str, username: &str) -> Option<Secret> {
        self(realm, username)
    }
}

/// An in-memory user store. Usernames and realms are compared exactly, as
/// they are hashed exactly: `Five9` and `five9` are different users.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    users: HashMap<(String, String), Secret>,
}

impl Credentials {
    /// An empty store, which authenticates no one.
    pub fn new() -> Credentials {
        Credentials::default()
    }

    /// Adds or replaces a user, builder style.
    pub fn with(mut self, realm: &str, username: &str, secret: Secret) -> Credentials {
        self.insert(realm, username, secret);
        self
    }

    /// Adds or replaces a user; returns the secret it replaced.
    pub fn insert(&mut self, realm: &str, username: &str, secret: Secret) -> Option<Secret> {
        self.users
            .insert((realm.to_string(), username.to_string()), secret)
    }

    /// Removes a user; returns its secret.
    pub fn remove(&mut self, realm: &str, username: &str) -> Option<Secret> {
        self.users
            .remove(&(realm.to_string(), username.to_string()))
    }
}

impl CredentialStore for Credentials {
    fn lookup(&self, realm: &str, username: &str) -> Option<Secret> {
        self.users
            .get(&(realm.to_string(), username.to_string()))
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::algorithm::ha1;

    #[test]
    fn password_and_hashed_secrets_give_the_same_ha1() {
        let md5 = ha1(Algorithm::Md5, "five9", "trunk", "pw");
        let sha = ha1(Algorithm::Sha256, "five9", "trunk", "pw");
        let upper = md5.to_uppercase();
        let hashed = Secret::hashed(Some(&upper), Some(&sha)).expect("valid hex");
        let password = Secret::password("pw");
        for algorithm in [
            Algorithm::Md5,
            Algorithm::Md5Sess,
            Algorithm::Sha256,
            Algorithm::Sha256Sess,
        ] {
            assert_eq!(
                hashed.ha1(algorithm, "five9", "trunk"),
                password.ha1(algorithm, "five9", "trunk"),
                "{algorithm}"
            );
        }
        let md5_only = Secret::hashed(Some(&md5), None).expect("valid hex");
        assert_eq!(md5_only.ha1(Algorithm::Sha256, "five9", "trunk"), None);
    }

    #[test]
    fn bad_hashes_are_refused() {
        let table: &[(Option<&str>, Option<&str>, &str)] = &[
            (Some("abc"), None, "MD5"),
            (Some(&"g".repeat(32)), None, "MD5"),
            (None, Some(&"0".repeat(32)), "SHA-256"),
            (Some(&"0".repeat(64)), None, "MD5"),
        ];
        for (md5, sha256, algorithm) in table {
            let err = Secret::hashed(*md5, *sha256).expect_err("refused");
            assert_eq!(err.algorithm, *algorithm);
        }
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let creds = Credentials::new().with("r", "u", Secret::password("hunter2"));
        let text = format!("{creds:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("redacted"), "{text}");
    }

    #[test]
    fn lookup_is_exact_on_realm_and_user() {
        let mut creds = Credentials::new().with("r", "five9", Secret::password("pw"));
        assert!(creds.lookup("r", "five9").is_some());
        assert!(creds.lookup("r", "Five9").is_none());
        assert!(creds.lookup("R", "five9").is_none());
        assert!(creds.remove("r", "five9").is_some());
        assert!(creds.lookup("r", "five9").is_none());
        let closure =
            |realm: &str, user: &str| (realm == "r" && user == "x").then(|| Secret::password("y"));
        assert!(closure.lookup("r", "x").is_some());
        assert!(closure.lookup("r", "z").is_none());
    }
}
