//! RFC 3261 checks for the headers a policy writes.
//!
//! The host refuses a decision whose header names are not tokens or whose
//! values hold CR or LF (a value with `\r\n` would let a policy inject a
//! whole header line into the message sent to Five9). The builders in
//! [`crate::decision`] and [`crate::outcome`] use these checks so a policy
//! author's typo costs one header with a logged warning, not the whole call.

use std::borrow::Cow;

/// True when `name` is an RFC 3261 `token`, the grammar of header names:
/// one or more of `A-Z a-z 0-9 - . ! % * _ + ` ' ~`.
///
/// ```
/// use trunkline_guest_sdk::headers::is_valid_name;
/// assert!(is_valid_name("X-RouteReason"));
/// assert!(!is_valid_name("X Route"));
/// assert!(!is_valid_name(""));
/// ```
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(is_token_byte)
}

/// The RFC 3261 `token` alphabet (section 25.1).
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

/// Makes `value` safe to put in a header: each run of CR/LF becomes one
/// space (what obsolete line folding meant) and other control characters
/// except tab are removed. Returns the input unchanged when it was clean.
///
/// ```
/// use trunkline_guest_sdk::headers::sanitize_value;
/// assert_eq!(sanitize_value("a\r\nInjected: yes"), "a Injected: yes");
/// assert_eq!(sanitize_value("plain"), "plain");
/// ```
pub fn sanitize_value(value: &str) -> Cow<'_, str> {
    if !value.chars().any(is_unsafe_char) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len());
    let mut in_break = false;
    for c in value.chars() {
        if c == '\r' || c == '\n' {
            if !in_break {
                out.push(' ');
            }
            in_break = true;
            continue;
        }
        in_break = false;
        if !is_unsafe_char(c) {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Characters that may not appear in a header value as written by a policy.
fn is_unsafe_char(c: char) -> bool {
    c.is_control() && c != '\t'
}

/// Finds the first header named `name`, ignoring ASCII case as SIP does.
pub(crate) fn find<'a>(headers: &'a [crate::Header], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

/// Every value of the headers named `name`, in wire order, ignoring case.
pub(crate) fn find_all<'a>(headers: &'a [crate::Header], name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let cases = [
            ("X-contained", true),
            ("X-CallSessionID", true),
            ("x-first_name", true),
            ("a.b!c%d*e_f+g`h'i~j", true),
            ("", false),
            ("X Bad", false),
            ("X-Bad:", false),
            ("X-Bad\r\n", false),
            ("X-Ünicode", false),
            ("X-(paren)", false),
        ];
        for (name, ok) in cases {
            assert_eq!(is_valid_name(name), ok, "{name:?}");
        }
    }

    #[test]
    fn values() {
        let cases = [
            ("plain value", "plain value"),
            ("tab\tkept", "tab\tkept"),
            ("a\r\nInjected: yes", "a Injected: yes"),
            ("a\nb\rc", "a b c"),
            ("a\r\n\r\nb", "a b"),
            ("nul\0gone", "nulgone"),
            ("ünïcode ok", "ünïcode ok"),
        ];
        for (input, expected) in cases {
            assert_eq!(sanitize_value(input), expected, "{input:?}");
        }
        assert!(matches!(sanitize_value("clean"), Cow::Borrowed(_)));
    }

    #[test]
    fn lookup_ignores_case_and_keeps_order() {
        let headers = vec![
            crate::Header::new("X-Tag", "one"),
            crate::Header::new("x-tag", "two"),
            crate::Header::new("Other", "three"),
        ];
        assert_eq!(find(&headers, "X-TAG"), Some("one"));
        assert_eq!(find_all(&headers, "x-Tag"), vec!["one", "two"]);
        assert_eq!(find(&headers, "missing"), None);
    }
}
