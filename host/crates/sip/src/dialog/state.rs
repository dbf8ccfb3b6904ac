//! [`Dialog`]: the state RFC 3261 §12 keeps per dialog, and its creation
//! on either side (§12.1).

use super::error::DialogError;
use super::id::DialogId;
use crate::message::{Method, NameAddr, ParseError, Scheme, SipMessage, Transport, Uri};

/// Which side of the dialog-creating INVITE we were on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// We sent the INVITE (the agent leg): we own the Call-ID.
    Uac,
    /// We received it (the Five9 leg).
    Uas,
}

/// Where a dialog is in its life (§12.1, §12.3, §15).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DialogState {
    /// Created by a 1xx with a To tag; a 2xx confirms it, a non-2xx final
    /// ends it.
    Early,
    /// Created or confirmed by a 2xx.
    Confirmed,
    /// BYE sent or received, or 481/408 to an in-dialog request; only the
    /// ACK for a 2xx may still be sent.
    Terminated,
}

/// One dialog, from either side. Long-lived: it lasts the whole call.
#[derive(Debug, Clone)]
pub struct Dialog {
    /// Call-ID and tags; the key the owner files it under.
    pub(super) id: DialogId,
    /// Whether we sent the dialog-creating INVITE.
    pub(super) role: Role,
    /// Early, confirmed or terminated.
    pub(super) state: DialogState,
    /// Our URI and tag: From of every request we send.
    pub(super) local: NameAddr,
    /// The peer's URI and tag: To of every request we send.
    pub(super) remote: NameAddr,
    /// The peer's Contact URI: the Request-URI of our requests (behind a
    /// loose-routing route set).
    pub(super) remote_target: String,
    /// Route headers for our requests, first hop first (Record-Route as
    /// received for the UAS, reversed for the UAC).
    pub(super) route_set: Vec<NameAddr>,
    /// The last CSeq number we used; the next request gets one more.
    pub(super) local_seq: u32,
    /// The peer's last CSeq number; lower ones are answered 500 (§12.2.2).
    /// `None` until the peer sends a request (the UAC's case).
    pub(super) remote_seq: Option<u32>,
    /// Whether the dialog must stay on TLS end to end (`sips:`).
    pub(super) secure: bool,
    /// Our Contact value, sent on target refresh requests and their 2xx.
    pub(super) local_contact: String,
    /// Sent-protocol and sent-by of our Via (`SIP/2.0/UDP 192.0.2.10:5060`);
    /// each request adds a new branch.
    pub(super) local_via: String,
    /// CSeq of our INVITE that has no final response yet (glare, §14.1).
    pub(super) pending_local_invite: Option<u32>,
    /// CSeq of the peer's INVITE we have not answered finally yet.
    pub(super) pending_remote_invite: Option<u32>,
}

impl Dialog {
    /// The UAS side (§12.1.1): `invite` is the peer's INVITE, `response` our
    /// 101..=299 to it, with our To tag and Contact. `local_via` is the
    /// sent-protocol and sent-by for our requests in the dialog.
    pub fn uas(
        invite: &SipMessage,
        response: &SipMessage,
        local_via: &str,
    ) -> Result<Dialog, DialogError> {
        let status = check_creating(invite, response)?;
        let local = response.to()?;
        let local_tag = local.tag().ok_or(DialogError::MissingTag("To"))?;
        let remote = invite.from()?;
        // RFC 2543 made Contact optional, and its UAs expect in-dialog
        // requests at their From address (RFC 4475 inv2543): without that,
        // the peer's ACK and BYE would find no dialog.
        let remote_target = match contact_uri(invite)? {
            Some(uri) => uri,
            None => remote.uri.clone(),
        };
        let local_contact = response
            .contact()?
            .ok_or(DialogError::MissingContact("response"))?;
        let uri_secure = invite
            .request_uri()
            .and_then(Uri::parse)
            .is_some_and(|u| u.scheme == Scheme::Sips);
        let seq = invite.cseq()?.seq;
        Ok(Dialog {
            id: DialogId::new(
                invite.call_id()?,
                local_tag,
                remote.tag().unwrap_or_default(),
            ),
            role: Role::Uas,
            state: state_for(status),
            route_set: record_route(invite)?,
            local_seq: 0,
            remote_seq: Some(seq),
            secure: uri_secure && invite.top_via()?.transport == Transport::Tls,
            local_contact: local_contact.to_string(),
            local_via: local_via.to_string(),
            pending_local_invite: None,
            pending_remote_invite: (status < 200).then_some(seq),
            local,
            remote,
            remote_target,
        })
    }

