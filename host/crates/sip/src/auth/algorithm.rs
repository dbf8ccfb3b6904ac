//! Digest algorithms (RFC 7616 §3.4.1, RFC 8760) and the response
//! computation (RFC 7616 §3.4.1-3.4.3, RFC 2617 §3.2.2).
//!
//! Every intermediate value is the lowercase hex of a hash, joined with `:`
//! before hashing again; a peer that hashes uppercase hex computes another
//! response, so nothing here is case-folded.

use md5::Md5;
use sha2::{Digest, Sha256};
use std::fmt;

/// A digest algorithm the gateway can offer and verify.
///
/// SHA-512-256 (RFC 7616, RFC 8760) is left out: no SIP peer Trunkline
/// talks to (Five9, SIPp, common SBCs) offers it, and each algorithm added
/// is one more challenge header in every 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `MD5`: the only one RFC 3261 knows; every SIP peer speaks it.
    Md5,
    /// `MD5-sess`: HA1 also covers the nonce and the client's cnonce.
    Md5Sess,
    /// `SHA-256` (RFC 7616, RFC 8760): offered first where configured.
    Sha256,
    /// `SHA-256-sess`.
    Sha256Sess,
}

/// The hash function underneath an algorithm; `-sess` variants share it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HashFn {
    Md5,
    Sha256,
}

const NAMES: &[(&str, Algorithm)] = &[
    ("MD5", Algorithm::Md5),
    ("MD5-sess", Algorithm::Md5Sess),
    ("SHA-256", Algorithm::Sha256),
    ("SHA-256-sess", Algorithm::Sha256Sess),
];

