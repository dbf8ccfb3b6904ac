//! What each leg says after the INVITE: the agent's answer or failure,
//! ACKs, CANCEL, and requests inside either dialog.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use trunkline_sip::dialog::{self, Dialog, DialogId, Incoming, SessionTimer, TimerEvent, UasTimer};
use trunkline_sip::message::{Host, Method, SipMessage, Uri};
use trunkline_sip::transaction::{Event, Reliability, TransactionKey};

use super::call::{CallKey, Leg, Phase, policy_headers};
use super::gateway::{CallTimer, Gateway, GatewayEvent};
use super::wire::Wire;
use crate::policy::EndReason;
use crate::transport::{Target, TransportKind};

/// The caller's status for an agent's failure: Five9 branches on a few
/// well-known codes.
fn caller_status_for(agent_status: u16) -> u16 {
    match agent_status {
        486 | 600 | 603 => 486,
        408 => 408,
        401 | 407 => 503,
        500..=599 => 503,
        _ => 480,
    }
}

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
        let is_agent_invite = call.agent_tx.as_ref() == Some(&tx);
        let is_refer = call.refer_tx.as_ref() == Some(&tx);
        if is_agent_invite
            && matches!(&event, Event::Response { status, .. } if *status >= 200)
            && let Some(c) = self.calls.get_mut(&key)
        {
            c.agent_final = true;
        }
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        match event {
            Event::Response { status, response } if is_agent_invite => match status {
                100 => {}
                101..=199 => self.on_agent_ringing(key),
                200..=299 => self.on_agent_answer(key, &response.msg),
                _ => {
                    tracing::info!(call_id = %call.id(), status, "agent refused the call");
                    self.fail_before_answer(key, caller_status_for(status));
                }
            },
            Event::Timeout(_) | Event::TransportError if is_agent_invite => {
                tracing::info!(call_id = %call.id(), "agent did not answer the INVITE");
                self.fail_before_answer(key, 408);
            }
            Event::Ack(_) if leg == Leg::Caller => self.caller_acked(key),
            Event::Response { status, .. } if is_refer && status >= 300 => {
                tracing::info!(call_id = %call.id(), status, "REFER refused; ending with a BYE");
                self.finish_refer(key, true);
            }
            Event::Timeout(_) | Event::TransportError if is_refer => self.finish_refer(key, true),
            Event::Response { status, response } if call.refresh_tx.as_ref() == Some(&tx) => {
                self.on_refresh_response(key, status, &response.msg)
            }
            _ => {}
        }
    }

    fn on_agent_ringing(&mut self, key: CallKey) {
        let now = Instant::now();
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if call.rang || call.phase != Phase::Calling || !call.caller_up {
            return;
        }
        call.rang = true;
        let (tx, target) = (call.caller_tx.clone(), call.caller_invite.target.clone());
        if let Ok(ringing) = call
            .caller_invite
            .msg
            .reply(180, None, Some(&call.caller_tag))
        {
            let _ = self
                .table
                .send_response(now, &tx, 180, Wire::new(target, ringing));
        }
    }

    fn on_agent_answer(&mut self, key: CallKey, response: &SipMessage) {
        let now = Instant::now();
        let Some(mut call) = self.calls.remove(&key) else {
            return;
        };
        if call.agent_dialog.is_some() {
            // A retransmitted 2xx: our ACK got lost.
            if let Some(ack) = call.agent_ack.clone() {
                self.send_now(ack);
            }
            self.calls.insert(key, call);
            return;
        }
        let Some(invite) = call.agent_invite.clone() else {
            self.calls.insert(key, call);
            return;
        };
        let agent_dialog = match Dialog::uac(&invite.msg, response) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(call_id = %call.id(), error = %e, "agent's 2xx cannot start a dialog");
                self.calls.insert(key, call);
                self.fail_before_answer(key, 502);
                return;
            }
        };
        if let Ok(ack) = agent_dialog.ack(response, None) {
            let target = self.target_for(&ack, &invite.target);
            let wire = Wire::new(target, ack);
            self.send_now(wire.clone());
            call.agent_ack = Some(wire);
        }
        self.by_dialog
            .insert(agent_dialog.id().clone(), (key, Leg::Agent));
        call.agent_dialog = Some(agent_dialog);
        call.agent_up = true;
        if !call.caller_up || call.end_reason.is_some() {
            // The caller left while the agent was answering.
            self.calls.insert(key, call);
            self.bye(key, Leg::Agent, &[]);
            return;
        }
        let events = self.events_tx.clone();
        let started = match call.media.as_mut() {
            Some(media) => {
                self.media
                    .start(media, response.body(), key, events, GatewayEvent::Media)
            }
            None => Ok(()),
        };
        if let Err(f) = started {
            tracing::warn!(call_id = %call.id(), failure = %f, "agent media unusable");
            self.calls.insert(key, call);
            self.bye(key, Leg::Agent, &[]);
            self.fail_before_answer(key, f.status);
            return;
        }

        // Answer the caller.
        let kind = call.caller_invite.target.kind;
        let (via, contact) = (
            self.local_via(kind).unwrap_or_default(),
            self.local_contact(kind).unwrap_or_default(),
        );
        let sdp = call
            .media
            .as_ref()
            .map(|m| m.caller_answer())
            .unwrap_or_default();
        let built = call
            .caller_invite
            .msg
            .reply(200, None, Some(&call.caller_tag))
            .and_then(|m| m.with_header("Contact", &contact))
            .and_then(|m| m.with_header("Allow", dialog::ALLOW))
            .and_then(|m| m.with_header("Supported", dialog::SUPPORTED))
            .and_then(|m| m.with_body("application/sdp", sdp.into_bytes()));
        let mut ok = match built {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(call_id = %call.id(), error = %e, "cannot build the 200 OK");
                self.calls.insert(key, call);
                self.bye(key, Leg::Agent, &[]);
                self.fail_before_answer(key, 500);
                return;
            }
        };
        if let Ok(UasTimer::Run(negotiated)) =
            dialog::negotiate_uas(&call.caller_invite.msg, &self.session_timer_config())
        {
            let _ = negotiated.apply(&mut ok);
            call.session = Some((SessionTimer::new(now, &negotiated), negotiated));
        }
        match Dialog::uas(&call.caller_invite.msg, &ok, &via) {
            Ok(d) => {
                self.by_dialog.insert(d.id().clone(), (key, Leg::Caller));
                call.caller_dialog = Some(d);
            }
            Err(e) => tracing::warn!(call_id = %call.id(), error = %e, "caller dialog not created"),
        }
        let wire = Wire::new(call.caller_invite.target.clone(), ok);
        let _ = self
            .table
            .send_response(now, &call.caller_tx, 200, wire.clone());
        let unreliable = wire.target.kind == TransportKind::Udp;
        call.caller_ok = Some(wire);
        call.phase = Phase::Connected;
        call.answered = Some((now, std::time::SystemTime::now()));
        tracing::info!(call_id = %call.id(), "call connected");
        self.calls.insert(key, call);
        if unreliable {
            self.arm(key, self.timer_config.t1, CallTimer::Retransmit200(1));
        }
        let max = Duration::from_secs(self.config.gateway.max_call_secs);
        self.arm(key, max, CallTimer::MaxDuration);
        self.arm_session(key);
    }

    /// Arms the call's session timer at its next deadline.
    pub(crate) fn arm_session(&mut self, key: CallKey) {
        let next = self
            .calls
            .get(&key)
            .and_then(|c| c.session.as_ref())
            .and_then(|(t, _)| t.poll_timeout());
        if let Some(at) = next {
            self.arm(
                key,
                at.saturating_duration_since(Instant::now()),
                CallTimer::Session,
            );
        }
    }

    /// The session timer fired: refresh (we are the refresher) or end the
    /// call (the caller stopped refreshing: the session is gone).
    pub(crate) fn on_session_timer(&mut self, key: CallKey) {
        let now = Instant::now();
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let Some((timer, _)) = call.session.as_mut() else {
            return;
        };
        timer.handle_timeout(now);
        let (mut refresh, mut expired) = (false, false);
        while let Some(ev) = timer.poll_event() {
            match ev {
                TimerEvent::Refresh => refresh = true,
                TimerEvent::Expired => expired = true,
            }
        }
        if expired {
            tracing::info!(call_id = %call.id(), "session timer expired: the caller stopped refreshing");
            self.end_call(key, EndReason::Error);
            return;
        }
        if refresh && call.refresh_tx.is_none() && call.phase == Phase::Connected {
            let sdp = call
                .media
                .as_ref()
                .map(|m| m.caller_answer())
                .unwrap_or_default();
            match call
                .caller_dialog
                .as_mut()
                .map(|d| d.reinvite(sdp.as_bytes(), &[]))
            {
                Some(Ok(reinvite)) => {
                    let tx = self.send_request(key, Leg::Caller, reinvite);
                    if let Some(c) = self.calls.get_mut(&key) {
                        c.refresh_tx = tx;
                    }
                }
                Some(Err(e)) => {
                    tracing::debug!(call_id = %call.id(), error = %e, "refresh postponed")
                }
                None => {}
            }
        }
        self.arm_session(key);
    }

    /// The answer to our refreshing re-INVITE.
    fn on_refresh_response(&mut self, key: CallKey, status: u16, response: &SipMessage) {
        let now = Instant::now();
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if status >= 200 {
            call.refresh_tx = None;
        }
        let effect = call
            .caller_dialog
            .as_mut()
            .map(|d| d.handle_response(response));
        if (200..300).contains(&status) {
            let ack = call
                .caller_dialog
                .as_ref()
                .and_then(|d| d.ack(response, None).ok());
            let fallback = call.caller_invite.target.clone();
            if let Some(ack) = ack {
                let target = self.target_for(&ack, &fallback);
                self.send_now(Wire::new(target, ack));
            }
            if let Some(call) = self.calls.get_mut(&key)
                && let Some((timer, negotiated)) = call.session.as_mut()
            {
                timer.refreshed(now, negotiated);
            }
            self.arm_session(key);
        } else if status >= 200
            && (matches!(status, 408 | 481)
                || matches!(effect, Some(Ok(dialog::ResponseEffect::Terminated))))
        {
            if let Some(call) = self.calls.get_mut(&key) {
                tracing::info!(call_id = %call.id(), status, "session refresh failed; the dialog is gone");
                call.caller_up = false;
            }
            self.end_call(key, EndReason::CallerHangup);
        }
    }

    /// Our 2xx to the caller again (UDP), until the ACK or 64*T1.
    pub(crate) fn retransmit_200(&mut self, key: CallKey, n: u32) {
        let t1 = self.timer_config.t1;
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        let Some(ok) = call.caller_ok.clone() else {
            return;
        };
        let elapsed: Duration = (0..n)
            .map(|i| (t1 * 2u32.pow(i.min(16))).min(self.timer_config.t2))
            .sum();
        if elapsed >= t1 * 64 {
            tracing::warn!(call_id = %call.id(), "caller never ACKed our 200 OK; ending the call");
            // §13.3.1.4: without the ACK the dialog is to be ended with a
            // BYE; a held outcome goes out now, else the call ends here.
            self.end_call(key, EndReason::Error);
            self.caller_acked(key);
            return;
        }
        self.send_now(ok);
        let next = (t1 * 2u32.pow(n.min(16))).min(self.timer_config.t2);
        self.arm(key, next, CallTimer::Retransmit200(n + 1));
    }

    /// The ACK for a 2xx (end to end, new branch): the caller confirms.
    pub(crate) fn on_ack(&mut self, msg: &SipMessage) {
        let Some(id) = DialogId::of_received(msg) else {
            return;
        };
        if let Some(&(key, Leg::Caller)) = self.by_dialog.get(&id) {
            self.caller_acked(key);
        }
    }

    /// The caller ACKed our 2xx (or we gave up waiting): stop
    /// retransmitting it, and send the outcome if it was held for the ACK.
    pub(crate) fn caller_acked(&mut self, key: CallKey) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        call.caller_ok = None;
        if let Some((refer, headers)) = call.held_delivery.take() {
            self.deliver(key, refer.as_deref(), &headers);
            self.maybe_forget(key);
        }
    }

    /// A 2xx from the agent after its INVITE transaction ended.
    pub(crate) fn on_late_2xx(&mut self, msg: &SipMessage) {
        if let Some(id) = DialogId::of_received(msg)
            && let Some(&(key, Leg::Agent)) = self.by_dialog.get(&id)
            && let Some(ack) = self.calls.get(&key).and_then(|c| c.agent_ack.clone())
        {
            self.send_now(ack);
        }
    }

    pub(crate) fn on_cancel(
        &mut self,
        now: Instant,
        key: TransactionKey,
        wire: Wire,
        reliability: Reliability,
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
        let reply = wire.msg.reply(200, None, None).ok();
        self.respond_once(now, key, reliability, &to, reply);
        let Some(call) = self.calls.get_mut(&call_key) else {
            return;
        };
        if call.phase != Phase::Calling || !call.caller_up {
            return; // Too late: the 200 OK went out; the caller will BYE.
        }
        call.caller_up = false;
        let (tx, target) = (call.caller_tx.clone(), call.caller_invite.target.clone());
        if let Ok(terminated) = call
            .caller_invite
            .msg
            .reply(487, None, Some(&call.caller_tag))
        {
            let _ = self
                .table
                .send_response(now, &tx, 487, Wire::new(target, terminated));
        }
        tracing::info!(call_id = %call.id(), "caller cancelled");
        self.end_call(call_key, EndReason::CallerHangup);
    }

    pub(crate) fn on_in_dialog(
        &mut self,
        now: Instant,
        key: TransactionKey,
        wire: Wire,
        reliability: Reliability,
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
                match leg {
                    Leg::Caller => {
                        call.caller_up = false;
                        // Five9 hung up while our REFER was pending: nothing
                        // left to deliver.
                        call.refer_tx = None;
                        call.delivery_headers.clear();
                        self.end_call(call_key, EndReason::CallerHangup);
                        self.maybe_forget(call_key);
                    }
                    Leg::Agent => {
                        call.agent_up = false;
                        call.agent_bye_headers = policy_headers(&msg);
                        self.end_call(call_key, EndReason::AgentHangup);
                    }
                }
            }
            Ok(Incoming::Notify { reply, progress }) => {
                self.respond(now, key, reliability, &to, Some(reply), false);
                // A final sipfrag status ends the transfer; so does a
                // terminated subscription without one (the transferee gave
                // up), which counts as a failure.
                if leg == Leg::Caller && (progress.is_final() || progress.terminated) {
                    tracing::info!(call_id = %format!("{call_key:x}"), status = progress.status,
                        "REFER finished");
                    self.finish_refer(call_key, !progress.succeeded());
                }
            }
            Ok(Incoming::Reinvite) | Ok(Incoming::Update) => {
                let answer = self.calls.get_mut(&call_key).and_then(|call| {
                    let media = call.media.as_mut()?;
                    let sdp = if msg.body().is_empty() {
                        Ok(media.caller_answer())
                    } else if leg == Leg::Caller {
                        media.caller_reoffer(msg.body())
                    } else {
                        media.agent_reoffer(msg.body())
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
                if is_invite && ok_2xx && leg == Leg::Caller && to.kind == TransportKind::Udp {
                    if let (Some(call), Some(r)) = (self.calls.get_mut(&call_key), reply) {
                        call.caller_ok = Some(Wire::new(to, r));
                    }
                    self.arm(call_key, self.timer_config.t1, CallTimer::Retransmit200(1));
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
            Ok(Incoming::Ack) => {
                if leg == Leg::Caller {
                    self.caller_acked(call_key);
                }
            }
        }
    }

    /// Answers a request in its own server transaction (INVITE or not).
    fn respond(
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
            .start_server_invite(now, key.clone(), reliability, Wire::new(to.clone(), trying))
            .is_ok()
        {
            let _ = self
                .table
                .send_response(now, &key, status, Wire::new(to.clone(), reply));
        }
    }

    /// Where a request built by a dialog goes: its first Route, else its
    /// Request-URI, when that names an IP address; else where the dialog's
    /// peer was reached before.
    pub(crate) fn target_for(&self, request: &SipMessage, fallback: &Target) -> Target {
        let route_uri = request
            .header("Route")
            .and_then(|r| r.split(',').next())
            .map(|r| {
                r.trim()
                    .trim_start_matches('<')
                    .split('>')
                    .next()
                    .unwrap_or("")
                    .to_owned()
            });
        let uri_text =
            route_uri.unwrap_or_else(|| request.request_uri().unwrap_or_default().to_owned());
        let Some(uri) = Uri::parse(&uri_text) else {
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
