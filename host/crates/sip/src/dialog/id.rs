//! [`DialogId`]: Call-ID, local tag and remote tag (RFC 3261 §12), and how
//! to read it off a message depending on which side sent it.
//!
//! The same message names the dialog differently at each end: in a request
//! the sender's tag is in From, in its response it is still in From. So a
//! request we *received* has our tag in To, while a response we received
//! (to our request) has our tag in From. [`DialogId::of_received`] and
//! [`DialogId::of_sent`] do that bookkeeping once.

use std::fmt;

use crate::message::SipMessage;

/// Identifies one dialog from our point of view. Tags are tokens and
/// compare case-insensitively (§7.3.1), so they are kept lower-cased here;
/// the Call-ID is case-sensitive (§20.8) and kept as is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DialogId {
    /// The Call-ID, exactly as sent.
    call_id: String,
    /// Our tag, lower-cased.
    local_tag: String,
    /// The peer's tag, lower-cased; empty for an RFC 2543 peer that sent no
    /// From tag (§12.1.1 calls that a null tag).
    remote_tag: String,
}

impl DialogId {
    /// An id from its parts.
    pub fn new(call_id: &str, local_tag: &str, remote_tag: &str) -> Self {
        Self {
            call_id: call_id.to_string(),
            local_tag: local_tag.to_ascii_lowercase(),
            remote_tag: remote_tag.to_ascii_lowercase(),
        }
    }

    /// The id of the dialog a message we received belongs to: for a request
    /// our tag is in To and the peer's in From; for a response, the other
    /// way round. `None` when the message is outside any dialog (a request
    /// without a To tag, a response without one) or lacks Call-ID/From/To.
    pub fn of_received(msg: &SipMessage) -> Option<DialogId> {
        Self::read(msg, msg.is_request())
    }

    /// The id of the dialog a message we sent belongs to (our request: our
    /// tag in From; our response: our tag in To).
    pub fn of_sent(msg: &SipMessage) -> Option<DialogId> {
        Self::read(msg, !msg.is_request())
    }

    /// `local_in_to`: whether our tag is the one in To.
    fn read(msg: &SipMessage, local_in_to: bool) -> Option<DialogId> {
        let call_id = msg.call_id().ok()?;
        let from = msg.from().ok()?;
        let to = msg.to().ok()?;
        // The To tag is what makes a message in-dialog; a missing From tag
        // only means an RFC 2543 peer on the other end.
        let to_tag = to.tag()?;
        let from_tag = from.tag().unwrap_or_default();
        Some(if local_in_to {
            DialogId::new(call_id, to_tag, from_tag)
        } else {
            DialogId::new(call_id, from_tag, to_tag)
        })
    }

    /// The Call-ID.
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// Our tag (lower-cased).
    pub fn local_tag(&self) -> &str {
        &self.local_tag
    }

    /// The peer's tag (lower-cased; empty when the peer sent none).
    pub fn remote_tag(&self) -> &str {
        &self.remote_tag
    }
}

impl fmt::Display for DialogId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{};l={};r={}",
            self.call_id, self.local_tag, self.remote_tag
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BYE: &str = "BYE sip:trunkline@192.0.2.10:5060 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 198.51.100.20:5060;branch=z9hG4bK-bye-1\r\n\
        From: <sip:5550199@five9.example.com>;tag=Five9-A\r\n\
        To: <sip:18005550100@trunkline.example.com>;tag=tl-b\r\n\
        Call-ID: Abc-123@198.51.100.20\r\n\
        CSeq: 2 BYE\r\n\
        Content-Length: 0\r\n\r\n";

    fn msg(text: &str) -> SipMessage {
        SipMessage::parse(text.as_bytes()).expect("valid message")
    }

    #[test]
    fn ids_by_direction_and_kind() {
        let request = msg(BYE);
        let response = request.reply(200, None, None).expect("builds");
        let call = "Abc-123@198.51.100.20";
        // (what, message, received?, expected id)
        let table: Vec<(&str, &SipMessage, bool, DialogId)> = vec![
            (
                "BYE from Five9, as we receive it",
                &request,
                true,
                DialogId::new(call, "tl-b", "five9-a"),
            ),
            (
                "the same BYE as Five9 sent it",
                &request,
                false,
                DialogId::new(call, "five9-a", "tl-b"),
            ),
            (
                "our 200 to it",
                &response,
                false,
                DialogId::new(call, "tl-b", "five9-a"),
            ),
            (
                "the 200 as Five9 receives it",
                &response,
                true,
                DialogId::new(call, "five9-a", "tl-b"),
            ),
        ];
        for (what, message, received, expected) in table {
            let id = if received {
                DialogId::of_received(message)
            } else {
                DialogId::of_sent(message)
            };
            assert_eq!(id.as_ref(), Some(&expected), "{what}");
        }
    }

    #[test]
    fn tags_ignore_case_but_call_id_does_not() {
        let a = DialogId::new("Abc", "TL-B", "Five9-A");
        assert_eq!(a, DialogId::new("Abc", "tl-b", "five9-a"));
        assert_ne!(a, DialogId::new("abc", "tl-b", "five9-a"));
        assert_eq!(a.to_string(), "Abc;l=tl-b;r=five9-a");
    }

    #[test]
    fn out_of_dialog_messages_have_no_id() {
        let table = [
            ("no To tag", BYE.replace(";tag=tl-b", ""), None),
            (
                "no From tag (RFC 2543 peer)",
                BYE.replace(";tag=Five9-A", ""),
                Some(DialogId::new("Abc-123@198.51.100.20", "tl-b", "")),
            ),
            ("no Call-ID", BYE.replace("Call-ID", "X-Call-ID"), None),
        ];
        for (what, text, expected) in table {
            let parsed = SipMessage::parse(text.as_bytes());
            let id = parsed.ok().and_then(|m| DialogId::of_received(&m));
            assert_eq!(id, expected, "{what}");
        }
    }
}
