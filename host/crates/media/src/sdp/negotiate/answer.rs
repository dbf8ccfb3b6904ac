//! The answer toward the caller: G.711 only.

use super::{LocalMedia, Negotiated, NegotiationError, audio_section, rejected};
use crate::g711::Law;
use crate::sdp::{Attribute, Codec, SessionDescription};

/// Answers a caller's offer with G.711 only (`allowed` laws, in the caller's
/// order) and telephone-event/8000 when offered.
pub fn answer_g711(
    offer: &SessionDescription,
    local: &LocalMedia,
    allowed: &[Law],
) -> Result<(SessionDescription, Negotiated), NegotiationError> {
    let mut failure = NegotiationError::NoAudio;
    let mut chosen = None;
    for (i, m) in offer.media.iter().enumerate() {
        if chosen.is_some() || !m.media.eq_ignore_ascii_case("audio") || m.port == 0 {
            continue;
        }
        if !m.is_plain_rtp() {
            if failure == NegotiationError::NoAudio {
                failure = NegotiationError::UnsupportedTransport {
                    protocol: m.protocol.clone(),
                };
            }
            continue;
        }
        let offered = m.codecs();
        let g711: Vec<Codec> = offered
            .iter()
            .filter(|c| c.law().is_some_and(|law| allowed.contains(&law)))
            .cloned()
            .collect();
        if g711.is_empty() {
            failure = NegotiationError::NoCommonCodec {
                offered: offered.into_iter().map(|c| c.name).collect(),
            };
            continue;
        }
        let event = offered
            .into_iter()
            .find(|c| c.is_telephone_event() && c.clock_rate == 8000)
            .map(|c| Codec {
                fmtp: c.fmtp.or_else(|| Some("0-15".into())),
                ..c
            });
        chosen = Some((i, g711, event));
    }
    let (index, codecs, event) = chosen.ok_or(failure)?;
    let offered = &offer.media[index];
    let state = offer.media_state(index).ok_or(NegotiationError::NoAudio)?;
    let rtcp_mux = offered.rtcp_mux() && local.rtcp_mux;

    let mut answer = audio_section(local, &offered.protocol, codecs.iter().chain(&event));
    answer.attributes.push(Attribute::Direction(state.relay));
    if rtcp_mux {
        answer.attributes.push(Attribute::RtcpMux);
    }
    let media = offer
        .media
        .iter()
        .enumerate()
        .map(|(i, m)| {
            if i == index {
                answer.clone()
            } else {
                rejected(m)
            }
        })
        .collect();
    let negotiated = Negotiated {
        media_index: index,
        send: codecs[0].clone(),
        codecs,
        telephone_event: event,
        state,
        rtcp_mux,
        ptime: offered.ptime(),
    };
    Ok((local.session(media), negotiated))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdp::{Direction, samples};

    const BOTH: &[Law] = &[Law::Ulaw, Law::Alaw];

    fn local() -> LocalMedia {
        LocalMedia::new("192.0.2.1".parse().unwrap(), 40000, 1000)
    }

    fn answer(text: &str, allowed: &[Law]) -> Result<(String, Negotiated), NegotiationError> {
        let offer = SessionDescription::parse(text).unwrap();
        answer_g711(&offer, &local(), allowed).map(|(sdp, n)| (sdp.to_string(), n))
    }

    #[test]
    fn five9_offer_gets_g711_and_events_only() {
        let (sdp, n) = answer(samples::FIVE9_OFFER, BOTH).unwrap();
        assert_eq!(
            sdp,
            "v=0\r\no=trunkline 1000 1000 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\n\
             t=0 0\r\nm=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\n\
             a=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n\
             a=ptime:20\r\na=sendrecv\r\n"
        );
        assert_eq!(n.send, Codec::pcmu());
        assert_eq!(n.telephone_event.unwrap().payload_type, 101);
        assert_eq!(n.state.remote_rtp, "10.1.2.3:20000".parse().ok());
        assert_eq!(n.ptime, Some(20));
        assert!(!n.rtcp_mux, "not offered, so not answered");
    }

    #[test]
    fn caller_preference_order_and_allowed_list_are_kept() {
        // IPv6 offer prefers PCMA, also lists G722 and G729: never advertised.
        let (sdp, n) = answer(samples::IPV6_MEDIA_LEVEL, BOTH).unwrap();
        assert!(sdp.contains("m=audio 40000 RTP/AVP 8 0\r\n"), "{sdp}");
        assert!(!sdp.contains("G722") && !sdp.contains("G729"));
        assert!(sdp.contains("a=rtcp-mux\r\n"), "offered and supported");
        assert_eq!(n.send.law(), Some(Law::Alaw));
        assert_eq!(n.state.remote_rtp, "[2001:db8::2]:30000".parse().ok());

        let (sdp, n) = answer(samples::IPV6_MEDIA_LEVEL, &[Law::Ulaw]).unwrap();
        assert!(sdp.contains("m=audio 40000 RTP/AVP 0\r\n"), "{sdp}");
        assert_eq!(n.codecs, [Codec::pcmu()]);
        assert_eq!(n.telephone_event, None);
    }

    const BROKEN: &str = "v=0\r\no=- 1 1 IN IP4 10.1.2.3\r\ns=-\r\nc=IN IP4 10.1.2.3\r\n\
                          t=0 0\r\nm=audio 30000 RTP/AVP 0 96\r\na=rtpmap:96 opus\r\n";

    #[test]
    fn malformed_rtpmap_for_a_codec_we_would_not_pick_is_ignored() {
        // RFC 4475 spirit: a line that does not change the answer does not
        // fail the offer. 96 has no clock rate; PCMU (static 0) is answered.
        let (sdp, n) = answer(BROKEN, BOTH).unwrap();
        assert_eq!(n.send, Codec::pcmu());
        assert_eq!(n.codecs, [Codec::pcmu()]);
        assert!(sdp.contains("m=audio 40000 RTP/AVP 0\r\n"), "{sdp}");
        assert!(!sdp.contains("opus"), "{sdp}");
        // A broken fmtp for a codec we do not pick: same.
        let fmtp = BROKEN.replace("a=rtpmap:96 opus", "a=rtpmap:96 opus/48000/2\r\na=fmtp:96");
        assert_eq!(answer(&fmtp, BOTH).unwrap().1.send, Codec::pcmu());
    }

    #[test]
    fn rfc4475_torture_sdp_with_rtpmap_lpc_is_answered_in_pcmu() {
        // The SDP of RFC 4475 §3.1.1.2 (esc01) and most other torture
        // messages, byte for byte: `a=rtpmap:31 LPC` has no clock rate.
        let torture = "v=0\r\no=mhandley 29739 7272939 IN IP4 192.0.2.1\r\ns=-\r\n\
                       c=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 49217 RTP/AVP 0 12\r\n\
                       m=video 3227 RTP/AVP 31\r\na=rtpmap:31 LPC\r\n";
        let (sdp, n) = answer(torture, BOTH).unwrap();
        assert_eq!(n.send, Codec::pcmu());
        assert_eq!(n.media_index, 0);
        assert!(sdp.contains("m=audio 40000 RTP/AVP 0\r\n"), "{sdp}");
        assert!(sdp.contains("m=video 0 RTP/AVP 31\r\n"), "{sdp}");
    }

    #[test]
    fn malformed_line_for_the_only_codec_still_gets_488() {
        // The broken line is about PCMU itself: we cannot know what 0 means.
        let only = BROKEN
            .replace("RTP/AVP 0 96", "RTP/AVP 0")
            .replace("a=rtpmap:96 opus", "a=rtpmap:0 PCMU");
        let err = answer(&only, BOTH).unwrap_err();
        assert_eq!(err.status(), 488);
        assert_eq!(err, NegotiationError::NoCommonCodec { offered: vec![] });
        // With PCMA beside it, PCMA is chosen and PCMU left out.
        let two = only.replace("RTP/AVP 0", "RTP/AVP 0 8").replace(
            "a=rtpmap:0 PCMU",
            "a=rtpmap:0 PCMU/\r\na=rtpmap:8 PCMA/8000",
        );
        let (sdp, n) = answer(&two, BOTH).unwrap();
        assert_eq!(n.codecs.len(), 1);
        assert_eq!(n.send.law(), Some(Law::Alaw));
        assert!(sdp.contains("m=audio 40000 RTP/AVP 8\r\n"), "{sdp}");
    }

    #[test]
    fn opus_only_offer_is_refused_with_488_and_warning() {
        let err = answer(samples::OPUS_ONLY, BOTH).unwrap_err();
        assert_eq!(
            err,
            NegotiationError::NoCommonCodec {
                offered: vec!["opus".into(), "telephone-event".into()]
            }
        );
        assert_eq!(err.status(), 488);
        assert_eq!(
            err.warning("trunkline"),
            "305 trunkline \"Incompatible media format\""
        );
        // PCMA-only offer with only μ-law allowed: same refusal.
        let pcma = samples::SIPP_UAC
            .replace("RTP/AVP 0", "RTP/AVP 8")
            .replace("0 PCMU", "8 PCMA");
        assert_eq!(answer(&pcma, &[Law::Ulaw]).unwrap_err().status(), 488);
    }

    #[test]
    fn srtp_only_and_no_audio_are_refused_with_their_warn_codes() {
        let srtp = samples::FIVE9_OFFER.replace("RTP/AVP", "RTP/SAVP");
        assert_eq!(answer(&srtp, BOTH).unwrap_err().warn_code(), 302);
        let video = samples::SIPP_UAC.replace("m=audio 6000 RTP/AVP 0", "m=video 6000 RTP/AVP 31");
        assert_eq!(answer(&video, BOTH).unwrap_err(), NegotiationError::NoAudio);
    }

    #[test]
    fn hold_offers_get_mirrored_directions() {
        let cases = [
            (
                samples::HOLD_SENDONLY,
                Direction::RecvOnly,
                "a=recvonly\r\n",
            ),
            (
                samples::HOLD_ZERO_ADDRESS,
                Direction::RecvOnly,
                "a=recvonly\r\n",
            ),
            (
                samples::HOLD_SESSION_INACTIVE,
                Direction::Inactive,
                "a=inactive\r\n",
            ),
        ];
        for (text, relay, line) in cases {
            let (sdp, n) = answer(text, BOTH).unwrap();
            assert_eq!(n.state.relay, relay, "{text}");
            assert!(n.state.on_hold);
            assert_eq!(n.state.remote_rtp, None, "nothing is sent to a held caller");
            assert!(sdp.contains(line), "{sdp}");
        }
    }

    #[test]
    fn unused_sections_are_rejected_in_place() {
        let (sdp, n) = answer(samples::HOLD_SESSION_INACTIVE, BOTH).unwrap();
        let parsed = SessionDescription::parse(&sdp).unwrap();
        assert_eq!(parsed.media.len(), 2, "one m= per offered m=");
        assert_eq!(n.media_index, 0);
        assert_eq!(parsed.media[1].port, 0);
        assert_eq!(parsed.media[1].media, "video");
        assert_eq!(parsed.media[1].formats, ["31"]);
    }

    #[test]
    fn answer_is_valid_sdp_that_round_trips() {
        for text in [
            samples::SIPP_UAC,
            samples::FIVE9_OFFER,
            samples::IPV6_MEDIA_LEVEL,
        ] {
            let (sdp, _) = answer(text, BOTH).unwrap();
            let parsed = SessionDescription::parse(&sdp).unwrap();
            assert_eq!(parsed.to_string(), sdp);
            for c in parsed.media[0].codecs() {
                assert!(c.law().is_some() || c.is_telephone_event(), "{c:?}");
            }
        }
    }
}
