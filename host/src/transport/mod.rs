//! SIP over UDP, TCP and TLS (RFC 3261 §18): sockets, connections and tasks.
//!
//! This is the one place where SIP meets tokio. Bytes are cut into messages
//! by `trunkline-sip`'s framers; requests get `received`/`rport` stamped
//! (§18.2.1, RFC 3581) before the gateway sees them; responses go where
//! §18.2.2 says ([`reply_target`]). Malformed input is answered only when
//! the framer produced a reply (a request whose Via could be read), so
//! garbage never makes us send anything.
//!
//! # Layout
//! - `config`: [`ListenConfig`], the `[sip]` section.
//! - `transports`: [`Transports`]: bind, send, stats, shutdown.
//! - `udp`: the UDP socket (large SO_RCVBUF) and its receive task.
//! - `conn`: the connection table, and per connection a reader task (framer,
//!   pongs, idle timeout) and a writer task fed by a bounded queue.
//! - `tcp`: accepting TCP/TLS connections and opening outbound ones, one
//!   connect at a time per peer.
//! - `tls`: rustls configs from PEM files.
//! - `reply`: [`reply_target`], where a response to a request goes (no DNS).
//! - `resolve`: [`Resolver`], host-name look-ups with a deadline and a cache.
//! - `stats`: [`Counters`] per transport.
//! - `error`: [`TransportError`].

mod config;
mod conn;
mod error;
mod reply;
mod resolve;
mod stats;
mod tcp;
mod tls;
mod transports;
mod udp;

#[cfg(test)]
mod tests;

use std::fmt;
use std::net::SocketAddr;

use trunkline_sip::message::{SipMessage, Transport};
use trunkline_sip::transaction::Reliability;

pub use config::{DEFAULT_SIP_PORT, DEFAULT_SIPS_PORT, ListenConfig, TlsClient, TlsListen};
pub use error::TransportError;
pub use reply::reply_target;
pub use resolve::Resolver;
pub use stats::{Counters, StatsSnapshot};
pub use tls::{client_config, client_config_trusting};
pub use transports::Transports;

/// The transports Trunkline speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportKind {
    /// Datagrams; the transaction layer retransmits.
    Udp = 0,
    /// Plain TCP connections.
    Tcp = 1,
    /// TLS over TCP (`sips:` and `;transport=tls`).
    Tls = 2,
}

impl TransportKind {
    /// The Via transport token for this kind.
    pub fn via_transport(self) -> Transport {
        match self {
            TransportKind::Udp => Transport::Udp,
            TransportKind::Tcp => Transport::Tcp,
            TransportKind::Tls => Transport::Tls,
        }
    }

    /// The kind for a Via transport, if Trunkline speaks it.
    pub fn from_via(transport: &Transport) -> Option<TransportKind> {
        match transport {
            Transport::Udp => Some(TransportKind::Udp),
            Transport::Tcp => Some(TransportKind::Tcp),
            Transport::Tls => Some(TransportKind::Tls),
            _ => None,
        }
    }

    /// Whether messages travel on connections (no retransmission timers A,
    /// E, G; responses on the same connection).
    pub fn is_reliable(self) -> bool {
        self != TransportKind::Udp
    }

    /// The same, as the transaction layer takes it.
    pub fn reliability(self) -> Reliability {
        if self.is_reliable() {
            Reliability::Reliable
        } else {
            Reliability::Unreliable
        }
    }
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TransportKind::Udp => "UDP",
            TransportKind::Tcp => "TCP",
            TransportKind::Tls => "TLS",
        })
    }
}

/// One TCP or TLS connection, inbound or outbound. Never reused for another
/// connection while the process lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub(crate) u64);

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}", self.0)
    }
}

/// A message that arrived.
#[derive(Debug, Clone)]
pub struct Inbound {
    /// The message; a request already carries `received`/`rport` on its
    /// top Via.
    pub msg: SipMessage,
    /// Where it came from (the peer's address as we see it, after NAT).
    pub source: SocketAddr,
    /// How it came.
    pub kind: TransportKind,
    /// The connection it came on (TCP/TLS); answer on it.
    pub conn: Option<ConnId>,
    /// The local socket address it arrived at. For a UDP socket bound to a
    /// wildcard address this is the wildcard, not the IP the peer used.
    pub local: SocketAddr,
}

/// Where to send a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Which transport.
    pub kind: TransportKind,
    /// The peer. For TCP/TLS: where to connect when `conn` is closed or
    /// absent and no connection to this address is open.
    pub addr: SocketAddr,
    /// A connection to write on while it is open.
    pub conn: Option<ConnId>,
    /// TLS only: the name the peer's certificate must carry when a new
    /// connection is opened. `None` checks the certificate against the IP.
    pub tls_name: Option<String>,
}

impl Target {
    /// A datagram to `addr`.
    pub fn udp(addr: SocketAddr) -> Target {
        Target::new(TransportKind::Udp, addr)
    }

    /// `addr` over `kind`, on any open connection to it or a new one.
    pub fn new(kind: TransportKind, addr: SocketAddr) -> Target {
        Target {
            kind,
            addr,
            conn: None,
            tls_name: None,
        }
    }

    /// TLS to `addr`, checking the certificate against `name`.
    pub fn tls(addr: SocketAddr, name: impl Into<String>) -> Target {
        Target {
            tls_name: Some(name.into()),
            ..Target::new(TransportKind::Tls, addr)
        }
    }

    /// The same target, preferring connection `conn` while it is open.
    pub fn on(self, conn: ConnId) -> Target {
        Target {
            conn: Some(conn),
            ..self
        }
    }
}
