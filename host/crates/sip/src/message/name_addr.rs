//! From, To, Contact (and Route-like) values: `"Display" <uri>;params` or a
//! bare `uri;params` (RFC 3261 §20.10, §25.1 `name-addr` / `addr-spec`).
//!
//! rsip's typed From/To would do for plain `sip:` URIs, but it refuses IPv6
//! hosts and `tel:` URIs and keeps the display name's quotes; the URI is kept
//! here as received text and parsed on demand with [`Uri`].

use super::params::{self, Param, split_outside_quotes};
use super::uri::Uri;
use std::fmt;

/// A parsed From/To/Contact value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// The display name, unquoted and unescaped (`"Smith, J"` -> `Smith, J`).
    pub display_name: Option<String>,
    /// The URI as received, without angle brackets (`*` for `Contact: *`).
    pub uri: String,
    /// Header parameters after the URI (`tag`, `expires`, `q`, `+sip.instance`).
    pub params: Vec<Param>,
}

impl NameAddr {
    /// A value with no display name and no parameters.
    pub fn new(uri: impl Into<String>) -> Self {
        NameAddr {
            display_name: None,
            uri: uri.into(),
            params: Vec::new(),
        }
    }

    /// Parses one value; `None` when it is empty, has unbalanced quotes or
    /// brackets, or text after `>` that is not parameters.
    ///
    /// Also refused, as RFC 4475 §3.1.2 says an element may (and a B2BUA
    /// facing untrusted peers should): whitespace just inside `<` `>`
    /// (`badaspec`), an unquoted display name holding `,` `;` `?` `\` or a
    /// control character (`baddn`: other parsers on the path would read
    /// `Bell, Alexander <...>` as two values), and an addr-spec holding `?`
    /// or `,`, which §20.10 says must be in `<>` (`regbadct`). Other
    /// non-token text in an unquoted display name (parentheses, `@`, UTF-8)
    /// is sent by real UAs and read the same by everyone, so it is kept.
    pub fn parse(text: &str) -> Option<NameAddr> {
        let text = text.trim();
        let (display_name, rest) = if let Some(quoted) = text.strip_prefix('"') {
            let (display, rest) = read_quoted(quoted)?;
            let rest = rest.trim_start();
            if !rest.starts_with('<') {
                return None;
            }
            (Some(display), rest)
        } else if let Some(open) = text.find('<') {
            let display = text[..open].trim();
            if display.contains(|c: char| "\",;?\\".contains(c) || c.is_control()) {
                return None;
            }
            (
                (!display.is_empty()).then(|| display.to_string()),
                &text[open..],
            )
        } else {
            // addr-spec: a `;` ends the URI, so what follows is a header
            // parameter (`sip:bob@b.com;tag=1` has a tag, not a URI param).
            let (uri, params) = text.split_once(';').unwrap_or((text, ""));
            if uri.contains(['?', ',']) {
                return None;
            }
            return Self::finish(None, uri.trim(), params);
        };
        let inner = rest.strip_prefix('<')?;
        let close = inner.find('>')?;
        let params = inner[close + 1..].trim_start();
        if !params.is_empty() && !params.starts_with(';') {
            return None;
        }
        Self::finish(display_name, &inner[..close], params)
    }

    fn finish(display_name: Option<String>, uri: &str, params: &str) -> Option<NameAddr> {
        if uri.is_empty()
            || uri
                .bytes()
                .any(|b| b.is_ascii_whitespace() || b == b'<' || b == b'>')
        {
            return None;
        }
        Some(NameAddr {
            display_name,
            uri: uri.to_string(),
            params: params::parse(params)?,
        })
    }

    /// Parses a comma-separated list (`Contact: <a>, <b>`), commas inside
    /// quotes and angle brackets left alone.
    pub fn parse_list(text: &str) -> Option<Vec<NameAddr>> {
        split_outside_quotes(text, b',')
            .into_iter()
            .map(NameAddr::parse)
            .collect()
    }

