//! The builtin agent (`builtin:`, `builtin:default` and `builtin:NAME`
//! targets): a DTMF menu
//! inside Trunkline, so a new user sees the whole loop — INVITE, answer,
//! audio, a key press, a BYE with Five9 headers, a Handoff record — with no
//! agent running anywhere.
//!
//! For each call it reports `Ready` at once (the gateway answers), plays
//! the menu's prompt, waits for a key, and ends the call with the chosen
//! option's attributes (`Report::End`, reason `agent-request`), so the
//! policy's `conclude` composes the BYE. Besides the configured
//! attributes it sets `menu` (the option's name, or `timeout` /
//! `invalid`) and `menu.digit` (the key that decided, if any).
//!
//! - `settings` — `[builtin]` and `[builtin.menus.NAME]`, the default menu;
//! - `menu` — the menu as a state machine over keys and 20 ms ticks;
//! - `prompt` — prompt files and the generated chimes.
//!
//! Prompts are played at real time: the tap does not pace, so this task
//! sends one frame per 20 ms tick (silence between prompts, so the caller's
//! media never stops and NAT bindings stay open).

mod menu;
mod prompt;
mod settings;

pub use menu::{FRAME_SAMPLES, Menu, MenuPlan, Tick};
pub use prompt::{Audio, PromptError};
pub use settings::{
    BuiltinSettings, Choice, DEFAULT_MENU, MenuConfig, MenuKey, MenuSettings, TransferTo,
    default_options,
};

use std::path::Path;
use std::time::Duration;

use tokio::sync::mpsc::error::TrySendError;
use tokio::time::MissedTickBehavior;
use trunkline_media::g711::Law;
use trunkline_relay::TapFrame;

use super::{AgentEnd, Input, Report, Session};
use crate::policy::Attribute;

/// One frame of audio.
const FRAME_TIME: Duration = Duration::from_millis(20);

/// How long the agent keeps its tap after ending the call, waiting for the
/// gateway's `Stop`. The gateway sends it as the BYE goes out; the cap only
/// keeps a lost `Stop` from leaving the task behind.
const LINGER: Duration = Duration::from_secs(30);

/// Runs the builtin agent for one call; `name` is the part after
/// `builtin:` (a menu name; empty or `default` for `[builtin]`).
///
/// An unknown menu name reports `Failed` (the caller gets the trunk's
/// failure answer). A prompt file that cannot be read is logged as an
/// error and replaced by the generated chime, so a typo in a path costs a
/// recording, not the call.
pub async fn run(name: String, session: Session, settings: BuiltinSettings) {
    let config = match settings.menu(&name) {
        Ok(config) => config,
        Err(why) => {
            tracing::warn!(call = %session.call.call_id, "builtin agent: {why}");
            let _ = session.report.send(Report::Failed(why)).await;
            return;
        }
    };
    if !session.report.send(Report::Ready).await {
        return;
    }
    let plan = load_plan(config).await;
    drive(Menu::new(plan), session).await;
}

/// Loads a menu's prompts (off the async threads: they are files).
async fn load_plan(config: MenuConfig) -> MenuPlan {
    let paths = [
        config.prompt.clone(),
        config.invalid_prompt.clone(),
        config.goodbye_prompt.clone(),
    ];
    let loaded = tokio::task::spawn_blocking(move || paths.map(|p| p.map(|p| load_or_log(&p))))
        .await
        .unwrap_or_default();
    let [prompt, invalid, goodbye] = loaded;
    MenuPlan {
        config,
        prompt: prompt.flatten().unwrap_or_else(Audio::welcome),
        invalid: invalid.flatten().unwrap_or_else(Audio::invalid),
        goodbye: goodbye.flatten().unwrap_or_else(Audio::goodbye),
    }
}

fn load_or_log(path: &Path) -> Option<Audio> {
    Audio::load(path)
        .inspect_err(|e| tracing::error!("builtin agent: {e}; playing the generated chime"))
        .ok()
}

