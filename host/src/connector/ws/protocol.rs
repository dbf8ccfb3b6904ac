//! The JSON messages of a WebSocket media stream, both directions.
//!
//! The shapes follow the widely used media-stream events (Twilio Media
//! Streams), so an agent written for them plugs in unchanged: numbers that
//! stream carries as strings (`sequenceNumber`, `chunk`, `timestamp`) are
//! strings here too. Trunkline's own control messages use the event name
//! `trunkline` with an `action`. The page `host/docs/websocket-agents.md`
//! documents every field.

use std::borrow::Cow;
use std::fmt::Write as _;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Protocol name in the `connected` event (what Twilio sends).
pub const PROTOCOL: &str = "Call";
/// Protocol version in the `connected` event.
pub const VERSION: &str = "1.0.0";

/// A message from Trunkline to the agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum ToAgent {
    /// First message after the handshake.
    Connected {
        /// Always [`PROTOCOL`].
        protocol: String,
        /// Always [`VERSION`].
        version: String,
    },
    /// The stream's metadata; sent once, before any media.
    #[serde(rename_all = "camelCase")]
    Start {
        /// Counts every message after `connected`, from `"1"`.
        sequence_number: String,
        /// This stream's id (also inside `start`).
        stream_sid: String,
        /// The details.
        start: Start,
    },
    /// Caller audio.
    #[serde(rename_all = "camelCase")]
    Media {
        /// Message counter.
        sequence_number: String,
        /// Stream id.
        stream_sid: String,
        /// The audio.
        media: MediaOut,
    },
    /// The caller pressed a key.
    #[serde(rename_all = "camelCase")]
    Dtmf {
        /// Message counter.
        sequence_number: String,
        /// Stream id.
        stream_sid: String,
        /// The key.
        dtmf: DtmfOut,
    },
    /// A mark the agent sent has been reached: the audio queued before it
    /// has been played (or cleared).
    #[serde(rename_all = "camelCase")]
    Mark {
        /// Message counter.
        sequence_number: String,
        /// Stream id.
        stream_sid: String,
        /// The agent's mark.
        mark: MarkBody,
    },
    /// A transfer the agent asked for (`dial_transfer`) left the caller
    /// with it: busy, no answer, refused, cancelled...
    #[serde(rename = "transfer_failed", rename_all = "camelCase")]
    TransferFailed {
        /// Message counter.
        sequence_number: String,
        /// Stream id.
        stream_sid: String,
        /// Why.
        transfer: TransferFailedOut,
    },
    /// The stream ends; the socket closes next.
    #[serde(rename_all = "camelCase")]
    Stop {
        /// Message counter.
        sequence_number: String,
        /// Stream id.
        stream_sid: String,
        /// Why.
        stop: StopOut,
    },
}

/// The body of `start`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Start {
    /// The trunk the call came in on (where Twilio puts its account id).
    pub account_sid: String,
    /// This stream's id.
    pub stream_sid: String,
    /// Trunkline's call id (`tl-…`): the control API's key.
    pub call_sid: String,
    /// Always `["inbound"]`: the agent hears the caller.
    pub tracks: Vec<String>,
    /// The routing attributes and the caller's `X-` headers (prefix
    /// stripped); attributes win on a clash.
    pub custom_parameters: Map<String, Value>,
    /// The audio format of `media` payloads both ways.
    pub media_format: MediaFormat,
    /// The caller leg's SIP Call-ID.
    pub sip_call_id: String,
    /// The caller (From URI).
    pub from: String,
    /// The Request-URI the caller dialed.
    pub to: String,
}

/// Audio encoding of the stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaFormat {
    /// `audio/x-mulaw` or `audio/x-l16` (signed 16-bit little-endian).
    pub encoding: String,
    /// 8000, or 16000 for `audio/x-l16`.
    pub sample_rate: u32,
    /// Always 1.
    pub channels: u8,
}

/// The body of an outgoing `media`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaOut {
    /// Always `inbound` (the caller's audio).
    pub track: String,
    /// Counts media messages, from `"1"`.
    pub chunk: String,
    /// Where this chunk starts in the stream, in ms of audio.
    pub timestamp: String,
    /// Base64 audio in the stream's format.
    pub payload: String,
}

/// The body of an outgoing `dtmf`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DtmfOut {
    /// Always `inbound_track`.
    pub track: String,
    /// `0`-`9`, `*`, `#`, `A`-`D`.
    pub digit: String,
    /// How long the key was held, in ms.
    pub duration_ms: u32,
}

