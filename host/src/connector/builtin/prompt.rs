//! Prompt audio for the builtin agent: files an operator recorded, and the
//! chimes the project generates when there are none.
//!
//! There is no text-to-speech in Trunkline, so the generated prompts are
//! tone sequences a caller learns in one call: a rising three-note chime
//! and a beep ("make your choice now"), a falling two-note "uh-oh" for a
//! key that is not on the menu, and a short high pair before the call ends.
//! Real deployments record their prompts and name the files in `[builtin]`.
//!
//! Audio is kept as linear 8 kHz samples and encoded per frame in the
//! tap's law, so one prompt serves μ-law and A-law calls alike.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use trunkline_media::g711::{alaw_decode, ulaw_decode};

/// Samples per second of every prompt (G.711's rate).
pub(crate) const RATE: u32 = 8000;

/// Prompt files above this size are refused: 8 MiB is over eight minutes of
/// μ-law, far beyond any menu prompt, and keeps a wrong path (a recording
/// of a whole call, a video) from being held in memory per call.
const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;

/// Peak level of generated tones: about -10 dBFS, clearly audible without
/// clipping after G.711 companding.
const TONE_PEAK: f32 = 10_000.0;

/// Why a prompt file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    /// The file could not be read.
    #[error("cannot read prompt {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not audio the agent can play.
    #[error("prompt {path}: {why}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
}

/// Mono 8 kHz linear samples, shared between calls without copying.
#[derive(Clone, PartialEq)]
pub struct Audio(Arc<[i16]>);

impl std::fmt::Debug for Audio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Audio({} ms)", self.duration_ms())
    }
}

impl Audio {
    /// Audio holding `samples`.
    pub fn new(samples: Vec<i16>) -> Audio {
        Audio(samples.into())
    }

    /// The samples.
    pub fn samples(&self) -> &[i16] {
        &self.0
    }

    /// How long it plays.
    pub fn duration_ms(&self) -> u64 {
        self.0.len() as u64 * 1000 / u64::from(RATE)
    }

    /// The default menu prompt (about 1.2 s): C5-E5-G5 rising, a pause,
    /// then a 1 kHz beep that invites a key press.
    pub fn welcome() -> Audio {
        let mut s = Vec::new();
        for freq in [523.25, 659.25, 783.99] {
            s.extend(note(freq, 200, true));
            s.extend(silence(50));
        }
        s.extend(silence(200));
        s.extend(note(1000.0, 150, false));
        Audio::new(s)
    }

    /// The default "not a menu key" prompt (about 0.5 s): E4 then C4, a
    /// falling "uh-oh".
    pub fn invalid() -> Audio {
        let mut s = note(329.63, 220, false);
        s.extend(silence(40));
        s.extend(note(261.63, 260, false));
        Audio::new(s)
    }

    /// The default prompt played after a choice, before the call ends
    /// (about 0.4 s): G5 then C6.
    pub fn goodbye() -> Audio {
        let mut s = note(783.99, 140, true);
        s.extend(silence(30));
        s.extend(note(1046.5, 220, true));
        Audio::new(s)
    }

    /// Reads a prompt file: `.wav` (PCM 16-bit, or G.711 μ-law/A-law; mono,
    /// 8 kHz), `.alaw`/`.pcma` raw A-law, anything else raw μ-law (`.ulaw`,
    /// `.pcmu`, `.ul`, `.raw`).
    pub fn load(path: &Path) -> Result<Audio, PromptError> {
        let read = |source| PromptError::Read {
            path: path.to_owned(),
            source,
        };
        let size = std::fs::metadata(path).map_err(read)?.len();
        let format = |why: String| PromptError::Format {
            path: path.to_owned(),
            why,
        };
        if size > MAX_FILE_BYTES {
            return Err(format(format!(
                "{size} bytes is more than the {MAX_FILE_BYTES} a prompt may have"
            )));
        }
        let bytes = std::fs::read(path).map_err(read)?;
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let samples = match ext.as_str() {
            "wav" | "wave" => parse_wav(&bytes).map_err(format)?,
            "alaw" | "pcma" | "al" => bytes.iter().map(|&c| alaw_decode(c)).collect(),
            _ => bytes.iter().map(|&c| ulaw_decode(c)).collect(),
        };
        if samples.is_empty() {
            return Err(format("it holds no audio".into()));
        }
        Ok(Audio::new(samples))
    }
}

