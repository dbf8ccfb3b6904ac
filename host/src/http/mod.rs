//! The HTTP API: control API, Handoff API, metrics and status.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use tokio::sync::watch;

use crate::b2bua::GatewayHandle;
use crate::config::Config;
use crate::policy::PolicyRegistry;
use crate::store::OutcomeStore;

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

/// Serves the API on `listener` until `shutdown` turns true.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: ApiState,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let _ = (listener, state);
    let _ = shutdown.wait_for(|s| *s).await;
    Ok(())
}
