//! The call core's side of the gateway: hands each call's machine
//! (`trunkline_call::Call`) what happened, and carries out what it asks —
//! messages on either leg, media orders, `conclude` and the store, timers,
//! the indexes. The rules themselves (what the caller hears when, what a
//! failure becomes, when the outcome may leave) are the machine's, tested
//! on a simulated clock in `trunkline-call`.

use std::time::{Instant, SystemTime};

use trunkline_call::{
    CallAction, CallInput, CallState, EndCause, FailureKind, MediaOrder, MediaStep,
};
use trunkline_sip::dialog::SessionTimer;
use trunkline_sip::leg::{InboundAction, OutboundAction, OutboundInput};
use trunkline_sip::transaction::TransactionKey;

use super::call::{CallKey, Leg, format_call_id};
use super::gateway::{CallTimer, Gateway, GatewayEvent};
use super::wire::Wire;
use crate::policy::EndReason;

impl Gateway {
    /// Hands call `key` `input` and carries out what follows.
    pub(crate) fn tell_call(&mut self, key: CallKey, input: CallInput<'_>) {
        let now = Instant::now();
        if let Some(call) = self.calls.get_mut(&key) {
            call.core.handle(now, input);
        }
        self.drive(key);
    }

    /// Ends call `key` for `reason` (a no-op once it is ending).
    pub(crate) fn end_call(&mut self, key: CallKey, reason: EndReason) {
        self.tell_call(key, CallInput::End(reason.into()));
    }

    /// The call core's timer is due.
    pub(crate) fn core_timer(&mut self, key: CallKey) {
        let now = Instant::now();
        if let Some(call) = self.calls.get_mut(&key) {
            call.armed = None;
            call.core.handle_timeout(now);
        }
        self.drive(key);
    }

    /// Carries out what call `key` asks, in order, until it asks nothing;
    /// then arms its next deadline (once per deadline, however often the
    /// call is driven).
    pub(crate) fn drive(&mut self, key: CallKey) {
        loop {
            let Some(call) = self.calls.get_mut(&key) else {
                return;
            };
            let Some(action) = call.core.poll_action() else {
                let next = call.core.poll_timeout();
                if next.is_some() && next != call.armed {
                    call.armed = next;
                    if let Some(at) = next {
                        self.timers.arm(at, key, CallTimer::Core);
                    }
                }
                return;
            };
            match action {
                CallAction::Caller(action) => self.caller_io(key, action),
                CallAction::Agent(action) => self.leg_io(key, Leg::Agent, action),
                CallAction::Dialled(action) => self.leg_io(key, Leg::Caller, action),
                CallAction::Transfer(action) => self.leg_io(key, Leg::Transfer, action),
                CallAction::TransferDialogUp(id) => {
                    self.by_dialog.insert(id, (key, Leg::Transfer));
                }
                CallAction::TransferFailed { why, detail } => {
                    self.transfer_failed(key, why, detail)
                }
                CallAction::Transferred => self.transferred(key),
                CallAction::AgentDialogUp(id) => {
                    self.by_dialog.insert(id, (key, Leg::Agent));
                }
                CallAction::DialledDialogUp(id) => {
                    self.by_dialog.insert(id, (key, Leg::Caller));
                }
                CallAction::ReachAgent => self.reach_agent(key),
                CallAction::DialledFailed { failure, detail } => {
                    tracing::info!(call_id = %format_call_id(key), %failure,
                        detail = detail.as_deref().unwrap_or(""), "the number we dialled did not answer")
                }
                CallAction::AgentFailed { failure, detail } => {
                    let call_id = format_call_id(key);
                    match failure.kind {
                        FailureKind::Unreachable if failure.status.is_none() => {
                            // RFC 3261 §8.1.3.1: a transport failure counts
                            // as a 503.
                            tracing::warn!(%call_id, %failure, "agent unreachable (connection or TLS failed)")
                        }
                        _ => tracing::info!(%call_id, %failure,
                            detail = detail.as_deref().unwrap_or(""), "agent leg failed"),
                    }
                }
                CallAction::Media(order) => {
                    let result = self.media_order(key, order);
                    if let Some(call) = self.calls.get_mut(&key) {
                        call.core.handle(Instant::now(), CallInput::Media(result));
                    }
                }
                CallAction::Connected => self.connected(key),
                CallAction::Conclude {
                    reason,
                    cause,
                    caller_connected,
                } => self.conclude(key, reason.into(), cause, caller_connected),
                CallAction::ReferFailed(why) => self.refer_failed(key, why),
                CallAction::Finished => self.maybe_forget(key),
            }
        }
    }

