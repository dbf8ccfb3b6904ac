//! The WebSocket agent connector (`ws://`, `wss://` targets).

use serde::Deserialize;

/// `[websocket]`: WebSocket agents.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WsSettings {
    /// How long the connection and handshake may take, in ms, before the
    /// call gets the trunk's failure answer.
    pub connect_timeout_ms: u64,
}

impl Default for WsSettings {
    fn default() -> Self {
        WsSettings {
            connect_timeout_ms: 3000,
        }
    }
}

/// Runs a WebSocket agent session (see the module docs).
pub async fn run(_url: String, session: super::Session, _settings: WsSettings) {
    let _ = session
        .report
        .send(super::Report::Failed("WebSocket agents: not built yet".into()))
        .await;
}
