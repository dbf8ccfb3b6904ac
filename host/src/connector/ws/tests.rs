//! The connector against a real WebSocket server on loopback playing the
//! agent, with the tap and the gateway replaced by channels.

use std::f64::consts::PI;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use trunkline_media::g711::{self, Law};
use trunkline_relay::{TapFrame, TapHandle};

use super::{WsSettings, run};
use crate::b2bua::GatewayEvent;
use crate::connector::{AgentEnd, CallContext, Input, Report, Reporter, Session};
use crate::policy::{Attribute, Header};

const LIMIT: Duration = Duration::from_secs(5);

/// The gateway's and the relay's side of a running connector.
struct Harness {
    /// Caller audio into the connector.
    caller: mpsc::Sender<TapFrame>,
    /// What the connector plays to the caller.
    played: mpsc::Receiver<TapFrame>,
    input: mpsc::Sender<Input>,
    reports: mpsc::Receiver<GatewayEvent>,
}

impl Harness {
    async fn report(&mut self) -> Report {
        match timeout(LIMIT, self.reports.recv()).await {
            Ok(Some(GatewayEvent::Connector(7, report))) => report,
            other => panic!("no report: {other:?}"),
        }
    }
}

fn context(attributes: &[(&str, &str)]) -> CallContext {
    CallContext {
        call_id: "tl-test-1".into(),
        sip_call_id: "abc@five9".into(),
        shared_id: "F9SESSION".into(),
        trunk: "five9".into(),
        target: "ws://x".into(),
        from: "sip:+14155550123@five9.example.com".into(),
        to: "sip:+14155550100@trunkline".into(),
        attributes: attributes
            .iter()
            .map(|(k, v)| Attribute {
                key: (*k).into(),
                value: (*v).into(),
            })
            .collect(),
        x_headers: vec![
            Header {
                name: "X-CallID".into(),
                value: "300000000001".into(),
            },
            Header {
                name: "X-first_name".into(),
                value: "Ada".into(),
            },
        ],
    }
}

fn start(url: String, attributes: &[(&str, &str)], settings: WsSettings) -> Harness {
    let (caller, from_relay) = mpsc::channel(100);
    let (to_relay, played) = mpsc::channel(100);
    let (input, input_rx) = mpsc::channel(8);
    let (events, reports) = mpsc::channel(16);
    let session = Session {
        call: context(attributes),
        media: TapHandle {
            from_relay,
            to_relay,
        },
        law: Law::Ulaw,
        input: input_rx,
        report: Reporter::for_test(7, events),
    };
    tokio::spawn(run(url, session, settings, Default::default()));
    Harness {
        caller,
        played,
        input,
        reports,
    }
}

async fn listen() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/agent", listener.local_addr().unwrap());
    (listener, url)
}

type Agent = WebSocketStream<TcpStream>;

async fn accept(listener: &TcpListener) -> Agent {
    let (tcp, _) = timeout(LIMIT, listener.accept()).await.unwrap().unwrap();
    tokio_tungstenite::accept_async(tcp).await.unwrap()
}

/// The next JSON event the agent receives (pings skipped); `None` once
/// the socket is closed.
async fn next_event(agent: &mut Agent) -> Option<Value> {
    loop {
        match timeout(LIMIT, agent.next())
            .await
            .expect("agent waited too long")
        {
            Some(Ok(Message::Text(t))) => return Some(serde_json::from_str(t.as_str()).unwrap()),
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => {}
        }
    }
}

async fn event_named(agent: &mut Agent, name: &str) -> Value {
    loop {
        let e = next_event(agent)
            .await
            .unwrap_or_else(|| panic!("closed before {name}"));
        if e["event"] == name {
            return e;
        }
    }
}

/// The next frame played to the caller that is not μ-law silence (the
/// connector sends silence every 20 ms while the agent is quiet).
async fn next_audio(h: &mut Harness) -> TapFrame {
    loop {
        let frame = timeout(LIMIT, h.played.recv()).await.unwrap().unwrap();
        if frame.payload().iter().any(|&c| c != Law::Ulaw.silence()) {
            return frame;
        }
    }
}

/// Audio frames played so far (silence not counted), without waiting.
fn audio_played(h: &mut Harness) -> usize {
    let mut frames = 0;
    while let Ok(frame) = h.played.try_recv() {
        if frame.payload().iter().any(|&c| c != Law::Ulaw.silence()) {
            frames += 1;
        }
    }
    frames
}

