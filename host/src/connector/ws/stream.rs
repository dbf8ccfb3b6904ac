//! One running WebSocket media stream.
//!
//! A single task owns the call's state and waits on everything at once: the
//! gateway's orders, caller audio from the tap, the agent's messages, the
//! playback clock and the ping clock.
//!
//! Writes never wait. A message goes into the socket's write buffer and is
//! flushed without blocking; when the kernel's socket buffer is full (a
//! slow or stuck agent), the flush stays pending, caller audio is dropped
//! (counted) until it completes, and events queue in a bounded buffer. So
//! the agent can never hold up playback to the caller or the gateway's
//! orders. (A writer task behind a channel gives the same guarantee, but the
//! extra task hop per 20 ms frame cost about a third of the connector's CPU
//! in `benches/ws_agent.rs`.)

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::{Sink, Stream as _};
use serde_json::{Map, Value};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use trunkline_media::g711::{self, Law};
use trunkline_relay::{TapFrame, TapHandle};

use super::audio::FRAME_SAMPLES;
use super::audio::{AudioFormat, Decoder, Encoder};
use super::playback::{Cue, FRAME_TIME, Playback, Played, Player, PlayoutStats, Tick};
use super::protocol::{
    Control, DtmfOut, FromAgent, MarkBody, PROTOCOL, Start, StopOut, ToAgent, TransferFailedOut,
    VERSION, attribute_value, media_json, media_payload,
};
use super::{Socket, WsSettings};
use crate::connector::{AgentEnd, CallContext, Input, Report, Reporter, Session};
use crate::policy::Attribute;

/// The promise to the gateway: after `Stop`, the agent has its `stop` and
/// the socket is closed within a second.
const CLOSE_LIMIT: Duration = Duration::from_secs(1);
/// After the agent ended the call, how long to wait for the gateway's
/// `Stop` before closing anyway.
const ENDING_LIMIT: Duration = Duration::from_secs(5);

/// What the session counts (logged when it ends).
#[derive(Debug, Default)]
struct Counters {
    media_sent: u64,
    media_dropped: u64,
    /// Frames of agent audio sent to the relay (silence not counted).
    frames_played: u64,
    /// Agent audio refused so far (the queue counts it too; this one
    /// decides when to warn).
    play_refused: u64,
    relay_full: u64,
    bad_messages: u64,
}

pub(super) struct Stream {
    call: CallContext,
    law: Law,
    format: AudioFormat,
    settings: WsSettings,
    media: TapHandle,
    input: mpsc::Receiver<Input>,
    report: Reporter,
    stream_sid: String,
    /// Counts messages after `connected`.
    sequence: u64,
    /// Counts `media` messages sent.
    chunk: u64,
    /// Caller audio sent so far, in ms (the next chunk's `timestamp`).
    audio_ms: u64,
    /// Caller codes not yet making a 20 ms chunk: the caller's packets may
    /// be 10–60 ms, the stream's `media` chunks are always 20 ms.
    caller_codes: Vec<u8>,
    encoder: Encoder,
    decoder: Decoder,
    /// Scratch for agent audio: the payload's bytes, then tap codes.
    bytes: Vec<u8>,
    codes: Vec<u8>,
    player: Player<Report>,
    link: Link,
    /// The agent ended the call (or we reported it gone): no more reports.
    ended: bool,
    last_heard: Instant,
    counters: Counters,
}

impl Stream {
    pub(super) fn new(
        session: Session,
        socket: Socket,
        format: AudioFormat,
        settings: WsSettings,
        playout: Arc<PlayoutStats>,
    ) -> Stream {
        let law = session.law;
        let silence = match law {
            Law::Ulaw => g711::ulaw_encode(0),
            Law::Alaw => g711::alaw_encode(0),
        };
        let max_frames = (settings.playback_queue_ms / FRAME_TIME.as_millis() as u64) as usize;
        let stream_sid = stream_sid(&session.call.call_id);
        Stream {
            law,
            format,
            media: session.media,
            input: session.input,
            report: session.report,
            call: session.call,
            settings,
            stream_sid,
            sequence: 0,
            chunk: 0,
            audio_ms: 0,
            caller_codes: Vec::with_capacity(2 * FRAME_SAMPLES),
            encoder: Encoder::new(format, law),
            decoder: Decoder::new(format, law),
            bytes: Vec::new(),
            codes: Vec::new(),
            player: Player::new(Playback::new(max_frames, silence), playout),
            link: Link {
                ws: socket,
                dirty: false,
                backlogged: false,
                read_done: false,
                write_done: false,
                failure: None,
            },
            ended: false,
            last_heard: Instant::now(),
            counters: Counters::default(),
        }
    }

