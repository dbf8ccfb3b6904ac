//! SIP digest authentication (RFC 3261 §22, RFC 2617, RFC 7616, RFC 8760):
//! the server side and IP allow-lists, how a trunk admits a peer; and the
//! client side, how an outbound leg answers a trunk's challenge.
//!
//! The gateway challenges inbound requests with a 401 (or 407) carrying one
//! challenge per configured algorithm, SHA-256 before MD5, each with
//! `qop="auth"`. Nonces are signed, not stored, so any number of them can be
//! outstanding and a gateway behind a shared key verifies another's. Time is
//! always passed in; the only outside input is the OS randomness behind
//! [`NonceKey::generate`].
//!
//! Typical use, per trunk (behind a mutex):
//! `match auth.admit(&request, source.ip(), SystemTime::now())` then either
//! route the call as the admitted username or send
//! `rejection.response(&request, Some(&tag))`.
//!
//! # Layout
//! - `config`: [`DigestConfig`] (realm, algorithms, lifetimes, limits) and
//!   [`ChallengeKind`] (401 or 407).
//! - `client`: [`DigestClient`]: answering 401/407 on outbound requests.
//! - `server`: [`DigestAuth`]: challenges and the verification of answers.
//! - `rules`: [`Verification`], [`Failure`], the `uri` and `nc` rules.
//! - `admission`: [`DigestAuth::admit`]: challenge, admit, or 403 after
//!   repeated failures per source and Call-ID, or by the lockout.
//! - `lockout`: [`LockoutConfig`]: online guessing limits per source and
//!   username across Call-IDs (backoff, then a block).
//! - `credentials`: [`Secret`], [`CredentialStore`], [`Credentials`].
//! - `header`: [`DigestCredentials`] parsing and printing, challenge values.
//! - `algorithm`: [`Algorithm`], [`ha1`], the response computation.
//! - `nonce`: [`NonceKey`], stateless HMAC nonces.
//! - `replay`: bounded nonce-count tracking.
//! - `allow_list`: [`IpAllowList`] of [`Cidr`] blocks.
//! - `error`: per-operation errors.

mod admission;
mod algorithm;
mod allow_list;
mod client;
mod config;
mod credentials;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod header;
mod lockout;
mod nonce;
mod replay;
mod rules;
mod server;
#[cfg(test)]
pub(crate) mod test_support;

pub use crate::log_budget::{LogBudget, LogPermit};
pub use admission::{Admission, Locked, Rejection};
pub use algorithm::{Algorithm, ha1};
pub use allow_list::{Cidr, IpAllowList};
pub use client::{
    AuthFailure, Authorization, ChallengeError, ChallengeStatus, DigestChallenge, DigestClient,
    RequestLine, os_cnonce, split_challenges,
};
pub use config::{ChallengeKind, DigestConfig};
pub use credentials::{CredentialStore, Credentials, Secret};
pub use error::{CidrError, ConfigError, CredentialsError, KeyError, SecretError};
pub use header::DigestCredentials;
pub use lockout::{Blocks, LockoutConfig, Refusal, Scope};
pub use nonce::NonceKey;
pub use rules::{Failure, Verification};
pub use server::DigestAuth;
