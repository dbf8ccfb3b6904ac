//! Payload types resolved to codecs.
//!
//! A payload type means what its `a=rtpmap` says; without one, the RFC 3551
//! static assignment applies (0 PCMU, 8 PCMA, 9 G722, 18 G729...). Dynamic
//! types (96-127) without an rtpmap mean nothing and are skipped, so a
//! sloppy offer cannot trick the gateway into sending PCMU to a PT the peer
//! decodes as something else.

use super::{Attribute, Fmtp, MediaDescription, RtpMap};
use crate::g711::Law;

/// RFC 3551 tables 4 and 5: `(payload type, encoding, clock rate, channels)`.
const STATIC_PAYLOAD_TYPES: &[(u8, &str, u32, Option<u16>)] = &[
    (0, "PCMU", 8000, Some(1)),
    (3, "GSM", 8000, Some(1)),
    (4, "G723", 8000, Some(1)),
    (5, "DVI4", 8000, Some(1)),
    (6, "DVI4", 16000, Some(1)),
    (7, "LPC", 8000, Some(1)),
    (8, "PCMA", 8000, Some(1)),
    (9, "G722", 8000, Some(1)),
    (10, "L16", 44100, Some(2)),
    (11, "L16", 44100, Some(1)),
    (12, "QCELP", 8000, Some(1)),
    (13, "CN", 8000, Some(1)),
    (14, "MPA", 90000, None),
    (15, "G728", 8000, Some(1)),
    (16, "DVI4", 11025, Some(1)),
    (17, "DVI4", 22050, Some(1)),
    (18, "G729", 8000, Some(1)),
    (25, "CelB", 90000, None),
    (26, "JPEG", 90000, None),
    (28, "nv", 90000, None),
    (31, "H261", 90000, None),
    (32, "MPV", 90000, None),
    (33, "MP2T", 90000, None),
    (34, "H263", 90000, None),
];

/// A payload type with what it means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Codec {
    /// RTP payload type on this leg.
    pub payload_type: u8,
    /// Encoding name (`PCMU`, `opus`, `telephone-event`...).
    pub name: String,
    /// RTP clock rate in Hz.
    pub clock_rate: u32,
    /// Audio channels, when stated.
    pub channels: Option<u16>,
    /// `a=fmtp` parameters, when present.
    pub fmtp: Option<String>,
}

impl Codec {
    /// The codec a static payload type stands for (RFC 3551), if assigned.
    pub fn from_static(payload_type: u8) -> Option<Codec> {
        STATIC_PAYLOAD_TYPES
            .iter()
            .find(|(pt, ..)| *pt == payload_type)
            .map(|&(pt, name, clock_rate, channels)| Codec {
                payload_type: pt,
                name: name.into(),
                clock_rate,
                // Printing "/1" is legal but noisy; mono is the default.
                channels: channels.filter(|c| *c != 1),
                fmtp: None,
            })
    }

    /// PCMU (μ-law), payload type 0.
    pub fn pcmu() -> Codec {
        Codec::g711(Law::Ulaw)
    }

    /// PCMA (A-law), payload type 8.
    pub fn pcma() -> Codec {
        Codec::g711(Law::Alaw)
    }

    /// The G.711 codec of a law, on its static payload type.
    pub fn g711(law: Law) -> Codec {
        Codec::dynamic(law.payload_type(), law.encoding_name(), 8000, None)
    }

    /// G.722, payload type 9 (clock rate 8000 by RFC 3551's historical error).
    pub fn g722() -> Codec {
        Codec::dynamic(9, "G722", 8000, None)
    }

    /// RFC 4733 telephone-event at 8 kHz on `payload_type`, DTMF 0-15.
    pub fn telephone_event(payload_type: u8) -> Codec {
        Codec {
            fmtp: Some("0-15".into()),
            ..Codec::dynamic(payload_type, "telephone-event", 8000, None)
        }
    }

    /// Opus on `payload_type` (always `opus/48000/2`, RFC 7587).
    pub fn opus(payload_type: u8) -> Codec {
        Codec::dynamic(payload_type, "opus", 48000, Some(2))
    }

    /// Any codec, without format parameters.
    pub fn dynamic(payload_type: u8, name: &str, clock_rate: u32, channels: Option<u16>) -> Codec {
        Codec {
            payload_type,
            name: name.into(),
            clock_rate,
            channels,
            fmtp: None,
        }
    }

    /// The G.711 law, for PCMU/PCMA at 8 kHz.
    pub fn law(&self) -> Option<Law> {
        Law::from_encoding_name(&self.name).filter(|_| self.clock_rate == 8000)
    }

    /// True for RFC 4733 telephone-event.
    pub fn is_telephone_event(&self) -> bool {
        self.name.eq_ignore_ascii_case("telephone-event")
    }

    /// Same codec on possibly different payload types (name, rate, channels).
    pub fn same_format(&self, other: &Codec) -> bool {
        self.name.eq_ignore_ascii_case(&other.name)
            && self.clock_rate == other.clock_rate
            && self.channels.unwrap_or(1) == other.channels.unwrap_or(1)
    }

