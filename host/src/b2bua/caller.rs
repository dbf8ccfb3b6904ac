//! The caller's leg (a `trunkline_sip::leg::InboundLeg`): the gateway
//! carries out what it asks (responses on the INVITE's transaction, our
//! 2xx again until the ACK, the BYE) and acts on what it reports. The
//! leg keeps the SIP rules: one To tag, the 2xx's schedule, no BYE before
//! the ACK, 487 on CANCEL.

use std::time::{Duration, Instant};

use trunkline_sip::dialog::{self, DialogId, SessionTimer, UasTimer};
use trunkline_sip::leg::{InboundAction, InboundInput, InboundState};
use trunkline_sip::message::SipMessage;
use trunkline_sip::transaction::{Event, TransactionKey};

use super::call::{Call, CallKey, Leg, Phase, format_call_id};
use super::gateway::{CallTimer, Gateway};
use super::wire::Wire;
use crate::policy::EndReason;

impl Gateway {
    /// Hands the caller's leg `input` and carries out what follows.
    pub(crate) fn on_caller_input(&mut self, key: CallKey, input: InboundInput<'_>) {
        let now = Instant::now();
        if let Some(call) = self.calls.get_mut(&key) {
            call.caller.handle(now, input);
        }
        self.drive_caller(key);
    }

    /// A transaction of ours toward the caller (our BYE) reported.
    pub(crate) fn on_caller_tx_event(
        &mut self,
        key: CallKey,
        tx: &TransactionKey,
        event: Event<Wire>,
    ) {
        match event {
            Event::Response { status, .. } => {
                self.on_caller_input(key, InboundInput::Response { tx, status })
            }
            Event::Timeout(_) => self.on_caller_input(key, InboundInput::Timeout(tx)),
            Event::TransportError => self.on_caller_input(key, InboundInput::TransportError(tx)),
            Event::Ack(_) | Event::Terminated => {}
        }
    }

    /// Carries out what the caller's leg asks for, and what it reports.
    pub(crate) fn drive_caller(&mut self, key: CallKey) {
        loop {
            let now = Instant::now();
            let Some(call) = self.calls.get_mut(&key) else {
                return;
            };
            let Some(action) = call.caller.poll_action() else {
                let next = call.caller.poll_timeout();
                if next.is_some() && next != call.caller_armed {
                    call.caller_armed = next;
                    if let Some(at) = next {
                        self.timers.arm(at, key, CallTimer::CallerLeg);
                    }
                }
                return;
            };
            let target = call.caller_invite.target.clone();
            match action {
                InboundAction::Respond { status, response } => {
                    let tx = call.caller_tx.clone();
                    let _ = self
                        .table
                        .send_response(now, &tx, status, Wire::new(target, response));
                }
                InboundAction::Retransmit(ok) => self.send_now(Wire::new(target, ok)),
                InboundAction::StartRequest { tx, request } => {
                    if self.send_request(key, Leg::Caller, request).is_none() {
                        // Never left: as if the transport had failed, so
                        // the leg does not wait for an answer for ever.
                        tracing::warn!(call_id = %format_call_id(key), "BYE to the caller could not be sent");
                        if let Some(call) = self.calls.get_mut(&key) {
                            call.caller.handle(now, InboundInput::TransportError(&tx));
                        }
                    }
                }
                InboundAction::DialogUp(id) => {
                    self.by_dialog.insert(id, (key, Leg::Caller));
                }
                InboundAction::Acked => self.caller_acked(key),
                InboundAction::AckTimedOut => {
                    tracing::warn!(call_id = %call.id(), "caller never ACKed our 200 OK; ending the call");
                    // §13.3.1.4: the session is to be ended with a BYE; an
                    // outcome held for the ACK goes out now, else the call
                    // ends here (and its outcome goes on that BYE).
                    self.end_call(key, EndReason::Error);
                    self.caller_acked(key);
                }
                InboundAction::Cancelled => {
                    tracing::info!(call_id = %call.id(), "caller cancelled");
                    self.end_call(key, EndReason::CallerHangup);
                }
                InboundAction::Rejected(_) | InboundAction::Ended { .. } => {}
                InboundAction::Finished => self.maybe_forget(key),
            }
        }
    }

    /// The caller's leg timer (our 2xx's schedule) is due.
    pub(crate) fn caller_leg_timer(&mut self, key: CallKey) {
        let now = Instant::now();
        if let Some(call) = self.calls.get_mut(&key) {
            call.caller_armed = None;
            call.caller.handle_timeout(now);
        }
        self.drive_caller(key);
    }

