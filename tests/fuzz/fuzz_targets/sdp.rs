//! SDP from a peer: parsed and printed back; answered as Five9's offer
//! (G.711 only, 488 otherwise); and read as an agent's answer to our
//! offer, down to the relay's leg parameters.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trunkline_media::g711::Law;
use trunkline_media::sdp::negotiate::{LocalMedia, accept_answer, answer_g711, build_offer};
use trunkline_media::sdp::{Codec, Direction, SessionDescription};
use trunkline_relay::LegParams;
use trunkline_sip::message::SipMessage;

const LAWS: [&[Law]; 3] = [&[Law::Ulaw, Law::Alaw], &[Law::Alaw], &[Law::Ulaw]];

fn local() -> LocalMedia {
    LocalMedia::new("192.0.2.1".parse().expect("ip"), 40000, 1000)
}

/// Printing is lossless: what we send (answers, offers, and descriptions
/// passed through) parses back to the same value.
fn round_trip(sdp: &SessionDescription) {
    let printed = sdp.to_string();
    let again = SessionDescription::parse(&printed)
        .unwrap_or_else(|e| panic!("{e}: our printed SDP is refused:\n{printed}"));
    assert_eq!(&again, sdp, "{printed}");
}

fn answer_five9(offer: &SessionDescription, allowed: &[Law]) {
    match answer_g711(offer, &local(), allowed) {
        Ok((answer, negotiated)) => {
            round_trip(&answer);
            // RFC 3264 §6: one answer section per offered one, in order.
            assert_eq!(answer.media.len(), offer.media.len());
            let i = negotiated.media_index;
            for (j, m) in answer.media.iter().enumerate() {
                assert_eq!(m.port == 0, j != i, "only the chosen stream is active");
            }
            for codec in answer.media[i].codecs() {
                let offered = offer.media[i].codecs();
                assert!(offered.iter().any(|o| o.same_format(&codec)), "{codec:?}");
                assert!(
                    codec.is_telephone_event() || codec.law().is_some_and(|l| allowed.contains(&l)),
                    "only allowed G.711 toward Five9: {codec:?}"
                );
            }
            assert!(negotiated.send.law().is_some_and(|l| allowed.contains(&l)));
            let _ = LegParams::from_negotiated(&negotiated);
        }
        Err(e) => {
            assert!(matches!(e.status(), 488 | 500));
            // The Warning header on the 488 is always a valid header.
            SipMessage::response(e.status(), None)
                .and_then(|r| r.with_header("Warning", &e.warning("trunkline")))
                .expect("the warning fits in a header");
        }
    }
}

fn as_agent_answer(answer: &SessionDescription) {
    let ours = [Codec::pcmu(), Codec::pcma(), Codec::telephone_event(101)];
    let offer = build_offer(&local(), &ours, Direction::SendRecv).expect("our offer");
    round_trip(&offer);
    let Ok(negotiated) = accept_answer(&offer, answer) else {
        return;
    };
    for codec in negotiated.codecs.iter().chain(&negotiated.telephone_event) {
        assert!(
            ours.iter().any(|o| o.same_format(codec)),
            "{codec:?} not offered"
        );
    }
    assert!(ours.iter().any(|o| o.same_format(&negotiated.send)));
    let _ = LegParams::from_negotiated(&negotiated);
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let Ok(sdp) = SessionDescription::from_bytes(body) else {
        return;
    };
    round_trip(&sdp);
    for (i, m) in sdp.media.iter().enumerate() {
        let _ = (sdp.media_state(i), sdp.rtp_address(m), sdp.rtcp_address(m));
        let _ = (
            m.codecs(),
            m.malformed_lines().count(),
            m.payload_types().count(),
        );
    }
    answer_five9(&sdp, LAWS[usize::from(pick) % LAWS.len()]);
    as_agent_answer(&sdp);
});
