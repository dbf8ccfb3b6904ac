//! Transaction keys: which transaction a message belongs to (RFC 3261
//! §17.1.3 for responses, §17.2.3 for requests).
//!
//! Keys are built from plain values (branch, sent-by, method) so that any
//! message representation can produce them: a message adapter reads the top
//! Via and the method (the request line's, or the CSeq's for a response) and
//! calls [`TransactionKey::client`] or [`TransactionKey::server`].
//!
//! A request whose top Via branch starts with the `z9hG4bK` cookie is keyed
//! by branch, sent-by and method. One without the cookie comes from an RFC
//! 2543 peer, and §17.2.3 matches it on the Request-URI, the From and To
//! tags, the Call-ID, the CSeq and the top Via instead
//! ([`TransactionKey::server_rfc2543`], [`Rfc2543Fields`]). Client keys are
//! always ours, so they always carry the cookie.

use std::fmt;

use crate::rfc::BRANCH_MAGIC_COOKIE;

/// Which side of the transaction this element is on. Kept in the key so a
/// request looping back with our own branch never matches our client
/// transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// We sent the request; responses are matched by branch and CSeq method.
    Client,
    /// We received the request; requests are matched by branch, sent-by
    /// and method.
    Server,
}

/// The `sent-by` of a top Via: host and optional port, as the peer wrote
/// them. Retransmissions carry the same Via, so textual equality (host
/// case-insensitive) is what §17.2.3 needs; no default port is filled in.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SentBy {
    /// Host name or IP address, lower-cased (`[...]` kept for IPv6).
    host: String,
    /// Port, if the Via named one.
    port: Option<u16>,
}

impl SentBy {
    /// A sent-by from its parts; the host is compared case-insensitively.
    pub fn new(host: &str, port: Option<u16>) -> Self {
        Self {
            host: host.to_ascii_lowercase(),
            port,
        }
    }

    /// The host, lower-cased.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, if the Via named one.
    pub fn port(&self) -> Option<u16> {
        self.port
    }
}

impl fmt::Display for SentBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(port) => write!(f, "{}:{port}", self.host),
            None => f.write_str(&self.host),
        }
    }
}

/// What §17.2.3 matches a request from an RFC 2543 peer on (its top Via
/// branch lacks the `z9hG4bK` cookie, so the branch promises nothing).
/// Retransmissions repeat these fields exactly, so they compare as text:
/// the message adapter puts them in a canonical form (tags lower-cased, the
/// top Via without the `received`/`rport` values we stamp on it).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Rfc2543Fields {
    /// The Request-URI as received.
    pub request_uri: String,
    /// The From tag (RFC 2543 did not require one).
    pub from_tag: Option<String>,
    /// The To tag: none on a request outside a dialog.
    pub to_tag: Option<String>,
    /// The Call-ID.
    pub call_id: String,
    /// The CSeq number; its method is the key's method.
    pub cseq: u32,
    /// The top Via: sent-protocol, sent-by and branch, if any.
    pub top_via: String,
}

/// Identifies one transaction.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransactionKey {
    /// Client or server side.
    role: Role,
    /// The top Via's branch, lower-cased: branch is a token, and tokens
    /// compare case-insensitively (§7.3.1). Whatever the peer sent (maybe
    /// nothing) for an RFC 2543 key, where it is only shown, never matched
    /// alone.
    branch: String,
    /// The method that created the transaction. Case-sensitive (§7.1).
    method: String,
    /// The top Via's sent-by; RFC 3261 server keys only (§17.2.3). A client
    /// branch is ours and unique, so §17.1.3 does not compare sent-by.
    sent_by: Option<SentBy>,
    /// The RFC 2543 matching fields; server keys of such peers only. Boxed:
    /// nearly every key is an RFC 3261 one.
    rfc2543: Option<Box<Rfc2543Fields>>,
}

/// Why a key could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The branch lacks the `z9hG4bK` cookie (or is missing): the peer
    /// follows RFC 2543. A server key for it is built with
    /// [`TransactionKey::server_rfc2543`]; a client key never lacks it.
    #[error("branch {0:?} lacks the z9hG4bK cookie (RFC 2543 peer)")]
    Rfc2543Branch(String),
    /// The method is empty.
    #[error("empty method")]
    EmptyMethod,
}

impl TransactionKey {
    /// The key of a client transaction, and of each response to it: the
    /// branch we put in the top Via and the request's method (for a
    /// response, the CSeq method, which tells an INVITE's responses from its
    /// CANCEL's: both share the branch, §9.1).
    pub fn client(branch: &str, method: &str) -> Result<Self, KeyError> {
        Self::build(Role::Client, branch, method, None)
    }

