//! The WebSocket agent connector (`ws://`, `wss://` targets).
//!
//! Trunkline opens the socket, answers the caller once the handshake is
//! done, and streams audio both ways as JSON events shaped like the widely
//! used media streams (Twilio Media Streams), so agents written for those
//! plug in unchanged. `host/docs/websocket-agents.md` is the protocol page.
//!
//! - [`protocol`] — the messages, both directions.
//! - [`audio`] — μ-law / L16 8 kHz / L16 16 kHz payloads ↔ the tap's G.711
//!   frames, and the per-target option (`#audio=l16-16000`).
//! - [`playback`] — the playout buffer: the bounded queue, marks, the
//!   adaptive playout delay, and the 20 ms clock that keeps Five9's stream
//!   continuous.
//! - `stream` — the running session: one task reading the socket, the tap
//!   and the gateway's orders, plus a writer task so a slow agent never
//!   stalls the media.
//!
//! # Audio format
//! μ-law 8 kHz unless the target's fragment says otherwise
//! (`ws://host/path#audio=l16-16000`; the fragment is not sent to the
//! server) or the policy's decision sets the attribute `ws.audio` (same
//! values: `mulaw`, `l16-8000`, `l16-16000`), which wins.

pub mod audio;
pub mod playback;
pub mod protocol;
mod stream;

use std::time::Duration;

use serde::Deserialize;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use self::audio::{AudioFormat, split_target};
use self::playback::PlayoutStats;
use super::{Input, Report, Session};

/// The decision attribute that picks the stream's audio format per call.
pub const AUDIO_ATTRIBUTE: &str = "ws.audio";

/// `[websocket]`: WebSocket agents.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WsSettings {
    /// How long the TCP connection, TLS and WebSocket handshake may take,
    /// in ms, before the call gets the trunk's failure answer.
    pub connect_timeout_ms: u64,
    /// Most agent audio queued for playback, in ms. Agents send speech
    /// faster than real time; audio beyond this is refused (counted and
    /// logged), so a runaway agent cannot grow the gateway's memory.
    pub playback_queue_ms: u64,
    /// Bytes of events (marks, DTMF, stop) that may wait for an agent that
    /// reads too slowly, beyond what the kernel's socket buffer holds.
    /// Caller audio never waits: while the socket is backed up it is
    /// dropped (counted) rather than delaying the call.
    pub send_buffer_bytes: usize,
    /// How often to ping the agent, in ms (0: never). Pongs prove the agent
    /// is alive while it is silent.
    pub ping_interval_ms: u64,
    /// The call ends (`agent.error`) when nothing at all, not even a pong,
    /// came from the agent for this long, in ms (0: never). Only checked
    /// when pings are on.
    pub idle_timeout_ms: u64,
    /// Largest message accepted from the agent, in bytes; a bigger one
    /// closes the socket (and ends the call).
    pub max_message_bytes: usize,
    /// PEM file of the CA certificates a `wss://` agent's certificate must
    /// chain to (a private CA, say). Unset: the Mozilla root set.
    pub ca_path: Option<std::path::PathBuf>,
    /// The TLS client for `ca_path`, read once at start-up
    /// ([`WsSettings::load_tls`]).
    #[serde(skip)]
    pub tls: Option<std::sync::Arc<tokio_rustls::rustls::ClientConfig>>,
}

impl Default for WsSettings {
    fn default() -> Self {
        WsSettings {
            connect_timeout_ms: 3000,
            playback_queue_ms: 30_000,
            send_buffer_bytes: 256 * 1024,
            ping_interval_ms: 5_000,
            idle_timeout_ms: 20_000,
            max_message_bytes: 4 << 20,
            ca_path: None,
            tls: None,
        }
    }
}

