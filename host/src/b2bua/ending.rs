//! The end of a call, whichever way it comes: `conclude` runs exactly once
//! with the version that routed the call, the outcome is stored for the
//! Handoff API *before* anything goes to Five9, then it is delivered (BYE
//! with headers, or REFER then BYE) and both legs are torn down.

use std::time::{Instant, SystemTime};

use trunkline_sip::dialog;
use trunkline_sip::leg::InboundState;
use trunkline_sip::message::SipMessage;
use trunkline_sip::transaction::TransactionKey;

use super::call::{CallKey, Leg, Phase};
use super::gateway::{CallTimer, Gateway};
use super::wire::Wire;
use crate::policy::{CallEnd, EndReason, Header, Transfer, default_shared_id};
use crate::store::OutcomeRecord;

impl Gateway {
    /// The agent leg failed before the call was answered: the caller gets
    /// `status`, the agent a CANCEL if its INVITE is still pending.
    pub(crate) fn fail_before_answer(&mut self, key: CallKey, status: u16) {
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        if call.phase == Phase::Calling {
            self.refuse_caller(key, status);
        }
        self.end_call(key, EndReason::Error);
    }

    /// Ends the call for `reason`; a no-op when it is already ending.
    pub(crate) fn end_call(&mut self, key: CallKey, reason: EndReason) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if call.end_reason.is_some() {
            return;
        }
        call.end_reason = Some(reason);
        let was = call.phase;
        call.phase = Phase::Ending;
        let call_id = call.id();
        tracing::info!(%call_id, ?reason, "call ending");

        // 1. Refuse the caller if we end it before an answer (max
        // duration, control API, shutdown), and stop the agent leg.
        if was == Phase::Calling {
            let status = if reason == EndReason::Error { 503 } else { 480 };
            self.refuse_caller(key, status);
        }
        self.hang_up_agent(key);
        self.stop_connector(key, end_reason_text(reason));

