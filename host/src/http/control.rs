//! The control API: agents (on any connector) read their call and report
//! its outcome: set attributes, end it, transfer it. The attributes feed
//! the policy's `conclude`, which turns them into the headers Five9 gets.
//!
//! | method and path | body | answer |
//! |---|---|---|
//! | `GET /v1/calls` | — | `200 {"calls": [CallInfo…]}` (the key's tenant only) |
//! | `POST /v1/calls` | `{"to", "outbound", "agent"?, "attributes"?, "headers"?, "caller_id"?, "ring_timeout_secs"?}` | `201 {"call_id", "state": "dialling"}`; `422` (unknown trunk, a number that cannot be dialled, a bad header, the policy refused), `429` (the trunk's `max_concurrent`) |
//! | `GET /v1/calls/{call_id}` | — | `200 CallInfo` |
//! | `POST /v1/calls/{call_id}/attributes` | `{"attributes": {"k": "v"}}` | `200 CallInfo` (updated) |
//! | `POST /v1/calls/{call_id}/end` | optional `{"attributes": {…}}` | `202 {"call_id", "state": "ending"}` |
//! | `POST /v1/calls/{call_id}/transfer` | `{"destination": "…", "attributes": {…}}` | `202 {"call_id", "state": "ending", "destination"}`: hand the caller back to Five9 (`conclude` makes it the BYE's headers or a REFER) |
//! | `POST /v1/calls/{call_id}/dtmf` | `{"digits": "1234#", "to": "caller" \| "target"}` | `202 {"call_id", "digits", "to"}`: RFC 4733 key presses (100 ms each, 60 ms apart, the end packet three times) toward the caller (default) or the transfer target; `422` (not a key, more than 64, a side without telephone-event, no target), `409` (no media yet) |
//! | `POST /v1/calls/{call_id}/transfer/complete` | — | `202 {"call_id", "state": "connected"}`: a warm transfer's brief is over, the caller talks to the target, the agent leaves; `409` without a brief |
//! | `POST /v1/calls/{call_id}/transfer/cancel` | — | `202 {"call_id", "state": "connected"}`: the target is dropped (CANCEL while it rings), the caller stays with the agent; `409` without a transfer |
//! | `POST /v1/calls/{call_id}/transfer` | `{"mode": "cold", "to": "+1…" \| "sip:…", "outbound": "five9-out"}` | `202 {"call_id", "state": "transferring", "mode", "to"}`: Trunkline dials `to` and bridges the caller on its answer; `transfer.result` in `GET` follows it; `409` (not answered, ending, another transfer), `422` (unknown trunk, a number or URI that cannot be dialled, a bare extension) |
//!
//! Attribute values are strings; numbers and booleans are taken as their
//! JSON text (`true` → `"true"`), objects and arrays as compact JSON text
//! (so `"five9.metadata": {"intent": "billing"}` works as-is); `null` is
//! refused.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::AppState;
use super::auth::{Caller, Scope};
use super::body::{IdPath, JsonBody, OptionalJsonBody};
use super::error::ApiError;
use crate::b2bua::{
    CallInfo, ControlOrder, OriginateError, OriginateRequest, TransferMode, TransferRequest,
};
use crate::policy::Attribute;

/// Most attributes one request may set.
pub(crate) const MAX_ATTRIBUTES: usize = 64;
/// Longest attribute key, bytes.
pub(crate) const MAX_KEY: usize = 128;
/// Longest attribute value, bytes: a SIP header value's limit, since
/// policies copy values into headers.
pub(crate) const MAX_VALUE: usize = 4096;
/// Longest transfer destination, bytes.
pub(crate) const MAX_DESTINATION: usize = 1024;

/// `POST .../attributes` and `POST .../end`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AttributesBody {
    /// Key → value.
    pub attributes: Option<Map<String, Value>>,
}

