//! The requests a leg sends: the initial INVITE of a leg we place (RFC
//! 3261 §8.1.1, §13.2.1), a request again with credentials (§22.2: new
//! branch, CSeq + 1, same Call-ID, From tag and body), a BYE in a dialog,
//! and a request's client transaction key.

use crate::auth::{AuthFailure, ChallengeStatus, DigestClient, RequestLine};
use crate::dialog::{self, Dialog, DialogError};
use crate::message::{Method, SipMessage, new_branch, new_tag};
use crate::rfc;
use crate::transaction::TransactionKey;

/// The From user when the one asked for is not a plain token: a URI user
/// made of something else would need escaping, and a caller id is never
/// worth a malformed From.
pub const FALLBACK_USER: &str = "trunkline";

/// Everything a new INVITE is made of. `build` adds what every initial
/// INVITE has: a fresh branch and From tag, `Max-Forwards`, `CSeq: 1`,
/// `Allow`, `Supported`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InviteRequest {
    /// The Request-URI (`sip:+15551234567@sbc.example.com;user=phone`).
    pub request_uri: String,
    /// The To URI; usually the Request-URI.
    pub to: String,
    /// The From user (caller id); see [`FALLBACK_USER`].
    pub from_user: String,
    /// The From display name, if any (quotes and control characters are
    /// dropped).
    pub from_display: Option<String>,
    /// The From host: our advertised address or domain.
    pub from_host: String,
    /// The Call-ID.
    pub call_id: String,
    /// Our Via without its parameters: `SIP/2.0/UDP 192.0.2.1:5060`.
    pub via: String,
    /// Our Contact value: `<sip:trunkline@192.0.2.1:5060>`.
    pub contact: String,
    /// A pre-loaded route set (an outbound proxy), each `<sip:..;lr>`.
    pub routes: Vec<String>,
    /// More headers, in order (P-Asserted-Identity, the policy's X-
    /// headers).
    pub headers: Vec<(String, String)>,
    /// The SDP offer, if any.
    pub sdp: Option<Vec<u8>>,
}

impl InviteRequest {
    /// The INVITE, with a new branch and From tag.
    pub fn build(&self) -> Result<SipMessage, DialogError> {
        let mut msg = SipMessage::request(Method::Invite, &self.request_uri)?;
        msg.push_header(
            "Via",
            &format!("{};branch={};rport", self.via, new_branch()),
        )?;
        msg.push_header("Max-Forwards", &rfc::DEFAULT_MAX_FORWARDS.to_string())?;
        for route in &self.routes {
            msg.push_header("Route", route)?;
        }
        msg.push_header("From", &self.header_from())?;
        msg.push_header("To", &format!("<{}>", self.to))?;
        msg.push_header("Call-ID", &self.call_id)?;
        msg.push_header("CSeq", "1 INVITE")?;
        msg.push_header("Contact", &self.contact)?;
        msg.push_header("Allow", dialog::ALLOW)?;
        msg.push_header("Supported", dialog::SUPPORTED)?;
        for (name, value) in &self.headers {
            msg.push_header(name, value)?;
        }
        if let Some(sdp) = &self.sdp {
            msg = msg.with_body("application/sdp", sdp.clone())?;
        }
        Ok(msg)
    }

    fn header_from(&self) -> String {
        let user = if is_user_token(&self.from_user) {
            self.from_user.as_str()
        } else {
            FALLBACK_USER
        };
        let display: String = self
            .from_display
            .as_deref()
            .unwrap_or("")
            .chars()
            .filter(|c| !matches!(c, '"' | '\\') && !c.is_control())
            .collect();
        let display = display.trim();
        let tag = new_tag();
        if display.is_empty() {
            format!("<sip:{user}@{}>;tag={tag}", self.from_host)
        } else {
            format!("\"{display}\" <sip:{user}@{}>;tag={tag}", self.from_host)
        }
    }
}

/// Whether `user` can stand as a URI user unescaped: letters, digits and
/// `+-_.`, as phone numbers and agent names are.
pub fn is_user_token(user: &str) -> bool {
    !user.is_empty()
        && user.len() <= 64
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-_.".contains(&b))
}

