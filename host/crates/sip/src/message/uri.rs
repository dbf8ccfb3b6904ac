//! `sip:`, `sips:` (RFC 3261 §19.1) and `tel:` (RFC 3966) URIs.
//!
//! Parsed by hand rather than with `rsip::Uri`: rsip reads `tel:+15551234567`
//! as host `tel` and port `+15551234567` ("number too large"), fails on any
//! IPv6 host, prints unknown schemes as `scheme://...`, and drops the `?headers`
//! part. Five9 and carriers put `tel:` in Request-URI, To and From, so the
//! DID has to come out of both forms.

use super::host::{Host, parse_host_port};
use super::params::{self, Param};
use crate::rfc;
use std::fmt;

/// The URI schemes Trunkline understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `sip:`
    Sip,
    /// `sips:` (TLS all the way)
    Sips,
    /// `tel:` (RFC 3966): a telephone number, no host.
    Tel,
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scheme::Sip => "sip",
            Scheme::Sips => "sips",
            Scheme::Tel => "tel",
        })
    }
}

/// A parsed `sip:`, `sips:` or `tel:` URI. Parts are kept as written, so it
/// prints back to the text it came from (scheme lower-cased).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uri {
    /// The scheme.
    pub scheme: Scheme,
    /// `sip:`/`sips:`: the user part before `:password@`, as written (it may
    /// hold `;` user parameters and `%XX` escapes). `tel:`: the number as
    /// written, visual separators included.
    pub user: Option<String>,
    /// The password of `user:password@` (deprecated by RFC 3261, still parsed).
    pub password: Option<String>,
    /// The host; `None` for `tel:`.
    pub host: Option<Host>,
    /// The explicit port, if any.
    pub port: Option<u16>,
    /// URI parameters (`;transport=tcp;lr`; for `tel:`, `;phone-context=...`).
    pub params: Vec<Param>,
    /// The `?` headers part, raw and without the `?`.
    pub headers: Option<String>,
}

impl Uri {
    /// Parses a `sip:`, `sips:` or `tel:` URI; `None` for other schemes or a
    /// malformed URI.
    pub fn parse(text: &str) -> Option<Uri> {
        let text = text.trim();
        if text
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return None;
        }
        let (scheme, rest) = text.split_once(':')?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "sip" => Scheme::Sip,
            "sips" => Scheme::Sips,
            "tel" => Scheme::Tel,
            _ => return None,
        };
        if scheme == Scheme::Tel {
            return parse_tel(rest);
        }
        // `?headers` usually start at the first `?`; but the user part may
        // hold `?` too (§25.1 user-unreserved, RFC 4475 `intmeth`), so when
        // that reading leaves no valid host, the headers are looked for
        // after the `@` instead.
        let (before, headers) = match rest.split_once('?') {
            Some((before, headers)) => (before, Some(headers)),
            None => (rest, None),
        };
        parse_sip(scheme, before, headers).or_else(|| {
            let at = rest.rfind('@')?;
            let (hostpart, headers) = match rest[at + 1..].split_once('?') {
                Some((hostpart, headers)) => (hostpart, Some(headers)),
                None => (&rest[at + 1..], None),
            };
            parse_sip(scheme, &format!("{}@{hostpart}", &rest[..at]), headers)
        })
    }

    /// The dialed number or extension, for routing on DIDs: the `sip:` user
    /// part without `;` user parameters and with `%XX` escapes decoded; for
    /// `tel:` the number without the visual separators `-.()` that RFC 3966
    /// §5.1.1 says carry no meaning (`tel:+1-555-010-0199` -> `+15550100199`).
    pub fn dialed_user(&self) -> Option<String> {
        let user = self.user.as_deref()?;
        Some(match self.scheme {
            Scheme::Tel => user
                .chars()
                .filter(|c| !matches!(c, '-' | '.' | '(' | ')'))
                .collect(),
            Scheme::Sip | Scheme::Sips => {
                let user = user.split(';').next().unwrap_or(user);
                percent_decode(user)
            }
        })
    }

    /// A URI parameter's value (`None` when absent; `Some(None)` for a flag).
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        params::find(&self.params, name).map(|p| p.value.as_deref())
    }

    /// The port to use when none is written: 5061 for `sips:`, else 5060.
    pub fn default_port(&self) -> u16 {
        match self.scheme {
            Scheme::Sips => rfc::DEFAULT_SIPS_PORT,
            Scheme::Sip | Scheme::Tel => rfc::DEFAULT_SIP_PORT,
        }
    }
}

