//! Where a response goes (RFC 3261 §18.2.2, RFC 3581 §4), as a [`Target`].
//!
//! Chosen without DNS and without awaiting anything: this runs on the
//! signalling task for every request, before admission, so one request
//! naming a host whose resolver never answers must not hold up the rest.

use trunkline_sip::message::{Host, ResponseTarget, ViaTrust, response_target};

use super::{Inbound, Target, TransportError, TransportKind};

/// The target for responses to `request` (`trust`: whether its source is
/// a peer we admit; see [`ViaTrust`]):
/// - TCP/TLS: the connection it came on; if that has closed, a new one to
///   the source IP at the sent-by port (the source port for peers not
///   admitted);
/// - UDP: the source IP, at the `rport` (the NAT mapping the request came
///   through) or the sent-by port; the source port for peers not
///   admitted. `maddr` only for a multicast literal from an admitted peer.
pub fn reply_target(request: &Inbound, trust: ViaTrust) -> Result<Target, TransportError> {
    let via = request.msg.top_via().map_err(TransportError::NoVia)?;
    let addr = match response_target(&via, request.source, trust) {
        ResponseTarget::SameConnection { fallback } => fallback,
        ResponseTarget::Datagram(addr) => addr,
    };
    // The transport the request came on decides, not its Via: a peer whose
    // Via names another transport is still best reached the way it is
    // actually talking to us.
    if request.kind == TransportKind::Udp {
        return Ok(Target::udp(addr));
    }
    // A TLS reconnection checks the certificate against the sent-by name.
    let tls_name = match &via.host {
        Host::Domain(name) if request.kind == TransportKind::Tls => Some(name.clone()),
        _ => None,
    };
    Ok(Target {
        kind: request.kind,
        addr,
        conn: request.conn,
        tls_name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::ConnId;
    use trunkline_sip::message::{SipMessage, stamp_received};

    fn inbound(via: &str, kind: TransportKind, source: &str, stamp: bool) -> Inbound {
        use std::net::SocketAddr;
        let text = format!(
            "OPTIONS sip:gw SIP/2.0\r\nVia: {via}\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:gw>\r\n\
             Call-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        );
        let mut msg = SipMessage::parse(text.as_bytes()).expect("valid");
        let source: SocketAddr = source.parse().expect("address");
        if stamp {
            stamp_received(&mut msg, source).expect("has a Via");
        }
        Inbound {
            msg,
            source,
            kind,
            conn: kind.is_reliable().then_some(ConnId(7)),
            local: "127.0.0.1:5060".parse().expect("address"),
        }
    }

    #[test]
    fn reply_targets() {
        use TransportKind::{Tcp, Tls, Udp};
        use ViaTrust::{Admitted, Unadmitted};
        let table = [
            // (what, via, arrived over, source, trust, kind, addr, conn, tls name)
            (
                "UDP behind NAT: received + rport",
                "SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK1;rport",
                Udp,
                "203.0.113.9:40000",
                Admitted,
                Udp,
                "203.0.113.9:40000",
                None,
                None,
            ),
            (
                "UDP without rport: received + sent-by port",
                "SIP/2.0/UDP 10.0.0.5:5070;branch=z9hG4bK1",
                Udp,
                "203.0.113.9:40000",
                Admitted,
                Udp,
                "203.0.113.9:5070",
                None,
                None,
            ),
            (
                "UDP from a peer not admitted: the source, Via and maddr ignored",
                "SIP/2.0/UDP victim.example:5070;branch=z9hG4bK1;maddr=black.hole.example",
                Udp,
                "203.0.113.9:40000",
                Unadmitted,
                Udp,
                "203.0.113.9:40000",
                None,
                None,
            ),
            (
                "TCP: same connection, fallback received + sent-by port",
                "SIP/2.0/TCP edge.example.com;branch=z9hG4bK1",
                Tcp,
                "198.51.100.2:51000",
                Admitted,
                Tcp,
                "198.51.100.2:5060",
                Some(ConnId(7)),
                None,
            ),
            (
                "TLS: default port 5061, the sent-by name for the certificate",
                "SIP/2.0/TLS edge.example.com;branch=z9hG4bK1",
                Tls,
                "198.51.100.2:51000",
                Admitted,
                Tls,
                "198.51.100.2:5061",
                Some(ConnId(7)),
                Some("edge.example.com"),
            ),
        ];
        for (what, via, arrived, source, trust, kind, addr, conn, name) in table {
            let target = reply_target(&inbound(via, arrived, source, true), trust)
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(
                (
                    target.kind,
                    target.addr,
                    target.conn,
                    target.tls_name.as_deref()
                ),
                (kind, addr.parse().expect("address"), conn, name),
                "{what}"
            );
        }
    }
}
