//! Reading `Authorization` / `Proxy-Authorization` values and writing
//! `WWW-Authenticate` / `Proxy-Authenticate` values (RFC 3261 §25.1
//! `credentials` and `challenge`, RFC 7616 §3.3-3.4).
//!
//! Written by hand rather than through rsip: the response is a hash over the
//! exact text of `uri`, `nonce`, `nc`, `cnonce` and `qop`, so the values must
//! come out byte for byte as the peer wrote them (escapes removed), and a
//! malformed header must be refused, never guessed at.

use super::algorithm::Algorithm;
use super::error::CredentialsError;
use std::fmt;

/// The digest credentials of one `Authorization` or `Proxy-Authorization`
/// line. Values are unquoted and unescaped; parameter names were matched
/// case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestCredentials {
    /// `username`.
    pub username: String,
    /// `realm`: which of our challenges this answers.
    pub realm: String,
    /// `nonce`, echoed from the challenge.
    pub nonce: String,
    /// `uri`: must be the Request-URI (RFC 2617 §3.2.2.5).
    pub uri: String,
    /// `response`: the hex digest being checked.
    pub response: String,
    /// `algorithm` as written; absent means MD5.
    pub algorithm: Option<String>,
    /// `cnonce`: the client's nonce, required with `qop`.
    pub cnonce: Option<String>,
    /// `opaque`, echoed from the challenge.
    pub opaque: Option<String>,
    /// `qop`: `auth` for every response this server accepts, absent for
    /// RFC 2069 ones.
    pub qop: Option<String>,
    /// `nc`: the nonce count, 8 hex digits.
    pub nc: Option<String>,
}

impl DigestCredentials {
    /// Parses one credentials value (`Digest username="..", ...`).
    /// Unknown parameters are ignored (RFC 7616 §3.4 `auth-param`).
    pub fn parse(value: &str) -> Result<DigestCredentials, CredentialsError> {
        let value = value.trim_matches(|c: char| c == ' ' || c == '\t');
        let scheme_end = value.find([' ', '\t']).unwrap_or(value.len());
        if !value[..scheme_end].eq_ignore_ascii_case("Digest") {
            return Err(CredentialsError::NotDigest);
        }
        let params = parse_params(&value[scheme_end..])?;
        let get = |name: &str| {
            params
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        let require = |name: &'static str| get(name).ok_or(CredentialsError::Missing(name));
        if get("userhash").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Err(CredentialsError::Unsupported("userhash"));
        }
        Ok(DigestCredentials {
            username: require("username")?,
            realm: require("realm")?,
            nonce: require("nonce")?,
            uri: require("uri")?,
            response: require("response")?,
            algorithm: get("algorithm"),
            cnonce: get("cnonce"),
            opaque: get("opaque"),
            qop: get("qop"),
            nc: get("nc"),
        })
    }
}

impl fmt::Display for DigestCredentials {
    /// RFC 7616 form: strings quoted, `algorithm`, `qop` and `nc` as tokens.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Digest username={}, realm={}, nonce={}, uri={}, response={}",
            Quoted(&self.username),
            Quoted(&self.realm),
            Quoted(&self.nonce),
            Quoted(&self.uri),
            Quoted(&self.response)
        )?;
        if let Some(algorithm) = &self.algorithm {
            write!(f, ", algorithm={}", Token(algorithm))?;
        }
        if let Some(cnonce) = &self.cnonce {
            write!(f, ", cnonce={}", Quoted(cnonce))?;
        }
        if let Some(opaque) = &self.opaque {
            write!(f, ", opaque={}", Quoted(opaque))?;
        }
        if let Some(qop) = &self.qop {
            write!(f, ", qop={}", Token(qop))?;
        }
        if let Some(nc) = &self.nc {
            write!(f, ", nc={}", Token(nc))?;
        }
        Ok(())
    }
}

/// A challenge value: `Digest realm="..", nonce="..", opaque="..",
/// algorithm=SHA-256, qop="auth"` and `stale=true` where due. `qop` is
/// quoted (RFC 7616 `qop-options`); `algorithm` and `stale` are tokens.
pub(crate) fn challenge_value(
    realm: &str,
    nonce: &str,
    opaque: &str,
    algorithm: Algorithm,
    stale: bool,
) -> String {
    let mut value = format!(
        "Digest realm={}, nonce={}, opaque={}, algorithm={algorithm}, qop=\"auth\"",
        Quoted(realm),
        Quoted(nonce),
        Quoted(opaque)
    );
    if stale {
        value.push_str(", stale=true");
    }
    value
}

/// Prints a token as is, and anything else (a peer's odd `qop="a b"`) quoted
/// so that it parses back to the same value.
struct Token<'a>(&'a str);

impl fmt::Display for Token<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.0.is_empty() && self.0.bytes().all(is_token_byte) {
            f.write_str(self.0)
        } else {
            Quoted(self.0).fmt(f)
        }
    }
}

