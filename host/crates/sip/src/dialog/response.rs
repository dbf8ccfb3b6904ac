//! Responses to the requests we send in a dialog: what they change
//! (§12.2.1.2, §13.2.2.4) and what the owner must do next, including the
//! retry delay after glare (§14.1).

use std::time::Duration;

use super::error::DialogError;
use super::id::DialogId;
use super::state::{Dialog, DialogState, Role, contact_uri, is_target_refresh, record_route};
use crate::message::{Method, SipMessage, new_tag};

/// What a response to one of our requests means for the owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseEffect {
    /// Nothing to do beyond what the transaction already did.
    None,
    /// A 2xx to an INVITE (every retransmission too): send
    /// [`Dialog::ack`] for it, or the peer keeps retransmitting it for 32 s
    /// and then hangs up.
    SendAck,
    /// 491 to our re-INVITE (glare): send it again after this delay if it is
    /// still wanted (§14.1).
    RetryAfter(Duration),
    /// The dialog is over: a 481/408 (§12.2.1.2), or a non-2xx final
    /// ending an early dialog. End the call; nothing more goes out in it.
    Terminated,
}

impl Dialog {
    /// A response to a request we sent in this dialog (the initial INVITE
    /// included, for an early UAC dialog). Updates the dialog and says what
    /// the owner must do.
    pub fn handle_response(
        &mut self,
        response: &SipMessage,
    ) -> Result<ResponseEffect, DialogError> {
        if DialogId::of_received(response).as_ref() != Some(&self.id) {
            return Err(DialogError::Mismatch);
        }
        let status = response.status_code().ok_or(DialogError::Mismatch)?;
        let cseq = response.cseq()?;
        let is_invite = cseq.method == Method::Invite;
        if self.state == DialogState::Terminated {
            // The 200 to our BYE, or a late 2xx we must still ACK (§15).
            let ack = is_invite && (200..300).contains(&status);
            return Ok(if ack {
                ResponseEffect::SendAck
            } else {
                ResponseEffect::None
            });
        }
        if status == 481 || status == 408 {
            self.terminate();
            return Ok(ResponseEffect::Terminated);
        }
        if status < 200 {
            return Ok(ResponseEffect::None);
        }
        if is_invite && self.pending_local_invite == Some(cseq.seq) {
            self.pending_local_invite = None;
        }
        if status >= 300 {
            if is_invite && self.state == DialogState::Early {
                self.terminate();
                return Ok(ResponseEffect::Terminated);
            }
            if is_invite && status == 491 {
                return Ok(ResponseEffect::RetryAfter(glare_delay(self.role, random())));
            }
            return Ok(ResponseEffect::None);
        }
        if self.state == DialogState::Early {
            // §13.2.2.4: the 2xx decides the route set, whatever the 1xx said.
            self.route_set = record_route(response)?;
            self.route_set.reverse();
            self.state = DialogState::Confirmed;
        }
        if is_target_refresh(&cseq.method)
            && let Some(uri) = contact_uri(response)?
        {
            self.remote_target = uri;
        }
        Ok(if is_invite {
            ResponseEffect::SendAck
        } else {
            ResponseEffect::None
        })
    }
}

/// §14.1: after a 491 the owner of the Call-ID (the dialog's UAC) waits
/// 2.1..=4 s, the other side 0..=2 s, in 10 ms steps, so the two retries do
/// not collide again.
pub(super) fn glare_delay(role: Role, random: u64) -> Duration {
    let (base, span) = match role {
        Role::Uac => (210, 190),
        Role::Uas => (0, 200),
    };
    Duration::from_millis((base + random % (span + 1)) * 10)
}

/// Unpredictable bits from the tag generator (the crate reads no clock and
/// no RNG of its own).
pub(super) fn random() -> u64 {
    u64::from_str_radix(&new_tag(), 16).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn uac_early_dialog_is_confirmed_by_the_2xx() {
        let invite = message(AGENT_INVITE, SDP);
        let ringing = message(AGENT_180, "");
        let mut dialog = Dialog::uac(&invite, &ringing).expect("early dialog");
        assert_eq!(dialog.state(), DialogState::Early);
        assert_eq!(dialog.remote_target(), "sip:agent@10.1.1.5:5070");
        assert_eq!(dialog.local_seq(), 10);
        assert_eq!(dialog.remote_seq(), None);
        let ok = message(AGENT_200, SDP);
        assert_eq!(dialog.handle_response(&ok), Ok(ResponseEffect::SendAck));
        assert_eq!(dialog.state(), DialogState::Confirmed);
        assert_eq!(
            dialog.remote_target(),
            "sip:agent@10.1.1.5:5080;transport=udp"
        );
        assert_eq!(dialog.route_set().len(), 2);
        // A retransmitted 2xx is ACKed again and changes nothing.
        assert_eq!(dialog.handle_response(&ok), Ok(ResponseEffect::SendAck));
        assert_eq!(dialog.state(), DialogState::Confirmed);
    }

    #[test]
    fn responses_to_in_dialog_requests() {
        let ok = message(AGENT_200, "");
        let with_status = |line: &str, cseq: &str| {
            message(
                &AGENT_200.replace("200 OK", line).replace("10 INVITE", cseq),
                "",
            )
        };
        // (what, response, effect, state after)
        let table: Vec<(&str, SipMessage, ResponseEffect, DialogState)> = vec![
            (
                "200 to INVITE",
                ok.clone(),
                ResponseEffect::SendAck,
                DialogState::Confirmed,
            ),
            (
                "200 to BYE",
                with_status("200 OK", "11 BYE"),
                ResponseEffect::None,
                DialogState::Confirmed,
            ),
            (
                "488 to re-INVITE",
                with_status("488 Not Acceptable Here", "11 INVITE"),
                ResponseEffect::None,
                DialogState::Confirmed,
            ),
            (
                "481 to INFO",
                with_status("481 Call Does Not Exist", "11 INFO"),
                ResponseEffect::Terminated,
                DialogState::Terminated,
            ),
            (
                "408 to re-INVITE",
                with_status("408 Request Timeout", "11 INVITE"),
                ResponseEffect::Terminated,
                DialogState::Terminated,
            ),
        ];
        for (what, response, effect, state) in table {
            let mut dialog = uac_dialog();
            assert_eq!(dialog.handle_response(&response), Ok(effect), "{what}");
            assert_eq!(dialog.state(), state, "{what}");
        }
        let mut dialog = uac_dialog();
        let stranger = message(&AGENT_200.replace("agent-1", "fork-2"), "");
        assert_eq!(
            dialog.handle_response(&stranger),
            Err(DialogError::Mismatch)
        );
    }

    #[test]
    fn glare_delays_follow_call_id_ownership() {
        let table = [
            (Role::Uac, 0, 2100),
            (Role::Uac, 190, 4000),
            (Role::Uac, 191, 2100),
            (Role::Uas, 0, 0),
            (Role::Uas, 200, 2000),
            (Role::Uas, 201, 0),
        ];
        for (role, random, ms) in table {
            assert_eq!(
                glare_delay(role, random),
                Duration::from_millis(ms),
                "{role:?} {random}"
            );
        }
        for _ in 0..100 {
            let delay = glare_delay(Role::Uac, random());
            assert!((2100..=4000).contains(&delay.as_millis()), "{delay:?}");
        }
    }
}
