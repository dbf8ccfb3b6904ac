//! The offer toward an agent, and reading its answer.

use super::{LocalMedia, Negotiated, NegotiationError, audio_section};
use crate::sdp::{Attribute, Codec, Direction, SessionDescription};

/// Builds an offer of `codecs` (audio, then e.g. telephone-event) toward an
/// agent, with the given direction.
pub fn build_offer(
    local: &LocalMedia,
    codecs: &[Codec],
    direction: Direction,
) -> Result<SessionDescription, NegotiationError> {
    if codecs.iter().all(Codec::is_telephone_event) {
        return Err(NegotiationError::EmptyCodecList);
    }
    let mut media = audio_section(local, "RTP/AVP", codecs.iter());
    media.attributes.push(Attribute::Direction(direction));
    if local.rtcp_mux {
        media.attributes.push(Attribute::RtcpMux);
    }
    Ok(local.session(vec![media]))
}

/// Reads an agent's answer to our `offer`: which codecs it took (with its
/// payload types), where to send, in which direction.
pub fn accept_answer(
    offer: &SessionDescription,
    answer: &SessionDescription,
) -> Result<Negotiated, NegotiationError> {
    if offer.media.len() != answer.media.len() {
        return Err(NegotiationError::AnswerMismatch {
            reason: "different number of m= sections",
        });
    }
    let index = offer
        .media
        .iter()
        .zip(&answer.media)
        .position(|(o, a)| o.media.eq_ignore_ascii_case("audio") && o.port != 0 && a.port != 0)
        .ok_or(NegotiationError::NoAudio)?;
    let (ours, theirs) = (offer.media[index].codecs(), answer.media[index].codecs());
    let mut codecs = Vec::new();
    let mut event = None;
    for codec in &theirs {
        if !ours.iter().any(|o| o.same_format(codec)) {
            return Err(NegotiationError::AnswerMismatch {
                reason: "answer names a codec that was not offered",
            });
        }
        if codec.is_telephone_event() {
            event = event.or_else(|| Some(codec.clone()));
        } else {
            codecs.push(codec.clone());
        }
    }
    let Some(send) = codecs.first().cloned() else {
        return Err(NegotiationError::NoCommonCodec {
            offered: theirs.into_iter().map(|c| c.name).collect(),
        });
    };
    let section = &answer.media[index];
    Ok(Negotiated {
        media_index: index,
        send,
        codecs,
        telephone_event: event,
        state: answer.media_state(index).ok_or(NegotiationError::NoAudio)?,
        rtcp_mux: section.rtcp_mux() && offer.media[index].rtcp_mux(),
        ptime: section.ptime(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdp::samples;

    fn local() -> LocalMedia {
        LocalMedia::new("198.51.100.7".parse().unwrap(), 41000, 5)
    }

    fn agent_codecs() -> Vec<Codec> {
        vec![
            Codec::opus(111),
            Codec::pcmu(),
            Codec::pcma(),
            Codec::telephone_event(101),
        ]
    }

    #[test]
    fn offer_lists_allowed_codecs_with_rtpmaps() {
        let offer = build_offer(&local(), &agent_codecs(), Direction::SendRecv).unwrap();
        let text = offer.to_string();
        assert!(
            text.contains("m=audio 41000 RTP/AVP 111 0 8 101\r\n"),
            "{text}"
        );
        assert!(text.contains("a=rtpmap:111 opus/48000/2\r\n"));
        assert!(text.contains("a=fmtp:101 0-15\r\n"));
        assert!(text.contains("a=sendrecv\r\na=rtcp-mux\r\n"));
        assert_eq!(SessionDescription::parse(&text).unwrap(), offer);
    }

    #[test]
    fn offer_needs_an_audio_codec() {
        let err = build_offer(
            &local(),
            &[Codec::telephone_event(101)],
            Direction::SendRecv,
        );
        assert_eq!(err, Err(NegotiationError::EmptyCodecList));
        assert_eq!(
            build_offer(&local(), &[], Direction::SendRecv)
                .unwrap_err()
                .status(),
            500
        );
    }

    #[test]
    fn agent_answer_with_its_own_payload_types_is_accepted() {
        let offer = build_offer(&local(), &agent_codecs(), Direction::SendRecv).unwrap();
        // The agent picks PCMA and events, renumbering events to 96.
        let answer = SessionDescription::parse(
            "v=0\r\no=agent 9 9 IN IP4 203.0.113.9\r\ns=-\r\nc=IN IP4 203.0.113.9\r\nt=0 0\r\n\
             m=audio 5004 RTP/AVP 8 96\r\na=rtpmap:96 telephone-event/8000\r\na=rtcp-mux\r\n",
        )
        .unwrap();
        let n = accept_answer(&offer, &answer).unwrap();
        assert_eq!(n.send, Codec::pcma());
        assert_eq!(n.telephone_event.map(|c| c.payload_type), Some(96));
        assert_eq!(n.state.remote_rtp, "203.0.113.9:5004".parse().ok());
        assert_eq!(n.state.relay, Direction::SendRecv);
        assert!(n.rtcp_mux);
    }

    #[test]
    fn agent_hold_answer_and_bad_answers() {
        let offer = build_offer(&local(), &agent_codecs(), Direction::SendRecv).unwrap();
        let held = SessionDescription::parse(samples::HOLD_SENDONLY).unwrap();
        let n = accept_answer(&offer, &held).unwrap();
        assert_eq!(n.state.relay, Direction::RecvOnly);

        let g722 = samples::SIPP_UAC
            .replace("RTP/AVP 0", "RTP/AVP 9")
            .replace("0 PCMU", "9 G722");
        let err = accept_answer(&offer, &SessionDescription::parse(&g722).unwrap());
        assert!(matches!(err, Err(NegotiationError::AnswerMismatch { .. })));

        let events_only = samples::HOLD_SENDONLY.replace("RTP/AVP 0 101", "RTP/AVP 101");
        let err = accept_answer(&offer, &SessionDescription::parse(&events_only).unwrap());
        assert!(matches!(err, Err(NegotiationError::NoCommonCodec { .. })));

        let two = SessionDescription::parse(samples::HOLD_SESSION_INACTIVE).unwrap();
        assert!(matches!(
            accept_answer(&offer, &two),
            Err(NegotiationError::AnswerMismatch { .. })
        ));
        let rejected = samples::SIPP_UAC.replace("m=audio 6000", "m=audio 0");
        assert_eq!(
            accept_answer(&offer, &SessionDescription::parse(&rejected).unwrap()),
            Err(NegotiationError::NoAudio)
        );
    }
}
