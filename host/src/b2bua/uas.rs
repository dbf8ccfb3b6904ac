//! What the gateway answers as a plain UAS, before any call is involved:
//! the refusals of RFC 3261 §8.2 (`trunkline_sip::inspect`), OPTIONS pings,
//! and requests for no dialog; and how any such answer is sent.
//!
//! A peer we admit gets the answer in a server transaction of its own, so
//! its retransmissions are answered from it. Anyone else gets it once,
//! statelessly (RFC 3261 §26.3.2.4): no state to fill, nothing retransmitted
//! to amplify, and a retransmission is answered again, one for one.

use std::time::Instant;

use trunkline_sip::dialog;
use trunkline_sip::inspect::inspect;
use trunkline_sip::message::{Method, SipMessage, ViaTrust};
use trunkline_sip::transaction::{Reliability, TableError, TransactionKey};

use super::gateway::Gateway;
use super::wire::Wire;
use crate::transport::Target;

impl Gateway {
    /// Answers the request if §8.2's checks refuse it (405 with Allow for
    /// REGISTER, MESSAGE, SUBSCRIBE, PUBLISH and PRACK, which a B2BUA in
    /// front of agents has no use for; 501 for unknown methods; 416, 420
    /// with Unsupported, 415 with Accept, 406). `true` when it did.
    pub(crate) fn refused_by_inspection(
        &mut self,
        now: Instant,
        key: &TransactionKey,
        wire: &Wire,
        reliability: Reliability,
        trust: ViaTrust,
    ) -> bool {
        let Some(refusal) = inspect(&wire.msg) else {
            return false;
        };
        tracing::debug!(status = refusal.status(), method = ?wire.msg.method(),
            "request refused before processing (RFC 3261 §8.2)");
        let reply = refusal.reply(&wire.msg, None).ok();
        let invite = wire.msg.method() == Some(&Method::Invite);
        let answer = Answer {
            reply,
            invite,
            trust,
        };
        self.answer(now, key.clone(), reliability, &wire.target, answer);
        true
    }

    /// A request outside any dialog that is not an INVITE and passed §8.2:
    /// OPTIONS is answered (Five9 pings trunks with it); BYE, INFO, NOTIFY,
    /// REFER and UPDATE only exist in a dialog, so 481 (§12.2.2).
    pub(crate) fn on_out_of_dialog(
        &mut self,
        now: Instant,
        key: TransactionKey,
        wire: Wire,
        reliability: Reliability,
        trust: ViaTrust,
    ) {
        let reply = match wire.msg.method() {
            Some(Method::Options) => dialog::answer_options(&wire.msg).ok(),
            _ => wire.msg.reply(481, None, None).ok(),
        };
        let answer = Answer {
            reply,
            invite: false,
            trust,
        };
        self.answer(now, key, reliability, &wire.target, answer);
    }

    /// Sends an answer the way its peer's trust calls for (see the
    /// module's doc).
    fn answer(
        &mut self,
        now: Instant,
        key: TransactionKey,
        reliability: Reliability,
        to: &Target,
        answer: Answer,
    ) {
        if answer.trust == ViaTrust::Admitted {
            self.respond(now, key, reliability, to, answer.reply, answer.invite);
        } else if let Some(reply) = answer.reply {
            self.send_now(Wire::new(to.clone(), reply));
        }
    }

    /// Answers a request in its own server transaction (INVITE or not).
    pub(crate) fn respond(
        &mut self,
        now: Instant,
        key: TransactionKey,
        reliability: Reliability,
        to: &Target,
        reply: Option<SipMessage>,
        invite: bool,
    ) {
        if !invite {
            self.respond_once(now, key, reliability, to, reply);
            return;
        }
        let Some(reply) = reply else { return };
        let status = reply.status_code().unwrap_or(500);
        // The 100 the transaction would send if we were slow; never sent
        // here, since the final answer is ready.
        let Ok(trying) = SipMessage::response(100, None) else {
            return;
        };
        if self
            .table
            .start_server_invite(
                now,
                key.clone(),
                reliability,
                Wire::new(to.clone(), trying),
                to.addr.ip(),
            )
            .is_ok()
        {
            let _ = self
                .table
                .send_response(now, &key, status, Wire::new(to.clone(), reply));
        }
    }

    /// Starts a non-INVITE server transaction and answers it at once.
    pub(crate) fn respond_once(
        &mut self,
        now: Instant,
        key: TransactionKey,
        reliability: Reliability,
        to: &Target,
        reply: Option<SipMessage>,
    ) {
        let Some(reply) = reply else { return };
        match self
            .table
            .start_server(now, key.clone(), reliability, to.addr.ip())
        {
            Ok(()) => {}
            Err(TableError::Overloaded(why)) => {
                // Past the caps: the answer still goes out, once, and no
                // transaction is kept for it.
                self.stats.overloaded();
                tracing::debug!(%why, "no room for a server transaction: answered statelessly");
                self.send_now(Wire::new(to.clone(), reply));
                return;
            }
            Err(_) => return,
        }
        let status = reply.status_code().unwrap_or(500);
        let _ = self
            .table
            .send_response(now, &key, status, Wire::new(to.clone(), reply));
    }
}

/// A response owed to a request outside any call.
struct Answer {
    /// The response (`None`: it could not be built; nothing is sent).
    reply: Option<SipMessage>,
    /// Whether the request is an INVITE (its transaction waits for an ACK).
    invite: bool,
    /// Whether the peer is one we admit.
    trust: ViaTrust,
}
