//! RTCP packet recognition (RFC 3550 §6, RFC 4585, RFC 3611).
//!
//! The relay does not forward RTCP between legs (SSRCs and sequence spaces
//! differ per leg after rewriting, so a forwarded report would describe a
//! stream the receiver never saw); it needs to recognise RTCP, walk a compound
//! packet, and read the sender's SSRC and report counters for statistics.

use super::RtpError;

/// RTCP packet types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RtcpType {
    /// 200 SR: sender report.
    SenderReport,
    /// 201 RR: receiver report.
    ReceiverReport,
    /// 202 SDES: source description (CNAME).
    SourceDescription,
    /// 203 BYE: the source is leaving.
    Goodbye,
    /// 204 APP: application-defined.
    App,
    /// 205 RTPFB: transport-layer feedback (RFC 4585).
    TransportFeedback,
    /// 206 PSFB: payload-specific feedback (RFC 4585).
    PayloadFeedback,
    /// 207 XR: extended report (RFC 3611).
    ExtendedReport,
    /// Any other type number.
    Other(u8),
}

impl RtcpType {
    /// The type of a packet-type byte.
    pub fn from_u8(pt: u8) -> RtcpType {
        match pt {
            200 => RtcpType::SenderReport,
            201 => RtcpType::ReceiverReport,
            202 => RtcpType::SourceDescription,
            203 => RtcpType::Goodbye,
            204 => RtcpType::App,
            205 => RtcpType::TransportFeedback,
            206 => RtcpType::PayloadFeedback,
            207 => RtcpType::ExtendedReport,
            other => RtcpType::Other(other),
        }
    }
}

/// One RTCP packet inside a (possibly compound) datagram.
#[derive(Debug, Clone, Copy)]
pub struct RtcpPacket<'a> {
    /// The whole packet, header included, padding included.
    buf: &'a [u8],
}

impl<'a> RtcpPacket<'a> {
    /// Packet type.
    pub fn packet_type(&self) -> RtcpType {
        RtcpType::from_u8(self.buf[1])
    }

    /// The 5-bit count field (report blocks, sources, or feedback format).
    pub fn count(&self) -> u8 {
        self.buf[0] & 0x1F
    }

    /// True when the packet carries padding.
    pub fn padding(&self) -> bool {
        self.buf[0] & 0x20 != 0
    }

    /// Length in bytes, header included.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Always false: an RTCP packet has at least its 4-byte header.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The first SSRC after the header: the sender for SR/RR/feedback/XR, the
    /// first source for SDES/BYE. `None` when the packet has no body.
    pub fn ssrc(&self) -> Option<u32> {
        let b = self.buf.get(4..8)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Sender info of an SR: (RTP timestamp, packet count, octet count).
    pub fn sender_info(&self) -> Option<(u32, u32, u32)> {
        if self.packet_type() != RtcpType::SenderReport {
            return None;
        }
        let b = self.buf.get(16..28)?;
        let word = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        Some((word(0), word(4), word(8)))
    }

    /// The raw packet bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }
}

/// Iterator over the packets of a compound RTCP datagram; yields one error
/// and stops at the first malformed packet.
#[derive(Debug, Clone)]
pub struct RtcpPackets<'a> {
    rest: &'a [u8],
}

/// Walks the packets of an RTCP datagram.
pub fn rtcp_packets(buf: &[u8]) -> RtcpPackets<'_> {
    RtcpPackets { rest: buf }
}

impl<'a> Iterator for RtcpPackets<'a> {
    type Item = Result<RtcpPacket<'a>, RtpError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let buf = std::mem::take(&mut self.rest);
        if buf.len() < 4 {
            return Some(Err(RtpError::TooShort { len: buf.len() }));
        }
        let version = buf[0] >> 6;
        if version != 2 {
            return Some(Err(RtpError::BadVersion(version)));
        }
        // Length is in 32-bit words minus one.
        let len = 4 * (u16::from_be_bytes([buf[2], buf[3]]) as usize + 1);
        let Some((packet, rest)) = buf.split_at_checked(len) else {
            return Some(Err(RtpError::TooShort { len: buf.len() }));
        };
        self.rest = rest;
        Some(Ok(RtcpPacket { buf: packet }))
    }
}

/// RFC 5761 §4: packet types 192-223 are RTCP. They are RTP payload types
/// 64-95 with the marker bit set, which is why rtcp-mux forbids those
/// payload types for RTP.
pub fn is_rtcp_type(packet_type: u8) -> bool {
    (192..=223).contains(&packet_type)
}

/// True when `buf` is RTCP: one packet or a compound, each packet version 2
/// with a type in 192-223, the lengths adding up exactly.
///
/// This is looser than [`is_valid_compound`] on purpose. A lone APP packet
/// (baresip sends them), a feedback message or a reduced-size packet
/// (RFC 5506) does not start with SR or RR, yet it is RTCP from a live peer,
/// not malformed RTP.
pub fn is_rtcp(buf: &[u8]) -> bool {
    !buf.is_empty() && rtcp_packets(buf).all(|p| p.is_ok_and(|p| is_rtcp_type(p.as_bytes()[1])))
}

