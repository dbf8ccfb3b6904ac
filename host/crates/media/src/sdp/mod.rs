//! SDP (RFC 4566) session descriptions and the RFC 3264 offer/answer rules the
//! gateway needs.
//!
//! - [`SessionDescription::parse`] reads an SDP body; [`std::fmt::Display`]
//!   prints it back with CRLF endings. Printing then parsing gives the same
//!   value (tested on real-world samples).
//! - [`codec`]: payload types resolved to codecs (rtpmap or RFC 3551 static).
//! - [`negotiate`]: answers toward Five9 (G.711 only, 488 otherwise) and offers
//!   toward agents.
//! - [`hold`]: effective direction, hold detection, remote addresses.
//!
//! Anything not modelled (unknown attributes, `i=`, `k=`, `z=`, unknown line
//! types) is kept and printed back, so a description passes through unchanged.

pub mod codec;
mod error;
pub mod hold;
pub mod negotiate;
mod parse;
#[cfg(test)]
mod samples;
mod write;

pub use codec::Codec;
pub use error::SdpError;

use std::net::IpAddr;

/// A whole session description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    /// `o=`: who created the session, and its version (bumped on every change).
    pub origin: Origin,
    /// `s=`: session name (`-` when the peer sent none).
    pub session_name: String,
    /// Session-level `c=`: applies to every media section without its own.
    pub connection: Option<Connection>,
    /// Session-level `b=` lines.
    pub bandwidths: Vec<Bandwidth>,
    /// `t=` lines; one `0 0` entry when the peer omitted them.
    pub timings: Vec<Timing>,
    /// Session-level `a=` lines, in order. Directions here apply to every
    /// media section without its own.
    pub attributes: Vec<Attribute>,
    /// Lines kept verbatim (`i=`, `u=`, `e=`, `p=`, `r=`, `z=`, `k=`, unknown).
    pub other: Vec<OtherLine>,
    /// `m=` sections, in order; answers must keep this order (RFC 3264 §6).
    pub media: Vec<MediaDescription>,
}

/// `o=<username> <sess-id> <sess-version> <nettype> <addrtype> <address>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// User name, `-` when none.
    pub username: String,
    /// Session id; kept as text because peers exceed `u64` with NTP-style ids.
    pub session_id: String,
    /// Version; a re-INVITE that changes the SDP must increase it.
    pub session_version: u64,
    /// Network type, normally `IN`.
    pub net_type: String,
    /// Address family of `address`.
    pub addr_type: AddrType,
    /// Address or host name of the originator.
    pub address: String,
}

/// Address family of an `o=` or `c=` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddrType {
    /// `IP4`.
    Ip4,
    /// `IP6`.
    Ip6,
}

impl AddrType {
    /// The family of an IP address.
    pub fn of(ip: IpAddr) -> AddrType {
        match ip {
            IpAddr::V4(_) => AddrType::Ip4,
            IpAddr::V6(_) => AddrType::Ip6,
        }
    }

    /// SDP token (`IP4`/`IP6`).
    pub fn as_str(self) -> &'static str {
        match self {
            AddrType::Ip4 => "IP4",
            AddrType::Ip6 => "IP6",
        }
    }
}

/// `c=IN <addrtype> <address>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// Network type, normally `IN`.
    pub net_type: String,
    /// Address family.
    pub addr_type: AddrType,
    /// Address as written (an IP literal, or a host name / multicast with TTL).
    pub address: String,
}

impl Connection {
    /// An `IN` connection line for `ip`.
    pub fn new(ip: IpAddr) -> Connection {
        Connection {
            net_type: "IN".into(),
            addr_type: AddrType::of(ip),
            address: ip.to_string(),
        }
    }

    /// The address as an IP, when it is a literal (not a host name).
    pub fn ip(&self) -> Option<IpAddr> {
        self.address.parse().ok()
    }
}

