//! RTP and RTCP over the caller's buffers, without allocation.
//!
//! - [`classify`]: what a datagram on a media port is (RFC 7983 first-byte
//!   ranges, then RFC 5761 rtcp-mux: a second byte of 192-223 means RTCP).
//! - [`packet`]: RTP header view, in-place rewriting, header writer.
//! - [`rtcp`]: RTCP packet types and compound packets.
//! - [`rewriter`]: per-leg SSRC/sequence/timestamp continuity.

pub mod packet;
pub mod rewriter;
pub mod rtcp;

pub use packet::{RTP_HEADER_LEN, RtpError, RtpHeader, RtpPacket, RtpPacketMut};
pub use rewriter::{Rewritten, StreamRewriter};
pub use rtcp::{RtcpPacket, RtcpType, is_rtcp, is_rtcp_type, is_valid_compound, rtcp_packets};

/// What a datagram arriving on a media port is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketKind {
    /// RTP media.
    Rtp,
    /// RTCP (on a muxed port, or on the RTCP port).
    Rtcp,
    /// STUN (ICE connectivity checks, consent freshness).
    Stun,
    /// DTLS (DTLS-SRTP key exchange).
    Dtls,
    /// Anything else: to be dropped and counted.
    Unknown,
}

/// Classifies a datagram by its first two bytes.
///
/// RFC 5761 §4: a second byte of 192-223 is RTCP (SR 200, RR 201, SDES 202,
/// BYE 203, APP 204, RTPFB 205, PSFB 206, XR 207 and the rest of the range):
/// RTP payload types 64-95 with the marker bit set, which rtcp-mux forbids
/// for RTP. With the marker bit clear, 64-95 cannot be an RTCP type, so such
/// a packet is RTP (of a type nobody negotiated, dropped as unknown later).
/// RFC 7983 ranges separate STUN and DTLS first.
pub fn classify(buf: &[u8]) -> PacketKind {
    let (Some(&first), Some(&second)) = (buf.first(), buf.get(1)) else {
        return PacketKind::Unknown;
    };
    match first {
        0..=3 => PacketKind::Stun,
        20..=63 => PacketKind::Dtls,
        128..=191 if buf.len() >= 4 => {
            if is_rtcp_type(second) {
                PacketKind::Rtcp
            } else if buf.len() >= RTP_HEADER_LEN {
                PacketKind::Rtp
            } else {
                PacketKind::Unknown
            }
        }
        _ => PacketKind::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(first: u8, second: u8) -> [u8; 12] {
        let mut b = [0u8; 12];
        b[0] = first;
        b[1] = second;
        b
    }

    #[test]
    fn demultiplexes_like_rfc_5761_and_7983() {
        let cases = [
            (with(0x80, 0), PacketKind::Rtp),    // PCMU
            (with(0x80, 0x88), PacketKind::Rtp), // PCMA, marker set
            (with(0x80, 101), PacketKind::Rtp),  // telephone-event
            (with(0x80, 127), PacketKind::Rtp),
            (with(0x80, 200), PacketKind::Rtcp),  // SR
            (with(0x81, 201), PacketKind::Rtcp),  // RR with one block
            (with(0x80, 192), PacketKind::Rtcp),  // lowest of 64-95
            (with(0x80, 223), PacketKind::Rtcp),  // highest
            (with(0x80, 224), PacketKind::Rtp),   // PT 96, marker set
            (with(0x00, 0x01), PacketKind::Stun), // Binding request
            (with(22, 0xFE), PacketKind::Dtls),   // handshake record
            (with(0x40, 0), PacketKind::Unknown), // RTP version 1
        ];
        for (buf, kind) in cases {
            assert_eq!(classify(&buf), kind, "{:02x} {:02x}", buf[0], buf[1]);
        }
        assert_eq!(classify(&[0x80]), PacketKind::Unknown);
        assert_eq!(classify(&[0x80, 0, 0, 0]), PacketKind::Unknown, "short RTP");
        assert_eq!(classify(&[0x80, 203, 0, 0]), PacketKind::Rtcp, "4-byte BYE");
    }

    #[test]
    fn rtcp_is_the_second_byte_192_to_223_and_nothing_else() {
        // Every RTCP type, with any count in the first byte.
        for second in 192..=223u8 {
            for first in [0x80, 0x81, 0x9F, 0xA0] {
                assert_eq!(classify(&with(first, second)), PacketKind::Rtcp, "{second}");
            }
        }
        // RTP payload types, marker clear and set.
        let rtp_types = [0u8, 8, 13, 101].into_iter().chain(96..=127);
        for pt in rtp_types {
            for second in [pt, pt | 0x80] {
                assert_eq!(classify(&with(0x80, second)), PacketKind::Rtp, "{second}");
            }
        }
        // 64-95 without the marker is no RTCP type: RTP, for the engine to
        // drop as a type nobody negotiated; with the marker it is RTCP.
        for pt in 64..=95u8 {
            assert_eq!(classify(&with(0x80, pt)), PacketKind::Rtp, "{pt}");
            assert_eq!(classify(&with(0x80, pt | 0x80)), PacketKind::Rtcp, "{pt}");
        }
    }
}
