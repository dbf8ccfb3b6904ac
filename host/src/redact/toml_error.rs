//! Config parse errors that name the line and the problem but never show
//! a secret.
//!
//! toml's own `Display` quotes the offending source line under the
//! message, so a typo next to a digest password or an API key printed the
//! secret to stderr (before logging, and its scrubbing, start). Here the
//! source is never quoted; and when the line holds a secret (its key, or
//! the table it is in, names a password, key, token, secret or the digest
//! `users`), every quoted value in the message (serde's ``invalid type:
//! integer `1234` `` or `string "hunter2"`) is replaced too.

use super::REDACTED;

/// `error` as `line L, column C: what is wrong`, without the source line
/// and with secrets replaced by [`REDACTED`].
pub fn config_error(source: &str, error: &toml::de::Error) -> String {
    let message = error.message().trim().replace('\n', "; ");
    let Some(span) = error.span() else {
        return scrub_values(source, &message);
    };
    let at = span.start.min(source.len());
    let before = source.get(..at).unwrap_or(source);
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map_or(1, |l| l.chars().count() + 1);
    let message = if line_is_secret(source, line) {
        redact_quoted(&message)
    } else {
        message
    };
    format!(
        "line {line}, column {column}: {}",
        scrub_values(source, &message)
    )
}

/// Whether line `n` (1-based) holds a secret: a secret key on it, or a
/// secret table around it (past the last line: the last table).
fn line_is_secret(source: &str, n: usize) -> bool {
    let (lines, last_table) = secret_lines(source);
    n.checked_sub(1)
        .and_then(|i| lines.get(i).copied())
        .unwrap_or(last_table)
}

/// For every line of `source`, in one pass, whether it holds a secret;
/// and whether the table open at the end is a secret one. (Asking line by
/// line from the top made an error in a file of many lines quadratic: the
/// config fuzz target found a 5 KB file taking half a second.)
fn secret_lines(source: &str) -> (Vec<bool>, bool) {
    let mut table = String::new();
    let lines = source
        .lines()
        .map(|line| {
            let t = line.trim();
            if t.starts_with('[') {
                table = t.trim_matches(|c| c == '[' || c == ']').to_owned();
            }
            path_is_secret(&table) || keys_on(line).any(path_is_secret)
        })
        .collect();
    (lines, path_is_secret(&table))
}

/// The keys on a line: the text before each `=` back to a space, `{` or
/// `,` (dotted and inline-table keys alike).
fn keys_on(line: &str) -> impl Iterator<Item = &str> {
    let mut start = 0;
    line.match_indices('=').filter_map(move |(i, _)| {
        let key = line.get(start..i)?;
        start = i + 1;
        key.rsplit(['{', ',']).next().map(str::trim)
    })
}

/// Whether a dotted key or table path names a secret.
fn path_is_secret(path: &str) -> bool {
    path.split('.').any(|part| {
        let p = part.trim().trim_matches(['"', '\'']).to_ascii_lowercase();
        p == "users"
            || p == "key"
            || p == "apikey"
            || p.ends_with("_key")
            || p.ends_with("-key")
            || ["password", "passwd", "secret", "token", "credential"]
                .iter()
                .any(|w| p.contains(w))
    })
}

/// `message` with every `` `…` `` and `"…"` segment replaced, except the
/// parser's syntax tokens (`` `#` ``, `` `=` ``: one or two punctuation
/// characters, which no secret of the length the config requires is).
fn redact_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(open) = rest.find(['`', '"']) {
        let quote = rest[open..].chars().next().unwrap_or('"');
        let Some(len) = rest[open + 1..].find(quote) else {
            // An unclosed quote: drop the rest rather than risk it.
            out.push_str(&rest[..open]);
            out.push_str(REDACTED);
            return out;
        };
        let inner = &rest[open + 1..open + 1 + len];
        out.push_str(&rest[..=open]);
        if inner.len() <= 2 && inner.bytes().all(|b| b.is_ascii_punctuation()) {
            out.push_str(inner);
        } else {
            out.push_str(REDACTED);
        }
        out.push(quote);
        rest = &rest[open + 1 + len + 1..];
    }
    out.push_str(rest);
    out
}

