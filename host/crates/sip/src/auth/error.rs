//! Errors of the auth layer, one enum per operation.
//!
//! None of them ever reaches the wire: a peer whose credentials fail gets a
//! fresh challenge or a bare 403, whatever the reason (see
//! [`super::Verification`]). They exist for configuration checks and logs.

use thiserror::Error;

/// Why an `Authorization` / `Proxy-Authorization` value could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CredentialsError {
    /// The scheme is not `Digest` (e.g. `Basic`); such a line is for someone
    /// else and is skipped rather than failed.
    #[error("not Digest credentials")]
    NotDigest,
    /// The parameter list does not follow `name=value, name="value"`.
    #[error("malformed digest parameters: {0}")]
    Syntax(&'static str),
    /// A quoted string has no closing quote.
    #[error("unterminated quoted string")]
    UnterminatedQuote,
    /// A parameter appears twice (RFC 7616 §3.4: each at most once), which
    /// would leave it ambiguous which value was hashed.
    #[error("parameter {0:?} given twice")]
    Duplicate(String),
    /// A parameter the response cannot be checked without is absent.
    #[error("parameter {0:?} missing")]
    Missing(&'static str),
    /// A feature this server never offers (e.g. `userhash=true`).
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
}

/// A [`super::DigestConfig`] that cannot serve a trunk.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    /// No algorithm to offer: every challenge would be unanswerable.
    #[error("digest auth needs at least one algorithm")]
    NoAlgorithms,
    /// The same algorithm is listed twice.
    #[error("algorithm {0} listed twice")]
    DuplicateAlgorithm(&'static str),
    /// The realm is empty or holds control characters, which cannot be sent
    /// inside a quoted string.
    #[error("invalid realm {0:?}")]
    InvalidRealm(String),
    /// A nonce lifetime of zero seconds makes every nonce stale on arrival.
    #[error("nonce lifetime must be at least one second")]
    ZeroLifetime,
    /// A lockout whose window or block is under a second: it would never
    /// count, or never block.
    #[error("lockout window and block must be at least one second")]
    ZeroLockoutTime,
}

/// The operating system could not provide randomness for a nonce key.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("no randomness from the operating system: {0}")]
pub struct KeyError(pub String);

/// A stored HA1 that is not the hex digest of its algorithm.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{algorithm} HA1 must be {expected} hex digits")]
pub struct SecretError {
    /// The hash family the HA1 was given for (`MD5` or `SHA-256`).
    pub algorithm: &'static str,
    /// How many hex digits that hash has.
    pub expected: usize,
}

/// An IP allow-list entry that is not an address or CIDR block.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CidrError {
    /// The address part is not an IPv4 or IPv6 address.
    #[error("{0:?} is not an IP address")]
    Address(String),
    /// The prefix length is not a number within 0..=32 (IPv4) or 0..=128.
    #[error("{0:?} has an invalid prefix length")]
    Prefix(String),
    /// Bits are set past the prefix (`10.0.0.1/8`): more likely a typo than
    /// an intent, and admitting a whole /8 by mistake is costly.
    #[error("{entry:?} has host bits set; did you mean {suggestion}?")]
    HostBits {
        /// The entry as written.
        entry: String,
        /// The network the prefix describes.
        suggestion: String,
    },
}
