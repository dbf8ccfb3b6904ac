//! RTP packets (RFC 3550 §5.1) read and rewritten inside the caller's buffer.
//!
//! Why not `rtp-rs`: its `RtpReader` is a fine read-only view, but the relay
//! rewrites SSRC, sequence number, timestamp, marker and payload type *in the
//! received buffer* and transcodes the payload in place; `rtp-rs` has no
//! mutable view, so every packet would be rebuilt through its builder (a copy,
//! and a `Vec` unless sized by hand). The header is 12 fixed bytes plus two
//! length-prefixed optional parts, so owning ~150 lines is cheaper than the
//! copy on the hot path.

use thiserror::Error;

/// Length of the fixed RTP header.
pub const RTP_HEADER_LEN: usize = 12;

/// Why a buffer is not a usable RTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum RtpError {
    /// Shorter than the fixed header, or than its CSRC list or extension.
    #[error("packet too short for its header ({len} bytes)")]
    TooShort {
        /// Buffer length.
        len: usize,
    },
    /// Version field is not 2 (also what a STUN or DTLS packet looks like).
    #[error("RTP version {0}, expected 2")]
    BadVersion(u8),
    /// Padding count is 0 or larger than the payload.
    #[error("invalid padding length")]
    BadPadding,
    /// The output buffer cannot hold the packet being written.
    #[error("output buffer too small ({needed} bytes needed)")]
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
    },
}

/// Byte offsets of a validated packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Layout {
    header_len: usize,
    payload_end: usize,
}

fn layout(buf: &[u8]) -> Result<Layout, RtpError> {
    let too_short = RtpError::TooShort { len: buf.len() };
    if buf.len() < RTP_HEADER_LEN {
        return Err(too_short);
    }
    let version = buf[0] >> 6;
    if version != 2 {
        return Err(RtpError::BadVersion(version));
    }
    let mut header_len = RTP_HEADER_LEN + 4 * (buf[0] & 0x0F) as usize;
    if buf[0] & 0x10 != 0 {
        // Extension: 16-bit profile, 16-bit length in 32-bit words.
        let ext = buf.get(header_len..header_len + 4).ok_or(too_short)?;
        header_len += 4 + 4 * u16::from_be_bytes([ext[2], ext[3]]) as usize;
    }
    if header_len > buf.len() {
        return Err(too_short);
    }
    let mut payload_end = buf.len();
    if buf[0] & 0x20 != 0 {
        let pad = buf[buf.len() - 1] as usize;
        if pad == 0 || pad > buf.len() - header_len {
            return Err(RtpError::BadPadding);
        }
        payload_end -= pad;
    }
    Ok(Layout {
        header_len,
        payload_end,
    })
}

/// A read-only view of an RTP packet.
#[derive(Debug, Clone, Copy)]
pub struct RtpPacket<'a> {
    buf: &'a [u8],
    layout: Layout,
}

/// A mutable view of an RTP packet, for rewriting it where it lies.
#[derive(Debug)]
pub struct RtpPacketMut<'a> {
    buf: &'a mut [u8],
    layout: Layout,
}

/// Accessors shared by both views.
macro_rules! header_getters {
    () => {
        /// Marker bit (start of a talkspurt for audio).
        pub fn marker(&self) -> bool {
            self.buf[1] & 0x80 != 0
        }

        /// Payload type (0-127).
        pub fn payload_type(&self) -> u8 {
            self.buf[1] & 0x7F
        }

        /// Sequence number.
        pub fn sequence(&self) -> u16 {
            u16::from_be_bytes([self.buf[2], self.buf[3]])
        }

        /// Timestamp, in the payload's clock.
        pub fn timestamp(&self) -> u32 {
            u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]])
        }

        /// Synchronisation source.
        pub fn ssrc(&self) -> u32 {
            u32::from_be_bytes([self.buf[8], self.buf[9], self.buf[10], self.buf[11]])
        }

        /// Header length including CSRCs and extension.
        pub fn header_len(&self) -> usize {
            self.layout.header_len
        }

        /// The payload, without padding.
        pub fn payload(&self) -> &[u8] {
            &self.buf[self.layout.header_len..self.layout.payload_end]
        }
    };
}

