//! Digest authentication, client side: how an outbound leg answers a 401 or
//! 407 (RFC 3261 §22.2-22.3, RFC 2617, RFC 7616, RFC 8760).
//!
//! One [`DigestClient`] per outbound leg (or per trunk registration). The
//! leg sends its request; a `401`/`407` goes to [`DigestClient::on_challenge`],
//! which gives the credential header lines to put on the retried request
//! (new CSeq, new branch) or says why the leg fails. Any other final answer
//! goes to [`DigestClient::on_answered`]. Later requests to the same peer
//! (the BYE of the call, a re-INVITE) may carry credentials pre-emptively
//! ([`DigestClient::authorization`]), counting `nc` up on the same nonce.
//!
//! Rules, as a trunk operator expects them:
//! - Of the challenges for one realm, the first one whose algorithm is
//!   supported is answered (RFC 8760 §2.4: servers list the preferred
//!   first). Every realm challenged in one response is answered (RFC 3261
//!   §22.3: a forking proxy may add several).
//! - `qop=auth` when offered; a challenge without `qop` gets an RFC 2069
//!   answer; one offering only `auth-int` (or an unknown algorithm) is not
//!   answerable, and the leg fails rather than send something the server
//!   must refuse.
//! - `cnonce` is fresh per answer ([`os_cnonce`]: 96 random bits); `nc`
//!   counts from `00000001` per nonce.
//! - A request is answered once per realm. If the answer is challenged
//!   again, the credentials were wrong: the leg fails with that status,
//!   unless the new challenge says `stale=true` (the password was right,
//!   the nonce had expired), which earns one more retry with the new nonce.
//!
//! Nothing here does I/O: the caller passes the cnonce source in (the host
//! gives [`os_cnonce`]), so tests replay published examples exactly.

use super::algorithm::{self, Algorithm, ResponseInput};
use super::credentials::Secret;
use super::header::{DigestCredentials, parse_params};
use std::fmt;

/// At most this many realms are answered for one request, and remembered
/// for pre-emptive answers: a response listing more is a fault or an
/// attack, not a proxy chain.
const MAX_REALMS: usize = 4;

/// `stale=true` re-challenges answered per request before the leg fails:
/// one is a nonce that expired in flight; a second in a row is a server
/// that will never accept.
const MAX_STALE_RETRIES: u8 = 1;

/// One challenge value (`WWW-Authenticate` / `Proxy-Authenticate`), as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestChallenge {
    /// `realm`.
    pub realm: String,
    /// `nonce`.
    pub nonce: String,
    /// `opaque`, echoed back unchanged.
    pub opaque: Option<String>,
    /// `algorithm` exactly as written (echoed back as written); absent
    /// means MD5.
    pub algorithm: Option<String>,
    /// `qop` options, lowercased (`auth`, `auth-int`); empty when the
    /// challenge has no `qop` (RFC 2069).
    pub qop: Vec<String>,
    /// `stale=true`: the previous answer was right but its nonce expired.
    pub stale: bool,
}

/// Why a challenge value could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChallengeError {
    /// Another scheme (`Basic`, `Bearer`): for someone else.
    NotDigest,
    /// The parameters do not parse.
    Syntax(String),
    /// `realm` or `nonce` is missing.
    Missing(&'static str),
}

impl fmt::Display for ChallengeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChallengeError::NotDigest => f.write_str("not a Digest challenge"),
            ChallengeError::Syntax(why) => write!(f, "malformed challenge: {why}"),
            ChallengeError::Missing(name) => write!(f, "challenge without {name}"),
        }
    }
}

impl std::error::Error for ChallengeError {}

