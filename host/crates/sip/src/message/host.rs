//! Hosts and `host[:port]` as found in Via sent-by and SIP URIs, IPv6
//! included.
//!
//! Written by hand because rsip 0.4 splits `host:port` at the first colon, so
//! `[2001:db8::1]:5060` fails to parse anywhere it appears (Via, Contact,
//! Request-URI); IPv6 trunks are common enough that this cannot be left out.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A host as written in a URI or Via (RFC 3261 §25.1 `host`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// A DNS name, kept as written (compare case-insensitively).
    Domain(String),
    /// A dotted IPv4 address.
    Ipv4(Ipv4Addr),
    /// An IPv6 reference; printed with brackets.
    Ipv6(Ipv6Addr),
}

impl Host {
    /// Parses a host: `[v6]`, a dotted IPv4 address or a DNS name. `None` for
    /// an empty host, a bad IPv6 reference or characters a host cannot hold.
    pub fn parse(text: &str) -> Option<Host> {
        if let Some(inner) = text.strip_prefix('[') {
            let inner = inner.strip_suffix(']')?;
            return inner.parse().ok().map(Host::Ipv6);
        }
        if let Ok(v4) = text.parse::<Ipv4Addr>() {
            return Some(Host::Ipv4(v4));
        }
        // `_` is outside RFC 3261 hostname but appears in container and
        // cloud-internal names, so it is accepted rather than failing a call.
        let valid = !text.is_empty()
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
        valid.then(|| Host::Domain(text.to_string()))
    }

    /// The address when the host is an IP literal.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Host::Domain(_) => None,
            Host::Ipv4(v4) => Some(IpAddr::V4(*v4)),
            Host::Ipv6(v6) => Some(IpAddr::V6(*v6)),
        }
    }
}

impl From<IpAddr> for Host {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Host::Ipv4(v4),
            IpAddr::V6(v6) => Host::Ipv6(v6),
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Domain(name) => f.write_str(name),
            Host::Ipv4(v4) => write!(f, "{v4}"),
            Host::Ipv6(v6) => write!(f, "[{v6}]"),
        }
    }
}

/// Parses `host[:port]`, with whitespace around the colon tolerated (RFC 3261
/// `COLON = SWS ":" SWS`).
pub(crate) fn parse_host_port(text: &str) -> Option<(Host, Option<u16>)> {
    let text = text.trim();
    let (host, port) = if text.starts_with('[') {
        let close = text.find(']')?;
        let rest = text[close + 1..].trim_start();
        let port = match rest.strip_prefix(':') {
            Some(port) => Some(port.trim()),
            None if rest.is_empty() => None,
            None => return None,
        };
        (&text[..=close], port)
    } else {
        match text.split_once(':') {
            Some((host, port)) => (host.trim_end(), Some(port.trim())),
            None => (text, None),
        }
    };
    let port = match port {
        Some(port) => Some(parse_port(port)?),
        None => None,
    };
    Some((Host::parse(host)?, port))
}

/// A port: 1 to 5 digits, no sign (Rust's `parse` would accept `+5060`).
pub(crate) fn parse_port(text: &str) -> Option<u16> {
    if text.is_empty() || text.len() > 5 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Parses an address in a `received` or `maddr` parameter. RFC 3261 writes
/// IPv6 there without brackets, RFC 5118 §4.5 notes that peers also send them
/// with brackets; both are accepted.
pub(crate) fn parse_ip_param(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    let inner = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    inner.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_table() {
        let v6: Ipv6Addr = "2001:db8::1".parse().unwrap_or(Ipv6Addr::LOCALHOST);
        type Row<'a> = (&'a str, Option<(Host, Option<u16>)>, &'a str);
        let table: &[Row] = &[
            (
                "10.0.0.1:5060",
                Some((Host::Ipv4(Ipv4Addr::new(10, 0, 0, 1)), Some(5060))),
                "10.0.0.1",
            ),
            (
                "pbx.example.com",
                Some((Host::Domain("pbx.example.com".into()), None)),
                "pbx.example.com",
            ),
            (
                "[2001:db8::1]:5080",
                Some((Host::Ipv6(v6), Some(5080))),
                "[2001:db8::1]",
            ),
            (
                "[2001:db8::1]",
                Some((Host::Ipv6(v6), None)),
                "[2001:db8::1]",
            ),
            (
                "[2001:0db8:0:0::1] : 5060",
                Some((Host::Ipv6(v6), Some(5060))),
                "[2001:db8::1]",
            ),
            (
                "host_a.internal : 7",
                Some((Host::Domain("host_a.internal".into()), Some(7))),
                "host_a.internal",
            ),
            ("2001:db8::1", None, ""),
            ("[2001:db8::1", None, ""),
            ("[nothex]:5060", None, ""),
            ("host:99999", None, ""),
            ("host:+50", None, ""),
            ("host:", None, ""),
            ("", None, ""),
            ("bad host", None, ""),
            ("[::1]x", None, ""),
        ];
        for (input, expected, printed) in table {
            let parsed = parse_host_port(input);
            assert_eq!(&parsed, expected, "{input:?}");
            if let Some((host, _)) = parsed {
                assert_eq!(host.to_string(), *printed);
                assert_eq!(Host::parse(printed), Some(host), "round trip {input:?}");
            }
        }
    }

    #[test]
    fn received_param_accepts_ipv6_with_or_without_brackets() {
        let v6: IpAddr = "2001:db8::9"
            .parse()
            .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(parse_ip_param("2001:db8::9"), Some(v6));
        assert_eq!(parse_ip_param("[2001:db8::9]"), Some(v6));
        assert_eq!(
            parse_ip_param("192.0.2.1"),
            Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)))
        );
        assert_eq!(parse_ip_param("example.com"), None);
    }
}
