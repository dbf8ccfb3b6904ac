//! 8 kHz ↔ 16 kHz with one halfband low-pass FIR.
//!
//! Doubling the rate by repeating samples, or halving it by dropping every
//! other one, folds energy around 4 kHz: a listener hears a metallic image
//! tone (up) or aliased hiss from fricatives (down). Both directions here use
//! a 59-tap Kaiser-windowed halfband filter (β = 6.8, about 70 dB stopband):
//! flat to 3.4 kHz, stop from 4.6 kHz, which is exactly telephone band.
//! Halfband means every other tap is zero, so each output costs 15
//! multiplications (taps are symmetric and pre-added), and the loops run
//! over a block of outputs innermost so they vectorise: about 1 µs per 20 ms
//! frame each way (`benches/codec.rs`), against ~2.8 µs for a per-sample ring
//! buffer.
//!
//! Both converters keep the last input samples between calls, so 20 ms frames
//! processed one by one give exactly the samples of one long call: no clicks at
//! frame boundaries. Nothing allocates after construction.

/// Filter length (≡ 3 mod 4, so the outermost taps are non-zero).
const TAPS: usize = 59;
/// Index of the centre tap.
const CENTER: usize = TAPS / 2;
/// Distinct non-zero, non-centre taps: h[0], h[2], ... h[CENTER - 1].
const SIDE: usize = CENTER.div_ceil(2);
/// Samples of 8 kHz history the upsampler needs (its polyphase length).
const UP_TAPS: usize = 2 * SIDE;
/// Kaiser window shape: about 70 dB of stopband attenuation.
const KAISER_BETA: f64 = 6.8;

/// The distinct side taps, normalised so the filter has unity gain at DC.
fn side_taps() -> [f32; SIDE] {
    let bessel_i0 = |x: f64| {
        // Power series; 30 terms are far past f64 precision for x <= 7.
        let (mut sum, mut term) = (1.0f64, 1.0f64);
        for k in 1..30 {
            term *= (x / 2.0) / k as f64;
            sum += term * term;
        }
        sum
    };
    let mut side = [0f64; SIDE];
    for (j, tap) in side.iter_mut().enumerate() {
        let offset = (CENTER - 2 * j) as f64; // odd: sinc(offset / 2) is non-zero
        let sinc = (std::f64::consts::PI * offset / 2.0).sin() / (std::f64::consts::PI * offset);
        let r = offset / CENTER as f64;
        let window = bessel_i0(KAISER_BETA * (1.0 - r * r).sqrt()) / bessel_i0(KAISER_BETA);
        *tap = sinc * window;
    }
    // Centre tap is 0.5; the sides (each counted twice) must add up to 0.5.
    let scale = 0.25 / side.iter().sum::<f64>();
    side.map(|t| (t * scale) as f32)
}

/// Samples (outputs of the filter loop) processed per block; a 20 ms frame is
/// one block in either direction. Fixed so the scratch lives in the struct.
const BLOCK: usize = 160;
/// 8 kHz history the upsampler keeps (its polyphase length minus one).
const UP_HISTORY: usize = UP_TAPS - 1;
/// Odd-phase (16 kHz) history the downsampler keeps, in samples of that phase.
const ODD_HISTORY: usize = CENTER;
/// Even-phase history the downsampler keeps: the centre tap's delay.
const EVEN_HISTORY: usize = CENTER / 2;

/// Rounds half away from zero, like `f32::round`, but as plain arithmetic
/// that vectorises on baseline x86-64 (where `round` is a libm call).
/// `as` saturates, so an overshoot on a full-scale signal clips instead of
/// wrapping into a loud click.
#[inline]
fn to_i16(y: f32) -> i16 {
    (y + 0.5f32.copysign(y)) as i16
}

/// Accumulates `taps[j] * (x[i + j] + x[i + mirror - j])` into `acc[i]`.
/// Looping over outputs innermost keeps every access contiguous, so the
/// compiler turns it into SIMD without reassociating a sum.
#[inline]
fn symmetric_fir(taps: &[f32; SIDE], x: &[f32], mirror: usize, acc: &mut [f32]) {
    let n = acc.len();
    for (j, &tap) in taps.iter().enumerate() {
        let near = &x[j..j + n];
        let far = &x[mirror - j..mirror - j + n];
        for ((a, &p), &q) in acc.iter_mut().zip(near).zip(far) {
            *a += tap * (p + q);
        }
    }
}

