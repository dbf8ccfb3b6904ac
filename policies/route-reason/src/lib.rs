//! # route-reason: Five9's `X-RouteReason` dialect
//!
//! Connects each call to the agent for its dialed number (DID), and when the
//! AI leg ends hands Five9 the routing headers its IVR script reads with
//! `GET(FromIVA, "X-RouteReason")`: `X-RouteReason`, `X-RouteType`,
//! `X-RouteValue` and `X-MetaData` (a JSON object), the pattern LiveKit's
//! Five9 guide describes.
//!
//! ## Config keys
//!
//! | key | value |
//! |---|---|
//! | `did.<number>` | the agent target for a dialed number, e.g. `did.+14155550100 = sip:bot@agents.example.com`; the number matches with or without its leading `+` |
//! | `default_agent` | optional: the target for numbers not in the table; without it an unknown number is rejected with **404** |
//! | `dtmf_header` | optional: a header (e.g. `X-DTMF`) that carries the digits the caller pressed during the AI leg on the BYE; they are always in the handoff data as `dtmf` |
//!
//! ## Where the routing values come from
//!
//! The agent reports each value in one of two ways, and both reach Five9:
//!
//! | header on the agent's own BYE | or call attribute |
//! |---|---|
//! | `X-RouteReason` | `five9.route_reason` |
//! | `X-RouteType` | `five9.route_type` |
//! | `X-RouteValue` | `five9.route_value` |
//! | `X-MetaData` (JSON) | `five9.metadata` (JSON) plus one `meta.<key>` attribute per field |
//!
//! A transfer the agent asks for through the control API (`POST
//! /v1/calls/{id}/transfer`, or a WebSocket agent's `transfer` message)
//! arrives as the attribute `transfer.destination`: without route values of
//! its own it becomes `X-RouteType: transfer` and `X-RouteValue: <destination>`.
//!
//! When both are present the **BYE header wins**: it is the agent's last
//! word, written as it hung up, while an attribute may be a provisional
//! value set earlier in the conversation. (An agent that maps attributes to
//! BYE headers itself sends the same value both ways anyway.) Within the
//! attributes, `meta.<key>` fields override the same keys of
//! `five9.metadata`, being the more specific. A `meta.<key>` value keeps
//! the JSON type its setter gave it: `{"meta.score": 0.92}` through the
//! control API is `"score":0.92` in `X-MetaData`, a string stays a string
//! (see `attributes::json_value` for the exact rule).
//!
//! Without any reported reason, `X-RouteReason` carries why the leg ended
//! (`agent-hangup`, `caller-hangup`, `error`, ...), so Five9's script can
//! always branch on it.
//!
//! ## Contained or not
//!
//! A route type that asks for a person (`transfer`, `agent`, `queue`,
//! `skill`, `escalate`) means not contained, with the route value as the
//! destination. Any other route type means contained. With no route type,
//! the call counts as contained unless the leg ended in an error, a media
//! timeout or the maximum duration.
//!
//! The same values are filed in the handoff data (`route_reason`,
//! `route_type`, `route_value`, `metadata`) for when the caller hung up
//! first and no BYE header can reach Five9.

use trunkline_guest_sdk::attributes::json_value;
use trunkline_guest_sdk::{
    Call, CallEnd, Decision, EndReason, Map, Outcome, Policy, Value, config, export_policy, log,
};

/// Route types that hand the caller to a person.
const HANDOFF_TYPES: [&str; 5] = ["transfer", "agent", "queue", "skill", "escalate"];

/// The route-reason policy.
pub struct RouteReason;

impl Policy for RouteReason {
    fn route(call: &Call) -> Decision {
        let dialed = call.dialed.as_deref().unwrap_or_default();
        match agent_for(dialed) {
            Some(target) => Decision::connect(target).attribute("did", dialed),
            None => {
                log::warn(format!("no agent for dialed number {dialed:?}"));
                Decision::reject(404, "Unknown number")
            }
        }
    }

