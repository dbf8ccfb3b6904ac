//! The stream's audio format and the conversions between it and the tap's
//! G.711 frames.
//!
//! The tap carries 8 kHz G.711 in its law. A stream is μ-law 8 kHz (the
//! media-stream default, passed through untouched when the tap is μ-law too)
//! or L16 at 8 or 16 kHz: signed 16-bit samples in **little-endian** byte
//! order, which is what agent frameworks and speech APIs take as raw PCM
//! (`s16le`). (The MIME type `audio/L16` means network byte order, so the
//! stream calls its format `audio/x-l16` to avoid promising that.)

use std::fmt;
use std::str::FromStr;

use trunkline_media::g711::{self, Law};
use trunkline_media::resample::{Downsampler, Upsampler};

use super::protocol::MediaFormat;

/// Samples in one 20 ms frame at 8 kHz.
pub const FRAME_SAMPLES: usize = 160;

/// How audio is carried in the stream's `media` payloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AudioFormat {
    /// G.711 μ-law, 8 kHz (`audio/x-mulaw`).
    #[default]
    Mulaw,
    /// Signed 16-bit little-endian PCM at `rate` Hz (8000 or 16000).
    L16 {
        /// 8000 or 16000.
        rate: u32,
    },
}

impl AudioFormat {
    /// The `mediaFormat` of the `start` event.
    pub fn media_format(self) -> MediaFormat {
        let (encoding, sample_rate) = match self {
            AudioFormat::Mulaw => ("audio/x-mulaw", 8000),
            AudioFormat::L16 { rate } => ("audio/x-l16", rate),
        };
        MediaFormat {
            encoding: encoding.into(),
            sample_rate,
            channels: 1,
        }
    }
}

impl FromStr for AudioFormat {
    type Err = String;

    /// `mulaw` (also `pcmu`), `l16-8000` or `l16-16000` (`l16-8k`,
    /// `l16-16k`), case-insensitive.
    fn from_str(s: &str) -> Result<AudioFormat, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "mulaw" | "ulaw" | "pcmu" | "x-mulaw" => Ok(AudioFormat::Mulaw),
            "l16-8000" | "l16-8k" => Ok(AudioFormat::L16 { rate: 8000 }),
            "l16-16000" | "l16-16k" | "l16" => Ok(AudioFormat::L16 { rate: 16000 }),
            other => Err(format!(
                "unknown audio format {other:?} (mulaw, l16-8000, l16-16000)"
            )),
        }
    }
}

impl fmt::Display for AudioFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AudioFormat::Mulaw => f.write_str("mulaw"),
            AudioFormat::L16 { rate } => write!(f, "l16-{rate}"),
        }
    }
}

/// Splits a target into the URL to connect to and the options of its
/// fragment (`ws://host/path#audio=l16-16000`). The fragment never reaches
/// the server. Unknown options are errors: a typo would otherwise silently
/// stream the wrong format.
pub fn split_target(target: &str) -> Result<(String, Option<AudioFormat>), String> {
    let Some((url, fragment)) = target.split_once('#') else {
        return Ok((target.to_owned(), None));
    };
    let mut audio = None;
    for option in fragment.split('&').filter(|o| !o.is_empty()) {
        match option.split_once('=') {
            Some(("audio", value)) => audio = Some(value.parse()?),
            _ => return Err(format!("unknown WebSocket target option {option:?}")),
        }
    }
    Ok((url.to_owned(), audio))
}

fn decode_law(law: Law, codes: &[u8], out: &mut [i16]) -> usize {
    match law {
        Law::Ulaw => g711::decode_ulaw(codes, out),
        Law::Alaw => g711::decode_alaw(codes, out),
    }
}

fn encode_law(law: Law, samples: &[i16], out: &mut Vec<u8>) {
    out.extend(samples.iter().map(|&s| match law {
        Law::Ulaw => g711::ulaw_encode(s),
        Law::Alaw => g711::alaw_encode(s),
    }));
}

/// Caller audio toward the agent: tap frames → stream payload bytes.
#[derive(Debug)]
pub struct Encoder {
    format: AudioFormat,
    law: Law,
    up: Upsampler,
    linear: Vec<i16>,
    wide: Vec<i16>,
    bytes: Vec<u8>,
}

impl Encoder {
    /// An encoder from `law` frames to `format`.
    pub fn new(format: AudioFormat, law: Law) -> Encoder {
        Encoder {
            format,
            law,
            up: Upsampler::new(),
            linear: Vec::new(),
            wide: Vec::new(),
            bytes: Vec::new(),
        }
    }

