//! The Handoff API: Five9's scripting (its Query module) fetches the AI
//! outcome after the AI leg ended.
//!
//! | method and path | answer |
//! |---|---|
//! | `POST /handoff` `{"shared_id": "…"}` or `{"call_id": "…"}` | `200` the outcome record |
//! | `GET /v1/outcomes/{call_id}` | `200` the outcome record |
//! | `GET /v1/outcomes?shared_id=…` (or `?call_id=…`) | `200` the outcome record |
//!
//! The record is returned as is, so `contained` and `destination` are
//! top-level fields a Query module maps to call variables directly. An
//! unknown id, an expired record and another tenant's record all answer
//! `404 {"error": "not_found"}`.

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::AppState;
use super::auth::Caller;
use super::body::{IdPath, JsonBody};
use super::error::ApiError;
use crate::store::LookupKey;

/// Longest id looked up; longer ones cannot have been filed.
pub(crate) const MAX_ID: usize = 512;

/// `POST /handoff` and the `GET /v1/outcomes` query. Other fields are
/// ignored: a Query module may send whatever its form holds.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Lookup {
    /// Five9's `X-CallSessionID` (or the id the policy filed under).
    pub shared_id: Option<String>,
    /// Trunkline's call id (`tl-…`).
    pub call_id: Option<String>,
}

/// Which index to search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Key {
    /// By shared id.
    Shared(String),
    /// By Trunkline call id.
    Call(String),
}

impl Lookup {
    /// The id to look up: `shared_id` when given, else `call_id`.
    pub(crate) fn key(self) -> Result<Key, ApiError> {
        let pick = |v: Option<String>| v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
        let key = match (pick(self.shared_id), pick(self.call_id)) {
            (Some(s), _) => Key::Shared(s),
            (None, Some(c)) => Key::Call(c),
            (None, None) => {
                return Err(ApiError::InvalidBody(
                    "give `shared_id` (Five9's X-CallSessionID) or `call_id`".into(),
                ));
            }
        };
        let id = match &key {
            Key::Shared(s) | Key::Call(s) => s,
        };
        if id.len() > MAX_ID || id.chars().any(char::is_control) {
            return Err(ApiError::InvalidBody(format!(
                "the id must be at most {MAX_ID} bytes without control characters"
            )));
        }
        Ok(key)
    }
}

/// Looks `key` up for `caller`, off the async threads: the embedded and
/// Redis stores block.
async fn find(state: &AppState, caller: &Caller, key: Key) -> Result<RecordJson, ApiError> {
    let store = state.api.store.clone();
    let key = match key {
        Key::Shared(id) => LookupKey::SharedId(id),
        Key::Call(id) => LookupKey::CallId(id),
    };
    // A local store answers in microseconds: no thread hop. One that may
    // ask the network runs on the blocking pool.
    let stored = if store.lookups_may_block() {
        tokio::task::spawn_blocking(move || store.json(&key))
            .await
            .map_err(|e| ApiError::Internal(format!("the store lookup failed: {e}")))?
    } else {
        store.json(&key)
    };
    match stored {
        Some(r) if caller.sees(&r.tenant) => Ok(RecordJson(r.json)),
        _ => Err(ApiError::NotFound(
            "no outcome for this id (unknown, not concluded yet, or expired)".into(),
        )),
    }
}

/// The record of call `call_id`, if the key may see it (for
/// `GET /v1/calls/{call_id}` once the call has ended).
pub(crate) async fn ended_call(
    state: &AppState,
    caller: &Caller,
    call_id: &str,
) -> Option<serde_json::Value> {
    let RecordJson(json) = find(state, caller, Key::Call(call_id.to_owned()))
        .await
        .ok()?;
    serde_json::from_str(&json).ok()
}

/// A record's JSON as stored, served without decoding and re-encoding it.
#[derive(Debug)]
pub(crate) struct RecordJson(String);

impl IntoResponse for RecordJson {
    fn into_response(self) -> Response {
        ([(header::CONTENT_TYPE, "application/json")], self.0).into_response()
    }
}

fn counted(state: &AppState, result: Result<RecordJson, ApiError>) -> Result<RecordJson, ApiError> {
    let label = match &result {
        Ok(_) => "found",
        Err(ApiError::NotFound(_)) => "not_found",
        Err(ApiError::Unauthorized(_)) => "unauthorized",
        Err(ApiError::InvalidBody(_) | ApiError::InvalidQuery(_)) => "invalid",
        Err(ApiError::UnsupportedMediaType(_) | ApiError::BodyTooLarge(_)) => "invalid",
        Err(_) => "error",
    };
    state.counters.handoff(label);
    result
}

pub(crate) async fn post(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    body: Result<JsonBody<Lookup>, ApiError>,
) -> Result<RecordJson, ApiError> {
    let result = async {
        let caller = caller?;
        let key = body?.0.key()?;
        find(&state, &caller, key).await
    }
    .await;
    counted(&state, result)
}

/// `GET /v1/outcomes/{call_id}`.
pub(crate) async fn by_call_id(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    IdPath(call_id): IdPath,
) -> Result<RecordJson, ApiError> {
    let result = async {
        let caller = caller?;
        let key = Lookup {
            shared_id: None,
            call_id: Some(call_id),
        }
        .key()?;
        find(&state, &caller, key).await
    }
    .await;
    counted(&state, result)
}

/// `GET /v1/outcomes?shared_id=…|call_id=…`.
pub(crate) async fn by_query(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    query: Result<Query<Lookup>, axum::extract::rejection::QueryRejection>,
) -> Result<RecordJson, ApiError> {
    let result = async {
        let caller = caller?;
        let Query(lookup) = query.map_err(|e| ApiError::InvalidQuery(e.body_text()))?;
        let key = lookup
            .key()
            .map_err(|e| ApiError::InvalidQuery(e.to_string()))?;
        find(&state, &caller, key).await
    }
    .await;
    counted(&state, result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(shared: Option<&str>, call: Option<&str>) -> Lookup {
        Lookup {
            shared_id: shared.map(str::to_owned),
            call_id: call.map(str::to_owned),
        }
    }

    #[test]
    fn the_shared_id_wins_and_blank_ids_do_not_count() {
        let table = [
            (lookup(Some("S1"), None), Ok(Key::Shared("S1".into()))),
            (
                lookup(Some(" S1 "), Some("tl-1")),
                Ok(Key::Shared("S1".into())),
            ),
            (
                lookup(Some("  "), Some("tl-1")),
                Ok(Key::Call("tl-1".into())),
            ),
            (lookup(None, Some("tl-1")), Ok(Key::Call("tl-1".into()))),
            (lookup(None, None), Err(422)),
            (lookup(Some(""), Some("")), Err(422)),
            (lookup(Some(&"x".repeat(MAX_ID + 1)), None), Err(422)),
            (lookup(Some("a\nb"), None), Err(422)),
        ];
        for (l, want) in table {
            let got = l.key().map_err(|e| e.status().as_u16());
            assert_eq!(got, want);
        }
    }

    #[test]
    fn extra_fields_from_a_query_module_are_ignored() {
        let l: Lookup =
            serde_json::from_str(r#"{"shared_id": "S1", "campaign": "Inbound"}"#).unwrap();
        assert_eq!(l.key().unwrap(), Key::Shared("S1".into()));
    }
}
