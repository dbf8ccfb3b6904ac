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
use std::net::{IpAddr, SocketAddr};

/// Where to send a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseTarget {
    /// Reliable transport (TCP, TLS, SCTP, WS): write on the connection the
    /// request arrived on. If it has closed, open a new one to `fallback`.
    SameConnection {
        /// Where to connect when the original connection is gone.
        fallback: SocketAddr,
    },
    /// Unreliable transport (UDP): send a datagram here.
    Datagram(SocketAddr),
}

/// How far a request's Via is believed when choosing where its responses
/// go. Everything in a Via is the sender's word: believed from a peer we
/// admit, never from anyone else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViaTrust {
    /// The source is one we admit (an allow-listed address): RFC 3261
    /// §18.2.2 and RFC 3581 as written, with two limits. Responses always
    /// go to the source IP (`received`), and `maddr` is honoured only when
    /// it is a multicast IP literal (what it is for). A name is never
    /// looked up: a DNS wait would stall whoever asks.
    Admitted,
    /// Anyone else: responses go back to the datagram's source address and
    /// port, whatever the Via names, so a forged Via cannot aim our answers
    /// (or our retransmissions) at a third host.
    Unadmitted,
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

/// Where responses to a request that arrived from `source` with this top
/// Via go (RFC 3261 §18.2.2, RFC 3581 §4), believing the Via as far as
/// `trust` says. Never needs DNS.
pub fn response_target(top_via: &Via, source: SocketAddr, trust: ViaTrust) -> ResponseTarget {
    let source = SocketAddr::new(source.ip().to_canonical(), source.port());
    let sent_by_port = top_via.sent_by_port();
    if top_via.transport.is_reliable() {
        // Only used if the connection has closed: the peer's listening port
        // at its real address.
        let fallback = match trust {
            ViaTrust::Admitted => SocketAddr::new(source.ip(), sent_by_port),
            ViaTrust::Unadmitted => source,
        };
        return ResponseTarget::SameConnection { fallback };
    }
    if trust == ViaTrust::Unadmitted {
        return ResponseTarget::Datagram(source);
    }
    if let Some(group) = top_via
        .maddr()
        .and_then(Host::parse)
        .and_then(|h| h.ip())
        .filter(IpAddr::is_multicast)
    {
        // Multicast responses are sent to maddr at the sent-by port; rport is
        // about NAT and has no meaning there.
        return ResponseTarget::Datagram(SocketAddr::new(group, sent_by_port));
    }
    // The port the request really came from, when the client asked for it.
    let port = match top_via.rport() {
        Some(_) => source.port(),
        None => sent_by_port,
    };
    ResponseTarget::Datagram(SocketAddr::new(source.ip(), port))
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
        use ViaTrust::{Admitted, Unadmitted};
        let datagram = |a: &str| ResponseTarget::Datagram(addr(a));
        let connection = |a: &str| ResponseTarget::SameConnection { fallback: addr(a) };
        let table = [
            // (via, arrived from, trust, expected)
            (
                "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1",
                "192.0.2.1:5060",
                Admitted,
                datagram("192.0.2.1:5060"),
            ),
            (
                "SIP/2.0/UDP 10.0.0.5:5070;branch=z9hG4bK1;received=198.51.100.7",
                "198.51.100.7:41000",
                Admitted,
                datagram("198.51.100.7:5070"),
            ),
            (
                "SIP/2.0/UDP 10.0.0.5:5070;rport=41000;branch=z9hG4bK1;received=198.51.100.7",
                "198.51.100.7:41000",
                Admitted,
                datagram("198.51.100.7:41000"),
            ),
            (
                "SIP/2.0/UDP [2001:db8::1];branch=z9hG4bK1;received=2001:db8::9;rport=7000",
                "[2001:db8::9]:7000",
                Admitted,
                datagram("[2001:db8::9]:7000"),
            ),
            // A name is never looked up: the source IP answers for it.
            (
                "SIP/2.0/UDP pbx.example.com:5080;branch=z9hG4bK1;received=192.0.2.4",
                "192.0.2.4:33000",
                Admitted,
                datagram("192.0.2.4:5080"),
            ),
            // maddr: a multicast literal is honoured, anything else ignored.
            (
                "SIP/2.0/UDP 10.0.0.5;branch=z9hG4bK1;maddr=224.0.1.75;received=1.2.3.4",
                "1.2.3.4:5060",
                Admitted,
                datagram("224.0.1.75:5060"),
            ),
            (
                "SIP/2.0/UDP 10.0.0.5;branch=z9hG4bK1;maddr=203.0.113.99;received=1.2.3.4",
                "1.2.3.4:5060",
                Admitted,
                datagram("1.2.3.4:5060"),
            ),
            (
                "SIP/2.0/UDP 10.0.0.5;branch=z9hG4bK1;maddr=victim.example;received=1.2.3.4",
                "1.2.3.4:5060",
                Admitted,
                datagram("1.2.3.4:5060"),
            ),
            // Not admitted: the source, whatever the Via says.
            (
                "SIP/2.0/UDP 203.0.113.99:5070;branch=z9hG4bK1;maddr=224.0.1.75;received=1.2.3.4",
                "1.2.3.4:40000",
                Unadmitted,
                datagram("1.2.3.4:40000"),
            ),
            (
                "SIP/2.0/UDP victim.example;branch=z9hG4bK1;received=1.2.3.4",
                "[::ffff:1.2.3.4]:40000",
                Unadmitted,
                datagram("1.2.3.4:40000"),
            ),
            (
                "SIP/2.0/TCP 10.0.0.5:5070;branch=z9hG4bK1;received=198.51.100.7;rport=41000",
                "198.51.100.7:41000",
                Admitted,
                connection("198.51.100.7:5070"),
            ),
            (
                "SIP/2.0/TLS pbx.example.com;branch=z9hG4bK1;received=198.51.100.2",
                "198.51.100.2:51000",
                Admitted,
                connection("198.51.100.2:5061"),
            ),
            (
                "SIP/2.0/TLS pbx.example.com;branch=z9hG4bK1;received=198.51.100.2",
                "198.51.100.2:51000",
                Unadmitted,
                connection("198.51.100.2:51000"),
            ),
        ];
        for (via, source, trust, expected) in table {
            let via = Via::parse(via).expect("valid Via");
            assert_eq!(
                response_target(&via, addr(source), trust),
                expected,
                "{via} from {source} ({trust:?})"
            );
        }
    }

    #[test]
    fn stamp_then_target_reaches_the_nat() {
        let mut msg = request("SIP/2.0/UDP 10.0.0.5:5060;rport;branch=z9hG4bK1");
        stamp_received(&mut msg, addr("198.51.100.7:41000")).expect("stamps");
        let via = msg.top_via().expect("valid");
        assert_eq!(
            response_target(&via, addr("198.51.100.7:41000"), ViaTrust::Admitted),
            ResponseTarget::Datagram(addr("198.51.100.7:41000"))
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