    fn conclude(end: &CallEnd) -> Outcome {
        let reason = end
            .reported("X-RouteReason", "five9.route_reason")
            .unwrap_or(end.reason.as_str());
        // A transfer asked through the control API (or a WebSocket agent's
        // control message) without route values of its own.
        let transfer = end
            .attribute("transfer.destination")
            .filter(|d| !d.trim().is_empty());
        let route_type = end
            .reported("X-RouteType", "five9.route_type")
            .or(transfer.map(|_| "transfer"));
        let route_value = end
            .reported("X-RouteValue", "five9.route_value")
            .or(transfer);
        let metadata = Metadata::of(end);

        let hands_off = route_type.is_some_and(|t| {
            HANDOFF_TYPES
                .iter()
                .any(|h| t.trim().eq_ignore_ascii_case(h))
        });
        let contained = match route_type {
            Some(_) => !hands_off,
            None => !matches!(
                end.reason,
                EndReason::Error | EndReason::MediaTimeout | EndReason::MaxDuration
            ),
        };
        let destination = if hands_off {
            route_value.unwrap_or_default()
        } else {
            ""
        };

        let mut outcome = Outcome::bye()
            .contained(contained)
            .destination(destination)
            .header("X-RouteReason", reason)
            .handoff("route_reason", reason);
        if let Some(t) = route_type {
            outcome = outcome.header("X-RouteType", t).handoff("route_type", t);
        }
        if let Some(v) = route_value {
            outcome = outcome.header("X-RouteValue", v).handoff("route_value", v);
        }
        if let Some(meta) = metadata {
            outcome = outcome
                .header("X-MetaData", meta.header)
                .handoff("metadata", meta.value);
        }
        // Digits the caller pressed during the AI leg: always in the handoff
        // data; on the BYE only when the operator names a header for them
        // (they may be account numbers, so not by default).
        if !end.dtmf.is_empty() {
            outcome = outcome.handoff("dtmf", end.dtmf.as_str());
            if let Some(name) = config::get("dtmf_header").filter(|n| !n.is_empty()) {
                outcome = outcome.header(name, end.dtmf.as_str());
            }
        }
        outcome
    }
}

/// The agent target for a dialed number: the DID table (with or without
/// the leading `+`), then `default_agent`.
fn agent_for(dialed: &str) -> Option<String> {
    if !dialed.is_empty() {
        let alternate = match dialed.strip_prefix('+') {
            Some(bare) => bare.to_owned(),
            None => format!("+{dialed}"),
        };
        for number in [dialed, alternate.as_str()] {
            if let Some(target) = config::get(&format!("did.{number}")) {
                return Some(target);
            }
        }
    }
    config::get("default_agent")
}

/// `X-MetaData` as sent on the BYE and as filed in the handoff data.
struct Metadata {
    /// The header value: compact JSON, or the agent's own header verbatim.
    header: String,
    /// The JSON value for the handoff data.
    value: Value,
}

impl Metadata {
    /// The agent's `X-MetaData` BYE header when present, else
    /// `five9.metadata` merged with the `meta.*` attributes; `None` when
    /// there is nothing to send.
    fn of(end: &CallEnd) -> Option<Metadata> {
        if let Some(text) = end.agent_bye_header("X-MetaData") {
            // Five9 stores the header as text: forward exactly what the
            // agent wrote, and parse it only for the handoff data.
            let value = parse_json(text).unwrap_or_else(|| Value::from(text));
            return Some(Metadata {
                header: text.to_owned(),
                value,
            });
        }

        let mut object = Map::new();
        if let Some(text) = end
            .attribute("five9.metadata")
            .filter(|t| !t.trim().is_empty())
        {
            match parse_json(text) {
                Some(Value::Object(fields)) => object = fields,
                Some(other) => {
                    object.insert("value".to_owned(), other);
                }
                None => {
                    log::warn("five9.metadata is not JSON; sent as metadata.value text");
                    object.insert("value".to_owned(), Value::from(text));
                }
            }
        }
        // `meta.score` set to 0.92 by the control API is the number 0.92.
        for (key, value) in end.attributes.with_prefix("meta.") {
            object.insert(key.to_owned(), json_value(value));
        }
        if object.is_empty() {
            return None;
        }
        let value = Value::Object(object);
        Some(Metadata {
            header: value.to_string(),
            value,
        })
    }
}