/// 8 kHz → 16 kHz.
#[derive(Debug, Clone)]
pub struct Upsampler {
    /// Even-phase taps, doubled (zero-stuffing halves the energy).
    side: [f32; SIDE],
    /// `UP_HISTORY` samples of history, then the block being converted.
    input: [f32; UP_HISTORY + BLOCK],
    /// Even-phase outputs of the current block.
    acc: [f32; BLOCK],
}

impl Default for Upsampler {
    fn default() -> Upsampler {
        Upsampler::new()
    }
}

impl Upsampler {
    /// Delay added, in 16 kHz samples.
    pub const DELAY: usize = CENTER;

    /// A converter with silent history.
    pub fn new() -> Upsampler {
        Upsampler {
            side: side_taps().map(|t| 2.0 * t),
            input: [0.0; UP_HISTORY + BLOCK],
            acc: [0.0; BLOCK],
        }
    }

    /// Converts `input` (8 kHz) into `output` (16 kHz, twice as long).
    /// Input that does not fit the output is ignored; returns the number of
    /// output samples written (always even).
    pub fn process(&mut self, input: &[i16], output: &mut [i16]) -> usize {
        let n = input.len().min(output.len() / 2);
        for (block, out) in input[..n].chunks(BLOCK).zip(output.chunks_mut(2 * BLOCK)) {
            let len = block.len();
            for (x, &s) in self.input[UP_HISTORY..].iter_mut().zip(block) {
                *x = f32::from(s);
            }
            let acc = &mut self.acc[..len];
            acc.fill(0.0);
            symmetric_fir(&self.side, &self.input, UP_HISTORY, acc);
            // The odd phase of a halfband filter is its centre tap alone: a
            // delayed copy of the input.
            let odd = &self.input[SIDE..SIDE + len];
            for ((pair, &even), &odd) in out.chunks_exact_mut(2).zip(acc.iter()).zip(odd) {
                pair[0] = to_i16(even);
                pair[1] = to_i16(odd);
            }
            self.input.copy_within(len..len + UP_HISTORY, 0);
        }
        2 * n
    }

    /// Forgets the history (a new stream starts).
    pub fn reset(&mut self) {
        self.input = [0.0; UP_HISTORY + BLOCK];
    }
}

/// 16 kHz → 8 kHz.
///
/// Output `k` is taken when input `2k + 1` arrives; the filter then needs
/// odd-indexed inputs (all side taps) and one even-indexed input (the centre),
/// so the input is split into those two phases and each output is a
/// contiguous 15-tap symmetric FIR over the odd phase plus half an even sample.
#[derive(Debug, Clone)]
pub struct Downsampler {
    side: [f32; SIDE],
    /// Odd-indexed inputs: history, then the block.
    odd: [f32; ODD_HISTORY + BLOCK],
    /// Even-indexed inputs: history, then the block.
    even: [f32; EVEN_HISTORY + BLOCK],
    /// An even-indexed input waiting for its odd partner (odd-length frames).
    pending: Option<f32>,
    acc: [f32; BLOCK],
}

impl Default for Downsampler {
    fn default() -> Downsampler {
        Downsampler::new()
    }
}

impl Downsampler {
    /// Delay added, in 8 kHz samples: outputs are taken at odd input
    /// indices, which puts the filter centre on an even (kept) sample.
    pub const DELAY: usize = EVEN_HISTORY;

    /// A converter with silent history.
    pub fn new() -> Downsampler {
        Downsampler {
            side: side_taps(),
            odd: [0.0; ODD_HISTORY + BLOCK],
            even: [0.0; EVEN_HISTORY + BLOCK],
            pending: None,
            acc: [0.0; BLOCK],
        }
    }

