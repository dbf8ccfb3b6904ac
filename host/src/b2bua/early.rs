//! The agent's provisional responses toward the caller, and early media.
//!
//! An 18x without SDP becomes one `180 Ringing` for the caller, whatever
//! its code: a `183` without SDP gives the caller nothing to play, and
//! with a 180 Five9 plays its own ringback instead of silence.
//!
//! The first 18x with SDP (usually `183 Session Progress`) starts the relay
//! with the agent's SDP and gives the caller one `183` with our SDP
//! answer, the same answer (same `o=` version) the 200 OK will carry: the
//! caller leg depends only on the caller's offer. From then on the agent's
//! ringback or IVR prompts reach the caller before the answer. Later 18x
//! are not forwarded (a 180 then would make Five9 switch to its own
//! ringback over the agent's audio); their SDP, if it differs, updates the
//! agent leg, as the 200's SDP does. Reliable provisionals (RFC 3262) are
//! neither required nor offered, so none of these is retransmitted or
//! PRACKed.

use super::call::{CallKey, Phase};
use super::gateway::{Gateway, GatewayEvent};

/// What an agent's 18x makes us do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Already forwarded what it would tell the caller.
    Nothing,
    /// One 180 to the caller.
    Ring,
    /// Start the relay and send the caller a 183 with our SDP (a 180 if the
    /// agent's SDP is unusable and the caller has none yet).
    EarlyMedia,
    /// Early media runs: apply the agent's SDP again if it changed.
    UpdateAgent,
}

/// The step for an 18x (`sdp`: it has a body) after the caller got a 180
/// (`rang`) or our 183 (`early`).
fn next_step(rang: bool, early: bool, sdp: bool) -> Step {
    match (early, sdp) {
        (true, true) => Step::UpdateAgent,
        (true, false) => Step::Nothing,
        (false, true) => Step::EarlyMedia,
        (false, false) if rang => Step::Nothing,
        (false, false) => Step::Ring,
    }
}

impl Gateway {
    /// A 101–199 from the agent to our INVITE.
    pub(crate) fn on_agent_progress(&mut self, key: CallKey, sdp: &[u8]) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if call.phase != Phase::Calling || !call.caller_up() {
            return;
        }
        match next_step(call.rang, call.early, !sdp.is_empty()) {
            Step::Nothing => {}
            Step::UpdateAgent => {
                if let Some(media) = call.media.as_mut()
                    && let Err(f) = media.agent_answer_again(sdp)
                {
                    tracing::debug!(call_id = %call.id(), failure = %f, "agent's later early SDP ignored");
                }
            }
            Step::Ring => {
                call.rang = true;
                self.send_provisional(key, 180, false);
            }
            Step::EarlyMedia => {
                if self.start_early_media(key, sdp) {
                    self.send_provisional(key, 183, true);
                } else if let Some(call) = self.calls.get_mut(&key)
                    && !call.rang
                {
                    call.rang = true;
                    self.send_provisional(key, 180, false);
                }
            }
        }
    }

    /// Starts the relay with the SDP of the agent's 18x; `false` when it
    /// cannot be used (the call then waits for the 200's SDP as before).
    fn start_early_media(&mut self, key: CallKey, sdp: &[u8]) -> bool {
        let events = self.events_tx.clone();
        let Some(call) = self.calls.get_mut(&key) else {
            return false;
        };
        let Some(agent_ip) = call.agent_target.as_ref().map(|t| t.addr.ip()) else {
            return false;
        };
        let Some(media) = call.media.as_mut() else {
            return false;
        };
        if media.started() {
            return false;
        }
        let media = media.with_agent_ip(agent_ip);
        match self
            .media
            .start(media, sdp, key, events, GatewayEvent::Media)
        {
            Ok(()) => {
                call.early = true;
                tracing::info!(call_id = %call.id(), "early media from the agent");
                true
            }
            Err(f) => {
                tracing::info!(call_id = %call.id(), failure = %f, "agent's early SDP unusable; waiting for the answer");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each row: the agent's 18x in order (`true`: with SDP), and what the
    /// caller is sent for each (assuming the SDP is usable).
    #[test]
    fn each_provisional_is_forwarded_once() {
        use Step::*;
        let cases: &[(&[bool], &[Step])] = &[
            (&[false, false], &[Ring, Nothing]),
            (&[true, true], &[EarlyMedia, UpdateAgent]),
            (&[false, true, false], &[Ring, EarlyMedia, Nothing]),
            (&[true, false, true], &[EarlyMedia, Nothing, UpdateAgent]),
        ];
        for (sent, want) in cases {
            let (mut rang, mut early) = (false, false);
            let got: Vec<Step> = sent
                .iter()
                .map(|&sdp| {
                    let step = next_step(rang, early, sdp);
                    rang |= step == Ring;
                    early |= step == EarlyMedia;
                    step
                })
                .collect();
            assert_eq!(&got, want, "for {sent:?}");
        }
    }
}
