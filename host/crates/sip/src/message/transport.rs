//! What the transport does with Via (RFC 3261 §18.2.1, §18.2.2; RFC 3581):
//! mark where a request really came from, and work out where its responses
//! go. Plain functions; the sockets live in the host's transport module.
//!
//! Getting this wrong is the classic "call connects, then every response is
//! lost behind the caller's NAT": the sent-by in the Via is the address the
//! peer *thinks* it has.

use super::error::ParseError;
use super::host::Host;
use super::params::split_outside_quotes;
use super::sip_message::SipMessage;
use super::via::{Rport, Via};
use std::net::SocketAddr;

/// Where to send a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseTarget {
    /// Reliable transport (TCP, TLS, SCTP, WS): write on the connection the
    /// request arrived on. If it has closed, open a new one to `fallback`.
    SameConnection {
        /// Where to connect when the original connection is gone.
        fallback: Destination,
    },
    /// Unreliable transport (UDP): send a datagram here.
    Datagram(Destination),
}

/// An address to send to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// A literal address.
    Addr(SocketAddr),
    /// A DNS name that the transport must resolve (RFC 3263 §5) first.
    Name {
        /// The host name from sent-by or maddr.
        host: String,
        /// The port to use.
        port: u16,
    },
}

/// Stamps `received` (and fills `rport`) on the top Via of a request that
/// arrived from `source` (RFC 3261 §18.2.1, RFC 3581 §4):
/// - `received=<source ip>` when the sent-by host is a name or another IP;
/// - when the client sent a bare `;rport`, `rport=<source port>` and
///   `received` even when the IP matches, as RFC 3581 requires.
///
/// IPv4-mapped IPv6 sources (`::ffff:192.0.2.1`, from dual-stack sockets) are
/// written as plain IPv4 so they compare equal to an IPv4 sent-by.
pub fn stamp_received(request: &mut SipMessage, source: SocketAddr) -> Result<(), ParseError> {
    let source_ip = source.ip().to_canonical();
    let Some(line) = request.headers.iter_mut().find(|h| h.is("Via")) else {
        return Err(ParseError::MissingHeader("Via"));
    };
    let parts = split_outside_quotes(&line.value, b',');
    let mut via = Via::parse(parts[0]).ok_or(ParseError::InvalidHeader("Via"))?;
    let rport_requested = via.rport() == Some(Rport::Requested);
    if rport_requested || via.host.ip() != Some(source_ip) {
        via.set_param("received", Some(source_ip.to_string()));
    }
    if rport_requested {
        via.set_param("rport", Some(source.port().to_string()));
    }
    let mut value = via.to_string();
    for rest in &parts[1..] {
        value.push(',');
        value.push_str(rest);
    }
    line.value = value;
    Ok(())
}

/// Where responses to a request with this top Via go (RFC 3261 §18.2.2,
/// RFC 3581 §4), after [`stamp_received`] ran on it.
pub fn response_target(top_via: &Via) -> ResponseTarget {
    let sent_by_port = top_via.sent_by_port();
    if top_via.transport.is_reliable() {
        let fallback = match top_via.received() {
            Some(ip) => Destination::Addr(SocketAddr::new(ip, sent_by_port)),
            None => host_destination(&top_via.host, sent_by_port),
        };
        return ResponseTarget::SameConnection { fallback };
    }
    // The port the request really came from, when the client asked for it.
    let port = match top_via.rport() {
        Some(Rport::Port(port)) => port,
        _ => sent_by_port,
    };
    if let Some(maddr) = top_via.maddr() {
        // Multicast responses are sent to maddr at the sent-by port; rport is
        // about NAT and has no meaning there.
        let host = Host::parse(maddr).unwrap_or_else(|| Host::Domain(maddr.to_string()));
        return ResponseTarget::Datagram(host_destination(&host, sent_by_port));
    }
    let destination = match top_via.received() {
        Some(ip) => Destination::Addr(SocketAddr::new(ip, port)),
        None => host_destination(&top_via.host, port),
    };
    ResponseTarget::Datagram(destination)
}