    /// Converts `input` (16 kHz) into `output` (8 kHz, half as long).
    /// Input beyond what `output` can hold is ignored; returns the number of
    /// samples written.
    pub fn process(&mut self, mut input: &[i16], output: &mut [i16]) -> usize {
        let mut written = 0;
        while written < output.len() {
            // Gather up to one block of (even, odd) input pairs.
            let room = BLOCK.min(output.len() - written);
            let mut len = 0;
            if let (Some(e), Some((&o, rest))) = (self.pending, input.split_first()) {
                self.even[EVEN_HISTORY] = e;
                self.odd[ODD_HISTORY] = f32::from(o);
                self.pending = None;
                input = rest;
                len = 1;
            }
            let pairs = (input.len() / 2).min(room - len);
            for (i, pair) in input[..2 * pairs].chunks_exact(2).enumerate() {
                self.even[EVEN_HISTORY + len + i] = f32::from(pair[0]);
                self.odd[ODD_HISTORY + len + i] = f32::from(pair[1]);
            }
            input = &input[2 * pairs..];
            len += pairs;
            if len == 0 {
                break;
            }
            let acc = &mut self.acc[..len];
            for (a, &e) in acc.iter_mut().zip(&self.even[..len]) {
                *a = 0.5 * e;
            }
            symmetric_fir(&self.side, &self.odd, ODD_HISTORY, acc);
            for (o, &a) in output[written..written + len].iter_mut().zip(acc.iter()) {
                *o = to_i16(a);
            }
            written += len;
            self.odd.copy_within(len..len + ODD_HISTORY, 0);
            self.even.copy_within(len..len + EVEN_HISTORY, 0);
        }
        if let [last] = input
            && written < output.len()
        {
            self.pending = Some(f32::from(*last));
        }
        written
    }

