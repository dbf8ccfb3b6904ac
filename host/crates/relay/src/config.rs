//! What a session is told: relay-wide settings, and each leg's parameters as
//! offer/answer left them.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use trunkline_media::g711::Law;
use trunkline_media::sdp::Direction;
use trunkline_media::sdp::negotiate::Negotiated;

use crate::RelayError;

/// Settings shared by every session of a relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayConfig {
    /// No RTP from a watched leg for this long gives
    /// [`MediaEvent::Timeout`](crate::MediaEvent::Timeout). A UDP leg is
    /// watched only while both legs have an address and are `sendrecv`:
    /// before the agent answers Five9 may send nothing, and on hold one side
    /// stops by design (music-on-hold is optional). The countdown restarts at
    /// every [`MediaSession::update`](crate::MediaSession::update).
    pub media_timeout: Duration,
    /// After a leg's remote address is set (session start, or a re-INVITE
    /// that changes it), a source on neither the SDP's IP nor the signalling
    /// IP may latch for this long, and only when the SDP address is private
    /// or unusable (NAT mode, see [`crate::latch`]).
    pub learning_window: Duration,
    /// A latched source silent for this long may be replaced by another
    /// trusted source: another port on the SDP's IP, or in NAT mode on the
    /// signalling IP (a NAT rebinding mid-call; see [`crate::latch`]).
    pub relatch_after: Duration,
    /// Interval between the relay's own RTCP sender reports on each leg;
    /// `None` sends none. RTCP is terminated per leg, never forwarded.
    pub rtcp_interval: Option<Duration>,
    /// Capacity of each session's event channel. Events are few (latches,
    /// digits, timeouts); one that does not fit is counted and dropped
    /// rather than stalling the media path.
    pub event_capacity: usize,
}

impl Default for RelayConfig {
    /// 30 s media timeout, 3 s learning window, 1 s re-latch silence, RTCP
    /// every 5 s (RFC 3550's minimum interval), 64 queued events.
    fn default() -> RelayConfig {
        RelayConfig {
            media_timeout: Duration::from_secs(30),
            learning_window: Duration::from_secs(3),
            relatch_after: Duration::from_secs(1),
            rtcp_interval: Some(Duration::from_secs(5)),
            event_capacity: 64,
        }
    }
}

/// One of a call's legs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LegId {
    /// The caller's leg (Five9).
    A,
    /// The agent's leg (a SIP agent, or a tap for in-process connectors).
    B,
    /// A warm transfer's target, while the agent briefs it
    /// ([`MediaSession::brief`](crate::MediaSession::brief)).
    C,
}

impl LegId {
    /// The leg packets from this one are relayed to outside a brief (C's
    /// partner is the agent's leg).
    pub fn other(self) -> LegId {
        match self {
            LegId::A => LegId::B,
            LegId::B => LegId::A,
            LegId::C => LegId::B,
        }
    }

    pub(crate) fn index(self) -> usize {
        match self {
            LegId::A => 0,
            LegId::B => 1,
            LegId::C => 2,
        }
    }
}

/// The G.711 law a leg sends with, under the payload type its SDP gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegCodec {
    /// μ-law or A-law.
    pub law: Law,
    /// The payload type the peer expects (0 or 8 unless mapped dynamically).
    pub payload_type: u8,
}

impl LegCodec {
    /// The law under its static payload type (PCMU 0, PCMA 8).
    pub fn g711(law: Law) -> LegCodec {
        LegCodec {
            law,
            payload_type: law.payload_type(),
        }
    }
}