    /// Refuses the caller with `status` if we have not answered yet.
    pub(crate) fn refuse_caller(&mut self, key: CallKey, status: u16) {
        if let Some(call) = self.calls.get_mut(&key)
            && let Err(e) = call.caller.reject(status, &[])
        {
            tracing::warn!(call_id = %call.id(), status, error = %e, "cannot build the refusal");
        }
        self.drive_caller(key);
    }

    /// A provisional response to the caller's INVITE: with our SDP answer
    /// (early media; a Contact, as the early dialog it makes needs) or
    /// without.
    pub(crate) fn send_provisional(&mut self, key: CallKey, status: u16, with_sdp: bool) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let sdp = with_sdp.then(|| {
            call.media
                .as_ref()
                .map(|m| m.caller_answer())
                .unwrap_or_default()
        });
        if let Err(e) = call
            .caller
            .progress(status, sdp.as_deref().map(str::as_bytes))
        {
            tracing::warn!(call_id = %call.id(), status, error = %e, "cannot build a provisional");
        }
        self.drive_caller(key);
    }

    /// Answers the caller (200 OK with our SDP answer) once the agent is
    /// up and the media runs. Takes the call out of the table, puts it back.
    pub(crate) fn answer_caller(&mut self, key: CallKey, mut call: Call) {
        let now = Instant::now();
        let sdp = call
            .media
            .as_ref()
            .map(|m| m.caller_answer())
            .unwrap_or_default();
        let negotiated =
            match dialog::negotiate_uas(call.caller.invite(), &self.session_timer_config()) {
                Ok(UasTimer::Run(negotiated)) => Some(negotiated),
                _ => None,
            };
        if let Err(e) = call.caller.answer(now, sdp.as_bytes(), negotiated.as_ref()) {
            tracing::error!(call_id = %call.id(), error = %e, "cannot build the 200 OK");
            self.calls.insert(key, call);
            self.hang_up_agent(key);
            self.fail_before_answer(key, 500);
            return;
        }
        if let Some(negotiated) = negotiated {
            call.session = Some((SessionTimer::new(now, &negotiated), negotiated));
        }
        call.phase = Phase::Connected;
        call.answered = Some((now, std::time::SystemTime::now()));
        tracing::info!(call_id = %call.id(), "call connected");
        self.calls.insert(key, call);
        self.drive_caller(key);
        let max = Duration::from_secs(self.config.gateway.max_call_secs);
        self.arm(key, max, CallTimer::MaxDuration);
        self.arm_session(key);
    }

    /// The ACK for a 2xx (end to end, new branch): the caller confirms.
    /// An ACK from anyone but the caller's peer is dropped (`peers`).
    pub(crate) fn on_ack(&mut self, msg: &SipMessage, origin: &super::peers::Origin) {
        let Some(id) = DialogId::of_received(msg) else {
            return;
        };
        if let Some(&(key, leg)) = self.by_dialog.get(&id)
            && self.admit_in_dialog(key, leg, msg, origin)
        {
            self.on_leg_ack(key, leg);
        }
    }

    /// An ACK for our 2xx on `leg` (to its INVITE or re-INVITE).
    pub(crate) fn on_leg_ack(&mut self, key: CallKey, leg: Leg) {
        match leg {
            Leg::Caller => self.on_caller_input(key, InboundInput::Ack),
            Leg::Agent => {
                if let Some(agent) = self.calls.get_mut(&key).and_then(|c| c.agent_leg.as_mut()) {
                    agent.handle(Instant::now(), trunkline_sip::leg::OutboundInput::Ack);
                }
                self.drive_agent(key);
            }
        }
    }

    /// The caller ACKed our 2xx (or we gave up waiting): a REFER held for
    /// the ACK goes out now (a held BYE is the leg's own).
    fn caller_acked(&mut self, key: CallKey) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if let Some((refer, headers)) = call.held_delivery.take() {
            self.deliver(key, refer.as_deref(), &headers);
            self.maybe_forget(key);
        }
    }
}

impl Call {
    /// Whether the caller is still on the line: not refused, cancelled,
    /// hung up or hung up on.
    pub(crate) fn caller_up(&self) -> bool {
        matches!(
            self.caller.state(),
            InboundState::Offered
                | InboundState::Early
                | InboundState::AwaitingAck
                | InboundState::Confirmed
        )
    }

    /// Whether the caller's leg is answered and on the line.
    pub(crate) fn caller_connected(&self) -> bool {
        matches!(
            self.caller.state(),
            InboundState::AwaitingAck | InboundState::Confirmed
        )
    }
}
