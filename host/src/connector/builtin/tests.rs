//! The agent as the gateway sees it: a session, reports, frames on a clock.
//! Time is paused, so a 10 s menu runs in milliseconds and frame spacing is
//! exact.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use trunkline_media::g711::{Law, alaw_decode, ulaw_decode};
use trunkline_relay::{TapFrame, TapHandle};

use super::*;
use crate::b2bua::GatewayEvent;
use crate::connector::{CallContext, Reporter};

struct Harness {
    task: JoinHandle<()>,
    input: mpsc::Sender<Input>,
    events: mpsc::Receiver<GatewayEvent>,
    frames: mpsc::Receiver<TapFrame>,
    /// Kept open so the agent has caller audio to drain.
    _caller: mpsc::Sender<TapFrame>,
}

fn start(name: &str, law: Law, settings: BuiltinSettings) -> Harness {
    let (to_relay, frames) = mpsc::channel(crate::connector::TAP_CAPACITY);
    let (caller, from_relay) = mpsc::channel(crate::connector::TAP_CAPACITY);
    let (input, input_rx) = mpsc::channel(16);
    let (events_tx, events) = mpsc::channel(16);
    let session = Session {
        call: CallContext {
            call_id: "tl-test".into(),
            sip_call_id: "sip-test".into(),
            shared_id: "f9-test".into(),
            trunk: "five9".into(),
            target: format!("builtin:{name}"),
            from: "sip:+14155550123@127.0.0.1".into(),
            to: "sip:+14155550100@127.0.0.1".into(),
            attributes: Vec::new(),
            x_headers: Vec::new(),
        },
        media: TapHandle {
            from_relay,
            to_relay,
        },
        law,
        input: input_rx,
        report: Reporter::for_test(7, events_tx),
    };
    let task = tokio::spawn(run(name.to_owned(), session, settings));
    Harness {
        task,
        input,
        events,
        frames,
        _caller: caller,
    }
}

impl Harness {
    async fn report(&mut self) -> Report {
        match self.events.recv().await {
            Some(GatewayEvent::Connector(7, report)) => report,
            other => panic!("expected a report, got {other:?}"),
        }
    }

    /// Frames played during `span`, with their arrival times.
    async fn frames_for(&mut self, span: Duration) -> Vec<(Instant, TapFrame)> {
        let until = Instant::now() + span;
        let mut out = Vec::new();
        while let Ok(Some(f)) = tokio::time::timeout_at(until, self.frames.recv()).await {
            out.push((Instant::now(), f));
        }
        out
    }

    async fn key(&self, digit: char) {
        let key = Input::Dtmf {
            digit,
            duration_ms: 100,
        };
        self.input.send(key).await.unwrap();
    }
}

fn energy(law: Law, frame: &TapFrame) -> f64 {
    let decode = match law {
        Law::Ulaw => ulaw_decode,
        Law::Alaw => alaw_decode,
    };
    let p = frame.payload();
    let sum: f64 = p.iter().map(|&c| f64::from(decode(c)).powi(2)).sum();
    (sum / p.len() as f64).sqrt()
}

fn attr<'a>(attributes: &'a [Attribute], key: &str) -> Option<&'a str> {
    attributes
        .iter()
        .find(|a| a.key == key)
        .map(|a| a.value.as_str())
}

fn quick(timeout_secs: u32, repeats: u32) -> BuiltinSettings {
    BuiltinSettings {
        timeout_secs,
        repeats,
        ..BuiltinSettings::default()
    }
}

