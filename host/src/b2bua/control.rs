//! Orders from agents about a call in progress — from the control API (any
//! connector) and from WebSocket/builtin agents — and the call's public
//! view for the API.

use serde::Serialize;

use trunkline_call::{CallState, Progress};

use super::call::{Call, CallKey, parse_call_id};
use super::ending::millis;
use super::gateway::Gateway;
use crate::policy::{Attribute, EndReason, default_shared_id};

/// What an agent asks of its call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlOrder {
    /// Set attributes (same key replaces), for `conclude`.
    SetAttributes(Vec<Attribute>),
    /// Set attributes, then end the call (reason `agent-request`).
    End(Vec<Attribute>),
    /// Hand the caller back toward `destination`: sets `contained=false`,
    /// `destination` and `transfer.destination` (after `attributes`), then
    /// ends the call
    /// (reason `agent-request`). The policy's `conclude` turns that into
    /// the BYE headers or a REFER.
    Transfer {
        /// The queue, skill or `sip:` URI the caller should go to.
        destination: String,
        /// Further attributes, set first.
        attributes: Vec<Attribute>,
    },
    /// Dial a target and bridge the caller to it in the agent's place
    /// (cold), or after the agent's brief (warm).
    Bridge(super::transfer::TransferRequest),
    /// Warm transfer: bridge the caller to the briefed target and leave.
    CompleteTransfer,
    /// Drop the transfer target; the caller stays with the agent.
    CancelTransfer,
    /// Send key presses (RFC 4733) to the caller, or to the transfer
    /// target (`to_target`), e.g. to reach an extension behind an IVR.
    Dtmf {
        /// `0`-`9`, `*`, `#`, `A`-`D`.
        digits: String,
        /// Toward the transfer target rather than the caller.
        to_target: bool,
    },
}

/// Why an order was not carried out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// No active call has that id.
    #[error("no such call")]
    NoSuchCall,
    /// The call is already ending; attributes can no longer change.
    #[error("the call is already ending")]
    Ending,
    /// The gateway has stopped.
    #[error("the gateway has stopped")]
    Stopped,
    /// The call cannot take the order in its state (a transfer before the
    /// answer, or during another): 409.
    #[error("{0}")]
    Conflict(String),
    /// The order names something that cannot be used (an unknown trunk, a
    /// number that cannot be dialled): 422.
    #[error("{0}")]
    Invalid(String),
}

/// A call in progress, as the control API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallInfo {
    /// Trunkline's call id.
    pub call_id: String,
    /// The caller leg's SIP Call-ID.
    pub sip_call_id: String,
    /// The id the outcome will be filed under (unless `conclude` picks
    /// another).
    pub shared_id: String,
    /// The trunk it came in on.
    pub trunk: String,
    /// The trunk's tenant.
    pub tenant: String,
    /// The agent target.
    pub target: String,
    /// `calling` (agent not answered yet) or `connected`; a call we place
    /// is first `dialling`, `ringing` or `early-media` (the number), then
    /// `answered` (the agent is being reached).
    pub state: &'static str,
    /// A call we place: the outbound trunk it goes through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outbound: Option<String>,
    /// Caller (From URI).
    pub from: String,
    /// The Request-URI.
    pub to: String,
    /// Attributes so far (decision's, then set during the call).
    pub attributes: Vec<Attribute>,
    /// DTMF digits pressed so far.
    pub dtmf: String,
    /// When the INVITE arrived (ms since the Unix epoch).
    pub started_ms: u64,
    /// When the call was answered, if it was.
    pub answered_ms: Option<u64>,
    /// The last transfer asked for with a `mode`: its target, trunk and
    /// `result` (`dialling`, `briefing`, `bridged`, `failed` with
    /// `failure` and `status`, `cancelled`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transfer: Option<crate::store::TransferRecord>,
}

impl Gateway {
    /// Carries out `order` on the call with id `call_id`.
    pub(crate) fn on_control(
        &mut self,
        call_id: &str,
        order: ControlOrder,
    ) -> Result<(), ControlError> {
        let key = parse_call_id(call_id).ok_or(ControlError::NoSuchCall)?;
        self.apply_order(key, order)
    }

    /// An agent's order for call `key`.
    pub(crate) fn apply_order(
        &mut self,
        key: CallKey,
        order: ControlOrder,
    ) -> Result<(), ControlError> {
        let call = self.calls.get_mut(&key).ok_or(ControlError::NoSuchCall)?;
        if call.state().is_ending() {
            return Err(ControlError::Ending);
        }
        let call_id = call.id();
        match order {
            ControlOrder::SetAttributes(attrs) => {
                tracing::info!(%call_id, count = attrs.len(), "agent set attributes");
                for a in attrs {
                    call.set_attribute(&a.key, &a.value);
                }
            }
            ControlOrder::End(attrs) => {
                for a in attrs {
                    call.set_attribute(&a.key, &a.value);
                }
                tracing::info!(%call_id, "agent ended the call");
                self.end_call(key, EndReason::AgentRequest);
            }
            ControlOrder::Transfer {
                destination,
                attributes,
            } => {
                for a in attributes {
                    call.set_attribute(&a.key, &a.value);
                }
                call.set_attribute("contained", "false");
                call.set_attribute("destination", &destination);
                call.set_attribute("transfer.destination", &destination);
                tracing::info!(%call_id, %destination, "agent transferred the call");
                self.end_call(key, EndReason::AgentRequest);
            }
            ControlOrder::Bridge(request) => self.start_transfer(key, request)?,
            ControlOrder::CompleteTransfer => self.finish_transfer(key, true)?,
            ControlOrder::CancelTransfer => self.finish_transfer(key, false)?,
            ControlOrder::Dtmf { digits, to_target } => {
                let media = call.media.as_mut().ok_or(ControlError::Conflict(
                    "the call has no media running".into(),
                ))?;
                media
                    .send_digits(&digits, to_target)
                    .map_err(ControlError::Invalid)?;
                tracing::info!(%call_id, count = digits.len(), to_target, "sending key presses");
            }
        }
        Ok(())
    }

    pub(crate) fn call_info(&self, call: &Call) -> CallInfo {
        let trunk = &self.config.trunks[call.trunk];
        CallInfo {
            call_id: call.id(),
            sip_call_id: call.policy_call.sip_call_id.clone(),
            shared_id: default_shared_id(&call.policy_call),
            trunk: trunk.name.clone(),
            tenant: trunk.tenant().to_owned(),
            target: call.target.clone(),
            state: match call.state() {
                CallState::Dialling { progress, .. } => match progress {
                    Progress::Quiet => "dialling",
                    Progress::Rang => "ringing",
                    Progress::EarlyMedia => "early-media",
                },
                // A call we place: the number answered, the agent is
                // being reached.
                CallState::Calling { .. } if call.outbound.is_some() => "answered",
                CallState::Calling { .. } => "calling",
                CallState::Connected { .. } => "connected",
                CallState::Ending { .. } => "ending",
            },
            outbound: call.outbound.clone(),
            from: call.policy_call.from_uri.clone(),
            to: call.policy_call.request_uri.clone(),
            attributes: call.attributes.clone(),
            dtmf: call.dtmf.clone(),
            started_ms: millis(call.started),
            answered_ms: call.answered.map(|(_, at)| millis(at)),
            transfer: call.transfer.as_ref().map(|t| t.record()),
        }
    }
}