async fn say(agent: &mut Agent, message: Value) {
    agent
        .send(Message::text(message.to_string()))
        .await
        .unwrap();
}

fn tone(freq: f64, rate: f64, n: usize) -> Vec<i16> {
    (0..n)
        .map(|i| (8000.0 * (2.0 * PI * freq * i as f64 / rate).sin()) as i16)
        .collect()
}

/// The frequency (10 Hz grid) holding the most power.
fn pitch(samples: &[i16], rate: f64) -> f64 {
    let power = |f: f64| {
        let coeff = 2.0 * (2.0 * PI * f / rate).cos();
        let (mut s1, mut s2) = (0.0f64, 0.0f64);
        for &x in samples {
            let s0 = f64::from(x) + coeff * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        s1 * s1 + s2 * s2 - coeff * s1 * s2
    };
    (1..(rate as usize / 20))
        .map(|k| k as f64 * 10.0)
        .max_by(|a, b| power(*a).total_cmp(&power(*b)))
        .unwrap_or(0.0)
}

fn ulaw(samples: &[i16]) -> Vec<u8> {
    samples.iter().map(|&s| g711::ulaw_encode(s)).collect()
}

#[tokio::test]
async fn the_agent_hears_the_caller_and_the_caller_hears_the_agent() {
    let (listener, url) = listen().await;
    let mut h = start(url, &[("did", "+14155550100")], WsSettings::default());
    let mut agent = accept(&listener).await;
    assert_eq!(h.report().await, Report::Ready);

    let connected = next_event(&mut agent).await.unwrap();
    assert_eq!(connected["event"], "connected");
    let start = next_event(&mut agent).await.unwrap();
    assert_eq!(start["event"], "start");
    assert_eq!(start["start"]["callSid"], "tl-test-1");
    assert_eq!(start["start"]["streamSid"], start["streamSid"]);
    assert_eq!(
        start["start"]["mediaFormat"],
        json!({"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1})
    );
    assert_eq!(
        start["start"]["customParameters"],
        json!({"did": "+14155550100", "CallID": "300000000001", "first_name": "Ada"})
    );

    // Caller: 200 ms of 1 kHz.
    for frame in ulaw(&tone(1000.0, 8000.0, 1600)).chunks(160) {
        h.caller.send(TapFrame::new(frame).unwrap()).await.unwrap();
    }
    let mut heard = Vec::new();
    for chunk in 1..=10 {
        let media = event_named(&mut agent, "media").await;
        assert_eq!(media["media"]["track"], "inbound");
        assert_eq!(media["media"]["chunk"], chunk.to_string());
        assert_eq!(media["media"]["timestamp"], ((chunk - 1) * 20).to_string());
        let payload = BASE64
            .decode(media["media"]["payload"].as_str().unwrap())
            .unwrap();
        assert_eq!(payload.len(), 160);
        heard.extend(payload.iter().map(|&c| g711::ulaw_decode(c)));
    }
    assert_eq!(pitch(&heard, 8000.0), 1000.0);

    // Agent: 300 ms of 440 Hz in one burst, then a mark.
    let reply = ulaw(&tone(440.0, 8000.0, 2400));
    say(
        &mut agent,
        json!({"event": "media", "streamSid": "x", "media": {"payload": BASE64.encode(&reply)}}),
    )
    .await;
    say(
        &mut agent,
        json!({"event": "mark", "mark": {"name": "reply-done"}}),
    )
    .await;
    let began = Instant::now();
    let mut played = Vec::new();
    played.extend_from_slice(next_audio(&mut h).await.payload());
    let first = Instant::now();
    while played.len() < reply.len() {
        let frame = timeout(LIMIT, h.played.recv()).await.unwrap().unwrap();
        played.extend_from_slice(frame.payload());
    }
    let playing = first.elapsed();
    let took = began.elapsed();
    assert_eq!(played, reply, "played as sent, in 20 ms frames");
    assert!(
        playing >= Duration::from_millis(260),
        "15 frames paced at real time, not a burst: {playing:?}"
    );
    assert!(
        took >= super::playback::START_DEPTH,
        "the playout delay before the first: {took:?}"
    );
    let mark = event_named(&mut agent, "mark").await;
    assert_eq!(mark["mark"]["name"], "reply-done");
    assert!(began.elapsed() >= Duration::from_millis(280));

    // DTMF reaches the agent.
    h.input
        .send(Input::Dtmf {
            digit: '5',
            duration_ms: 100,
        })
        .await
        .unwrap();
    let dtmf = event_named(&mut agent, "dtmf").await;
    assert_eq!(
        dtmf["dtmf"],
        json!({"track": "inbound_track", "digit": "5", "durationMs": 100})
    );

    // The call ends on the gateway's side: stop, then the socket closes.
    h.input
        .send(Input::Stop {
            reason: "caller-hangup".into(),
        })
        .await
        .unwrap();
    let stop = event_named(&mut agent, "stop").await;
    assert_eq!(stop["stop"]["reason"], "caller-hangup");
    assert_eq!(stop["stop"]["callSid"], "tl-test-1");
    // A normal closure, with why.
    let close = loop {
        match timeout(Duration::from_secs(1), agent.next()).await.unwrap() {
            Some(Ok(Message::Close(frame))) => break frame.expect("a close code"),
            Some(Ok(_)) => {}
            other => panic!("no close frame: {other:?}"),
        }
    };
    assert_eq!(close.code, CloseCode::Normal);
    assert_eq!(close.reason.as_str(), "stream stopped: caller-hangup");
}

#[tokio::test]
async fn caller_audio_reaches_the_agent_in_20_ms_chunks_whatever_the_packet_time() {
    let (listener, url) = listen().await;
    let mut h = start(url, &[], WsSettings::default());
    let mut agent = accept(&listener).await;
    assert_eq!(h.report().await, Report::Ready);
    // 300 ms of caller audio in 30 ms packets (SIPp's stock pcap), then
    // a 10 ms one.
    let audio = ulaw(&tone(1000.0, 8000.0, 2480));
    for packet in audio.chunks(240) {
        h.caller.send(TapFrame::new(packet).unwrap()).await.unwrap();
    }
    let mut heard = Vec::new();
    for chunk in 1..=15 {
        let media = event_named(&mut agent, "media").await;
        assert_eq!(media["media"]["chunk"], chunk.to_string());
        assert_eq!(media["media"]["timestamp"], ((chunk - 1) * 20).to_string());
        let payload = BASE64
            .decode(media["media"]["payload"].as_str().unwrap())
            .unwrap();
        assert_eq!(payload.len(), 160, "chunk {chunk}");
        heard.extend(payload);
    }
    assert_eq!(heard, audio[..2400], "every code, in order");
    // The last 80 codes wait for the rest of their chunk.
    let more = timeout(Duration::from_millis(200), event_named(&mut agent, "media")).await;
    assert!(more.is_err(), "no partial chunk: {more:?}");
}

#[tokio::test]
async fn an_agent_closing_normally_hangs_up_without_an_error() {
    let (listener, url) = listen().await;
    let mut h = start(url, &[], WsSettings::default());
    let mut agent = accept(&listener).await;
    assert_eq!(h.report().await, Report::Ready);
    agent
        .close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "bye".into(),
        }))
        .await
        .unwrap();
    assert_eq!(
        h.report().await,
        Report::End {
            attributes: vec![],
            how: AgentEnd::Hangup
        },
        "a hang-up, not `agent.error`"
    );
}

