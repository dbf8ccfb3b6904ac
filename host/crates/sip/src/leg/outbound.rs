//! A leg we place: our INVITE from the first send to the last transaction,
//! free of I/O (RFC 3261 §13.2 UAC, §9.1 CANCEL, §15 BYE, §22 digest).
//!
//! The owner (the call core) keeps the transaction table. The leg asks it
//! to start transactions ([`OutboundAction::StartInvite`],
//! [`OutboundAction::StartRequest`]) and to send ACKs for 2xx responses,
//! which live outside any transaction (§17.1.1.3); the owner hands back
//! what those transactions report ([`OutboundInput`]). The leg tells its
//! owner what the call needs to know, in this order:
//!
//! 1. `Progress` for each provisional above 100 (with the SDP of early
//!    media), then `Answered` for the 2xx;
//! 2. exactly one end report: `Failed` (with a typed [`LegFailure`]),
//!    `Cancelled` (we gave up before an answer: [`OutboundInput::HangUp`]),
//!    or `Ended` (after `Answered`: our BYE, or the peer's);
//! 3. `Finished` once nothing is left to send or wait for. Only `SendAck`
//!    may follow, for a 2xx the peer retransmits (RFC 6026 keeps the INVITE
//!    transaction 64*T1 to pass those up): the owner keeps the leg until
//!    its INVITE transaction has ended, then drops it.
//!
//! Rules a trunk expects of a UAC:
//! - CANCEL only after a provisional response (§9.1): a hang-up or ring
//!   timeout before one waits for it, or for the INVITE's final response.
//!   A CANCEL that gets no final response for the INVITE within 64*T1
//!   abandons the INVITE transaction (§9.1).
//! - A 2xx that races our CANCEL, or comes from a second fork, is ACKed
//!   and ended with a BYE (§13.2.2.4, §15): the peer must not be left
//!   with a dialog nobody is on.
//! - Every 2xx of our dialog is ACKed, retransmissions included (RFC 6026
//!   passes each up).
//! - A 401/407 is answered once per realm with the leg's digest client,
//!   as a new INVITE (new branch, CSeq + 1); a second challenge (unless
//!   `stale=true`), a challenge without credentials, or a 403 to a request
//!   that carried them, fails the leg as `auth-failed`. A challenged BYE
//!   is answered the same way, once.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::failure::{FailureKind, LegFailure};
use super::invite::{RetryError, answer_challenge, bye_in, client_key};
use super::retransmit::{OkRetransmit, OkStep};
use crate::auth::{ChallengeStatus, DigestClient, os_cnonce};
use crate::dialog::{self, Dialog, DialogError, DialogId};
use crate::message::{Method, SipMessage};
use crate::transaction::{Reliability, Timers, TransactionKey};

/// Forked dialogs we ended (ACK + BYE) and remember, to ACK their 2xx
/// retransmissions too. A peer forking to more is answered, not
/// remembered.
const MAX_FORKS: usize = 4;

/// Where the leg is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboundState {
    /// The INVITE is out; nothing heard beyond `100 Trying`.
    Calling,
    /// A provisional without SDP (`180 Ringing`).
    Ringing,
    /// A provisional with SDP: the peer plays ringback or announcements.
    EarlyMedia,
    /// Answered and ACKed: the dialog is up.
    Answered,
    /// We gave up before an answer: the CANCEL is out, or waits for a
    /// provisional to be allowed.
    Cancelling,
    /// Our BYE is out.
    Ending,
    /// Nothing left to do.
    Done,
}

impl OutboundState {
    /// Before an answer and before we gave up.
    pub fn is_pending(self) -> bool {
        matches!(
            self,
            OutboundState::Calling | OutboundState::Ringing | OutboundState::EarlyMedia
        )
    }
}

/// How long the leg waits.
#[derive(Debug, Clone, Copy)]
pub struct OutboundConfig {
    /// From the INVITE to the answer; then the leg gives up (`no-answer`).
    pub ring_timeout: Duration,
    /// The transaction timers (T1 sets the CANCEL's 64*T1, T1/T2 the
    /// schedule of our 2xx to the peer's re-INVITE).
    pub timers: Timers,
    /// UDP, or TCP/TLS (our 2xx to a re-INVITE is not re-sent).
    pub reliability: Reliability,
}

