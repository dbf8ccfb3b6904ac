//! The end of a call, whichever way it comes (the call core decides when):
//! `conclude` runs exactly once with the version that routed the call, and
//! the outcome is stored for the Handoff API *before* it goes back to the
//! core, which delivers it to Five9 (BYE with headers, or REFER then BYE).
//! Also: requests of either leg into client transactions, the calls'
//! timers, and forgetting a call once nothing of it runs.

use std::time::{Instant, SystemTime};

use trunkline_call::{EndCause, Outcome, ReferFailure};
use trunkline_sip::dialog;
use trunkline_sip::message::SipMessage;
use trunkline_sip::transaction::TransactionKey;

use super::call::{CallKey, Leg, format_call_id};
use super::gateway::{CallTimer, Gateway};
use super::wire::Wire;
use crate::policy::{CallEnd, EndReason, Transfer, default_shared_id};
use crate::store::OutcomeRecord;

impl Gateway {
    /// The call ended (the core's `Conclude`): stop its connector, run
    /// `conclude` with the version that routed it, store the record, stop
    /// the media, then hand the outcome back for delivery.
    pub(crate) fn conclude(
        &mut self,
        key: CallKey,
        reason: EndReason,
        cause: EndCause,
        caller_connected: bool,
    ) {
        self.log_end(key, reason, cause);
        self.stop_connector(key, end_reason_text(reason));
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if let Some(active) = call
            .outbound
            .as_ref()
            .and_then(|name| self.outbound_active.get_mut(name))
        {
            // Conclude runs once per call: the trunk has room again.
            *active = active.saturating_sub(1);
        }
        let call_id = call.id();
        self.release_transfer(key);
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
            caller_connected,
        };
        let concluded = self.registry.conclude(&trunk, call.version.as_ref(), &end);
        let outcome = &concluded.outcome;
        let deliver = end.caller_connected;
        // A leg we dialled is not transferred by REFER: its BYE carries the
        // headers (the core does the same).
        let dialled = call.core.dialled().is_some();
        let (delivery, refer_to) = match (&outcome.transfer, deliver) {
            (_, false) => ("none", None),
            (Transfer::Bye, true) => ("bye", None),
            (Transfer::Refer(_), true) if dialled => ("bye", None),
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
                .core
                .failure()
                .filter(|_| call.answered.is_none())
                .map(Into::into),
            transfer: call.transfer.as_ref().map(|t| t.record()),
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
        let headers: Vec<(String, String)> = outcome
            .headers
            .iter()
            .map(|h| (h.name.clone(), h.value.clone()))
            .collect();
        let outcome = match refer_to {
            _ if !deliver => Outcome::Nothing,
            Some(to) => Outcome::Refer { to, headers },
            None => Outcome::Bye(headers),
        };
        call.core.concluded(Instant::now(), outcome);
    }

    /// The REFER failed and the outcome went on a BYE: the record says so.
    pub(crate) fn refer_failed(&mut self, key: CallKey, why: ReferFailure) {
        let call_id = format_call_id(key);
        tracing::info!(%call_id, %why, "transfer failed; sending BYE with the outcome");
        if let Some(mut record) = self.store.by_call_id(&call_id) {
            record.delivery = "bye-after-failed-refer".into();
            if let Err(e) = self.store.put(record) {
                tracing::error!(%call_id, error = %e, "outcome not updated");
            }
        }
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
            Leg::Transfer => call.transfer_target.clone()?,
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
        match timer {
            CallTimer::Core => self.core_timer(key),
            CallTimer::Session => self.on_session_timer(key),
        }
    }

    /// Forgets an ended call once nothing of it is running any more.
    pub(crate) fn maybe_forget(&mut self, key: CallKey) {
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        let done = call.core.is_finished() && call.pending.is_empty();
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