#[tokio::test]
async fn clear_drops_queued_audio_and_echoes_pending_marks() {
    let (listener, url) = listen().await;
    let mut h = start(url, &[], WsSettings::default());
    let mut agent = accept(&listener).await;
    assert_eq!(h.report().await, Report::Ready);
    // Two seconds of speech, a mark, then barge-in after 100 ms.
    say(
        &mut agent,
        json!({"event": "media", "media": {"payload": BASE64.encode([0x11; 16000])}}),
    )
    .await;
    say(
        &mut agent,
        json!({"event": "mark", "mark": {"name": "long"}}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let cleared = Instant::now();
    say(&mut agent, json!({"event": "clear"})).await;
    let mark = event_named(&mut agent, "mark").await;
    assert_eq!(mark["mark"]["name"], "long");
    assert!(
        cleared.elapsed() < Duration::from_millis(200),
        "echoed at once"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    let frames = audio_played(&mut h);
    assert!(
        (1..=15).contains(&frames),
        "{frames} frames played before the clear"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        audio_played(&mut h),
        0,
        "nothing but silence after the clear"
    );
}

#[tokio::test]
async fn control_messages_report_to_the_gateway_and_end_after_the_goodbye() {
    let (listener, url) = listen().await;
    let mut h = start(url, &[], WsSettings::default());
    let mut agent = accept(&listener).await;
    assert_eq!(h.report().await, Report::Ready);
    say(
        &mut agent,
        json!({"event": "media", "media": {"payload": "not base64!"}}),
    )
    .await;
    agent.send(Message::text("{not json")).await.unwrap();
    say(
        &mut agent,
        json!({"event": "trunkline", "action": "set_attributes",
        "attributes": {"five9.route_reason": "sale", "score": 3}}),
    )
    .await;
    assert_eq!(
        h.report().await,
        Report::SetAttributes(vec![
            Attribute {
                key: "five9.route_reason".into(),
                value: "sale".into()
            },
            Attribute {
                key: "score".into(),
                value: "3".into()
            },
        ])
    );
    // The goodbye (200 ms) plays before the end is reported.
    say(
        &mut agent,
        json!({"event": "media", "media": {"payload": BASE64.encode([0x22; 1600])}}),
    )
    .await;
    say(
        &mut agent,
        json!({"event": "trunkline", "action": "end",
        "attributes": {"five9.route_type": "contained"}}),
    )
    .await;
    let sent = Instant::now();
    assert_eq!(
        h.report().await,
        Report::End {
            attributes: vec![Attribute {
                key: "five9.route_type".into(),
                value: "contained".into()
            }],
            how: AgentEnd::Request,
        }
    );
    assert!(
        sent.elapsed() >= Duration::from_millis(170),
        "{:?}",
        sent.elapsed()
    );
    assert_eq!(audio_played(&mut h), 10);
    // The agent closing now is no news: it already ended the call.
    agent.close(None).await.unwrap();
    h.input
        .send(Input::Stop {
            reason: "agent-request".into(),
        })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(h.reports.try_recv().is_err(), "no Closed after an end");
}

#[tokio::test]
async fn transfer_and_agent_stop() {
    let (listener, url) = listen().await;
    let mut h = start(url.clone(), &[], WsSettings::default());
    let mut agent = accept(&listener).await;
    assert_eq!(h.report().await, Report::Ready);
    say(
        &mut agent,
        json!({"event": "trunkline", "action": "transfer", "destination": "sales"}),
    )
    .await;
    assert_eq!(
        h.report().await,
        Report::Transfer {
            destination: "sales".into(),
            attributes: vec![]
        }
    );

    let mut h = start(url, &[], WsSettings::default());
    let mut agent = accept(&listener).await;
    assert_eq!(h.report().await, Report::Ready);
    say(&mut agent, json!({"event": "stop"})).await;
    assert_eq!(
        h.report().await,
        Report::End {
            attributes: vec![],
            how: AgentEnd::Hangup
        }
    );
}

#[tokio::test]
async fn a_socket_dying_mid_call_is_reported_closed() {
    let (listener, url) = listen().await;
    let mut h = start(url, &[], WsSettings::default());
    let agent = accept(&listener).await;
    assert_eq!(h.report().await, Report::Ready);
    drop(agent); // TCP reset/FIN without a close frame.
    match h.report().await {
        Report::Closed(why) => {
            assert!(why.contains("socket") || why.contains("websocket"), "{why}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_silent_agent_is_dropped_after_the_idle_timeout() {
    // A server that accepts TCP but never answers pings (nor anything).
    let (listener, url) = listen().await;
    let settings = WsSettings {
        ping_interval_ms: 50,
        idle_timeout_ms: 200,
        ..WsSettings::default()
    };
    let mut h = start(url, &[], settings);
    let agent = accept(&listener).await;
    assert_eq!(h.report().await, Report::Ready);
    let stalled = agent.into_inner(); // Nobody reads: no pongs.
    match h.report().await {
        Report::Closed(why) => assert!(why.contains("silent"), "{why}"),
        other => panic!("{other:?}"),
    }
    drop(stalled);
}

#[tokio::test]
async fn connect_failures_are_reported_before_ready() {
    // Nothing listening.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut h = start(
        format!("ws://127.0.0.1:{port}/agent"),
        &[],
        WsSettings::default(),
    );
    assert!(matches!(h.report().await, Report::Failed(why) if why.contains("connect")));

    // Listening but never completing the handshake.
    let (listener, url) = listen().await;
    let settings = WsSettings {
        connect_timeout_ms: 200,
        ..WsSettings::default()
    };
    let mut h = start(url, &[], settings);
    let began = Instant::now();
    assert!(matches!(h.report().await, Report::Failed(why) if why.contains("200 ms")));
    assert!(began.elapsed() < Duration::from_secs(1));
    drop(listener);

    // wss: TLS is set up (the crypto provider resolves) and a peer that is
    // not TLS fails the handshake, reported rather than panicking.
    let (listener, url) = listen().await;
    let mut h = start(url.replace("ws://", "wss://"), &[], WsSettings::default());
    let (tcp, _) = timeout(LIMIT, listener.accept()).await.unwrap().unwrap();
    drop(tcp);
    assert!(matches!(h.report().await, Report::Failed(why) if why.contains("wss://")));

    // A bad audio option never connects.
    let mut h = start(
        "ws://127.0.0.1:1/#audio=opus".into(),
        &[],
        WsSettings::default(),
    );
    assert!(matches!(h.report().await, Report::Failed(why) if why.contains("opus")));
}

#[tokio::test]
async fn l16_16k_by_fragment_or_by_decision_attribute() {
    for (fragment, attributes) in [
        ("#audio=l16-16000", vec![]),
        ("", vec![("ws.audio", "l16-16000")]),
    ] {
        let (listener, url) = listen().await;
        let mut h = start(
            format!("{url}{fragment}"),
            &attributes,
            WsSettings::default(),
        );
        let mut agent = accept(&listener).await;
        assert_eq!(h.report().await, Report::Ready);
        let start = event_named(&mut agent, "start").await;
        assert_eq!(
            start["start"]["mediaFormat"],
            json!({"encoding": "audio/x-l16", "sampleRate": 16000, "channels": 1})
        );
        for frame in ulaw(&tone(1000.0, 8000.0, 1600)).chunks(160) {
            h.caller.send(TapFrame::new(frame).unwrap()).await.unwrap();
        }
        let mut heard = Vec::new();
        for _ in 0..10 {
            let media = event_named(&mut agent, "media").await;
            let payload = BASE64
                .decode(media["media"]["payload"].as_str().unwrap())
                .unwrap();
            assert_eq!(payload.len(), 640, "20 ms of 16-bit samples at 16 kHz");
            heard.extend(
                payload
                    .chunks_exact(2)
                    .map(|b| i16::from_le_bytes([b[0], b[1]])),
            );
        }
        assert_eq!(pitch(&heard[64..], 16000.0), 1000.0);
        // 100 ms of 3 kHz at 16 kHz comes out as 3 kHz at 8 kHz.
        let reply: Vec<u8> = tone(3000.0, 16000.0, 1600)
            .iter()
            .flat_map(|s| s.to_le_bytes())
            .collect();
        say(
            &mut agent,
            json!({"event": "media", "media": {"payload": BASE64.encode(&reply)}}),
        )
        .await;
        let mut played = Vec::new();
        for _ in 0..5 {
            let frame = next_audio(&mut h).await;
            played.extend(frame.payload().iter().map(|&c| g711::ulaw_decode(c)));
        }
        assert_eq!(pitch(&played[40..], 8000.0), 3000.0);
    }
}

#[tokio::test]
async fn an_agent_that_stops_reading_never_holds_up_the_media() {
    let (listener, url) = listen().await;
    let mut h = start(url, &[], WsSettings::default());
    let mut agent = accept(&listener).await;
    assert_eq!(h.report().await, Report::Ready);
    // The agent queues a second of speech, then never reads again.
    say(
        &mut agent,
        json!({"event": "media", "media": {"payload": BASE64.encode([0x33; 8000])}}),
    )
    .await;
    let began = Instant::now();
    // Meanwhile the caller talks far more than the socket buffers hold.
    let caller = h.caller.clone();
    let flood = tokio::spawn(async move {
        let frame = TapFrame::new(&[0x55; 160]).unwrap();
        for _ in 0..40_000 {
            if caller.send(frame).await.is_err() {
                break;
            }
        }
    });
    let mut played = 0;
    while played < 50 {
        next_audio(&mut h).await;
        played += 1;
    }
    let took = began.elapsed();
    assert!(
        took < Duration::from_millis(1500),
        "playback kept its pace: {took:?}"
    );
    timeout(Duration::from_secs(20), flood)
        .await
        .expect("caller audio never waited on the agent")
        .unwrap();
    drop(agent);
}
