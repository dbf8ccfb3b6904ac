//! Requests we send in a dialog (§12.2.1.1): BYE (§15), re-INVITE (§14),
//! INFO, UPDATE and the rest, and the ACK for a 2xx (§13.2.2.4).
//!
//! Extra headers (the X- headers the policy wants Five9 to see on the BYE)
//! are appended in the order given, after the dialog's own headers. Names
//! the dialog writes itself are refused rather than sent twice: a second To
//! or CSeq would make Five9 drop the BYE and leave the call up.

use super::error::DialogError;
use super::state::{Dialog, DialogState, is_target_refresh};
use crate::message::{Method, SipMessage, new_branch};
use crate::rfc;

/// Headers only the dialog writes.
const RESERVED: &[&str] = &[
    "Via",
    "Max-Forwards",
    "Route",
    "Record-Route",
    "From",
    "To",
    "Call-ID",
    "CSeq",
    "Contact",
    "Content-Type",
    "Content-Length",
];

/// A body and its Content-Type.
pub type Body<'a> = (&'a str, &'a [u8]);

impl Dialog {
    /// A new request in the dialog with the next CSeq: BYE, INFO, OPTIONS,
    /// UPDATE, NOTIFY... (re-INVITE has [`Dialog::reinvite`], which also
    /// tracks glare). ACK and CANCEL are refused: they reuse the INVITE's
    /// CSeq.
    pub fn request(
        &mut self,
        method: Method,
        body: Option<Body<'_>>,
        extra: &[(&str, &str)],
    ) -> Result<SipMessage, DialogError> {
        if matches!(method, Method::Ack | Method::Cancel) {
            return Err(DialogError::WrongMethod(method));
        }
        if self.state == DialogState::Terminated {
            return Err(DialogError::Terminated);
        }
        // Numbers stay below 2^31 (§8.1.1.5); 2^31 requests in one call
        // cannot happen, so saturating only guards against a panic.
        let seq = self.local_seq.saturating_add(1).min((1 << 31) - 1);
        let msg = self.build(method, seq, body, extra)?;
        self.local_seq = seq;
        Ok(msg)
    }

    /// BYE (§15.1.1), with the X- headers Five9 turns into call variables.
    /// The dialog is terminated once it is built: the session is over as
    /// soon as the BYE is handed to its transaction.
    pub fn bye(&mut self, extra: &[(&str, &str)]) -> Result<SipMessage, DialogError> {
        let bye = self.request(Method::Bye, None, extra)?;
        self.terminate();
        Ok(bye)
    }

    /// A re-INVITE carrying `sdp` (hold, resume, session refresh). Refused
    /// while an INVITE is pending in either direction (§14.1) or before the
    /// dialog is confirmed.
    pub fn reinvite(
        &mut self,
        sdp: &[u8],
        extra: &[(&str, &str)],
    ) -> Result<SipMessage, DialogError> {
        match self.state {
            DialogState::Terminated => return Err(DialogError::Terminated),
            DialogState::Early => return Err(DialogError::NotConfirmed),
            DialogState::Confirmed => {}
        }
        if self.pending_local_invite.is_some() || self.pending_remote_invite.is_some() {
            return Err(DialogError::InvitePending);
        }
        let invite = self.request(Method::Invite, Some(("application/sdp", sdp)), extra)?;
        self.pending_local_invite = Some(self.local_seq);
        Ok(invite)
    }

    /// The ACK for a 2xx to one of our INVITEs (§13.2.2.4): a new
    /// transaction (new branch) with the INVITE's CSeq number, routed like
    /// any in-dialog request. Sent for every retransmission of the 2xx, and
    /// even after BYE; `body` is the SDP answer when the 2xx held the offer.
    pub fn ack(&self, ok: &SipMessage, body: Option<Body<'_>>) -> Result<SipMessage, DialogError> {
        let cseq = ok.cseq()?;
        let is_2xx = ok.status_code().is_some_and(|s| (200..300).contains(&s));
        if !is_2xx || cseq.method != Method::Invite {
            return Err(DialogError::NotInvite);
        }
        if super::DialogId::of_received(ok).as_ref() != Some(&self.id) {
            return Err(DialogError::Mismatch);
        }
        self.build(Method::Ack, cseq.seq, body, &[])
    }

    /// Builds a request with the given CSeq number (§12.2.1.1).
    fn build(
        &self,
        method: Method,
        seq: u32,
        body: Option<Body<'_>>,
        extra: &[(&str, &str)],
    ) -> Result<SipMessage, DialogError> {
        check_extra(extra)?;
        let (uri, routes) = self.target_and_routes();
        let mut msg = SipMessage::request(method.clone(), &uri)?;
        let via = format!("{};branch={};rport", self.local_via, new_branch());
        msg.push_header("Via", &via)?;
        msg.push_header("Max-Forwards", &rfc::DEFAULT_MAX_FORWARDS.to_string())?;
        for route in &routes {
            msg.push_header("Route", route)?;
        }
        msg.push_header("From", &self.local.to_string())?;
        msg.push_header("To", &self.remote.to_string())?;
        msg.push_header("Call-ID", self.id.call_id())?;
        msg.push_header("CSeq", &format!("{seq} {method}"))?;
        if is_target_refresh(&method) || method == Method::Refer {
            msg.push_header("Contact", &self.local_contact)?;
        }
        for (name, value) in extra {
            msg.push_header(name, value)?;
        }
        if let Some((content_type, bytes)) = body {
            msg = msg.with_body(content_type, bytes.to_vec())?;
        }
        Ok(msg)
    }