/// `POST .../transfer`: a hand-back to Five9 (`destination`), or a
/// transfer Trunkline places (`mode`, `to`, `outbound`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TransferBody {
    /// Hand-back: the queue, skill or `sip:` URI the caller should go to.
    #[serde(default)]
    pub destination: Option<String>,
    /// Further attributes, set first.
    #[serde(default)]
    pub attributes: Map<String, Value>,
    /// `cold` or `warm`: Trunkline dials `to` and bridges the caller.
    #[serde(default)]
    pub mode: Option<String>,
    /// The number or `sip:` URI to dial.
    #[serde(default)]
    pub to: Option<String>,
    /// The `[[outbound]]` trunk to dial it through.
    #[serde(default)]
    pub outbound: Option<String>,
}

/// `POST /v1/calls`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OriginateBody {
    /// The number or `sip:` URI to call.
    pub to: String,
    /// The `[[outbound]]` trunk.
    pub outbound: String,
    /// The agent target; absent: the policy decides.
    #[serde(default)]
    pub agent: Option<String>,
    /// Attributes the call starts with.
    #[serde(default)]
    pub attributes: Map<String, Value>,
    /// `X-` headers for our INVITE: name → value.
    #[serde(default)]
    pub headers: Map<String, Value>,
    /// The From user for this call.
    #[serde(default)]
    pub caller_id: Option<String>,
    /// How long the number may ring (1–300 s).
    #[serde(default)]
    pub ring_timeout_secs: Option<u64>,
}

/// The answer to `POST /v1/calls`.
#[derive(Debug, Serialize)]
pub(crate) struct Placed {
    /// The new call.
    pub call_id: String,
    /// Always `dialling`: follow it with `GET /v1/calls/{call_id}`.
    pub state: &'static str,
}

/// Longest ring timeout a request may ask for, seconds.
const MAX_RING_SECS: u64 = 300;

/// `GET /v1/calls`.
#[derive(Debug, Serialize)]
pub(crate) struct CallList {
    /// The key's tenant's active calls.
    pub calls: Vec<CallInfo>,
}

/// The answer to `end` and `transfer`: the BYE or REFER goes out
/// asynchronously, after `conclude`.
#[derive(Debug, Serialize)]
pub(crate) struct Ending {
    /// The call.
    pub call_id: String,
    /// Always `ending`.
    pub state: &'static str,
    /// For a transfer: where the caller goes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
}

/// Checks and converts a JSON attribute object.
pub(crate) fn attributes(map: Map<String, Value>) -> Result<Vec<Attribute>, ApiError> {
    if map.len() > MAX_ATTRIBUTES {
        return Err(ApiError::InvalidBody(format!(
            "{} attributes; at most {MAX_ATTRIBUTES} per request",
            map.len()
        )));
    }
    map.into_iter()
        .map(|(key, value)| {
            check_text("attribute key", &key, MAX_KEY)?;
            if key.trim().is_empty() {
                return Err(ApiError::InvalidBody("an attribute key is empty".into()));
            }
            let value = match value {
                Value::String(s) => s,
                Value::Null => {
                    return Err(ApiError::InvalidBody(format!(
                        "attribute {key:?} is null; give a string"
                    )));
                }
                other => other.to_string(),
            };
            check_text(&format!("attribute {key:?}"), &value, MAX_VALUE)?;
            Ok(Attribute { key, value })
        })
        .collect()
}

fn check_text(what: &str, s: &str, max: usize) -> Result<(), ApiError> {
    if s.len() > max {
        return Err(ApiError::InvalidBody(format!(
            "{what} is {} bytes; at most {max}",
            s.len()
        )));
    }
    if s.chars().any(char::is_control) {
        // Policies copy values into SIP headers, where CR/LF would end the
        // header: refuse here, with a clear error, rather than have the
        // outcome fail validation at the end of the call.
        return Err(ApiError::InvalidBody(format!(
            "{what} contains control characters (CR, LF, tab, ...)"
        )));
    }
    Ok(())
}