/// `request` sent again after a challenge (or re-sent for any reason that
/// needs a new transaction): a new branch on the same Via, the CSeq number
/// up by one, previous credential lines replaced by `credentials`
/// (`(header, value)`).
pub fn resend_with(
    request: &SipMessage,
    credentials: &[(&str, &str)],
) -> Result<SipMessage, DialogError> {
    let method = request.method().ok_or(DialogError::NotInvite)?.clone();
    let mut via = request.top_via()?;
    via.set_param("branch", Some(new_branch()));
    let seq = request.cseq()?.seq.saturating_add(1).min((1 << 31) - 1);
    let mut msg = request.clone();
    replace_top_via(&mut msg, &via.to_string())?;
    msg.set_header("CSeq", &format!("{seq} {method}"))?;
    msg.remove_header("Authorization");
    msg.remove_header("Proxy-Authorization");
    for (name, value) in credentials {
        msg.push_header(name, value)?;
    }
    Ok(msg)
}

/// The client transaction key of a request we built (our top Via's
/// branch, its method).
pub fn client_key(request: &SipMessage) -> Option<TransactionKey> {
    let via = request.top_via().ok()?;
    TransactionKey::client(via.branch()?, request.method()?.as_str()).ok()
}

/// Our BYE in `dialog` with `headers`, or without them if the dialog
/// refuses them (a reserved name, CR/LF in a value): the peer still gets
/// its BYE. With its transaction key; `None` if none can be built.
pub(super) fn bye_in(
    dialog: &mut Dialog,
    headers: &[(&str, &str)],
) -> Option<(TransactionKey, SipMessage)> {
    let bye = dialog.bye(headers).or_else(|_| dialog.bye(&[])).ok()?;
    Some((client_key(&bye)?, bye))
}

/// Why a challenged request is not sent again.
#[derive(Debug)]
pub(super) enum RetryError {
    /// The digest client will not answer (wrong credentials, nothing
    /// answerable).
    Auth(AuthFailure),
    /// The request could not be built again.
    Build(String),
}

/// `request` again, answering the `kind` challenge in `response` with
/// `digest` (§22.2: new branch, CSeq + 1), and its transaction key.
pub(super) fn answer_challenge(
    digest: &mut DigestClient,
    kind: ChallengeStatus,
    request: &SipMessage,
    response: &SipMessage,
    cnonce: &mut dyn FnMut() -> String,
) -> Result<(TransactionKey, SipMessage), RetryError> {
    let method = request.method().map(Method::as_str).unwrap_or_default();
    let lines = digest
        .on_challenge(
            kind,
            response.header_values(kind.challenge_header()),
            RequestLine {
                method,
                uri: request.request_uri().unwrap_or_default(),
            },
            cnonce,
        )
        .map_err(RetryError::Auth)?;
    let lines: Vec<(&str, &str)> = lines.iter().map(|a| (a.header, a.value.as_str())).collect();
    let again = resend_with(request, &lines).map_err(|e| RetryError::Build(e.to_string()))?;
    let key = client_key(&again).ok_or_else(|| RetryError::Build("no branch".into()))?;
    Ok((key, again))
}

