//! A WebSocket agent for the end-to-end tests: a blocking server on
//! loopback that speaks the media-stream protocol as raw JSON (no types
//! shared with the gateway, so the tests check the wire format itself).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};
use tokio_rustls::rustls::{ServerConfig, ServerConnection, StreamOwned};
use tungstenite::{Message, WebSocket};

/// The agent's end of a connection: plain TCP (`ws://`) or TLS (`wss://`).
pub enum AgentStream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
}

impl AgentStream {
    fn tcp(&self) -> &TcpStream {
        match self {
            AgentStream::Plain(tcp) => tcp,
            AgentStream::Tls(tls) => tls.get_ref(),
        }
    }
}

impl Read for AgentStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            AgentStream::Plain(tcp) => tcp.read(buf),
            AgentStream::Tls(tls) => tls.read(buf),
        }
    }
}

impl Write for AgentStream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            AgentStream::Plain(tcp) => tcp.write(buf),
            AgentStream::Tls(tls) => tls.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            AgentStream::Plain(tcp) => tcp.flush(),
            AgentStream::Tls(tls) => tls.flush(),
        }
    }
}

/// Listens for the gateway's connections.
pub struct WsAgent {
    listener: TcpListener,
    pub addr: SocketAddr,
    tls: Option<Arc<ServerConfig>>,
}

impl WsAgent {
    pub fn bind() -> WsAgent {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the WebSocket agent");
        let addr = listener.local_addr().expect("local address");
        WsAgent {
            listener,
            addr,
            tls: None,
        }
    }

    /// An agent behind TLS (`wss://`) with this server configuration.
    pub fn bind_tls(tls: Arc<ServerConfig>) -> WsAgent {
        WsAgent {
            tls: Some(tls),
            ..WsAgent::bind()
        }
    }

    /// The target a policy routes to (`fragment` such as
    /// `#audio=l16-16000`, or empty).
    pub fn url(&self, fragment: &str) -> String {
        let scheme = if self.tls.is_some() { "wss" } else { "ws" };
        format!("{scheme}://{}/agent{fragment}", self.addr)
    }

    /// Accepts the gateway's next connection.
    pub fn accept(&self, limit: Duration) -> AgentConn {
        self.listener.set_nonblocking(true).expect("nonblocking");
        let until = Instant::now() + limit;
        let tcp = loop {
            match self.listener.accept() {
                Ok((tcp, _)) => break tcp,
                Err(_) if Instant::now() < until => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => panic!("the gateway did not connect to the agent: {e}"),
            }
        };
        tcp.set_nonblocking(false).expect("blocking");
        tcp.set_nodelay(true).expect("nodelay");
        tcp.set_read_timeout(Some(limit)).expect("read timeout");
        let stream = match &self.tls {
            None => AgentStream::Plain(tcp),
            Some(config) => {
                let conn = ServerConnection::new(config.clone()).expect("TLS server");
                AgentStream::Tls(Box::new(StreamOwned::new(conn, tcp)))
            }
        };
        let ws = tungstenite::accept(stream).expect("WebSocket handshake");
        AgentConn {
            ws,
            media: Vec::new(),
            events: Vec::new(),
        }
    }
}

/// One stream, agent side.
pub struct AgentConn {
    ws: WebSocket<AgentStream>,
    /// Every `media` event received so far, in order.
    pub media: Vec<Value>,
    /// Every other event received so far, in order.
    pub events: Vec<Value>,
}

impl AgentConn {
    /// Sends one JSON message.
    pub fn send(&mut self, message: Value) {
        self.ws
            .send(Message::text(message.to_string()))
            .expect("sending to the gateway");
    }

    /// Sends `payload` (raw audio in the stream's format) as one `media`.
    pub fn play(&mut self, payload: &[u8]) {
        self.send(json!({"event": "media", "streamSid": "agent", "media": {"payload": BASE64.encode(payload)}}));
    }

    pub fn mark(&mut self, name: &str) {
        self.send(json!({"event": "mark", "streamSid": "agent", "mark": {"name": name}}));
    }

    /// The next event within `limit` (media kept in `media`, others in
    /// `events`); `None` on timeout or when the socket closed.
    pub fn next_event(&mut self, limit: Duration) -> Option<Value> {
        let until = Instant::now() + limit;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.ws
                .get_ref()
                .tcp()
                .set_read_timeout(Some(left))
                .expect("read timeout");
            match self.ws.read() {
                Ok(Message::Text(text)) => {
                    let event: Value =
                        serde_json::from_str(text.as_str()).expect("JSON from the gateway");
                    if event["event"] == "media" {
                        self.media.push(event.clone());
                    } else {
                        self.events.push(event.clone());
                    }
                    return Some(event);
                }
                Ok(Message::Close(_)) => return None,
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return None,
            }
        }
    }

    /// Waits for the next event named `name` (others are kept).
    pub fn wait_for(&mut self, name: &str, limit: Duration) -> Value {
        let until = Instant::now() + limit;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.next_event(left) {
                Some(e) if e["event"] == name => return e,
                Some(_) => {}
                None => panic!("no {name} event within {limit:?}; got {:?}", self.events),
            }
        }
    }

    /// Receives for `d`, keeping everything.
    pub fn listen(&mut self, d: Duration) {
        let until = Instant::now() + d;
        while Instant::now() < until {
            if self
                .next_event(until.saturating_duration_since(Instant::now()))
                .is_none()
            {
                std::thread::sleep(
                    Duration::from_millis(5).min(until.saturating_duration_since(Instant::now())),
                );
            }
        }
    }

    /// Whether the gateway closed the stream within `limit`.
    pub fn closed_within(&mut self, limit: Duration) -> bool {
        let until = Instant::now() + limit;
        while Instant::now() < until {
            if self
                .next_event(until.saturating_duration_since(Instant::now()))
                .is_none()
                && !self.ws.can_read()
            {
                return true;
            }
        }
        false
    }

    /// The decoded payloads of the `media` received so far, concatenated.
    pub fn heard(&self) -> Vec<u8> {
        self.media
            .iter()
            .flat_map(|m| {
                BASE64
                    .decode(m["media"]["payload"].as_str().unwrap_or_default())
                    .expect("base64 payload")
            })
            .collect()
    }

    /// Goes away without a close frame (the TCP connection is shut).
    pub fn vanish(self) {
        let stream = self.ws.into_inner();
        let _ = stream.tcp().shutdown(std::net::Shutdown::Both);
    }
}