/// The call `call_id`, if the key may see it. Another tenant's call is
/// answered exactly like an unknown one, after the same work: the core
/// filters by tenant in the same single look-up, so not even the latency
/// tells one tenant that another's call exists.
async fn visible_call(
    state: &AppState,
    caller: &Caller,
    call_id: &str,
) -> Result<CallInfo, ApiError> {
    let tenant = match &caller.scope {
        Scope::All => None,
        Scope::Tenant(t) => Some(t.as_str()),
    };
    state
        .api
        .gateway
        .call(call_id, tenant)
        .await?
        .ok_or_else(|| ApiError::NotFound("no active call has this id".into()))
}

/// `GET /v1/calls`.
pub(crate) async fn list(State(state): State<AppState>, caller: Caller) -> Json<CallList> {
    let calls = state
        .api
        .gateway
        .calls()
        .await
        .into_iter()
        .filter(|c| caller.sees(&c.tenant))
        .collect();
    Json(CallList { calls })
}

/// `POST /v1/calls`: places a call through an outbound trunk.
pub(crate) async fn originate(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<OriginateBody>,
) -> Result<impl IntoResponse, ApiError> {
    check_text("`to`", &body.to, MAX_DESTINATION)?;
    check_text("`outbound`", &body.outbound, MAX_KEY)?;
    if let Some(agent) = &body.agent {
        check_text("`agent`", agent, MAX_DESTINATION)?;
        if agent.trim().is_empty() {
            return Err(ApiError::InvalidBody("`agent` is empty".into()));
        }
    }
    if let Some(secs) = body.ring_timeout_secs
        && !(1..=MAX_RING_SECS).contains(&secs)
    {
        return Err(ApiError::InvalidBody(format!(
            "`ring_timeout_secs` is {secs}; give 1 to {MAX_RING_SECS}"
        )));
    }
    let headers = attributes(body.headers)
        .map_err(|e| ApiError::InvalidBody(e.to_string().replace("attribute", "header")))?
        .into_iter()
        .map(|a| crate::policy::Header {
            name: a.key,
            value: a.value,
        })
        .collect();
    let request = OriginateRequest {
        to: body.to,
        outbound: body.outbound,
        agent: body.agent.map(|a| a.trim().to_owned()),
        attributes: attributes(body.attributes)?,
        headers,
        caller_id: body.caller_id,
        ring_timeout_secs: body.ring_timeout_secs,
        tenant: match &caller.scope {
            Scope::All => None,
            Scope::Tenant(t) => Some(t.clone()),
        },
    };
    let call_id = state
        .api
        .gateway
        .originate(request)
        .await
        .map_err(|e| match e {
            OriginateError::AtCapacity { .. } => ApiError::TooManyRequests(e.to_string()),
            OriginateError::Unavailable(_) => ApiError::Unavailable(e.to_string()),
            OriginateError::NoTrunk(_)
            | OriginateError::Target(_)
            | OriginateError::Invalid(_)
            | OriginateError::Refused { .. } => ApiError::InvalidBody(e.to_string()),
        })?;
    tracing::info!(%call_id, key = %caller.name, "control API: call placed");
    Ok((
        StatusCode::CREATED,
        Json(Placed {
            call_id,
            state: "dialling",
        }),
    ))
}

/// `GET /v1/calls/{call_id}`: the active call; once it has ended, its
/// record with `state: "ended"` (the end reason, and for a call that never
/// connected the failure: kind and SIP status).
pub(crate) async fn get(
    State(state): State<AppState>,
    caller: Caller,
    IdPath(call_id): IdPath,
) -> Result<Json<Value>, ApiError> {
    match visible_call(&state, &caller, &call_id).await {
        Ok(info) => serde_json::to_value(info)
            .map(Json)
            .map_err(|e| ApiError::Internal(e.to_string())),
        Err(ApiError::NotFound(why)) => {
            let Some(Value::Object(record)) =
                super::handoff::ended_call(&state, &caller, &call_id).await
            else {
                return Err(ApiError::NotFound(why));
            };
            let mut ended = Map::new();
            ended.insert("call_id".into(), Value::String(call_id));
            ended.insert("state".into(), Value::String("ended".into()));
            for field in ["end_reason", "failure", "answered_ms", "ended_ms"] {
                if let Some(v) = record.get(field) {
                    ended.insert(field.into(), v.clone());
                }
            }
            ended.insert("outcome".into(), Value::Object(record));
            Ok(Json(Value::Object(ended)))
        }
        Err(e) => Err(e),
    }
}

