//! Our answers: to requests the peer sent in a dialog (re-INVITE, UPDATE,
//! REFER, and the INVITE that created it), and those owed to requests
//! outside any dialog (OPTIONS pings, 481 for a dialog we do not know).

use super::error::DialogError;
use super::request::Body;
use super::state::{Dialog, DialogState, contact_uri, is_target_refresh};
use crate::message::{Method, SipMessage, new_tag};

/// The methods we accept, for Allow on 200 to OPTIONS and on 405.
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, REFER, NOTIFY, UPDATE";
/// The bodies we accept (G.711 SDP toward Five9).
pub const ACCEPT: &str = "application/sdp";
/// The extensions we support: session timers (RFC 4028).
pub const SUPPORTED: &str = "timer";

impl Dialog {
    /// Our response to a request the peer sent in this dialog (or to the
    /// INVITE that created it): re-INVITE, UPDATE, REFER. Adds our To tag
    /// and, on 1xx/2xx to a target refresh request, our Contact. A final
    /// response to an INVITE ends its pending state; a 2xx takes the
    /// request's Contact as the new remote target (RFC 6141 §3.4), confirms
    /// an early dialog, and a failure ends an early one.
    pub fn answer(
        &mut self,
        request: &SipMessage,
        code: u16,
        body: Option<Body<'_>>,
    ) -> Result<SipMessage, DialogError> {
        let method = request.method().ok_or(DialogError::Mismatch)?.clone();
        let to_tag = request.to()?.tag().map(str::to_ascii_lowercase);
        let ours = request.call_id()? == self.id.call_id()
            && request
                .from()?
                .tag()
                .unwrap_or_default()
                .to_ascii_lowercase()
                == self.id.remote_tag()
            && to_tag.as_deref().is_none_or(|t| t == self.id.local_tag());
        if !ours {
            return Err(DialogError::Mismatch);
        }
        let local_tag = self.local.tag().map(str::to_string);
        let mut response = request.reply(code, None, local_tag.as_deref())?;
        let success = (200..300).contains(&code);
        if is_target_refresh(&method) && (101..300).contains(&code) {
            response.push_header("Contact", &self.local_contact)?;
        }
        if let Some((content_type, bytes)) = body {
            response = response.with_body(content_type, bytes.to_vec())?;
        }
        if success
            && is_target_refresh(&method)
            && let Some(uri) = contact_uri(request)?
        {
            self.remote_target = uri;
        }
        if method == Method::Invite && code >= 200 {
            if self.pending_remote_invite == Some(request.cseq()?.seq) {
                self.pending_remote_invite = None;
            }
            match (self.state, success) {
                (DialogState::Early, true) => self.state = DialogState::Confirmed,
                (DialogState::Early, false) => self.terminate(),
                _ => {}
            }
        }
        Ok(response)
    }
}

/// The answer to an in-dialog request that matches no dialog: 481 (§12.2.2).
/// `None` for an ACK, which is never answered.
pub fn reject_unknown_dialog(request: &SipMessage) -> Result<Option<SipMessage>, DialogError> {
    if request.method() == Some(&Method::Ack) {
        return Ok(None);
    }
    reply(request, 481, None).map(Some)
}

/// 200 to OPTIONS, in or out of a dialog (Five9 pings trunks with it): what
/// we allow, accept and support (§11.2). Outside a dialog a fresh To tag is
/// added.
pub fn answer_options(request: &SipMessage) -> Result<SipMessage, DialogError> {
    Ok(request
        .reply(200, None, Some(&new_tag()))?
        .with_header("Allow", ALLOW)?
        .with_header("Accept", ACCEPT)?
        .with_header("Supported", SUPPORTED)?)
}

