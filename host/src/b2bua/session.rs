//! RFC 4028 session timers toward the caller: refreshing when we are the
//! refresher, ending the call when the caller stopped refreshing.

use std::time::Instant;

use trunkline_sip::dialog::{self, TimerEvent};
use trunkline_sip::leg::InboundInput;
use trunkline_sip::message::SipMessage;

use super::call::{CallKey, Leg};
use super::gateway::{CallTimer, Gateway};
use super::wire::Wire;
use crate::policy::EndReason;

impl Gateway {
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
        let min_se = self.session_timer_config().min_se;
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
        if refresh && call.refresh_tx.is_none() && call.state().is_connected() {
            let sdp = call
                .media
                .as_ref()
                .map(|m| m.caller_answer())
                .unwrap_or_default();
            let negotiated = call.session.as_ref().map(|(_, n)| *n);
            // Without Session-Expires the caller would take the timer as
            // switched off by our refresh (RFC 4028 §7.4, §9).
            let built = call.core.five9_dialog_mut().map(|d| {
                let mut reinvite = d.reinvite(sdp.as_bytes(), &[])?;
                if let Some(negotiated) = negotiated {
                    negotiated.refresh_request(&mut reinvite, min_se)?;
                }
                Ok::<_, dialog::DialogError>(reinvite)
            });
            match built {
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
    pub(crate) fn on_refresh_response(&mut self, key: CallKey, status: u16, response: &SipMessage) {
        let now = Instant::now();
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if status >= 200 {
            call.refresh_tx = None;
        }
        let effect = call
            .core
            .five9_dialog_mut()
            .map(|d| d.handle_response(response));
        if (200..300).contains(&status) {
            let ack = call
                .core
                .five9_dialog()
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
            if let Some(call) = self.calls.get(&key) {
                tracing::info!(call_id = %call.id(), status, "session refresh failed; the dialog is gone");
            }
            // No BYE for a dialog the peer no longer has: as if the
            // caller had hung up.
            self.on_caller_input(key, InboundInput::PeerBye);
        }
    }
}