    /// The UAC side (§12.1.2): `invite` is the INVITE we sent, `response` a
    /// 101..=299 to it carrying the peer's To tag. A 1xx without Contact is
    /// tolerated (the 2xx sets the target); a 2xx without one is refused.
    pub fn uac(invite: &SipMessage, response: &SipMessage) -> Result<Dialog, DialogError> {
        let status = check_creating(invite, response)?;
        let local = invite.from()?;
        let local_tag = local.tag().ok_or(DialogError::MissingTag("From"))?;
        let remote = response.to()?;
        let remote_tag = remote.tag().ok_or(DialogError::MissingTag("To"))?;
        let remote_target = match (contact_uri(response)?, status) {
            (Some(uri), _) => uri,
            (None, 200..) => return Err(DialogError::MissingContact("response")),
            (None, _) => invite.request_uri().unwrap_or_default().to_string(),
        };
        let local_contact = invite
            .contact()?
            .ok_or(DialogError::MissingContact("INVITE"))?;
        let via = invite.top_via()?;
        let mut local_via = format!("{}/{} {}", via.protocol, via.transport, via.host);
        if let Some(port) = via.port {
            local_via.push_str(&format!(":{port}"));
        }
        let mut route_set = record_route(response)?;
        route_set.reverse();
        let seq = invite.cseq()?.seq;
        Ok(Dialog {
            id: DialogId::new(invite.call_id()?, local_tag, remote_tag),
            role: Role::Uac,
            state: state_for(status),
            route_set,
            local_seq: seq,
            remote_seq: None,
            secure: invite
                .request_uri()
                .and_then(Uri::parse)
                .is_some_and(|u| u.scheme == Scheme::Sips),
            local_contact: local_contact.to_string(),
            local_via,
            pending_local_invite: (status < 200).then_some(seq),
            pending_remote_invite: None,
            local,
            remote,
            remote_target,
        })
    }

    /// Ends the dialog: a BYE was exchanged, the early dialog's INVITE failed,
    /// or the owner gave up on it.
    pub fn terminate(&mut self) {
        self.state = DialogState::Terminated;
        self.pending_local_invite = None;
        self.pending_remote_invite = None;
    }

    /// The dialog id.
    pub fn id(&self) -> &DialogId {
        &self.id
    }

    /// Whether we sent the dialog-creating INVITE.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Early, confirmed or terminated.
    pub fn state(&self) -> DialogState {
        self.state
    }

    /// Our From value (URI, tag).
    pub fn local(&self) -> &NameAddr {
        &self.local
    }

    /// The peer's To value (URI, tag).
    pub fn remote(&self) -> &NameAddr {
        &self.remote
    }

    /// The peer's Contact URI.
    pub fn remote_target(&self) -> &str {
        &self.remote_target
    }

    /// The route set, first hop first.
    pub fn route_set(&self) -> &[NameAddr] {
        &self.route_set
    }

    /// The last CSeq number we used.
    pub fn local_seq(&self) -> u32 {
        self.local_seq
    }

    /// The peer's last CSeq number, if it sent any request.
    pub fn remote_seq(&self) -> Option<u32> {
        self.remote_seq
    }

    /// Whether the dialog is `sips:` (TLS on every hop).
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// Our Contact value.
    pub fn local_contact(&self) -> &str {
        &self.local_contact
    }

    /// Changes the Via sent-by of later requests (the leg moved transport).
    pub fn set_local_via(&mut self, via: &str) {
        self.local_via = via.to_string();
    }
}

/// Methods whose 2xx replaces the remote target and whose requests carry
/// our Contact (RFC 3261 §12.2, RFC 3311, RFC 6665).
pub(super) fn is_target_refresh(method: &Method) -> bool {
    matches!(
        method,
        Method::Invite | Method::Update | Method::Subscribe | Method::Notify
    )
}

/// Checks that `response` is a dialog-creating response to `invite`.
fn check_creating(invite: &SipMessage, response: &SipMessage) -> Result<u16, DialogError> {
    if invite.method() != Some(&Method::Invite) {
        return Err(DialogError::NotInvite);
    }
    let status = response.status_code().ok_or(DialogError::Mismatch)?;
    let same = invite.call_id()? == response.call_id()?
        && invite.cseq()? == response.cseq()?
        && invite.from()?.tag() == response.from()?.tag();
    if !same {
        return Err(DialogError::Mismatch);
    }
    if !(101..=299).contains(&status) {
        return Err(DialogError::NotDialogCreating(status));
    }
    Ok(status)
}

fn state_for(status: u16) -> DialogState {
    if status < 200 {
        DialogState::Early
    } else {
        DialogState::Confirmed
    }
}

/// The first Contact's URI, refused when it is not a URI we can send to.
pub(super) fn contact_uri(msg: &SipMessage) -> Result<Option<String>, DialogError> {
    match msg.contact()? {
        Some(contact) if contact.parsed_uri().is_none() => {
            Err(ParseError::InvalidHeader("Contact").into())
        }
        contact => Ok(contact.map(|c| c.uri)),
    }
}

