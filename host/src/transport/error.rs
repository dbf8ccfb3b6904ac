//! What can go wrong in the transport layer, and what it means for a call.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

use trunkline_sip::message::ParseError;

use super::TransportKind;

/// Why binding, connecting or sending failed.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// A listening socket could not be opened (port in use, no permission
    /// for a port below 1024, address not on this host).
    #[error("cannot listen for SIP over {kind} on {addr}: {source}")]
    Bind {
        /// The transport.
        kind: TransportKind,
        /// The configured address.
        addr: SocketAddr,
        /// What the OS said.
        source: io::Error,
    },
    /// A TLS certificate or key file could not be read or holds nothing usable.
    #[error("TLS {what} file {}: {reason}", path.display())]
    TlsFile {
        /// "certificate" or "private key".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// rustls refused the certificate/key pair or the CA certificate.
    #[error("invalid TLS configuration: {0}")]
    TlsConfig(#[from] tokio_rustls::rustls::Error),
    /// Nothing listens for this transport, so nothing can be sent on it.
    #[error("SIP over {0} is not enabled")]
    NotEnabled(TransportKind),
    /// Outbound TLS needs a client configuration, and none was given.
    #[error("cannot open TLS to {0}: no TLS client configuration")]
    NoTlsClient(SocketAddr),
    /// The name given for TLS verification is not a valid DNS name.
    #[error("invalid TLS server name {0:?}")]
    ServerName(String),
    /// A TCP connection could not be opened.
    #[error("cannot connect over {kind} to {addr}: {source}")]
    Connect {
        /// TCP or TLS.
        kind: TransportKind,
        /// The peer.
        addr: SocketAddr,
        /// What the OS or the TLS handshake said; `TimedOut` past the limit.
        source: io::Error,
    },
    /// Writing the datagram failed.
    #[error("cannot send over {kind} to {addr}: {source}")]
    Send {
        /// The transport.
        kind: TransportKind,
        /// The peer.
        addr: SocketAddr,
        /// What the OS said.
        source: io::Error,
    },
    /// The connection's write queue is full: the peer has stopped reading.
    #[error("connection to {0} is backed up; message dropped")]
    Backlog(SocketAddr),
    /// A host name from a Via could not be resolved.
    #[error("cannot resolve {host}: {reason}")]
    Resolve {
        /// The name.
        host: String,
        /// What the resolver said.
        reason: String,
    },
    /// The request has no top Via to answer to.
    #[error("cannot answer: {0}")]
    NoVia(ParseError),
    /// [`Transports::shutdown`](super::Transports::shutdown) ran.
    #[error("the SIP transports are shut down")]
    Shutdown,
}

impl TransportError {
    /// The status a client transaction reports when sending its request
    /// failed: RFC 3261 §8.1.3.1 treats a transport error like a
    /// `503 Service Unavailable`, so the B2BUA can fail over or reject the
    /// inbound leg the same way it would for a real 503.
    pub fn status(&self) -> u16 {
        503
    }
}