/// `POST /v1/calls/{call_id}/attributes`.
pub(crate) async fn set_attributes(
    State(state): State<AppState>,
    caller: Caller,
    IdPath(call_id): IdPath,
    JsonBody(body): JsonBody<AttributesBody>,
) -> Result<Json<CallInfo>, ApiError> {
    let map = body.attributes.ok_or_else(|| {
        ApiError::InvalidBody("missing field `attributes` (an object of key → value)".into())
    })?;
    let attrs = attributes(map)?;
    visible_call(&state, &caller, &call_id).await?;
    let count = attrs.len();
    state
        .api
        .gateway
        .control(&call_id, ControlOrder::SetAttributes(attrs))
        .await?;
    tracing::info!(%call_id, key = %caller.name, count, "control API: attributes set");
    visible_call(&state, &caller, &call_id).await.map(Json)
}

/// `POST /v1/calls/{call_id}/end`.
pub(crate) async fn end(
    State(state): State<AppState>,
    caller: Caller,
    IdPath(call_id): IdPath,
    OptionalJsonBody(body): OptionalJsonBody<AttributesBody>,
) -> Result<impl IntoResponse, ApiError> {
    let attrs = attributes(body.attributes.unwrap_or_default())?;
    visible_call(&state, &caller, &call_id).await?;
    state
        .api
        .gateway
        .control(&call_id, ControlOrder::End(attrs))
        .await?;
    tracing::info!(%call_id, key = %caller.name, "control API: end");
    Ok((
        StatusCode::ACCEPTED,
        Json(Ending {
            call_id,
            state: "ending",
            destination: None,
        }),
    ))
}

/// The answer to a transfer Trunkline places: it goes on asynchronously;
/// `GET /v1/calls/{call_id}` shows its `transfer.result`.
#[derive(Debug, Serialize)]
pub(crate) struct Transferring {
    /// The call.
    pub call_id: String,
    /// Always `transferring`.
    pub state: &'static str,
    /// `cold` or `warm`.
    pub mode: &'static str,
    /// The target as asked.
    pub to: String,
}

/// `POST /v1/calls/{call_id}/transfer`.
pub(crate) async fn transfer(
    State(state): State<AppState>,
    caller: Caller,
    IdPath(call_id): IdPath,
    JsonBody(body): JsonBody<TransferBody>,
) -> Result<axum::response::Response, ApiError> {
    if body.mode.is_some() || body.to.is_some() || body.outbound.is_some() {
        return bridge(state, caller, call_id, body)
            .await
            .map(IntoResponse::into_response);
    }
    let Some(destination) = body.destination else {
        return Err(ApiError::InvalidBody(
            "give `destination` (hand the caller back to Five9), or `mode`, `to` and `outbound` (Trunkline dials the target)".into(),
        ));
    };
    let destination = destination.trim().to_owned();
    if destination.is_empty() {
        return Err(ApiError::InvalidBody("`destination` is empty".into()));
    }
    check_text("`destination`", &destination, MAX_DESTINATION)?;
    let attrs = attributes(body.attributes)?;
    visible_call(&state, &caller, &call_id).await?;
    let order = ControlOrder::Transfer {
        destination: destination.clone(),
        attributes: attrs,
    };
    state.api.gateway.control(&call_id, order).await?;
    tracing::info!(%call_id, key = %caller.name, %destination, "control API: transfer");
    Ok((
        StatusCode::ACCEPTED,
        Json(Ending {
            call_id,
            state: "ending",
            destination: Some(destination),
        }),
    )
        .into_response())
}