/// The body of an outgoing `transfer_failed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferFailedOut {
    /// `busy`, `no-answer`, `rejected`, `auth-failed`, `unreachable`,
    /// `media`, `capacity`, `target-hangup`, `cancelled`, or `refused`
    /// (the request itself could not start; `reason` says why).
    pub failure: String,
    /// The SIP status behind it, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// For `refused`: why, as the control API would say it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A mark's name, both ways.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarkBody {
    /// Chosen by the agent; echoed unchanged.
    pub name: String,
}

/// The body of an outgoing `stop`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StopOut {
    /// The trunk.
    pub account_sid: String,
    /// Trunkline's call id.
    pub call_sid: String,
    /// Why the stream stops (`caller-hangup`, `agent-request`, ...).
    pub reason: String,
}

/// A message from the agent. Fields the agent adds that are not listed
/// (such as `streamSid`) are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum FromAgent {
    /// Audio to play to the caller, queued behind earlier audio.
    Media {
        /// The audio.
        media: MediaIn,
    },
    /// Echo `name` back once the audio queued before it has played.
    Mark {
        /// The mark.
        mark: MarkBody,
    },
    /// Barge-in: drop all queued audio now and echo the pending marks.
    Clear,
    /// The agent is done: the call ends (`agent-hangup`) unless it already
    /// asked to end it.
    Stop,
    /// Trunkline's control messages.
    Trunkline(Control),
    /// Any other event (`connected`, `start`, ...): ignored.
    #[serde(other)]
    Other,
}

/// The body of an incoming `media`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaIn {
    /// Base64 audio in the stream's format, any length.
    pub payload: String,
}

/// `{"event":"trunkline","action":...}`: report to the gateway, as the
/// control API does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Control {
    /// Set call attributes at once (replacing same-named ones).
    SetAttributes {
        /// Key → value; non-string values are kept as compact JSON.
        #[serde(default)]
        attributes: Map<String, Value>,
    },
    /// End the call once the audio queued before this message has played.
    End {
        /// Set first.
        #[serde(default)]
        attributes: Map<String, Value>,
    },
    /// Hand the caller back toward `destination` once queued audio has
    /// played.
    Transfer {
        /// A queue, skill or `sip:` URI, for the policy.
        destination: String,
        /// Set first.
        #[serde(default)]
        attributes: Map<String, Value>,
    },
    /// Have Trunkline dial `to` through the `[[outbound]]` trunk
    /// `outbound` and bridge the caller to it: `cold` on its answer, `warm`
    /// after the agent's brief (`complete_transfer`). A failure comes back
    /// as a `transfer_failed` event.
    DialTransfer {
        /// `cold` or `warm`.
        mode: String,
        /// A number or `sip:` URI.
        to: String,
        /// The `[[outbound]]` trunk.
        outbound: String,
    },
    /// Warm: bridge the caller to the briefed target; the stream stops.
    CompleteTransfer,
    /// Key presses (RFC 4733) toward the caller or the transfer target.
    SendDtmf {
        /// `0`-`9`, `*`, `#`, `A`-`D`.
        digits: String,
        /// `caller` (default) or `target`.
        #[serde(default)]
        to: Option<String>,
    },
    /// Drop the target; the caller stays with, or returns to, the agent.
    CancelTransfer,
}

/// Most attributes one control message may set (the control API's limits,
/// so an agent gets the same answer whichever way it reports).
pub const MAX_ATTRIBUTES: usize = 64;
/// Longest attribute key, bytes.
pub const MAX_KEY: usize = 128;
/// Longest attribute value, bytes: policies copy values into SIP headers.
pub const MAX_VALUE: usize = 4096;
/// Longest transfer destination, bytes.
pub const MAX_DESTINATION: usize = 1024;

impl Control {
    /// Checks the limits; a message breaking them is ignored whole.
    pub fn check(&self) -> Result<(), String> {
        let (attributes, destination) = match self {
            Control::SetAttributes { attributes } | Control::End { attributes } => {
                (attributes, None)
            }
            Control::Transfer {
                destination,
                attributes,
            } => (attributes, Some(destination)),
            Control::DialTransfer { mode, to, outbound } => {
                if mode != "cold" && mode != "warm" {
                    return Err(format!("transfer mode {mode:?}: give cold or warm"));
                }
                check_text("transfer target", to, MAX_DESTINATION)?;
                check_text("outbound trunk", outbound, MAX_KEY)?;
                return Ok(());
            }
            Control::CompleteTransfer | Control::CancelTransfer => return Ok(()),
            Control::SendDtmf { digits, to } => {
                check_text("digits", digits, MAX_KEY)?;
                if !matches!(to.as_deref(), None | Some("caller") | Some("target")) {
                    return Err("dtmf `to`: give caller or target".into());
                }
                return Ok(());
            }
        };
        if attributes.len() > MAX_ATTRIBUTES {
            return Err(format!(
                "{} attributes; at most {MAX_ATTRIBUTES}",
                attributes.len()
            ));
        }
        if let Some(d) = destination {
            check_text("destination", d, MAX_DESTINATION)?;
            if d.trim().is_empty() {
                return Err("empty transfer destination".into());
            }
        }
        for (key, value) in attributes {
            check_text("attribute key", key, MAX_KEY)?;
            if key.is_empty() {
                return Err("empty attribute key".into());
            }
            check_text(
                &format!("attribute {key:?}"),
                &attribute_value(value),
                MAX_VALUE,
            )?;
        }
        Ok(())
    }
}

