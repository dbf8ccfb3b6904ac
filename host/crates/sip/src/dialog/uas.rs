//! Requests the peer sends us in a dialog (§12.2.2, §14.2, §15.1.2):
//! [`Dialog::on_request`] answers what needs no decision (BYE, OPTIONS,
//! INFO, NOTIFY, errors) and hands the rest (re-INVITE, UPDATE, REFER) to
//! the owner, who answers with [`Dialog::answer`].

use super::answer::{answer_options, reply};
use super::error::DialogError;
use super::id::DialogId;
use super::refer::ReferProgress;
use super::response::random;
use super::state::{Dialog, DialogState, contact_uri};
use crate::inspect::inspect;
use crate::message::{Method, NameAddr, SipMessage};

/// What a request from the peer means, and the answer when it needs no
/// decision from the owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// Send this response; nothing else to do (OPTIONS, out-of-order CSeq
    /// 500, glare 491/500, 501/405 for what we do not do, 481 after the
    /// dialog ended or for an unmatched CANCEL, 400/489 for a bad NOTIFY).
    Reply(SipMessage),
    /// The peer hung up: send this 200; the dialog is terminated. Headers
    /// the agent put on its BYE are in the request, for `conclude`.
    Bye(SipMessage),
    /// INFO (DTMF relay, ...): send this 200; the body is in the request.
    Info(SipMessage),
    /// A NOTIFY about our REFER: send `reply`; `progress` is the transfer's.
    Notify {
        /// The 200 to send.
        reply: SipMessage,
        /// The sipfrag status and whether the subscription ended.
        progress: ReferProgress,
    },
    /// A re-INVITE (hold, resume, session refresh): answer it with
    /// [`Dialog::answer`], an SDP answer on the 2xx.
    Reinvite,
    /// An UPDATE (session refresh, or an offer): answer with
    /// [`Dialog::answer`].
    Update,
    /// A REFER to `target`: accept with `answer(.., 202, ..)` and report with
    /// [`Dialog::notify_refer`], or refuse (603).
    Refer {
        /// The Refer-To value.
        target: NameAddr,
    },
    /// The ACK for our 2xx: stop retransmitting it. Its body is the SDP
    /// answer when our 2xx held the offer.
    Ack,
}

