//! Errors of the dialog layer, each knowing the status it maps to when the
//! trouble came from a peer's request.

use crate::message::{BuildError, Method, ParseError};

/// Why a dialog could not be created, a message could not be built in it,
/// or a peer's message could not be taken in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialogError {
    /// A header the dialog needs is missing or unreadable in a message.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// A message could not be built: an extra header with a bad name, or a
    /// value with CR/LF (a policy can never forge header lines).
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The message has no tag where the dialog needs one (`"From"`/`"To"`).
    #[error("{0} has no tag")]
    MissingTag(&'static str),
    /// A dialog-creating message has no Contact (what is named lacks it):
    /// without one there is no remote target, or nothing for the peer to
    /// reach us at.
    #[error("{0} has no Contact")]
    MissingContact(&'static str),
    /// Only 101..=299 responses to an INVITE create a dialog (§12.1).
    #[error("a {0} response does not create a dialog")]
    NotDialogCreating(u16),
    /// The message belongs to another dialog, or a response to another
    /// request.
    #[error("message does not belong to this dialog")]
    Mismatch,
    /// The operation needs an INVITE (CANCEL, ACK for a failure, dialog
    /// creation) and got something else.
    #[error("not an INVITE")]
    NotInvite,
    /// The dialog has ended (BYE sent or received, 481/408 received):
    /// nothing more may be sent in it but the ACK for a 2xx.
    #[error("dialog terminated")]
    Terminated,
    /// A re-INVITE needs a confirmed dialog (§14: early dialogs use UPDATE).
    #[error("dialog is not confirmed")]
    NotConfirmed,
    /// An INVITE is already in progress in this dialog, in either direction;
    /// §14.1 forbids starting another one until it completes.
    #[error("an INVITE is already pending in this dialog")]
    InvitePending,
    /// ACK and CANCEL reuse the INVITE's CSeq and have their own builders
    /// ([`Dialog::ack`](super::Dialog::ack), [`cancel`](fn@super::cancel)).
    #[error("{0} cannot be sent as a new in-dialog request")]
    WrongMethod(Method),
    /// An extra header would replace one the dialog writes itself (Via,
    /// From, To, Call-ID, CSeq, Route, Contact, Content-*), breaking the
    /// dialog or the transaction.
    #[error("header {0:?} is written by the dialog")]
    ReservedHeader(String),
    /// A REFER target that Five9 would silently drop: not a `sip:`/`sips:`
    /// URI with both a user and a host.
    #[error("Refer-To {0:?} is not a fully qualified sip: URI")]
    InvalidReferTarget(String),
    /// A REFER NOTIFY whose body is not a `message/sipfrag` status line.
    #[error("NOTIFY body is not a sipfrag status line")]
    InvalidSipfrag,
    /// A NOTIFY for an event package other than `refer` (RFC 6665 §8.2.1).
    #[error("event package {0:?} is not refer")]
    BadEvent(String),
}

impl DialogError {
    /// The status to answer a peer's request with when this error came from
    /// it; `None` when the fault is ours (a build error, a misuse of the API)
    /// and nothing should be sent.
    pub fn status(&self) -> Option<u16> {
        match self {
            DialogError::Parse(error) => error.status(),
            DialogError::MissingTag(_)
            | DialogError::MissingContact(_)
            | DialogError::InvalidSipfrag => Some(400),
            DialogError::Mismatch | DialogError::Terminated => Some(481),
            DialogError::BadEvent(_) => Some(489),
            DialogError::InvitePending => Some(491),
            DialogError::Build(_)
            | DialogError::NotDialogCreating(_)
            | DialogError::NotInvite
            | DialogError::NotConfirmed
            | DialogError::WrongMethod(_)
            | DialogError::ReservedHeader(_)
            | DialogError::InvalidReferTarget(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_per_variant() {
        let table: &[(DialogError, Option<u16>)] = &[
            (ParseError::MissingHeader("Call-ID").into(), Some(400)),
            (ParseError::MissingHeader("Via").into(), None),
            (DialogError::MissingTag("To"), Some(400)),
            (DialogError::MissingContact("INVITE"), Some(400)),
            (DialogError::InvalidSipfrag, Some(400)),
            (DialogError::Mismatch, Some(481)),
            (DialogError::Terminated, Some(481)),
            (DialogError::BadEvent("presence".into()), Some(489)),
            (DialogError::InvitePending, Some(491)),
            (BuildError::InvalidStatus(1).into(), None),
            (DialogError::ReservedHeader("Via".into()), None),
            (DialogError::WrongMethod(Method::Ack), None),
        ];
        for (error, status) in table {
            assert_eq!(error.status(), *status, "{error:?}");
        }
    }
}
