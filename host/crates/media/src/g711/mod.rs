//! G.711 μ-law and A-law: per-sample and slice encode/decode, and direct
//! μ-law ↔ A-law transcoding.
//!
//! Five9 speaks only G.711 (PCMU, payload type 0, or PCMA, 8), so this is the
//! relay's hot path: every function is a table lookup per sample, and every
//! slice function writes into a caller-provided buffer — nothing allocates.
//!
//! # Linear sample convention
//! Linear samples are `i16` **left-justified**, as ITU-T G.191's
//! `ulaw_expand`/`alaw_expand` return them: μ-law's 14-bit value is scaled by 4
//! (range ±32124) and A-law's 13-bit value by 8 (range ±32256). The low bits of
//! an input sample below the law's resolution are ignored on encode, exactly as
//! G.191's compressors do. Decoded values are interval midpoints, so a decoded
//! code re-encodes to itself (except μ-law's negative zero, 0x7F, which
//! becomes 0xFF).
//!
//! # Slice lengths
//! Slice functions process `min(src.len(), dst.len())` samples and return that
//! count; a relay sizing both buffers from the same packet always gets the whole
//! frame.

mod tables;

use tables::{ALAW_DECODE, ALAW_ENCODE, ALAW_TO_ULAW, ULAW_DECODE, ULAW_ENCODE, ULAW_TO_ALAW};

/// μ-law code of a linear sample (G.191 `ulaw_compress`).
#[inline]
pub fn ulaw_encode(sample: i16) -> u8 {
    // u16 >> 2 is < 16384, so the index is provably in bounds (no check emitted).
    ULAW_ENCODE[(sample as u16 >> 2) as usize]
}

/// A-law code of a linear sample (G.191 `alaw_compress`).
#[inline]
pub fn alaw_encode(sample: i16) -> u8 {
    ALAW_ENCODE[(sample as u16 >> 4) as usize]
}

/// Left-justified linear value of a μ-law code (G.191 `ulaw_expand`).
#[inline]
pub fn ulaw_decode(code: u8) -> i16 {
    ULAW_DECODE[code as usize]
}

/// Left-justified linear value of an A-law code (G.191 `alaw_expand`).
#[inline]
pub fn alaw_decode(code: u8) -> i16 {
    ALAW_DECODE[code as usize]
}

/// A-law code for a μ-law code (same result as decode then encode).
#[inline]
pub fn ulaw_to_alaw(code: u8) -> u8 {
    ULAW_TO_ALAW[code as usize]
}

/// μ-law code for an A-law code (same result as decode then encode).
#[inline]
pub fn alaw_to_ulaw(code: u8) -> u8 {
    ALAW_TO_ULAW[code as usize]
}

/// Encodes linear samples as μ-law; returns the number of samples written.
pub fn encode_ulaw(src: &[i16], dst: &mut [u8]) -> usize {
    map_into(src, dst, |&s| ulaw_encode(s))
}

/// Encodes linear samples as A-law; returns the number of samples written.
pub fn encode_alaw(src: &[i16], dst: &mut [u8]) -> usize {
    map_into(src, dst, |&s| alaw_encode(s))
}

/// Decodes μ-law codes to linear samples; returns the number written.
pub fn decode_ulaw(src: &[u8], dst: &mut [i16]) -> usize {
    map_into(src, dst, |&c| ulaw_decode(c))
}

/// Decodes A-law codes to linear samples; returns the number written.
pub fn decode_alaw(src: &[u8], dst: &mut [i16]) -> usize {
    map_into(src, dst, |&c| alaw_decode(c))
}

/// Transcodes a μ-law payload to A-law; returns the number of bytes written.
pub fn transcode_ulaw_to_alaw(src: &[u8], dst: &mut [u8]) -> usize {
    map_into(src, dst, |&c| ulaw_to_alaw(c))
}

/// Transcodes an A-law payload to μ-law; returns the number of bytes written.
pub fn transcode_alaw_to_ulaw(src: &[u8], dst: &mut [u8]) -> usize {
    map_into(src, dst, |&c| alaw_to_ulaw(c))
}

#[inline]
fn map_into<S, D>(src: &[S], dst: &mut [D], f: impl Fn(&S) -> D) -> usize {
    let n = src.len().min(dst.len());
    for (d, s) in dst[..n].iter_mut().zip(&src[..n]) {
        *d = f(s);
    }
    n
}