/// A transfer Trunkline places: checks the body, then the core checks the
/// call (409), the trunk and the number (422).
async fn bridge(
    state: AppState,
    caller: Caller,
    call_id: String,
    body: TransferBody,
) -> Result<impl IntoResponse, ApiError> {
    if body.destination.is_some() {
        return Err(ApiError::InvalidBody(
            "`destination` (a hand-back) and `mode` (a transfer Trunkline dials) exclude each other".into(),
        ));
    }
    let mode = match body.mode.as_deref() {
        Some("cold") => TransferMode::Cold,
        Some("warm") => TransferMode::Warm,
        Some(other) => {
            return Err(ApiError::InvalidBody(format!(
                "`mode` is `{other}`; give `cold` or `warm`"
            )));
        }
        None => {
            return Err(ApiError::InvalidBody(
                "missing field `mode` (`cold` or `warm`)".into(),
            ));
        }
    };
    let to = body
        .to
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::InvalidBody("missing field `to` (a number or `sip:` URI)".into())
        })?;
    check_text("`to`", &to, MAX_DESTINATION)?;
    let outbound = body
        .outbound
        .filter(|o| !o.trim().is_empty())
        .ok_or_else(|| {
            ApiError::InvalidBody("missing field `outbound` (an [[outbound]] trunk)".into())
        })?;
    check_text("`outbound`", &outbound, MAX_KEY)?;
    if !body.attributes.is_empty() {
        return Err(ApiError::InvalidBody(
            "set attributes with POST .../attributes before a transfer Trunkline dials".into(),
        ));
    }
    visible_call(&state, &caller, &call_id).await?;
    let order = ControlOrder::Bridge(TransferRequest {
        mode,
        to: to.clone(),
        outbound,
    });
    state.api.gateway.control(&call_id, order).await?;
    tracing::info!(%call_id, key = %caller.name, mode = mode.as_str(), %to, "control API: transfer placed");
    Ok((
        StatusCode::ACCEPTED,
        Json(Transferring {
            call_id,
            state: "transferring",
            mode: mode.as_str(),
            to,
        }),
    ))
}

/// `POST .../dtmf`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DtmfBody {
    /// The keys.
    pub digits: String,
    /// `caller` (default) or `target`.
    #[serde(default)]
    pub to: Option<String>,
}

/// The answer to `dtmf`.
#[derive(Debug, Serialize)]
pub(crate) struct DtmfSent {
    /// The call.
    pub call_id: String,
    /// The keys queued.
    pub digits: String,
    /// `caller` or `target`.
    pub to: &'static str,
}

/// `POST /v1/calls/{call_id}/dtmf`.
pub(crate) async fn dtmf(
    State(state): State<AppState>,
    caller: Caller,
    IdPath(call_id): IdPath,
    JsonBody(body): JsonBody<DtmfBody>,
) -> Result<impl IntoResponse, ApiError> {
    let to_target = match body.to.as_deref() {
        None | Some("caller") => false,
        Some("target") => true,
        Some(other) => {
            return Err(ApiError::InvalidBody(format!(
                "`to` is `{other}`; give `caller` or `target`"
            )));
        }
    };
    check_text("`digits`", &body.digits, MAX_KEY)?;
    visible_call(&state, &caller, &call_id).await?;
    let order = ControlOrder::Dtmf {
        digits: body.digits.clone(),
        to_target,
    };
    state.api.gateway.control(&call_id, order).await?;
    tracing::info!(%call_id, key = %caller.name, to_target, "control API: key presses");
    Ok((
        StatusCode::ACCEPTED,
        Json(DtmfSent {
            call_id,
            digits: body.digits,
            to: if to_target { "target" } else { "caller" },
        }),
    ))
}

/// The answer to `transfer/complete` and `transfer/cancel`.
#[derive(Debug, Serialize)]
pub(crate) struct TransferDone {
    /// The call.
    pub call_id: String,
    /// Always `connected`: the call goes on (with the target or the agent).
    pub state: &'static str,
}