/// `ms` of silence.
fn silence(ms: u32) -> Vec<i16> {
    vec![0; (RATE * ms / 1000) as usize]
}

/// A note of `ms`: a sine with a little second harmonic, a 5 ms attack and
/// either a bell-like decay or a flat sustain with a 20 ms release (no
/// clicks at either end).
fn note(freq: f32, ms: u32, bell: bool) -> Vec<i16> {
    let n = (RATE * ms / 1000) as usize;
    let rate = RATE as f32;
    let attack = rate * 0.005;
    let release = rate * 0.020;
    (0..n)
        .map(|i| {
            let t = i as f32;
            let phase = std::f32::consts::TAU * freq * t / rate;
            let wave = phase.sin() * 0.85 + (2.0 * phase).sin() * 0.15;
            let rise = (t / attack).min(1.0);
            let fall = ((n as f32 - t) / release).min(1.0);
            let body = if bell {
                (-2.5 * t / n as f32).exp()
            } else {
                1.0
            };
            (wave * rise * fall * body * TONE_PEAK) as i16
        })
        .collect()
}

/// The samples of a RIFF/WAVE file: mono, 8 kHz, format 1 (PCM, 16-bit
/// little-endian), 6 (A-law) or 7 (μ-law).
fn parse_wav(bytes: &[u8]) -> Result<Vec<i16>, String> {
    if bytes.len() < 12 || &bytes[..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err("not a RIFF/WAVE file".into());
    }
    let mut format: Option<(u16, u16, u32, u16)> = None;
    let mut rest = &bytes[12..];
    while rest.len() >= 8 {
        let id = &rest[..4];
        let len = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
        let body = rest
            .get(8..8 + len)
            // A truncated last data chunk (a recorder killed mid-write)
            // still holds playable audio.
            .or_else(|| (id == b"data").then(|| &rest[8..]))
            .ok_or_else(|| format!("chunk {:?} runs past the end", String::from_utf8_lossy(id)))?;
        match id {
            b"fmt " => {
                if body.len() < 16 {
                    return Err("fmt chunk is too short".into());
                }
                let u16_at = |i: usize| u16::from_le_bytes([body[i], body[i + 1]]);
                let rate = u32::from_le_bytes([body[4], body[5], body[6], body[7]]);
                format = Some((u16_at(0), u16_at(2), rate, u16_at(14)));
            }
            b"data" => {
                let (tag, channels, rate, bits) = format.ok_or("data chunk before fmt chunk")?;
                if channels != 1 || rate != RATE {
                    return Err(format!(
                        "{channels} channel(s) at {rate} Hz; prompts must be mono 8000 Hz"
                    ));
                }
                return match (tag, bits) {
                    (1, 16) => Ok(body
                        .chunks_exact(2)
                        .map(|b| i16::from_le_bytes([b[0], b[1]]))
                        .collect()),
                    (6, 8) => Ok(body.iter().map(|&c| alaw_decode(c)).collect()),
                    (7, 8) => Ok(body.iter().map(|&c| ulaw_decode(c)).collect()),
                    _ => Err(format!(
                        "format {tag} with {bits} bits per sample; use 16-bit PCM, μ-law or A-law"
                    )),
                };
            }
            _ => {}
        }
        // Chunks are padded to an even length.
        let next = 8 + len + (len & 1);
        rest = rest.get(next..).unwrap_or_default();
    }
    Err("no data chunk".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use trunkline_media::g711::{alaw_encode, ulaw_encode};

    fn wav(tag: u16, channels: u16, rate: u32, bits: u16, data: &[u8]) -> Vec<u8> {
        let mut fmt = Vec::new();
        fmt.extend(tag.to_le_bytes());
        fmt.extend(channels.to_le_bytes());
        fmt.extend(rate.to_le_bytes());
        fmt.extend((rate * u32::from(bits / 8)).to_le_bytes());
        fmt.extend((bits / 8).to_le_bytes());
        fmt.extend(bits.to_le_bytes());
        let mut out = b"RIFF\0\0\0\0WAVE".to_vec();
        // An odd-sized chunk the parser must skip, padding included.
        out.extend(b"LIST\x03\0\0\0abc\0");
        out.extend(b"fmt \x10\0\0\0");
        out.extend(fmt);
        out.extend(b"data");
        out.extend((data.len() as u32).to_le_bytes());
        out.extend(data);
        out
    }

    fn rms(s: &[i16]) -> f64 {
        (s.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / s.len().max(1) as f64).sqrt()
    }

    #[test]
    fn wav_forms() {
        let pcm: Vec<u8> = [1000i16, -2000, 3000]
            .iter()
            .flat_map(|s| s.to_le_bytes())
            .collect();
        let ulaw = [ulaw_encode(1000), ulaw_encode(-2000)];
        let alaw = [alaw_encode(1000)];
        let cases: &[(Vec<u8>, Result<usize, &str>)] = &[
            (wav(1, 1, 8000, 16, &pcm), Ok(3)),
            (wav(7, 1, 8000, 8, &ulaw), Ok(2)),
            (wav(6, 1, 8000, 8, &alaw), Ok(1)),
            (wav(1, 2, 8000, 16, &pcm), Err("mono 8000")),
            (wav(1, 1, 16000, 16, &pcm), Err("mono 8000")),
            (wav(1, 1, 8000, 8, &pcm), Err("16-bit PCM")),
            (wav(3, 1, 8000, 32, &pcm), Err("16-bit PCM")),
            (
                b"RIFF\0\0\0\0WAVEdata\x02\0\0\0ab".to_vec(),
                Err("before fmt"),
            ),
            (b"RIFX\0\0\0\0WAVE".to_vec(), Err("not a RIFF")),
            (b"RIFF\0\0\0\0WAVE".to_vec(), Err("no data")),
            (
                b"RIFF\0\0\0\0WAVEfmt \xff\0\0\0".to_vec(),
                Err("past the end"),
            ),
        ];
        for (bytes, expected) in cases {
            match (parse_wav(bytes), expected) {
                (Ok(s), Ok(n)) => assert_eq!(s.len(), *n),
                (Err(e), Err(needle)) => assert!(e.contains(needle), "{e}"),
                (got, want) => panic!("{got:?} != {want:?}"),
            }
        }
        assert_eq!(
            parse_wav(&wav(1, 1, 8000, 16, &pcm)).unwrap(),
            [1000, -2000, 3000]
        );
    }

    #[test]
    fn files_load_by_extension() {
        let dir = tempfile::tempdir().unwrap();
        let codes = [ulaw_encode(8000), ulaw_encode(-8000), 0xFF];
        let raw = dir.path().join("p.ulaw");
        std::fs::write(&raw, codes).unwrap();
        let expected = codes.map(ulaw_decode);
        assert_eq!(Audio::load(&raw).unwrap().samples(), &expected);
        assert!(expected[0] > 7000 && expected[1] < -7000 && expected[2] == 0);
        let a = dir.path().join("p.pcma");
        std::fs::write(&a, [alaw_encode(8000)]).unwrap();
        let expected = alaw_decode(alaw_encode(8000));
        assert_eq!(Audio::load(&a).unwrap().samples(), &[expected]);
        assert!(expected > 7000);
        let w = dir.path().join("p.wav");
        std::fs::write(&w, wav(1, 1, 8000, 16, &[1, 0])).unwrap();
        assert_eq!(Audio::load(&w).unwrap().samples(), &[1]);

        let empty = dir.path().join("e.ulaw");
        std::fs::write(&empty, []).unwrap();
        assert!(matches!(
            Audio::load(&empty),
            Err(PromptError::Format { .. })
        ));
        assert!(matches!(
            Audio::load(&dir.path().join("missing.ulaw")),
            Err(PromptError::Read { .. })
        ));
    }

    #[test]
    fn generated_prompts_are_audible_and_short() {
        for (audio, min_ms, max_ms) in [
            (Audio::welcome(), 1000, 2000),
            (Audio::invalid(), 300, 800),
            (Audio::goodbye(), 250, 600),
        ] {
            let ms = audio.duration_ms();
            assert!((min_ms..=max_ms).contains(&ms), "{ms} ms");
            let s = audio.samples();
            assert!(rms(s) > 1500.0, "rms {}", rms(s));
            assert!(s.iter().all(|&x| x.unsigned_abs() <= TONE_PEAK as u16 + 1));
            // Fades: no click at either end.
            assert!(s[0].abs() < 200 && s[s.len() - 1].abs() < 200);
        }
    }
}