/// Policies copy values into SIP headers, where CR or LF would end the
/// header: such values are refused up front.
fn check_text(what: &str, s: &str, max: usize) -> Result<(), String> {
    if s.len() > max {
        return Err(format!("{what} is {} bytes; at most {max}", s.len()));
    }
    if s.chars().any(char::is_control) {
        return Err(format!("{what} contains control characters"));
    }
    Ok(())
}

impl FromAgent {
    /// Reads one text message.
    pub fn parse(text: &str) -> Result<FromAgent, serde_json::Error> {
        serde_json::from_str(text)
    }
}

/// Just enough of an incoming message to recognise `media`.
#[derive(Deserialize)]
struct Peek<'a> {
    #[serde(borrow)]
    event: Cow<'a, str>,
    #[serde(borrow)]
    media: Option<PeekMedia<'a>>,
}

#[derive(Deserialize)]
struct PeekMedia<'a> {
    #[serde(borrow)]
    payload: Cow<'a, str>,
}

/// The payload of a `media` message, read without building
/// [`FromAgent`]: agents send fifty a second, and the general enum makes
/// serde buffer the whole message first. `None` for anything else (parse
/// that with [`FromAgent::parse`]).
pub fn media_payload(text: &str) -> Option<Cow<'_, str>> {
    let peek: Peek<'_> = serde_json::from_str(text).ok()?;
    if peek.event != "media" {
        return None;
    }
    peek.media.map(|m| m.payload)
}