impl WsSettings {
    /// Reads `ca_path` (relative to `base`) into the TLS client used for
    /// `wss://` agents; a missing or unreadable file is an error naming it.
    pub fn load_tls(&mut self, base: &std::path::Path) -> Result<(), String> {
        let Some(path) = self.ca_path.as_mut() else {
            return Ok(());
        };
        if path.is_relative() {
            *path = base.join(&*path);
        }
        let settings = crate::transport::TlsClient {
            ca_path: Some(path.clone()),
        };
        let config = crate::transport::client_config(&settings)
            .map_err(|e| format!("[websocket] ca_path: {e}"))?;
        self.tls = Some(std::sync::Arc::new(config));
        Ok(())
    }
}

/// Bytes read from the socket per attempt. tungstenite zero-fills this much
/// before every read, including the one that finds the socket empty, so it
/// is sized for one 20 ms message (μ-law ≈ 0.3 KB, L16 16 kHz ≈ 1 KB of
/// JSON); longer messages take more reads.
const READ_BUFFER: usize = 2 * 1024;

/// Bytes tungstenite gathers before writing on its own; the session
/// flushes after every message anyway.
const WRITE_BUFFER: usize = 16 * 1024;

/// The socket to an agent.
type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Runs a WebSocket agent session for one call: connects to `url` (see the
/// module docs for its fragment), reports `Ready` or `Failed`, then streams
/// until the call or the agent ends it. Playout counts go to `playout`.
pub async fn run(
    url: String,
    mut session: Session,
    settings: WsSettings,
    playout: std::sync::Arc<PlayoutStats>,
) {
    let format = match pick_format(&url, &session) {
        Ok(found) => found,
        Err(why) => {
            session.report.send(Report::Failed(why)).await;
            return;
        }
    };
    let (url, format) = format;
    let socket = tokio::select! {
        connected = connect(&url, &settings) => match connected {
            Ok(socket) => socket,
            Err(why) => {
                session.report.send(Report::Failed(why)).await;
                return;
            }
        },
        // The caller hung up while the agent was still connecting: nothing
        // to report, and the half-open socket is dropped.
        () = stopped(&mut session.input) => return,
    };
    tracing::debug!(call_id = %session.call.call_id, %url, %format, "websocket agent connected");
    stream::Stream::new(session, socket, format, settings, playout)
        .run()
        .await;
}

/// The URL to connect to and the stream's format: the decision attribute
/// wins over the target's fragment.
fn pick_format(target: &str, session: &Session) -> Result<(String, AudioFormat), String> {
    let (url, from_fragment) = split_target(target)?;
    let format = match session.call.attribute(AUDIO_ATTRIBUTE) {
        Some(value) => value.parse()?,
        None => from_fragment.unwrap_or_default(),
    };
    Ok((url, format))
}

async fn connect(url: &str, settings: &WsSettings) -> Result<Socket, String> {
    // tungstenite zero-fills its whole read buffer before every read
    // attempt (128 KiB by default), which made that memset the connector's
    // largest cost at 50 reads a second (see READ_BUFFER).
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_write_buffer_size(WRITE_BUFFER + settings.send_buffer_bytes.max(1))
        .max_message_size(Some(settings.max_message_bytes))
        .max_frame_size(Some(settings.max_message_bytes));
    let limit = Duration::from_millis(settings.connect_timeout_ms);
    // wss:// with a configured CA; otherwise the Mozilla roots.
    let tls = settings
        .tls
        .clone()
        .map(tokio_tungstenite::Connector::Rustls);
    // Nagle off: 20 ms media frames must not wait for the previous ACK.
    let handshake = tokio_tungstenite::connect_async_tls_with_config(url, Some(config), true, tls);
    match tokio::time::timeout(limit, handshake).await {
        Ok(Ok((socket, _response))) => Ok(socket),
        Ok(Err(e)) => Err(format!("websocket connect to {url}: {e}")),
        Err(_) => Err(format!(
            "websocket connect to {url}: no handshake within {} ms",
            settings.connect_timeout_ms
        )),
    }
}

/// Resolves when the gateway says stop (or goes away); DTMF before the
/// stream starts has nowhere to go.
async fn stopped(input: &mut mpsc::Receiver<Input>) {
    while let Some(order) = input.recv().await {
        if let Input::Stop { .. } = order {
            return;
        }
    }
}

#[cfg(test)]
mod tests;