#[tokio::test(start_paused = true)]
async fn plays_the_prompt_paced_then_ends_with_the_chosen_key() {
    let mut h = start("", Law::Ulaw, BuiltinSettings::default());
    assert_eq!(h.report().await, Report::Ready);

    let frames = h.frames_for(Duration::from_millis(1000)).await;
    // One 160-byte frame per 20 ms, no bursts.
    assert!((49..=51).contains(&frames.len()), "{}", frames.len());
    for pair in frames.windows(2) {
        assert_eq!(pair[1].0 - pair[0].0, Duration::from_millis(20));
    }
    assert!(frames.iter().all(|(_, f)| f.payload().len() == 160));
    let loud = frames.iter().filter(|(_, f)| energy(Law::Ulaw, f) > 1000.0);
    assert!(loud.count() > 20, "the prompt is audible");

    h.key('2').await;
    let Report::End { attributes, how } = h.report().await else {
        panic!("expected End");
    };
    assert_eq!(how, AgentEnd::Request);
    assert_eq!(attr(&attributes, "menu"), Some("support"));
    assert_eq!(attr(&attributes, "menu.digit"), Some("2"));
    assert_eq!(attr(&attributes, "contained"), Some("false"));
    assert_eq!(attr(&attributes, "destination"), Some("support"));
    assert_eq!(
        attr(&attributes, "five9.route_reason"),
        Some("support_request")
    );
    assert_eq!(attr(&attributes, "five9.route_type"), Some("queue"));
    assert_eq!(attr(&attributes, "five9.route_value"), Some("support"));

    // The goodbye played before the end report; nothing after it.
    let mut after = Vec::new();
    while let Ok(f) = h.frames.try_recv() {
        after.push(f);
    }
    assert!(after.iter().any(|f| energy(Law::Ulaw, f) > 1000.0));
    assert!(h.frames_for(Duration::from_secs(1)).await.is_empty());

    h.input
        .send(Input::Stop {
            reason: "agent-request".into(),
        })
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_millis(100), h.task)
        .await
        .expect("stops promptly")
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_silent_caller_times_out_after_the_repeats() {
    let mut h = start("", Law::Ulaw, quick(2, 1));
    let started = Instant::now();
    assert_eq!(h.report().await, Report::Ready);
    // Frames are not read: a full tap drops them, it never stalls the menu.
    let report = h.report().await;
    let Report::End { attributes, .. } = report else {
        panic!("expected End, got {report:?}");
    };
    assert_eq!(attr(&attributes, "menu"), Some("timeout"));
    assert_eq!(attr(&attributes, "menu.digit"), None);
    assert_eq!(attr(&attributes, "five9.route_reason"), Some("no_input"));
    // Two prompts (≈1.2 s each), two 2 s waits, the goodbye (≈0.4 s).
    let took = started.elapsed();
    let prompt = Audio::welcome().duration_ms() + 20;
    let expected = Duration::from_millis(2 * prompt + 4000 + Audio::goodbye().duration_ms());
    assert!(
        took.abs_diff(expected) < Duration::from_millis(100),
        "{took:?} vs {expected:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn stop_ends_the_agent_at_once_without_a_report() {
    let mut h = start("", Law::Ulaw, BuiltinSettings::default());
    assert_eq!(h.report().await, Report::Ready);
    assert!(!h.frames_for(Duration::from_millis(100)).await.is_empty());
    let reason = "caller-hangup".to_owned();
    h.input.send(Input::Stop { reason }).await.unwrap();
    tokio::time::timeout(Duration::from_millis(30), h.task)
        .await
        .expect("stops within a frame")
        .unwrap();
    assert!(h.events.recv().await.is_none(), "no End after Stop");
}

#[tokio::test(start_paused = true)]
async fn the_gateway_going_away_ends_the_agent() {
    let Harness { task, input, .. } = start("", Law::Ulaw, BuiltinSettings::default());
    drop(input);
    tokio::time::timeout(Duration::from_millis(30), task)
        .await
        .expect("ends")
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn named_menus_and_unknown_names() {
    let mut settings = BuiltinSettings::default();
    let choice = Choice {
        name: "spanish".into(),
        attributes: [("lang".to_owned(), "es".to_owned())].into(),
        transfer: None,
    };
    settings.menus.insert(
        "es".into(),
        MenuSettings {
            options: Some([(MenuKey::new('#').unwrap(), choice)].into()),
            ..MenuSettings::default()
        },
    );
    let mut h = start("es", Law::Alaw, settings.clone());
    assert_eq!(h.report().await, Report::Ready);
    let frames = h.frames_for(Duration::from_millis(200)).await;
    // A-law call: the prompt is encoded in A-law.
    assert!(frames.iter().any(|(_, f)| energy(Law::Alaw, f) > 1000.0));
    h.key('#').await;
    let Report::End { attributes, .. } = h.report().await else {
        panic!("expected End");
    };
    assert_eq!(attr(&attributes, "lang"), Some("es"));
    assert_eq!(attr(&attributes, "menu"), Some("spanish"));

    let mut h = start("fr", Law::Ulaw, settings);
    let Report::Failed(why) = h.report().await else {
        panic!("expected Failed");
    };
    assert!(why.contains("builtin.menus.fr"), "{why}");
    assert!(
        h.frames.recv().await.is_none(),
        "no audio for a failed menu"
    );
}

#[tokio::test(start_paused = true)]
async fn a_prompt_file_is_played_and_a_missing_one_falls_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.ulaw");
    // 0x80 is μ-law's loudest positive code: easy to recognise.
    std::fs::write(&path, [0x80u8; 320]).unwrap();
    let settings = BuiltinSettings {
        prompt: Some(path),
        goodbye_prompt: Some(dir.path().join("missing.wav")),
        ..BuiltinSettings::default()
    };
    let mut h = start("", Law::Ulaw, settings);
    assert_eq!(h.report().await, Report::Ready);
    let frames = h.frames_for(Duration::from_millis(60)).await;
    assert_eq!(frames[0].1.payload(), &[0x80; 160][..]);
    assert_eq!(frames[1].1.payload(), &[0x80; 160][..]);
    assert_eq!(frames[2].1.payload(), &[0xFF; 160][..], "silence after it");
    h.key('1').await;
    // The missing goodbye file became the generated chime.
    let frames = h.frames_for(Duration::from_millis(100)).await;
    assert!(frames.iter().any(|(_, f)| energy(Law::Ulaw, f) > 1000.0));
}