    /// The `a=rtpmap` (and `a=fmtp`) attributes describing this codec.
    pub fn attributes(&self) -> impl Iterator<Item = Attribute> {
        let rtpmap = Attribute::RtpMap(RtpMap {
            payload_type: self.payload_type,
            encoding: self.name.clone(),
            clock_rate: self.clock_rate,
            channels: self.channels,
        });
        let fmtp = self.fmtp.clone().map(|params| {
            Attribute::Fmtp(Fmtp {
                payload_type: self.payload_type,
                params,
            })
        });
        std::iter::once(rtpmap).chain(fmtp)
    }
}

impl MediaDescription {
    /// The codecs of this section in preference order; payload types that
    /// resolve to nothing (dynamic without rtpmap, or described by a
    /// malformed `rtpmap`/`fmtp`) are left out.
    pub fn codecs(&self) -> Vec<Codec> {
        self.payload_types()
            .filter_map(|pt| self.codec(pt))
            .collect()
    }

    /// What a payload type of this section means; `None` when nothing, or
    /// when a line about it could not be read (we cannot know what it means).
    pub fn codec(&self, payload_type: u8) -> Option<Codec> {
        if self.is_malformed(payload_type) {
            return None;
        }
        let fmtp = self.fmtp(payload_type).map(String::from);
        match self.rtpmap(payload_type) {
            Some(map) => Some(Codec {
                payload_type,
                name: map.encoding.clone(),
                clock_rate: map.clock_rate,
                channels: map.channels,
                fmtp,
            }),
            None => Codec::from_static(payload_type).map(|c| Codec { fmtp, ..c }),
        }
    }

    /// Whether an `rtpmap` or `fmtp` line naming this payload type could not
    /// be read; such a payload type is not used.
    pub fn is_malformed(&self, payload_type: u8) -> bool {
        self.malformed_lines()
            .any(|(_, value)| leading_payload_type(value) == Some(payload_type))
    }

    /// The `rtpmap`/`fmtp` lines that could not be read, as (name, value),
    /// for a debug log.
    pub fn malformed_lines(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.attributes.iter().filter_map(|a| match a {
            Attribute::Other { name, value }
                if name.eq_ignore_ascii_case("rtpmap") || name.eq_ignore_ascii_case("fmtp") =>
            {
                Some((name.as_str(), value.as_deref().unwrap_or("")))
            }
            _ => None,
        })
    }
}

/// The payload type a malformed `rtpmap:`/`fmtp:` value starts with, if any.
fn leading_payload_type(value: &str) -> Option<u8> {
    let first = value.split_ascii_whitespace().next()?;
    first.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdp::{SessionDescription, samples};

    #[test]
    fn static_types_resolve_without_rtpmap() {
        let sdp = SessionDescription::parse(samples::IPV6_MEDIA_LEVEL).unwrap();
        let names: Vec<String> = sdp.media[0].codecs().into_iter().map(|c| c.name).collect();
        assert_eq!(names, ["PCMA", "PCMU", "G722", "G729"]);
        assert_eq!(sdp.media[0].codec(8).and_then(|c| c.law()), Some(Law::Alaw));
    }

    #[test]
    fn rtpmap_overrides_and_dynamic_without_rtpmap_is_skipped() {
        let text = "v=0\no=- 1 1 IN IP4 1.1.1.1\ns=-\nc=IN IP4 1.1.1.1\nt=0 0\n\
                    m=audio 5 RTP/AVP 96 97 0 101\na=rtpmap:96 opus/48000/2\n\
                    a=rtpmap:101 telephone-event/8000\na=fmtp:101 0-16\n";
        let sdp = SessionDescription::parse(text).unwrap();
        let codecs = sdp.media[0].codecs();
        assert_eq!(codecs.len(), 3, "97 has no rtpmap: {codecs:?}");
        assert_eq!(codecs[0], Codec::opus(96));
        assert_eq!(codecs[1], Codec::pcmu());
        assert!(codecs[2].is_telephone_event());
        assert_eq!(codecs[2].fmtp.as_deref(), Some("0-16"));
    }

    #[test]
    fn law_requires_8k_clock() {
        assert_eq!(Codec::pcmu().law(), Some(Law::Ulaw));
        assert_eq!(Codec::dynamic(96, "PCMU", 16000, None).law(), None);
        assert_eq!(Codec::g722().law(), None);
    }

    #[test]
    fn same_format_ignores_payload_type_and_case() {
        assert!(Codec::telephone_event(101).same_format(&Codec::dynamic(
            96,
            "Telephone-Event",
            8000,
            None
        )));
        assert!(!Codec::opus(111).same_format(&Codec::dynamic(111, "opus", 48000, Some(1))));
        assert!(Codec::pcmu().same_format(&Codec::from_static(0).unwrap()));
    }

    #[test]
    fn attributes_describe_the_codec() {
        let attrs: Vec<String> = Codec::telephone_event(101)
            .attributes()
            .map(|a| a.to_string())
            .collect();
        assert_eq!(attrs, ["rtpmap:101 telephone-event/8000", "fmtp:101 0-15"]);
    }
}
