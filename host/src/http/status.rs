//! Status endpoints.
//!
//! | method and path | auth | answer |
//! |---|---|---|
//! | `GET /healthz` | none | `200 {"status": "ok"}` while the process serves HTTP |
//! | `GET /readyz` | none | `200 {"status": "ready"}`, or `503 {"status": "not_ready"}` before the trunks' policies serve and while draining |
//! | `GET /v1/policies` | key | `200 {"policies": [PolicyStatus…]}` |
//!
//! `/healthz`, `/readyz` and `/metrics` take no key: probes and scrapers
//! rarely carry one, and they reveal no call data. Keep the HTTP listener
//! on loopback or a management network (the default is loopback).

use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;

use super::AppState;
use super::auth::Caller;
use crate::policy::PolicyStatus;

/// `{"status": "..."}`.
#[derive(Debug, Serialize)]
pub(crate) struct Health {
    /// `ok`, `ready` or `not_ready`.
    pub status: &'static str,
}

/// `GET /v1/policies`.
#[derive(Debug, Serialize)]
pub(crate) struct Policies {
    /// Every policy name seen in the folder, by name.
    pub policies: Vec<PolicyStatus>,
}

/// `GET /healthz`.
pub(crate) async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// `GET /readyz`.
pub(crate) async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    if state.api.ready.load(Ordering::SeqCst) {
        (StatusCode::OK, Json(Health { status: "ready" }))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Health {
                status: "not_ready",
            }),
        )
    }
}

/// `GET /v1/policies`. Policies are the operator's, not a tenant's: every
/// valid key sees them all.
pub(crate) async fn policies(State(state): State<AppState>, _caller: Caller) -> Json<Policies> {
    Json(Policies {
        policies: state.api.registry.statuses(),
    })
}
