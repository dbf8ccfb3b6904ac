//! The HTTP API: control API, Handoff API, metrics and status.
//!
//! - `auth` — `Authorization: Bearer` keys and their tenants.
//! - `control` — agents' orders on live calls (`/v1/calls…`).
//! - `handoff` — Five9's outcome look-ups (`/handoff`, `/v1/outcomes…`).
//! - `status` — `/healthz`, `/readyz`, `/v1/policies`.
//! - `metrics` — `/metrics`, read from the components' snapshots.
//! - `body`, `error` — JSON bodies in, one JSON error shape out.
//! - `conn` — the accept loop: connection cap, header/body/idle timeouts.
//!
//! `/v1/*` and `/handoff` need a key; `/healthz`, `/readyz` and `/metrics`
//! do not (see `status`).

mod auth;
mod body;
mod conn;
mod control;
mod error;
mod handoff;
mod metrics;
mod status;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use tokio::sync::watch;

use crate::b2bua::GatewayHandle;
use crate::config::Config;
use crate::policy::PolicyRegistry;
use crate::store::OutcomeStore;

pub use auth::{Caller, Keys, Scope};
pub use conn::ConnCounters;
pub use error::ApiError;
pub use metrics::ApiCounters;

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    /// The running configuration (API keys, trunks).
    pub config: Arc<Config>,
    /// The signalling core.
    pub gateway: GatewayHandle,
    /// Outcome records.
    pub store: Arc<dyn OutcomeStore>,
    /// Policies and their stats.
    pub registry: Arc<PolicyRegistry>,
    /// Set once SIP listens and the configured policies are loaded; cleared
    /// when draining.
    pub ready: Arc<AtomicBool>,
}

/// [`ApiState`] plus what the API builds from it once.
#[derive(Clone)]
pub(crate) struct AppState {
    api: ApiState,
    /// The config's keys, as digests.
    keys: Arc<Keys>,
    /// Handoff queries and requests, for `/metrics`.
    counters: Arc<ApiCounters>,
    /// The exporter, read on each scrape.
    metrics: Arc<prometheus_client::registry::Registry>,
}

/// The API's routes over `api`.
pub fn router(api: ApiState) -> Router {
    router_with(api, Arc::new(ApiCounters::default()))
}

fn router_with(api: ApiState, counters: Arc<ApiCounters>) -> Router {
    let state = AppState {
        keys: Arc::new(Keys::new(&api.config.http.keys)),
        metrics: Arc::new(metrics::registry(api.clone(), counters.clone())),
        counters,
        api,
    };
    Router::new()
        .route("/healthz", get(status::healthz))
        .route("/readyz", get(status::readyz))
        .route("/metrics", get(metrics::metrics))
        .route("/handoff", post(handoff::post))
        .route("/v1/outcomes", get(handoff::by_query))
        .route("/v1/outcomes/{call_id}", get(handoff::by_call_id))
        .route("/v1/policies", get(status::policies))
        .route("/v1/calls", get(control::list).post(control::originate))
        .route("/v1/calls/{call_id}", get(control::get))
        .route(
            "/v1/calls/{call_id}/attributes",
            post(control::set_attributes),
        )
        .route("/v1/calls/{call_id}/end", post(control::end))
        .route("/v1/calls/{call_id}/transfer", post(control::transfer))
        .route("/v1/calls/{call_id}/dtmf", post(control::dtmf))
        .route(
            "/v1/calls/{call_id}/transfer/complete",
            post(control::transfer_complete),
        )
        .route(
            "/v1/calls/{call_id}/transfer/cancel",
            post(control::transfer_cancel),
        )
        .fallback(error::no_route)
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .layer(DefaultBodyLimit::max(body::MAX_BODY))
        .with_state(state)
}

/// Counts each request by route pattern and status for `/metrics`.
async fn count_requests(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let response = next.run(req).await;
    state.counters.request(&route, response.status().as_u16());
    response
}

/// Serves the API on `listener` until `shutdown` turns true, then lets the
/// open connections finish (see `conn` for the limits they live under).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: ApiState,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let limits = conn::Limits::new(&state.config.http);
    let counters = Arc::new(ApiCounters::default());
    let connections = counters.connections.clone();
    conn::serve(
        listener,
        router_with(state, counters),
        limits,
        connections,
        shutdown,
    )
    .await
}