/// Prints a string as a quoted-string, escaping `"` and `\`.
struct Quoted<'a>(&'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for c in self.0.chars() {
            if c == '"' || c == '\\' {
                f.write_str("\\")?;
            }
            write!(f, "{c}")?;
        }
        f.write_str("\"")
    }
}

/// RFC 3261 §25.1 `token` characters.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

fn is_lws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Parses `name=value` pairs separated by commas; names lowercased, values
/// unquoted. Empty list elements (`a=1,,b=2`) are tolerated as RFC 7230
/// §7 lists allow.
pub(super) fn parse_params(text: &str) -> Result<Vec<(String, String)>, CredentialsError> {
    let bytes = text.as_bytes();
    let mut params: Vec<(String, String)> = Vec::new();
    let mut i = 0;
    loop {
        while i < bytes.len() && (is_lws(bytes[i]) || bytes[i] == b',') {
            i += 1;
        }
        if i == bytes.len() {
            break;
        }
        let name_start = i;
        while i < bytes.len() && is_token_byte(bytes[i]) {
            i += 1;
        }
        if i == name_start {
            return Err(CredentialsError::Syntax("expected a parameter name"));
        }
        // Token bytes are ASCII, so these slices sit on char boundaries.
        let name = text[name_start..i].to_ascii_lowercase();
        while i < bytes.len() && is_lws(bytes[i]) {
            i += 1;
        }
        if bytes.get(i) != Some(&b'=') {
            return Err(CredentialsError::Syntax("expected '=' after a name"));
        }
        i += 1;
        while i < bytes.len() && is_lws(bytes[i]) {
            i += 1;
        }
        let value = if bytes.get(i) == Some(&b'"') {
            let (value, next) = read_quoted(text, i + 1)?;
            i = next;
            value
        } else {
            // Strictly a token, but peers also send unquoted URIs and other
            // non-token characters here; whatever it is gets hashed as is.
            let start = i;
            while i < bytes.len() && !is_lws(bytes[i]) && !matches!(bytes[i], b',' | b'"') {
                i += 1;
            }
            if i == start {
                return Err(CredentialsError::Syntax("empty parameter value"));
            }
            text[start..i].to_string()
        };
        while i < bytes.len() && is_lws(bytes[i]) {
            i += 1;
        }
        if i < bytes.len() && bytes[i] != b',' {
            return Err(CredentialsError::Syntax("expected ',' between parameters"));
        }
        if params.iter().any(|(n, _)| *n == name) {
            return Err(CredentialsError::Duplicate(name));
        }
        params.push((name, value));
    }
    Ok(params)
}