        // 2. Conclude and store, then 3. deliver to the caller.
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let trunk = self.config.trunks[call.trunk].clone();
        let duration_ms = call
            .answered
            .map(|(at, _)| at.elapsed().as_millis() as u64)
            .unwrap_or(0);
        let end = CallEnd {
            call: call.policy_call.clone(),
            target: call.target.clone(),
            attributes: call.attributes.clone(),
            agent_bye_headers: call.agent_bye_headers.clone(),
            dtmf: call.dtmf.clone(),
            reason,
            duration_ms,
            caller_connected: call.caller_connected(),
        };
        let concluded = self.registry.conclude(&trunk, call.version.as_ref(), &end);
        let outcome = &concluded.outcome;
        let deliver = end.caller_connected;
        let (delivery, refer_to) = match (&outcome.transfer, deliver) {
            (_, false) => ("none", None),
            (Transfer::Bye, true) => ("bye", None),
            (Transfer::Refer(uri), true) => ("refer", Some(uri.clone())),
        };
        let mut handoff = serde_json::Map::new();
        for f in &outcome.handoff {
            let value = serde_json::from_str(&f.json).unwrap_or(serde_json::Value::Null);
            handoff.insert(f.key.clone(), value);
        }
        let record = OutcomeRecord {
            shared_id: outcome
                .shared_id
                .clone()
                .unwrap_or_else(|| default_shared_id(&call.policy_call)),
            call_id: call_id.clone(),
            sip_call_id: call.policy_call.sip_call_id.clone(),
            trunk: trunk.name.clone(),
            tenant: trunk.tenant().to_owned(),
            contained: outcome.contained,
            destination: outcome.destination.clone(),
            delivery: delivery.to_owned(),
            refer_to: refer_to.clone(),
            headers_sent: if deliver {
                outcome.headers.clone()
            } else {
                Vec::new()
            },
            overflow_headers: concluded.overflow.clone(),
            handoff,
            end_reason: end_reason_text(reason).to_owned(),
            target: call.target.clone(),
            policy: trunk.policy.clone(),
            policy_version: call
                .version
                .as_ref()
                .map(|v| v.hash().to_owned())
                .unwrap_or_default(),
            policy_error: concluded.fallback.as_ref().map(|e| e.to_string()),
            started_ms: millis(call.started),
            answered_ms: call.answered.map(|(_, at)| millis(at)),
            ended_ms: millis(SystemTime::now()),
            // A fallback agent that connected makes the call a success.
            failure: call
                .failure
                .filter(|_| call.answered.is_none())
                .map(Into::into),
        };
        let shared_id = record.shared_id.clone();
        self.stats
            .call_ended(end_reason_text(reason), outcome.contained);
        match self.store.put(record) {
            Ok(()) => tracing::info!(%call_id, %shared_id, contained = outcome.contained,
                destination = %outcome.destination, delivery, "outcome stored"),
            Err(e) => {
                self.stats.store_error();
                tracing::error!(%call_id, %shared_id, error = %e, "outcome not stored")
            }
        }
        if let Some(media) = call.media.take() {
            media.stop();
        }
        let headers = outcome.headers.clone();
        if deliver {
            if refer_to.is_some() && call.caller.state() == InboundState::AwaitingAck {
                // Our 200 OK is not ACKed yet: the REFER waits for it (a
                // BYE the caller's leg holds itself).
                call.held_delivery = Some((refer_to, headers));
                return;
            }
            self.deliver(key, refer_to.as_deref(), &headers);
        }
        self.maybe_forget(key);
    }

    /// The outcome to the caller: a REFER to `refer`, else a BYE, both
    /// carrying `headers`.
    pub(crate) fn deliver(&mut self, key: CallKey, refer: Option<&str>, headers: &[Header]) {
        match refer {
            Some(uri) => self.refer(key, uri, headers),
            None => self.bye(key, Leg::Caller, headers),
        }
    }

    /// Sends a BYE on `leg`'s dialog with `headers`.
    pub(crate) fn bye(&mut self, key: CallKey, leg: Leg, headers: &[Header]) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if leg == Leg::Agent {
            self.hang_up_agent(key);
            return;
        }
        let extra: Vec<(&str, &str)> = headers
            .iter()
            .map(|h| (h.name.as_str(), h.value.as_str()))
            .collect();
        call.caller.hang_up(&extra);
        self.drive_caller(key);
    }

    fn refer(&mut self, key: CallKey, uri: &str, headers: &[Header]) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let extra: Vec<(&str, &str)> = headers
            .iter()
            .map(|h| (h.name.as_str(), h.value.as_str()))
            .collect();
        let refer = call
            .caller
            .dialog_mut()
            .and_then(|d| d.refer(uri, None, &extra).ok());
        let Some(refer) = refer else {
            tracing::warn!(call_id = %call.id(), uri, "cannot build the REFER; ending with a BYE");
            self.bye(key, Leg::Caller, headers);
            return;
        };
        call.delivery_headers = headers.to_vec();
        match self.send_request(key, Leg::Caller, refer) {
            Some(tx) => {
                if let Some(call) = self.calls.get_mut(&key) {
                    call.refer_tx = Some(tx);
                }
            }
            None => {
                tracing::warn!(uri, "the REFER could not be sent; ending with a BYE");
                self.finish_refer(key, true);
                return;
            }
        }
        let wait = std::time::Duration::from_secs(self.config.gateway.refer_timeout_secs);
        self.arm(key, wait, CallTimer::ReferTimeout);
    }

    /// The REFER is over: a plain BYE after a transfer, or the BYE with the
    /// outcome headers when the transfer failed.
    pub(crate) fn finish_refer(&mut self, key: CallKey, failed: bool) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if call.refer_tx.take().is_none() && call.delivery_headers.is_empty() {
            return;
        }
        let headers = std::mem::take(&mut call.delivery_headers);
        let call_id = call.id();
        if call.caller_up() {
            self.bye(key, Leg::Caller, if failed { &headers } else { &[] });
        }
        if failed {
            // The record said "refer"; Five9 got the headers on the BYE.
            if let Some(mut record) = self.store.by_call_id(&call_id) {
                record.delivery = "bye-after-failed-refer".into();
                if let Err(e) = self.store.put(record) {
                    tracing::error!(%call_id, error = %e, "outcome not updated");
                }
            }
        }
        self.maybe_forget(key);
    }

    /// Sends a request built by a dialog in a new client transaction.
    pub(crate) fn send_request(
        &mut self,
        key: CallKey,
        leg: Leg,
        request: SipMessage,
    ) -> Option<TransactionKey> {
        let call = self.calls.get(&key)?;
        let fallback = match leg {
            Leg::Caller => call.caller_invite.target.clone(),
            Leg::Agent => call.agent_target.clone()?,
        };
        let target = self.target_for(&request, &fallback);
        self.send_to(key, leg, Wire::new(target, request))
    }

    pub(crate) fn send_to(&mut self, key: CallKey, leg: Leg, wire: Wire) -> Option<TransactionKey> {
        let via = wire.msg.top_via().ok()?;
        let method = wire.msg.method()?.clone();
        let tx = TransactionKey::client(via.branch()?, method.as_str()).ok()?;
        let rel = wire.target.kind.reliability();
        let started = if method == trunkline_sip::message::Method::Invite {
            // The agent's INVITE (first, or with credentials) or a
            // re-INVITE: a failure is ACKed inside the transaction, a 2xx
            // by the dialog.
            self.table
                .start_client_invite(Instant::now(), tx.clone(), rel, wire, failure_acker())
        } else {
            self.table
                .start_client(Instant::now(), tx.clone(), rel, wire)
        };
        started.ok()?;
        self.by_tx.insert(tx.clone(), (key, leg));
        if let Some(call) = self.calls.get_mut(&key) {
            call.pending.push(tx.clone());
        }
        Some(tx)
    }

    pub(crate) fn on_call_timer(&mut self, key: CallKey, timer: CallTimer) {
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        match timer {
            CallTimer::CallerLeg => self.caller_leg_timer(key),
            CallTimer::AgentLeg => self.agent_leg_timer(key),
            CallTimer::RingTimeout if call.phase == Phase::Calling => {
                tracing::info!(call_id = %call.id(), "agent rang too long");
                self.note_failure(key, trunkline_sip::leg::LegFailure::ring_timeout());
                self.fail_before_answer(key, 480);
            }
            CallTimer::MaxDuration if call.phase == Phase::Connected => {
                self.end_call(key, EndReason::MaxDuration)
            }
            CallTimer::Session => self.on_session_timer(key),
            CallTimer::ReferTimeout if call.refer_tx.is_some() => {
                tracing::info!(call_id = %call.id(), "no final NOTIFY for the REFER; sending BYE");
                self.finish_refer(key, true);
            }
            _ => {}
        }
    }

    /// Forgets an ended call once nothing of it is running any more.
    pub(crate) fn maybe_forget(&mut self, key: CallKey) {
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        let done = call.phase == Phase::Ending
            && call.pending.is_empty()
            && call.refer_tx.is_none()
            && call.caller.state() == InboundState::Done
            && !call.agent_busy();
        if !done {
            return;
        }
        for id in call.dialog_ids() {
            self.by_dialog.remove(&id);
        }
        // The caller's INVITE transaction may still absorb retransmissions
        // for a while; its index entry goes when it terminates.
        self.calls.remove(&key);
        let calls = &self.calls;
        self.timers.prune(calls.len(), |k| calls.contains_key(&k));
    }
}

/// The ACK an INVITE client transaction sends for a non-2xx final
/// response (§17.1.1.3). Should the response's To not do, the INVITE's own
/// is used: an ACK either way, never a copy of the INVITE.
fn failure_acker() -> trunkline_sip::transaction::AckBuilder<Wire> {
    Box::new(|invite: &Wire, response: &Wire| {
        let ack = dialog::ack_for_failure(&invite.msg, &response.msg)
            .or_else(|_| dialog::ack_for_failure(&invite.msg, &invite.msg));
        match ack {
            Ok(ack) => Wire::new(invite.target.clone(), ack),
            Err(_) => invite.clone(),
        }
    })
}

pub(crate) fn millis(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The WIT name of an end reason.
pub(crate) fn end_reason_text(r: EndReason) -> &'static str {
    match r {
        EndReason::AgentHangup => "agent-hangup",
        EndReason::AgentRequest => "agent-request",
        EndReason::CallerHangup => "caller-hangup",
        EndReason::MaxDuration => "max-duration",
        EndReason::MediaTimeout => "media-timeout",
        EndReason::Error => "error",
    }
}
