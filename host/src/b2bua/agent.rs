//! The agent's SIP leg: which leg's machine a transaction's report goes
//! to, and what the agent's transactions report (for the call core, which
//! hands it to the leg, a `trunkline_sip::leg::OutboundLeg`).

use trunkline_call::CallInput;
use trunkline_sip::dialog::DialogId;
use trunkline_sip::leg::{InboundInput, OutboundInput};
use trunkline_sip::message::SipMessage;
use trunkline_sip::transaction::{Event, TransactionKey};

use super::call::{CallKey, Leg};
use super::gateway::Gateway;
use super::wire::Wire;

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
        let is_refresh = call.refresh_tx.as_ref() == Some(&tx);
        let dialled = call.core.dialled().is_some();
        match event {
            Event::Ack(_) if leg == Leg::Caller => self.on_caller_input(key, InboundInput::Ack),
            Event::Response { status, response } if is_refresh => {
                self.on_refresh_response(key, status, &response.msg)
            }
            event if leg != Leg::Caller || dialled => self.on_leg_tx_event(key, leg, &tx, event),
            event => self.on_caller_tx_event(key, &tx, event),
        }
    }

    /// A transaction of a leg we placed reported (the agent's, or the one
    /// we dialled toward the trunk): the leg decides.
    fn on_leg_tx_event(&mut self, key: CallKey, leg: Leg, tx: &TransactionKey, event: Event<Wire>) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let input = match &event {
            Event::Response { status, response } => {
                let (invite, peer) = match leg {
                    Leg::Agent => (call.core.agent(), call.agent_peer.as_mut()),
                    Leg::Transfer => (call.core.transfer_leg(), call.transfer_peer.as_mut()),
                    Leg::Caller => (call.core.dialled(), Some(&mut call.caller_peer)),
                };
                if (200..300).contains(status) && invite.map(|a| a.invite_key()) == Some(tx) {
                    // The peer may answer from another address than the
                    // one called, and over the connection it will send its
                    // requests on.
                    if let Some(peer) = peer {
                        peer.add(response.target.addr.ip());
                        if let Some(conn) = response.target.conn {
                            peer.set_conn(conn);
                        }
                    }
                }
                OutboundInput::Response {
                    tx,
                    status: *status,
                    response: &response.msg,
                }
            }
            Event::Timeout(_) => OutboundInput::Timeout(tx),
            Event::TransportError => OutboundInput::TransportError(tx),
            Event::Ack(_) | Event::Terminated => return,
        };
        let input = match leg {
            Leg::Agent => CallInput::Agent(input),
            Leg::Transfer => CallInput::Transfer(input),
            Leg::Caller => CallInput::Dialled(input),
        };
        self.tell_call(key, input);
    }

    /// A 2xx from the agent after its INVITE transaction ended.
    pub(crate) fn on_late_2xx(&mut self, msg: &SipMessage) {
        let Some(&(key, leg)) = DialogId::of_received(msg).and_then(|id| self.by_dialog.get(&id))
        else {
            return;
        };
        let dialled = self
            .calls
            .get(&key)
            .is_some_and(|c| c.core.dialled().is_some());
        match leg {
            Leg::Agent => self.tell_call(key, CallInput::Agent(OutboundInput::Late2xx(msg))),
            Leg::Transfer => self.tell_call(key, CallInput::Transfer(OutboundInput::Late2xx(msg))),
            Leg::Caller if dialled => {
                self.tell_call(key, CallInput::Dialled(OutboundInput::Late2xx(msg)))
            }
            Leg::Caller => {}
        }
    }
}
