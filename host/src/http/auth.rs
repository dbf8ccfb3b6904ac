//! API keys: `Authorization: Bearer <key>` against the config's
//! `[[http.keys]]`, and what each key may see.
//!
//! Keys are compared as SHA-256 digests with a constant-time equality, and
//! every configured key is compared on every request: how long the check
//! takes says nothing about how much of a guess was right, nor about how
//! long the real keys are. Keys never reach a log line or an error message;
//! only a key's `name` does.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::AppState;
use super::error::ApiError;
use crate::config::ApiKey;

/// Which tenants' calls and records a key sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Tenant `*`: every tenant (an operator's key).
    All,
    /// One tenant: calls of trunks with this tenant, and their records.
    Tenant(String),
}

/// The key a request came with, once checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The key's `name` from the config (safe to log).
    pub name: String,
    /// What it may see.
    pub scope: Scope,
}

impl Caller {
    /// Whether this key may see a call or record of `tenant`.
    pub fn sees(&self, tenant: &str) -> bool {
        match &self.scope {
            Scope::All => true,
            Scope::Tenant(t) => t == tenant,
        }
    }
}

struct Entry {
    digest: [u8; 32],
    caller: Caller,
}

/// The configured keys, kept only as digests.
pub struct Keys {
    entries: Vec<Entry>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self
            .entries
            .iter()
            .map(|e| e.caller.name.as_str())
            .collect();
        f.debug_struct("Keys").field("names", &names).finish()
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

impl Keys {
    /// The keys of the config. An empty key can never match (it would let
    /// `Authorization: Bearer ` in).
    pub fn new(keys: &[ApiKey]) -> Keys {
        let entries = keys
            .iter()
            .filter(|k| !k.key.is_empty())
            .map(|k| Entry {
                digest: digest(k.key.as_bytes()),
                caller: Caller {
                    name: k.name.clone(),
                    scope: if k.tenant == "*" {
                        Scope::All
                    } else {
                        Scope::Tenant(k.tenant.clone())
                    },
                },
            })
            .collect();
        Keys { entries }
    }

    /// Checks a request's headers.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        let value = headers.get(AUTHORIZATION).ok_or(ApiError::Unauthorized(
            "send the API key as 'Authorization: Bearer <key>'",
        ))?;
        let token = bearer_token(value).ok_or(ApiError::Unauthorized(
            "the Authorization header must be 'Bearer <key>'",
        ))?;
        let presented = digest(token);
        let mut found = None;
        for entry in &self.entries {
            // No early exit: every key is compared whatever matched.
            if bool::from(entry.digest.ct_eq(&presented)) {
                found = Some(&entry.caller);
            }
        }
        found
            .cloned()
            .ok_or(ApiError::Unauthorized("the API key is not valid"))
    }
}

/// The key of `Bearer <key>` (scheme case-insensitive, RFC 7235 §2.1).
fn bearer_token(value: &HeaderValue) -> Option<&[u8]> {
    let v = value.as_bytes();
    let (scheme, rest) = v.split_at(v.iter().position(|b| *b == b' ')?);
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, ApiError> {
        let result = state.keys.authenticate(&parts.headers);
        if let Err(e) = &result {
            // The reason only; the header's value is a secret even when wrong
            // (it may be a real key of another deployment, or a typo of ours).
            tracing::debug!(path = %parts.uri.path(), reason = %e, "API request refused");
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys::new(&[
            ApiKey {
                name: "five9".into(),
                key: "k-five9-secret".into(),
                tenant: "five9".into(),
            },
            ApiKey {
                name: "ops".into(),
                key: "k-ops-secret".into(),
                tenant: "*".into(),
            },
            ApiKey {
                name: "blank".into(),
                key: String::new(),
                tenant: "*".into(),
            },
        ])
    }

    fn with_auth(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn bearer_keys_are_checked() {
        let keys = keys();
        let table: [(&str, Option<&str>); 10] = [
            ("Bearer k-five9-secret", Some("five9")),
            ("bearer k-five9-secret", Some("five9")),
            ("BEARER   k-ops-secret  ", Some("ops")),
            ("Bearer k-five9-secre", None),
            ("Bearer k-five9-secretX", None),
            ("Bearer ", None),
            ("Bearer", None),
            ("Basic azpr", None),
            ("k-five9-secret", None),
            ("Token k-five9-secret", None),
        ];
        for (header, want) in table {
            let got = keys.authenticate(&with_auth(header));
            assert_eq!(
                got.ok().map(|c| c.name),
                want.map(str::to_owned),
                "{header:?}"
            );
        }
        let missing = keys.authenticate(&HeaderMap::new()).unwrap_err();
        assert_eq!(missing.status().as_u16(), 401);
    }

    #[test]
    fn scopes_limit_what_a_key_sees() {
        let keys = keys();
        let five9 = keys
            .authenticate(&with_auth("Bearer k-five9-secret"))
            .unwrap();
        assert!(five9.sees("five9"));
        assert!(!five9.sees("acme"));
        assert!(
            !five9.sees("*"),
            "a tenant named '*' is not a wildcard for a tenant key"
        );
        let ops = keys
            .authenticate(&with_auth("Bearer k-ops-secret"))
            .unwrap();
        assert_eq!(ops.scope, Scope::All);
        assert!(ops.sees("five9") && ops.sees("acme"));
    }

    #[test]
    fn keys_never_show_in_debug_output_or_errors() {
        let keys = keys();
        let debug = format!("{keys:?}");
        assert!(
            debug.contains("five9") && !debug.contains("secret"),
            "{debug}"
        );
        let e = keys
            .authenticate(&with_auth("Bearer k-wrong-secret"))
            .unwrap_err();
        assert!(!e.to_string().contains("secret"), "{e}");
    }
}