/// A response that needs no To tag of ours (in-dialog: the request has it).
pub(super) fn reply(
    request: &SipMessage,
    code: u16,
    reason: Option<&str>,
) -> Result<SipMessage, DialogError> {
    Ok(request.reply(code, reason, None)?)
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::{DialogError, Incoming};
    use super::*;

    #[test]
    fn unknown_dialog_gets_481_but_ack_nothing() {
        let bye = from_five9(BYE_LINE, 2, "", "");
        let rejected = reject_unknown_dialog(&bye)
            .expect("builds")
            .expect("answered");
        assert_eq!(rejected.status_code(), Some(481));
        assert_eq!(rejected.header("To"), bye.header("To"));
        let ack = from_five9("ACK sip:t@192.0.2.10 SIP/2.0", 1, "", "");
        assert_eq!(reject_unknown_dialog(&ack), Ok(None));
    }

    #[test]
    fn options_ping_outside_a_dialog() {
        let ping = message(
            "OPTIONS sip:192.0.2.10:5060 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 198.51.100.20:5060;branch=z9hG4bK-ping-1\r\n\
             From: <sip:ping@five9.example.com>;tag=p1\r\n\
             To: <sip:192.0.2.10:5060>\r\n\
             Call-ID: ping-1\r\n\
             CSeq: 1 OPTIONS\r\n",
            "",
        );
        let ok = answer_options(&ping).expect("builds");
        assert_eq!(ok.status_code(), Some(200));
        assert!(
            ok.to()
                .ok()
                .and_then(|t| t.tag().map(String::from))
                .is_some()
        );
        for (name, value) in [
            ("Allow", ALLOW),
            ("Accept", ACCEPT),
            ("Supported", SUPPORTED),
        ] {
            assert_eq!(ok.header(name), Some(value), "{name}");
        }
    }

    #[test]
    fn reinvite_answer_refreshes_the_target() {
        let mut dialog = uas_dialog();
        let hold = from_five9(
            "INVITE sip:trunkline@192.0.2.10:5060 SIP/2.0",
            2,
            "Contact: <sip:5550199@198.51.100.99:5062>\r\nContent-Type: application/sdp\r\n",
            &SDP.replace("a=rtpmap", "a=sendonly\r\na=rtpmap"),
        );
        assert_eq!(dialog.on_request(&hold), Ok(Incoming::Reinvite));
        // A second INVITE before we answered the first: 500 + Retry-After.
        let again = dialog.on_request(&from_five9("INVITE sip:t@192.0.2.10 SIP/2.0", 3, "", ""));
        let Ok(Incoming::Reply(busy)) = again else {
            panic!("{again:?}")
        };
        assert_eq!(busy.status_code(), Some(500));
        let retry: u64 = busy
            .header("Retry-After")
            .and_then(|v| v.parse().ok())
            .expect("Retry-After");
        assert!(retry <= 10);
        assert_eq!(
            dialog.reinvite(b"v=0\r\n", &[]).err(),
            Some(DialogError::InvitePending)
        );

        let ok = dialog
            .answer(&hold, 200, Some(("application/sdp", SDP.as_bytes())))
            .expect("builds");
        assert_eq!(ok.header("Contact"), Some(LOCAL_CONTACT));
        assert_eq!(ok.header("To"), hold.header("To"));
        assert_eq!(dialog.remote_target(), "sip:5550199@198.51.100.99:5062");
        assert!(
            dialog.reinvite(b"v=0\r\n", &[]).is_ok(),
            "no INVITE pending any more"
        );
    }

    #[test]
    fn early_uas_dialog_confirmed_or_ended_by_the_answer() {
        let invite = five9_invite();
        let ringing = invite
            .reply(180, None, Some("tl-1"))
            .and_then(|r| r.with_header("Contact", LOCAL_CONTACT))
            .expect("builds");
        for (code, state) in [
            (200, DialogState::Confirmed),
            (486, DialogState::Terminated),
        ] {
            let mut dialog = Dialog::uas(&invite, &ringing, LOCAL_VIA).expect("early");
            assert_eq!(dialog.state(), DialogState::Early);
            let final_response = dialog.answer(&invite, code, None).expect("builds");
            assert_eq!(
                final_response
                    .to()
                    .ok()
                    .and_then(|t| t.tag().map(String::from))
                    .as_deref(),
                Some("tl-1")
            );
            assert_eq!(
                final_response.header("Contact").is_some(),
                code == 200,
                "{code}"
            );
            assert_eq!(dialog.state(), state, "{code}");
        }
    }
}