    /// Forgets the history (a new stream starts).
    pub fn reset(&mut self) {
        self.odd.fill(0.0);
        self.even.fill(0.0);
        self.pending = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{dominant_frequency, mean_square, sine, snr_db, tone_power};

    /// Runs `f` over `input` in chunks of `frame`, collecting the output.
    fn in_frames(
        input: &[i16],
        frame: usize,
        ratio_num: usize,
        mut f: impl FnMut(&[i16], &mut [i16]) -> usize,
    ) -> Vec<i16> {
        let mut out = Vec::new();
        let mut buf = vec![0i16; frame * ratio_num];
        for chunk in input.chunks(frame) {
            let n = f(chunk, &mut buf);
            out.extend_from_slice(&buf[..n]);
        }
        out
    }

    /// A sine of `freq` Hz at `rate`, delayed by `delay` samples.
    fn delayed_sine(freq: f64, rate: f64, amp: f64, len: usize, delay: f64) -> Vec<i16> {
        (0..len)
            .map(|n| {
                let t = (n as f64 - delay) / rate;
                (amp * (2.0 * std::f64::consts::PI * freq * t).sin()).round() as i16
            })
            .collect()
    }

    #[test]
    fn taps_have_unity_dc_gain() {
        let side = side_taps();
        let sum: f32 = 0.5 + 2.0 * side.iter().sum::<f32>();
        assert!((sum - 1.0).abs() < 1e-6);
        assert!(side[SIDE - 1] > 0.3, "innermost side tap is near 1/pi");
    }

    #[test]
    fn upsampled_tone_keeps_pitch_and_has_no_image() {
        let input = sine(1000.0, 8000.0, 10000.0, 8000);
        let mut up = Upsampler::new();
        let out = in_frames(&input, 160, 2, |i, o| up.process(i, o));
        assert_eq!(out.len(), 16000);
        let ideal = delayed_sine(1000.0, 16000.0, 10000.0, 16000, Upsampler::DELAY as f64);
        let snr = snr_db(&ideal[100..], &out[100..]);
        assert!(snr > 50.0, "SNR {snr:.1} dB");
        assert!((dominant_frequency(&out, 16000.0) - 1000.0).abs() < 10.0);
        // Sample repetition would leave a 7 kHz image only ~20 dB down.
        let image = tone_power(&out, 7000.0, 16000.0) / tone_power(&out, 1000.0, 16000.0);
        assert!(
            10.0 * image.log10() < -60.0,
            "image {:.1} dB",
            10.0 * image.log10()
        );
    }

    #[test]
    fn downsampled_tone_keeps_pitch_and_level() {
        let input = sine(1000.0, 16000.0, 10000.0, 16000);
        let mut down = Downsampler::new();
        let out = in_frames(&input, 320, 1, |i, o| down.process(i, o));
        assert_eq!(out.len(), 8000);
        let ideal = delayed_sine(1000.0, 8000.0, 10000.0, 8000, Downsampler::DELAY as f64);
        let snr = snr_db(&ideal[100..], &out[100..]);
        assert!(snr > 50.0, "SNR {snr:.1} dB");
        assert!((dominant_frequency(&out, 8000.0) - 1000.0).abs() < 10.0);
    }

    #[test]
    fn telephone_band_edge_passes_flat() {
        let narrow = sine(3400.0, 8000.0, 10000.0, 8000);
        let mut up = Upsampler::new();
        let wide = in_frames(&narrow, 160, 2, |i, o| up.process(i, o));
        let mut down = Downsampler::new();
        let back = in_frames(&wide, 320, 1, |i, o| down.process(i, o));
        for (name, out) in [("up", &wide), ("down", &back)] {
            let db = 10.0 * (mean_square(&out[200..]) / mean_square(&narrow)).log10();
            assert!(db.abs() < 0.5, "3.4 kHz {name}: {db:.2} dB");
        }
    }

    #[test]
    fn five_khz_does_not_alias_into_the_phone_band() {
        // 5 kHz cannot exist at 8 kHz; decimation by dropping samples would
        // turn it into an audible 3 kHz tone at full level.
        let input = sine(5000.0, 16000.0, 16000.0, 16000);
        let mut down = Downsampler::new();
        let out = in_frames(&input, 320, 1, |i, o| down.process(i, o));
        let attenuation = 10.0 * (mean_square(&out[100..]) / mean_square(&input)).log10();
        assert!(attenuation < -60.0, "alias only {attenuation:.1} dB down");
        let naive: Vec<i16> = input.iter().step_by(2).copied().collect();
        let naive_db = 10.0 * (mean_square(&naive) / mean_square(&input)).log10();
        assert!(naive_db > -1.0, "the test signal does alias when dropped");
    }

    #[test]
    fn frame_size_does_not_change_the_output() {
        // Same samples whether processed whole, in 20 ms frames or in odd
        // chunks: state carries across calls, so boundaries cannot click.
        let speechy: Vec<i16> = sine(440.0, 16000.0, 9000.0, 4000)
            .iter()
            .zip(sine(2900.0, 16000.0, 4000.0, 4000))
            .map(|(a, b)| a + b)
            .collect();
        let whole = in_frames(&speechy, speechy.len(), 1, |i, o| {
            Downsampler::new().process(i, o)
        });
        for frame in [320, 7, 1] {
            let mut d = Downsampler::new();
            assert_eq!(
                in_frames(&speechy, frame, 1, |i, o| d.process(i, o)),
                whole,
                "frame {frame}"
            );
        }
        let narrow = &whole[..];
        let up_whole = in_frames(narrow, narrow.len(), 2, |i, o| {
            Upsampler::new().process(i, o)
        });
        for frame in [160, 3] {
            let mut u = Upsampler::new();
            assert_eq!(
                in_frames(narrow, frame, 2, |i, o| u.process(i, o)),
                up_whole,
                "frame {frame}"
            );
        }
    }

    #[test]
    fn short_output_buffers_and_reset() {
        let mut d = Downsampler::new();
        let mut out = [0i16; 2];
        assert_eq!(d.process(&[1000; 10], &mut out), 2);
        d.reset();
        let mut u = Upsampler::new();
        let mut out = [0i16; 5];
        assert_eq!(u.process(&[1000; 10], &mut out), 4, "only whole pairs");
        u.reset();
        assert_eq!(u.process(&[0; 2], &mut out), 4);
        assert_eq!(&out[..4], &[0; 4], "history cleared");
    }

    #[test]
    fn full_scale_overshoot_clips_instead_of_wrapping() {
        let square: Vec<i16> = (0..800)
            .map(|n| if (n / 8) % 2 == 0 { i16::MAX } else { i16::MIN })
            .collect();
        let mut u = Upsampler::new();
        let out = in_frames(&square, 160, 2, |i, o| u.process(i, o));
        // Each 16 kHz plateau sample must keep the sign of its plateau.
        for (m, &y) in out.iter().enumerate().skip(100) {
            let src = (m - Upsampler::DELAY) / 2;
            let mid = src % 8 == 3 || src % 8 == 4;
            if mid {
                assert_eq!(y.signum(), square[src].signum(), "sample {m}: {y}");
            }
        }
    }
}