/// A `sip:`/`sips:` URI from what follows the scheme, `?headers` split off.
fn parse_sip(scheme: Scheme, rest: &str, headers: Option<&str>) -> Option<Uri> {
    // The last `@`: a few UAs send an unescaped `@` inside the user part,
    // and a host can never contain one.
    let (userinfo, hostpart) = match rest.rfind('@') {
        Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
        None => (None, rest),
    };
    let (user, password) = match userinfo {
        Some(info) => match info.split_once(':') {
            Some((user, password)) => (user, Some(password.to_string())),
            None => (info, None),
        },
        None => ("", None),
    };
    if userinfo.is_some() && user.is_empty() {
        return None;
    }
    let (hostport, params) = match hostpart.split_once(';') {
        Some((hostport, params)) => (hostport, params),
        None => (hostpart, ""),
    };
    let (host, port) = parse_host_port(hostport)?;
    Some(Uri {
        scheme,
        user: (!user.is_empty()).then(|| user.to_string()),
        password,
        host: Some(host),
        port,
        params: params::parse(params)?,
        headers: headers.map(str::to_string),
    })
}

fn parse_tel(rest: &str) -> Option<Uri> {
    let (number, params) = match rest.split_once(';') {
        Some((number, params)) => (number, params),
        None => (rest, ""),
    };
    // RFC 3966 `telephone-subscriber`: digits, `+`, `*`, `#`, hex digits and
    // the visual separators; anything else means the text is not a number.
    let valid = !number.is_empty()
        && number
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b"+*#-.()pPwW".contains(&b));
    if !valid {
        return None;
    }
    Some(Uri {
        scheme: Scheme::Tel,
        user: Some(number.to_string()),
        password: None,
        host: None,
        port: None,
        params: params::parse(params)?,
        headers: None,
    })
}

