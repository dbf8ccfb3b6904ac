//! Keeping secrets out of logs.
//!
//! Two layers, because secrets reach log lines in two ways:
//!
//! - **Known values.** API keys and trunk digest passwords come from the
//!   config; tenant tokens arrive in INVITE headers. Each is registered with
//!   [`Secrets`] and the log writer ([`RedactingWriter`]) replaces every
//!   occurrence in a finished line with `[redacted]`, whatever code (or
//!   policy, through its `log` import) wrote it.
//! - **Secret-bearing headers.** [`redact_message`] rewrites a SIP message's
//!   text for the SIP trace: `Authorization`/`Proxy-Authorization` keep the
//!   scheme and user but lose `response`, `nonce` and `cnonce`; headers whose
//!   names look like credentials (`*token*`, `*secret*`, `*password*`,
//!   `*api-key*`, `*apikey*`) lose their value.
//!
//! Config parse errors are rendered by [`config_error`], which never
//! quotes the file (see `toml_error`).

mod toml_error;

pub use toml_error::config_error;

use std::collections::HashMap;
use std::io::{self, Write};
use std::sync::{Arc, OnceLock, RwLock};

/// What replaces a secret.
pub const REDACTED: &str = "[redacted]";

/// Secrets shorter than this are not scrubbed by value (a 3-character
/// "secret" would blank ordinary words); they are still dropped from SIP
/// traces by header name.
const MIN_SECRET: usize = 6;

/// The process's registered secret values (reference-counted, so a token
/// shared by concurrent calls stays registered until the last one ends).
#[derive(Debug, Default)]
pub struct Secrets {
    values: RwLock<HashMap<String, usize>>,
}

impl Secrets {
    /// The process-wide set the log writer consults.
    pub fn global() -> &'static Arc<Secrets> {
        static GLOBAL: OnceLock<Arc<Secrets>> = OnceLock::new();
        GLOBAL.get_or_init(|| Arc::new(Secrets::default()))
    }

    /// Registers `value` (no-op for short or empty values).
    pub fn add(&self, value: &str) {
        let value = value.trim();
        if value.len() < MIN_SECRET {
            return;
        }
        let mut v = self.values.write().unwrap_or_else(|p| p.into_inner());
        *v.entry(value.to_owned()).or_default() += 1;
    }

    /// Drops one registration of `value`.
    pub fn remove(&self, value: &str) {
        let value = value.trim();
        let mut v = self.values.write().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = v.get_mut(value) {
            *n -= 1;
            if *n == 0 {
                v.remove(value);
            }
        }
    }

    /// `text` with every registered value replaced by [`REDACTED`].
    pub fn scrub(&self, text: &str) -> String {
        let v = self.values.read().unwrap_or_else(|p| p.into_inner());
        let mut out = text.to_owned();
        for secret in v.keys() {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), REDACTED);
            }
        }
        out
    }
}

/// Whether a header named `name` carries a credential in its value.
pub fn is_secret_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n == "authorization"
        || n == "proxy-authorization"
        || ["token", "secret", "password", "api-key", "apikey"]
            .iter()
            .any(|w| n.contains(w))
}

/// The values of a message's credential headers (tokens, whole digest
/// `Authorization` values), to register with [`Secrets`] for a call.
pub fn secret_values<'a>(headers: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<String> {
    headers
        .into_iter()
        .filter(|(name, _)| is_secret_header(name))
        .flat_map(|(name, value)| {
            if name.eq_ignore_ascii_case("authorization")
                || name.eq_ignore_ascii_case("proxy-authorization")
            {
                digest_secrets(value)
            } else {
                vec![value.trim().to_owned()]
            }
        })
        .collect()
}

/// The parameters of a digest credential that must not be logged.
fn digest_secrets(value: &str) -> Vec<String> {
    value
        .split(',')
        .filter_map(|part| {
            let (k, v) = part.split_once('=')?;
            let k = k.trim().rsplit(' ').next()?.to_ascii_lowercase();
            matches!(k.as_str(), "response" | "nonce" | "cnonce")
                .then(|| v.trim().trim_matches('"').to_owned())
        })
        .collect()
}

/// Values registered with the global [`Secrets`] for as long as this lives
/// (a call's tokens: registered on the INVITE, dropped with the call).
#[derive(Debug, Default)]
pub struct Registered(Vec<String>);

impl Registered {
    /// Registers `values` globally.
    pub fn new(values: Vec<String>) -> Registered {
        let global = Secrets::global();
        for v in &values {
            global.add(v);
        }
        Registered(values)
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        let global = Secrets::global();
        for v in &self.0 {
            global.remove(v);
        }
    }
}