/// Parses JSON text, `None` when it is not JSON.
fn parse_json(text: &str) -> Option<Value> {
    text.parse::<Value>().ok()
}

export_policy!(RouteReason);

#[cfg(test)]
mod tests {
    use super::*;
    use trunkline_guest_sdk::json;
    use trunkline_guest_sdk::testing::{CallEndBuilder, call_end, five9_call, with_config};

    const CONFIG: &[(&str, &str)] = &[
        ("did.+14155550100", "sip:billing-bot@agents.example.com"),
        ("did.18005550199", "wss://agents.example.com/sales"),
    ];

    #[test]
    fn did_table() {
        let cases: &[(&str, Result<&str, u16>)] = &[
            ("+14155550100", Ok("sip:billing-bot@agents.example.com")),
            ("14155550100", Ok("sip:billing-bot@agents.example.com")),
            ("+18005550199", Ok("wss://agents.example.com/sales")),
            ("+19995550000", Err(404)),
        ];
        for (dialed, expected) in cases {
            let call = five9_call().dialed(dialed).build();
            let decision = with_config(CONFIG, || RouteReason::route(&call));
            match expected {
                Ok(target) => {
                    assert_eq!(decision.target(), Some(*target), "{dialed}");
                    assert_eq!(decision.attribute_value("did"), Some(*dialed));
                }
                Err(status) => assert_eq!(decision.status(), Some(*status), "{dialed}"),
            }
        }
    }

    #[test]
    fn default_agent_catches_unknown_numbers_only_when_configured() {
        let mut config = CONFIG.to_vec();
        config.push(("default_agent", "builtin:menu"));
        let unknown = five9_call().dialed("+19995550000").build();
        let decision = with_config(&config, || RouteReason::route(&unknown));
        assert_eq!(decision.target(), Some("builtin:menu"));
        let no_user = five9_call().no_dialed().build();
        assert_eq!(
            with_config(CONFIG, || RouteReason::route(&no_user)).status(),
            Some(404)
        );
    }

    fn end() -> CallEndBuilder {
        let call = five9_call().dialed("+14155550100").build();
        let decision = with_config(CONFIG, || RouteReason::route(&call));
        call_end(call).routed(&decision)
    }

    #[test]
    fn a_requested_transfer_becomes_route_type_transfer() {
        let outcome = RouteReason::conclude(
            &end()
                .attribute("contained", "false")
                .attribute("destination", "billing_queue")
                .attribute("transfer.destination", "billing_queue")
                .reason(EndReason::AgentRequest)
                .build(),
        );
        assert_eq!(outcome.header_value("X-RouteReason"), Some("agent-request"));
        assert_eq!(outcome.header_value("X-RouteType"), Some("transfer"));
        assert_eq!(outcome.header_value("X-RouteValue"), Some("billing_queue"));
        assert!(!outcome.contained);
        assert_eq!(outcome.destination, "billing_queue");

        // Route values the agent reported itself win.
        let own = RouteReason::conclude(
            &end()
                .attribute("transfer.destination", "billing_queue")
                .attribute("five9.route_type", "queue")
                .attribute("five9.route_value", "Sales")
                .build(),
        );
        assert_eq!(own.header_value("X-RouteType"), Some("queue"));
        assert_eq!(own.header_value("X-RouteValue"), Some("Sales"));
    }

    #[test]
    fn attributes_become_the_five9_headers() {
        let outcome = RouteReason::conclude(
            &end()
                .attribute("five9.route_reason", "billing_question")
                .attribute("five9.route_type", "transfer")
                .attribute("five9.route_value", "billing_skill")
                .attribute(
                    "five9.metadata",
                    r#"{"intent":"billing","confidence":0.91}"#,
                )
                .attribute("meta.account", "000123456")
                .attribute("meta.score", "0.92")
                .attribute("meta.escalated", "false")
                .build(),
        );
        assert_eq!(
            outcome.header_value("X-RouteReason"),
            Some("billing_question")
        );
        assert_eq!(outcome.header_value("X-RouteType"), Some("transfer"));
        assert_eq!(outcome.header_value("X-RouteValue"), Some("billing_skill"));
        let meta: Value = outcome.header_value("X-MetaData").unwrap().parse().unwrap();
        assert_eq!(
            meta,
            json!({"intent": "billing", "confidence": 0.91, "account": "000123456",
                   "score": 0.92, "escalated": false})
        );
        assert!(!outcome.contained);
        assert_eq!(outcome.destination, "billing_skill");
        assert_eq!(outcome.handoff_value("metadata"), Some(&meta));
        assert_eq!(
            outcome.handoff_value("route_value").unwrap(),
            "billing_skill"
        );
    }