/// What the owner hands the leg.
#[derive(Debug, Clone, Copy)]
pub enum OutboundInput<'a> {
    /// A response one of the leg's client transactions passed up.
    Response {
        /// The transaction.
        tx: &'a TransactionKey,
        /// Its status.
        status: u16,
        /// The response.
        response: &'a SipMessage,
    },
    /// A 2xx in one of the leg's dialogs after its INVITE transaction
    /// ended: ACK it again.
    Late2xx(&'a SipMessage),
    /// Timer B or F of one of the leg's transactions fired.
    Timeout(&'a TransactionKey),
    /// The transport could not deliver one of the leg's requests.
    TransportError(&'a TransactionKey),
    /// End the leg: CANCEL before an answer, BYE with these headers after.
    HangUp(&'a [(&'a str, &'a str)]),
    /// The peer's BYE in the leg's dialog (the owner answered it).
    PeerBye,
    /// The peer's ACK for our 2xx to its re-INVITE.
    Ack,
}

/// What the leg asks of its owner, or tells it.
#[derive(Debug, Clone, PartialEq)]
pub enum OutboundAction {
    /// Start an INVITE client transaction (its ACK for a non-2xx final is
    /// [`dialog::ack_for_failure`]).
    StartInvite {
        /// The transaction's key.
        tx: TransactionKey,
        /// The INVITE (shared with the leg, which keeps it for CANCEL and
        /// for a retry with credentials).
        request: Arc<SipMessage>,
    },
    /// Start a non-INVITE client transaction: CANCEL or BYE.
    StartRequest {
        /// The transaction's key.
        tx: TransactionKey,
        /// The request.
        request: SipMessage,
    },
    /// Send an ACK for a 2xx, outside any transaction, to its next hop.
    SendAck(SipMessage),
    /// Send our 2xx to the peer's re-INVITE again (its ACK is late).
    Retransmit(SipMessage),
    /// Our 2xx to the peer's re-INVITE got no ACK in 64*T1: the owner
    /// ends the call (§13.3.1.4).
    AckTimedOut,
    /// Drop the INVITE transaction: its CANCEL got no final response in
    /// 64*T1 (§9.1).
    Abandon(TransactionKey),
    /// A provisional response (above 100); `sdp` is its body when it has
    /// one (early media).
    Progress {
        /// 180, 183, ...
        status: u16,
        /// The early media's SDP answer.
        sdp: Option<Vec<u8>>,
    },
    /// The 2xx, ACKed; `sdp` is its body (empty when it had none).
    Answered {
        /// The dialog that is now up.
        dialog: DialogId,
        /// The SDP answer.
        sdp: Vec<u8>,
    },
    /// The leg failed before an answer.
    Failed {
        /// Why, typed.
        failure: LegFailure,
        /// More for the log (never a secret): what the digest client said.
        detail: Option<String>,
    },
    /// We hung up before an answer.
    Cancelled,
    /// The answered leg ended.
    Ended {
        /// The peer's BYE (else ours).
        by_peer: bool,
    },
    /// Nothing is left to send or wait for. Only `SendAck` may follow (a
    /// retransmitted 2xx); the leg may be dropped once the INVITE's
    /// transaction has ended.
    Finished,
}

/// One outbound leg (see the module docs).
pub struct OutboundLeg {
    state: OutboundState,
    /// The INVITE in flight (the latest, after challenges) and its key;
    /// shared with the owner's transaction.
    invite: Arc<SipMessage>,
    invite_tx: TransactionKey,
    /// The current INVITE got a provisional: CANCEL is allowed.
    provisional: bool,
    /// We want to CANCEL, once a provisional allows it.
    cancel_pending: bool,
    digest: Option<DigestClient>,
    sent_credentials: bool,
    dialog: Option<Dialog>,
    /// The ACK for our dialog's 2xx, re-sent for each retransmission.
    ack: Option<SipMessage>,
    /// Forked dialogs we ended, with their ACK.
    forks: Vec<(DialogId, SipMessage)>,
    /// Our BYE in flight, and whether it was re-sent with credentials.
    bye: Option<(TransactionKey, SipMessage, bool)>,
    ring_deadline: Option<Instant>,
    /// When a CANCEL without a final response for the INVITE gives up.
    cancel_deadline: Option<Instant>,
    /// Our 2xx to the peer's re-INVITE, until its ACK.
    ok: Option<(SipMessage, OkRetransmit)>,
    timers: Timers,
    reliability: Reliability,
    t1: Duration,
    cnonce: fn() -> String,
    actions: VecDeque<OutboundAction>,
}

impl std::fmt::Debug for OutboundLeg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundLeg")
            .field("state", &self.state)
            .field("invite_tx", &self.invite_tx)
            .field("dialog", &self.dialog.as_ref().map(Dialog::id))
            .finish_non_exhaustive()
    }
}

impl OutboundLeg {
    /// A leg sending `invite` (see [`super::InviteRequest`]) at `now`,
    /// answering challenges with `digest` when given. The first action is
    /// the INVITE's transaction.
    pub fn new(
        now: Instant,
        invite: impl Into<Arc<SipMessage>>,
        config: &OutboundConfig,
        digest: Option<DigestClient>,
    ) -> Result<OutboundLeg, DialogError> {
        let invite = invite.into();
        if invite.method() != Some(&Method::Invite) {
            return Err(DialogError::NotInvite);
        }
        let invite_tx = client_key(&invite).ok_or(DialogError::NotInvite)?;
        let mut leg = OutboundLeg {
            state: OutboundState::Calling,
            invite: invite.clone(),
            invite_tx: invite_tx.clone(),
            provisional: false,
            cancel_pending: false,
            digest,
            sent_credentials: false,
            dialog: None,
            ack: None,
            forks: Vec::new(),
            bye: None,
            ring_deadline: Some(now + config.ring_timeout),
            cancel_deadline: None,
            ok: None,
            timers: config.timers,
            reliability: config.reliability,
            t1: config.timers.t1.max(Duration::from_millis(1)),
            cnonce: os_cnonce,
            actions: VecDeque::new(),
        };
        leg.actions.push_back(OutboundAction::StartInvite {
            tx: invite_tx,
            request: invite,
        });
        Ok(leg)
    }

    /// Uses `cnonce` for digest client nonces (tests replay fixed ones).
    pub fn with_cnonce(mut self, cnonce: fn() -> String) -> OutboundLeg {
        self.cnonce = cnonce;
        self
    }

    /// Where the leg is.
    pub fn state(&self) -> OutboundState {
        self.state
    }

    /// The INVITE in flight (the retried one after a challenge).
    pub fn invite(&self) -> &SipMessage {
        &self.invite
    }

    /// The key of the INVITE transaction in flight.
    pub fn invite_key(&self) -> &TransactionKey {
        &self.invite_tx
    }

    /// The leg's dialog, once answered.
    pub fn dialog(&self) -> Option<&Dialog> {
        self.dialog.as_ref()
    }

    /// The leg's dialog, for in-dialog requests the owner builds
    /// (re-INVITE, INFO).
    pub fn dialog_mut(&mut self) -> Option<&mut Dialog> {
        self.dialog.as_mut()
    }

    /// Whether a dialog id is the leg's, or one of the forks it ended.
    pub fn has_dialog(&self, id: &DialogId) -> bool {
        self.dialog.as_ref().is_some_and(|d| d.id() == id)
            || self.forks.iter().any(|(fork, _)| fork == id)
    }

    /// The next action, if any.
    pub fn poll_action(&mut self) -> Option<OutboundAction> {
        self.actions.pop_front()
    }

    /// When [`OutboundLeg::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            s if s.is_pending() => self.ring_deadline,
            OutboundState::Cancelling => self.cancel_deadline,
            OutboundState::Answered => self.ok.as_ref().and_then(|(_, s)| s.poll_timeout()),
            _ => None,
        }
    }

    /// Our 2xx to the peer's re-INVITE (the owner built it on the
    /// dialog): re-sent over UDP until the peer's ACK, and `AckTimedOut`
    /// if that never comes.
    pub fn reinvite_answered(&mut self, now: Instant, ok: SipMessage) {
        if self.state == OutboundState::Answered {
            self.ok = Some((ok, OkRetransmit::new(now, &self.timers)));
        }
    }

    /// The ring timeout, or the CANCEL's 64*T1, when due.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.state {
            s if s.is_pending() && self.ring_deadline.is_some_and(|at| at <= now) => {
                self.report(OutboundAction::Failed {
                    failure: LegFailure::ring_timeout(),
                    detail: None,
                });
                self.start_cancel(now);
            }
            OutboundState::Cancelling if self.cancel_deadline.is_some_and(|at| at <= now) => {
                self.actions
                    .push_back(OutboundAction::Abandon(self.invite_tx.clone()));
                self.finish();
            }
            OutboundState::Answered => {
                let Some((ok, schedule)) = self.ok.as_mut() else {
                    return;
                };
                match schedule.handle_timeout(now) {
                    Some(OkStep::Resend) if self.reliability == Reliability::Unreliable => {
                        let ok = ok.clone();
                        self.actions.push_back(OutboundAction::Retransmit(ok));
                    }
                    Some(OkStep::GiveUp) => {
                        self.ok = None;
                        self.report(OutboundAction::AckTimedOut);
                    }
                    None | Some(OkStep::Resend) => {}
                }
            }
            _ => {}
        }
    }

    /// What a transaction reported, or the owner's order.
    pub fn handle(&mut self, now: Instant, input: OutboundInput<'_>) {
        if self.state == OutboundState::Done {
            // Only a 2xx still needs an ACK (a fork's retransmission).
            if let OutboundInput::Late2xx(response)
            | OutboundInput::Response {
                response,
                status: 200..=299,
                ..
            } = input
            {
                self.reack(response);
            }
            return;
        }
        match input {
            OutboundInput::Response {
                tx,
                status,
                response,
            } if *tx == self.invite_tx => self.on_invite_response(status, response),
            OutboundInput::Response {
                tx,
                status,
                response,
            } if self.is_bye(tx) => self.on_bye_response(status, response),
            OutboundInput::Response { .. } => {} // The CANCEL's 200, a fork's BYE.
            OutboundInput::Late2xx(response) => {
                self.reack(response);
            }
            OutboundInput::Timeout(tx) if *tx == self.invite_tx => {
                self.invite_gone(LegFailure::timed_out())
            }
            OutboundInput::TransportError(tx) if *tx == self.invite_tx => {
                self.invite_gone(LegFailure::unreachable())
            }
            OutboundInput::Timeout(tx) | OutboundInput::TransportError(tx) if self.is_bye(tx) => {
                self.finish()
            }
            OutboundInput::Timeout(_) | OutboundInput::TransportError(_) => {}
            OutboundInput::HangUp(headers) => self.hang_up(now, headers),
            OutboundInput::Ack => self.ok = None,
            OutboundInput::PeerBye => {
                if self.state == OutboundState::Answered {
                    if let Some(d) = self.dialog.as_mut() {
                        d.terminate();
                    }
                    self.report(OutboundAction::Ended { by_peer: true });
                    self.finish();
                }
            }
        }
    }

    fn on_invite_response(&mut self, status: u16, response: &SipMessage) {
        match status {
            100..=199 => self.on_provisional(status, response),
            200..=299 => self.on_2xx(response),
            _ => self.on_failure(status, response),
        }
    }

    fn on_provisional(&mut self, status: u16, response: &SipMessage) {
        self.provisional = true;
        if self.cancel_pending {
            self.cancel_pending = false;
            self.send_cancel();
            return;
        }
        if status == 100 || !self.state.is_pending() {
            return;
        }
        let sdp = has_sdp(response).then(|| response.body().to_vec());
        if sdp.is_some() {
            self.state = OutboundState::EarlyMedia;
        } else if self.state == OutboundState::Calling {
            self.state = OutboundState::Ringing;
        }
        self.actions
            .push_back(OutboundAction::Progress { status, sdp });
    }

    fn on_2xx(&mut self, response: &SipMessage) {
        if let Some(digest) = self.digest.as_mut() {
            digest.on_answered();
        }
        if self.reack(response) {
            return;
        }
        let dialog = match Dialog::uac(&self.invite, response) {
            Ok(d) => d,
            Err(e) => {
                // Without a dialog there is no ACK to send: the peer gives
                // up on its own after 64*T1 (§13.3.1.4).
                if self.state.is_pending() {
                    self.report(OutboundAction::Failed {
                        failure: LegFailure {
                            kind: FailureKind::Rejected,
                            status: response.status_code(),
                        },
                        detail: Some(format!("2xx that cannot start a dialog: {e}")),
                    });
                    self.finish();
                }
                return;
            }
        };
        let Ok(ack) = dialog.ack(response, None) else {
            return;
        };
        self.actions.push_back(OutboundAction::SendAck(ack.clone()));
        if !self.state.is_pending() {
            // A second fork, or an answer that raced our CANCEL: end it.
            self.end_stray(dialog, ack);
            return;
        }
        let id = dialog.id().clone();
        self.dialog = Some(dialog);
        self.ack = Some(ack);
        self.state = OutboundState::Answered;
        self.ring_deadline = None;
        self.report(OutboundAction::Answered {
            dialog: id,
            sdp: response.body().to_vec(),
        });
    }

    /// ACKs a 2xx of a dialog the leg knows again; false if it knows none.
    fn reack(&mut self, response: &SipMessage) -> bool {
        let Some(id) = DialogId::of_received(response) else {
            return false;
        };
        let ack = if self.dialog.as_ref().is_some_and(|d| *d.id() == id) {
            self.ack.clone()
        } else {
            self.forks
                .iter()
                .find(|(fork, _)| *fork == id)
                .map(|(_, ack)| ack.clone())
        };
        match ack {
            Some(ack) => {
                self.actions.push_back(OutboundAction::SendAck(ack));
                true
            }
            None => false,
        }
    }

    /// ACKed already; a BYE ends the dialog nobody will be on.
    fn end_stray(&mut self, mut dialog: Dialog, ack: SipMessage) {
        if let Ok(bye) = dialog.bye(&[])
            && let Some(tx) = client_key(&bye)
        {
            self.actions.push_back(OutboundAction::StartRequest {
                tx: tx.clone(),
                request: bye.clone(),
            });
            if self.state == OutboundState::Cancelling {
                // Our own call answered after we gave up: the leg is over
                // when that BYE is.
                self.state = OutboundState::Ending;
                self.bye = Some((tx, bye, false));
            }
        }
        if self.forks.len() < MAX_FORKS {
            self.forks.push((dialog.id().clone(), ack));
        }
    }

    fn on_failure(&mut self, status: u16, response: &SipMessage) {
        if !self.state.is_pending() {
            // The 487 to our CANCEL (or any final after it).
            if self.state == OutboundState::Cancelling {
                self.finish();
            }
            return;
        }
        if let Some(kind) = ChallengeStatus::from_status(status)
            && self.digest.is_some()
        {
            self.answer_challenge(kind, response);
            return;
        }
        if let Some(digest) = self.digest.as_mut() {
            digest.on_answered();
        }
        let failure = LegFailure::from_status(status, self.sent_credentials);
        let detail = (failure.kind == FailureKind::AuthFailed).then(|| {
            if self.sent_credentials {
                format!("{status} to our credentials")
            } else {
                format!("{status} challenge, and the leg has no credentials")
            }
        });
        self.report(OutboundAction::Failed { failure, detail });
        self.finish();
    }

    fn answer_challenge(&mut self, kind: ChallengeStatus, response: &SipMessage) {
        let Some(digest) = self.digest.as_mut() else {
            return;
        };
        let mut cnonce = self.cnonce;
        match answer_challenge(digest, kind, &self.invite, response, &mut cnonce) {
            Ok((tx, invite)) => {
                let invite = Arc::new(invite);
                self.invite = invite.clone();
                self.invite_tx = tx.clone();
                self.provisional = false;
                self.sent_credentials = true;
                self.actions.push_back(OutboundAction::StartInvite {
                    tx,
                    request: invite,
                });
            }
            Err(RetryError::Auth(failure)) => {
                self.report(OutboundAction::Failed {
                    failure: LegFailure {
                        kind: FailureKind::AuthFailed,
                        status: Some(failure.status()),
                    },
                    detail: Some(failure.to_string()),
                });
                self.finish();
            }
            Err(RetryError::Build(e)) => {
                self.report(OutboundAction::Failed {
                    failure: LegFailure::from_status(kind.status(), false),
                    detail: Some(format!("cannot re-send the INVITE: {e}")),
                });
                self.finish();
            }
        }
    }

    /// The INVITE transaction ended without a final response.
    fn invite_gone(&mut self, failure: LegFailure) {
        match self.state {
            s if s.is_pending() => {
                self.report(OutboundAction::Failed {
                    failure,
                    detail: None,
                });
                self.finish();
            }
            OutboundState::Cancelling => self.finish(),
            _ => {}
        }
    }

    fn hang_up(&mut self, now: Instant, headers: &[(&str, &str)]) {
        match self.state {
            s if s.is_pending() => {
                self.report(OutboundAction::Cancelled);
                self.start_cancel(now);
            }
            OutboundState::Answered => {
                self.report(OutboundAction::Ended { by_peer: false });
                self.send_bye(headers);
            }
            _ => {}
        }
    }

    /// Our BYE with `headers` (see [`bye_in`]).
    fn send_bye(&mut self, headers: &[(&str, &str)]) {
        match self.dialog.as_mut().and_then(|d| bye_in(d, headers)) {
            Some((tx, bye)) => {
                self.state = OutboundState::Ending;
                self.bye = Some((tx.clone(), bye.clone(), false));
                self.actions
                    .push_back(OutboundAction::StartRequest { tx, request: bye });
            }
            None => self.finish(),
        }
    }

    fn start_cancel(&mut self, now: Instant) {
        self.state = OutboundState::Cancelling;
        self.ring_deadline = None;
        self.cancel_deadline = Some(now + self.t1 * 64);
        if self.provisional {
            self.send_cancel();
        } else {
            self.cancel_pending = true;
        }
    }

    fn send_cancel(&mut self) {
        if let Ok(cancel) = dialog::cancel(&self.invite)
            && let Some(tx) = client_key(&cancel)
        {
            self.actions.push_back(OutboundAction::StartRequest {
                tx,
                request: cancel,
            });
        }
    }

    fn is_bye(&self, tx: &TransactionKey) -> bool {
        self.bye.as_ref().is_some_and(|(key, _, _)| key == tx)
    }

    fn on_bye_response(&mut self, status: u16, response: &SipMessage) {
        if status < 200 {
            return;
        }
        let retried = self.bye.as_ref().is_some_and(|(_, _, r)| *r);
        if let (Some(kind), false, Some(digest), Some((_, bye, _))) = (
            ChallengeStatus::from_status(status),
            retried,
            self.digest.as_mut(),
            self.bye.as_ref(),
        ) {
            let mut cnonce = self.cnonce;
            if let Ok((tx, again)) = answer_challenge(digest, kind, bye, response, &mut cnonce) {
                self.bye = Some((tx.clone(), again.clone(), true));
                self.actions
                    .push_back(OutboundAction::StartRequest { tx, request: again });
                return;
            }
        }
        self.finish();
    }

    fn report(&mut self, action: OutboundAction) {
        self.actions.push_back(action);
    }

    fn finish(&mut self) {
        if self.state == OutboundState::Done {
            return;
        }
        self.state = OutboundState::Done;
        self.ring_deadline = None;
        self.cancel_deadline = None;
        self.ok = None;
        self.cancel_pending = false;
        if let Some(d) = self.dialog.as_mut() {
            d.terminate();
        }
        self.actions.push_back(OutboundAction::Finished);
    }
}

/// Whether a response carries an SDP body.
fn has_sdp(response: &SipMessage) -> bool {
    !response.body().is_empty()
        && response
            .content_type()
            .is_some_and(|t| t.trim().to_ascii_lowercase().starts_with("application/sdp"))
}

#[cfg(test)]
mod tests;
