//! A leg that calls us: the peer's INVITE from its arrival to the last
//! transaction, free of I/O (RFC 3261 §13.3 UAS, §9.2 CANCEL, §15 BYE).
//!
//! The owner keeps the transaction table: the leg's responses go on the
//! INVITE's server transaction ([`InboundAction::Respond`]); the
//! retransmissions of our 2xx, which outlive that transaction (RFC 6026),
//! are the leg's own ([`InboundAction::Retransmit`]). The leg reports, in
//! this order: `Acked` once the 2xx is acknowledged; exactly one end
//! (`Cancelled` before an answer, `Ended` after, `Rejected` when we
//! refused); `Finished` when nothing is left to send or wait for.
//!
//! Rules a Five9 SBC expects of a UAS:
//! - Our 2xx is re-sent over UDP from T1, doubling to T2, until the ACK;
//!   over TCP/TLS it is not re-sent. Either way, no ACK within 64*T1 ends
//!   the session with a BYE (§13.3.1.4): the leg reports `AckTimedOut`,
//!   and the owner ends the call (its hang-up, with whatever headers the
//!   outcome has, goes out at once).
//! - Our BYE never overtakes the ACK (§15): a hang-up before the ACK is
//!   held until it comes, or until we give up waiting.
//! - A CANCEL before our final response ends the INVITE with 487
//!   (§9.2); after it, it changes nothing.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use super::invite::bye_in;
use super::retransmit::{OkRetransmit, OkStep};
use crate::dialog::{self, Dialog, DialogError, DialogId, Negotiated};
use crate::message::{Method, SipMessage, new_tag};
use crate::transaction::{Reliability, Timers, TransactionKey};

/// Where the leg is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboundState {
    /// The INVITE is in; no response above 100 yet.
    Offered,
    /// A provisional is out (180, or 183 with early media).
    Early,
    /// Our 2xx is out, the ACK is not in.
    AwaitingAck,
    /// Answered and acknowledged.
    Confirmed,
    /// Our BYE is out.
    Ending,
    /// Nothing left to do.
    Done,
}

impl InboundState {
    /// Before our final response.
    pub fn is_pending(self) -> bool {
        matches!(self, InboundState::Offered | InboundState::Early)
    }
}

/// What the leg needs to know of us.
#[derive(Debug, Clone)]
pub struct InboundConfig {
    /// The transaction timers (T1/T2 set the 2xx schedule).
    pub timers: Timers,
    /// UDP, or TCP/TLS (no retransmissions).
    pub reliability: Reliability,
    /// Our Via for requests in the dialog: `SIP/2.0/UDP 192.0.2.1:5060`.
    pub local_via: String,
    /// Our Contact value.
    pub contact: String,
}

/// What the owner hands the leg.
#[derive(Debug, Clone, Copy)]
pub enum InboundInput<'a> {
    /// The ACK for our 2xx.
    Ack,
    /// The peer's CANCEL matched the INVITE (the owner answered the
    /// CANCEL itself with 200).
    Cancel,
    /// The peer's BYE in the dialog (the owner answered it).
    PeerBye,
    /// A response to our BYE.
    Response {
        /// The transaction.
        tx: &'a TransactionKey,
        /// Its status.
        status: u16,
    },
    /// Timer F of our BYE fired.
    Timeout(&'a TransactionKey),
    /// The transport could not deliver our BYE.
    TransportError(&'a TransactionKey),
}

/// What the leg asks of its owner, or tells it.
#[derive(Debug, Clone, PartialEq)]
pub enum InboundAction {
    /// Send this response on the INVITE's server transaction.
    Respond {
        /// Its status.
        status: u16,
        /// The response.
        response: SipMessage,
    },
    /// Send our 2xx again, outside the transaction.
    Retransmit(SipMessage),
    /// Start a non-INVITE client transaction (our BYE).
    StartRequest {
        /// Its key.
        tx: TransactionKey,
        /// The request.
        request: SipMessage,
    },
    /// The dialog is up (our 2xx is out): its id, for in-dialog routing.
    DialogUp(DialogId),
    /// The peer acknowledged our 2xx.
    Acked,
    /// No ACK within 64*T1: the owner must end the call
    /// ([`InboundLeg::hang_up`] now sends the BYE at once); a hang-up held
    /// for the ACK goes out by itself.
    AckTimedOut,
    /// The peer gave up before our final response; 487 is out.
    Cancelled,
    /// We refused the call with this status.
    Rejected(u16),
    /// The answered leg ended.
    Ended {
        /// The peer's BYE (else ours).
        by_peer: bool,
    },
    /// The leg may be dropped; nothing follows.
    Finished,
}

/// One inbound leg (see the module docs).
pub struct InboundLeg {
    state: InboundState,
    /// Shared with whoever else keeps it (the owner's transaction).
    invite: Arc<SipMessage>,
    /// Our To tag, the same on every response.
    tag: String,
    config: InboundConfig,
    dialog: Option<Dialog>,
    ok: Option<(SipMessage, OkRetransmit)>,
    /// Our hang-up, held until the ACK: the BYE's headers.
    held_bye: Option<Vec<(String, String)>>,
    bye_tx: Option<TransactionKey>,
    actions: VecDeque<InboundAction>,
}

impl std::fmt::Debug for InboundLeg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboundLeg")
            .field("state", &self.state)
            .field("dialog", &self.dialog.as_ref().map(Dialog::id))
            .finish_non_exhaustive()
    }
}