/// The text of a `media` event (exactly what [`ToAgent::Media`]
/// serialises to), written into one buffer: the per-frame hot path.
/// `stream_sid` must need no JSON escaping (ours is `MZ` + hex).
pub fn media_json(
    sequence_number: u64,
    stream_sid: &str,
    chunk: u64,
    timestamp: u64,
    audio: &[u8],
) -> String {
    let mut text = String::with_capacity(150 + stream_sid.len() + audio.len().div_ceil(3) * 4);
    let _ = write!(
        text,
        r#"{{"event":"media","sequenceNumber":"{sequence_number}","streamSid":"{stream_sid}","media":{{"track":"inbound","chunk":"{chunk}","timestamp":"{timestamp}","payload":""#
    );
    BASE64.encode_string(audio, &mut text);
    text.push_str(r#""}}"#);
    text
}

impl ToAgent {
    /// The message as JSON text.
    pub fn to_json(&self) -> String {
        // Serialising these plain structs cannot fail (string keys only).
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// An attribute value as the gateway keeps it: strings verbatim, anything
/// else as compact JSON (`true`, `3`, `{"a":1}`).
pub fn attribute_value(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn start() -> ToAgent {
        let mut custom = Map::new();
        custom.insert("did".into(), json!("+14155550100"));
        ToAgent::Start {
            sequence_number: "1".into(),
            stream_sid: "MZ1".into(),
            start: Start {
                account_sid: "five9".into(),
                stream_sid: "MZ1".into(),
                call_sid: "tl-1".into(),
                tracks: vec!["inbound".into()],
                custom_parameters: custom,
                media_format: MediaFormat {
                    encoding: "audio/x-mulaw".into(),
                    sample_rate: 8000,
                    channels: 1,
                },
                sip_call_id: "abc@host".into(),
                from: "sip:a@b".into(),
                to: "sip:c@d".into(),
            },
        }
    }

    #[test]
    fn outgoing_events_have_the_media_stream_shapes() {
        let cases = [
            (
                ToAgent::Connected {
                    protocol: PROTOCOL.into(),
                    version: VERSION.into(),
                },
                json!({"event": "connected", "protocol": "Call", "version": "1.0.0"}),
            ),
            (
                start(),
                json!({"event": "start", "sequenceNumber": "1", "streamSid": "MZ1",
                    "start": {"accountSid": "five9", "streamSid": "MZ1", "callSid": "tl-1",
                        "tracks": ["inbound"], "customParameters": {"did": "+14155550100"},
                        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                        "sipCallId": "abc@host", "from": "sip:a@b", "to": "sip:c@d"}}),
            ),
            (
                ToAgent::Media {
                    sequence_number: "2".into(),
                    stream_sid: "MZ1".into(),
                    media: MediaOut {
                        track: "inbound".into(),
                        chunk: "1".into(),
                        timestamp: "0".into(),
                        payload: "/w==".into(),
                    },
                },
                json!({"event": "media", "sequenceNumber": "2", "streamSid": "MZ1",
                    "media": {"track": "inbound", "chunk": "1", "timestamp": "0", "payload": "/w=="}}),
            ),
            (
                ToAgent::Dtmf {
                    sequence_number: "3".into(),
                    stream_sid: "MZ1".into(),
                    dtmf: DtmfOut {
                        track: "inbound_track".into(),
                        digit: "5".into(),
                        duration_ms: 120,
                    },
                },
                json!({"event": "dtmf", "sequenceNumber": "3", "streamSid": "MZ1",
                    "dtmf": {"track": "inbound_track", "digit": "5", "durationMs": 120}}),
            ),
            (
                ToAgent::Mark {
                    sequence_number: "4".into(),
                    stream_sid: "MZ1".into(),
                    mark: MarkBody { name: "m1".into() },
                },
                json!({"event": "mark", "sequenceNumber": "4", "streamSid": "MZ1",
                    "mark": {"name": "m1"}}),
            ),
            (
                ToAgent::Stop {
                    sequence_number: "5".into(),
                    stream_sid: "MZ1".into(),
                    stop: StopOut {
                        account_sid: "five9".into(),
                        call_sid: "tl-1".into(),
                        reason: "caller-hangup".into(),
                    },
                },
                json!({"event": "stop", "sequenceNumber": "5", "streamSid": "MZ1",
                    "stop": {"accountSid": "five9", "callSid": "tl-1", "reason": "caller-hangup"}}),
            ),
        ];
        for (message, wire) in cases {
            let text = message.to_json();
            let parsed: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(parsed, wire, "{text}");
            let back: ToAgent = serde_json::from_str(&text).unwrap();
            assert_eq!(back, message);
        }
    }

    #[test]
    fn the_fast_media_paths_match_the_general_ones() {
        let audio: Vec<u8> = (0..=255).collect();
        let fast = media_json(7, "MZ00ff", 3, 40, &audio);
        let general = ToAgent::Media {
            sequence_number: "7".into(),
            stream_sid: "MZ00ff".into(),
            media: MediaOut {
                track: "inbound".into(),
                chunk: "3".into(),
                timestamp: "40".into(),
                payload: BASE64.encode(&audio),
            },
        };
        assert_eq!(fast, general.to_json());

        for (text, want) in [
            (
                r#"{"event":"media","streamSid":"MZ1","media":{"payload":"AAA="}}"#,
                Some("AAA="),
            ),
            (
                r#"{"media":{"track":"outbound","payload":"a\/b"},"event":"media"}"#,
                Some("a/b"),
            ),
            (r#"{"event":"mark","mark":{"name":"x"}}"#, None),
            (r#"{"event":"media"}"#, None),
            ("nonsense", None),
        ] {
            assert_eq!(media_payload(text).as_deref(), want, "{text}");
        }
    }

    /// Found by the `ws_json` fuzz target: without serde_json's exact
    /// float parsing, `11E33` read as one f64 and its printed form as
    /// another, so an agent's numeric attribute changed on the way through.
    #[test]
    fn numbers_in_control_messages_survive_printing_and_reading_again() {
        for number in [
            "11E33",
            "0.92",
            "1.0999999999999999e34",
            "5e-324",
            "123456789.123456789",
        ] {
            let text = format!(
                r#"{{"event":"trunkline","action":"end","attributes":{{"score":{number}}}}}"#
            );
            let first = FromAgent::parse(&text).expect("parses");
            let printed = serde_json::to_string(&first).expect("prints");
            assert_eq!(
                FromAgent::parse(&printed).expect("parses again"),
                first,
                "{number}"
            );
        }
    }

    #[test]
    fn incoming_events_parse_and_print_back() {
        let cases = [
            (
                r#"{"event":"media","streamSid":"MZ1","media":{"payload":"AAA="}}"#,
                FromAgent::Media {
                    media: MediaIn {
                        payload: "AAA=".into(),
                    },
                },
            ),
            (
                r#"{"event":"mark","streamSid":"MZ1","mark":{"name":"greeting"}}"#,
                FromAgent::Mark {
                    mark: MarkBody {
                        name: "greeting".into(),
                    },
                },
            ),
            (r#"{"event":"clear","streamSid":"MZ1"}"#, FromAgent::Clear),
            (r#"{"event":"stop"}"#, FromAgent::Stop),
            (r#"{"event":"connected","protocol":"x"}"#, FromAgent::Other),
            (
                r#"{"event":"trunkline","action":"set_attributes","attributes":{"five9.route_reason":"sale","score":3}}"#,
                FromAgent::Trunkline(Control::SetAttributes {
                    attributes: json!({"five9.route_reason": "sale", "score": 3})
                        .as_object()
                        .cloned()
                        .unwrap(),
                }),
            ),
            (
                r#"{"event":"trunkline","action":"end"}"#,
                FromAgent::Trunkline(Control::End {
                    attributes: Map::new(),
                }),
            ),
            (
                r#"{"event":"trunkline","action":"transfer","destination":"sales","attributes":{"a":"b"}}"#,
                FromAgent::Trunkline(Control::Transfer {
                    destination: "sales".into(),
                    attributes: json!({"a": "b"}).as_object().cloned().unwrap(),
                }),
            ),
            (
                r#"{"event":"trunkline","action":"dial_transfer","mode":"warm","to":"+18005550199","outbound":"five9-out"}"#,
                FromAgent::Trunkline(Control::DialTransfer {
                    mode: "warm".into(),
                    to: "+18005550199".into(),
                    outbound: "five9-out".into(),
                }),
            ),
            (
                r#"{"event":"trunkline","action":"complete_transfer"}"#,
                FromAgent::Trunkline(Control::CompleteTransfer),
            ),
            (
                r#"{"event":"trunkline","action":"cancel_transfer"}"#,
                FromAgent::Trunkline(Control::CancelTransfer),
            ),
        ];
        for (text, want) in cases {
            let got = FromAgent::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(got, want, "{text}");
            let again = FromAgent::parse(&serde_json::to_string(&got).unwrap()).unwrap();
            assert_eq!(again, want);
        }
    }

    #[test]
    fn malformed_messages_are_errors_not_panics() {
        for text in [
            "",
            "not json",
            "[]",
            r#"{"no_event":1}"#,
            r#"{"event":"media"}"#,
            r#"{"event":"media","media":{"payload":7}}"#,
            r#"{"event":"trunkline","action":"dance"}"#,
            r#"{"event":"trunkline","action":"transfer"}"#,
        ] {
            assert!(FromAgent::parse(text).is_err(), "{text}");
        }
    }

    #[test]
    fn control_limits_match_the_control_api() {
        let ok = |text: &str| match FromAgent::parse(text).unwrap() {
            FromAgent::Trunkline(c) => c.check(),
            other => panic!("{other:?}"),
        };
        assert!(ok(r#"{"event":"trunkline","action":"end","attributes":{"a":"b"}}"#).is_ok());
        assert!(ok(r#"{"event":"trunkline","action":"dial_transfer","mode":"sideways","to":"1","outbound":"o"}"#).is_err());
        assert!(ok("{\"event\":\"trunkline\",\"action\":\"dial_transfer\",\"mode\":\"cold\",\"to\":\"+1\\r\\nX: y\",\"outbound\":\"o\"}").is_err());
        let long = "x".repeat(MAX_VALUE + 1);
        for bad in [
            format!(r#"{{"event":"trunkline","action":"end","attributes":{{"a":"{long}"}}}}"#),
            r#"{"event":"trunkline","action":"end","attributes":{"a":"line\r\nX-Evil: 1"}}"#.into(),
            r#"{"event":"trunkline","action":"set_attributes","attributes":{"":"b"}}"#.into(),
            r#"{"event":"trunkline","action":"transfer","destination":" "}"#.into(),
        ] {
            assert!(ok(&bad).is_err(), "{bad}");
        }
        let many: Map<String, Value> = (0..=MAX_ATTRIBUTES)
            .map(|i| (format!("k{i}"), json!("v")))
            .collect();
        assert!(Control::SetAttributes { attributes: many }.check().is_err());
    }

    #[test]
    fn attribute_values_keep_strings_verbatim() {
        assert_eq!(attribute_value(&json!("a b")), "a b");
        assert_eq!(attribute_value(&json!(3)), "3");
        assert_eq!(attribute_value(&json!(true)), "true");
        assert_eq!(attribute_value(&json!({"k": [1]})), r#"{"k":[1]}"#);
    }
}