impl Dialog {
    /// Takes in a request the peer sent in this dialog. `Err` only when the
    /// request belongs to another dialog (answer it with
    /// [`reject_unknown_dialog`](super::reject_unknown_dialog) if no dialog
    /// takes it) or could not be read.
    pub fn on_request(&mut self, request: &SipMessage) -> Result<Incoming, DialogError> {
        let method = request.method().ok_or(DialogError::Mismatch)?.clone();
        if DialogId::of_received(request).as_ref() != Some(&self.id) {
            return Err(DialogError::Mismatch);
        }
        let cseq = request.cseq()?;
        match method {
            // ACK and CANCEL carry the INVITE's CSeq, so §12.2.2's ordering
            // check does not apply to them.
            Method::Ack => return Ok(Incoming::Ack),
            // A CANCEL that reached the dialog matched no INVITE transaction.
            Method::Cancel => return reply(request, 481, None).map(Incoming::Reply),
            _ => {}
        }
        if self.state == DialogState::Terminated {
            return reply(request, 481, None).map(Incoming::Reply);
        }
        if let Some(refusal) = unsupported(request)? {
            return Ok(Incoming::Reply(refusal));
        }
        if self.remote_seq.is_some_and(|last| cseq.seq < last) {
            // §12.2.2: out of order. Equal numbers are retransmissions,
            // which the transaction layer absorbs before they get here.
            return reply(request, 500, Some("CSeq Out of Order")).map(Incoming::Reply);
        }
        self.remote_seq = Some(cseq.seq);
        Ok(match method {
            Method::Bye => {
                let ok = reply(request, 200, None)?;
                self.terminate();
                Incoming::Bye(ok)
            }
            Method::Options => Incoming::Reply(answer_options(request)?),
            Method::Info => Incoming::Info(reply(request, 200, None)?),
            Method::Invite if self.pending_local_invite.is_some() => {
                // §14.2: our own INVITE is in progress (glare).
                Incoming::Reply(reply(request, 491, None)?)
            }
            Method::Invite if self.pending_remote_invite.is_some() => {
                // §14.2: the peer's previous INVITE is still unanswered.
                let retry = (random() % 11).to_string();
                Incoming::Reply(reply(request, 500, None)?.with_header("Retry-After", &retry)?)
            }
            Method::Invite => {
                self.pending_remote_invite = Some(cseq.seq);
                Incoming::Reinvite
            }
            Method::Update => Incoming::Update,
            Method::Refer => {
                let mut targets = request.header_values("Refer-To");
                match (targets.next().and_then(NameAddr::parse), targets.next()) {
                    (Some(target), None) => Incoming::Refer { target },
                    // RFC 3515 §2.4.1: exactly one Refer-To.
                    _ => Incoming::Reply(reply(request, 400, Some("Bad Request - Refer-To"))?),
                }
            }
            Method::Notify => match ReferProgress::from_notify(request) {
                Ok(progress) => {
                    // NOTIFY is a target refresh (RFC 6665 §4.1.2.4).
                    if let Some(uri) = contact_uri(request)? {
                        self.remote_target = uri;
                    }
                    Incoming::Notify {
                        reply: reply(request, 200, None)?,
                        progress,
                    }
                }
                Err(error) => {
                    let code = error.status().unwrap_or(400);
                    Incoming::Reply(reply(request, code, None)?)
                }
            },
            _ => Incoming::Reply(reply(request, 501, None)?),
        })
    }
}

