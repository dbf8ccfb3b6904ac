//! Effective direction, hold detection and remote media addresses.
//!
//! Peers put calls on hold three ways, and the relay must stop sending for all
//! of them (sending into a held leg wastes bandwidth and, with 0.0.0.0, sends
//! packets nowhere): `a=sendonly`/`a=inactive` on the media section, the same
//! at session level (inherited by every section), or the RFC 2543 way of a
//! `c=` address of `0.0.0.0` (or `::`). Resuming is the same offer with
//! `sendrecv` (explicit or by default) and a real address.

use std::net::{IpAddr, SocketAddr};

use super::{Connection, Direction, MediaDescription, SessionDescription, direction_in};

/// What one media section asks of the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaState {
    /// The writer's effective direction (see [`SessionDescription::direction_of`]).
    pub peer: Direction,
    /// What the relay does toward this peer: the mirror of `peer`.
    pub relay: Direction,
    /// True when the peer does not want media (sendonly, inactive, 0.0.0.0)
    /// on an active stream: the classic "on hold".
    pub on_hold: bool,
    /// Where to send RTP, if the peer wants any and gave an IP literal.
    pub remote_rtp: Option<SocketAddr>,
    /// Where to send RTCP (same as RTP with rtcp-mux).
    pub remote_rtcp: Option<SocketAddr>,
}

impl SessionDescription {
    /// The `c=` that applies to a media section (its own, else the session's).
    pub fn connection_of<'a>(&'a self, media: &'a MediaDescription) -> Option<&'a Connection> {
        media.connection.as_ref().or(self.connection.as_ref())
    }

    /// The writer's direction for a section: media-level attribute, else
    /// session-level, else sendrecv; an unspecified address (0.0.0.0 or ::)
    /// removes "receive", since nothing can be sent to it.
    pub fn direction_of(&self, media: &MediaDescription) -> Direction {
        let declared = direction_in(&media.attributes)
            .or_else(|| direction_in(&self.attributes))
            .unwrap_or_default();
        let unspecified = self
            .connection_of(media)
            .and_then(Connection::ip)
            .is_some_and(|ip| ip.is_unspecified());
        if unspecified {
            Direction::from_flags(declared.sends(), false)
        } else {
            declared
        }
    }

    /// Remote RTP address of a section; `None` for a rejected stream (port 0),
    /// an unspecified address, or a host name (resolution is the caller's job).
    pub fn rtp_address(&self, media: &MediaDescription) -> Option<SocketAddr> {
        let ip = self.connection_of(media)?.ip()?;
        usable(ip, media.port)
    }

    /// Remote RTCP address: the RTP address with rtcp-mux, else `a=rtcp`
    /// (RFC 3605, with its own address if given), else RTP port + 1.
    pub fn rtcp_address(&self, media: &MediaDescription) -> Option<SocketAddr> {
        let rtp = self.rtp_address(media)?;
        if media.rtcp_mux() {
            return Some(rtp);
        }
        match media.rtcp() {
            Some(attr) => {
                let ip = match &attr.connection {
                    Some(c) => c.ip()?,
                    None => rtp.ip(),
                };
                usable(ip, attr.port)
            }
            None => usable(rtp.ip(), rtp.port().checked_add(1)?),
        }
    }

    /// The relay-facing state of media section `index`, if it exists.
    pub fn media_state(&self, index: usize) -> Option<MediaState> {
        let media = self.media.get(index)?;
        let peer = self.direction_of(media);
        let wants_media = peer.receives();
        Some(MediaState {
            peer,
            relay: peer.mirror(),
            on_hold: media.port != 0 && !wants_media,
            remote_rtp: self.rtp_address(media).filter(|_| wants_media),
            remote_rtcp: self.rtcp_address(media),
        })
    }
}

fn usable(ip: IpAddr, port: u16) -> Option<SocketAddr> {
    (port != 0 && !ip.is_unspecified()).then_some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdp::samples;

    fn state(text: &str, index: usize) -> MediaState {
        SessionDescription::parse(text)
            .unwrap()
            .media_state(index)
            .unwrap()
    }

    #[test]
    fn hold_forms_are_all_detected() {
        // (sample, media index, peer direction, relay direction, on hold)
        let cases = [
            (
                samples::FIVE9_OFFER,
                0,
                Direction::SendRecv,
                Direction::SendRecv,
                false,
            ),
            (
                samples::SIPP_UAC,
                0,
                Direction::SendRecv,
                Direction::SendRecv,
                false,
            ),
            (
                samples::HOLD_SENDONLY,
                0,
                Direction::SendOnly,
                Direction::RecvOnly,
                true,
            ),
            (
                samples::HOLD_ZERO_ADDRESS,
                0,
                Direction::SendOnly,
                Direction::RecvOnly,
                true,
            ),
            (
                samples::HOLD_SESSION_INACTIVE,
                0,
                Direction::Inactive,
                Direction::Inactive,
                true,
            ),
            (
                samples::HOLD_SESSION_INACTIVE,
                1,
                Direction::Inactive,
                Direction::Inactive,
                true,
            ),
        ];
        for (text, i, peer, relay, hold) in cases {
            let s = state(text, i);
            assert_eq!((s.peer, s.relay, s.on_hold), (peer, relay, hold), "{text}");
        }
    }

    #[test]
    fn held_peer_gets_no_rtp_and_resume_restores_it() {
        assert_eq!(state(samples::HOLD_SENDONLY, 0).remote_rtp, None);
        assert_eq!(state(samples::HOLD_ZERO_ADDRESS, 0).remote_rtp, None);
        let resumed = samples::HOLD_SENDONLY.replace("a=sendonly", "a=sendrecv");
        let s = state(&resumed, 0);
        assert!(!s.on_hold);
        assert_eq!(s.remote_rtp, "10.1.2.3:20000".parse().ok());
    }

    #[test]
    fn media_level_direction_overrides_session_level() {
        let text = samples::HOLD_SESSION_INACTIVE.replace(
            "m=video 7002 RTP/AVP 31\r\n",
            "m=video 7002 RTP/AVP 31\r\na=recvonly\r\n",
        );
        assert_eq!(state(&text, 0).peer, Direction::Inactive);
        assert_eq!(state(&text, 1).peer, Direction::RecvOnly);
        assert_eq!(state(&text, 1).relay, Direction::SendOnly);
    }

    #[test]
    fn rtcp_address_rules() {
        // rtcp-mux wins over a=rtcp.
        let s = state(samples::IPV6_MEDIA_LEVEL, 0);
        assert_eq!(s.remote_rtp, "[2001:db8::2]:30000".parse().ok());
        assert_eq!(s.remote_rtcp, s.remote_rtp);
        let no_mux = samples::IPV6_MEDIA_LEVEL.replace("a=rtcp-mux\n", "");
        assert_eq!(
            state(&no_mux, 0).remote_rtcp,
            "[2001:db8::3]:30001".parse().ok()
        );
        // Neither: RTP port + 1 on the same address.
        assert_eq!(
            state(samples::FIVE9_OFFER, 0).remote_rtcp,
            "10.1.2.3:20001".parse().ok()
        );
    }

    #[test]
    fn rejected_stream_is_neither_held_nor_addressed() {
        let text = samples::SIPP_UAC.replace("m=audio 6000", "m=audio 0");
        let s = state(&text, 0);
        assert!(!s.on_hold);
        assert_eq!(s.remote_rtp, None);
        assert!(
            SessionDescription::parse(samples::SIPP_UAC)
                .unwrap()
                .media_state(1)
                .is_none()
        );
    }
}
