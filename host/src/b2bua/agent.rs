//! The agent's SIP leg (a `trunkline_sip::leg::OutboundLeg`: the gateway
//! carries out what it asks and acts on what it reports), and which leg's
//! machine a transaction's report goes to.

use std::net::IpAddr;
use std::time::Instant;

use trunkline_sip::dialog::DialogId;
use trunkline_sip::leg::{FailureKind, InboundInput, LegFailure, OutboundAction, OutboundInput};
use trunkline_sip::message::SipMessage;
use trunkline_sip::transaction::{Event, TransactionKey};

use super::call::{CallKey, Leg, format_call_id};
use super::gateway::{CallTimer, Gateway, GatewayEvent};
use super::wire::Wire;
use crate::policy::EndReason;

impl Gateway {
    pub(crate) fn on_call_tx_event(
        &mut self,
        key: CallKey,
        leg: Leg,
        tx: TransactionKey,
        event: Event<Wire>,
    ) {
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        let is_refer = call.refer_tx.as_ref() == Some(&tx);
        let is_refresh = call.refresh_tx.as_ref() == Some(&tx);
        match event {
            Event::Ack(_) if leg == Leg::Caller => self.on_caller_input(key, InboundInput::Ack),
            Event::Response { status, .. } if is_refer && status >= 300 => {
                tracing::info!(call_id = %call.id(), status, "REFER refused; ending with a BYE");
                self.finish_refer(key, true);
            }
            Event::Timeout(_) | Event::TransportError if is_refer => self.finish_refer(key, true),
            Event::Response { status, response } if is_refresh => {
                self.on_refresh_response(key, status, &response.msg)
            }
            event if leg == Leg::Agent => self.on_agent_tx_event(key, &tx, event),
            event => self.on_caller_tx_event(key, &tx, event),
        }
    }

    /// A transaction of the agent leg reported: the leg decides.
    fn on_agent_tx_event(&mut self, key: CallKey, tx: &TransactionKey, event: Event<Wire>) {
        let now = Instant::now();
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let Some(agent) = call.agent_leg.as_mut() else {
            return;
        };
        match &event {
            Event::Response { status, response } => {
                if (200..300).contains(status) && tx == agent.invite_key() {
                    // The agent may answer from another address than the
                    // one called, and over the connection it will send its
                    // requests on.
                    if let Some(peer) = call.agent_peer.as_mut() {
                        peer.add(response.target.addr.ip());
                        if let Some(conn) = response.target.conn {
                            peer.set_conn(conn);
                        }
                    }
                }
                let input = OutboundInput::Response {
                    tx,
                    status: *status,
                    response: &response.msg,
                };
                agent.handle(now, input);
            }
            Event::Timeout(_) => agent.handle(now, OutboundInput::Timeout(tx)),
            Event::TransportError => agent.handle(now, OutboundInput::TransportError(tx)),
            Event::Ack(_) | Event::Terminated => return,
        }
        self.drive_agent(key);
    }

    /// Carries out what the agent leg asks for, and what it reports.
    pub(crate) fn drive_agent(&mut self, key: CallKey) {
        loop {
            let Some(call) = self.calls.get_mut(&key) else {
                return;
            };
            let Some(agent) = call.agent_leg.as_mut() else {
                return;
            };
            let Some(action) = agent.poll_action() else {
                // One timer entry per deadline, however often the leg is
                // driven.
                let next = agent.poll_timeout();
                if next.is_some() && next != call.agent_armed {
                    call.agent_armed = next;
                    if let Some(at) = next {
                        self.timers.arm(at, key, CallTimer::AgentLeg);
                    }
                }
                return;
            };
            let call_id = call.id();
            let Some(target) = call.agent_target.clone() else {
                return;
            };
            match action {
                OutboundAction::StartInvite { tx, request } => {
                    // Under its own transaction, kept in the call's pending
                    // ones: an answer racing a CANCEL still gets its ACK
                    // and BYE.
                    let wire = Wire::shared(target, request);
                    if self.send_to(key, Leg::Agent, wire).is_none() {
                        self.agent_send_failed(key, &tx);
                    }
                }
                OutboundAction::StartRequest { tx, request } => {
                    let to = self.target_for(&request, &target);
                    if self
                        .send_to(key, Leg::Agent, Wire::new(to, request))
                        .is_none()
                    {
                        self.agent_send_failed(key, &tx);
                    }
                }
                OutboundAction::SendAck(ack) => {
                    let to = self.target_for(&ack, &target);
                    self.send_now(Wire::new(to, ack));
                }
                OutboundAction::Retransmit(ok) => {
                    let to = call.agent_ok_to.clone().unwrap_or(target);
                    self.send_now(Wire::new(to, ok));
                }
                OutboundAction::AckTimedOut => {
                    tracing::warn!(%call_id, "agent never ACKed our 200 OK to its re-INVITE; ending the call");
                    self.end_call(key, EndReason::Error);
                }
                OutboundAction::Abandon(tx) => {
                    tracing::info!(%call_id, "agent never answered our CANCEL; INVITE abandoned");
                    self.table.abandon(&tx);
                }
                OutboundAction::Progress { sdp, .. } => {
                    self.on_agent_progress(key, sdp.as_deref().unwrap_or_default())
                }
                OutboundAction::Answered { dialog, sdp } => {
                    self.on_agent_answer(key, dialog, &sdp, target.addr.ip())
                }
                OutboundAction::Failed { failure, detail } => {
                    match failure.kind {
                        FailureKind::Unreachable if failure.status.is_none() => {
                            // RFC 3261 §8.1.3.1: a transport failure counts
                            // as a 503.
                            tracing::warn!(%call_id, %failure, "agent unreachable (connection or TLS failed)")
                        }
                        _ => {
                            tracing::info!(%call_id, %failure, detail = detail.as_deref().unwrap_or(""),
                            "agent leg failed")
                        }
                    }
                    self.note_failure(key, failure);
                    let status = match failure.status {
                        // A 2xx we could not take (no Contact): our fault
                        // toward the caller is the agent's, a bad gateway.
                        Some(200..=299) => 502,
                        _ => failure.caller_status(),
                    };
                    self.fail_before_answer(key, status);
                }
                OutboundAction::Cancelled | OutboundAction::Ended { .. } => {}
                OutboundAction::Finished => {
                    if let Some(id) = self
                        .calls
                        .get(&key)
                        .and_then(|c| c.agent_leg.as_ref())
                        .and_then(|l| l.dialog())
                        .map(|d| d.id().clone())
                    {
                        self.by_dialog.remove(&id);
                    }
                    self.maybe_forget(key);
                }
            }
        }
    }

