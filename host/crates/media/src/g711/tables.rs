//! Compile-time G.711 tables.
//!
//! Every table is built by a `const fn`, so it sits in read-only data and costs
//! nothing at start-up or per call. The builders use closed-form segment
//! arithmetic (leading-zero count, shifted bias) rather than the loop-based
//! ITU-T G.191 reference; the tests at the bottom re-implement that reference
//! independently and compare every input, so a mistake in either shows up.
//!
//! Encoder table sizes: G.191's μ-law compressor only looks at `x >> 2` (the
//! 14-bit value) and its A-law compressor only at `x >> 4` (the 13-bit value
//! without its last bit, which A-law's first segment cannot resolve). Indexing by
//! those bits gives exact tables of 16 KiB (μ-law) and 4 KiB (A-law) that stay in
//! L1 cache next to the packet, instead of a 64 KiB table per law. The bench
//! `encode_strategy` in `benches/codec.rs` compares this with a 64 KiB table and
//! with computing the segment per sample.

/// μ-law bias in the 14-bit domain (G.711: 33, i.e. 0x21).
const ULAW_BIAS: u16 = 0x21;
/// Largest biased 14-bit μ-law magnitude (G.191 clips there).
const ULAW_CLIP: u16 = 0x1FFF;
/// A-law transmits every other bit inverted.
const ALAW_XOR: u8 = 0x55;

/// μ-law code for the 14-bit value `v` (`-8192..=8191`).
const fn ulaw_code_14(v: i16) -> u8 {
    // One's complement for negatives: G.191 maps -1 to "negative zero" (0x7F).
    let (sign, mag) = if v < 0 {
        (0x00u8, !v as u16)
    } else {
        (0x80u8, v as u16)
    };
    let mut biased = mag + ULAW_BIAS;
    if biased > ULAW_CLIP {
        biased = ULAW_CLIP;
    }
    // biased >= 33, so its top set bit is at position 5..=12; segment 0..=7.
    let top_bit = 15 - biased.leading_zeros() as u16;
    let segment = top_bit - 5;
    let mantissa = (biased >> (segment + 1)) & 0x0F;
    // μ-law transmits the magnitude bits inverted.
    sign | (!((segment << 4) | mantissa) as u8 & 0x7F)
}

/// A-law code for `v = x >> 4` (`-2048..=2047`).
const fn alaw_code_12(v: i16) -> u8 {
    let (sign, mag) = if v < 0 {
        (0x00u8, !v as u16)
    } else {
        (0x80u8, v as u16)
    };
    let (segment, mantissa) = if mag < 16 {
        (0u16, mag)
    } else {
        let top_bit = 15 - mag.leading_zeros() as u16;
        let segment = top_bit - 3;
        (segment, (mag >> (segment - 1)) & 0x0F)
    };
    (sign | ((segment << 4) | mantissa) as u8) ^ ALAW_XOR
}

/// Linear value (left-justified 16-bit, as G.191 `ulaw_expand`) of a μ-law code.
const fn ulaw_linear(code: u8) -> i16 {
    let inverted = !code;
    let exponent = ((inverted >> 4) & 0x07) as i32;
    let mantissa = (inverted & 0x0F) as i32;
    // Interval midpoint: ((2m + 33) << (e + 1)) - 33 in 14-bit units, times 4.
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    if code & 0x80 != 0 {
        magnitude as i16
    } else {
        -magnitude as i16
    }
}

/// Linear value (left-justified 16-bit, as G.191 `alaw_expand`) of an A-law code.
const fn alaw_linear(code: u8) -> i16 {
    let plain = code ^ ALAW_XOR;
    let segment = ((plain >> 4) & 0x07) as i32;
    let mantissa = (plain & 0x0F) as i32;
    let magnitude = if segment == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (segment - 1)
    };
    if plain & 0x80 != 0 {
        magnitude as i16
    } else {
        -magnitude as i16
    }
}

const fn build_ulaw_encode() -> [u8; 1 << 14] {
    let mut table = [0u8; 1 << 14];
    let mut i = 0;
    while i < table.len() {
        // Index is the top 14 bits of the sample as u16; sign-extend them back.
        let v = ((i as u16) << 2) as i16 >> 2;
        table[i] = ulaw_code_14(v);
        i += 1;
    }
    table
}

const fn build_alaw_encode() -> [u8; 1 << 12] {
    let mut table = [0u8; 1 << 12];
    let mut i = 0;
    while i < table.len() {
        let v = ((i as u16) << 4) as i16 >> 4;
        table[i] = alaw_code_12(v);
        i += 1;
    }
    table
}

const fn build_decode(ulaw: bool) -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = if ulaw {
            ulaw_linear(i as u8)
        } else {
            alaw_linear(i as u8)
        };
        i += 1;
    }
    table
}

/// Direct code-to-code tables: decode with one law, re-encode with the other.
/// The result is bit-identical to a relay that expands to linear and
/// compresses again, without touching linear samples per packet.
const fn build_transcode(from_ulaw: bool) -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = if from_ulaw {
            ALAW_ENCODE[(ULAW_DECODE[i] as u16 >> 4) as usize]
        } else {
            ULAW_ENCODE[(ALAW_DECODE[i] as u16 >> 2) as usize]
        };
        i += 1;
    }
    table
}