    /// The payload bytes for one frame of tap codes (valid until the next
    /// call). The buffers are reused, so the steady state allocates nothing.
    pub fn encode<'a>(&'a mut self, codes: &'a [u8]) -> &'a [u8] {
        self.bytes.clear();
        match (self.format, self.law) {
            (AudioFormat::Mulaw, Law::Ulaw) => return codes,
            (AudioFormat::Mulaw, Law::Alaw) => {
                self.bytes.resize(codes.len(), 0);
                g711::transcode_alaw_to_ulaw(codes, &mut self.bytes);
            }
            (AudioFormat::L16 { rate }, law) => {
                self.linear.resize(codes.len(), 0);
                decode_law(law, codes, &mut self.linear);
                let samples = if rate == 16000 {
                    self.wide.resize(2 * codes.len(), 0);
                    let n = self.up.process(&self.linear, &mut self.wide);
                    &self.wide[..n]
                } else {
                    &self.linear[..]
                };
                self.bytes
                    .extend(samples.iter().flat_map(|s| s.to_le_bytes()));
            }
        }
        &self.bytes
    }

    /// Milliseconds of audio in `codes` (8 kHz G.711).
    pub fn duration_ms(codes: &[u8]) -> u64 {
        codes.len() as u64 / 8
    }
}

/// Agent audio toward the caller: stream payload bytes → 8 kHz tap codes.
#[derive(Debug)]
pub struct Decoder {
    format: AudioFormat,
    law: Law,
    down: Downsampler,
    /// The first byte of a sample split across two messages.
    odd_byte: Option<u8>,
    samples: Vec<i16>,
    narrow: Vec<i16>,
}

impl Decoder {
    /// A decoder from `format` to `law`.
    pub fn new(format: AudioFormat, law: Law) -> Decoder {
        Decoder {
            format,
            law,
            down: Downsampler::new(),
            odd_byte: None,
            samples: Vec::new(),
            narrow: Vec::new(),
        }
    }

    /// Appends the tap codes for `payload` to `out`. Payloads of any length
    /// are fine, even ones that split an L16 sample in two.
    pub fn decode(&mut self, payload: &[u8], out: &mut Vec<u8>) {
        match (self.format, self.law) {
            (AudioFormat::Mulaw, Law::Ulaw) => out.extend_from_slice(payload),
            (AudioFormat::Mulaw, Law::Alaw) => {
                out.extend(payload.iter().map(|&c| g711::ulaw_to_alaw(c)));
            }
            (AudioFormat::L16 { rate }, law) => {
                self.samples.clear();
                let mut rest = payload;
                if let (Some(first), Some((&second, tail))) = (self.odd_byte, rest.split_first()) {
                    self.samples.push(i16::from_le_bytes([first, second]));
                    self.odd_byte = None;
                    rest = tail;
                }
                let pairs = rest.chunks_exact(2);
                if let [last] = pairs.remainder() {
                    self.odd_byte = Some(*last);
                }
                self.samples
                    .extend(pairs.map(|b| i16::from_le_bytes([b[0], b[1]])));
                if rate == 16000 {
                    self.narrow.resize(self.samples.len() / 2 + 1, 0);
                    let n = self.down.process(&self.samples, &mut self.narrow);
                    encode_law(law, &self.narrow[..n], out);
                } else {
                    encode_law(law, &self.samples, out);
                }
            }
        }
    }

