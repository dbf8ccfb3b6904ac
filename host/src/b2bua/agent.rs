//! The agent's answer or failure, and the caller's ACK for our 2xx
//! (retransmitting it until then, holding the outcome behind it).

use std::time::{Duration, Instant};

use trunkline_sip::dialog::{self, Dialog, DialogId, SessionTimer, UasTimer};
use trunkline_sip::leg::{LegFailure, OkRetransmit, OkStep};
use trunkline_sip::message::SipMessage;
use trunkline_sip::transaction::{Event, TransactionKey};

use super::call::{CallKey, Leg, Phase};
use super::gateway::{CallTimer, Gateway, GatewayEvent};
use super::wire::Wire;
use crate::policy::EndReason;
use crate::transport::TransportKind;

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
        let is_agent_invite = call.agent_tx.as_ref() == Some(&tx);
        let is_refer = call.refer_tx.as_ref() == Some(&tx);
        if is_agent_invite
            && matches!(&event, Event::Response { status, .. } if *status >= 200)
            && let Some(c) = self.calls.get_mut(&key)
        {
            c.agent_final = true;
        }
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        match event {
            Event::Response { status, response } if is_agent_invite => match status {
                100 => {}
                101..=199 => self.on_agent_progress(key, &response),
                200..=299 => self.on_agent_answer(key, &response),
                _ => {
                    let failure = LegFailure::from_status(status, false);
                    tracing::info!(call_id = %call.id(), status, %failure, "agent refused the call");
                    self.fail_before_answer(key, failure.caller_status());
                }
            },
            Event::Timeout(_) if is_agent_invite => {
                let failure = LegFailure::timed_out();
                tracing::info!(call_id = %call.id(), %failure, "agent did not answer the INVITE");
                self.fail_before_answer(key, failure.caller_status());
            }
            Event::TransportError if is_agent_invite => {
                // RFC 3261 §8.1.3.1: a transport failure counts as a 503.
                let failure = LegFailure::unreachable();
                tracing::warn!(call_id = %call.id(), %failure, "agent unreachable (connection or TLS failed)");
                self.fail_before_answer(key, failure.caller_status());
            }
            Event::Ack(_) if leg == Leg::Caller => self.caller_acked(key),
            Event::Response { status, .. } if is_refer && status >= 300 => {
                tracing::info!(call_id = %call.id(), status, "REFER refused; ending with a BYE");
                self.finish_refer(key, true);
            }
            Event::Timeout(_) | Event::TransportError if is_refer => self.finish_refer(key, true),
            Event::Response { status, response } if call.refresh_tx.as_ref() == Some(&tx) => {
                self.on_refresh_response(key, status, &response.msg)
            }
            _ => {}
        }
    }

    fn on_agent_answer(&mut self, key: CallKey, answer: &Wire) {
        let response = answer.msg.as_ref();
        let Some(mut call) = self.calls.remove(&key) else {
            return;
        };
        if call.agent_dialog.is_some() {
            // A retransmitted 2xx: our ACK got lost.
            if let Some(ack) = call.agent_ack.clone() {
                self.send_now(ack);
            }
            self.calls.insert(key, call);
            return;
        }
        let Some(invite) = call.agent_invite.clone() else {
            self.calls.insert(key, call);
            return;
        };
        let agent_dialog = match Dialog::uac(&invite.msg, response) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(call_id = %call.id(), error = %e, "agent's 2xx cannot start a dialog");
                self.calls.insert(key, call);
                self.fail_before_answer(key, 502);
                return;
            }
        };
        if let Ok(ack) = agent_dialog.ack(response, None) {
            let target = self.target_for(&ack, &invite.target);
            let wire = Wire::new(target, ack);
            self.send_now(wire.clone());
            call.agent_ack = Some(wire);
        }
        // The agent may answer from another address than the one called,
        // and over the connection it will send its requests on.
        if let Some(peer) = call.agent_peer.as_mut() {
            peer.add(answer.target.addr.ip());
            if let Some(conn) = answer.target.conn {
                peer.set_conn(conn);
            }
        }
        self.by_dialog
            .insert(agent_dialog.id().clone(), (key, Leg::Agent));
        call.agent_dialog = Some(agent_dialog);
        call.agent_up = true;
        if !call.caller_up || call.end_reason.is_some() {
            // The caller left while the agent was answering.
            self.calls.insert(key, call);
            self.bye(key, Leg::Agent, &[]);
            return;
        }
        let events = self.events_tx.clone();
        let started = match call.media.as_mut() {
            // Early media runs already: the 200's SDP matters only if it
            // changes the 183's (none at all keeps it).
            Some(media) if media.started() => match response.body() {
                [] => Ok(()),
                sdp => media.agent_answer_again(sdp).map(|_| ()),
            },
            Some(media) => {
                let media = media.with_agent_ip(invite.target.addr.ip());
                self.media
                    .start(media, response.body(), key, events, GatewayEvent::Media)
            }
            None => Ok(()),
        };
        if let Err(f) = started {
            tracing::warn!(call_id = %call.id(), failure = %f, "agent media unusable");
            self.calls.insert(key, call);
            self.bye(key, Leg::Agent, &[]);
            self.fail_before_answer(key, f.status);
            return;
        }

        self.answer_caller(key, call);
    }

    /// Answers the caller (200 OK with our SDP answer) once the agent is
    /// up and the media runs. Takes the call out of the table, puts it back.
    pub(crate) fn answer_caller(&mut self, key: CallKey, mut call: super::call::Call) {
        let now = Instant::now();
        let kind = call.caller_invite.target.kind;
        let (via, contact) = (
            self.local_via(kind).unwrap_or_default(),
            self.local_contact(kind).unwrap_or_default(),
        );
        let sdp = call
            .media
            .as_ref()
            .map(|m| m.caller_answer())
            .unwrap_or_default();
        let built = call
            .caller_invite
            .msg
            .reply(200, None, Some(&call.caller_tag))
            .and_then(|m| m.with_header("Contact", &contact))
            .and_then(|m| m.with_header("Allow", dialog::ALLOW))
            .and_then(|m| m.with_header("Supported", dialog::SUPPORTED))
            .and_then(|m| m.with_body("application/sdp", sdp.into_bytes()));
        let mut ok = match built {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(call_id = %call.id(), error = %e, "cannot build the 200 OK");
                let agent_up = call.agent_up;
                self.calls.insert(key, call);
                if agent_up {
                    self.bye(key, Leg::Agent, &[]);
                }
                self.fail_before_answer(key, 500);
                return;
            }
        };
        if let Ok(UasTimer::Run(negotiated)) =
            dialog::negotiate_uas(&call.caller_invite.msg, &self.session_timer_config())
        {
            let _ = negotiated.apply(&mut ok);
            call.session = Some((SessionTimer::new(now, &negotiated), negotiated));
        }
        match Dialog::uas(&call.caller_invite.msg, &ok, &via) {
            Ok(d) => {
                self.by_dialog.insert(d.id().clone(), (key, Leg::Caller));
                call.caller_dialog = Some(d);
            }
            Err(e) => tracing::warn!(call_id = %call.id(), error = %e, "caller dialog not created"),
        }
        let wire = Wire::new(call.caller_invite.target.clone(), ok);
        let _ = self
            .table
            .send_response(now, &call.caller_tx, 200, wire.clone());
        call.phase = Phase::Connected;
        call.answered = Some((now, std::time::SystemTime::now()));
        tracing::info!(call_id = %call.id(), "call connected");
        self.calls.insert(key, call);
        self.await_caller_ack(key, wire);
        let max = Duration::from_secs(self.config.gateway.max_call_secs);
        self.arm(key, max, CallTimer::MaxDuration);
        self.arm_session(key);
    }

    /// Our 2xx to the caller's INVITE is out: it is re-sent over UDP
    /// until the ACK comes (`OkRetransmit`), and what would overtake that
    /// ACK (our BYE) waits for it. Over TCP/TLS nothing is re-sent, but the
    /// wait still ends after 64*T1, so a caller that never ACKs cannot hold
    /// the call.
    pub(crate) fn await_caller_ack(&mut self, key: CallKey, ok: Wire) {
        let schedule = OkRetransmit::new(Instant::now(), &self.timer_config);
        let next = schedule.poll_timeout();
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        call.caller_ok = Some((ok, schedule));
        if let Some(at) = next {
            self.timers.arm(at, key, CallTimer::Retransmit200);
        }
    }

    /// The 2xx retransmission timer is due: our 2xx again (UDP), or the
    /// end of the wait for the ACK.
    pub(crate) fn retransmit_200(&mut self, key: CallKey) {
        let now = Instant::now();
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let Some((ok, schedule)) = call.caller_ok.as_mut() else {
            return; // ACKed meanwhile: a stale timer.
        };
        match schedule.handle_timeout(now) {
            None => {}
            Some(OkStep::Resend) => {
                let (ok, next) = (ok.clone(), schedule.poll_timeout());
                if ok.target.kind == TransportKind::Udp {
                    self.send_now(ok);
                }
                if let Some(at) = next {
                    self.timers.arm(at, key, CallTimer::Retransmit200);
                }
            }
            Some(OkStep::GiveUp) => {
                tracing::warn!(call_id = %call.id(), "caller never ACKed our 200 OK; ending the call");
                // §13.3.1.4: without the ACK the dialog is to be ended with
                // a BYE; a held outcome goes out now, else the call ends here.
                self.end_call(key, EndReason::Error);
                self.caller_acked(key);
            }
        }
    }

    /// The ACK for a 2xx (end to end, new branch): the caller confirms.
    /// An ACK from anyone but the caller's peer is dropped (`peers`).
    pub(crate) fn on_ack(&mut self, msg: &SipMessage, origin: &super::peers::Origin) {
        let Some(id) = DialogId::of_received(msg) else {
            return;
        };
        if let Some(&(key, Leg::Caller)) = self.by_dialog.get(&id)
            && self.admit_in_dialog(key, Leg::Caller, msg, origin)
        {
            self.caller_acked(key);
        }
    }

    /// The caller ACKed our 2xx (or we gave up waiting): stop
    /// retransmitting it, and send the outcome if it was held for the ACK.
    pub(crate) fn caller_acked(&mut self, key: CallKey) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        call.caller_ok = None;
        if let Some((refer, headers)) = call.held_delivery.take() {
            self.deliver(key, refer.as_deref(), &headers);
            self.maybe_forget(key);
        }
    }

    /// A 2xx from the agent after its INVITE transaction ended.
    pub(crate) fn on_late_2xx(&mut self, msg: &SipMessage) {
        if let Some(id) = DialogId::of_received(msg)
            && let Some(&(key, Leg::Agent)) = self.by_dialog.get(&id)
            && let Some(ack) = self.calls.get(&key).and_then(|c| c.agent_ack.clone())
        {
            self.send_now(ack);
        }
    }
}
