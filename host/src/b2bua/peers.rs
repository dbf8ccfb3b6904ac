//! Who may send in a call's dialogs: the rule of
//! `trunkline_sip::dialog::peer` applied to every in-dialog request, ACK
//! and CANCEL before anything else looks at it, and the refusals.
//!
//! A refusal is one `403` sent statelessly back to the packet's source (no
//! transaction, so no retransmission and no state; never toward a Via or
//! `maddr` the request names), or nothing for an ACK. The call, its
//! dialogs (CSeq included), media and timers are left as they were. A
//! flood of refusals logs one INFO line per [`REFUSAL_LOG_INTERVAL`] with a
//! count, and DEBUG lines otherwise.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use trunkline_sip::auth::IpAllowList;
use trunkline_sip::dialog::{SourceVerdict, check_source, needs_reauth};
use trunkline_sip::log_budget::LogPermit;
use trunkline_sip::message::{Method, SipMessage};

use super::admission::Reauth;
use super::call::{CallKey, Leg};
use super::gateway::Gateway;
use super::wire::Wire;
use crate::transport::{ConnId, Target, TransportKind};

/// At most one INFO line about refused in-dialog requests per interval.
pub(crate) const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// How a request reached us: the packet's source, not what its Via says.
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    /// The source address of the datagram or connection.
    pub(crate) addr: SocketAddr,
    /// The transport it came on.
    pub(crate) kind: TransportKind,
    /// The TCP/TLS connection it came on.
    pub(crate) conn: Option<ConnId>,
}

impl Origin {
    /// Back where the request came from (for refusals).
    fn target(&self) -> Target {
        let mut target = Target::new(self.kind, self.addr);
        target.conn = self.conn;
        target
    }
}

impl Gateway {
    /// Whether `msg`, for leg `leg` of call `key`, comes from the leg's
    /// established peer or (the caller's leg) a source the trunk's
    /// allow-list admits. When it does not, it has been answered `403` (or
    /// dropped, for an ACK) and must go no further.
    pub(crate) fn admit_in_dialog(
        &mut self,
        key: CallKey,
        leg: Leg,
        msg: &SipMessage,
        origin: &Origin,
    ) -> bool {
        let Some(call) = self.calls.get(&key) else {
            return false;
        };
        let Some(method) = msg.method() else {
            return false;
        };
        let none = IpAllowList::default();
        let (peer, allowed) = match leg {
            Leg::Caller => (
                Some(&call.caller_peer),
                self.gatekeeper.allow_list(call.trunk).unwrap_or(&none),
            ),
            // No allow-list covers the agent: only the agent itself.
            Leg::Agent => (call.agent_peer.as_ref(), &none),
            Leg::Transfer => (call.transfer_peer.as_ref(), &none),
        };
        let verdict = match peer {
            Some(peer) => check_source(method, origin.addr.ip(), origin.conn, peer, allowed),
            // A dialog without a recorded peer takes nothing (fail closed).
            None if *method == Method::Ack => SourceVerdict::Drop,
            None => SourceVerdict::Forbid,
        };
        if verdict == SourceVerdict::Accept {
            return true;
        }
        let call_id = call.id();
        self.log_refusal(&call_id, leg, method, origin, verdict);
        if verdict == SourceVerdict::Forbid
            && let Ok(r) = msg.reply(403, None, None)
        {
            self.send_now(Wire::new(origin.target(), r));
        }
        false
    }

    /// On a digest trunk, whether a re-INVITE or UPDATE from the caller
    /// that moves the media (see `needs_reauth`) carries valid credentials
    /// for the trunk; when it does not, it has been answered with a fresh
    /// challenge (once, statelessly) and must go no further. Everything
    /// else passes.
    pub(crate) fn media_move_authorised(
        &mut self,
        key: CallKey,
        leg: Leg,
        msg: &SipMessage,
        origin: &Origin,
    ) -> bool {
        let Some(call) = self.calls.get(&key) else {
            return false;
        };
        let Some(method) = msg.method() else {
            return false;
        };
        let offers = matches!(method, Method::Invite | Method::Update) && !msg.body().is_empty();
        if leg != Leg::Caller || !offers || !self.gatekeeper.has_digest(call.trunk) {
            return true;
        }
        let Some(media) = call.media.as_ref() else {
            return true;
        };
        let offered = media.caller_offer_address(msg.body());
        let current = media.caller_remote();
        if !needs_reauth(method, true, offered, current) {
            return true;
        }
        let trunk = call.trunk;
        let call_id = call.id();
        match self
            .gatekeeper
            .reauthenticate(trunk, msg, origin.addr.ip(), SystemTime::now())
        {
            Reauth::Admitted => {
                tracing::info!(%call_id, ?offered, ?current, "caller moved its media, with credentials");
                true
            }
            Reauth::Refuse(response) => {
                tracing::debug!(%call_id, ?offered, ?current, source = %origin.addr,
                    "offer moving the media challenged");
                if let Some(r) = response {
                    self.send_now(Wire::new(origin.target(), *r));
                }
                false
            }
        }
    }

    /// One refused request: INFO once per interval (with how many were not
    /// logged since), DEBUG otherwise.
    fn log_refusal(
        &mut self,
        call_id: &str,
        leg: Leg,
        method: &Method,
        origin: &Origin,
        verdict: SourceVerdict,
    ) {
        let answer = if verdict == SourceVerdict::Drop {
            "dropped"
        } else {
            "403"
        };
        match self.refusal_log.permit(Instant::now()) {
            LogPermit::Log { suppressed } => {
                tracing::info!(%call_id, ?leg, method = method.as_str(),
                source = %origin.addr, unlogged = suppressed,
                "in-dialog request from outside the dialog's peer and the trunk's allow-list; {answer}")
            }
            LogPermit::Suppress => tracing::debug!(%call_id, ?leg, method = method.as_str(),
                source = %origin.addr, "in-dialog request from a foreign source; {answer}"),
        }
    }
}
