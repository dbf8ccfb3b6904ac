//! RFC 3264 offer/answer for the two legs of a call.
//!
//! - Toward the caller (Five9): [`answer_g711`] answers with G.711 only, in the
//!   caller's order, plus telephone-event when offered. Advertising anything
//!   else would let Five9 pick a codec it then refuses mid-call; an offer with
//!   no PCMU/PCMA is refused with 488 and a Warning (RFC 3261 §20.43).
//! - Toward an agent: [`build_offer`] offers an allowed codec list, and
//!   [`accept_answer`] reads what the agent picked.
//!
//! Answers keep one `m=` per offered section, rejecting the unused ones with
//! port 0 (RFC 3264 §6); the used one gets the mirrored direction, so a held
//! caller (sendonly) is answered recvonly and the relay stops sending.

use std::net::IpAddr;

use thiserror::Error;

use super::hold::MediaState;
use super::{Attribute, Codec, Connection, MediaDescription, Origin, SessionDescription, Timing};

mod answer;
mod offer;

pub use answer::answer_g711;
pub use offer::{accept_answer, build_offer};

/// Our side of a session: what goes into `o=`, `c=` and the `m=` port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMedia {
    /// Address the relay receives RTP on (also used in `o=`).
    pub address: IpAddr,
    /// RTP port of the relay socket for this leg.
    pub rtp_port: u16,
    /// `o=` username.
    pub username: String,
    /// `o=` session id, fixed for the dialog.
    pub session_id: u64,
    /// `o=` version; the caller increments it for every changed SDP.
    pub session_version: u64,
    /// `a=ptime` we ask for (20 ms is what Five9 and most agents send).
    pub ptime: Option<u32>,
    /// Whether the relay can take RTCP on the RTP port (RFC 5761).
    pub rtcp_mux: bool,
}

impl LocalMedia {
    /// Defaults: username `trunkline`, version = id, ptime 20, rtcp-mux on.
    pub fn new(address: IpAddr, rtp_port: u16, session_id: u64) -> LocalMedia {
        LocalMedia {
            address,
            rtp_port,
            username: "trunkline".into(),
            session_id,
            session_version: session_id,
            ptime: Some(20),
            rtcp_mux: true,
        }
    }

    pub(super) fn session(&self, media: Vec<MediaDescription>) -> SessionDescription {
        let connection = Connection::new(self.address);
        SessionDescription {
            origin: Origin {
                username: self.username.clone(),
                session_id: self.session_id.to_string(),
                session_version: self.session_version,
                net_type: connection.net_type.clone(),
                addr_type: connection.addr_type,
                address: connection.address.clone(),
            },
            session_name: "-".into(),
            connection: Some(connection),
            bandwidths: Vec::new(),
            timings: vec![Timing::default()],
            attributes: Vec::new(),
            other: Vec::new(),
            media,
        }
    }
}

/// The outcome of a negotiation, for the relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// Index of the `m=` section carrying the call's audio.
    pub media_index: usize,
    /// The codec to send with (first agreed), with the peer's payload type.
    pub send: Codec,
    /// Every agreed audio codec the peer may send, in preference order.
    pub codecs: Vec<Codec>,
    /// RFC 4733 events, with the peer's payload type, when agreed.
    pub telephone_event: Option<Codec>,
    /// Directions, hold and remote addresses from the peer's SDP.
    pub state: MediaState,
    /// True when RTCP runs on the RTP port.
    pub rtcp_mux: bool,
    /// `a=ptime` the peer asked for.
    pub ptime: Option<u32>,
}

/// Why media could not be agreed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NegotiationError {
    /// No active audio section in the SDP.
    #[error("no active audio stream offered")]
    NoAudio,
    /// Audio only on a transport the relay does not speak (e.g. SRTP).
    #[error("audio offered only over unsupported transport {protocol}")]
    UnsupportedTransport {
        /// The offered protocol, e.g. `RTP/SAVP`.
        protocol: String,
    },
    /// Audio offered, but none of its codecs is acceptable.
    #[error("no acceptable codec among offered {offered:?}")]
    NoCommonCodec {
        /// Encoding names the peer offered, for the log.
        offered: Vec<String>,
    },
    /// The answer does not fit our offer (section count, or a codec or payload
    /// type we never offered).
    #[error("answer does not match the offer: {reason}")]
    AnswerMismatch {
        /// What was wrong.
        reason: &'static str,
    },
    /// We were asked to offer an empty codec list: a configuration error.
    #[error("no codec to offer")]
    EmptyCodecList,
}