    /// The Request-URI and Route values (§12.2.1.1). A loose router first in
    /// the route set (`;lr`) leaves the remote target in the Request-URI; a
    /// strict (RFC 2543) router takes the Request-URI itself and the remote
    /// target travels as the last Route.
    fn target_and_routes(&self) -> (String, Vec<String>) {
        let all = || self.route_set.iter().map(ToString::to_string);
        match self.route_set.first() {
            Some(first) if first.parsed_uri().is_some_and(|u| u.param("lr").is_none()) => {
                let mut routes: Vec<String> = all().skip(1).collect();
                routes.push(format!("<{}>", self.remote_target));
                (first.uri.clone(), routes)
            }
            _ => (self.remote_target.clone(), all().collect()),
        }
    }
}

/// Refuses extra headers the dialog writes itself.
fn check_extra(extra: &[(&str, &str)]) -> Result<(), DialogError> {
    for (name, _) in extra {
        let long = rfc::expand_compact(name).unwrap_or(name);
        if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(long)) {
            return Err(DialogError::ReservedHeader(name.to_string()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn bye_toward_five9_carries_x_headers_in_order() {
        let mut dialog = uas_dialog();
        let extra = [
            ("X-RouteReason", "contained"),
            ("X-RouteType", "queue"),
            ("X-RouteValue", "billing"),
            ("X-MetaData", "{\"intent\":\"refund\",\"score\":0.93}"),
        ];
        let bye = dialog.bye(&extra).expect("builds");
        let printed = lines(&bye);
        assert_eq!(printed[0], "BYE sip:5550199@198.51.100.20:5060 SIP/2.0");
        assert!(printed[1].starts_with("Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK"));
        assert!(printed[1].ends_with(";rport"));
        assert_eq!(
            printed[2..14],
            [
                "Max-Forwards: 70",
                "Route: <sip:203.0.113.2;lr>",
                "Route: <sip:203.0.113.1;lr>",
                "Route: <sip:edge.five9.example.com;lr;transport=udp>",
                "From: <sip:18005550100@trunkline.example.com>;tag=tl-1",
                "To: \"John Smith\" <sip:5550199@five9.example.com>;tag=f9-1",
                "Call-ID: 1-2345@198.51.100.20",
                "CSeq: 1 BYE",
                "X-RouteReason: contained",
                "X-RouteType: queue",
                "X-RouteValue: billing",
                "X-MetaData: {\"intent\":\"refund\",\"score\":0.93}",
            ]
        );
        assert_eq!(bye.header("Contact"), None, "BYE is not a target refresh");
        assert_eq!(dialog.state(), DialogState::Terminated);
        assert_eq!(dialog.bye(&[]).err(), Some(DialogError::Terminated));
        let reparsed = SipMessage::parse(&bye.to_bytes()).expect("valid on the wire");
        assert_eq!(reparsed.to_bytes(), bye.to_bytes());
    }

    #[test]
    fn cseq_increments_per_request() {
        let mut uas = uas_dialog();
        let mut uac = uac_dialog();
        let mut seqs = Vec::new();
        for method in [Method::Options, Method::Info, Method::Update] {
            let a = uas.request(method.clone(), None, &[]).expect("builds");
            let b = uac.request(method.clone(), None, &[]).expect("builds");
            seqs.push((a.cseq().map(|c| c.seq), b.cseq().map(|c| c.seq)));
            assert_eq!(a.cseq().map(|c| c.method), Ok(method));
        }
        // The UAS starts its own numbering; the UAC continues from its INVITE.
        assert_eq!(seqs, [(Ok(1), Ok(11)), (Ok(2), Ok(12)), (Ok(3), Ok(13))]);
        let branches: Vec<String> = (0..2)
            .filter_map(|_| uac.request(Method::Info, None, &[]).ok())
            .filter_map(|m| m.top_via().ok()?.branch().map(String::from))
            .collect();
        assert_ne!(
            branches[0], branches[1],
            "each request is a new transaction"
        );
    }

    #[test]
    fn reserved_and_unsafe_extras_are_refused_without_using_a_cseq() {
        let mut dialog = uas_dialog();
        let table: &[(&[(&str, &str)], DialogError)] = &[
            (
                &[("To", "<sip:x@y>")],
                DialogError::ReservedHeader("To".into()),
            ),
            (
                &[("X-A", "1"), ("cseq", "9 BYE")],
                DialogError::ReservedHeader("cseq".into()),
            ),
            (&[("i", "other")], DialogError::ReservedHeader("i".into())),
            (
                &[("Route", "<sip:evil>")],
                DialogError::ReservedHeader("Route".into()),
            ),
            (
                &[("X-Inject", "a\r\nBYE sip:x SIP/2.0")],
                DialogError::Build(crate::message::BuildError::UnsafeText("X-Inject".into())),
            ),
        ];
        for (extra, error) in table {
            assert_eq!(dialog.bye(extra).err().as_ref(), Some(error), "{extra:?}");
        }
        assert_eq!(dialog.state(), DialogState::Confirmed);
        let bye = dialog.bye(&[("X-contained", "true")]).expect("builds");
        assert_eq!(bye.cseq().map(|c| c.seq), Ok(1));
    }

    #[test]
    fn reinvite_carries_contact_sdp_and_blocks_a_second_one() {
        let mut dialog = uac_dialog();
        let invite = dialog
            .reinvite(SDP.as_bytes(), &[("Session-Expires", "1800;refresher=uac")])
            .expect("builds");
        assert_eq!(
            invite.request_uri(),
            Some("sip:agent@10.1.1.5:5080;transport=udp")
        );
        assert_eq!(invite.header("Contact"), Some(LOCAL_CONTACT));
        assert_eq!(invite.content_type(), Some("application/sdp"));
        assert_eq!(invite.body(), SDP.as_bytes());
        assert_eq!(invite.cseq().map(|c| c.seq), Ok(11));
        let routes: Vec<&str> = invite.header_values("Route").collect();
        assert_eq!(
            routes,
            ["<sip:px1.example.net;lr>", "<sip:px2.example.net;lr>"]
        );
        assert_eq!(
            dialog.reinvite(SDP.as_bytes(), &[]).err(),
            Some(DialogError::InvitePending)
        );
    }

    #[test]
    fn ack_for_2xx_is_end_to_end() {
        let mut dialog = uac_dialog();
        dialog
            .reinvite(SDP.as_bytes(), &[])
            .expect("re-INVITE, CSeq 11");
        let reinvite_ok = message(&AGENT_200.replace("10 INVITE", "11 INVITE"), SDP);
        assert_eq!(
            dialog.handle_response(&reinvite_ok),
            Ok(super::super::ResponseEffect::SendAck)
        );
        dialog
            .request(Method::Info, None, &[])
            .expect("INFO, CSeq 12");
        // (2xx being acknowledged, CSeq of its ACK)
        let table = [(message(AGENT_200, SDP), "10 ACK"), (reinvite_ok, "11 ACK")];
        for (ok, cseq) in table {
            let ack = dialog.ack(&ok, None).expect("builds");
            let via = ack.top_via().expect("Via");
            assert_ne!(via.branch(), Some("z9hG4bK-tl-1"), "a new transaction");
            assert_eq!(ack.method(), Some(&Method::Ack));
            assert_eq!(
                ack.request_uri(),
                Some("sip:agent@10.1.1.5:5080;transport=udp")
            );
            assert_eq!(ack.header("CSeq"), Some(cseq), "the INVITE's number");
            assert_eq!(
                ack.header("To"),
                Some("<sip:agent@agent.example.com>;tag=agent-1")
            );
            let routes: Vec<&str> = ack.header_values("Route").collect();
            assert_eq!(
                routes,
                ["<sip:px1.example.net;lr>", "<sip:px2.example.net;lr>"]
            );
            assert_eq!(ack.header("Contact"), None);
        }
        assert_eq!(dialog.local_seq(), 12, "an ACK uses no CSeq of its own");
        let progress = message(
            &AGENT_180.replace("180 Ringing", "183 Session Progress"),
            "",
        );
        assert_eq!(
            dialog.ack(&progress, None).err(),
            Some(DialogError::NotInvite)
        );
    }

    #[test]
    fn strict_router_gets_the_request_uri() {
        let invite = five9_invite();
        let strict = FIVE9_INVITE.replace("<sip:203.0.113.2;lr>", "<sip:203.0.113.2>");
        let strict = message(&strict, SDP);
        let mut dialog = Dialog::uas(&strict, &five9_ok(&invite), LOCAL_VIA).expect("dialog");
        let info = dialog
            .request(
                Method::Info,
                Some(("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n")),
                &[],
            )
            .expect("builds");
        assert_eq!(info.request_uri(), Some("sip:203.0.113.2"));
        let routes: Vec<&str> = info.header_values("Route").collect();
        assert_eq!(
            routes,
            [
                "<sip:203.0.113.1;lr>",
                "<sip:edge.five9.example.com;lr;transport=udp>",
                "<sip:5550199@198.51.100.20:5060>"
            ]
        );
        assert_eq!(info.content_type(), Some("application/dtmf-relay"));
        assert_eq!(
            dialog.request(Method::Ack, None, &[]).err(),
            Some(DialogError::WrongMethod(Method::Ack))
        );
    }
}