    /// Sends what the caller's leg asks for.
    fn caller_io(&mut self, key: CallKey, action: InboundAction) {
        let now = Instant::now();
        let Some(call) = self.calls.get_mut(&key) else {
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
                let method = tx.method().to_owned();
                if self.send_request(key, Leg::Caller, request).is_none() {
                    // Never left: as if the transport had failed, so the
                    // call does not wait for an answer for ever.
                    tracing::warn!(call_id = %format_call_id(key), %method, "request to the caller could not be sent");
                    if let Some(call) = self.calls.get_mut(&key) {
                        let input = trunkline_sip::leg::InboundInput::TransportError(&tx);
                        call.core.handle(now, CallInput::Caller(input));
                    }
                }
            }
            InboundAction::DialogUp(id) => {
                self.by_dialog.insert(id, (key, Leg::Caller));
            }
            _ => {}
        }
    }

    /// Sends what a leg we placed asks for — the agent's SIP leg, the leg
    /// we dialled toward the trunk (a call we place), a transfer target's
    /// — to its peer, or a Route's.
    fn leg_io(&mut self, key: CallKey, leg: Leg, action: OutboundAction) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let target = match leg {
            Leg::Agent => call.agent_target.clone(),
            Leg::Caller => Some(call.caller_invite.target.clone()),
            Leg::Transfer => call.transfer_target.clone(),
        };
        let Some(target) = target else {
            return;
        };
        let send_failed = |gw: &mut Gateway, tx: &TransactionKey| {
            tracing::error!(call_id = %format_call_id(key), ?leg, method = tx.method(),
                "transaction could not start");
            // The leg hears it as a transport failure, so it neither waits
            // for an answer for ever nor leaves the call behind.
            let input = OutboundInput::TransportError(tx);
            gw.tell_call(key, leg_input(leg, input));
        };
        match action {
            OutboundAction::StartInvite { tx, request } => {
                // Under its own transaction, kept in the call's pending
                // ones: an answer racing a CANCEL still gets its ACK and BYE.
                let wire = Wire::shared(target, request);
                if self.send_to(key, leg, wire).is_none() {
                    send_failed(self, &tx);
                }
            }
            OutboundAction::StartRequest { tx, request } => {
                let to = self.target_for(&request, &target);
                if self.send_to(key, leg, Wire::new(to, request)).is_none() {
                    send_failed(self, &tx);
                }
            }
            OutboundAction::SendAck(ack) => {
                let to = self.target_for(&ack, &target);
                self.send_now(Wire::new(to, ack));
            }
            OutboundAction::Retransmit(ok) => {
                let to = match leg {
                    Leg::Agent => call.agent_ok_to.clone().unwrap_or(target),
                    _ => target,
                };
                self.send_now(Wire::new(to, ok));
            }
            OutboundAction::Abandon(tx) => {
                tracing::info!(call_id = %call.id(), ?leg, "no answer to our CANCEL; INVITE abandoned");
                self.table.abandon(&tx);
            }
            OutboundAction::Finished => {
                let dialog = match leg {
                    Leg::Agent => call.core.agent().and_then(|l| l.dialog()),
                    Leg::Caller => call.core.five9_dialog(),
                    Leg::Transfer => call.core.transfer_leg().and_then(|l| l.dialog()),
                };
                if let Some(id) = dialog.map(|d| d.id().clone()) {
                    self.by_dialog.remove(&id);
                }
            }
            _ => {}
        }
    }

    /// Carries out a media order: `Err` is the status for the caller when
    /// the agent's media cannot be used.
    fn media_order(&mut self, key: CallKey, order: MediaOrder) -> Result<(), u16> {
        let events = self.events_tx.clone();
        let Some(call) = self.calls.get_mut(&key) else {
            return Err(500);
        };
        let call_id = call.id();
        let agent_ip = call.agent_target.as_ref().map(|t| t.addr.ip());
        let Some(media) = call.media.as_mut() else {
            return Ok(());
        };
        let result = match order {
            MediaOrder::Start { agent_sdp } if media.started() => {
                media.agent_answer_again(&agent_sdp).map(|_| ())
            }
            MediaOrder::Start { agent_sdp } => {
                let early = matches!(
                    call.core.state(),
                    CallState::Calling {
                        media: Some(MediaStep::Early),
                        ..
                    }
                );
                let media = match agent_ip {
                    Some(ip) => media.with_agent_ip(ip),
                    None => media,
                };
                let started = self
                    .media
                    .start(media, &agent_sdp, key, events, GatewayEvent::Media);
                if early && started.is_ok() {
                    tracing::info!(%call_id, "early media from the agent");
                }
                started
            }
            MediaOrder::Update { agent_sdp } => media.agent_answer_again(&agent_sdp).map(|_| ()),
            MediaOrder::DialledAnswer { sdp } => media.accept_dialled_answer(&sdp),
            MediaOrder::Bridge { sdp } => media.bridge_transfer(&sdp),
            MediaOrder::Brief { sdp } => {
                let briefed = media.brief_transfer(&sdp);
                if briefed.is_ok()
                    && let Some(info) = call.transfer.as_mut()
                {
                    info.result = "briefing";
                }
                briefed
            }
            MediaOrder::Complete => media.complete_transfer(),
            MediaOrder::Unbrief => media.unbrief_transfer(),
        };
        result.map_err(|f| {
            tracing::info!(%call_id, failure = %f, "agent media unusable");
            f.status
        })
    }

    /// The caller got our 2xx: the session timer and the record's answer
    /// time start.
    fn connected(&mut self, key: CallKey) {
        let now = Instant::now();
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        call.answered = Some((now, SystemTime::now()));
        if let Some(negotiated) = call.core.session().copied() {
            call.session = Some((SessionTimer::new(now, &negotiated), negotiated));
        }
        tracing::info!(call_id = %call.id(), "call connected");
        self.arm_session(key);
    }

    /// Logs why the call ended, in the call core's words.
    pub(crate) fn log_end(&self, key: CallKey, reason: EndReason, cause: EndCause) {
        tracing::info!(call_id = %format_call_id(key), ?reason, %cause, "call ending");
    }
}

/// What a leg we placed hears, as the call's input for that leg.
fn leg_input(leg: Leg, input: OutboundInput<'_>) -> CallInput<'_> {
    match leg {
        Leg::Agent => CallInput::Agent(input),
        Leg::Caller => CallInput::Dialled(input),
        Leg::Transfer => CallInput::Transfer(input),
    }
}