    /// The key of a received request: top Via branch and sent-by, and the
    /// request-line method. An ACK's key is not its transaction's key: see
    /// [`TransactionKey::matching_transaction`].
    pub fn server(branch: &str, sent_by: SentBy, method: &str) -> Result<Self, KeyError> {
        Self::build(Role::Server, branch, method, Some(sent_by))
    }

    /// The key of a received request from an RFC 2543 peer (§17.2.3): its
    /// matching fields and the request-line method. INVITE, ACK and CANCEL
    /// find each other as with RFC 3261 keys
    /// ([`matching_transaction`](Self::matching_transaction),
    /// [`cancelled_invite`](Self::cancelled_invite)); the ACK for a
    /// failure carries the To tag our response added, see
    /// [`untagged_invite`](Self::untagged_invite).
    pub fn server_rfc2543(fields: Rfc2543Fields, method: &str) -> Result<Self, KeyError> {
        if method.is_empty() {
            return Err(KeyError::EmptyMethod);
        }
        let branch = fields
            .top_via
            .split(';')
            .find_map(|p| {
                let (name, value) = p.split_once('=')?;
                name.trim()
                    .eq_ignore_ascii_case("branch")
                    .then(|| value.trim())
            })
            .unwrap_or_default()
            .to_ascii_lowercase();
        Ok(Self {
            role: Role::Server,
            branch,
            method: method.to_owned(),
            sent_by: None,
            rfc2543: Some(Box::new(fields)),
        })
    }

    fn build(
        role: Role,
        branch: &str,
        method: &str,
        sent_by: Option<SentBy>,
    ) -> Result<Self, KeyError> {
        if !branch.starts_with(BRANCH_MAGIC_COOKIE) {
            return Err(KeyError::Rfc2543Branch(branch.to_owned()));
        }
        if method.is_empty() {
            return Err(KeyError::EmptyMethod);
        }
        Ok(Self {
            role,
            branch: branch.to_ascii_lowercase(),
            method: method.to_owned(),
            sent_by,
            rfc2543: None,
        })
    }

    /// The RFC 2543 matching fields, for a key of such a peer's request.
    pub fn rfc2543(&self) -> Option<&Rfc2543Fields> {
        self.rfc2543.as_deref()
    }

    /// Client or server side.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The branch, lower-cased.
    pub fn branch(&self) -> &str {
        &self.branch
    }

    /// The method this key was built with.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The sent-by of a server key.
    pub fn sent_by(&self) -> Option<&SentBy> {
        self.sent_by.as_ref()
    }

    /// Whether the method is INVITE (the INVITE state machines apply).
    pub fn is_invite(&self) -> bool {
        self.method == "INVITE"
    }

    /// Whether the method is ACK, which never starts a transaction.
    pub fn is_ack(&self) -> bool {
        self.method == "ACK"
    }

    /// The key of the transaction a received request belongs to. An ACK
    /// belongs to the INVITE server transaction with the same branch and
    /// sent-by (§17.2.3): that is how the ACK for a non-2xx final reaches
    /// it. An ACK for a 2xx carries a new branch and so matches nothing; it
    /// goes to the dialog.
    pub fn matching_transaction(&self) -> TransactionKey {
        if self.role == Role::Server && self.is_ack() {
            self.with_method("INVITE")
        } else {
            self.clone()
        }
    }

    /// For an RFC 2543 ACK that carries a To tag, the INVITE transaction it
    /// also may belong to: one whose INVITE had no To tag, answered with a
    /// failure to which we added that tag (§17.2.3 matches the ACK's To tag
    /// against our response's). Tried after
    /// [`matching_transaction`](Self::matching_transaction), which finds a
    /// re-INVITE that carried the tag itself.
    pub fn untagged_invite(&self) -> Option<TransactionKey> {
        let fields = self.rfc2543.as_deref()?;
        if !self.is_ack() || fields.to_tag.is_none() {
            return None;
        }
        let mut invite = self.with_method("INVITE");
        if let Some(fields) = invite.rfc2543.as_deref_mut() {
            fields.to_tag = None;
        }
        Some(invite)
    }

