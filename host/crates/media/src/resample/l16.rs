//! L16: signed 16-bit linear PCM in network (big-endian) byte order, as RTP
//! carries it (RFC 3551 §4.5.11). (The WebSocket agents' L16 option is
//! little-endian, what agent frameworks expect of base64 PCM: see
//! `host/docs/websocket-agents.md`.)
//!
//! Getting the byte order wrong is not subtle: the agent hears loud noise.

/// Writes samples as big-endian bytes; returns the number of samples written
/// (`min(samples.len(), out.len() / 2)`).
pub fn l16_to_be(samples: &[i16], out: &mut [u8]) -> usize {
    let n = samples.len().min(out.len() / 2);
    for (s, b) in samples[..n].iter().zip(out.chunks_exact_mut(2)) {
        b.copy_from_slice(&s.to_be_bytes());
    }
    n
}

/// Reads big-endian bytes as samples; a trailing odd byte is ignored.
/// Returns the number of samples written (`min(bytes.len() / 2, out.len())`).
pub fn l16_from_be(bytes: &[u8], out: &mut [i16]) -> usize {
    let n = (bytes.len() / 2).min(out.len());
    for (s, b) in out[..n].iter_mut().zip(bytes.chunks_exact(2)) {
        *s = i16::from_be_bytes([b[0], b[1]]);
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_byte_order_round_trip() {
        let samples = [0i16, 1, -1, 0x1234, i16::MIN, i16::MAX];
        let mut bytes = [0u8; 12];
        assert_eq!(l16_to_be(&samples, &mut bytes), 6);
        assert_eq!(&bytes[..8], &[0, 0, 0, 1, 0xFF, 0xFF, 0x12, 0x34]);
        let mut back = [0i16; 6];
        assert_eq!(l16_from_be(&bytes, &mut back), 6);
        assert_eq!(back, samples);
    }

    #[test]
    fn short_buffers_and_odd_bytes() {
        let mut bytes = [0u8; 3];
        assert_eq!(l16_to_be(&[7, 8], &mut bytes), 1);
        assert_eq!(bytes, [0, 7, 0]);
        let mut out = [0i16; 4];
        assert_eq!(l16_from_be(&[1, 2, 3], &mut out), 1);
        assert_eq!(out[0], 0x0102);
        assert_eq!(l16_from_be(&[1, 2, 3, 4], &mut out[..1]), 1);
    }
}
