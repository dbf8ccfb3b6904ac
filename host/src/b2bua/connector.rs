//! Calls whose agent is a WebSocket stream or the builtin agent: no second
//! SIP leg, the relay's agent leg is an in-process tap and a connector task
//! speaks to the agent (see [`crate::connector`]).
//!
//! The call goes through the same phases as a SIP-agent call: `Calling`
//! until the connector is ready (the ring timeout applies), then the caller
//! is answered; it ends through `conclude` whichever side ends it.

use tokio::sync::mpsc;
use trunkline_media::g711::Law;

use trunkline_call::CallInput;
use trunkline_sip::leg::LegFailure;

use super::call::CallKey;
use super::control::ControlOrder;
use super::gateway::Gateway;
use crate::config::RouteFallback;
use crate::connector::{
    self, AgentEnd, CallContext, ConnectorTarget, Input, Report, Reporter, Session, TAP_CAPACITY,
};
use crate::policy::{Attribute, default_shared_id};

/// The gateway's link to a running connector.
pub(crate) struct ConnectorLink {
    /// `websocket` or `builtin`, for logs and metrics.
    pub(crate) kind: &'static str,
    /// DTMF and stop orders; dropped when the call ends.
    pub(crate) input: mpsc::Sender<Input>,
}

impl Gateway {
    /// Starts the connector of a new call routed to `target`. The call is
    /// in the table, in `Calling`.
    pub(crate) fn start_connector(&mut self, key: CallKey, target: ConnectorTarget) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let Some(media) = call.media.as_mut() else {
            return;
        };
        // Agents hear μ-law (the format WebSocket media streams use); the
        // relay transcodes when Five9 sends A-law.
        let law = Law::Ulaw;
        let tap = media.use_tap(law, TAP_CAPACITY);
        let (input_tx, input_rx) = mpsc::channel(32);
        let pc = &call.policy_call;
        let context = CallContext {
            call_id: call.id(),
            sip_call_id: pc.sip_call_id.clone(),
            shared_id: default_shared_id(pc),
            trunk: pc.trunk.clone(),
            target: call.target.clone(),
            from: pc.from_uri.clone(),
            to: pc.request_uri.clone(),
            attributes: call.attributes.clone(),
            x_headers: pc
                .headers
                .iter()
                .filter(|h| h.name.len() > 2 && h.name[..2].eq_ignore_ascii_case("x-"))
                .cloned()
                .collect(),
        };
        let session = Session {
            call: context,
            media: tap,
            law,
            input: input_rx,
            report: Reporter::new(key, self.events_tx.clone()),
        };
        let kind = match target {
            ConnectorTarget::WebSocket(url) => {
                tokio::spawn(connector::ws::run(
                    url,
                    session,
                    self.config.websocket.clone(),
                    self.stats.playout.clone(),
                ));
                "websocket"
            }
            ConnectorTarget::Builtin(name) => {
                tokio::spawn(connector::builtin::run(
                    name,
                    session,
                    self.config.builtin.clone(),
                ));
                "builtin"
            }
        };
        call.connector = Some(ConnectorLink {
            kind,
            input: input_tx,
        });
        tracing::debug!(call_id = %call.id(), kind, "connector started");
    }

    /// A connector's report about call `key`.
    pub(crate) fn on_connector(&mut self, key: u64, report: Report) {
        let Some(call) = self.calls.get(&key) else {
            return; // The call is gone; the connector got its Stop.
        };
        if call.core.transferred() {
            return; // The caller talks to a transfer target; it got its Stop.
        }
        let kind = call.connector.as_ref().map_or("connector", |c| c.kind);
        let call_id = call.id();
        match report {
            Report::Ready => self.connector_ready(key),
            Report::Failed(why) => {
                tracing::warn!(%call_id, kind, %why, "agent connector failed");
                self.stats.connector_event(kind, "connect-failed");
                self.connector_failed(key, &why);
            }
            Report::SetAttributes(attrs) => {
                let _ = self.apply_order(key, ControlOrder::SetAttributes(attrs));
            }
            Report::End { attributes, how } => match how {
                AgentEnd::Request => {
                    let _ = self.apply_order(key, ControlOrder::End(attributes));
                }
                AgentEnd::Hangup => {
                    self.set_attributes(key, attributes);
                    tracing::info!(%call_id, kind, "agent hung up");
                    // A cold transfer dialling for the caller goes on.
                    self.tell_call(key, CallInput::AgentLeft);
                }
            },
            Report::Transfer {
                destination,
                attributes,
            } => {
                let _ = self.apply_order(
                    key,
                    ControlOrder::Transfer {
                        destination,
                        attributes,
                    },
                );
            }
            Report::DialTransfer(request) => {
                if let Err(e) = self.apply_order(key, ControlOrder::Bridge(request)) {
                    tracing::info!(%call_id, kind, error = %e, "agent's transfer refused");
                    self.connector_transfer_failed(key, "refused", None, Some(e.to_string()));
                }
            }
            Report::SendDtmf { digits, to_target } => {
                if let Err(e) = self.apply_order(key, ControlOrder::Dtmf { digits, to_target }) {
                    tracing::info!(%call_id, kind, error = %e, "agent's key presses refused");
                }
            }
            Report::FinishTransfer { complete } => {
                let order = if complete {
                    ControlOrder::CompleteTransfer
                } else {
                    ControlOrder::CancelTransfer
                };
                if let Err(e) = self.apply_order(key, order) {
                    tracing::info!(%call_id, kind, error = %e, "agent's transfer order refused");
                    self.connector_transfer_failed(key, "refused", None, Some(e.to_string()));
                }
            }
            Report::Closed(why) => {
                tracing::warn!(%call_id, kind, %why, "agent went away");
                self.stats.connector_event(kind, "closed");
                let attrs = vec![Attribute {
                    key: "agent.error".into(),
                    value: why,
                }];
                self.set_attributes(key, attrs);
                self.tell_call(key, CallInput::AgentLeft);
            }
        }
    }

    /// The connector could not reach its agent before the answer: the
    /// trunk's fallback decides, as when the policy fails. A `connect`
    /// fallback to another target is tried once; a `reject` fallback's
    /// status goes to the caller; otherwise `503`.
    fn connector_failed(&mut self, key: CallKey, why: &str) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if !call.state().is_calling() {
            return;
        }
        call.connector = None;
        call.set_attribute("agent.error", why);
        call.core.note_failure(LegFailure::unreachable());
        let trunk = &self.config.trunks[call.trunk];
        let status = match &trunk.fallback {
            RouteFallback::Connect { target } if *target != call.target && !call.fell_back => {
                tracing::info!(call_id = %call.id(), %target, "trying the trunk's fallback agent");
                call.fell_back = true;
                call.target = target.clone();
                self.reach_agent(key);
                return;
            }
            RouteFallback::Reject { status, .. } => *status,
            RouteFallback::Connect { .. } => 503,
        };
        let input = CallInput::AgentUnreachable {
            failure: LegFailure::unreachable(),
            status,
        };
        self.tell_call(key, input);
    }

    fn set_attributes(&mut self, key: CallKey, attrs: Vec<Attribute>) {
        if let Some(call) = self.calls.get_mut(&key)
            && !call.state().is_ending()
        {
            for a in attrs {
                call.set_attribute(&a.key, &a.value);
            }
        }
    }

    /// The connector is connected: the core starts the media and answers
    /// the caller.
    fn connector_ready(&mut self, key: CallKey) {
        self.tell_call(key, CallInput::AgentReady);
    }

    /// Tells the call's connector to stop (the call is ending).
    pub(crate) fn stop_connector(&mut self, key: CallKey, reason: &str) {
        if let Some(link) = self.calls.get_mut(&key).and_then(|c| c.connector.take()) {
            let _ = link.input.try_send(Input::Stop {
                reason: reason.to_owned(),
            });
        }
    }

    /// Tells the call's connector its transfer left the caller with it.
    pub(crate) fn connector_transfer_failed(
        &mut self,
        key: CallKey,
        failure: &str,
        status: Option<u16>,
        reason: Option<String>,
    ) {
        if let Some(link) = self.calls.get(&key).and_then(|c| c.connector.as_ref()) {
            let input = Input::TransferFailed {
                failure: failure.to_owned(),
                status,
                reason,
            };
            if link.input.try_send(input).is_err() {
                tracing::warn!(call_id = %super::call::format_call_id(key),
                    "connector is not reading its input: transfer_failed dropped");
            }
        }
    }

    /// A key press from the caller, for the connector.
    pub(crate) fn connector_dtmf(&mut self, key: CallKey, digit: char, duration_ms: u32) {
        if let Some(link) = self.calls.get(&key).and_then(|c| c.connector.as_ref())
            && link
                .input
                .try_send(Input::Dtmf { digit, duration_ms })
                .is_err()
        {
            tracing::warn!(call_id = %super::call::format_call_id(key), %digit,
                "connector is not reading its input: key press dropped");
        }
    }
}