/// Plays the menu at real time until it ends or the gateway stops it.
async fn drive(mut menu: Menu, mut session: Session) {
    let call = session.call.call_id.clone();
    let mut clock = tokio::time::interval(FRAME_TIME);
    // A stalled runtime delays the prompt rather than bursting frames the
    // caller's jitter buffer would drop.
    clock.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut relay_open = true;
    loop {
        tokio::select! {
            // Keys and stops first: a key pressed during a frame cuts the
            // prompt at the next tick.
            biased;
            input = session.input.recv() => match input {
                Some(Input::Dtmf { digit, .. }) => {
                    tracing::debug!(%call, %digit, "builtin agent: key");
                    menu.key(digit);
                }
                Some(Input::Stop { reason }) => {
                    tracing::debug!(%call, %reason, "builtin agent: stopped");
                    return;
                }
                // Not asked for before the menu ends.
                Some(Input::TransferFailed { .. }) => {}
                None => return,
            },
            // The caller's audio is not used, but is drained so the relay
            // does not count it as dropped.
            frame = session.media.from_relay.recv(), if relay_open => {
                relay_open = frame.is_some();
            }
            _ = clock.tick() => match menu.tick() {
                Tick::Play(samples) => play(&session, samples),
                Tick::Silence => play(&session, &[]),
                Tick::End(attributes) => {
                    tracing::info!(%call, outcome = menu.outcome().unwrap_or_default(), "builtin agent: menu done");
                    let mut attributes: Vec<Attribute> = attributes
                        .into_iter()
                        .map(|(key, value)| Attribute { key, value })
                        .collect();
                    if let Some(to) = menu.transfer().cloned() {
                        // "Transfer to a human": the caller waits (with
                        // silence) while the number rings; the gateway stops
                        // this agent once the caller is bridged.
                        let request = crate::b2bua::TransferRequest {
                            mode: crate::b2bua::TransferMode::Cold,
                            to: to.to.clone(),
                            outbound: to.outbound.clone(),
                        };
                        let _ = session.report.send(Report::SetAttributes(attributes.clone())).await;
                        if !session.report.send(Report::DialTransfer(request)).await {
                            return;
                        }
                        match wait_transfer(&mut session).await {
                            Some(failure) => {
                                tracing::info!(%call, %failure, "builtin agent: transfer failed; ending the call");
                                attributes.push(Attribute { key: "transfer.failure".into(), value: failure });
                            }
                            None => return,
                        }
                    }
                    let end = Report::End { attributes, how: AgentEnd::Request };
                    if !session.report.send(end).await {
                        return;
                    }
                    linger(&mut session).await;
                    return;
                }
                Tick::Idle => {}
            },
        }
    }
}

/// Waits for the transfer's end: `Some(failure kind)` when it failed (the
/// caller is still here), `None` when the gateway stopped this agent (the
/// caller was bridged, or left). Silence keeps the caller's media flowing
/// meanwhile; bounded by [`LINGER`] beyond the trunk's ring time.
async fn wait_transfer(session: &mut Session) -> Option<String> {
    let mut clock = tokio::time::interval(FRAME_TIME);
    clock.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let deadline = tokio::time::sleep(LINGER * 4);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            input = session.input.recv() => match input {
                Some(Input::TransferFailed { failure, .. }) => return Some(failure),
                Some(Input::Dtmf { .. }) => {}
                Some(Input::Stop { .. }) | None => return None,
            },
            // The relay gone: the caller was bridged (its tap replaced) or
            // the call ended.
            frame = session.media.from_relay.recv() => {
                frame?;
            }
            _ = clock.tick() => play(session, &[]),
            _ = &mut deadline => return Some("no-answer".into()),
        }
    }
}

/// Sends one frame: `samples` padded with silence to 20 ms.
fn play(session: &Session, samples: &[i16]) {
    let Some(frame) = encode(session.law, samples) else {
        return;
    };
    match session.media.to_relay.try_send(frame) {
        Ok(()) => {}
        // Paced at 20 ms the queue only fills when the relay stalls; a
        // dropped frame is a gap, a blocked agent would stop reading keys.
        Err(TrySendError::Full(_)) => {
            tracing::debug!(call = %session.call.call_id, "builtin agent: tap full, frame dropped");
        }
        // The relay is gone: the call is ending and `Stop` is on its way.
        Err(TrySendError::Closed(_)) => {}
    }
}

/// A 20 ms frame in `law` of `samples` (at most 160), the rest silence.
fn encode(law: Law, samples: &[i16]) -> Option<TapFrame> {
    let mut codes = [law.silence(); FRAME_SAMPLES];
    let n = samples.len().min(FRAME_SAMPLES);
    law.encode(&samples[..n], &mut codes[..n]);
    // Always `Some`: 160 bytes fit a tap frame (up to 480).
    TapFrame::new(&codes)
}

/// After the end report: hold the tap until the gateway says `Stop` (or
/// goes away), draining caller audio; bounded by [`LINGER`].
async fn linger(session: &mut Session) {
    let wait = async {
        loop {
            tokio::select! {
                input = session.input.recv() => match input {
                    Some(Input::Dtmf { .. } | Input::TransferFailed { .. }) => {}
                    Some(Input::Stop { .. }) | None => return,
                },
                frame = session.media.from_relay.recv() => {
                    if frame.is_none() {
                        // Nothing more to drain; only the input matters now.
                        while let Some(input) = session.input.recv().await {
                            if matches!(input, Input::Stop { .. }) {
                                return;
                            }
                        }
                        return;
                    }
                }
            }
        }
    };
    let _ = tokio::time::timeout(LINGER, wait).await;
}

#[cfg(test)]
mod tests;