/// μ-law code indexed by `(sample as u16) >> 2`.
pub(super) static ULAW_ENCODE: [u8; 1 << 14] = build_ulaw_encode();
/// A-law code indexed by `(sample as u16) >> 4`.
pub(super) static ALAW_ENCODE: [u8; 1 << 12] = build_alaw_encode();
/// Left-justified 16-bit linear value of each μ-law code.
pub(super) static ULAW_DECODE: [i16; 256] = build_decode(true);
/// Left-justified 16-bit linear value of each A-law code.
pub(super) static ALAW_DECODE: [i16; 256] = build_decode(false);
/// A-law code for each μ-law code.
pub(super) static ULAW_TO_ALAW: [u8; 256] = build_transcode(true);
/// μ-law code for each A-law code.
pub(super) static ALAW_TO_ULAW: [u8; 256] = build_transcode(false);

#[cfg(test)]
mod tests {
    //! Independent, straightforward rendering of the ITU-T G.191 (STL) g711.c
    //! reference loops, compared with the fast tables over every input.
    use super::*;

    /// G.191 `ulaw_compress` for one sample.
    fn ref_ulaw_compress(x: i16) -> u8 {
        let x = x as i32;
        // 14-bit magnitude (one's complement for negatives) plus bias 33.
        let mut absno = if x < 0 {
            ((!x) >> 2) + 33
        } else {
            (x >> 2) + 33
        };
        if absno > 0x1FFF {
            absno = 0x1FFF;
        }
        let mut i = absno >> 6;
        let mut segno = 1;
        while i != 0 {
            segno += 1;
            i >>= 1;
        }
        let high_nibble = 0x08 - segno;
        let low_nibble = 0x0F - ((absno >> segno) & 0x0F);
        let mut out = (high_nibble << 4) | low_nibble;
        if x >= 0 {
            out |= 0x80;
        }
        out as u8
    }

    /// G.191 `ulaw_expand` for one code.
    fn ref_ulaw_expand(code: u8) -> i16 {
        let code = code as i32;
        let sign = if code < 0x80 { -1 } else { 1 };
        let inv = !code;
        let exponent = (inv >> 4) & 0x07;
        let segment = exponent + 1;
        let mantissa = inv & 0x0F;
        let step = 4 << segment;
        (sign * ((0x80 << exponent) + step * mantissa + step / 2 - 4 * 33)) as i16
    }

    /// G.191 `alaw_compress` for one sample.
    fn ref_alaw_compress(x: i16) -> u8 {
        let x = x as i32;
        let mut ix = if x < 0 { (!x) >> 4 } else { x >> 4 };
        if ix > 15 {
            let mut iexp = 1;
            while ix > 16 + 15 {
                ix >>= 1;
                iexp += 1;
            }
            ix -= 16;
            ix += iexp << 4;
        }
        if x >= 0 {
            ix |= 0x80;
        }
        (ix ^ 0x55) as u8
    }

    /// G.191 `alaw_expand` for one code.
    fn ref_alaw_expand(code: u8) -> i16 {
        let ix = ((code ^ 0x55) & 0x7F) as i32;
        let iexp = ix >> 4;
        let mut mant = ix & 0x0F;
        if iexp > 0 {
            mant += 16;
        }
        mant = (mant << 4) + 0x08;
        if iexp > 1 {
            mant <<= iexp - 1;
        }
        (if code > 127 { mant } else { -mant }) as i16
    }

    #[test]
    fn encoders_match_g191_for_all_65536_inputs() {
        for x in i16::MIN..=i16::MAX {
            let u = x as u16;
            assert_eq!(
                ULAW_ENCODE[(u >> 2) as usize],
                ref_ulaw_compress(x),
                "μ-law {x}"
            );
            assert_eq!(
                ALAW_ENCODE[(u >> 4) as usize],
                ref_alaw_compress(x),
                "A-law {x}"
            );
        }
    }

    #[test]
    fn decoders_match_g191_for_all_256_codes() {
        for c in 0..=255u8 {
            assert_eq!(
                ULAW_DECODE[c as usize],
                ref_ulaw_expand(c),
                "μ-law {c:#04x}"
            );
            assert_eq!(
                ALAW_DECODE[c as usize],
                ref_alaw_expand(c),
                "A-law {c:#04x}"
            );
        }
    }

    #[test]
    fn transcode_tables_equal_reference_tandem() {
        for c in 0..=255u8 {
            assert_eq!(
                ULAW_TO_ALAW[c as usize],
                ref_alaw_compress(ref_ulaw_expand(c))
            );
            assert_eq!(
                ALAW_TO_ULAW[c as usize],
                ref_ulaw_compress(ref_alaw_expand(c))
            );
        }
    }

    #[test]
    fn every_code_survives_decode_then_encode() {
        // G.711 decoding yields interval midpoints, so re-encoding must give
        // back the same code (except μ-law's two zeros, which both mean 0).
        for c in 0..=255u8 {
            let lin = ULAW_DECODE[c as usize];
            let back = ULAW_ENCODE[(lin as u16 >> 2) as usize];
            if c == 0x7F {
                assert_eq!(back, 0xFF, "negative zero re-encodes as +0");
            } else {
                assert_eq!(back, c, "μ-law {c:#04x}");
            }
            let lin = ALAW_DECODE[c as usize];
            assert_eq!(ALAW_ENCODE[(lin as u16 >> 4) as usize], c, "A-law {c:#04x}");
        }
    }
}