    pub(super) async fn run(mut self) {
        self.send_event(ToAgent::Connected {
            protocol: PROTOCOL.into(),
            version: VERSION.into(),
        });
        let start = self.start_event();
        self.send_event(start);
        if !self.report.send(Report::Ready).await {
            return self.finish("gateway-stopped").await;
        }

        let ping_every = Duration::from_millis(self.settings.ping_interval_ms.max(1));
        let mut ping = tokio::time::interval_at(Instant::now() + ping_every, ping_every);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let pings = self.settings.ping_interval_ms > 0;
        let idle_limit = Duration::from_millis(self.settings.idle_timeout_ms);
        let mut relay_open = true;
        let mut ending_by: Option<Instant> = None;

        let reason = loop {
            if self.ended && ending_by.is_none() {
                ending_by = Some(Instant::now() + ENDING_LIMIT);
            }
            let ending = async {
                match ending_by {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                order = self.input.recv() => match order {
                    Some(Input::Dtmf { digit, duration_ms }) => self.send_dtmf(digit, duration_ms),
                    Some(Input::Stop { reason }) => break reason,
                    Some(Input::TransferFailed { failure, status, reason }) => {
                        self.send_transfer_failed(failure, status, reason)
                    }
                    None => break "call-ended".to_owned(),
                },
                frame = self.media.from_relay.recv(), if relay_open => match frame {
                    Some(frame) => {
                        // The caller's 20 ms frame carries the agent's next
                        // frame out: no separate clock wake-up while both flow.
                        let codes = frame.payload();
                        if let Some(tick) = self.player.caller_frame(Instant::now(), codes.len()) {
                            self.on_tick(tick).await;
                        }
                        self.caller_audio(codes);
                    }
                    None => relay_open = false,
                },
                event = poll_fn(|cx| self.link.poll_event(cx)) => match event {
                    SocketEvent::Read(message) => {
                        self.last_heard = Instant::now();
                        if let Some(gone) = self.on_message(message).await {
                            self.link.read_done = true;
                            // An `end` still waiting for its audio is the
                            // agent's last word: let it play out instead of
                            // calling the agent lost.
                            if !self.ended && !self.player.playback.has_action() {
                                self.ended = true;
                                let report = if gone.normal {
                                    // A close with 1000 is the agent hanging up.
                                    tracing::info!(call_id = %self.call.call_id, why = %gone.why, "websocket agent closed the stream");
                                    Report::End { attributes: Vec::new(), how: AgentEnd::Hangup }
                                } else {
                                    Report::Closed(gone.why.clone())
                                };
                                self.report.send(report).await;
                                break gone.why;
                            }
                        }
                    }
                    SocketEvent::WriteFailed(e) => {
                        let why = format!("websocket write failed: {e}");
                        if !self.ended {
                            self.ended = true;
                            self.report.send(Report::Closed(why.clone())).await;
                        }
                        break why;
                    }
                },
                tick = self.player.tick() => self.on_tick(tick).await,
                _ = ping.tick(), if pings && !self.link.read_done => {
                    if self.settings.idle_timeout_ms > 0 && self.last_heard.elapsed() > idle_limit {
                        let why = format!(
                            "agent silent for {} ms (no message or pong)",
                            self.settings.idle_timeout_ms
                        );
                        if !self.ended {
                            self.ended = true;
                            self.report.send(Report::Closed(why.clone())).await;
                        }
                        break why;
                    }
                    self.send(Message::Ping(Default::default()), true);
                },
                () = ending => break "agent-ended".to_owned(),
            }
        };
        self.finish(&reason).await;
    }

    /// One step of playback: the cues that fell due, then the frame.
    async fn on_tick(&mut self, tick: Tick<Report>) {
        for cue in tick.due {
            self.on_cue(cue).await;
        }
        self.play(&tick.frame, tick.played);
    }

    /// Handles one read from the socket; `Some` when it is gone.
    async fn on_message(
        &mut self,
        message: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
    ) -> Option<Gone> {
        match message {
            Some(Ok(Message::Text(text))) => {
                self.on_text(text.as_str()).await;
                None
            }
            Some(Ok(Message::Binary(_))) => {
                self.bad_message("binary message (the protocol is JSON text)");
                None
            }
            Some(Ok(Message::Close(frame))) => Some(match frame {
                Some(f) => Gone {
                    why: if f.reason.is_empty() {
                        format!("agent closed the socket ({})", f.code)
                    } else {
                        format!("agent closed the socket ({}: {})", f.code, f.reason)
                    },
                    normal: f.code == CloseCode::Normal,
                },
                None => Gone::error("agent closed the socket"),
            }),
            Some(Ok(_)) => None, // Ping, pong: liveness only.
            Some(Err(e)) => Some(Gone::error(format!("websocket read failed: {e}"))),
            None => Some(Gone::error("agent socket closed")),
        }
    }

    async fn on_text(&mut self, text: &str) {
        if let Some(payload) = media_payload(text) {
            return self.on_media(payload.as_bytes());
        }
        let message = match FromAgent::parse(text) {
            Ok(message) => message,
            Err(e) => return self.bad_message(&format!("bad JSON message: {e}")),
        };
        match message {
            FromAgent::Media { media } => self.on_media(media.payload.as_bytes()),
            FromAgent::Mark { mark } => self.queue_cue(Cue::Mark(mark.name)).await,
            FromAgent::Clear => {
                self.decoder.reset();
                for cue in self.player.clear() {
                    self.on_cue(cue).await;
                }
            }
            FromAgent::Stop => {
                if !self.ended {
                    self.ended = true;
                    let report = Report::End {
                        attributes: Vec::new(),
                        how: AgentEnd::Hangup,
                    };
                    self.report.send(report).await;
                }
            }
            FromAgent::Trunkline(control) => self.on_control(control).await,
            FromAgent::Other => {}
        }
    }

    /// Agent audio: decoded, queued, and the player woken.
    fn on_media(&mut self, payload: &[u8]) {
        self.bytes.clear();
        if BASE64.decode_vec(payload, &mut self.bytes).is_err() {
            return self.bad_message("media payload is not base64");
        }
        self.codes.clear();
        self.decoder.decode(&self.bytes, &mut self.codes);
        let refused = self.player.push_audio(&self.codes, Instant::now());
        if refused > 0 {
            if self.counters.play_refused == 0 {
                tracing::warn!(
                    call_id = %self.call.call_id,
                    limit_ms = self.settings.playback_queue_ms,
                    "websocket agent sends audio faster than it plays; refusing audio beyond the queue limit"
                );
            }
            self.counters.play_refused += refused;
        }
    }

    /// `set_attributes` reports at once; `end` and `transfer` wait for the
    /// audio queued before them, so the caller hears the goodbye.
    async fn on_control(&mut self, control: Control) {
        if let Err(why) = control.check() {
            return self.bad_message(&format!("control message: {why}"));
        }
        match control {
            Control::SetAttributes { attributes } => {
                self.report
                    .send(Report::SetAttributes(attributes_of(&attributes)))
                    .await;
            }
            Control::End { attributes } => {
                let report = Report::End {
                    attributes: attributes_of(&attributes),
                    how: AgentEnd::Request,
                };
                self.queue_cue(Cue::Action(report)).await;
            }
            Control::Transfer {
                destination,
                attributes,
            } => {
                let report = Report::Transfer {
                    destination,
                    attributes: attributes_of(&attributes),
                };
                self.queue_cue(Cue::Action(report)).await;
            }
            // A transfer Trunkline dials starts at once: the agent may
            // keep talking to the caller while the target rings.
            Control::DialTransfer { mode, to, outbound } => {
                let mode = if mode == "warm" {
                    crate::b2bua::TransferMode::Warm
                } else {
                    crate::b2bua::TransferMode::Cold
                };
                let request = crate::b2bua::TransferRequest { mode, to, outbound };
                self.report.send(Report::DialTransfer(request)).await;
            }
            Control::SendDtmf { digits, to } => {
                let to_target = to.as_deref() == Some("target");
                self.report
                    .send(Report::SendDtmf { digits, to_target })
                    .await;
            }
            Control::CompleteTransfer => {
                self.report
                    .send(Report::FinishTransfer { complete: true })
                    .await;
            }
            Control::CancelTransfer => {
                self.report
                    .send(Report::FinishTransfer { complete: false })
                    .await;
            }
        }
    }

    /// Queues a cue behind the audio; it falls due at once on an empty queue.
    async fn queue_cue(&mut self, cue: Cue<Report>) {
        self.player.playback.push_cue(cue);
        for due in self.player.playback.take_due() {
            self.on_cue(due).await;
        }
    }

    async fn on_cue(&mut self, cue: Cue<Report>) {
        match cue {
            Cue::Mark(name) => {
                let sequence_number = self.next_sequence();
                let mark = ToAgent::Mark {
                    sequence_number,
                    stream_sid: self.stream_sid.clone(),
                    mark: MarkBody { name },
                };
                self.send(Message::text(mark.to_json()), true);
            }
            Cue::Action(report) => {
                if !self.ended {
                    self.ended = true;
                    self.report.send(report).await;
                }
            }
        }
    }

    fn bad_message(&mut self, why: &str) {
        self.counters.bad_messages += 1;
        // The first few are worth a warning; a chatty broken agent must not
        // flood the log.
        if self.counters.bad_messages <= 3 {
            tracing::warn!(call_id = %self.call.call_id, count = self.counters.bad_messages, "websocket agent: ignoring {why}");
        } else {
            tracing::debug!(call_id = %self.call.call_id, count = self.counters.bad_messages, "websocket agent: ignoring {why}");
        }
    }

    /// Hands a frame to the relay; never waits (a full tap drops it).
    fn play(&mut self, frame: &[u8], played: Played) {
        let Some(frame) = TapFrame::new(frame) else {
            return;
        };
        match self.media.to_relay.try_send(frame) {
            Ok(()) if played != Played::Silence => self.counters.frames_played += 1,
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => self.counters.relay_full += 1,
            // The relay has let go of the call (it is ending): nothing to count.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    /// Caller audio, re-framed into 20 ms `media` chunks.
    fn caller_audio(&mut self, codes: &[u8]) {
        if self.caller_codes.is_empty() && codes.len() == FRAME_SAMPLES {
            return self.send_media(codes);
        }
        self.caller_codes.extend_from_slice(codes);
        let mut chunks = std::mem::take(&mut self.caller_codes);
        let whole = chunks.len() / FRAME_SAMPLES * FRAME_SAMPLES;
        for chunk in chunks[..whole].chunks_exact(FRAME_SAMPLES) {
            self.send_media(chunk);
        }
        chunks.drain(..whole);
        self.caller_codes = chunks;
    }

    fn send_media(&mut self, codes: &[u8]) {
        let timestamp = self.audio_ms;
        self.audio_ms += Encoder::duration_ms(codes);
        if self.link.backlogged || self.link.write_done {
            self.counters.media_dropped += 1;
            return;
        }
        self.chunk += 1;
        self.sequence += 1;
        let text = media_json(
            self.sequence,
            &self.stream_sid,
            self.chunk,
            timestamp,
            self.encoder.encode(codes),
        );
        if self.send(Message::text(text), false) {
            self.counters.media_sent += 1;
        }
    }

    fn send_dtmf(&mut self, digit: char, duration_ms: u32) {
        let sequence_number = self.next_sequence();
        self.send_event(ToAgent::Dtmf {
            sequence_number,
            stream_sid: self.stream_sid.clone(),
            dtmf: DtmfOut {
                track: "inbound_track".into(),
                digit: digit.to_string(),
                duration_ms,
            },
        });
    }

    fn send_transfer_failed(
        &mut self,
        failure: String,
        status: Option<u16>,
        reason: Option<String>,
    ) {
        let sequence_number = self.next_sequence();
        self.send_event(ToAgent::TransferFailed {
            sequence_number,
            stream_sid: self.stream_sid.clone(),
            transfer: TransferFailedOut {
                failure,
                status,
                reason,
            },
        });
    }

    fn send_event(&mut self, event: ToAgent) {
        self.send(Message::text(event.to_json()), true);
    }

    /// Queues a message for the socket; `false` when it was dropped. Caller
    /// audio is dropped while the socket is backed up; events queue up to
    /// the send buffer's bound.
    fn send(&mut self, message: Message, event: bool) -> bool {
        if (!event && self.link.backlogged) || self.link.write_done {
            return false;
        }
        match Pin::new(&mut self.link.ws).start_send(message) {
            Ok(()) => {
                self.link.dirty = true;
                true
            }
            Err(WsError::WriteBufferFull(_)) => false,
            Err(e) => {
                // The next poll of the socket reports the failure.
                self.link.write_done = true;
                self.link.failure = Some(e.to_string());
                false
            }
        }
    }

    fn next_sequence(&mut self) -> String {
        self.sequence += 1;
        self.sequence.to_string()
    }

    fn start_event(&mut self) -> ToAgent {
        let mut custom = Map::new();
        for h in &self.call.x_headers {
            let name = h.name.get(2..).unwrap_or_default();
            custom.insert(name.to_owned(), Value::String(h.value.clone()));
        }
        for a in &self.call.attributes {
            custom.insert(a.key.clone(), Value::String(a.value.clone()));
        }
        ToAgent::Start {
            sequence_number: self.next_sequence(),
            stream_sid: self.stream_sid.clone(),
            start: Start {
                account_sid: self.call.trunk.clone(),
                stream_sid: self.stream_sid.clone(),
                call_sid: self.call.call_id.clone(),
                tracks: vec!["inbound".into()],
                custom_parameters: custom,
                media_format: self.format.media_format(),
                sip_call_id: self.call.sip_call_id.clone(),
                from: self.call.from.clone(),
                to: self.call.to.clone(),
            },
        }
    }

    /// Sends `stop` and a close frame, flushing them for up to
    /// [`CLOSE_LIMIT`] before dropping the socket.
    async fn finish(mut self, reason: &str) {
        if !self.link.write_done {
            let sequence_number = self.next_sequence();
            self.send_event(ToAgent::Stop {
                sequence_number,
                stream_sid: self.stream_sid.clone(),
                stop: StopOut {
                    account_sid: self.call.trunk.clone(),
                    call_sid: self.call.call_id.clone(),
                    reason: reason.to_owned(),
                },
            });
            // 1000 and why: the agent can tell a normal end from a failure
            // (a close frame's reason holds at most 123 bytes).
            let mut why = format!("stream stopped: {reason}");
            while why.len() > 123 {
                why.pop();
            }
            let close = CloseFrame {
                code: CloseCode::Normal,
                reason: why.into(),
            };
            let _ = tokio::time::timeout(CLOSE_LIMIT, self.link.ws.close(Some(close))).await;
        }
        let c = &self.counters;
        tracing::info!(
            call_id = %self.call.call_id,
            reason,
            format = %self.format,
            law = ?self.law,
            media_sent = c.media_sent,
            media_dropped = c.media_dropped,
            frames_played = c.frames_played,
            play_refused = self.player.playback.dropped,
            padded = self.player.playback.padded,
            underruns = self.player.underruns,
            playout_delay_ms = self.player.depth().as_millis() as u64,
            relay_full = c.relay_full,
            bad_messages = c.bad_messages,
            "websocket agent stream ended"
        );
    }
}

/// Why the agent's side is gone.
struct Gone {
    why: String,
    /// A close frame with 1000 (normal closure).
    normal: bool,
}

impl Gone {
    fn error(why: impl Into<String>) -> Gone {
        Gone {
            why: why.into(),
            normal: false,
        }
    }
}

/// What the socket has for the session.
enum SocketEvent {
    /// A read: a message, an error, or the end of the stream.
    Read(Option<Result<Message, WsError>>),
    /// Writing failed: the socket is dead.
    WriteFailed(String),
}

/// The socket and its write state.
struct Link {
    ws: Socket,
    /// Messages are buffered and not yet flushed.
    dirty: bool,
    /// The last flush could not finish: the agent (or the network) is not
    /// keeping up, so caller audio is dropped until it does.
    backlogged: bool,
    /// The agent's side is closed; only flushing goes on.
    read_done: bool,
    /// Writing failed; nothing more is sent.
    write_done: bool,
    /// A write failure not reported yet.
    failure: Option<String>,
}

impl Link {
    /// Flushes what is buffered (without waiting), then reads.
    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<SocketEvent> {
        if let Some(e) = self.failure.take() {
            return Poll::Ready(SocketEvent::WriteFailed(e));
        }
        if self.dirty && !self.write_done {
            match Pin::new(&mut self.ws).poll_flush(cx) {
                Poll::Ready(Ok(())) => {
                    self.dirty = false;
                    self.backlogged = false;
                }
                Poll::Ready(Err(e)) => {
                    self.write_done = true;
                    return Poll::Ready(SocketEvent::WriteFailed(e.to_string()));
                }
                Poll::Pending => self.backlogged = true,
            }
        }
        if self.read_done {
            return Poll::Pending;
        }
        Pin::new(&mut self.ws).poll_next(cx).map(SocketEvent::Read)
    }
}

/// A Twilio-like stream id (`MZ` + 32 hex digits), derived from the call id
/// so logs on both sides line up.
fn stream_sid(call_id: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(call_id.as_bytes());
    format!("MZ{}", hex::encode(&digest[..16]))
}

fn attributes_of(map: &Map<String, Value>) -> Vec<Attribute> {
    map.iter()
        .map(|(key, value)| Attribute {
            key: key.clone(),
            value: attribute_value(value),
        })
        .collect()
}