    #[test]
    fn agent_bye_headers_win_over_attributes() {
        let outcome = RouteReason::conclude(
            &end()
                .attribute("five9.route_reason", "provisional")
                .attribute("five9.route_type", "transfer")
                .attribute("meta.intent", "billing")
                .agent_bye_header("X-RouteReason", "resolved")
                .agent_bye_header("X-RouteType", "end")
                .agent_bye_header("X-MetaData", r#"{"intent":"faq"}"#)
                .build(),
        );
        assert_eq!(outcome.header_value("X-RouteReason"), Some("resolved"));
        assert_eq!(outcome.header_value("X-RouteType"), Some("end"));
        assert_eq!(
            outcome.header_value("X-MetaData"),
            Some(r#"{"intent":"faq"}"#)
        );
        assert_eq!(
            outcome.handoff_value("metadata"),
            Some(&json!({"intent": "faq"}))
        );
        assert!(outcome.contained);
        assert_eq!(outcome.destination, "");
    }

    #[test]
    fn contained_follows_route_type_then_end_reason() {
        let cases = [
            (Some("transfer"), EndReason::AgentHangup, false),
            (Some("Queue"), EndReason::AgentHangup, false),
            (Some("skill"), EndReason::CallerHangup, false),
            (Some("end"), EndReason::Error, true),
            (None, EndReason::AgentHangup, true),
            (None, EndReason::AgentRequest, true),
            (None, EndReason::CallerHangup, true),
            (None, EndReason::Error, false),
            (None, EndReason::MediaTimeout, false),
            (None, EndReason::MaxDuration, false),
        ];
        for (route_type, reason, contained) in cases {
            let mut b = end().reason(reason).attribute("five9.route_value", "v");
            if let Some(t) = route_type {
                b = b.attribute("five9.route_type", t);
            }
            let outcome = RouteReason::conclude(&b.build());
            assert_eq!(outcome.contained, contained, "{route_type:?} {reason}");
        }
    }

    #[test]
    fn nothing_reported_still_tells_five9_why() {
        let outcome = RouteReason::conclude(&end().reason(EndReason::MediaTimeout).build());
        assert_eq!(outcome.headers.len(), 1);
        assert_eq!(outcome.header_value("X-RouteReason"), Some("media-timeout"));
        assert_eq!(outcome.handoff_value("metadata"), None);
    }

    #[test]
    fn metadata_that_is_not_an_object_is_kept() {
        let outcome =
            RouteReason::conclude(&end().attribute("five9.metadata", "plain note").build());
        assert_eq!(
            outcome.handoff_value("metadata"),
            Some(&json!({"value": "plain note"}))
        );
        let outcome = RouteReason::conclude(&end().attribute("five9.metadata", "[1,2]").build());
        assert_eq!(
            outcome.header_value("X-MetaData"),
            Some(r#"{"value":[1,2]}"#)
        );
    }

    #[test]
    fn dtmf_goes_to_the_handoff_and_to_a_header_only_when_named() {
        let pressed = end().dtmf("12#").build();
        let quiet = with_config(CONFIG, || RouteReason::conclude(&pressed));
        assert_eq!(quiet.handoff_value("dtmf"), Some(&json!("12#")));
        assert_eq!(quiet.header_value("X-DTMF"), None);

        let mut config = CONFIG.to_vec();
        config.push(("dtmf_header", "X-DTMF"));
        let named = with_config(&config, || RouteReason::conclude(&pressed));
        assert_eq!(named.header_value("X-DTMF"), Some("12#"));

        let none = with_config(&config, || RouteReason::conclude(&end().build()));
        assert_eq!(none.header_value("X-DTMF"), None);
        assert_eq!(none.handoff_value("dtmf"), None);
    }
}