impl NegotiationError {
    /// SIP status for the leg that sent the offending SDP: 488 Not Acceptable
    /// Here, except for our own configuration mistakes (500).
    pub fn status(&self) -> u16 {
        match self {
            NegotiationError::EmptyCodecList => 500,
            _ => 488,
        }
    }

    /// RFC 3261 §20.43 warn-code.
    pub fn warn_code(&self) -> u16 {
        match self {
            NegotiationError::NoAudio => 304,
            NegotiationError::UnsupportedTransport { .. } => 302,
            NegotiationError::NoCommonCodec { .. } => 305,
            _ => 399,
        }
    }

    /// RFC 3261 §20.43 warn-text for [`Self::warn_code`].
    pub fn warn_text(&self) -> &'static str {
        match self.warn_code() {
            304 => "Media type not available",
            302 => "Incompatible transport protocol",
            305 => "Incompatible media format",
            _ => "Miscellaneous warning",
        }
    }

    /// Value of a `Warning:` header, e.g. `305 trunkline "Incompatible media format"`.
    pub fn warning(&self, agent: &str) -> String {
        format!("{} {agent} \"{}\"", self.warn_code(), self.warn_text())
    }
}

pub(super) fn audio_section<'a>(
    local: &LocalMedia,
    protocol: &str,
    codecs: impl Iterator<Item = &'a Codec>,
) -> MediaDescription {
    let mut media = MediaDescription {
        media: "audio".into(),
        port: local.rtp_port,
        port_count: None,
        protocol: protocol.into(),
        formats: Vec::new(),
        connection: None,
        bandwidths: Vec::new(),
        attributes: Vec::new(),
        other: Vec::new(),
    };
    for codec in codecs {
        media.formats.push(codec.payload_type.to_string());
        media.attributes.extend(codec.attributes());
    }
    if let Some(ms) = local.ptime {
        media.attributes.push(Attribute::Ptime(ms));
    }
    media
}

/// A refused section: same media, protocol and formats, port 0.
pub(super) fn rejected(offered: &MediaDescription) -> MediaDescription {
    MediaDescription {
        media: offered.media.clone(),
        port: 0,
        port_count: None,
        protocol: offered.protocol.clone(),
        formats: offered.formats.clone(),
        connection: None,
        bandwidths: Vec::new(),
        attributes: Vec::new(),
        other: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_follow_rfc3261_warn_codes() {
        let cases = [
            (
                NegotiationError::NoCommonCodec {
                    offered: vec!["opus".into()],
                },
                488,
                "305 trunkline \"Incompatible media format\"",
            ),
            (
                NegotiationError::NoAudio,
                488,
                "304 trunkline \"Media type not available\"",
            ),
            (
                NegotiationError::UnsupportedTransport {
                    protocol: "RTP/SAVP".into(),
                },
                488,
                "302 trunkline \"Incompatible transport protocol\"",
            ),
            (
                NegotiationError::EmptyCodecList,
                500,
                "399 trunkline \"Miscellaneous warning\"",
            ),
        ];
        for (err, status, warning) in cases {
            assert_eq!(err.status(), status, "{err}");
            assert_eq!(err.warning("trunkline"), warning);
        }
    }

    #[test]
    fn local_session_uses_the_address_family_of_the_relay() {
        let local = LocalMedia::new("2001:db8::9".parse().unwrap(), 4000, 77);
        let sdp = local.session(Vec::new());
        assert_eq!(sdp.origin.addr_type, crate::sdp::AddrType::Ip6);
        assert_eq!(sdp.origin.session_id, "77");
        assert_eq!(sdp.connection.unwrap().address, "2001:db8::9");
    }
}
