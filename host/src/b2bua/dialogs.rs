//! Requests inside either dialog (BYE, re-INVITE, UPDATE, INFO, NOTIFY,
//! REFER, ACK), CANCEL, and where our in-dialog requests go. Each is first
//! checked against who may send it (`peers`).

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use trunkline_call::CallInput;
use trunkline_sip::dialog::{self, DialogId, Incoming};
use trunkline_sip::leg::{InboundInput, OutboundInput};
use trunkline_sip::message::{Host, Method, SipMessage};
use trunkline_sip::transaction::{Reliability, TransactionKey};

use super::call::{Leg, policy_headers};
use super::gateway::Gateway;
use super::peers::Origin;
use super::wire::Wire;
use crate::transport::{Target, TransportKind};

impl Gateway {
    pub(crate) fn on_cancel(
        &mut self,
        now: Instant,
        key: TransactionKey,
        wire: Wire,
        reliability: Reliability,
        origin: &Origin,
    ) {
        let to = wire.target.clone();
        let call = key
            .cancelled_invite()
            .and_then(|invite| self.by_tx.get(&invite).copied());
        let Some((call_key, Leg::Caller)) = call else {
            let reply = wire.msg.reply(481, None, None).ok();
            self.respond_once(now, key, reliability, &to, reply);
            return;
        };
        // Only whoever sent the INVITE (or the trunk's allowed sources)
        // may cancel it.
        if !self.admit_in_dialog(call_key, Leg::Caller, &wire.msg, origin) {
            return;
        }
        let reply = wire.msg.reply(200, None, None).ok();
        self.respond_once(now, key, reliability, &to, reply);
        // 487 and the end of the call, unless the 200 OK went out already
        // (then the caller will BYE).
        self.on_caller_input(call_key, InboundInput::Cancel);
    }

    pub(crate) fn on_in_dialog(
        &mut self,
        now: Instant,
        key: TransactionKey,
        wire: Wire,
        reliability: Reliability,
        origin: &Origin,
    ) {
        let msg = wire.msg.clone();
        let to = wire.target.clone();
        let is_invite = msg.method() == Some(&Method::Invite);
        let found = DialogId::of_received(&msg).and_then(|id| self.by_dialog.get(&id).copied());
        let Some((call_key, leg)) = found else {
            let reply = dialog::reject_unknown_dialog(&msg).ok().flatten();
            self.respond(now, key, reliability, &to, reply, is_invite);
            return;
        };
        let _span = self.call_span(call_key).entered();
        // Before the dialog sees it (its CSeq would move): the peer's own,
        // and credentials again for an offer that moves the media.
        if !self.admit_in_dialog(call_key, leg, &msg, origin)
            || !self.media_move_authorised(call_key, leg, &msg, origin)
        {
            return;
        }
        let Some(incoming) = self
            .calls
            .get_mut(&call_key)
            .and_then(|c| c.dialog_mut(leg))
            .map(|d| d.on_request(&msg))
        else {
            return;
        };
        match incoming {
            Err(e) => {
                let reply = e.status().and_then(|s| msg.reply(s, None, None).ok());
                self.respond(now, key, reliability, &to, reply, is_invite);
            }
            Ok(Incoming::Reply(r)) | Ok(Incoming::Info(r)) => {
                self.respond(now, key, reliability, &to, Some(r), is_invite)
            }
            Ok(Incoming::Bye(r)) => {
                self.respond(now, key, reliability, &to, Some(r), false);
                let Some(call) = self.calls.get_mut(&call_key) else {
                    return;
                };
                tracing::info!(call_id = %call.id(), ?leg, "BYE received");
                // The call core ends the call (a REFER pending toward a
                // caller who hung up has nothing left to deliver).
                let input = match leg {
                    Leg::Caller if call.core.dialled().is_some() => {
                        CallInput::Dialled(OutboundInput::PeerBye)
                    }
                    Leg::Caller => CallInput::Caller(InboundInput::PeerBye),
                    Leg::Agent => {
                        call.agent_bye_headers = policy_headers(&msg);
                        CallInput::Agent(OutboundInput::PeerBye)
                    }
                    Leg::Transfer => CallInput::Transfer(OutboundInput::PeerBye),
                };
                self.tell_call(call_key, input);
            }
            Ok(Incoming::Notify { reply, progress }) => {
                self.respond(now, key, reliability, &to, Some(reply), false);
                // A final sipfrag status ends the transfer; so does a
                // terminated subscription without one (the transferee gave
                // up), which counts as a failure.
                if leg == Leg::Caller && (progress.is_final() || progress.terminated) {
                    tracing::info!(call_id = %format!("{call_key:x}"), status = progress.status,
                        "REFER finished");
                    let succeeded = progress.succeeded();
                    self.tell_call(call_key, CallInput::ReferNotified { succeeded });
                }
            }
            Ok(Incoming::Reinvite) | Ok(Incoming::Update) => {
                let answer = self.calls.get_mut(&call_key).and_then(|call| {
                    let media = call.media.as_mut()?;
                    // A re-INVITE without SDP asks for our offer in the 2xx:
                    // that leg's own session description.
                    let no_offer = super::media::MediaFailure {
                        status: 488,
                        reason: "Not Acceptable Here",
                        warning: None,
                    };
                    let sdp = match (leg, msg.body().is_empty()) {
                        (Leg::Caller, true) => Ok(media.caller_answer()),
                        (Leg::Agent, true) => Ok(media.agent_offer()),
                        (Leg::Transfer, true) => media.transfer_offer().ok_or(no_offer),
                        (Leg::Caller, false) => media.caller_reoffer(msg.body()),
                        (Leg::Agent, false) => media.agent_reoffer(msg.body()),
                        (Leg::Transfer, false) => media.transfer_reoffer(msg.body()),
                    };
                    Some(sdp)
                });
                let call = self.calls.get_mut(&call_key);
                let reply = match (call, answer) {
                    (Some(call), Some(Ok(sdp))) => call.dialog_mut(leg).and_then(|d| {
                        d.answer(&msg, 200, Some(("application/sdp", sdp.as_bytes())))
                            .ok()
                    }),
                    (Some(call), Some(Err(f))) => call.dialog_mut(leg).and_then(|d| {
                        let mut r = d.answer(&msg, f.status, None).ok()?;
                        if let Some(w) = &f.warning {
                            let _ = r.push_header("Warning", w);
                        }
                        Some(r)
                    }),
                    (Some(call), None) => call
                        .dialog_mut(leg)
                        .and_then(|d| d.answer(&msg, 200, None).ok()),
                    (None, _) => None,
                };
                let ok_2xx = reply
                    .as_ref()
                    .and_then(|r| r.status_code())
                    .is_some_and(|s| (200..300).contains(&s));
                // A successful re-INVITE or UPDATE from the caller refreshes
                // the session (RFC 4028 §10); our 2xx repeats the interval.
                let mut reply = reply;
                if ok_2xx
                    && leg == Leg::Caller
                    && let Some(call) = self.calls.get_mut(&call_key)
                    && let Some((timer, negotiated)) = call.session.as_mut()
                {
                    timer.refreshed(now, negotiated);
                    if let Some(r) = reply.as_mut() {
                        let _ = negotiated.apply(r);
                    }
                }
                self.arm_session(call_key);
                self.respond(now, key, reliability, &to, reply.clone(), is_invite);
                // Our 2xx is re-sent (UDP) until the ACK, whichever side
                // sent the re-INVITE.
                if is_invite
                    && ok_2xx
                    && let Some(r) = reply
                    && let Some(call) = self.calls.get_mut(&call_key)
                {
                    match leg {
                        Leg::Caller => match call.core.caller_mut() {
                            Some(caller) => caller.reinvite_answered(now, r),
                            None => {
                                if let Some(leg) = call.core.dialled_mut() {
                                    leg.reinvite_answered(now, r);
                                }
                            }
                        },
                        Leg::Agent => {
                            call.agent_ok_to = Some(to.clone());
                            if let Some(agent) = call.core.agent_mut() {
                                agent.reinvite_answered(now, r);
                            }
                        }
                        Leg::Transfer => {
                            if let Some(target) = call.core.transfer_leg_mut() {
                                target.reinvite_answered(now, r);
                            }
                        }
                    }
                    self.drive(call_key);
                }
            }
            Ok(Incoming::Refer { .. }) => {
                // Transfers are asked for through the policy's outcome or the
                // control API, not by a REFER from either leg.
                let reply = self
                    .calls
                    .get_mut(&call_key)
                    .and_then(|c| c.dialog_mut(leg))
                    .and_then(|d| d.answer(&msg, 603, None).ok());
                self.respond(now, key, reliability, &to, reply, false);
            }
            Ok(Incoming::Ack) => self.on_leg_ack(call_key, leg),
        }
    }