    /// For a CANCEL key, the key of the INVITE it cancels (same role, branch
    /// and sent-by, §9.2; for an RFC 2543 peer the same Request-URI, tags,
    /// Call-ID, CSeq number and top Via). The CANCEL is still its own
    /// non-INVITE transaction under its own key.
    pub fn cancelled_invite(&self) -> Option<TransactionKey> {
        (self.method == "CANCEL").then(|| self.with_method("INVITE"))
    }

    /// For an INVITE key, the key of a CANCEL for it: on the client side,
    /// the CANCEL we send reuses the INVITE's branch (§9.1).
    pub fn cancel(&self) -> Option<TransactionKey> {
        self.is_invite().then(|| self.with_method("CANCEL"))
    }

    fn with_method(&self, method: &str) -> TransactionKey {
        TransactionKey {
            method: method.to_owned(),
            ..self.clone()
        }
    }
}

impl fmt::Display for TransactionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let role = match self.role {
            Role::Client => "client",
            Role::Server => "server",
        };
        write!(f, "{role} {} {}", self.method, self.branch)?;
        if let Some(sent_by) = &self.sent_by {
            write!(f, " via {sent_by}")?;
        }
        if let Some(legacy) = &self.rfc2543 {
            write!(
                f,
                " (RFC 2543: {} {} {})",
                legacy.call_id, legacy.cseq, legacy.top_via
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BRANCH: &str = "z9hG4bK776asdhds";

    fn server(branch: &str, host: &str, port: Option<u16>, method: &str) -> TransactionKey {
        TransactionKey::server(branch, SentBy::new(host, port), method).expect("valid key")
    }

    #[test]
    fn server_request_matching_follows_17_2_3() {
        let invite = server(BRANCH, "pc33.atlanta.com", Some(5060), "INVITE");
        // (request key, matches the INVITE server transaction?)
        let cases = [
            (
                server(BRANCH, "pc33.atlanta.com", Some(5060), "INVITE"),
                true,
            ),
            (
                server(BRANCH, "PC33.Atlanta.COM", Some(5060), "INVITE"),
                true,
            ),
            (
                server("z9hG4bK776ASDHDS", "pc33.atlanta.com", Some(5060), "INVITE"),
                true,
            ),
            // ACK for a non-2xx final carries the INVITE's branch.
            (server(BRANCH, "pc33.atlanta.com", Some(5060), "ACK"), true),
            // ACK for a 2xx has a branch of its own.
            (
                server("z9hG4bKnew", "pc33.atlanta.com", Some(5060), "ACK"),
                false,
            ),
            // CANCEL is its own transaction.
            (
                server(BRANCH, "pc33.atlanta.com", Some(5060), "CANCEL"),
                false,
            ),
            // Same branch from another host is another transaction.
            (
                server(BRANCH, "pc34.atlanta.com", Some(5060), "INVITE"),
                false,
            ),
            (
                server(BRANCH, "pc33.atlanta.com", Some(5070), "INVITE"),
                false,
            ),
            (
                server(BRANCH, "pc33.atlanta.com", Some(5060), "invite"),
                false,
            ),
        ];
        for (key, want) in cases {
            assert_eq!(key.matching_transaction() == invite, want, "{key}");
        }
    }

    #[test]
    fn cancel_finds_the_invite_but_is_its_own_transaction() {
        let invite = server(BRANCH, "pc33.atlanta.com", None, "INVITE");
        let cancel = server(BRANCH, "pc33.atlanta.com", None, "CANCEL");
        assert_ne!(cancel.matching_transaction(), invite);
        assert_eq!(cancel.cancelled_invite(), Some(invite.clone()));
        assert_eq!(invite.cancelled_invite(), None);
        assert_eq!(invite.cancel(), Some(cancel));
    }

    #[test]
    fn client_responses_match_by_branch_and_cseq_method() {
        let invite = TransactionKey::client(BRANCH, "INVITE").expect("valid");
        let cancel = invite.cancel().expect("INVITE can be cancelled");
        let resp_to_cancel = TransactionKey::client(BRANCH, "CANCEL").expect("valid");
        let resp_to_invite = TransactionKey::client(BRANCH, "INVITE").expect("valid");
        assert_eq!(resp_to_cancel, cancel);
        assert_eq!(resp_to_invite, invite);
        assert_ne!(resp_to_cancel, invite);
        // A client key never matches a server transaction with the same branch.
        assert_ne!(invite, server(BRANCH, "a", None, "INVITE"));
    }

    #[test]
    fn rfc_2543_branches_and_empty_methods_are_refused() {
        let cases = [
            ("", "INVITE", Err(KeyError::Rfc2543Branch(String::new()))),
            (
                "776asdhds",
                "INVITE",
                Err(KeyError::Rfc2543Branch("776asdhds".into())),
            ),
            (BRANCH, "", Err(KeyError::EmptyMethod)),
        ];
        for (branch, method, want) in cases {
            assert_eq!(TransactionKey::client(branch, method).map(|_| ()), want);
        }
    }

    fn legacy(to_tag: Option<&str>, cseq: u32, via: &str) -> Rfc2543Fields {
        Rfc2543Fields {
            request_uri: "sip:userb@example.com".into(),
            from_tag: Some("98asjd8".into()),
            to_tag: to_tag.map(String::from),
            call_id: "inv2543.1717@ift.client.example.com".into(),
            cseq,
            top_via: via.into(),
        }
    }

    fn legacy_key(fields: Rfc2543Fields, method: &str) -> TransactionKey {
        TransactionKey::server_rfc2543(fields, method).expect("valid key")
    }

    #[test]
    fn rfc_2543_requests_match_on_uri_tags_call_id_cseq_and_via() {
        const VIA: &str = "SIP/2.0/UDP iftgw.example.com";
        let invite = legacy_key(legacy(None, 56, VIA), "INVITE");
        let other = |f: &dyn Fn(&mut Rfc2543Fields)| {
            let mut fields = legacy(None, 56, VIA);
            f(&mut fields);
            legacy_key(fields, "INVITE")
        };
        // A retransmission is the same transaction...
        assert_eq!(
            legacy_key(legacy(None, 56, VIA), "INVITE").matching_transaction(),
            invite
        );
        // ...and any field that differs makes another one (§17.2.3).
        let differing = [
            other(&|f| f.request_uri = "sip:userc@example.com".into()),
            other(&|f| f.from_tag = Some("other".into())),
            other(&|f| f.from_tag = None),
            other(&|f| f.to_tag = Some("t".into())),
            other(&|f| f.call_id = "another".into()),
            other(&|f| f.cseq = 57),
            other(&|f| f.top_via = "SIP/2.0/UDP iftgw.example.com:5070".into()),
        ];
        for key in differing {
            assert_ne!(key.matching_transaction(), invite, "{key}");
        }
        // Nor does an RFC 3261 key with the same method ever match.
        assert_ne!(server(BRANCH, "iftgw.example.com", None, "INVITE"), invite);
    }

    #[test]
    fn rfc_2543_ack_and_cancel_find_their_invite() {
        const VIA: &str = "SIP/2.0/UDP 192.0.2.2;branch=390skdjuw";
        let invite = legacy_key(legacy(None, 9, VIA), "INVITE");
        // The ACK for our failure carries the To tag we added.
        let ack = legacy_key(legacy(Some("tl-tag"), 9, VIA), "ACK");
        assert_ne!(ack.matching_transaction(), invite);
        assert_eq!(ack.untagged_invite(), Some(invite.clone()));
        // A re-INVITE carried the tag itself: the first lookup finds it.
        let reinvite = legacy_key(legacy(Some("tl-tag"), 9, VIA), "INVITE");
        assert_eq!(ack.matching_transaction(), reinvite);
        // An ACK without a To tag, or any other method, needs no second try.
        assert_eq!(
            legacy_key(legacy(None, 9, VIA), "ACK").matching_transaction(),
            invite
        );
        assert_eq!(
            legacy_key(legacy(None, 9, VIA), "ACK").untagged_invite(),
            None
        );
        assert_eq!(reinvite.untagged_invite(), None);
        // CANCEL: same fields, its own transaction, and it names the INVITE.
        let cancel = legacy_key(legacy(None, 9, VIA), "CANCEL");
        assert_ne!(cancel.matching_transaction(), invite);
        assert_eq!(cancel.cancelled_invite(), Some(invite.clone()));
        assert_eq!(invite.branch(), "390skdjuw");
        assert_eq!(
            invite.to_string(),
            "server INVITE 390skdjuw (RFC 2543: inv2543.1717@ift.client.example.com 9 \
             SIP/2.0/UDP 192.0.2.2;branch=390skdjuw)"
        );
        assert_eq!(
            TransactionKey::server_rfc2543(legacy(None, 9, VIA), ""),
            Err(KeyError::EmptyMethod)
        );
    }

    #[test]
    fn display_names_the_transaction() {
        let key = server(BRANCH, "10.0.0.1", Some(5060), "INVITE");
        assert_eq!(
            key.to_string(),
            "server INVITE z9hg4bk776asdhds via 10.0.0.1:5060"
        );
    }
}
