//! The server key of a received [`SipMessage`]: the one place that reads
//! §17.2.3's fields off our message type, so the keys themselves stay plain
//! values.

use super::key::{Rfc2543Fields, SentBy, TransactionKey};
use crate::message::SipMessage;
use crate::rfc::BRANCH_MAGIC_COOKIE;

/// The key of the server transaction a received request belongs to (its
/// own, or for an ACK or CANCEL the one [`TransactionKey::matching_transaction`]
/// and [`TransactionKey::cancelled_invite`] lead to): branch, sent-by and
/// method when the top Via branch has the `z9hG4bK` cookie, else the RFC
/// 2543 fields. `None` for a response or a request missing what the framer
/// checks (top Via, Call-ID, CSeq, From, To), which never gets this far.
pub fn server_key(request: &SipMessage) -> Option<TransactionKey> {
    let method = request.method()?.as_str();
    let via = request.top_via().ok()?;
    let branch = via.branch().unwrap_or_default();
    if branch.starts_with(BRANCH_MAGIC_COOKIE) {
        let sent_by = SentBy::new(&via.host.to_string(), via.port);
        return TransactionKey::server(branch, sent_by, method).ok();
    }
    // The Via as the peer sent it: the `received` and `rport` values our
    // transport stamps on it depend on the path, not on the transaction.
    let mut top_via = format!("{}/{} {}", via.protocol, via.transport, via.host);
    top_via.make_ascii_lowercase();
    if let Some(port) = via.port {
        top_via.push_str(&format!(":{port}"));
    }
    if !branch.is_empty() {
        top_via.push_str(&format!(";branch={branch}"));
    }
    let tag = |tag: Option<&str>| tag.map(str::to_ascii_lowercase);
    let fields = Rfc2543Fields {
        request_uri: request.request_uri()?.to_owned(),
        from_tag: tag(request.from().ok()?.tag()),
        to_tag: tag(request.to().ok()?.tag()),
        call_id: request.call_id().ok()?.to_owned(),
        cseq: request.cseq().ok()?.seq,
        top_via,
    };
    TransactionKey::server_rfc2543(fields, method).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::stamp_received;

    /// RFC 4475 §3.1.1.13 (inv2543), headers only.
    const INV2543: &str = "INVITE sip:UserB@example.com SIP/2.0\r\n\
        Via: SIP/2.0/UDP iftgw.example.com\r\n\
        From: <sip:+13035551111@ift.client.example.net;user=phone>\r\n\
        To: sip:+16505552222@ss1.example.net;user=phone\r\n\
        Call-ID: inv2543.1717@ift.client.example.com\r\n\
        CSeq: 56 INVITE\r\n\r\n";

    fn key(text: &str) -> TransactionKey {
        server_key(&SipMessage::parse(text.as_bytes()).expect("valid")).expect("a key")
    }

    #[test]
    fn cookie_branches_key_on_branch_sent_by_and_method() {
        let text = INV2543.replace(
            "iftgw.example.com\r\n",
            "IFTGW.example.com;branch=z9hG4bK-1\r\n",
        );
        let got = key(&text);
        assert_eq!(got.rfc2543(), None);
        assert_eq!(got.branch(), "z9hg4bk-1");
        assert_eq!(got.sent_by(), Some(&SentBy::new("iftgw.example.com", None)));
    }

    #[test]
    fn rfc_2543_requests_key_on_the_fields_of_17_2_3() {
        let got = key(INV2543);
        let fields = got.rfc2543().expect("an RFC 2543 key");
        assert_eq!(fields.request_uri, "sip:UserB@example.com");
        assert_eq!(
            (fields.from_tag.as_deref(), fields.to_tag.as_deref()),
            (None, None)
        );
        assert_eq!(fields.call_id, "inv2543.1717@ift.client.example.com");
        assert_eq!(fields.cseq, 56);
        assert_eq!(fields.top_via, "sip/2.0/udp iftgw.example.com");

        // What our transport stamps on the Via does not make it another
        // transaction: a retransmission from the same peer matches.
        let mut stamped = SipMessage::parse(INV2543.as_bytes()).expect("valid");
        stamp_received(&mut stamped, "192.0.2.9:5060".parse().expect("address")).expect("Via");
        assert_eq!(server_key(&stamped), Some(got.clone()));

        // A branch without the cookie (RFC 4475 wsinv) is kept in the Via
        // field, the tags lower-cased.
        let tagged = INV2543
            .replace("iftgw.example.com\r\n", "192.0.2.2;branch=390skdjuw\r\n")
            .replace("user=phone>\r\n", "user=phone>;tag=98ASJD8\r\n")
            .replace(";user=phone\r\nCall", ";user=phone;tag=1918181833N\r\nCall");
        let got = key(&tagged);
        let fields = got.rfc2543().expect("an RFC 2543 key");
        assert_eq!(fields.top_via, "sip/2.0/udp 192.0.2.2;branch=390skdjuw");
        assert_eq!(fields.from_tag.as_deref(), Some("98asjd8"));
        assert_eq!(fields.to_tag.as_deref(), Some("1918181833n"));
        let response = INV2543.replace("INVITE sip:UserB@example.com SIP/2.0", "SIP/2.0 200 OK");
        assert_eq!(
            server_key(&SipMessage::parse(response.as_bytes()).expect("valid")),
            None
        );
    }
}