    /// Forgets a half sample and the filter history (after `clear`, the
    /// next audio is a new utterance).
    pub fn reset(&mut self) {
        self.odd_byte = None;
        self.down.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    fn tone(freq: f64, rate: f64, len: usize) -> Vec<i16> {
        (0..len)
            .map(|n| (8000.0 * (2.0 * PI * freq * n as f64 / rate).sin()).round() as i16)
            .collect()
    }

    /// Power at `freq` relative to the signal's total power (Goertzel).
    fn share_at(samples: &[i16], freq: f64, rate: f64) -> f64 {
        let coeff = 2.0 * (2.0 * PI * freq / rate).cos();
        let (mut s1, mut s2) = (0.0f64, 0.0f64);
        for &x in samples {
            let s0 = f64::from(x) + coeff * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        let tone = 2.0 * (s1 * s1 + s2 * s2 - coeff * s1 * s2) / (samples.len() as f64).powi(2);
        let total =
            samples.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / samples.len() as f64;
        tone / total
    }

    fn ulaw(samples: &[i16]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_law(Law::Ulaw, samples, &mut out);
        out
    }

    fn le_samples(bytes: &[u8]) -> Vec<i16> {
        bytes
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect()
    }

    #[test]
    fn formats_parse_from_options_and_print_back() {
        for (text, want) in [
            ("mulaw", AudioFormat::Mulaw),
            ("PCMU", AudioFormat::Mulaw),
            ("l16-8000", AudioFormat::L16 { rate: 8000 }),
            ("l16-16000", AudioFormat::L16 { rate: 16000 }),
            ("L16-16k", AudioFormat::L16 { rate: 16000 }),
        ] {
            let format: AudioFormat = text.parse().unwrap();
            assert_eq!(format, want, "{text}");
            assert_eq!(format.to_string().parse::<AudioFormat>().unwrap(), want);
        }
        assert!("l16-44100".parse::<AudioFormat>().is_err());
        assert_eq!(
            AudioFormat::L16 { rate: 16000 }.media_format().encoding,
            "audio/x-l16"
        );
    }

    #[test]
    fn the_fragment_selects_the_format_and_is_not_sent() {
        let cases: [(&str, &str, Option<AudioFormat>); 4] = [
            ("ws://h/a", "ws://h/a", None),
            (
                "ws://h/a?x=1#audio=l16-16000",
                "ws://h/a?x=1",
                Some(AudioFormat::L16 { rate: 16000 }),
            ),
            ("wss://h/#audio=mulaw", "wss://h/", Some(AudioFormat::Mulaw)),
            ("ws://h/a#", "ws://h/a", None),
        ];
        for (target, url, audio) in cases {
            assert_eq!(split_target(target).unwrap(), (url.to_owned(), audio));
        }
        assert!(split_target("ws://h/#audio=opus").is_err());
        assert!(split_target("ws://h/#audoi=mulaw").is_err());
    }

    #[test]
    fn mulaw_passes_through_untouched() {
        let mut enc = Encoder::new(AudioFormat::Mulaw, Law::Ulaw);
        let frame: Vec<u8> = (0..160).map(|i| i as u8).collect();
        assert_eq!(enc.encode(&frame), &frame[..]);
        let mut dec = Decoder::new(AudioFormat::Mulaw, Law::Ulaw);
        let mut out = Vec::new();
        dec.decode(&frame, &mut out);
        assert_eq!(out, frame);
    }

    #[test]
    fn a_tone_survives_l16_at_both_rates_both_ways() {
        for rate in [8000u32, 16000] {
            let format = AudioFormat::L16 { rate };
            let caller = ulaw(&tone(1000.0, 8000.0, 1600));
            let mut enc = Encoder::new(format, Law::Ulaw);
            let mut stream = Vec::new();
            for frame in caller.chunks(160) {
                stream.extend_from_slice(enc.encode(frame));
            }
            assert_eq!(stream.len(), 1600 * 2 * (rate as usize / 8000), "{rate}");
            let heard = le_samples(&stream);
            // Skip the filter's start-up; the agent hears a clean 1 kHz.
            let share = share_at(&heard[200..], 1000.0, f64::from(rate));
            assert!(
                share > 0.9,
                "{rate} Hz: 1 kHz holds {share:.3} of the power"
            );

            // The agent answers with 440 Hz at its own rate, in odd-sized
            // pieces that split samples across messages.
            let reply: Vec<u8> = tone(440.0, f64::from(rate), rate as usize / 5)
                .iter()
                .flat_map(|s| s.to_le_bytes())
                .collect();
            let mut dec = Decoder::new(format, Law::Ulaw);
            let mut codes = Vec::new();
            for piece in reply.chunks(333) {
                dec.decode(piece, &mut codes);
            }
            assert_eq!(codes.len(), 1600, "{rate}: 200 ms at 8 kHz");
            let mut played = vec![0i16; codes.len()];
            g711::decode_ulaw(&codes, &mut played);
            let share = share_at(&played[100..], 440.0, 8000.0);
            assert!(
                share > 0.9,
                "{rate} Hz: 440 Hz holds {share:.3} of the power"
            );
        }
    }

    #[test]
    fn alaw_taps_are_transcoded_for_a_mulaw_stream() {
        let samples = tone(1000.0, 8000.0, 160);
        let mut alaw = Vec::new();
        encode_law(Law::Alaw, &samples, &mut alaw);
        let mut enc = Encoder::new(AudioFormat::Mulaw, Law::Alaw);
        let sent = enc.encode(&alaw).to_vec();
        let mut back = vec![0i16; 160];
        g711::decode_ulaw(&sent, &mut back);
        let share = share_at(&back, 1000.0, 8000.0);
        assert!(share > 0.9);
    }
}