impl DigestChallenge {
    /// Parses one challenge (`Digest realm="..", nonce="..", ...`). Unknown
    /// parameters (`domain`, `charset`, `userhash`) are ignored.
    pub fn parse(value: &str) -> Result<DigestChallenge, ChallengeError> {
        let value = value.trim_matches(|c: char| c == ' ' || c == '\t');
        let scheme_end = value.find([' ', '\t']).unwrap_or(value.len());
        if !value[..scheme_end].eq_ignore_ascii_case("Digest") {
            return Err(ChallengeError::NotDigest);
        }
        let params = parse_params(&value[scheme_end..])
            .map_err(|e| ChallengeError::Syntax(e.to_string()))?;
        let get = |name: &str| {
            params
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        let qop = get("qop")
            .map(|options| {
                options
                    .split(',')
                    .map(|o| o.trim().to_ascii_lowercase())
                    .filter(|o| !o.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        Ok(DigestChallenge {
            realm: get("realm").ok_or(ChallengeError::Missing("realm"))?,
            nonce: get("nonce").ok_or(ChallengeError::Missing("nonce"))?,
            opaque: get("opaque"),
            algorithm: get("algorithm"),
            qop,
            stale: get("stale").is_some_and(|s| s.eq_ignore_ascii_case("true")),
        })
    }

    /// The algorithm, if this client can answer it.
    fn supported_algorithm(&self) -> Option<Algorithm> {
        match self.algorithm.as_deref() {
            None => Some(Algorithm::Md5),
            Some(name) => Algorithm::parse(name),
        }
    }

    /// How to answer: `Some(Some("auth"))`, `Some(None)` for RFC 2069, or
    /// `None` when no offered qop is supported.
    fn supported_qop(&self) -> Option<Option<&'static str>> {
        if self.qop.is_empty() {
            return Some(None);
        }
        self.qop.iter().any(|q| q == "auth").then_some(Some("auth"))
    }
}

/// Splits a header value that may hold several challenges joined by commas
/// (RFC 7235 §4.1) into one string per challenge. A new challenge starts
/// after a top-level comma where a token is followed by whitespace rather
/// than `=`: a scheme name.
pub fn split_challenges(value: &str) -> Vec<&str> {
    let bytes = value.as_bytes();
    let mut parts = Vec::new();
    let (mut start, mut i, mut quoted) = (0, 0, false);
    while i < bytes.len() {
        match bytes[i] {
            b'"' => quoted = !quoted,
            b'\\' if quoted => i += 1,
            b',' if !quoted && starts_scheme(&bytes[i + 1..]) => {
                parts.push(value[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    let last = value[start..].trim();
    if !last.is_empty() {
        parts.push(last);
    }
    parts
}

/// Whether `rest` (just past a comma) begins `token SP` and not `token =`.
fn starts_scheme(rest: &[u8]) -> bool {
    let rest = rest.trim_ascii_start();
    let token = rest
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(b))
        .count();
    if token == 0 {
        return false;
    }
    let after = &rest[token..];
    let gap = after
        .iter()
        .take_while(|b| matches!(b, b' ' | b'\t'))
        .count();
    gap > 0 && after.get(gap).is_some_and(|b| *b != b'=')
}

/// Which kind of challenge a response carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeStatus {
    /// `401` + `WWW-Authenticate`, answered in `Authorization`.
    Unauthorized,
    /// `407` + `Proxy-Authenticate`, answered in `Proxy-Authorization`.
    Proxy,
}

impl ChallengeStatus {
    /// The kind for a status code; `None` for codes other than 401 and 407.
    pub fn from_status(status: u16) -> Option<ChallengeStatus> {
        match status {
            401 => Some(ChallengeStatus::Unauthorized),
            407 => Some(ChallengeStatus::Proxy),
            _ => None,
        }
    }

    /// The status code.
    pub fn status(self) -> u16 {
        match self {
            ChallengeStatus::Unauthorized => 401,
            ChallengeStatus::Proxy => 407,
        }
    }

    /// The header that carries the challenges.
    pub fn challenge_header(self) -> &'static str {
        match self {
            ChallengeStatus::Unauthorized => "WWW-Authenticate",
            ChallengeStatus::Proxy => "Proxy-Authenticate",
        }
    }

    /// The header the answer goes in.
    pub fn credentials_header(self) -> &'static str {
        match self {
            ChallengeStatus::Unauthorized => "Authorization",
            ChallengeStatus::Proxy => "Proxy-Authorization",
        }
    }
}

/// The request being (re)sent, as the digest covers it.
#[derive(Debug, Clone, Copy)]
pub struct RequestLine<'a> {
    /// The method (`INVITE`, `BYE`).
    pub method: &'a str,
    /// The Request-URI, exactly as it goes on the wire.
    pub uri: &'a str,
}

/// Why an outbound leg gives up on authentication. The status is what the
/// call record and `conclude` see (`auth-failed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailure {
    /// The answer to this realm was challenged again without `stale=true`:
    /// wrong username or password.
    Rejected {
        /// 401 or 407.
        status: u16,
        /// The realm that refused.
        realm: String,
    },
    /// Challenged, but nothing offered can be answered: an unknown
    /// algorithm, only `auth-int`, or (with stored HA1s) no hash of the
    /// offered family.
    Unanswerable {
        /// 401 or 407.
        status: u16,
        /// What was missing, for the log.
        why: String,
    },
    /// A 401/407 without a single readable Digest challenge.
    NoChallenge {
        /// 401 or 407.
        status: u16,
    },
}

impl AuthFailure {
    /// The SIP status that ended the attempt.
    pub fn status(&self) -> u16 {
        match self {
            AuthFailure::Rejected { status, .. }
            | AuthFailure::Unanswerable { status, .. }
            | AuthFailure::NoChallenge { status } => *status,
        }
    }
}

impl fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthFailure::Rejected { status, realm } => write!(
                f,
                "{status}: credentials for realm {realm:?} refused (wrong username or password)"
            ),
            AuthFailure::Unanswerable { status, why } => {
                write!(f, "{status}: challenge cannot be answered: {why}")
            }
            AuthFailure::NoChallenge { status } => {
                write!(f, "{status} without a Digest challenge")
            }
        }
    }
}