/// The refusals of RFC 3261 §8.2 ([`inspect`]): 501 for a method we do not
/// know, 405 (with Allow) for one we know but do not take, 416, 420 (with
/// Unsupported), 415 and 406; `None` for what we handle. The dialog's own
/// To tag is on the request, so the reply keeps it.
fn unsupported(request: &SipMessage) -> Result<Option<SipMessage>, DialogError> {
    match inspect(request) {
        Some(refusal) => Ok(Some(refusal.reply(request, None)?)),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::super::ResponseEffect;
    use super::super::answer::ALLOW;
    use super::super::testing::*;
    use super::*;

    fn status(incoming: &Incoming) -> Option<u16> {
        match incoming {
            Incoming::Reply(r) | Incoming::Bye(r) | Incoming::Info(r) => r.status_code(),
            Incoming::Notify { reply, .. } => reply.status_code(),
            _ => None,
        }
    }

    #[test]
    fn requests_in_a_confirmed_dialog() {
        let line = |method: &str| format!("{method} sip:trunkline@192.0.2.10:5060 SIP/2.0");
        // (what, request, status answered, dialog state after)
        let table: Vec<(&str, SipMessage, Option<u16>, DialogState)> = vec![
            (
                "BYE",
                from_five9(BYE_LINE, 2, "", ""),
                Some(200),
                DialogState::Terminated,
            ),
            (
                "OPTIONS",
                from_five9(&line("OPTIONS"), 2, "", ""),
                Some(200),
                DialogState::Confirmed,
            ),
            (
                "INFO",
                from_five9(
                    &line("INFO"),
                    2,
                    "Content-Type: application/dtmf-relay\r\n",
                    "Signal=1\r\n",
                ),
                Some(200),
                DialogState::Confirmed,
            ),
            (
                "unknown method",
                from_five9(&line("FOO"), 2, "", ""),
                Some(501),
                DialogState::Confirmed,
            ),
            (
                "SUBSCRIBE",
                from_five9(&line("SUBSCRIBE"), 2, "", ""),
                Some(405),
                DialogState::Confirmed,
            ),
            (
                "CSeq below the INVITE's",
                from_five9(BYE_LINE, 0, "", ""),
                Some(500),
                DialogState::Confirmed,
            ),
            (
                "CANCEL with no INVITE transaction",
                from_five9(&line("CANCEL"), 1, "", ""),
                Some(481),
                DialogState::Confirmed,
            ),
            (
                "ACK",
                from_five9(&line("ACK"), 1, "", ""),
                None,
                DialogState::Confirmed,
            ),
            (
                "REFER without Refer-To",
                from_five9(&line("REFER"), 2, "", ""),
                Some(400),
                DialogState::Confirmed,
            ),
            (
                "NOTIFY for presence",
                from_five9(&line("NOTIFY"), 2, "Event: presence\r\n", ""),
                Some(489),
                DialogState::Confirmed,
            ),
        ];
        for (what, request, code, state) in table {
            let mut dialog = uas_dialog();
            let incoming = dialog.on_request(&request).expect(what);
            assert_eq!(status(&incoming), code, "{what}");
            assert_eq!(dialog.state(), state, "{what}");
            if what == "OPTIONS" || what == "SUBSCRIBE" {
                let Incoming::Reply(r) = &incoming else {
                    panic!("{what}")
                };
                assert_eq!(r.header("Allow"), Some(ALLOW), "{what}");
            }
        }
    }

    #[test]
    fn cseq_order_and_ended_dialogs() {
        let mut dialog = uas_dialog();
        let info = |cseq| from_five9("INFO sip:t@192.0.2.10 SIP/2.0", cseq, "", "");
        assert_eq!(
            dialog.on_request(&info(5)).map(|i| status(&i)),
            Ok(Some(200))
        );
        assert_eq!(dialog.remote_seq(), Some(5));
        assert_eq!(
            dialog.on_request(&info(4)).map(|i| status(&i)),
            Ok(Some(500))
        );
        assert_eq!(
            dialog.remote_seq(),
            Some(5),
            "a rejected request changes nothing"
        );
        assert_eq!(
            dialog
                .on_request(&from_five9(BYE_LINE, 7, "", ""))
                .map(|i| status(&i)),
            Ok(Some(200))
        );
        assert_eq!(
            dialog.on_request(&info(8)).map(|i| status(&i)),
            Ok(Some(481))
        );
        let other = message(
            &FIVE9_INVITE.replace("1-2345", "9-9999").replace(
                "To: <sip:18005550100@trunkline.example.com>",
                "To: <sip:a@b>;tag=tl-1",
            ),
            "",
        );
        assert_eq!(uas_dialog().on_request(&other), Err(DialogError::Mismatch));
    }

    #[test]
    fn glare_both_ways() {
        let mut dialog = uac_dialog();
        dialog.reinvite(SDP.as_bytes(), &[]).expect("our re-INVITE");
        let theirs = message(
            "INVITE sip:trunkline@192.0.2.10:5060 SIP/2.0\r\n\
             Via: SIP/2.0/UDP px1.example.net;branch=z9hG4bK-g1\r\n\
             From: <sip:agent@agent.example.com>;tag=agent-1\r\n\
             To: <sip:trunkline@192.0.2.10>;tag=tl-uac\r\n\
             Call-ID: tl-call-1@192.0.2.10\r\n\
             CSeq: 1 INVITE\r\n",
            "",
        );
        let incoming = dialog.on_request(&theirs).expect("ours");
        assert_eq!(status(&incoming), Some(491));
        // The agent answered our re-INVITE with 491 too: we own the Call-ID,
        // so we wait 2.1..=4 s.
        let pending = message(
            &AGENT_200
                .replace("200 OK", "491 Request Pending")
                .replace("10 INVITE", "11 INVITE"),
            "",
        );
        let Ok(ResponseEffect::RetryAfter(delay)) = dialog.handle_response(&pending) else {
            panic!("not a retry")
        };
        assert!((2100..=4000).contains(&delay.as_millis()), "{delay:?}");
        assert!(
            dialog.reinvite(SDP.as_bytes(), &[]).is_ok(),
            "may retry now"
        );
    }
}
