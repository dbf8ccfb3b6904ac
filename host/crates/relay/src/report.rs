//! The relay's own RTCP: a sender report plus SDES CNAME per leg.
//!
//! RTCP is *terminated* on each leg rather than forwarded: after SSRC,
//! sequence and timestamp rewriting, the other peer's reports describe a
//! stream this peer never saw (wrong SSRC, wrong counts), and some endpoints
//! tear calls down on reports about unknown sources. Instead each leg is a
//! session of its own in which the relay is the sender: it reads the peer's
//! reports (counted), and every few seconds sends an SR for the stream it
//! sends there, so the peer's RTCP-based liveness checks and stats stay sane.
//! (No report blocks: the relay does not compute loss/jitter of what it
//! receives; an SR with zero blocks is valid, RFC 3550 §6.4.1.)

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// What goes into one sender report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SenderReport {
    /// The SSRC the relay sends this leg's RTP with.
    pub(crate) ssrc: u32,
    /// 64-bit NTP timestamp of `now`.
    pub(crate) ntp: u64,
    /// The RTP timestamp matching `ntp`.
    pub(crate) rtp_timestamp: u32,
    /// RTP packets sent on this leg.
    pub(crate) packets: u32,
    /// Payload octets sent on this leg.
    pub(crate) octets: u32,
}

/// 64-bit NTP time (RFC 5905: 32 bits of seconds, 32 of fraction).
pub(crate) fn ntp_time(wallclock: SystemTime) -> u64 {
    let since_unix = wallclock.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since_unix.as_secs().wrapping_add(NTP_UNIX_OFFSET);
    let fraction = (u64::from(since_unix.subsec_nanos()) << 32) / 1_000_000_000;
    (seconds << 32) | fraction
}

/// Writes SR + SDES (CNAME `trunkline-<ssrc in hex>`) into `buf`; returns
/// the length, or `None` when `buf` is too small.
pub(crate) fn write(report: &SenderReport, buf: &mut [u8]) -> Option<usize> {
    const SR_LEN: usize = 28;
    let mut cname = *b"trunkline-00000000";
    for (i, digit) in cname[10..].iter_mut().enumerate() {
        let nibble = (report.ssrc >> (28 - 4 * i)) & 0xF;
        *digit = b"0123456789abcdef"[nibble as usize];
    }
    // Chunk: SSRC, CNAME item (type, length, text), END item, padded to 32 bits.
    let chunk = (4 + 2 + cname.len() + 1).next_multiple_of(4);
    let sdes_len = 4 + chunk;
    let total = SR_LEN + sdes_len;
    let out = buf.get_mut(..total)?;
    out.fill(0);

    out[0] = 0x80; // V=2, no padding, zero report blocks
    out[1] = 200;
    out[2..4].copy_from_slice(&(SR_LEN as u16 / 4 - 1).to_be_bytes());
    out[4..8].copy_from_slice(&report.ssrc.to_be_bytes());
    out[8..16].copy_from_slice(&report.ntp.to_be_bytes());
    out[16..20].copy_from_slice(&report.rtp_timestamp.to_be_bytes());
    out[20..24].copy_from_slice(&report.packets.to_be_bytes());
    out[24..28].copy_from_slice(&report.octets.to_be_bytes());

    let sdes = &mut out[SR_LEN..];
    sdes[0] = 0x81; // V=2, one chunk
    sdes[1] = 202;
    sdes[2..4].copy_from_slice(&(sdes_len as u16 / 4 - 1).to_be_bytes());
    sdes[4..8].copy_from_slice(&report.ssrc.to_be_bytes());
    sdes[8] = 1; // CNAME
    sdes[9] = cname.len() as u8;
    sdes[10..10 + cname.len()].copy_from_slice(&cname);
    // END item and padding are the zeroes already there.
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use trunkline_media::rtp::{RtcpType, is_valid_compound, rtcp_packets};

    #[test]
    fn report_is_a_valid_compound_a_peer_can_read() {
        let report = SenderReport {
            ssrc: 0x00C0_FFEE,
            ntp: 0x1122_3344_5566_7788,
            rtp_timestamp: 16_000,
            packets: 100,
            octets: 16_000,
        };
        let mut buf = [0u8; 128];
        let len = write(&report, &mut buf).unwrap();
        assert_eq!(len % 4, 0);
        assert!(is_valid_compound(&buf[..len]));
        let packets: Vec<_> = rtcp_packets(&buf[..len]).collect::<Result<_, _>>().unwrap();
        assert_eq!(packets[0].packet_type(), RtcpType::SenderReport);
        assert_eq!(packets[0].ssrc(), Some(0x00C0_FFEE));
        assert_eq!(packets[0].sender_info(), Some((16_000, 100, 16_000)));
        assert_eq!(packets[1].packet_type(), RtcpType::SourceDescription);
        let sdes = packets[1].as_bytes();
        assert_eq!(&sdes[10..28], b"trunkline-00c0ffee");
        assert!(write(&report, &mut [0u8; 40]).is_none(), "short buffer");
    }

    #[test]
    fn ntp_time_counts_from_1900() {
        let t = UNIX_EPOCH + Duration::from_millis(1500);
        let ntp = ntp_time(t);
        assert_eq!(ntp >> 32, NTP_UNIX_OFFSET + 1);
        assert_eq!(ntp as u32, 1 << 31, "half a second");
    }
}