impl std::error::Error for AuthFailure {}

/// A client nonce from the operating system's randomness: 96 bits in hex.
/// Should the OS fail to provide any, the nonce is still unique per
/// process (a counter and the time), which is all RFC 7616 needs of it:
/// the secret is the password, not the cnonce.
pub fn os_cnonce() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut bytes = [0u8; 12];
    if getrandom::fill(&mut bytes).is_err() {
        let count = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u32);
        bytes[..8].copy_from_slice(&count.to_be_bytes());
        bytes[8..].copy_from_slice(&nanos.to_be_bytes());
    }
    hex::encode(bytes)
}

/// One credential header line for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// `Authorization` or `Proxy-Authorization`.
    pub header: &'static str,
    /// `Digest username="..", ...`.
    pub value: String,
}

/// A realm's current challenge, reused for later requests.
#[derive(Debug, Clone)]
struct Session {
    kind: ChallengeStatus,
    challenge: DigestChallenge,
    algorithm: Algorithm,
    qop: Option<&'static str>,
    /// The `nc` of the last answer on this nonce.
    nc: u32,
}

/// What the request in flight has been through.
#[derive(Debug, Clone, Default)]
struct Attempt {
    /// Realms already answered for this request.
    answered: Vec<String>,
    stale_retries: u8,
}

/// The digest client of one outbound leg (see the module docs).
pub struct DigestClient {
    username: String,
    secret: Secret,
    sessions: Vec<Session>,
    attempt: Attempt,
}

impl fmt::Debug for DigestClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DigestClient")
            .field("username", &self.username)
            .field("secret", &self.secret)
            .field("realms", &self.sessions.len())
            .finish()
    }
}

impl DigestClient {
    /// A client answering as `username` with `secret` (a password, or HA1
    /// values for the realm the peer challenges with).
    pub fn new(username: impl Into<String>, secret: Secret) -> DigestClient {
        DigestClient {
            username: username.into(),
            secret,
            sessions: Vec::new(),
            attempt: Attempt::default(),
        }
    }