/// A SIP message's text with credential header values replaced (see the
/// module docs). Lines are kept; the body is untouched.
pub fn redact_message(text: &str) -> String {
    let (head, body) = match text.find("\r\n\r\n") {
        Some(i) => text.split_at(i),
        None => (text, ""),
    };
    let mut out = String::with_capacity(text.len());
    for (i, line) in head.split("\r\n").enumerate() {
        if i > 0 {
            out.push_str("\r\n");
        }
        match line.split_once(':') {
            Some((name, value)) if i > 0 && is_secret_header(name.trim()) => {
                out.push_str(name);
                out.push(':');
                if name.trim().eq_ignore_ascii_case("authorization")
                    || name.trim().eq_ignore_ascii_case("proxy-authorization")
                {
                    let mut v = value.to_owned();
                    for s in digest_secrets(value) {
                        if !s.is_empty() {
                            v = v.replace(&s, REDACTED);
                        }
                    }
                    out.push_str(&v);
                } else {
                    out.push(' ');
                    out.push_str(REDACTED);
                }
            }
            _ => out.push_str(line),
        }
    }
    out.push_str(body);
    out
}

/// A `tracing-subscriber` writer: each event's line is scrubbed of the
/// registered secrets before it reaches the underlying writer (stderr).
#[derive(Debug, Clone)]
pub struct RedactingWriter {
    secrets: Arc<Secrets>,
}

impl RedactingWriter {
    /// A writer scrubbing `secrets`.
    pub fn new(secrets: Arc<Secrets>) -> RedactingWriter {
        RedactingWriter { secrets }
    }
}

/// One event's bytes, scrubbed and written when dropped.
#[derive(Debug)]
pub struct RedactingLine {
    secrets: Arc<Secrets>,
    buf: Vec<u8>,
}

impl Write for RedactingLine {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for RedactingLine {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.buf);
        let clean = self.secrets.scrub(&text);
        let _ = io::stderr().lock().write_all(clean.as_bytes());
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RedactingWriter {
    type Writer = RedactingLine;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingLine {
            secrets: self.secrets.clone(),
            buf: Vec::with_capacity(256),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_values_are_scrubbed_until_the_last_removal() {
        let s = Secrets::default();
        s.add("tok-acme-123456");
        s.add("tok-acme-123456");
        s.add("abc"); // too short to scrub by value
        assert_eq!(s.scrub("token tok-acme-123456 abc"), "token [redacted] abc");
        s.remove("tok-acme-123456");
        assert_eq!(s.scrub("x tok-acme-123456"), "x [redacted]");
        s.remove("tok-acme-123456");
        assert_eq!(s.scrub("x tok-acme-123456"), "x tok-acme-123456");
    }

    #[test]
    fn credential_headers_are_recognised() {
        for name in [
            "Authorization",
            "proxy-authorization",
            "X-PolyAi-Auth-Token",
            "X-Api-Key",
            "X-Client-Secret",
        ] {
            assert!(is_secret_header(name), "{name}");
        }
        for name in ["From", "X-CallSessionID", "X-CallANI", "Via"] {
            assert!(!is_secret_header(name), "{name}");
        }
    }

    #[test]
    fn messages_lose_credentials_but_keep_their_shape() {
        let msg = "INVITE sip:1001@example.com SIP/2.0\r\n\
                   Authorization: Digest username=\"five9\", realm=\"t\", nonce=\"n0nce-value-1\", uri=\"sip:1001@example.com\", response=\"0123456789abcdef\"\r\n\
                   X-PolyAi-Auth-Token: tok-acme-secret\r\n\
                   X-CallANI: 4155550100\r\n\r\nv=0\r\n";
        let out = redact_message(msg);
        assert!(!out.contains("0123456789abcdef"), "{out}");
        assert!(!out.contains("n0nce-value-1"), "{out}");
        assert!(!out.contains("tok-acme-secret"), "{out}");
        assert!(out.contains("username=\"five9\""), "{out}");
        assert!(out.contains("X-CallANI: 4155550100"), "{out}");
        assert!(out.ends_with("\r\n\r\nv=0\r\n"), "{out}");
    }

    #[test]
    fn secret_values_of_an_invite() {
        let got = secret_values([
            ("X-PolyAi-Auth-Token", " tok-acme-secret "),
            (
                "Authorization",
                "Digest username=\"u\", response=\"abcdef012345\"",
            ),
            ("X-CallANI", "4155550100"),
        ]);
        assert_eq!(got, vec!["tok-acme-secret", "abcdef012345"]);
    }
}
