//! Signal helpers shared by the audio tests: what a listener would notice is
//! the pitch (dominant frequency) and the noise added (SNR).

use std::f64::consts::PI;

/// `len` samples of a sine at `freq` Hz sampled at `rate`, peak `amplitude`.
pub(crate) fn sine(freq: f64, rate: f64, amplitude: f64, len: usize) -> Vec<i16> {
    (0..len)
        .map(|n| (amplitude * (2.0 * PI * freq * n as f64 / rate).sin()).round() as i16)
        .collect()
}

/// Signal-to-noise ratio of `output` against `reference`, in dB.
pub(crate) fn snr_db(reference: &[i16], output: &[i16]) -> f64 {
    let (mut signal, mut noise) = (0.0f64, 0.0f64);
    for (&r, &o) in reference.iter().zip(output) {
        signal += (r as f64).powi(2);
        noise += (r as f64 - o as f64).powi(2);
    }
    10.0 * (signal / noise.max(1e-9)).log10()
}

/// Power of `samples` at `freq` (Goertzel), normalised to mean square.
pub(crate) fn tone_power(samples: &[i16], freq: f64, rate: f64) -> f64 {
    let coeff = 2.0 * (2.0 * PI * freq / rate).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = x as f64 + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    // A full-scale sine of peak A gives power (A * N / 2)^2; map it to A^2 / 2.
    2.0 * power / (samples.len() as f64).powi(2)
}

/// Mean square of `samples`.
pub(crate) fn mean_square(samples: &[i16]) -> f64 {
    samples.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / samples.len().max(1) as f64
}

/// The frequency (10 Hz grid up to Nyquist) holding the most power.
pub(crate) fn dominant_frequency(samples: &[i16], rate: f64) -> f64 {
    let mut best = (0.0, 0.0);
    let mut f = 10.0;
    while f < rate / 2.0 {
        let p = tone_power(samples, f, rate);
        if p > best.1 {
            best = (f, p);
        }
        f += 10.0;
    }
    best.0
}