/// One of the two G.711 companding laws, for code that picks at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Law {
    /// μ-law, RTP payload type 0, SDP encoding name `PCMU`.
    Ulaw,
    /// A-law, RTP payload type 8, SDP encoding name `PCMA`.
    Alaw,
}

impl Law {
    /// Static RTP payload type (RFC 3551).
    pub const fn payload_type(self) -> u8 {
        match self {
            Law::Ulaw => 0,
            Law::Alaw => 8,
        }
    }

    /// SDP encoding name.
    pub const fn encoding_name(self) -> &'static str {
        match self {
            Law::Ulaw => "PCMU",
            Law::Alaw => "PCMA",
        }
    }

    /// The law of an encoding name (case-insensitive, as RFC 4566 requires).
    pub fn from_encoding_name(name: &str) -> Option<Law> {
        if name.eq_ignore_ascii_case("PCMU") {
            Some(Law::Ulaw)
        } else if name.eq_ignore_ascii_case("PCMA") {
            Some(Law::Alaw)
        } else {
            None
        }
    }

    /// The code closest to zero (μ-law 0xFF = 0, A-law 0xD5 = +8): what a
    /// relay sends as silence.
    pub const fn silence(self) -> u8 {
        match self {
            Law::Ulaw => 0xFF,
            Law::Alaw => 0xD5,
        }
    }

    /// Encodes linear samples; returns the number written.
    pub fn encode(self, src: &[i16], dst: &mut [u8]) -> usize {
        match self {
            Law::Ulaw => encode_ulaw(src, dst),
            Law::Alaw => encode_alaw(src, dst),
        }
    }

    /// Decodes codes to linear samples; returns the number written.
    pub fn decode(self, src: &[u8], dst: &mut [i16]) -> usize {
        match self {
            Law::Ulaw => decode_ulaw(src, dst),
            Law::Alaw => decode_alaw(src, dst),
        }
    }
}