/// `b=<type>:<kbps>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bandwidth {
    /// Modifier, e.g. `AS`, `CT`, `TIAS`.
    pub kind: String,
    /// Value (kbit/s for `AS`/`CT`, bit/s for `TIAS`).
    pub value: u64,
}

/// `t=<start> <stop>`; `0 0` for the unbounded sessions SIP uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timing {
    /// NTP start time, 0 when unbounded.
    pub start: u64,
    /// NTP stop time, 0 when unbounded.
    pub stop: u64,
}

/// A line kept verbatim: its type letter and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherLine {
    /// Type letter (`i`, `k`, `z`, ...).
    pub kind: char,
    /// Everything after `=`.
    pub value: String,
}

/// One `m=` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    /// Media type: `audio`, `video`, `image`, `application`...
    pub media: String,
    /// Transport port; 0 means the stream is rejected or disabled.
    pub port: u16,
    /// `/<count>` after the port (layered multicast), rarely present.
    pub port_count: Option<u16>,
    /// Transport protocol, e.g. `RTP/AVP`, `RTP/SAVP`, `UDP/TLS/RTP/SAVPF`.
    pub protocol: String,
    /// Formats in preference order; RTP payload type numbers for RTP profiles.
    pub formats: Vec<String>,
    /// Media-level `c=`, overriding the session's.
    pub connection: Option<Connection>,
    /// Media-level `b=` lines.
    pub bandwidths: Vec<Bandwidth>,
    /// Media-level `a=` lines, in order.
    pub attributes: Vec<Attribute>,
    /// Lines kept verbatim (`i=`, `k=`, unknown).
    pub other: Vec<OtherLine>,
}

impl MediaDescription {
    /// Formats that are RTP payload type numbers (0-127), in order.
    pub fn payload_types(&self) -> impl Iterator<Item = u8> + '_ {
        self.formats
            .iter()
            .filter_map(|f| f.parse::<u8>().ok().filter(|pt| *pt < 128))
    }

    /// True for an RTP profile without SRTP (`RTP/AVP`, `RTP/AVPF`).
    pub fn is_plain_rtp(&self) -> bool {
        self.protocol.eq_ignore_ascii_case("RTP/AVP")
            || self.protocol.eq_ignore_ascii_case("RTP/AVPF")
    }

    /// The `rtpmap` for a payload type, if any.
    pub fn rtpmap(&self, payload_type: u8) -> Option<&RtpMap> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::RtpMap(m) if m.payload_type == payload_type => Some(m),
            _ => None,
        })
    }

    /// The `fmtp` parameters for a payload type, if any.
    pub fn fmtp(&self, payload_type: u8) -> Option<&str> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Fmtp(f) if f.payload_type == payload_type => Some(f.params.as_str()),
            _ => None,
        })
    }

    /// `a=ptime` in milliseconds.
    pub fn ptime(&self) -> Option<u32> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Ptime(p) => Some(*p),
            _ => None,
        })
    }

    /// True when `a=rtcp-mux` is present.
    pub fn rtcp_mux(&self) -> bool {
        self.attributes.contains(&Attribute::RtcpMux)
    }

    /// The `a=rtcp:` attribute (RFC 3605), if any.
    pub fn rtcp(&self) -> Option<&RtcpAttr> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Rtcp(r) => Some(r),
            _ => None,
        })
    }
}

/// An `a=` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attribute {
    /// `a=rtpmap:<pt> <encoding>/<clock>[/<channels>]`.
    RtpMap(RtpMap),
    /// `a=fmtp:<pt> <parameters>`.
    Fmtp(Fmtp),
    /// `a=ptime:<ms>`: packet duration the sender wants to receive.
    Ptime(u32),
    /// `a=maxptime:<ms>`.
    MaxPtime(u32),
    /// `a=sendrecv` / `sendonly` / `recvonly` / `inactive`.
    Direction(Direction),
    /// `a=rtcp-mux` (RFC 5761): RTCP shares the RTP port.
    RtcpMux,
    /// `a=rtcp:<port> [IN <addrtype> <address>]` (RFC 3605).
    Rtcp(RtcpAttr),
    /// Any other attribute, kept as written.
    Other {
        /// Attribute name.
        name: String,
        /// Text after `:`, if there was a colon.
        value: Option<String>,
    },
}

