//! Requests built from our INVITE itself rather than from a dialog: CANCEL
//! (§9.1) and the ACK for a non-2xx final response (§17.1.1.3). Both must
//! land in the INVITE's transaction at the next hop, so they copy its top
//! Via (same branch), Request-URI, Call-ID, From, CSeq number and Route.

use super::error::DialogError;
use crate::message::{Method, SipMessage};
use crate::rfc;

/// CANCEL for an INVITE we sent (§9.1): same Request-URI, Call-ID, From,
/// To and CSeq number, the INVITE's top Via only (so the branch matches its
/// transaction), and its Route headers.
pub fn cancel(invite: &SipMessage) -> Result<SipMessage, DialogError> {
    copy_of_invite(invite, Method::Cancel, None)
}

/// The ACK for a non-2xx final response to our INVITE (§17.1.1.3): like a
/// CANCEL, but with the response's To (it carries the tag). This is what an
/// INVITE client transaction's `AckBuilder` should return.
pub fn ack_for_failure(
    invite: &SipMessage,
    response: &SipMessage,
) -> Result<SipMessage, DialogError> {
    copy_of_invite(invite, Method::Ack, Some(response))
}

fn copy_of_invite(
    invite: &SipMessage,
    method: Method,
    response: Option<&SipMessage>,
) -> Result<SipMessage, DialogError> {
    let (Some(&Method::Invite), Some(uri)) = (invite.method(), invite.request_uri()) else {
        return Err(DialogError::NotInvite);
    };
    let mut msg = SipMessage::request(method.clone(), uri)?;
    msg.push_header("Via", &invite.top_via()?.to_string())?;
    msg.push_header("Max-Forwards", &rfc::DEFAULT_MAX_FORWARDS.to_string())?;
    for route in invite.header_values("Route") {
        msg.push_header("Route", route)?;
    }
    let to = response.unwrap_or(invite).to()?;
    msg.push_header("From", &invite.from()?.to_string())?;
    msg.push_header("To", &to.to_string())?;
    msg.push_header("Call-ID", invite.call_id()?)?;
    msg.push_header("CSeq", &format!("{} {method}", invite.cseq()?.seq))?;
    Ok(msg)
}
#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn cancel_and_failure_ack_copy_the_invite() {
        let invite = message(
            &AGENT_INVITE.replace(
                "Max-Forwards: 70\r\n",
                "Route: <sip:px1.example.net;lr>\r\n",
            ),
            SDP,
        );
        let busy = message(&AGENT_180.replace("180 Ringing", "486 Busy Here"), "");
        let cancelled = cancel(&invite).expect("builds");
        let ack = ack_for_failure(&invite, &busy).expect("builds");
        // (what, message, CSeq, To)
        let table = [
            (
                "CANCEL",
                &cancelled,
                "10 CANCEL",
                "<sip:agent@agent.example.com>",
            ),
            (
                "ACK",
                &ack,
                "10 ACK",
                "<sip:agent@agent.example.com>;tag=agent-1",
            ),
        ];
        for (what, msg, cseq, to) in table {
            assert_eq!(msg.request_uri(), invite.request_uri(), "{what}");
            assert_eq!(
                msg.header_values("Via").collect::<Vec<_>>(),
                ["SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-tl-1;rport"],
                "{what}: same branch, one Via"
            );
            assert_eq!(msg.call_id(), invite.call_id(), "{what}");
            assert_eq!(msg.header("From"), invite.header("From"), "{what}");
            assert_eq!(msg.header("To"), Some(to), "{what}");
            assert_eq!(msg.header("CSeq"), Some(cseq), "{what}");
            assert_eq!(
                msg.header("Route"),
                Some("<sip:px1.example.net;lr>"),
                "{what}"
            );
            assert!(msg.body().is_empty(), "{what}");
        }
        assert_eq!(cancel(&busy).err(), Some(DialogError::NotInvite));
    }

    #[test]
    fn only_invites_can_be_copied() {
        let bye = from_five9("BYE sip:trunkline@192.0.2.10:5060 SIP/2.0", 2, "", "");
        let ok = message(AGENT_200, "");
        assert_eq!(cancel(&bye).err(), Some(DialogError::NotInvite));
        assert_eq!(cancel(&ok).err(), Some(DialogError::NotInvite));
        assert_eq!(
            ack_for_failure(&bye, &ok).err(),
            Some(DialogError::NotInvite)
        );
    }
}