/// Replaces the first Via value (ours: the request has only the one we
/// put there, but a value list is split correctly all the same).
fn replace_top_via(msg: &mut SipMessage, top: &str) -> Result<(), DialogError> {
    let rest: Vec<String> = msg.vias()?.iter().skip(1).map(|v| v.to_string()).collect();
    msg.set_header("Via", top)?;
    for v in rest {
        msg.push_header("Via", &v)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> InviteRequest {
        InviteRequest {
            request_uri: "sip:+15551234567@192.0.2.9:5090;user=phone".into(),
            to: "sip:+15551234567@192.0.2.9:5090;user=phone".into(),
            from_user: "+15550001111".into(),
            from_display: Some("Acme \"Support\"".into()),
            from_host: "192.0.2.1".into(),
            call_id: "c-1@192.0.2.1".into(),
            via: "SIP/2.0/UDP 192.0.2.1:5060".into(),
            contact: "<sip:trunkline@192.0.2.1:5060>".into(),
            routes: vec!["<sip:proxy.example.com;lr>".into()],
            headers: vec![(
                "P-Asserted-Identity".into(),
                "<sip:+15550001111@192.0.2.1>".into(),
            )],
            sdp: Some(b"v=0\r\n".to_vec()),
        }
    }

    #[test]
    fn an_initial_invite_has_every_header_rfc_3261_asks_for() {
        let msg = request().build().expect("builds");
        let again = SipMessage::parse(&msg.to_bytes()).expect("parses back");
        assert_eq!(again.method(), Some(&Method::Invite));
        let via = again.top_via().expect("via");
        assert!(via.branch().is_some_and(|b| b.starts_with("z9hG4bK")));
        assert_eq!(again.header("Max-Forwards"), Some("70"));
        assert_eq!(again.header("Route"), Some("<sip:proxy.example.com;lr>"));
        let from = again.from().expect("from");
        assert_eq!(from.display_name.as_deref(), Some("Acme Support"));
        assert_eq!(from.uri, "sip:+15550001111@192.0.2.1");
        assert!(from.tag().is_some_and(|t| t.len() >= 8));
        assert!(again.to().expect("to").tag().is_none());
        assert_eq!(again.cseq().expect("cseq").seq, 1);
        assert_eq!(
            again.header("Contact"),
            Some("<sip:trunkline@192.0.2.1:5060>")
        );
        assert_eq!(again.header("Supported"), Some("timer"));
        assert!(again.header("Allow").is_some_and(|a| a.contains("BYE")));
        assert_eq!(
            again.header("P-Asserted-Identity"),
            Some("<sip:+15550001111@192.0.2.1>")
        );
        assert_eq!(again.content_type(), Some("application/sdp"));
        assert_eq!(again.body(), b"v=0\r\n");
    }

    #[test]
    fn each_invite_gets_its_own_branch_and_tag() {
        let (a, b) = (request().build().unwrap(), request().build().unwrap());
        assert_ne!(a.top_via().unwrap().branch(), b.top_via().unwrap().branch());
        assert_ne!(a.from().unwrap().tag(), b.from().unwrap().tag());
    }

    #[test]
    fn a_user_that_is_not_a_token_becomes_the_fallback() {
        for bad in ["", "a b", "x@y", "<sip:evil>", "\r\nVia: x"] {
            let mut r = request();
            r.from_user = bad.into();
            r.from_display = Some("\r\nX-Evil: 1".into());
            let msg = r.build().expect("builds");
            let from = msg.from().expect("from parses");
            assert_eq!(from.uri, "sip:trunkline@192.0.2.1", "{bad:?}");
            assert!(msg.header("X-Evil").is_none());
        }
    }

    #[test]
    fn a_resent_request_has_a_new_branch_the_next_cseq_and_only_the_new_credentials() {
        let first = request().build().unwrap();
        let second = resend_with(&first, &[("Authorization", "Digest a")]).unwrap();
        let third = resend_with(&second, &[("Proxy-Authorization", "Digest b")]).unwrap();
        for (m, seq) in [(&second, 2), (&third, 3)] {
            assert_eq!(m.cseq().unwrap().seq, seq);
            assert_eq!(m.cseq().unwrap().method, Method::Invite);
            assert_eq!(m.call_id().unwrap(), first.call_id().unwrap());
            assert_eq!(m.from().unwrap().tag(), first.from().unwrap().tag());
            assert_eq!(m.body(), first.body());
            assert_eq!(m.vias().unwrap().len(), 1);
        }
        assert_ne!(
            second.top_via().unwrap().branch(),
            first.top_via().unwrap().branch()
        );
        assert_ne!(
            third.top_via().unwrap().branch(),
            second.top_via().unwrap().branch()
        );
        assert_eq!(second.header("Authorization"), Some("Digest a"));
        assert_eq!(third.header("Authorization"), None);
        assert_eq!(third.header("Proxy-Authorization"), Some("Digest b"));
    }
}