/// A leg's negotiated state; replaced whole by [`crate::MediaSession::update`]
/// after every offer/answer on that leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegParams {
    /// Where the peer's SDP says to send RTP; `None` while unknown (agent not
    /// answered yet) or on a hold with `0.0.0.0`. An update with `None` keeps
    /// the latched address, so resuming from hold needs no re-learning.
    pub remote_rtp: Option<SocketAddr>,
    /// Where the peer's SDP says to send RTCP (without rtcp-mux).
    pub remote_rtcp: Option<SocketAddr>,
    /// RTCP shares the RTP port (RFC 5761).
    pub rtcp_mux: bool,
    /// The codec sent toward this peer. Received audio may be either law
    /// (payload type 0 or 8, or this codec's type): RFC 3264 lets a peer
    /// switch between the formats it answered with.
    pub codec: LegCodec,
    /// RFC 4733 telephone-event payload type of this leg, if negotiated.
    /// Without one, key presses from the other leg are detected and reported
    /// but not forwarded here.
    pub telephone_event: Option<u8>,
    /// The peer's direction from its latest SDP (`MediaState::peer`): media is
    /// relayed toward it only if it receives, and taken from it only if it sends.
    pub direction: Direction,
    /// The IP the peer's SIP comes from (the caller's INVITE source, the
    /// agent's SIP address). With an SDP address equal to it, only that IP
    /// may latch; with a private SDP address, it is preferred over other
    /// sources (see [`crate::latch`]). `None` when unknown.
    pub signalling_ip: Option<IpAddr>,
}

impl LegParams {
    /// A `sendrecv` leg with `codec`, no remote address and no telephone-event.
    pub fn new(codec: LegCodec) -> LegParams {
        LegParams {
            remote_rtp: None,
            remote_rtcp: None,
            rtcp_mux: false,
            codec,
            telephone_event: None,
            direction: Direction::SendRecv,
            signalling_ip: None,
        }
    }

    /// The same parameters with the peer's signalling IP.
    pub fn with_signalling_ip(self, ip: IpAddr) -> LegParams {
        LegParams {
            signalling_ip: Some(ip),
            ..self
        }
    }

    /// The parameters an offer/answer produced. Fails with a 488 error when
    /// the peer's send codec is not G.711.
    pub fn from_negotiated(negotiated: &Negotiated) -> Result<LegParams, RelayError> {
        let send = &negotiated.send;
        let law = send
            .law()
            .ok_or_else(|| RelayError::UnsupportedCodec(send.name.clone()))?;
        Ok(LegParams {
            remote_rtp: negotiated.state.remote_rtp,
            remote_rtcp: negotiated.state.remote_rtcp,
            rtcp_mux: negotiated.rtcp_mux,
            codec: LegCodec {
                law,
                payload_type: send.payload_type,
            },
            telephone_event: negotiated.telephone_event.as_ref().map(|c| c.payload_type),
            direction: negotiated.state.peer,
            signalling_ip: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trunkline_media::sdp::Codec;
    use trunkline_media::sdp::SessionDescription;
    use trunkline_media::sdp::negotiate::{LocalMedia, accept_answer, build_offer};

    fn negotiate(answer_codecs: &str) -> Negotiated {
        let local = LocalMedia::new([127, 0, 0, 1].into(), 20000, 1);
        let offer = build_offer(
            &local,
            &[
                Codec::pcmu(),
                Codec::pcma(),
                Codec::opus(111),
                Codec::telephone_event(101),
            ],
            Direction::SendRecv,
        )
        .unwrap();
        let answer = SessionDescription::parse(&format!(
            "v=0\r\no=- 1 1 IN IP4 192.0.2.7\r\ns=-\r\nc=IN IP4 192.0.2.7\r\nt=0 0\r\n\
             m=audio 40000 RTP/AVP {answer_codecs}\r\na=rtpmap:111 opus/48000/2\r\n\
             a=rtpmap:101 telephone-event/8000\r\na=sendonly\r\n"
        ))
        .unwrap();
        accept_answer(&offer, &answer).unwrap()
    }

    #[test]
    fn negotiated_g711_becomes_leg_params() {
        let params = LegParams::from_negotiated(&negotiate("8 101")).unwrap();
        assert_eq!(params.codec, LegCodec::g711(Law::Alaw));
        assert_eq!(params.telephone_event, Some(101));
        assert_eq!(params.direction, Direction::SendOnly);
        assert_eq!(params.remote_rtp, None, "sendonly peer wants no media");
    }

    #[test]
    fn a_non_g711_choice_is_refused_with_488() {
        let err = LegParams::from_negotiated(&negotiate("111")).unwrap_err();
        assert_eq!(err.status(), 488, "{err}");
    }

    #[test]
    fn legs_pair_up() {
        assert_eq!(LegId::A.other(), LegId::B);
        assert_eq!(LegId::B.other().index(), 0);
    }
}