    /// The `tag` parameter (RFC 3261 §19.3), which identifies a dialog side.
    pub fn tag(&self) -> Option<&str> {
        self.param("tag").flatten()
    }

    /// A header parameter's value (`None` when absent; `Some(None)` for a flag).
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        params::find(&self.params, name).map(|p| p.value.as_deref())
    }

    /// Sets or replaces a header parameter.
    pub fn set_param(&mut self, name: &str, value: Option<&str>) {
        params::set(&mut self.params, name, value.map(str::to_string));
    }

    /// The URI parsed; `None` for schemes other than `sip:`/`sips:`/`tel:`.
    pub fn parsed_uri(&self) -> Option<Uri> {
        Uri::parse(&self.uri)
    }
}

/// Reads a quoted string whose opening quote is already consumed; returns the
/// unescaped content and the text after the closing quote.
fn read_quoted(text: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?.1),
            '"' => return Some((out, &text[i + 1..])),
            _ => out.push(c),
        }
    }
    None
}

impl fmt::Display for NameAddr {
    /// Always prints the `<uri>` form: RFC 3261 §20.10 requires it whenever the
    /// URI holds `,`, `;` or `?`, and it is never wrong.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.uri == "*" && self.display_name.is_none() && self.params.is_empty() {
            // `Contact: *` (REGISTER removing all bindings) has no brackets.
            return f.write_str("*");
        }
        if let Some(name) = &self.display_name {
            f.write_str("\"")?;
            for c in name.chars() {
                if c == '"' || c == '\\' {
                    f.write_str("\\")?;
                }
                write!(f, "{c}")?;
            }
            f.write_str("\" ")?;
        }
        write!(f, "<{}>", self.uri)?;
        for param in &self.params {
            write!(f, "{param}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        // (input, display, uri, tag, printed)
        type Row<'a> = (&'a str, Option<&'a str>, &'a str, Option<&'a str>, &'a str);
        let table: &[Row] = &[
            (
                "<sip:a@x>;tag=1",
                None,
                "sip:a@x",
                Some("1"),
                "<sip:a@x>;tag=1",
            ),
            (
                "\"Bob\" <sip:bob@b.com>;tag=123",
                Some("Bob"),
                "sip:bob@b.com",
                Some("123"),
                "\"Bob\" <sip:bob@b.com>;tag=123",
            ),
            (
                "Bob Smith <sip:bob@b.com>",
                Some("Bob Smith"),
                "sip:bob@b.com",
                None,
                "\"Bob Smith\" <sip:bob@b.com>",
            ),
            (
                "\"Smith, J \\\"JJ\\\"\"<sip:j@h>",
                Some("Smith, J \"JJ\""),
                "sip:j@h",
                None,
                "\"Smith, J \\\"JJ\\\"\" <sip:j@h>",
            ),
            (
                "sip:bob@b.com;tag=1",
                None,
                "sip:bob@b.com",
                Some("1"),
                "<sip:bob@b.com>;tag=1",
            ),
            (
                "<sip:100@[2001:db8::1]:5060;transport=tcp>;expires=60",
                None,
                "sip:100@[2001:db8::1]:5060;transport=tcp",
                None,
                "<sip:100@[2001:db8::1]:5060;transport=tcp>;expires=60",
            ),
            (
                "<tel:+15550100199>;tag=x9",
                None,
                "tel:+15550100199",
                Some("x9"),
                "<tel:+15550100199>;tag=x9",
            ),
            (
                "\"\" <sip:anonymous@anonymous.invalid>",
                Some(""),
                "sip:anonymous@anonymous.invalid",
                None,
                "\"\" <sip:anonymous@anonymous.invalid>",
            ),
            ("*", None, "*", None, "*"),
            (
                // RFC 4475 lwsdisp and intmeth: no space before `<`, and
                // token characters in an unquoted name.
                "caller<sip:caller@example.com>;tag=323",
                Some("caller"),
                "sip:caller@example.com",
                Some("323"),
                "\"caller\" <sip:caller@example.com>;tag=323",
            ),
            (
                "token1~` token2'+_ token3*%!.- <sip:mundane@example.com>",
                Some("token1~` token2'+_ token3*%!.-"),
                "sip:mundane@example.com",
                None,
                "\"token1~` token2'+_ token3*%!.-\" <sip:mundane@example.com>",
            ),
            (
                "J\u{f6}rg (mobile) <sip:j@h>",
                Some("J\u{f6}rg (mobile)"),
                "sip:j@h",
                None,
                "\"J\u{f6}rg (mobile)\" <sip:j@h>",
            ),
            (
                "  <sip:a@b> ; tag = t ",
                None,
                "sip:a@b",
                Some("t"),
                "<sip:a@b>;tag=t",
            ),
        ];
        for (input, display, uri, tag, printed) in table {
            let value = NameAddr::parse(input).unwrap_or_else(|| panic!("{input:?}"));
            assert_eq!(value.display_name.as_deref(), *display, "{input}");
            assert_eq!(value.uri, *uri, "{input}");
            assert_eq!(value.tag(), *tag, "{input}");
            assert_eq!(value.to_string(), *printed, "{input}");
            assert_eq!(
                NameAddr::parse(printed).as_ref(),
                Some(&value),
                "round trip {input}"
            );
        }
    }

    #[test]
    fn malformed_values_are_refused() {
        for input in [
            "",
            "\"unterminated <sip:a@b>",
            "\"Bob\" sip:a@b",
            "<sip:a@b",
            "<sip:a@b> junk",
            "<>",
            "<sip:a@b>;=1",
            "Bo\"b <sip:a@b>",
            // RFC 4475 badaspec, baddn, regbadct.
            "\"Watson, Thomas\" < sip:t.watson@example.org >",
            "<sip:a@b >",
            "Bell, Alexander <sip:a.g.bell@bell-tel.com>;tag=43",
            "Bell; Alexander <sip:a@b>",
            "sip:user@example.com?Route=%3Csip:sip.example.com%3E",
            "sip:a@b,sip:c@d",
        ] {
            assert_eq!(NameAddr::parse(input), None, "{input:?}");
        }
    }

    #[test]
    fn contact_lists_split_outside_quotes() {
        let list = NameAddr::parse_list("\"A, B\" <sip:a@h>;q=0.5, <sip:b@[::1]>").expect("parses");
        let uris: Vec<&str> = list.iter().map(|c| c.uri.as_str()).collect();
        assert_eq!(uris, ["sip:a@h", "sip:b@[::1]"]);
        assert_eq!(list[0].param("q"), Some(Some("0.5")));
    }

    #[test]
    fn set_tag_keeps_other_params() {
        let mut to = NameAddr::parse("<sip:100@h>;x=1").expect("parses");
        to.set_param("tag", Some("abc"));
        assert_eq!(to.to_string(), "<sip:100@h>;x=1;tag=abc");
        assert!(to.parsed_uri().is_some());
    }

    /// Found by the `sip_header` fuzz target: a parameter with an open
    /// quote (or `[`) was accepted, and the tag a reply adds after it was
    /// swallowed by it when read back (the caller's To had no tag).
    #[test]
    fn an_unterminated_quoted_parameter_is_refused() {
        for input in [
            "<sip:100@h>;x=\"open",
            "sip:100@h;x=\";tag=1",
            ");'%%z=\";.",
            "<sip:100@h>;x=\"a\\\"",
            "A[g;l=[[[",
            "<sip:100@h>;maddr=[::1",
            "<sip:100@h>;x=a]",
        ] {
            assert_eq!(NameAddr::parse(input), None, "{input:?}");
        }
        assert!(NameAddr::parse("<sip:100@h>;maddr=[::1];x=\"[\"").is_some());
        let mut to = NameAddr::parse("<sip:100@h>;x=\"a;\\\"b\"").expect("closed quote");
        assert_eq!(to.param("x"), Some(Some("\"a;\\\"b\"")));
        to.set_param("tag", Some("t-1"));
        let again = NameAddr::parse(&to.to_string()).expect("parses");
        assert_eq!(again.tag(), Some("t-1"));
    }
}