/// Decodes `%XX` escapes; a malformed escape is kept literally rather than
/// failing the call.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            // h and l are below 16, so the value fits in a byte.
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.scheme)?;
        if let Some(user) = &self.user {
            f.write_str(user)?;
            if let Some(password) = &self.password {
                write!(f, ":{password}")?;
            }
            if self.scheme != Scheme::Tel {
                f.write_str("@")?;
            }
        }
        if let Some(host) = &self.host {
            write!(f, "{host}")?;
        }
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        for param in &self.params {
            write!(f, "{param}")?;
        }
        if let Some(headers) = &self.headers {
            write!(f, "?{headers}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_print_round_trip() {
        // (input, scheme, user, host, port, dialed)
        type Row<'a> = (
            &'a str,
            Scheme,
            Option<&'a str>,
            Option<&'a str>,
            Option<u16>,
            Option<&'a str>,
        );
        let table: &[Row] = &[
            (
                "sip:100@10.0.0.1",
                Scheme::Sip,
                Some("100"),
                Some("10.0.0.1"),
                None,
                Some("100"),
            ),
            (
                "sips:alice@example.com:5061;transport=tcp",
                Scheme::Sips,
                Some("alice"),
                Some("example.com"),
                Some(5061),
                Some("alice"),
            ),
            (
                "sip:example.com;lr",
                Scheme::Sip,
                None,
                Some("example.com"),
                None,
                None,
            ),
            (
                "sip:100@[2001:db8::1]:5060;transport=udp",
                Scheme::Sip,
                Some("100"),
                Some("[2001:db8::1]"),
                Some(5060),
                Some("100"),
            ),
            ("sip:[::1]", Scheme::Sip, None, Some("[::1]"), None, None),
            (
                "sip:alice:secret@h.com?subject=hi&priority=urgent",
                Scheme::Sip,
                Some("alice"),
                Some("h.com"),
                None,
                Some("alice"),
            ),
            (
                "sip:+15550100199;phone-context=+1@gw.example.com;user=phone",
                Scheme::Sip,
                Some("+15550100199;phone-context=+1"),
                Some("gw.example.com"),
                None,
                Some("+15550100199"),
            ),
            (
                "sip:%2B1555@h",
                Scheme::Sip,
                Some("%2B1555"),
                Some("h"),
                None,
                Some("+1555"),
            ),
            (
                "sip:bad%zzesc@h",
                Scheme::Sip,
                Some("bad%zzesc"),
                Some("h"),
                None,
                Some("bad%zzesc"),
            ),
            (
                // RFC 4475 intmeth: `?`, `,`, `;`, `/`, `*` and a password in
                // the user part, no `?headers`.
                "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com",
                Scheme::Sip,
                Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"),
                Some("example.com"),
                None,
                Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/"),
            ),
            (
                "sip:user@example.com?Route=%3Csip:example.com%3E",
                Scheme::Sip,
                Some("user"),
                Some("example.com"),
                None,
                Some("user"),
            ),
            (
                "tel:+1-555-010-0199",
                Scheme::Tel,
                Some("+1-555-010-0199"),
                None,
                None,
                Some("+15550100199"),
            ),
            (
                "tel:7042;phone-context=example.com",
                Scheme::Tel,
                Some("7042"),
                None,
                None,
                Some("7042"),
            ),
            (
                "tel:(555)0100.199",
                Scheme::Tel,
                Some("(555)0100.199"),
                None,
                None,
                Some("5550100199"),
            ),
        ];
        for (input, scheme, user, host, port, dialed) in table {
            let uri = Uri::parse(input).unwrap_or_else(|| panic!("{input:?} did not parse"));
            assert_eq!(uri.scheme, *scheme, "{input}");
            assert_eq!(uri.user.as_deref(), *user, "{input}");
            assert_eq!(
                uri.host.as_ref().map(ToString::to_string).as_deref(),
                *host,
                "{input}"
            );
            assert_eq!(uri.port, *port, "{input}");
            assert_eq!(uri.dialed_user().as_deref(), *dialed, "{input}");
            assert_eq!(uri.to_string(), *input, "print of {input}");
            assert_eq!(
                Uri::parse(&uri.to_string()),
                Some(uri),
                "round trip {input}"
            );
        }
    }

    #[test]
    fn scheme_is_case_insensitive_and_printed_lower() {
        let uri = Uri::parse("SIP:Alice@Example.COM").expect("parses");
        assert_eq!(uri.to_string(), "sip:Alice@Example.COM");
        assert_eq!(Uri::parse("TEL:+1555").map(|u| u.scheme), Some(Scheme::Tel));
    }

    #[test]
    fn malformed_or_foreign_uris_are_refused() {
        for input in [
            "",
            "sip:",
            "sip:@host",
            "sip:a@",
            "sip:a@host:port",
            "sip:a@[2001:db8::1",
            "sip:a b@host",
            "tel:",
            "tel:+1 555",
            "tel:call-me",
            "mailto:a@b.c",
            "urn:service:sos",
            "http://x",
            "no-scheme",
            "sip:a@h;=x",
        ] {
            assert_eq!(Uri::parse(input), None, "{input:?}");
        }
    }

    #[test]
    fn params_and_default_ports() {
        let uri = Uri::parse("sips:a@h;transport=tls;lr").expect("parses");
        assert_eq!(uri.param("TRANSPORT"), Some(Some("tls")));
        assert_eq!(uri.param("lr"), Some(None));
        assert_eq!(uri.param("maddr"), None);
        assert_eq!(uri.default_port(), 5061);
        assert_eq!(Uri::parse("sip:h").map(|u| u.default_port()), Some(5060));
    }
}
