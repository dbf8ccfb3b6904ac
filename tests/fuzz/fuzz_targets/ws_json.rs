//! Text messages from a WebSocket agent, handled as the connector does:
//! the `media` fast path and the general parse agree, control messages
//! that pass their check carry nothing that could break a SIP header,
//! audio of any length decodes the same however it is split, and playback
//! stays within its queue.
#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use libfuzzer_sys::fuzz_target;
use trunkline::connector::ws::audio::{AudioFormat, Decoder, split_target};
use trunkline::connector::ws::playback::Playback;
use trunkline::connector::ws::protocol::{
    Control, FromAgent, MAX_ATTRIBUTES, attribute_value, media_json, media_payload,
};
use trunkline_fuzz::Input;
use trunkline_media::g711::Law;

const FORMATS: [AudioFormat; 3] = [
    AudioFormat::Mulaw,
    AudioFormat::L16 { rate: 8000 },
    AudioFormat::L16 { rate: 16000 },
];

/// Decoding one payload equals decoding it in two parts, and the output
/// is as long as the audio it carries (8 kHz G.711 codes).
fn decode(format: AudioFormat, law: Law, audio: &[u8], cut: usize) -> Vec<u8> {
    let mut whole = Vec::new();
    Decoder::new(format, law).decode(audio, &mut whole);
    let mut split = Vec::new();
    let mut decoder = Decoder::new(format, law);
    let (first, second) = audio.split_at(cut.min(audio.len()));
    decoder.decode(first, &mut split);
    decoder.decode(second, &mut split);
    assert_eq!(
        whole, split,
        "{format:?}: a split payload decodes differently"
    );
    let expected = match format {
        AudioFormat::Mulaw => audio.len(),
        AudioFormat::L16 { rate: 8000 } => audio.len() / 2,
        AudioFormat::L16 { .. } => audio.len() / 4,
    };
    assert!(
        whole.len().abs_diff(expected) <= 1,
        "{format:?}: {} codes",
        whole.len()
    );
    whole
}

fn control(control: &Control) {
    let Ok(()) = control.check() else { return };
    let none = serde_json::Map::new();
    let (attributes, fields): (_, Vec<(&str, &String)>) = match control {
        Control::SetAttributes { attributes } | Control::End { attributes } => {
            (attributes, Vec::new())
        }
        Control::Transfer {
            destination,
            attributes,
        } => (attributes, vec![("destination", destination)]),
        Control::DialTransfer { mode, to, outbound } => {
            assert!(mode == "cold" || mode == "warm", "{mode:?}");
            (&none, vec![("to", to), ("outbound", outbound)])
        }
        Control::SendDtmf { digits, .. } => (&none, vec![("digits", digits)]),
        Control::CompleteTransfer | Control::CancelTransfer => (&none, Vec::new()),
    };
    assert!(attributes.len() <= MAX_ATTRIBUTES);
    let texts = attributes
        .iter()
        .map(|(k, v)| (k.clone(), attribute_value(v)))
        .chain(fields.into_iter().map(|(k, v)| (k.to_owned(), v.clone())));
    for (key, value) in texts {
        assert!(!key.is_empty());
        // Policies copy these into SIP headers.
        assert!(
            !value.contains(['\r', '\n', '\0']) && !key.contains(['\r', '\n', '\0']),
            "{key:?}: {value:?}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let format = FORMATS[input.below(3)];
    let law = if input.bool() { Law::Alaw } else { Law::Ulaw };
    let cut = usize::from(input.byte());
    let Ok(text) = std::str::from_utf8(input.rest()) else {
        return;
    };

    let _ = split_target(text);
    let fast = media_payload(text);
    let parsed = FromAgent::parse(text);
    if let (Some(payload), Ok(FromAgent::Media { media })) = (&fast, &parsed) {
        assert_eq!(
            payload.as_ref(),
            media.payload,
            "fast path and parse disagree"
        );
    }
    if let Ok(message) = &parsed {
        let json = serde_json::to_string(message).expect("serialises");
        let again = FromAgent::parse(&json).expect("our own JSON parses");
        if !matches!(message, FromAgent::Other) {
            assert_eq!(&again, message, "{json}");
        }
        if let FromAgent::Trunkline(c) = message {
            control(c);
        }
    }
    let payload = fast.or(match parsed {
        Ok(FromAgent::Media { media }) => Some(media.payload.into()),
        _ => None,
    });
    let Some(payload) = payload else { return };
    let Ok(audio) = BASE64.decode(payload.as_bytes()) else {
        return;
    };
    let codes = decode(format, law, &audio, cut);
    let mut playback = Playback::<()>::new(25, 0xFF);
    let refused = playback.push_audio(&codes);
    // Bounded: what fits in 25 frames is queued, the rest refused and
    // counted in frames (a part frame counts as one).
    let kept = codes.len().min(25 * 160);
    assert_eq!(playback.buffered(), kept, "the queue is bounded");
    assert_eq!(refused, (codes.len() - kept).div_ceil(160) as u64);
    // Played back whole frames then one padded tail, every code in order.
    let mut played = Vec::with_capacity(kept);
    while let Some(frame) = playback.pop_frame() {
        played.extend_from_slice(&frame);
    }
    if let Some(tail) = playback.pop_padded() {
        played.extend_from_slice(&tail[..kept % 160]);
    }
    assert_eq!(played, codes[..kept]);

    // What we send the agent is read back by the agent-side fast path.
    let json = media_json(7, "MZ00ff", 3, 60, &audio);
    let echoed = media_payload(&json).expect("our media event");
    assert_eq!(
        BASE64.decode(echoed.as_bytes()).ok().as_deref(),
        Some(&audio[..])
    );
});
