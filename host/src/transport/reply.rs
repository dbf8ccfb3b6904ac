//! Where a response goes (RFC 3261 §18.2.2, RFC 3581 §4), as a [`Target`].

use std::net::SocketAddr;

use tokio::net::lookup_host;
use trunkline_sip::message::{Destination, ResponseTarget, response_target};

use super::{Inbound, Target, TransportError, TransportKind};

/// The target for responses to `request`:
/// - TCP/TLS: the connection it came on; if that has closed, a new one to
///   `received` and the sent-by port (a name is resolved; if that fails
///   the source address is used, which still serves the open connection);
/// - UDP: `maddr` if present, else `received` with `rport` (the NAT
///   mapping the request came through), else sent-by, resolved if a name.
pub async fn reply_target(request: &Inbound) -> Result<Target, TransportError> {
    let via = request.msg.top_via().map_err(TransportError::NoVia)?;
    let destination = match response_target(&via) {
        ResponseTarget::SameConnection { fallback } => fallback,
        ResponseTarget::Datagram(destination) => destination,
    };
    // The transport the request came on decides, not its Via: a peer whose
    // Via names another transport is still best reached the way it is
    // actually talking to us.
    if request.kind == TransportKind::Udp {
        let addr = match destination {
            Destination::Addr(addr) => addr,
            Destination::Name { host, port } => resolve(&host, port).await?,
        };
        return Ok(Target::udp(addr));
    }
    let (addr, name) = match destination {
        Destination::Addr(addr) => (addr, None),
        // Resolution only matters if the connection has closed meanwhile.
        Destination::Name { host, port } => match resolve(&host, port).await {
            Ok(addr) => (addr, Some(host)),
            Err(_) => (request.source, Some(host)),
        },
    };
    Ok(Target {
        kind: request.kind,
        addr,
        conn: request.conn,
        tls_name: name.filter(|_| request.kind == TransportKind::Tls),
    })
}

/// The first address a name resolves to (RFC 3263 §5 SRV lookups are the
/// caller's business: a Via sent-by names a host, not a domain).
async fn resolve(host: &str, port: u16) -> Result<SocketAddr, TransportError> {
    let error = |reason: String| TransportError::Resolve {
        host: host.to_string(),
        reason,
    };
    let mut addrs = lookup_host((host, port))
        .await
        .map_err(|e| error(e.to_string()))?;
    addrs.next().ok_or_else(|| error("no address".to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::ConnId;
    use trunkline_sip::message::{SipMessage, stamp_received};

    fn inbound(via: &str, kind: TransportKind, source: &str, stamp: bool) -> Inbound {
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

    #[tokio::test]
    async fn reply_targets() {
        use TransportKind::{Tcp, Tls, Udp};
        let table = [
            // (what, via, arrived over, source, stamped, kind, addr, conn)
            (
                "UDP behind NAT: received + rport",
                "SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK1;rport",
                Udp,
                "203.0.113.9:40000",
                true,
                Udp,
                "203.0.113.9:40000",
                None,
            ),
            (
                "UDP without rport: received + sent-by port",
                "SIP/2.0/UDP 10.0.0.5:5070;branch=z9hG4bK1",
                Udp,
                "203.0.113.9:40000",
                true,
                Udp,
                "203.0.113.9:5070",
                None,
            ),
            (
                "UDP sent-by a name, not stamped: resolved",
                "SIP/2.0/UDP localhost:5999;branch=z9hG4bK1",
                Udp,
                "127.0.0.1:5999",
                false,
                Udp,
                "localhost:5999",
                None,
            ),
            (
                "TCP: same connection, fallback received + sent-by port",
                "SIP/2.0/TCP edge.example.com;branch=z9hG4bK1",
                Tcp,
                "198.51.100.2:51000",
                true,
                Tcp,
                "198.51.100.2:5060",
                Some(ConnId(7)),
            ),
            (
                "TLS: default port 5061",
                "SIP/2.0/TLS 198.51.100.2;branch=z9hG4bK1",
                Tls,
                "198.51.100.2:51000",
                true,
                Tls,
                "198.51.100.2:5061",
                Some(ConnId(7)),
            ),
        ];
        for (what, via, arrived, source, stamp, kind, addr, conn) in table {
            let target = reply_target(&inbound(via, arrived, source, stamp))
                .await
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            let expected = match lookup_host(addr).await {
                Ok(mut addrs) => addrs.next().expect("an address"),
                Err(e) => panic!("{what}: {e}"),
            };
            assert_eq!(
                (target.kind, target.addr.port(), target.conn),
                (kind, expected.port(), conn),
                "{what}"
            );
            assert!(
                target.addr.ip().is_loopback() || target.addr == expected,
                "{what}"
            );
        }
    }
}