    /// Keeps the first failure of the call's agent leg for its record.
    pub(crate) fn note_failure(&mut self, key: CallKey, failure: LegFailure) {
        if let Some(call) = self.calls.get_mut(&key)
            && call.failure.is_none()
        {
            call.failure = Some(failure);
        }
    }

    /// The agent leg's timer (ring timeout, the CANCEL's 64*T1) is due.
    pub(crate) fn agent_leg_timer(&mut self, key: CallKey) {
        let now = Instant::now();
        if let Some(call) = self.calls.get_mut(&key) {
            call.agent_armed = None;
            if let Some(agent) = call.agent_leg.as_mut() {
                agent.handle_timeout(now);
            }
        }
        self.drive_agent(key);
    }

    /// Hangs up on the agent: CANCEL before its answer, BYE after;
    /// nothing once it is gone.
    pub(crate) fn hang_up_agent(&mut self, key: CallKey) {
        let now = Instant::now();
        if let Some(agent) = self.calls.get_mut(&key).and_then(|c| c.agent_leg.as_mut()) {
            agent.handle(now, OutboundInput::HangUp(&[]));
        }
        self.drive_agent(key);
    }

    /// A request of the agent leg's never left (its transaction could not
    /// start): the leg hears it as a transport failure, so it neither
    /// waits for an answer for ever nor leaves the call behind.
    fn agent_send_failed(&mut self, key: CallKey, tx: &TransactionKey) {
        tracing::error!(call_id = %format_call_id(key), method = tx.method(), "agent transaction could not start");
        if let Some(agent) = self.calls.get_mut(&key).and_then(|c| c.agent_leg.as_mut()) {
            agent.handle(Instant::now(), OutboundInput::TransportError(tx));
        }
    }

    fn on_agent_answer(&mut self, key: CallKey, id: DialogId, sdp: &[u8], agent_ip: IpAddr) {
        let Some(mut call) = self.calls.remove(&key) else {
            return;
        };
        self.by_dialog.insert(id, (key, Leg::Agent));
        if !call.caller_up() || call.end_reason.is_some() {
            // The caller left while the agent was answering.
            self.calls.insert(key, call);
            self.hang_up_agent(key);
            return;
        }
        let events = self.events_tx.clone();
        let started = match call.media.as_mut() {
            // Early media runs already: the 200's SDP matters only if it
            // changes the 183's (none at all keeps it).
            Some(media) if media.started() => match sdp {
                [] => Ok(()),
                sdp => media.agent_answer_again(sdp).map(|_| ()),
            },
            Some(media) => {
                let media = media.with_agent_ip(agent_ip);
                self.media
                    .start(media, sdp, key, events, GatewayEvent::Media)
            }
            None => Ok(()),
        };
        if let Err(f) = started {
            tracing::warn!(call_id = %call.id(), failure = %f, "agent media unusable");
            self.calls.insert(key, call);
            self.hang_up_agent(key);
            self.fail_before_answer(key, f.status);
            return;
        }

        self.answer_caller(key, call);
    }

    /// A 2xx from the agent after its INVITE transaction ended.
    pub(crate) fn on_late_2xx(&mut self, msg: &SipMessage) {
        let now = Instant::now();
        if let Some(id) = DialogId::of_received(msg)
            && let Some(&(key, Leg::Agent)) = self.by_dialog.get(&id)
            && let Some(agent) = self.calls.get_mut(&key).and_then(|c| c.agent_leg.as_mut())
        {
            agent.handle(now, OutboundInput::Late2xx(msg));
            self.drive_agent(key);
        }
    }
}