/// Reads a quoted string whose content starts at `start` (just past the
/// opening quote); returns the unescaped content and the index past the
/// closing quote.
fn read_quoted(text: &str, start: usize) -> Result<(String, usize), CredentialsError> {
    let mut value = String::new();
    let mut chars = text[start..].char_indices();
    while let Some((offset, c)) = chars.next() {
        match c {
            '"' => return Ok((value, start + offset + 1)),
            '\\' => match chars.next() {
                Some((_, escaped)) if escaped != '\r' && escaped != '\n' => value.push(escaped),
                _ => return Err(CredentialsError::Syntax("bad escape in quoted string")),
            },
            _ => value.push(c),
        }
    }
    Err(CredentialsError::UnterminatedQuote)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SIPp's `[authentication]` output: no spaces, `nc` and `qop` unquoted,
    /// `cnonce` first.
    const SIPP: &str = "Digest username=\"five9\",realm=\"trunk.example\",\
        cnonce=\"6b8b4567327b23c6\",nc=00000001,qop=auth,\
        uri=\"sip:18005550100@192.0.2.10:5060\",nonce=\"abc\",\
        response=\"0123456789abcdef0123456789abcdef\",algorithm=MD5,opaque=\"op\"";

    fn creds(username: &str, qop: Option<&str>, nc: Option<&str>) -> DigestCredentials {
        DigestCredentials {
            username: username.into(),
            realm: "trunk.example".into(),
            nonce: "abc".into(),
            uri: "sip:18005550100@192.0.2.10:5060".into(),
            response: "0123456789abcdef0123456789abcdef".into(),
            algorithm: Some("MD5".into()),
            cnonce: qop.map(|_| "6b8b4567327b23c6".into()),
            opaque: Some("op".into()),
            qop: qop.map(Into::into),
            nc: nc.map(Into::into),
        }
    }

    #[test]
    fn parse_table() {
        let sipp = creds("five9", Some("auth"), Some("00000001"));
        let table: Vec<(&str, DigestCredentials)> = vec![
            (SIPP, sipp.clone()),
            // Case-insensitive scheme and names, LWS around '=' and ',',
            // folded lines already unfolded into spaces, quoted qop.
            (
                "digest  USERNAME = \"five9\" ,Realm=\"trunk.example\", CNonce=\"6b8b4567327b23c6\" , \
                 NC=00000001, QOP=\"auth\", URI=\"sip:18005550100@192.0.2.10:5060\", \
                 Nonce=\"abc\", Response=\"0123456789abcdef0123456789abcdef\", \
                 Algorithm=MD5, Opaque=\"op\",",
                sipp,
            ),
            // Escapes: a quote and a backslash inside the username.
            (
                "Digest username=\"a\\\"b\\\\c\", realm=\"trunk.example\", nonce=\"abc\", \
                 uri=\"sip:18005550100@192.0.2.10:5060\", \
                 response=\"0123456789abcdef0123456789abcdef\", algorithm=MD5, opaque=\"op\"",
                creds("a\"b\\c", None, None),
            ),
            // Non-ASCII and a comma inside quotes; unknown params ignored.
            (
                "Digest username=\"jos\u{e9}, jr\", realm=\"trunk.example\", nonce=\"abc\", \
                 uri=\"sip:18005550100@192.0.2.10:5060\", x-foo=bar, \
                 response=\"0123456789abcdef0123456789abcdef\", algorithm=MD5, opaque=\"op\"",
                creds("jos\u{e9}, jr", None, None),
            ),
        ];
        for (input, expected) in table {
            let parsed = DigestCredentials::parse(input).unwrap_or_else(|e| panic!("{e}: {input}"));
            assert_eq!(parsed, expected, "{input}");
            let printed = parsed.to_string();
            assert_eq!(
                DigestCredentials::parse(&printed).as_ref(),
                Ok(&parsed),
                "round trip of {printed}"
            );
        }
    }

    #[test]
    fn malformed_values_are_refused() {
        use CredentialsError::*;
        let ok_tail = "realm=\"r\", nonce=\"n\", uri=\"sip:a@b\", response=\"00\"";
        let table: Vec<(String, CredentialsError)> = vec![
            ("Basic dXNlcjpwYXNz".into(), NotDigest),
            ("".into(), NotDigest),
            ("Digestusername=\"u\"".into(), NotDigest),
            (format!("Digest {ok_tail}"), Missing("username")),
            (
                "Digest username=\"u\", realm=\"r\", uri=\"x\", response=\"0\"".into(),
                Missing("nonce"),
            ),
            (format!("Digest {ok_tail}, username=\"u"), UnterminatedQuote),
            (
                format!("Digest username=\"u\", username=\"v\", {ok_tail}"),
                Duplicate("username".into()),
            ),
            (
                format!("Digest Username=\"u\", USERNAME=\"v\", {ok_tail}"),
                Duplicate("username".into()),
            ),
            (
                format!("Digest username \"u\", {ok_tail}"),
                Syntax("expected '=' after a name"),
            ),
            (
                format!("Digest username=, {ok_tail}"),
                Syntax("empty parameter value"),
            ),
            (
                format!("Digest username=\"u\" realm=\"r\", {ok_tail}"),
                Syntax("expected ',' between parameters"),
            ),
            (
                format!("Digest =\"u\", {ok_tail}"),
                Syntax("expected a parameter name"),
            ),
            (
                "Digest username=\"u\\".to_string(),
                Syntax("bad escape in quoted string"),
            ),
            (
                format!("Digest username=\"u\", userhash=true, {ok_tail}"),
                Unsupported("userhash"),
            ),
        ];
        for (input, expected) in table {
            assert_eq!(DigestCredentials::parse(&input), Err(expected), "{input}");
        }
    }

    #[test]
    fn challenges_quote_and_escape() {
        let table = [
            (
                ("trunk.example", Algorithm::Sha256, false),
                "Digest realm=\"trunk.example\", nonce=\"N\", opaque=\"O\", \
                 algorithm=SHA-256, qop=\"auth\"",
            ),
            (
                ("a \"b\" \\c", Algorithm::Md5, true),
                "Digest realm=\"a \\\"b\\\" \\\\c\", nonce=\"N\", opaque=\"O\", \
                 algorithm=MD5, qop=\"auth\", stale=true",
            ),
        ];
        for ((realm, algorithm, stale), expected) in table {
            assert_eq!(challenge_value(realm, "N", "O", algorithm, stale), expected);
        }
    }

    /// xorshift64*, deterministic so that a failure reproduces.
    fn next(state: &mut u64) -> u64 {
        *state ^= *state >> 12;
        *state ^= *state << 25;
        *state ^= *state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    #[test]
    fn random_and_mutated_input_never_panics() {
        const ALPHABET: &[u8] =
            b"Digest username=\"\\,\t \r\nrealm nonce uri qop=auth nc cnonce\xc3\xa9";
        let mut state = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..5000 {
            let len = (next(&mut state) % 80) as usize;
            let mut bytes: Vec<u8> = (0..len)
                .map(|_| ALPHABET[(next(&mut state) % ALPHABET.len() as u64) as usize])
                .collect();
            if next(&mut state).is_multiple_of(2) {
                bytes.splice(0..0, SIPP.bytes());
                let at = (next(&mut state) as usize) % bytes.len();
                bytes.truncate(at);
            }
            let text = String::from_utf8_lossy(&bytes);
            if let Ok(parsed) = DigestCredentials::parse(&text) {
                assert_eq!(
                    DigestCredentials::parse(&parsed.to_string()),
                    Ok(parsed),
                    "{text:?}"
                );
            }
        }
    }
}