/// RFC 3550 A.2 validity check for a compound packet: version 2 throughout,
/// first packet SR or RR without padding, lengths adding up exactly.
pub fn is_valid_compound(buf: &[u8]) -> bool {
    let mut packets = rtcp_packets(buf);
    match packets.next() {
        Some(Ok(first))
            if matches!(
                first.packet_type(),
                RtcpType::SenderReport | RtcpType::ReceiverReport
            ) && !first.padding() => {}
        _ => return false,
    }
    packets.all(|p| p.is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SR from SSRC 0x11223344 with no report blocks (length 6 words), then an
    /// SDES with one chunk: SSRC, CNAME "ab", end of items padded to a word.
    const COMPOUND: [u8; 44] = [
        0x80, 200, 0, 6, 0x11, 0x22, 0x33, 0x44, // header, sender SSRC
        0, 0, 0, 1, 0, 0, 0, 2, // NTP timestamp
        0, 0, 0x01, 0x40, 0, 0, 0, 50, 0, 0, 0x1F,
        0x40, // RTP ts 320, 50 packets, 8000 octets
        0x81, 202, 0, 3, 0x11, 0x22, 0x33, 0x44, 1, 2, b'a', b'b', 0, 0, 0, 0,
    ];

    #[test]
    fn walks_a_compound_packet() {
        let packets: Vec<_> = rtcp_packets(&COMPOUND).collect::<Result<_, _>>().unwrap();
        assert_eq!(packets.len(), 2);
        assert_eq!(packets[0].packet_type(), RtcpType::SenderReport);
        assert_eq!(packets[0].ssrc(), Some(0x1122_3344));
        assert_eq!(packets[0].sender_info(), Some((320, 50, 8000)));
        assert_eq!(packets[0].count(), 0);
        assert_eq!(packets[1].packet_type(), RtcpType::SourceDescription);
        assert_eq!(packets[1].count(), 1);
        assert_eq!(packets[1].sender_info(), None);
        assert_eq!(packets[1].len(), 16);
        assert!(is_valid_compound(&COMPOUND));
    }

    #[test]
    fn truncated_or_foreign_packets_are_reported() {
        let truncated: Vec<_> = rtcp_packets(&COMPOUND[..20]).collect();
        assert_eq!(truncated.len(), 1);
        assert!(truncated[0].is_err());
        assert!(!is_valid_compound(&COMPOUND[..20]));
        // A compound that does not start with SR/RR is invalid per RFC 3550.
        assert!(!is_valid_compound(&COMPOUND[28..]));
        let mut v1 = COMPOUND;
        v1[28] = 0x41;
        let results: Vec<_> = rtcp_packets(&v1).collect();
        assert_eq!(results[1].as_ref().err(), Some(&RtpError::BadVersion(1)));
        assert!(rtcp_packets(&[0x80, 201]).next().unwrap().is_err());
        assert_eq!(RtcpType::from_u8(210), RtcpType::Other(210));
    }

    /// An RTCP packet of type `pt` with one word of body (an SSRC).
    fn packet(pt: u8) -> [u8; 8] {
        [0x80, pt, 0, 1, 0x11, 0x22, 0x33, 0x44]
    }

    #[test]
    fn every_type_from_192_to_223_is_rtcp_alone_or_leading_a_compound() {
        for pt in 192..=223u8 {
            assert!(is_rtcp_type(pt), "{pt}");
            assert!(is_rtcp(&packet(pt)), "lone {pt}");
            let mut compound = packet(pt).to_vec();
            compound.extend_from_slice(&COMPOUND);
            assert!(is_rtcp(&compound), "compound led by {pt}");
        }
        for pt in (0..192u8).chain(224..=255) {
            assert!(!is_rtcp_type(pt), "{pt}");
            assert!(!is_rtcp(&packet(pt)), "lone {pt}");
        }
        // baresip's APP: name "PING", no data; SR/RR-led compounds stay valid.
        let app = [0x80, 204, 0, 2, 0, 0, 0, 7, b'P', b'I', b'N', b'G'];
        assert!(is_rtcp(&app));
        assert!(
            !is_valid_compound(&app),
            "RFC 3550 A.2 alone would refuse it"
        );
        assert!(is_rtcp(&COMPOUND));
    }

    #[test]
    fn broken_rtcp_is_not_rtcp() {
        assert!(!is_rtcp(&[]));
        assert!(!is_rtcp(&COMPOUND[..20]), "length past the end");
        assert!(!is_rtcp(&COMPOUND[..43]), "trailing partial packet");
        let mut v1 = COMPOUND;
        v1[28] = 0x41;
        assert!(!is_rtcp(&v1), "second packet version 1");
        let mut rtp_inside = COMPOUND;
        rtp_inside[29] = 0x80; // an RTP-like PCMU byte where a type belongs
        assert!(!is_rtcp(&rtp_inside));
    }
}