/// `message` with the value of every secret line in `source` replaced,
/// wherever it appears (spanless errors, unquoted mentions).
fn scrub_values(source: &str, message: &str) -> String {
    let mut out = message.to_owned();
    let (secret, _) = secret_lines(source);
    for (line, _) in source.lines().zip(secret).filter(|(_, secret)| *secret) {
        for value in line.split('=').skip(1) {
            let v = value
                .split([',', '}'])
                .next()
                .unwrap_or("")
                .trim()
                .trim_matches(['"', '\''])
                .trim();
            // Short values would blank ordinary words of the message.
            if v.len() >= 4 && out.contains(v) {
                out = out.replace(v, REDACTED);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Shape {
            #[serde(default)]
            http: Option<toml::Table>,
            #[serde(default)]
            trunk: Vec<toml::Table>,
            #[serde(default)]
            port: Option<u16>,
            #[serde(default)]
            api_key: Option<String>,
        }
        let e = toml::from_str::<Shape>(text).unwrap_err();
        config_error(text, &e)
    }

    /// Found by the config fuzz target: every line's secrecy was asked
    /// from the top of the file, quadratic in its lines.
    #[test]
    fn an_error_at_the_end_of_a_long_file_names_its_line_and_no_secret() {
        let mut text = String::from(
            "[[trunk]]\nname = \"t\"\n[trunk.auth.users]\nfive9 = \"hunter2-s3cret\"\n",
        );
        text.push_str(&"\n".repeat(50_000));
        text.push_str("oops = \n");
        let e = error(&text);
        assert!(e.starts_with("line 50005, column"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn syntax_errors_name_the_line_but_not_the_secret() {
        let cases = [
            // An unclosed string on a password line.
            (
                "[[trunk]]\nname = \"t\"\n[trunk.auth.users]\nfive9 = \"hunter2-s3cret\n",
                "hunter2-s3cret",
                "line 4",
            ),
            // Trailing junk after an API key.
            (
                "[http]\nlisten = \"127.0.0.1:8080\"\n[[http.keys]]\nkey = \"sk-live-0123456789abcdef\" x\n",
                "sk-live-0123456789abcdef",
                "line 4",
            ),
            // A digest password in an inline table, missing its comma.
            (
                "[[trunk]]\nauth = { realm = \"r\", users = { a = \"pw-inline-9876\" b = \"x\" } }\n",
                "pw-inline-9876",
                "line 2",
            ),
        ];
        for (text, secret, line) in cases {
            let got = error(text);
            assert!(!got.contains(secret), "{got}");
            assert!(got.starts_with(line), "{got}");
            assert!(!got.contains('\n'), "one line: {got}");
        }
    }

    #[test]
    fn type_errors_on_secret_lines_lose_their_values() {
        // `api_key` should be a string: serde quotes the integer it found.
        let got = error("port = 1\napi_key = 98765432109876\n");
        assert!(got.starts_with("line 2"), "{got}");
        assert!(got.contains("invalid type"), "{got}");
        assert!(!got.contains("98765432109876"), "{got}");
        assert_eq!(
            redact_quoted("invalid type: string \"hunter2\", expected u16"),
            format!("invalid type: string \"{REDACTED}\", expected u16")
        );
        assert_eq!(
            redact_quoted("invalid type: integer `1234`, unclosed `x"),
            format!("invalid type: integer `{REDACTED}`, unclosed {REDACTED}")
        );
        assert_eq!(
            redact_quoted("expected newline, `#`, found `x9`"),
            format!("expected newline, `#`, found `{REDACTED}`")
        );
    }

    #[test]
    fn other_errors_keep_their_detail() {
        let got = error("port = \"eighty\"\n");
        assert!(got.starts_with("line 1, column 8"), "{got}");
        assert!(got.contains("eighty"), "not a secret: {got}");
        let got = error("[http]\nlisten = 1\n[oops\n");
        assert!(got.starts_with("line 3"), "{got}");
    }

    #[test]
    fn secret_names() {
        for p in [
            "trunk.auth.users",
            "key",
            "api_key",
            "x-api-key",
            "client_secret",
            "auth_token",
            "password",
            "\"users\"",
        ] {
            assert!(path_is_secret(p), "{p}");
        }
        for p in ["http.keys", "key_path", "tenant", "name", "listen", "keys"] {
            assert!(!path_is_secret(p), "{p}");
        }
    }
}
