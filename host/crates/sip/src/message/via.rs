//! The Via header (RFC 3261 §20.42, §18.2, RFC 3581 `rport`).
//!
//! Our own parser: rsip's typed Via fails on IPv6 sent-by
//! (`[2001:db8::1]:5060` -> "invalid digit found in string") and on the
//! `SIP / 2.0 / UDP` spacing the grammar allows, and the transaction layer
//! matches on the branch of every single request, so this must not fail.

use super::host::{Host, parse_host_port, parse_ip_param};
use super::params::{self, Param, is_token, split_outside_quotes};
use crate::rfc;
use std::fmt;
use std::net::IpAddr;

/// The transport named in a Via's sent-protocol.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP: unreliable, responses go by RFC 3261 §18.2.2 address rules.
    Udp,
    /// TCP.
    Tcp,
    /// TLS over TCP.
    Tls,
    /// SCTP (RFC 4168).
    Sctp,
    /// WebSocket (RFC 7118).
    Ws,
    /// Secure WebSocket (RFC 7118).
    Wss,
    /// Anything else, upper-cased.
    Other(String),
}

impl Transport {
    /// Parses a transport token, case-insensitively.
    pub fn parse(text: &str) -> Transport {
        match text.to_ascii_uppercase().as_str() {
            "UDP" => Transport::Udp,
            "TCP" => Transport::Tcp,
            "TLS" => Transport::Tls,
            "SCTP" => Transport::Sctp,
            "WS" => Transport::Ws,
            "WSS" => Transport::Wss,
            other => Transport::Other(other.to_string()),
        }
    }

    /// Whether the transport retransmits by itself (RFC 3261 §17: timers
    /// A, E and G are not run, responses go back on the same connection).
    pub fn is_reliable(&self) -> bool {
        !matches!(self, Transport::Udp)
    }

    /// The port implied when a sent-by has none (RFC 3261 §18.2.2).
    pub fn default_port(&self) -> u16 {
        match self {
            Transport::Tls | Transport::Wss => rfc::DEFAULT_SIPS_PORT,
            _ => rfc::DEFAULT_SIP_PORT,
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
            Transport::Sctp => "SCTP",
            Transport::Ws => "WS",
            Transport::Wss => "WSS",
            Transport::Other(name) => name,
        })
    }
}

/// The `rport` parameter of RFC 3581.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rport {
    /// `;rport` with no value: the client asks to be answered at the source
    /// port of its request (it is behind a NAT).
    Requested,
    /// `;rport=N`, filled in by the server that received the request.
    Port(u16),
}

/// One Via value (`via-parm`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// Protocol name and version, `SIP/2.0` for every peer we talk to.
    pub protocol: String,
    /// The transport the request was sent over.
    pub transport: Transport,
    /// The sent-by host, IPv6 included.
    pub host: Host,
    /// The sent-by port, if written.
    pub port: Option<u16>,
    /// All parameters in wire order (branch, received, rport, maddr, ttl and
    /// extensions).
    pub params: Vec<Param>,
}

impl Via {
    /// Parses one via-parm: `SIP/2.0/UDP host[:port];params`, with the LWS
    /// RFC 3261 allows around `/`, `:` and `;`.
    pub fn parse(text: &str) -> Option<Via> {
        let mut parts = text.trim().splitn(3, '/');
        let name = parts.next()?.trim();
        let version = parts.next()?.trim();
        let rest = parts.next()?.trim_start();
        let end = rest
            .find(|c: char| c.is_ascii_whitespace())
            .unwrap_or(rest.len());
        let (transport, rest) = rest.split_at(end);
        if !is_token(name) || !is_token(version) || !is_token(transport) {
            return None;
        }
        // An IPv6 reference holds no `;`, so the first one ends sent-by.
        let (sent_by, params) = rest.split_once(';').unwrap_or((rest, ""));
        let (host, port) = parse_host_port(sent_by)?;
        Some(Via {
            protocol: format!("{name}/{version}"),
            transport: Transport::parse(transport),
            host,
            port,
            params: params::parse(params)?,
        })
    }

    /// Parses a header value holding one or more comma-separated via-parms.
    pub fn parse_list(text: &str) -> Option<Vec<Via>> {
        split_outside_quotes(text, b',')
            .into_iter()
            .map(Via::parse)
            .collect()
    }