/// `POST /v1/calls/{call_id}/transfer/complete`.
pub(crate) async fn transfer_complete(
    State(state): State<AppState>,
    caller: Caller,
    IdPath(call_id): IdPath,
) -> Result<impl IntoResponse, ApiError> {
    finish(state, caller, call_id, ControlOrder::CompleteTransfer).await
}

/// `POST /v1/calls/{call_id}/transfer/cancel`.
pub(crate) async fn transfer_cancel(
    State(state): State<AppState>,
    caller: Caller,
    IdPath(call_id): IdPath,
) -> Result<impl IntoResponse, ApiError> {
    finish(state, caller, call_id, ControlOrder::CancelTransfer).await
}

async fn finish(
    state: AppState,
    caller: Caller,
    call_id: String,
    order: ControlOrder,
) -> Result<impl IntoResponse, ApiError> {
    visible_call(&state, &caller, &call_id).await?;
    state.api.gateway.control(&call_id, order).await?;
    tracing::info!(%call_id, key = %caller.name, "control API: transfer finished");
    Ok((
        StatusCode::ACCEPTED,
        Json(TransferDone {
            call_id,
            state: "connected",
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!("tests pass objects"),
        }
    }

    #[test]
    fn attribute_values_become_strings() {
        let attrs = attributes(map(serde_json::json!({
            "five9.route_reason": "billing",
            "contained": false,
            "score": 0.5,
            "five9.metadata": {"intent": "billing"},
        })))
        .unwrap();
        let got: Vec<(&str, &str)> = attrs
            .iter()
            .map(|a| (a.key.as_str(), a.value.as_str()))
            .collect();
        assert!(got.contains(&("five9.route_reason", "billing")));
        assert!(got.contains(&("contained", "false")));
        assert!(got.contains(&("score", "0.5")));
        assert!(got.contains(&("five9.metadata", r#"{"intent":"billing"}"#)));
    }

    #[test]
    fn bad_attributes_are_422() {
        let long_key = "k".repeat(MAX_KEY + 1);
        let long_value = "v".repeat(MAX_VALUE + 1);
        let too_many: Map<String, Value> = (0..=MAX_ATTRIBUTES)
            .map(|i| (format!("k{i}"), Value::from("v")))
            .collect();
        let cases = vec![
            map(serde_json::json!({"": "v"})),
            map(serde_json::json!({"  ": "v"})),
            map(serde_json::json!({"k": null})),
            map(serde_json::json!({"k": "a\r\nVia: evil"})),
            map(serde_json::json!({"k\n": "v"})),
            map(serde_json::json!({ long_key: "v" })),
            map(serde_json::json!({ "k": long_value })),
            too_many,
        ];
        for case in cases {
            let e = attributes(case.clone()).unwrap_err();
            assert_eq!(e.status().as_u16(), 422, "{case:?}");
        }
        let edge = map(serde_json::json!({ "k".repeat(MAX_KEY): "v".repeat(MAX_VALUE) }));
        assert!(
            attributes(edge).is_ok(),
            "the limits themselves are allowed"
        );
    }

    #[test]
    fn bodies_refuse_unknown_fields() {
        let typo: Result<AttributesBody, _> = serde_json::from_str(r#"{"attributs": {"k": "v"}}"#);
        assert!(typo.is_err());
        let transfer: TransferBody =
            serde_json::from_str(r#"{"destination": "Billing_Queue"}"#).unwrap();
        assert!(transfer.attributes.is_empty());
        let typo: Result<TransferBody, _> = serde_json::from_str(r#"{"destnation": "q"}"#);
        assert!(typo.is_err());
        // Both shapes parse; the handler tells which fields it needs.
        let placed: TransferBody =
            serde_json::from_str(r#"{"mode": "cold", "to": "+18005550199", "outbound": "f9"}"#)
                .unwrap();
        assert_eq!(placed.mode.as_deref(), Some("cold"));
        assert!(placed.destination.is_none());
    }
}