impl InboundLeg {
    /// A leg for the peer's `invite` (already admitted and checked).
    pub fn new(
        invite: impl Into<Arc<SipMessage>>,
        config: InboundConfig,
    ) -> Result<InboundLeg, DialogError> {
        let invite = invite.into();
        if invite.method() != Some(&Method::Invite) {
            return Err(DialogError::NotInvite);
        }
        Ok(InboundLeg {
            state: InboundState::Offered,
            invite,
            tag: new_tag(),
            config,
            dialog: None,
            ok: None,
            held_bye: None,
            bye_tx: None,
            actions: VecDeque::new(),
        })
    }

    /// Where the leg is.
    pub fn state(&self) -> InboundState {
        self.state
    }

    /// The peer's INVITE.
    pub fn invite(&self) -> &SipMessage {
        &self.invite
    }

    /// Our To tag.
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// The dialog, once answered.
    pub fn dialog(&self) -> Option<&Dialog> {
        self.dialog.as_ref()
    }

    /// The dialog, for in-dialog requests the owner builds.
    pub fn dialog_mut(&mut self) -> Option<&mut Dialog> {
        self.dialog.as_mut()
    }

    /// The next action, if any.
    pub fn poll_action(&mut self) -> Option<InboundAction> {
        self.actions.pop_front()
    }