    /// Where a request built by a dialog goes: its first Route, else its
    /// Request-URI, when that names an IP address; else where the dialog's
    /// peer was reached before.
    pub(crate) fn target_for(&self, request: &SipMessage, fallback: &Target) -> Target {
        // The first loose Route, else the Request-URI (a strict router
        // was moved there by the dialog, §12.2.1.1).
        let Some(uri) = trunkline_sip::leg::next_hop(request) else {
            return fallback.clone();
        };
        let ip = match &uri.host {
            Some(Host::Ipv4(a)) => IpAddr::V4(*a),
            Some(Host::Ipv6(a)) => IpAddr::V6(*a),
            _ => return fallback.clone(),
        };
        let addr = SocketAddr::new(ip, uri.port.unwrap_or(uri.default_port()));
        if addr == fallback.addr {
            return fallback.clone();
        }
        Target::new(fallback.kind, addr)
    }

    /// Our sent-by for `kind`: `SIP/2.0/UDP 192.0.2.1:5060` (a Via without
    /// its branch). `None` when that transport does not listen.
    pub(crate) fn local_via(&self, kind: TransportKind) -> Option<String> {
        let port = self.ports.get(&kind)?;
        let proto = match kind {
            TransportKind::Udp => "UDP",
            TransportKind::Tcp => "TCP",
            TransportKind::Tls => "TLS",
        };
        Some(format!(
            "SIP/2.0/{proto} {}:{port}",
            host_text(self.advertise)
        ))
    }

    /// Our Contact for `kind`: `<sip:trunkline@192.0.2.1:5060;transport=tcp>`.
    pub(crate) fn local_contact(&self, kind: TransportKind) -> Option<String> {
        let port = self.ports.get(&kind)?;
        let param = match kind {
            TransportKind::Udp => "",
            TransportKind::Tcp => ";transport=tcp",
            TransportKind::Tls => ";transport=tls",
        };
        Some(format!(
            "<sip:trunkline@{}:{port}{param}>",
            host_text(self.advertise)
        ))
    }
}

/// An IP address as it appears in a URI host.
pub(crate) fn host_text(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) => format!("[{v6}]"),
        v4 => v4.to_string(),
    }
}
