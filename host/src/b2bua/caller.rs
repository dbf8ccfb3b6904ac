//! The caller's leg: what reaches it from the network (its ACK, CANCEL,
//! BYE, the answers to our requests) goes to the call core, which hands it
//! to the leg (a `trunkline_sip::leg::InboundLeg`) and decides; `drive`
//! carries out the rest. The leg keeps the SIP rules: one To tag, the
//! 2xx's schedule, no BYE before the ACK, 487 on CANCEL.

use trunkline_call::CallInput;
use trunkline_sip::dialog::DialogId;
use trunkline_sip::leg::{InboundInput, OutboundInput};
use trunkline_sip::message::SipMessage;
use trunkline_sip::transaction::{Event, TransactionKey};

use super::call::{CallKey, Leg};
use super::gateway::Gateway;
use super::wire::Wire;

impl Gateway {
    /// Hands the caller's leg `input` and carries out what follows.
    pub(crate) fn on_caller_input(&mut self, key: CallKey, input: InboundInput<'_>) {
        self.tell_call(key, CallInput::Caller(input));
    }

    /// A transaction of ours toward the caller (our BYE, our REFER)
    /// reported.
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
        let dialled = self
            .calls
            .get(&key)
            .is_some_and(|c| c.core.dialled().is_some());
        match leg {
            Leg::Caller if dialled => self.tell_call(key, CallInput::Dialled(OutboundInput::Ack)),
            Leg::Caller => self.on_caller_input(key, InboundInput::Ack),
            Leg::Agent => self.tell_call(key, CallInput::Agent(OutboundInput::Ack)),
            Leg::Transfer => self.tell_call(key, CallInput::Transfer(OutboundInput::Ack)),
        }
    }
}
