//! Where SIP listens (`[sip]` in the gateway config).
//!
//! ```toml
//! [sip]
//! udp = "0.0.0.0:5060"        # false turns UDP off
//! tcp = "0.0.0.0:5060"        # false turns TCP off
//! max_message_size = 65536
//! idle_timeout_secs = 300
//! udp_recv_buffer = 8388608
//!
//! [sip.tls]                   # TLS is off unless this table is present
//! addr = "0.0.0.0:5061"
//! cert_path = "/etc/trunkline/sip.crt"   # PEM, leaf first, then chain
//! key_path = "/etc/trunkline/sip.key"    # PEM, PKCS#8, PKCS#1 or SEC1
//! ```
//!
//! The product listens on `0.0.0.0:5060` (Five9 reaches it from outside),
//! but the built-in default is `127.0.0.1`: a gateway started with an empty
//! config must not answer the internet before the operator chose to.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use trunkline_sip::message::FrameLimits;

/// The default SIP port for UDP and TCP (RFC 3261 §19.1.2).
pub const DEFAULT_SIP_PORT: u16 = 5060;
/// The default SIP port for TLS (RFC 3261 §19.1.2).
pub const DEFAULT_SIPS_PORT: u16 = 5061;

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// The listening sockets and their limits.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ListenConfig {
    /// UDP address, or `None` (`udp = false`) for no UDP. Default
    /// `127.0.0.1:5060`.
    #[serde(deserialize_with = "addr_or_off")]
    pub udp: Option<SocketAddr>,
    /// TCP address, or `None` (`tcp = false`) for no TCP. Default
    /// `127.0.0.1:5060`.
    #[serde(deserialize_with = "addr_or_off")]
    pub tcp: Option<SocketAddr>,
    /// TLS listener; off unless configured.
    pub tls: Option<TlsListen>,
    /// Outbound TLS to `sips:` agents (`[sip.tls_client]`).
    pub tls_client: TlsClient,
    /// The largest message accepted, in bytes; larger requests get
    /// `513 Message Too Large`. Default 64 KiB.
    pub max_message_size: usize,
    /// A TCP/TLS connection with no traffic either way for this long is
    /// closed. Default 300 s: above Five9's OPTIONS ping interval, so a
    /// healthy trunk connection is never dropped.
    pub idle_timeout_secs: u64,
    /// SO_RCVBUF asked for the UDP socket, in bytes. A burst of INVITEs
    /// larger than this while the receive task is busy is dropped by the
    /// kernel (and retransmitted by the peer 500 ms later). Linux caps it
    /// at `net.core.rmem_max`; a warning is logged when it does. Default 8 MiB.
    pub udp_recv_buffer: usize,
}

/// The TLS listener (`[sip.tls]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsListen {
    /// Address to listen on. Default `127.0.0.1:5061`.
    #[serde(default = "default_tls_addr")]
    pub addr: SocketAddr,
    /// PEM certificate chain, leaf first. A relative path is taken as is
    /// (relative to the working directory); the gateway config resolves it
    /// against the config file first.
    pub cert_path: PathBuf,
    /// PEM private key of the leaf certificate.
    pub key_path: PathBuf,
}

/// How agents' TLS certificates are checked (`[sip.tls_client]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsClient {
    /// PEM file of the CA certificates an agent's certificate must chain
    /// to (a private CA, say). Unset: the Mozilla root set, as browsers
    /// trust. The name checked is the agent URI's host (its IP address for
    /// `sips:agent@10.0.0.5`).
    pub ca_path: Option<PathBuf>,
}

impl Default for ListenConfig {
    /// UDP and TCP on `127.0.0.1:5060`, no TLS, 64 KiB messages, 300 s idle.
    fn default() -> Self {
        ListenConfig {
            udp: Some(SocketAddr::new(LOOPBACK, DEFAULT_SIP_PORT)),
            tcp: Some(SocketAddr::new(LOOPBACK, DEFAULT_SIP_PORT)),
            tls: None,
            tls_client: TlsClient::default(),
            max_message_size: FrameLimits::default().max_message_size,
            idle_timeout_secs: 300,
            udp_recv_buffer: 8 * 1024 * 1024,
        }
    }
}

impl ListenConfig {
    /// The framer limits for these settings.
    pub fn limits(&self) -> FrameLimits {
        FrameLimits {
            max_message_size: self.max_message_size,
        }
    }

    /// The idle timeout as a duration (at least one second, so a zero in the
    /// config cannot close every connection as soon as it opens).
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs.max(1))
    }
}

fn default_tls_addr() -> SocketAddr {
    SocketAddr::new(LOOPBACK, DEFAULT_SIPS_PORT)
}

/// `"ip:port"` turns a listener on, `false` turns it off.
fn addr_or_off<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<SocketAddr>, D::Error> {
    struct AddrOrOff;

    impl Visitor<'_> for AddrOrOff {
        type Value = Option<SocketAddr>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an address such as \"0.0.0.0:5060\", or false to turn it off")
        }

        fn visit_bool<E: de::Error>(self, on: bool) -> Result<Self::Value, E> {
            match on {
                false => Ok(None),
                true => Err(E::custom(
                    "give the address to listen on (\"0.0.0.0:5060\"), not true",
                )),
            }
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
            text.parse().map(Some).map_err(|_| {
                E::custom(format!(
                    "invalid address {text:?}: expected IP and port, such as \"0.0.0.0:5060\" or \"[::]:5060\""
                ))
            })
        }
    }

    deserializer.deserialize_any(AddrOrOff)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ListenConfig, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    fn addr(text: &str) -> Option<SocketAddr> {
        Some(text.parse().expect("address"))
    }

    #[test]
    fn config_table() {
        let default = ListenConfig::default();
        type Check<'a> = Box<dyn Fn(&ListenConfig) -> bool + 'a>;
        let table: Vec<(&str, Check)> = vec![
            ("", Box::new(|c| *c == ListenConfig::default())),
            (
                "udp = \"0.0.0.0:5060\"\ntcp = false",
                Box::new(|c| c.udp == addr("0.0.0.0:5060") && c.tcp.is_none()),
            ),
            (
                "udp = \"[::]:5070\"",
                Box::new(|c| c.udp == addr("[::]:5070") && c.tcp == default.tcp),
            ),
            (
                "[tls]\ncert_path = \"c.pem\"\nkey_path = \"k.pem\"",
                Box::new(|c| {
                    c.tls.as_ref().map(|t| t.addr) == addr("127.0.0.1:5061") && c.udp == default.udp
                }),
            ),
            (
                "max_message_size = 4096\nidle_timeout_secs = 0",
                Box::new(|c| {
                    c.limits().max_message_size == 4096
                        && c.idle_timeout() == Duration::from_secs(1)
                }),
            ),
        ];
        for (text, check) in table {
            let config = parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert!(check(&config), "{text:?}: {config:?}");
        }
        assert!(default.tls.is_none(), "TLS is off by default");
        assert_eq!(default.udp.map(|a| a.ip()), Some(LOOPBACK));
    }

    #[test]
    fn mistakes_are_named() {
        let table = [
            ("udp = \"5060\"", "invalid address \"5060\""),
            ("udp = true", "not true"),
            ("udp_port = 5060", "unknown field `udp_port`"),
            ("[tls]\ncert_path = \"c.pem\"", "missing field `key_path`"),
            (
                "[tls]\ncert_path = \"c\"\nkey_path = \"k\"\nport = 1",
                "unknown field `port`",
            ),
        ];
        for (text, expected) in table {
            let error = parse(text).expect_err(text);
            assert!(error.contains(expected), "{text:?}: {error}");
        }
    }
}
