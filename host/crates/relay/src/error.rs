//! Errors of the relay, each knowing the SIP status the B2BUA answers with.

use std::io;
use std::net::IpAddr;

use thiserror::Error;

/// Why a port allocation, a session start or a session update failed.
#[derive(Debug, Error)]
pub enum RelayError {
    /// Every port pair of the pool is taken (or held by other programs):
    /// the call cannot get media, so the INVITE is refused with 503.
    #[error("no free media port in {first}-{last}")]
    PortsExhausted {
        /// First port of the pool's range.
        first: u16,
        /// Last port of the pool's range.
        last: u16,
    },
    /// Binding a media socket failed for a reason other than the port being
    /// taken (e.g. the local IP is not on this host): a configuration error.
    #[error("cannot bind a media socket on {ip}: {source}")]
    Bind {
        /// The local IP asked for.
        ip: IpAddr,
        /// What the OS said.
        source: io::Error,
    },
    /// The port range holds no even/odd pair (e.g. `20001-20001`).
    #[error("port range {first}-{last} holds no RTP/RTCP pair")]
    EmptyRange {
        /// First port asked for.
        first: u16,
        /// Last port asked for.
        last: u16,
    },
    /// A leg was negotiated with a codec the relay cannot carry (only
    /// G.711 is relayed): the offer/answer must be refused with 488.
    #[error("codec {0} cannot be relayed (G.711 only)")]
    UnsupportedCodec(String),
    /// The session's task has ended (stopped, or its runtime shut down).
    #[error("media session has stopped")]
    Stopped,
    /// A session was started outside a tokio runtime (a programming error).
    #[error("media session started outside a tokio runtime")]
    NoRuntime,
}

impl RelayError {
    /// The SIP status a B2BUA answers with when this error ends a call setup.
    pub fn status(&self) -> u16 {
        match self {
            RelayError::PortsExhausted { .. } => 503,
            RelayError::UnsupportedCodec(_) => 488,
            RelayError::Bind { .. }
            | RelayError::EmptyRange { .. }
            | RelayError::Stopped
            | RelayError::NoRuntime => 500,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_the_status_the_caller_sees() {
        let cases = [
            (
                RelayError::PortsExhausted {
                    first: 20000,
                    last: 20003,
                },
                503,
            ),
            (RelayError::UnsupportedCodec("opus".into()), 488),
            (RelayError::Stopped, 500),
            (
                RelayError::Bind {
                    ip: IpAddr::from([192, 0, 2, 1]),
                    source: io::ErrorKind::AddrNotAvailable.into(),
                },
                500,
            ),
        ];
        for (error, status) in cases {
            assert_eq!(error.status(), status, "{error}");
        }
    }
}