impl<'a> RtpPacket<'a> {
    /// Validates `buf` as an RTP packet.
    pub fn parse(buf: &'a [u8]) -> Result<RtpPacket<'a>, RtpError> {
        Ok(RtpPacket {
            layout: layout(buf)?,
            buf,
        })
    }

    header_getters!();

    /// Contributing sources (mixers list them).
    pub fn csrcs(&self) -> impl Iterator<Item = u32> + '_ {
        let n = (self.buf[0] & 0x0F) as usize;
        self.buf[RTP_HEADER_LEN..RTP_HEADER_LEN + 4 * n]
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
    }

    /// Header extension: profile-defined id and its data.
    pub fn extension(&self) -> Option<(u16, &'a [u8])> {
        if self.buf[0] & 0x10 == 0 {
            return None;
        }
        let start = RTP_HEADER_LEN + 4 * (self.buf[0] & 0x0F) as usize;
        let id = u16::from_be_bytes([self.buf[start], self.buf[start + 1]]);
        Some((id, &self.buf[start + 4..self.layout.header_len]))
    }
}

impl<'a> RtpPacketMut<'a> {
    /// Validates `buf` as an RTP packet for in-place rewriting.
    pub fn parse(buf: &'a mut [u8]) -> Result<RtpPacketMut<'a>, RtpError> {
        Ok(RtpPacketMut {
            layout: layout(buf)?,
            buf,
        })
    }

    header_getters!();

    /// Sets the marker bit.
    pub fn set_marker(&mut self, marker: bool) {
        self.buf[1] = (self.buf[1] & 0x7F) | if marker { 0x80 } else { 0 };
    }

    /// Sets the payload type (the top bit of `pt` is ignored).
    pub fn set_payload_type(&mut self, pt: u8) {
        self.buf[1] = (self.buf[1] & 0x80) | (pt & 0x7F);
    }

    /// Sets the sequence number.
    pub fn set_sequence(&mut self, seq: u16) {
        self.buf[2..4].copy_from_slice(&seq.to_be_bytes());
    }

    /// Sets the timestamp.
    pub fn set_timestamp(&mut self, ts: u32) {
        self.buf[4..8].copy_from_slice(&ts.to_be_bytes());
    }

    /// Sets the SSRC.
    pub fn set_ssrc(&mut self, ssrc: u32) {
        self.buf[8..12].copy_from_slice(&ssrc.to_be_bytes());
    }

    /// The payload, for transcoding in place.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.layout.header_len..self.layout.payload_end]
    }
}

/// The fields of a plain RTP header (no CSRC, no extension), for packets the
/// gateway originates (DTMF, silence, transcoded audio into a fresh buffer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RtpHeader {
    /// Marker bit.
    pub marker: bool,
    /// Payload type (0-127).
    pub payload_type: u8,
    /// Sequence number.
    pub sequence: u16,
    /// Timestamp.
    pub timestamp: u32,
    /// SSRC.
    pub ssrc: u32,
}