/// Rewrites a payload from one law to the other in place (no-op when equal),
/// so a relay can transcode inside the received packet buffer.
pub fn transcode_in_place(from: Law, to: Law, payload: &mut [u8]) {
    let table = match (from, to) {
        (Law::Ulaw, Law::Alaw) => &ULAW_TO_ALAW,
        (Law::Alaw, Law::Ulaw) => &ALAW_TO_ULAW,
        _ => return,
    };
    for c in payload {
        *c = table[*c as usize];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{dominant_frequency, sine, snr_db};

    #[test]
    fn well_known_codes_decode_to_g711_table_values() {
        let cases: &[(Law, u8, i16)] = &[
            (Law::Ulaw, 0xFF, 0),
            (Law::Ulaw, 0x7F, 0),
            (Law::Ulaw, 0x80, 32124),
            (Law::Ulaw, 0x00, -32124),
            (Law::Ulaw, 0xFE, 8),
            (Law::Ulaw, 0xEF, 132),
            (Law::Alaw, 0xD5, 8),
            (Law::Alaw, 0x55, -8),
            (Law::Alaw, 0xAA, 32256),
            (Law::Alaw, 0x2A, -32256),
            (Law::Alaw, 0xD4, 24),
        ];
        for &(law, code, linear) in cases {
            let mut out = [0i16];
            law.decode(&[code], &mut out);
            assert_eq!(out[0], linear, "{law:?} {code:#04x}");
        }
    }

    #[test]
    fn well_known_samples_encode_to_g711_codes() {
        assert_eq!(ulaw_encode(0), 0xFF);
        assert_eq!(ulaw_encode(-1), 0x7F);
        assert_eq!(ulaw_encode(i16::MAX), 0x80);
        assert_eq!(ulaw_encode(i16::MIN), 0x00);
        assert_eq!(alaw_encode(0), 0xD5);
        assert_eq!(alaw_encode(-1), 0x55);
        assert_eq!(alaw_encode(i16::MAX), 0xAA);
        assert_eq!(alaw_encode(i16::MIN), 0x2A);
    }

    #[test]
    fn silence_codes_decode_to_zero_or_smallest_step() {
        assert_eq!(ulaw_decode(Law::Ulaw.silence()), 0);
        assert_eq!(alaw_decode(Law::Alaw.silence()), 8);
        assert_eq!(ulaw_to_alaw(Law::Ulaw.silence()), Law::Alaw.silence());
        // A-law has no zero: its silence (+8) lands on μ-law's +8 code.
        assert_eq!(alaw_to_ulaw(Law::Alaw.silence()), 0xFE);
    }

    #[test]
    fn slice_functions_stop_at_the_shorter_buffer() {
        let src = [0i16; 10];
        let mut dst = [0u8; 4];
        assert_eq!(encode_ulaw(&src, &mut dst), 4);
        assert_eq!(dst, [0xFF; 4]);
        let mut long = [0u8; 20];
        assert_eq!(transcode_ulaw_to_alaw(&[0xFF; 3], &mut long), 3);
        assert_eq!(&long[..4], &[0xD5, 0xD5, 0xD5, 0]);
    }

    #[test]
    fn in_place_matches_copying_transcode() {
        let codes: Vec<u8> = (0..=255).collect();
        let mut copied = [0u8; 256];
        transcode_alaw_to_ulaw(&codes, &mut copied);
        let mut in_place = codes.clone();
        transcode_in_place(Law::Alaw, Law::Ulaw, &mut in_place);
        assert_eq!(&in_place[..], &copied[..]);
        transcode_in_place(Law::Ulaw, Law::Ulaw, &mut in_place);
        assert_eq!(&in_place[..], &copied[..], "same law leaves payload alone");
    }

    #[test]
    fn ulaw_alaw_ulaw_round_trip_stays_within_one_step() {
        // Tandem conversions must not drift: a μ→A→μ hop may move a code by
        // at most one quantisation step, never across segments.
        for c in 0..=255u8 {
            let back = alaw_to_ulaw(ulaw_to_alaw(c));
            let (a, b) = (ulaw_decode(c) as i32, ulaw_decode(back) as i32);
            let step = 8 << ((!c >> 4) & 7);
            assert!((a - b).abs() <= step, "{c:#04x}: {a} vs {b}");
        }
    }

    #[test]
    fn sine_through_ulaw_to_alaw_keeps_pitch_and_quality() {
        // 1 kHz at -6 dBFS for one second, as a caller's voice would arrive.
        let input = sine(1000.0, 8000.0, 16384.0, 8000);
        let mut ulaw = vec![0u8; input.len()];
        let mut alaw = vec![0u8; input.len()];
        let mut output = vec![0i16; input.len()];
        // Per 160-sample packet, as the relay will call it.
        for ((i, u), (a, o)) in input
            .chunks(160)
            .zip(ulaw.chunks_mut(160))
            .zip(alaw.chunks_mut(160).zip(output.chunks_mut(160)))
        {
            encode_ulaw(i, u);
            transcode_ulaw_to_alaw(u, a);
            decode_alaw(a, o);
        }
        let snr = snr_db(&input, &output);
        assert!(snr > 30.0, "SNR {snr:.1} dB");
        let f = dominant_frequency(&output, 8000.0);
        assert!((f - 1000.0).abs() < 10.0, "heard {f} Hz");
    }

    #[test]
    fn quiet_sine_keeps_quality_thanks_to_companding() {
        // -30 dBFS: linear 8-bit would be near 20 dB; G.711 stays above 30.
        let input = sine(440.0, 8000.0, 1036.0, 8000);
        for law in [Law::Ulaw, Law::Alaw] {
            let mut codes = vec![0u8; input.len()];
            let mut output = vec![0i16; input.len()];
            law.encode(&input, &mut codes);
            law.decode(&codes, &mut output);
            let snr = snr_db(&input, &output);
            assert!(snr > 30.0, "{law:?} SNR {snr:.1} dB");
        }
    }

    #[test]
    fn law_names_and_payload_types() {
        assert_eq!(Law::from_encoding_name("pcmu"), Some(Law::Ulaw));
        assert_eq!(Law::from_encoding_name("PCMA"), Some(Law::Alaw));
        assert_eq!(Law::from_encoding_name("G722"), None);
        assert_eq!(Law::Ulaw.payload_type(), 0);
        assert_eq!(Law::Alaw.payload_type(), 8);
        assert_eq!(Law::Alaw.encoding_name(), "PCMA");
    }
}