impl Algorithm {
    /// Parses an `algorithm=` value, case-insensitively (RFC 7616 §3.3 says
    /// the token is case-insensitive; peers send `md5` and `MD5` alike).
    pub fn parse(text: &str) -> Option<Algorithm> {
        NAMES
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(text.trim()))
            .map(|(_, algorithm)| *algorithm)
    }

    /// The name as RFC 7616 writes it.
    pub fn as_str(self) -> &'static str {
        NAMES
            .iter()
            .find(|(_, algorithm)| *algorithm == self)
            .map_or("MD5", |(name, _)| name)
    }

    /// Whether HA1 is re-hashed with the nonce and cnonce (`-sess`).
    pub fn is_session(self) -> bool {
        matches!(self, Algorithm::Md5Sess | Algorithm::Sha256Sess)
    }

    pub(crate) fn hash_fn(self) -> HashFn {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => HashFn::Md5,
            Algorithm::Sha256 | Algorithm::Sha256Sess => HashFn::Sha256,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl HashFn {
    /// Hex digits in this hash's output.
    pub(crate) fn hex_len(self) -> usize {
        match self {
            HashFn::Md5 => 32,
            HashFn::Sha256 => 64,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            HashFn::Md5 => "MD5",
            HashFn::Sha256 => "SHA-256",
        }
    }

    /// Lowercase hex of the hash of `parts` joined with `:`.
    pub(crate) fn hex(self, parts: &[&str]) -> String {
        fn run<D: Digest>(parts: &[&str]) -> String {
            let mut hasher = D::new();
            for (i, part) in parts.iter().enumerate() {
                if i > 0 {
                    hasher.update(b":");
                }
                hasher.update(part.as_bytes());
            }
            hex::encode(hasher.finalize())
        }
        match self {
            HashFn::Md5 => run::<Md5>(parts),
            HashFn::Sha256 => run::<Sha256>(parts),
        }
    }
}

/// HA1 of a password, `H(username:realm:password)`, in lowercase hex: what an
/// operator may store instead of the password (see
/// [`super::Secret::hashed`]). For `-sess` algorithms this is the inner
/// hash the session HA1 is derived from.
pub fn ha1(algorithm: Algorithm, username: &str, realm: &str, password: &str) -> String {
    algorithm.hash_fn().hex(&[username, realm, password])
}

/// What the `response` parameter covers, as the peer sent it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ResponseInput<'a> {
    pub(crate) algorithm: Algorithm,
    /// `H(username:realm:password)` in lowercase hex.
    pub(crate) ha1: &'a str,
    pub(crate) nonce: &'a str,
    /// `(nc, cnonce, qop)` exactly as written; `None` for RFC 2069 responses.
    pub(crate) qop: Option<(&'a str, &'a str, &'a str)>,
    /// Only read by `-sess` algorithms, which need it even without qop.
    pub(crate) cnonce: &'a str,
    pub(crate) method: &'a str,
    pub(crate) uri: &'a str,
}

/// The expected `response` value, in lowercase hex.
pub(crate) fn response(input: &ResponseInput<'_>) -> String {
    let hash = input.algorithm.hash_fn();
    let session_ha1;
    let ha1 = if input.algorithm.is_session() {
        session_ha1 = hash.hex(&[input.ha1, input.nonce, input.cnonce]);
        session_ha1.as_str()
    } else {
        input.ha1
    };
    let ha2 = hash.hex(&[input.method, input.uri]);
    match input.qop {
        Some((nc, cnonce, qop)) => hash.hex(&[ha1, input.nonce, nc, cnonce, qop, &ha2]),
        None => hash.hex(&[ha1, input.nonce, &ha2]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_case_insensitively() {
        for (name, algorithm) in NAMES {
            assert_eq!(Algorithm::parse(name), Some(*algorithm));
            assert_eq!(Algorithm::parse(&name.to_lowercase()), Some(*algorithm));
            assert_eq!(algorithm.to_string(), *name);
        }
        for bad in ["", "SHA256", "SHA-512-256", "AKAv1-MD5", "MD5 sess"] {
            assert_eq!(Algorithm::parse(bad), None, "{bad:?}");
        }
    }

    /// Published examples; the expected values were also recomputed with
    /// Python's hashlib, independently of this code.
    #[test]
    fn published_examples() {
        struct Case {
            what: &'static str,
            algorithm: Algorithm,
            user_realm_password: [&'static str; 3],
            nonce: &'static str,
            qop: Option<(&'static str, &'static str, &'static str)>,
            cnonce: &'static str,
            method_uri: [&'static str; 2],
            response: &'static str,
        }
        const N2617: &str = "dcd98b7102dd2f0e8b11d0f600bfb0c093";
        const N7616: &str = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
        const C7616: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
        let table = [
            Case {
                what: "RFC 2617 §3.5",
                algorithm: Algorithm::Md5,
                user_realm_password: ["Mufasa", "testrealm@host.com", "Circle Of Life"],
                nonce: N2617,
                qop: Some(("00000001", "0a4f113b", "auth")),
                cnonce: "0a4f113b",
                method_uri: ["GET", "/dir/index.html"],
                response: "6629fae49393a05397450978507c4ef1",
            },
            Case {
                what: "RFC 7616 §3.9.1 MD5",
                algorithm: Algorithm::Md5,
                user_realm_password: ["Mufasa", "http-auth@example.org", "Circle of Life"],
                nonce: N7616,
                qop: Some(("00000001", C7616, "auth")),
                cnonce: C7616,
                method_uri: ["GET", "/dir/index.html"],
                response: "8ca523f5e9506fed4657c9700eebdbec",
            },
            Case {
                what: "RFC 7616 §3.9.1 SHA-256",
                algorithm: Algorithm::Sha256,
                user_realm_password: ["Mufasa", "http-auth@example.org", "Circle of Life"],
                nonce: N7616,
                qop: Some(("00000001", C7616, "auth")),
                cnonce: C7616,
                method_uri: ["GET", "/dir/index.html"],
                response: "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
            },
            Case {
                what: "RFC 2069 (no qop), as SIPp answers a challenge without qop",
                algorithm: Algorithm::Md5,
                user_realm_password: ["testuser", "testrealm@host.com", "secret"],
                nonce: N2617,
                qop: None,
                cnonce: "",
                method_uri: ["REGISTER", "sip:sip:example.com"],
                response: "db94e01e92f2b09a52a234eeca8b90f7",
            },
            Case {
                what: "MD5-sess on the RFC 2617 example",
                algorithm: Algorithm::Md5Sess,
                user_realm_password: ["Mufasa", "testrealm@host.com", "Circle Of Life"],
                nonce: N2617,
                qop: Some(("00000001", "0a4f113b", "auth")),
                cnonce: "0a4f113b",
                method_uri: ["GET", "/dir/index.html"],
                response: "8e3825c57e897f5a0dec6c2d4e5059d0",
            },
            Case {
                what: "SHA-256-sess on the RFC 7616 example",
                algorithm: Algorithm::Sha256Sess,
                user_realm_password: ["Mufasa", "http-auth@example.org", "Circle of Life"],
                nonce: N7616,
                qop: Some(("00000001", C7616, "auth")),
                cnonce: C7616,
                method_uri: ["GET", "/dir/index.html"],
                response: "2fd51b3a77ad75bad6afad6003e818d767133c46d9e2749e7f5232ae1ea3efd7",
            },
        ];
        for case in table {
            let [user, realm, password] = case.user_realm_password;
            let ha1 = ha1(case.algorithm, user, realm, password);
            let [method, uri] = case.method_uri;
            let input = ResponseInput {
                algorithm: case.algorithm,
                ha1: &ha1,
                nonce: case.nonce,
                qop: case.qop,
                cnonce: case.cnonce,
                method,
                uri,
            };
            assert_eq!(response(&input), case.response, "{}", case.what);
            let wrong = super::ha1(case.algorithm, user, realm, "circle of life");
            let input = ResponseInput {
                ha1: &wrong,
                ..input
            };
            assert_ne!(response(&input), case.response, "{}", case.what);
        }
    }

    #[test]
    fn ha1_is_hex_of_the_right_length() {
        assert_eq!(
            ha1(
                Algorithm::Md5,
                "Mufasa",
                "testrealm@host.com",
                "Circle Of Life"
            ),
            "939e7578ed9e3c518a452acee763bce9"
        );
        let sha = ha1(
            Algorithm::Sha256Sess,
            "Mufasa",
            "http-auth@example.org",
            "Circle of Life",
        );
        assert_eq!(
            sha,
            "7987c64c30e25f1b74be53f966b49b90f2808aa92faf9a00262392d7b4794232"
        );
        assert_eq!(sha.len(), HashFn::Sha256.hex_len());
    }
}