fn host_destination(host: &Host, port: u16) -> Destination {
    match host.ip() {
        Some(ip) => Destination::Addr(SocketAddr::new(ip, port)),
        None => Destination::Name {
            host: host.to_string(),
            port,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse()
            .unwrap_or_else(|_| panic!("{text:?} is an address"))
    }

    fn request(via: &str) -> SipMessage {
        let text = format!(
            "OPTIONS sip:h SIP/2.0\r\nVia: {via}\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:h>\r\n\
             Call-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        );
        SipMessage::parse(text.as_bytes()).expect("valid")
    }

    #[test]
    fn stamp_table() {
        let table = [
            // Same IP, no rport: nothing to add.
            (
                "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1",
                "192.0.2.1:5060",
                "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1",
            ),
            // Behind NAT: the private sent-by is corrected.
            (
                "SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK1",
                "198.51.100.7:41000",
                "SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK1;received=198.51.100.7",
            ),
            // rport requested: filled, and received added although equal.
            (
                "SIP/2.0/UDP 192.0.2.1:5060;rport;branch=z9hG4bK1",
                "192.0.2.1:6000",
                "SIP/2.0/UDP 192.0.2.1:5060;rport=6000;branch=z9hG4bK1;received=192.0.2.1",
            ),
            // A name is always marked.
            (
                "SIP/2.0/TCP pbx.example.com;branch=z9hG4bK1",
                "192.0.2.9:50000",
                "SIP/2.0/TCP pbx.example.com;branch=z9hG4bK1;received=192.0.2.9",
            ),
            // IPv6 sent-by, same address written differently.
            (
                "SIP/2.0/UDP [2001:db8:0::1]:5060;branch=z9hG4bK1",
                "[2001:db8::1]:5060",
                "SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK1",
            ),
            // IPv6 source with rport: received without brackets (RFC 3261 grammar).
            (
                "SIP/2.0/UDP [2001:db8::1];branch=z9hG4bK1;rport",
                "[2001:db8::9]:7000",
                "SIP/2.0/UDP [2001:db8::1];branch=z9hG4bK1;rport=7000;received=2001:db8::9",
            ),
            // A dual-stack socket reports IPv4 peers as mapped IPv6.
            (
                "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1",
                "[::ffff:192.0.2.1]:5060",
                "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1",
            ),
            // Only the top Via of a comma list changes.
            (
                "SIP/2.0/UDP 10.0.0.5;branch=z9hG4bK2, SIP/2.0/UDP 10.0.0.6;branch=z9hG4bK1",
                "192.0.2.2:5060",
                "SIP/2.0/UDP 10.0.0.5;branch=z9hG4bK2;received=192.0.2.2, SIP/2.0/UDP 10.0.0.6;branch=z9hG4bK1",
            ),
        ];
        for (via, source, expected) in table {
            let mut msg = request(via);
            stamp_received(&mut msg, addr(source)).expect("stamps");
            assert_eq!(msg.header("Via"), Some(expected), "{via} from {source}");
        }
    }

    #[test]
    fn response_target_table() {
        let datagram = |a: &str| ResponseTarget::Datagram(Destination::Addr(addr(a)));
        let name = |host: &str, port| Destination::Name {
            host: host.into(),
            port,
        };
        let table = [
            (
                "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1",
                datagram("192.0.2.1:5060"),
            ),
            (
                "SIP/2.0/UDP 10.0.0.5:5070;branch=z9hG4bK1;received=198.51.100.7",
                datagram("198.51.100.7:5070"),
            ),
            (
                "SIP/2.0/UDP 10.0.0.5:5070;rport=41000;branch=z9hG4bK1;received=198.51.100.7",
                datagram("198.51.100.7:41000"),
            ),
            (
                "SIP/2.0/UDP 10.0.0.5:5070;rport;branch=z9hG4bK1;received=198.51.100.7",
                datagram("198.51.100.7:5070"),
            ),
            (
                "SIP/2.0/UDP [2001:db8::1];branch=z9hG4bK1;received=2001:db8::9;rport=7000",
                datagram("[2001:db8::9]:7000"),
            ),
            (
                "SIP/2.0/UDP pbx.example.com:5080;branch=z9hG4bK1",
                ResponseTarget::Datagram(name("pbx.example.com", 5080)),
            ),
            (
                "SIP/2.0/UDP 10.0.0.5;branch=z9hG4bK1;maddr=224.0.1.75;received=1.2.3.4",
                datagram("224.0.1.75:5060"),
            ),
            (
                "SIP/2.0/TCP 10.0.0.5:5070;branch=z9hG4bK1;received=198.51.100.7;rport=41000",
                ResponseTarget::SameConnection {
                    fallback: Destination::Addr(addr("198.51.100.7:5070")),
                },
            ),
            (
                "SIP/2.0/TLS pbx.example.com;branch=z9hG4bK1",
                ResponseTarget::SameConnection {
                    fallback: name("pbx.example.com", 5061),
                },
            ),
        ];
        for (via, expected) in table {
            let via = Via::parse(via).expect("valid Via");
            assert_eq!(response_target(&via), expected, "{via}");
        }
    }

    #[test]
    fn stamp_then_target_reaches_the_nat() {
        let mut msg = request("SIP/2.0/UDP 10.0.0.5:5060;rport;branch=z9hG4bK1");
        stamp_received(&mut msg, addr("198.51.100.7:41000")).expect("stamps");
        let via = msg.top_via().expect("valid");
        assert_eq!(
            response_target(&via),
            ResponseTarget::Datagram(Destination::Addr(addr("198.51.100.7:41000")))
        );
    }

    #[test]
    fn stamping_needs_a_via() {
        let mut msg = request("SIP/2.0/UDP h;branch=z9hG4bK1");
        msg.remove_header("Via");
        assert_eq!(
            stamp_received(&mut msg, addr("192.0.2.1:5060")),
            Err(ParseError::MissingHeader("Via"))
        );
    }
}