    /// When [`InboundLeg::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.ok.as_ref().and_then(|(_, s)| s.poll_timeout())
    }

    /// A provisional (180, 183) with an optional SDP body (early media).
    pub fn progress(&mut self, status: u16, sdp: Option<&[u8]>) -> Result<(), DialogError> {
        if !self.state.is_pending() || !(101..=199).contains(&status) {
            return Ok(());
        }
        let mut response = self.invite.reply(status, None, Some(&self.tag))?;
        response.push_header("Contact", &self.config.contact)?;
        if let Some(sdp) = sdp {
            response = response.with_body("application/sdp", sdp.to_vec())?;
        }
        self.state = InboundState::Early;
        self.actions
            .push_back(InboundAction::Respond { status, response });
        Ok(())
    }

    /// Our 2xx with `sdp`, and the session timer when one was negotiated
    /// ([`dialog::negotiate_uas`]). Starts the dialog and the 2xx's
    /// schedule.
    pub fn answer(
        &mut self,
        now: Instant,
        sdp: &[u8],
        session: Option<&Negotiated>,
    ) -> Result<(), DialogError> {
        if !self.state.is_pending() {
            return Ok(());
        }
        let mut ok = self
            .invite
            .reply(200, None, Some(&self.tag))?
            .with_header("Contact", &self.config.contact)?
            .with_header("Allow", dialog::ALLOW)?
            .with_header("Supported", dialog::SUPPORTED)?;
        if let Some(negotiated) = session {
            negotiated.apply(&mut ok)?;
        }
        if !sdp.is_empty() {
            ok = ok.with_body("application/sdp", sdp.to_vec())?;
        }
        let dialog = Dialog::uas(&self.invite, &ok, &self.config.local_via)?;
        self.actions
            .push_back(InboundAction::DialogUp(dialog.id().clone()));
        self.actions.push_back(InboundAction::Respond {
            status: 200,
            response: ok.clone(),
        });
        self.dialog = Some(dialog);
        self.ok = Some((ok, OkRetransmit::new(now, &self.config.timers)));
        self.state = InboundState::AwaitingAck;
        Ok(())
    }

    /// Our 2xx to the peer's re-INVITE (the owner built it on the
    /// dialog): re-sent over UDP until its ACK like the first one, and
    /// `AckTimedOut` if that never comes.
    pub fn reinvite_answered(&mut self, now: Instant, ok: SipMessage) {
        if self.state == InboundState::Confirmed {
            self.ok = Some((ok, OkRetransmit::new(now, &self.config.timers)));
        }
    }

    /// Refuses the call with `status` (300–699) before our answer.
    pub fn reject(&mut self, status: u16, extra: &[(&str, &str)]) -> Result<(), DialogError> {
        if !self.state.is_pending() {
            return Ok(());
        }
        let status = if (300..=699).contains(&status) {
            status
        } else {
            500
        };
        let mut response = self.invite.reply(status, None, Some(&self.tag))?;
        for (name, value) in extra {
            response.push_header(name, value)?;
        }
        self.actions
            .push_back(InboundAction::Respond { status, response });
        self.report(InboundAction::Rejected(status));
        self.finish();
        Ok(())
    }

    /// Ends the answered leg with a BYE carrying `headers`, once the ACK
    /// is in. Before our answer, use [`InboundLeg::reject`].
    pub fn hang_up(&mut self, headers: &[(&str, &str)]) {
        match self.state {
            InboundState::AwaitingAck if self.held_bye.is_none() => {
                self.held_bye = Some(
                    headers
                        .iter()
                        .map(|(n, v)| (n.to_string(), v.to_string()))
                        .collect(),
                );
            }
            InboundState::Confirmed => {
                self.report(InboundAction::Ended { by_peer: false });
                self.send_bye(headers);
            }
            _ => {}
        }
    }

    /// What a transaction reported, or the peer's request.
    pub fn handle(&mut self, _now: Instant, input: InboundInput<'_>) {
        match input {
            InboundInput::Ack if self.state == InboundState::AwaitingAck => self.acked(),
            InboundInput::Ack => {
                // A re-INVITE's ACK, a retransmitted one, or one for a 2xx
                // we gave up on.
                self.ok = None;
            }
            InboundInput::Cancel if self.state.is_pending() => {
                if let Ok(response) = self.invite.reply(487, None, Some(&self.tag)) {
                    self.actions.push_back(InboundAction::Respond {
                        status: 487,
                        response,
                    });
                }
                self.report(InboundAction::Cancelled);
                self.finish();
            }
            InboundInput::Cancel => {} // §9.2: too late, the 2xx stands.
            InboundInput::PeerBye
                if matches!(
                    self.state,
                    InboundState::AwaitingAck | InboundState::Confirmed
                ) =>
            {
                // A BYE before the ACK implies it (the ACK got lost).
                self.ok = None;
                self.held_bye = None;
                self.report(InboundAction::Ended { by_peer: true });
                self.finish();
            }
            InboundInput::PeerBye => {} // Crossing our BYE, or too early.
            InboundInput::Response { tx, status } if self.is_bye(tx) && status >= 200 => {
                self.finish()
            }
            InboundInput::Timeout(tx) | InboundInput::TransportError(tx) if self.is_bye(tx) => {
                self.finish()
            }
            InboundInput::Response { .. } | InboundInput::Timeout(_) => {}
            InboundInput::TransportError(_) => {}
        }
    }

    /// The 2xx's schedule, when due: resend it (UDP), or give up on the
    /// ACK and end the session.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some((ok, schedule)) = self.ok.as_mut() else {
            return;
        };
        match schedule.handle_timeout(now) {
            Some(OkStep::Resend) if self.config.reliability == Reliability::Unreliable => {
                let ok = ok.clone();
                self.actions.push_back(InboundAction::Retransmit(ok));
            }
            None | Some(OkStep::Resend) => {}
            Some(OkStep::GiveUp) => {
                self.ok = None;
                match self.state {
                    InboundState::AwaitingAck => {}
                    InboundState::Confirmed => {
                        // A re-INVITE's 2xx never ACKed (§13.3.1.4 holds
                        // for every 2xx to an INVITE).
                        self.report(InboundAction::AckTimedOut);
                        return;
                    }
                    _ => return,
                }
                self.report(InboundAction::AckTimedOut);
                // From here the session counts as confirmed: a hang-up
                // held for the ACK goes out now; otherwise the owner ends
                // the call, and its hang-up (with the outcome's headers)
                // goes out at once.
                self.state = InboundState::Confirmed;
                self.release_held_bye();
            }
        }
    }

    fn acked(&mut self) {
        if let Some((_, schedule)) = self.ok.as_mut() {
            schedule.acked();
        }
        self.ok = None;
        self.state = InboundState::Confirmed;
        self.report(InboundAction::Acked);
        self.release_held_bye();
    }

    /// The hang-up held for the ACK, if any, goes out now.
    fn release_held_bye(&mut self) {
        if let Some(headers) = self.held_bye.take() {
            let headers: Vec<(&str, &str)> = headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            self.report(InboundAction::Ended { by_peer: false });
            self.send_bye(&headers);
        }
    }

    /// Our BYE with `headers` (see [`bye_in`]).
    fn send_bye(&mut self, headers: &[(&str, &str)]) {
        match self.dialog.as_mut().and_then(|d| bye_in(d, headers)) {
            Some((tx, bye)) => {
                self.state = InboundState::Ending;
                self.bye_tx = Some(tx.clone());
                self.actions
                    .push_back(InboundAction::StartRequest { tx, request: bye });
            }
            None => self.finish(),
        }
    }

    fn is_bye(&self, tx: &TransactionKey) -> bool {
        self.bye_tx.as_ref() == Some(tx)
    }

    fn report(&mut self, action: InboundAction) {
        self.actions.push_back(action);
    }

    fn finish(&mut self) {
        if self.state == InboundState::Done {
            return;
        }
        self.state = InboundState::Done;
        self.ok = None;
        self.held_bye = None;
        if let Some(d) = self.dialog.as_mut() {
            d.terminate();
        }
        self.actions.push_back(InboundAction::Finished);
    }
}

#[cfg(test)]
mod tests;
