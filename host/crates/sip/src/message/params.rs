//! `;name=value` parameters and the small lexical helpers (tokens, splitting a
//! header value at commas outside quotes) shared by the Via, URI and
//! name-addr parsers.

use std::fmt;

/// One `;name[=value]` parameter, as written (a quoted value keeps its quotes
/// so it prints back unchanged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// The parameter name; compared case-insensitively.
    pub name: String,
    /// The value after `=`, or `None` for a flag such as `;lr` or `;rport`.
    pub value: Option<String>,
}

impl Param {
    /// A parameter with a value.
    pub fn new(name: impl Into<String>, value: Option<impl Into<String>>) -> Self {
        Param {
            name: name.into(),
            value: value.map(Into::into),
        }
    }
}

impl fmt::Display for Param {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(value) => write!(f, ";{}={}", self.name, value),
            None => write!(f, ";{}", self.name),
        }
    }
}

/// The first parameter named `name` (case-insensitive).
pub(crate) fn find<'a>(params: &'a [Param], name: &str) -> Option<&'a Param> {
    params.iter().find(|p| p.name.eq_ignore_ascii_case(name))
}

/// Replaces the value of the first parameter named `name`, or appends one.
pub(crate) fn set(params: &mut Vec<Param>, name: &str, value: Option<String>) {
    match params
        .iter_mut()
        .find(|p| p.name.eq_ignore_ascii_case(name))
    {
        Some(param) => param.value = value,
        None => params.push(Param {
            name: name.to_string(),
            value,
        }),
    }
}

/// Parses `;a=b;c;d="x;y"` (leading `;` optional). `None` when a parameter
/// has an empty name or a name that is not a token, or a quoted value, `[`
/// or `<` does not end: it would swallow any parameter printed after it
/// (the To tag of our reply, found by fuzzing).
pub(crate) fn parse(text: &str) -> Option<Vec<Param>> {
    if !balanced(text) {
        return None;
    }
    let mut params = Vec::new();
    for part in split_outside_quotes(text, b';') {
        let part = part.trim();
        if part.is_empty() {
            // `;;` and a trailing `;` occur in the wild and carry nothing.
            continue;
        }
        let (name, value) = match part.split_once('=') {
            Some((name, value)) => (name.trim(), Some(value.trim().to_string())),
            None => (part, None),
        };
        if !is_token(name) {
            return None;
        }
        params.push(Param {
            name: name.to_string(),
            value,
        });
    }
    Some(params)
}

/// Whether every quoted string in `text` ends (a `\\` escapes the next
/// byte), and `[...]` and `<...>` outside quotes close in order: the spans
/// [`split_outside_quotes`] does not split inside.
fn balanced(text: &str) -> bool {
    let mut in_quotes = false;
    let (mut square, mut angle) = (0usize, 0usize);
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'\\' if in_quotes => {
                bytes.next();
            }
            b'"' => in_quotes = !in_quotes,
            _ if in_quotes => {}
            b'[' => square += 1,
            b'<' => angle += 1,
            b']' => match square.checked_sub(1) {
                Some(depth) => square = depth,
                None => return false,
            },
            b'>' => match angle.checked_sub(1) {
                Some(depth) => angle = depth,
                None => return false,
            },
            _ => {}
        }
    }
    !in_quotes && square == 0 && angle == 0
}

/// RFC 3261 §25.1 `token`: what header names, methods and parameter names
/// are made of.
pub(crate) fn is_token(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(is_token_byte)
}

pub(crate) fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

/// Splits at `sep` where it is not inside a quoted string, `<...>` or
/// `[...]`. Used for comma-separated header values (`Via: a, b`) and for
/// parameters, where a quoted value may itself hold `;` or `,`.
pub(crate) fn split_outside_quotes(text: &str, sep: u8) -> Vec<&str> {
    let bytes = text.as_bytes();
    let mut parts = Vec::new();
    let mut start = 0;
    let mut in_quotes = false;
    let mut depth_angle = 0usize;
    let mut depth_square = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_quotes {
            match b {
                // A quoted-pair: the next byte is literal, even a quote.
                b'\\' => i += 1,
                b'"' => in_quotes = false,
                _ => {}
            }
        } else if b == b'"' {
            in_quotes = true;
        } else if b == b'<' {
            depth_angle += 1;
        } else if b == b'>' {
            depth_angle = depth_angle.saturating_sub(1);
        } else if b == b'[' {
            depth_square += 1;
        } else if b == b']' {
            depth_square = depth_square.saturating_sub(1);
        } else if b == sep && depth_angle == 0 && depth_square == 0 {
            // `sep` is ASCII, so `start..i` sits on char boundaries.
            parts.push(&text[start..i]);
            start = i + 1;
        }
        i += 1;
    }
    parts.push(&text[start.min(text.len())..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print_params() {
        let table = [
            (";lr", ";lr"),
            (";branch=z9hG4bK1;rport", ";branch=z9hG4bK1;rport"),
            ("tag=a ; x = y", ";tag=a;x=y"),
            (";q=\"a;b,c\";e", ";q=\"a;b,c\";e"),
            (";;a=1;", ";a=1"),
            ("", ""),
        ];
        for (input, printed) in table {
            let params = parse(input).unwrap_or_else(|| panic!("{input:?}"));
            let text: String = params.iter().map(ToString::to_string).collect();
            assert_eq!(text, printed, "{input:?}");
            assert_eq!(parse(&text), Some(params), "round trip of {input:?}");
        }
    }

    #[test]
    fn bad_param_names_are_refused() {
        for input in [";=x", ";a b=c", ";<x>"] {
            assert_eq!(parse(input), None, "{input:?}");
        }
    }

    #[test]
    fn split_respects_quotes_brackets_and_escapes() {
        let table: &[(&str, &[&str])] = &[
            ("a, b", &["a", " b"]),
            (
                "\"x, y\" <sip:a@b>, <sip:c@d>",
                &["\"x, y\" <sip:a@b>", " <sip:c@d>"],
            ),
            ("\"q\\\", r\" <sip:a>, b", &["\"q\\\", r\" <sip:a>", " b"]),
            ("<sip:a;x=1,2>", &["<sip:a;x=1,2>"]),
            ("single", &["single"]),
        ];
        for (input, parts) in table {
            assert_eq!(split_outside_quotes(input, b','), *parts, "{input:?}");
        }
    }

    #[test]
    fn set_replaces_or_appends() {
        let mut params = parse(";received=1.1.1.1;rport").unwrap_or_default();
        set(&mut params, "RPORT", Some("5060".into()));
        set(&mut params, "maddr", None);
        let text: String = params.iter().map(ToString::to_string).collect();
        assert_eq!(text, ";received=1.1.1.1;rport=5060;maddr");
    }
}