/// Every Record-Route value, top first, across lines and comma lists.
pub(super) fn record_route(msg: &SipMessage) -> Result<Vec<NameAddr>, DialogError> {
    let mut routes = Vec::new();
    for value in msg.header_values("Record-Route") {
        routes
            .extend(NameAddr::parse_list(value).ok_or(ParseError::InvalidHeader("Record-Route"))?);
    }
    Ok(routes)
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn uas_dialog_from_five9_invite() {
        let dialog = uas_dialog();
        assert_eq!(
            dialog.id(),
            &DialogId::new("1-2345@198.51.100.20", "tl-1", "f9-1")
        );
        assert_eq!(dialog.role(), Role::Uas);
        assert_eq!(dialog.state(), DialogState::Confirmed);
        assert_eq!(dialog.remote_target(), "sip:5550199@198.51.100.20:5060");
        assert_eq!(dialog.remote().tag(), Some("f9-1"));
        assert_eq!(dialog.local().tag(), Some("tl-1"));
        assert_eq!(dialog.local().uri, "sip:18005550100@trunkline.example.com");
        assert_eq!((dialog.remote_seq(), dialog.local_seq()), (Some(1), 0));
        assert_eq!(dialog.local_contact(), LOCAL_CONTACT);
        assert!(!dialog.is_secure());
    }

    #[test]
    fn uas_dialog_with_an_rfc_2543_peer() {
        // RFC 4475 inv2543: no From tag, no Contact.
        let invite = message(
            &FIVE9_INVITE
                .replace(";tag=f9-1", "")
                .replace("Contact: <sip:5550199@198.51.100.20:5060>\r\n", ""),
            SDP,
        );
        let ok = five9_ok(&invite);
        let dialog = Dialog::uas(&invite, &ok, LOCAL_VIA).expect("dialog");
        assert_eq!(
            dialog.id(),
            &DialogId::new("1-2345@198.51.100.20", "tl-1", "")
        );
        assert_eq!(dialog.remote_target(), "sip:5550199@five9.example.com");
        // Its ACK and BYE (no From tag either) name the dialog.
        let bye = message(
            "BYE sip:trunkline@192.0.2.10:5060 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 198.51.100.20:5060\r\n\
             From: \"John Smith\" <sip:5550199@five9.example.com>\r\n\
             To: <sip:18005550100@trunkline.example.com>;tag=tl-1\r\n\
             Call-ID: 1-2345@198.51.100.20\r\n\
             CSeq: 2 BYE\r\n",
            "",
        );
        assert_eq!(DialogId::of_received(&bye).as_ref(), Some(dialog.id()));
    }

    #[test]
    fn route_set_order_per_role() {
        let uas: Vec<String> = uas_dialog()
            .route_set()
            .iter()
            .map(|r| r.uri.clone())
            .collect();
        assert_eq!(
            uas,
            [
                "sip:203.0.113.2;lr",
                "sip:203.0.113.1;lr",
                "sip:edge.five9.example.com;lr;transport=udp"
            ],
            "UAS: Record-Route as received, nearest proxy first"
        );
        let uac: Vec<String> = uac_dialog()
            .route_set()
            .iter()
            .map(|r| r.uri.clone())
            .collect();
        assert_eq!(
            uac,
            ["sip:px1.example.net;lr", "sip:px2.example.net;lr"],
            "UAC: reversed, so our first hop comes first"
        );
    }

    #[test]
    fn creation_refusals() {
        let invite = message(AGENT_INVITE, SDP);
        let table: Vec<(&str, SipMessage, DialogError)> = vec![
            (
                "100 Trying",
                message(&AGENT_180.replace("180 Ringing", "100 Trying"), ""),
                DialogError::NotDialogCreating(100),
            ),
            (
                "486",
                message(&AGENT_200.replace("200 OK", "486 Busy Here"), ""),
                DialogError::NotDialogCreating(486),
            ),
            (
                "no To tag",
                message(&AGENT_180.replace(";tag=agent-1", ""), ""),
                DialogError::MissingTag("To"),
            ),
            (
                "2xx without Contact",
                message(
                    &AGENT_200.replace("Contact: <sip:agent@10.1.1.5:5080;transport=udp>\r\n", ""),
                    "",
                ),
                DialogError::MissingContact("response"),
            ),
            (
                "another call",
                message(&AGENT_200.replace("tl-call-1", "other"), ""),
                DialogError::Mismatch,
            ),
            (
                "another CSeq",
                message(&AGENT_200.replace("10 INVITE", "11 INVITE"), ""),
                DialogError::Mismatch,
            ),
        ];
        for (what, response, error) in table {
            assert_eq!(Dialog::uac(&invite, &response).err(), Some(error), "{what}");
        }
        // A 1xx without Contact still makes an early dialog.
        let bare = message(
            &AGENT_180.replace("Contact: <sip:agent@10.1.1.5:5070>\r\n", ""),
            "",
        );
        let early = Dialog::uac(&invite, &bare).expect("early dialog");
        assert_eq!(early.remote_target(), "sip:agent@agent.example.com");
    }
}