    /// A parameter's value (`None` when absent; `Some(None)` for a flag).
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        params::find(&self.params, name).map(|p| p.value.as_deref())
    }

    /// Sets or replaces a parameter, keeping its position.
    pub fn set_param(&mut self, name: &str, value: Option<String>) {
        params::set(&mut self.params, name, value);
    }

    /// The branch, the transaction id (RFC 3261 §17.1.3, §17.2.3).
    pub fn branch(&self) -> Option<&str> {
        self.param("branch").flatten()
    }

    /// The `received` address a server stamped on (RFC 3261 §18.2.1).
    pub fn received(&self) -> Option<IpAddr> {
        self.param("received").flatten().and_then(parse_ip_param)
    }

    /// The `maddr` parameter as an address, when it is an IP literal.
    pub fn maddr(&self) -> Option<&str> {
        self.param("maddr").flatten()
    }

    /// The RFC 3581 `rport` parameter. A value that is not a port is read as
    /// a bare `rport`: the client still asked for symmetric responses.
    pub fn rport(&self) -> Option<Rport> {
        let value = self.param("rport")?;
        Some(match value.and_then(super::host::parse_port) {
            Some(port) => Rport::Port(port),
            None => Rport::Requested,
        })
    }

    /// The sent-by port, or the transport's default.
    pub fn sent_by_port(&self) -> u16 {
        self.port.unwrap_or_else(|| self.transport.default_port())
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{} {}", self.protocol, self.transport, self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
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
        // (input, transport, host, port, branch, received, rport, printed)
        type Row<'a> = (
            &'a str,
            Transport,
            &'a str,
            Option<u16>,
            Option<&'a str>,
            Option<&'a str>,
            Option<Rport>,
            &'a str,
        );
        let table: &[Row] = &[
            (
                "SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK1",
                Transport::Udp,
                "10.0.0.2",
                Some(5060),
                Some("z9hG4bK1"),
                None,
                None,
                "SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK1",
            ),
            (
                "SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bKv6;rport",
                Transport::Udp,
                "[2001:db8::1]",
                Some(5060),
                Some("z9hG4bKv6"),
                None,
                Some(Rport::Requested),
                "SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bKv6;rport",
            ),
            (
                "SIP/2.0/TCP [2001:db8::1];branch=z9hG4bK2;received=2001:db8::99;rport=40000",
                Transport::Tcp,
                "[2001:db8::1]",
                None,
                Some("z9hG4bK2"),
                Some("2001:db8::99"),
                Some(Rport::Port(40000)),
                "SIP/2.0/TCP [2001:db8::1];branch=z9hG4bK2;received=2001:db8::99;rport=40000",
            ),
            (
                "SIP / 2.0 / tls  pbx.example.com : 5061 ; branch = z9hG4bK3 ; received=192.0.2.7",
                Transport::Tls,
                "pbx.example.com",
                Some(5061),
                Some("z9hG4bK3"),
                Some("192.0.2.7"),
                None,
                "SIP/2.0/TLS pbx.example.com:5061;branch=z9hG4bK3;received=192.0.2.7",
            ),
            (
                "SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bKws;rport=x",
                Transport::Wss,
                "df7jal23ls0d.invalid",
                None,
                Some("z9hG4bKws"),
                None,
                Some(Rport::Requested),
                "SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bKws;rport=x",
            ),
            (
                "SIP/2.0/UDP h;branch=old-2543-branch;ttl=16;maddr=224.2.0.1",
                Transport::Udp,
                "h",
                None,
                Some("old-2543-branch"),
                None,
                None,
                "SIP/2.0/UDP h;branch=old-2543-branch;ttl=16;maddr=224.2.0.1",
            ),
        ];
        for (input, transport, host, port, branch, received, rport, printed) in table {
            let via = Via::parse(input).unwrap_or_else(|| panic!("{input:?}"));
            assert_eq!(&via.transport, transport, "{input}");
            assert_eq!(via.host.to_string(), *host, "{input}");
            assert_eq!(via.port, *port, "{input}");
            assert_eq!(via.branch(), *branch, "{input}");
            assert_eq!(
                via.received().map(|ip| ip.to_string()).as_deref(),
                *received,
                "{input}"
            );
            assert_eq!(via.rport(), *rport, "{input}");
            assert_eq!(via.to_string(), *printed, "{input}");
            assert_eq!(Via::parse(printed), Some(via), "round trip {input}");
        }
    }

    #[test]
    fn comma_separated_list() {
        let vias = Via::parse_list(
            "SIP/2.0/UDP a.example.com;branch=z9hG4bKa, SIP/2.0/TCP [::1]:5070;branch=z9hG4bKb",
        )
        .expect("parses");
        assert_eq!(vias.len(), 2);
        assert_eq!(vias[1].host.to_string(), "[::1]");
        assert_eq!(vias[1].sent_by_port(), 5070);
        assert_eq!(vias[0].sent_by_port(), 5060);
    }

    #[test]
    fn malformed_vias_are_refused() {
        for input in [
            "",
            "SIP/2.0",
            "SIP/2.0/UDP",
            "SIP/2.0/UDP ",
            "SIP/2.0/UDP host:abc",
            "SIP/2.0/UDP 2001:db8::1;branch=x",
            "SIP/2.0/UDP [2001:db8::1;branch=x",
            "SIP/2.0/UDP host;=x",
            "SIP/2.0/U<P host",
            "garbage",
        ] {
            assert_eq!(Via::parse(input), None, "{input:?}");
        }
    }

    #[test]
    fn set_param_keeps_position() {
        let mut via = Via::parse("SIP/2.0/UDP h;rport;branch=z9hG4bK1").expect("parses");
        via.set_param("rport", Some("5062".into()));
        via.set_param("received", Some("192.0.2.1".into()));
        assert_eq!(
            via.to_string(),
            "SIP/2.0/UDP h;rport=5062;branch=z9hG4bK1;received=192.0.2.1"
        );
    }

    #[test]
    fn reliability_and_default_ports() {
        let table = [
            ("udp", false, 5060),
            ("TCP", true, 5060),
            ("TLS", true, 5061),
            ("SCTP", true, 5060),
            ("WSS", true, 5061),
        ];
        for (name, reliable, port) in table {
            let transport = Transport::parse(name);
            assert_eq!(transport.is_reliable(), reliable, "{name}");
            assert_eq!(transport.default_port(), port, "{name}");
        }
    }
}