impl RtpHeader {
    /// Writes the 12-byte header at the start of `buf`; returns 12.
    pub fn write(&self, buf: &mut [u8]) -> Result<usize, RtpError> {
        let out = buf
            .get_mut(..RTP_HEADER_LEN)
            .ok_or(RtpError::BufferTooSmall {
                needed: RTP_HEADER_LEN,
            })?;
        out[0] = 0x80;
        out[1] = (self.payload_type & 0x7F) | if self.marker { 0x80 } else { 0 };
        out[2..4].copy_from_slice(&self.sequence.to_be_bytes());
        out[4..8].copy_from_slice(&self.timestamp.to_be_bytes());
        out[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        Ok(RTP_HEADER_LEN)
    }

    /// Writes header and payload into `buf`; returns the packet length.
    pub fn write_packet(&self, payload: &[u8], buf: &mut [u8]) -> Result<usize, RtpError> {
        let len = RTP_HEADER_LEN + payload.len();
        if buf.len() < len {
            return Err(RtpError::BufferTooSmall { needed: len });
        }
        self.write(buf)?;
        buf[RTP_HEADER_LEN..len].copy_from_slice(payload);
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// V=2, P=1, X=1, CC=1, M=1, PT=0, seq 0x1234, ts 0xDEADBEEF, SSRC 0x01020304,
    /// CSRC 0x0A0B0C0D, extension 0xBEDE with one word, 2 payload bytes, 2 padding.
    const FULL: [u8; 28] = [
        0xB1, 0x80, 0x12, 0x34, 0xDE, 0xAD, 0xBE, 0xEF, 1, 2, 3, 4, 0x0A, 0x0B, 0x0C, 0x0D, 0xBE,
        0xDE, 0, 1, 0x11, 0x22, 0x33, 0x44, 0xFF, 0x7F, 0, 2,
    ];

    #[test]
    fn parses_every_header_part() {
        let p = RtpPacket::parse(&FULL).unwrap();
        assert!(p.marker());
        assert_eq!(p.payload_type(), 0);
        assert_eq!(p.sequence(), 0x1234);
        assert_eq!(p.timestamp(), 0xDEAD_BEEF);
        assert_eq!(p.ssrc(), 0x0102_0304);
        assert_eq!(p.csrcs().collect::<Vec<_>>(), [0x0A0B_0C0D]);
        assert_eq!(p.extension(), Some((0xBEDE, &[0x11, 0x22, 0x33, 0x44][..])));
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.payload(), [0xFF, 0x7F]);
    }

    #[test]
    fn rejects_what_a_peer_could_send_wrong() {
        let cases: &[(&[u8], RtpError)] = &[
            (&FULL[..11], RtpError::TooShort { len: 11 }),
            (&[0x00; 12], RtpError::BadVersion(0)),
            // CC=1 but no room for the CSRC.
            (
                &[0x81, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                RtpError::TooShort { len: 12 },
            ),
            // Extension bit without extension header.
            (
                &[0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                RtpError::TooShort { len: 13 },
            ),
            // Padding count larger than the payload, and zero.
            (
                &[0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9, 9],
                RtpError::BadPadding,
            ),
            (
                &[0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                RtpError::BadPadding,
            ),
        ];
        for (buf, err) in cases {
            assert_eq!(RtpPacket::parse(buf).err(), Some(*err), "{buf:02x?}");
        }
        // Extension length pointing past the end.
        let mut long_ext = FULL;
        long_ext[19] = 9;
        assert!(matches!(
            RtpPacket::parse(&long_ext),
            Err(RtpError::TooShort { .. })
        ));
    }

    #[test]
    fn in_place_rewrite_keeps_payload_and_padding() {
        let mut buf = FULL;
        let mut p = RtpPacketMut::parse(&mut buf).unwrap();
        p.set_ssrc(0xCAFE_F00D);
        p.set_sequence(7);
        p.set_timestamp(160);
        p.set_marker(false);
        p.set_payload_type(8);
        p.payload_mut().copy_from_slice(&[0xD5, 0x55]);
        let p = RtpPacket::parse(&buf).unwrap();
        assert_eq!(
            (
                p.ssrc(),
                p.sequence(),
                p.timestamp(),
                p.marker(),
                p.payload_type()
            ),
            (0xCAFE_F00D, 7, 160, false, 8)
        );
        assert_eq!(p.payload(), [0xD5, 0x55]);
        assert_eq!(&buf[26..], [0, 2], "padding untouched");
        assert_eq!(p.csrcs().count(), 1);
    }

    #[test]
    fn written_packet_parses_back() {
        let header = RtpHeader {
            marker: true,
            payload_type: 101,
            sequence: 65535,
            timestamp: 8000,
            ssrc: 42,
        };
        let mut buf = [0u8; 32];
        let len = header.write_packet(&[1, 2, 3, 4], &mut buf).unwrap();
        assert_eq!(len, 16);
        let p = RtpPacket::parse(&buf[..len]).unwrap();
        assert_eq!(
            (
                p.marker(),
                p.payload_type(),
                p.sequence(),
                p.timestamp(),
                p.ssrc()
            ),
            (true, 101, 65535, 8000, 42)
        );
        assert_eq!(p.payload(), [1, 2, 3, 4]);
        assert_eq!(
            header.write_packet(&[0; 30], &mut buf),
            Err(RtpError::BufferTooSmall { needed: 42 })
        );
        assert!(header.write(&mut [0u8; 11]).is_err());
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // Anyone can send a datagram to a media port.
        let mut state = 0x1234_5678u32;
        let mut buf = [0u8; 64];
        for len in 0..=64 {
            for _ in 0..200 {
                for b in buf.iter_mut() {
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    *b = state as u8;
                }
                buf[0] = (buf[0] & 0x3F) | 0x80; // mostly version 2
                if let Ok(p) = RtpPacket::parse(&buf[..len]) {
                    let _ = (p.payload(), p.extension(), p.csrcs().count());
                    assert!(p.header_len() <= len);
                }
                for p in crate::rtp::rtcp_packets(&buf[..len]).flatten() {
                    let _ = (p.ssrc(), p.sender_info());
                }
                let _ = crate::rtp::classify(&buf[..len]);
            }
        }
    }
}