    /// Answers a `401`/`407` to `request`: the credential lines for the
    /// retried request (one per realm challenged), or why the leg fails.
    /// `challenges` are the values of the response's challenge header
    /// lines (see [`ChallengeStatus::challenge_header`]); `cnonce` makes
    /// each answer's client nonce ([`os_cnonce`]).
    pub fn on_challenge<'a>(
        &mut self,
        kind: ChallengeStatus,
        challenges: impl IntoIterator<Item = &'a str>,
        request: RequestLine<'_>,
        cnonce: &mut dyn FnMut() -> String,
    ) -> Result<Vec<Authorization>, AuthFailure> {
        let status = kind.status();
        // Per realm, in order of first appearance: its challenges in order.
        let mut realms: Vec<(String, Vec<DigestChallenge>)> = Vec::new();
        for line in challenges {
            for value in split_challenges(line) {
                let Ok(challenge) = DigestChallenge::parse(value) else {
                    continue;
                };
                if let Some((_, list)) = realms.iter_mut().find(|(r, _)| *r == challenge.realm) {
                    list.push(challenge);
                } else if realms.len() < MAX_REALMS {
                    realms.push((challenge.realm.clone(), vec![challenge]));
                }
            }
        }
        if realms.is_empty() {
            return Err(AuthFailure::NoChallenge { status });
        }
        let mut lines = Vec::with_capacity(realms.len());
        for (realm, list) in realms {
            let stale = list.iter().any(|c| c.stale);
            if self.attempt.answered.contains(&realm) {
                if !stale || self.attempt.stale_retries >= MAX_STALE_RETRIES {
                    return Err(AuthFailure::Rejected { status, realm });
                }
                self.attempt.stale_retries += 1;
            }
            let session = self.pick(kind, &list, status)?;
            self.sessions.retain(|s| s.challenge.realm != realm);
            if self.sessions.len() == MAX_REALMS {
                self.sessions.remove(0);
            }
            self.sessions.push(session);
            let index = self.sessions.len() - 1;
            let line =
                self.answer(index, request, cnonce)
                    .map_err(|why| AuthFailure::Unanswerable {
                        status,
                        why: why.to_string(),
                    })?;
            lines.push(line);
            if !self.attempt.answered.contains(&realm) {
                self.attempt.answered.push(realm);
            }
        }
        Ok(lines)
    }

    /// The request got a final answer other than 401/407: the next request
    /// starts its own count of retries. The nonces stay for pre-emptive use.
    pub fn on_answered(&mut self) {
        self.attempt = Attempt::default();
    }

    /// Credential lines for a new request to the same peer, from the
    /// challenges seen so far (`nc` counts up); empty before the first.
    pub fn authorization(
        &mut self,
        request: RequestLine<'_>,
        cnonce: &mut dyn FnMut() -> String,
    ) -> Vec<Authorization> {
        (0..self.sessions.len())
            .filter_map(|index| self.answer(index, request, cnonce).ok())
            .collect()
    }

    /// Of one realm's challenges, the first this client can answer.
    fn pick(
        &self,
        kind: ChallengeStatus,
        list: &[DigestChallenge],
        status: u16,
    ) -> Result<Session, AuthFailure> {
        let mut why = String::new();
        for challenge in list {
            let Some(algorithm) = challenge.supported_algorithm() else {
                why = format!(
                    "algorithm {}",
                    challenge.algorithm.as_deref().unwrap_or("?")
                );
                continue;
            };
            let Some(qop) = challenge.supported_qop() else {
                why = format!("qop {}", challenge.qop.join(","));
                continue;
            };
            if algorithm.is_session() && qop.is_none() {
                // A -sess HA1 needs the cnonce, which only travels with qop.
                why = format!("{algorithm} without qop");
                continue;
            }
            if self
                .secret
                .ha1(algorithm, &self.username, &challenge.realm)
                .is_none()
            {
                why = format!("no {} HA1 stored", algorithm.as_str());
                continue;
            }
            return Ok(Session {
                kind,
                challenge: challenge.clone(),
                algorithm,
                qop,
                nc: 0,
            });
        }
        Err(AuthFailure::Unanswerable { status, why })
    }

    /// The credentials for session `index` on `request`, counting `nc` up.
    fn answer(
        &mut self,
        index: usize,
        request: RequestLine<'_>,
        cnonce: &mut dyn FnMut() -> String,
    ) -> Result<Authorization, &'static str> {
        let session = &mut self.sessions[index];
        let ha1 = self
            .secret
            .ha1(session.algorithm, &self.username, &session.challenge.realm)
            .ok_or("no HA1 for the algorithm")?;
        session.nc = session.nc.checked_add(1).ok_or("nonce count exhausted")?;
        let nc = format!("{:08x}", session.nc);
        let cnonce = cnonce();
        let uses_cnonce = session.qop.is_some() || session.algorithm.is_session();
        let response = algorithm::response(&ResponseInput {
            algorithm: session.algorithm,
            ha1: &ha1,
            nonce: &session.challenge.nonce,
            qop: session.qop.map(|qop| (nc.as_str(), cnonce.as_str(), qop)),
            cnonce: &cnonce,
            method: request.method,
            uri: request.uri,
        });
        let credentials = DigestCredentials {
            username: self.username.clone(),
            realm: session.challenge.realm.clone(),
            nonce: session.challenge.nonce.clone(),
            uri: request.uri.to_string(),
            response,
            algorithm: session.challenge.algorithm.clone(),
            cnonce: uses_cnonce.then_some(cnonce),
            opaque: session.challenge.opaque.clone(),
            qop: session.qop.map(str::to_string),
            nc: session.qop.map(|_| nc),
        };
        Ok(Authorization {
            header: session.kind.credentials_header(),
            value: credentials.to_string(),
        })
    }
}

#[cfg(test)]
mod tests;