/// `a=rtpmap` contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    /// Payload type.
    pub payload_type: u8,
    /// Encoding name as written (compare case-insensitively).
    pub encoding: String,
    /// RTP clock rate in Hz.
    pub clock_rate: u32,
    /// Channel count for audio, when given.
    pub channels: Option<u16>,
}

/// `a=fmtp` contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fmtp {
    /// Payload type.
    pub payload_type: u8,
    /// Format parameters as written, e.g. `0-16` or `minptime=10;useinbandfec=1`.
    pub params: String,
}

/// `a=rtcp` contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtcpAttr {
    /// RTCP port.
    pub port: u16,
    /// RTCP address, when it differs from the media `c=`.
    pub connection: Option<Connection>,
}

/// Media direction, always from the point of view of the side that wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Direction {
    /// Sends and receives (the default when no attribute is present).
    #[default]
    SendRecv,
    /// Only sends: typically a party that put the other on hold.
    SendOnly,
    /// Only receives.
    RecvOnly,
    /// Neither: both held, or media paused.
    Inactive,
}

impl Direction {
    /// From send/receive flags.
    pub fn from_flags(sends: bool, receives: bool) -> Direction {
        match (sends, receives) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }

    /// True when the writer sends media.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// True when the writer accepts media.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    /// The direction the other side must answer with (RFC 3264 §6.1).
    pub fn mirror(self) -> Direction {
        Direction::from_flags(self.receives(), self.sends())
    }

    /// Attribute name.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// The direction named by an attribute, if it is one.
    pub fn from_name(name: &str) -> Option<Direction> {
        [
            Direction::SendRecv,
            Direction::SendOnly,
            Direction::RecvOnly,
            Direction::Inactive,
        ]
        .into_iter()
        .find(|d| d.as_str().eq_ignore_ascii_case(name))
    }
}

/// The direction attribute in a list, if any.
pub(crate) fn direction_in(attributes: &[Attribute]) -> Option<Direction> {
    attributes.iter().find_map(|a| match a {
        Attribute::Direction(d) => Some(*d),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_swaps_send_and_receive() {
        let table = [
            (Direction::SendRecv, Direction::SendRecv),
            (Direction::SendOnly, Direction::RecvOnly),
            (Direction::RecvOnly, Direction::SendOnly),
            (Direction::Inactive, Direction::Inactive),
        ];
        for (d, m) in table {
            assert_eq!(d.mirror(), m);
            assert_eq!(Direction::from_name(d.as_str()), Some(d));
        }
        assert_eq!(Direction::from_name("SENDONLY"), Some(Direction::SendOnly));
        assert_eq!(Direction::from_name("rtcp-mux"), None);
    }

    #[test]
    fn payload_types_skip_non_numeric_formats() {
        let m = MediaDescription {
            media: "audio".into(),
            port: 1,
            port_count: None,
            protocol: "RTP/AVP".into(),
            formats: vec!["0".into(), "t38".into(), "200".into(), "101".into()],
            connection: None,
            bandwidths: vec![],
            attributes: vec![],
            other: vec![],
        };
        assert_eq!(m.payload_types().collect::<Vec<_>>(), [0, 101]);
        assert!(m.is_plain_rtp());
    }

    #[test]
    fn connection_ip_only_for_literals() {
        let c = Connection::new("2001:db8::1".parse().unwrap());
        assert_eq!(c.addr_type, AddrType::Ip6);
        assert_eq!(c.ip(), Some("2001:db8::1".parse().unwrap()));
        let host = Connection {
            address: "media.example.com".into(),
            ..c
        };
        assert_eq!(host.ip(), None);
    }
}
