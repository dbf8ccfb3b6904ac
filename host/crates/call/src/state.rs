//! Where a call is: one enum, each state carrying what only it needs.

use std::time::Instant;

use trunkline_sip::transaction::TransactionKey;

use crate::action::EndReason;

/// Where the call is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallState {
    /// A call we place: our INVITE toward the trunk (Five9) is out; the
    /// agent is reached once it is answered.
    Dialling {
        /// What the dialled side has told us (its 18x).
        progress: Progress,
        /// The media step the call waits for the owner to carry out.
        media: Option<MediaStep>,
    },
    /// The agent is being reached (a DNS look-up, a connector, our INVITE);
    /// the caller hears ringing, or the agent's early media.
    Calling {
        /// What the caller has been told.
        progress: Progress,
        /// The media step the call waits for the owner to carry out.
        media: Option<MediaStep>,
    },
    /// Both legs are up.
    Connected {
        /// When the caller was answered.
        since: Instant,
    },
    /// The call ended: the outcome is being stored and delivered, and the
    /// legs torn down.
    Ending {
        /// Why.
        reason: EndReason,
        /// Where the outcome's delivery is.
        delivery: Delivery,
    },
}

/// What the caller has heard of the agent before the answer (or, while
/// dialling, what the dialled side sent us).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Nothing above `100 Trying`.
    Quiet,
    /// One `180 Ringing`.
    Rang,
    /// Our `183` with the SDP answer: the agent's early media reaches the
    /// caller (dialling: the dialled side's 18x carried SDP).
    EarlyMedia,
}

/// A media order the call waits on ([`crate::MediaOrder`]), and what its
/// result decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaStep {
    /// Early media from an 18x with SDP: on success the caller gets our
    /// `183`, else a `180` (once) and the call waits for the answer.
    Early,
    /// An early 18x's SDP changed: applied or not, nothing changes.
    EarlyUpdate,
    /// The agent answered: on success the caller gets our `200`, else the
    /// call fails with the status given.
    Answer,
    /// The dialled side answered our offer: on success the agent is
    /// reached, else the call ends.
    DialledAnswer,
    /// A transfer target answered (cold) or a warm transfer completed: on
    /// success the agent goes, else the caller stays with it.
    Bridge,
    /// A warm transfer's target answered: on success the brief starts,
    /// else the target goes.
    Brief,
    /// A warm transfer returns the caller to the agent: nothing follows.
    Unbrief,
}

/// The outcome's way to the caller, once the call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// The owner is running `conclude` and storing the record
    /// ([`crate::CallAction::Conclude`]).
    Concluding,
    /// A REFER waits for the caller's ACK of our `200`: it must not
    /// overtake it (RFC 3261 §15). (A BYE is held by the caller's leg.)
    HeldForAck {
        /// The REFER's target.
        refer_to: String,
        /// The outcome's headers.
        headers: Vec<(String, String)>,
    },
    /// The REFER is out; the caller's final NOTIFY ends it.
    Referring {
        /// Its transaction.
        tx: TransactionKey,
        /// The headers for the BYE should the transfer fail.
        headers: Vec<(String, String)>,
        /// When we stop waiting for the NOTIFY.
        until: Instant,
    },
    /// Nothing (more) to deliver.
    Done,
}

impl CallState {
    /// Whether the call has ended (it may still be tearing down).
    pub fn is_ending(&self) -> bool {
        matches!(self, CallState::Ending { .. })
    }

    /// Whether our INVITE toward the trunk is still unanswered.
    pub fn is_dialling(&self) -> bool {
        matches!(self, CallState::Dialling { .. })
    }

    /// Whether the agent is still being reached.
    pub fn is_calling(&self) -> bool {
        matches!(self, CallState::Calling { .. })
    }

    /// Whether both legs are up.
    pub fn is_connected(&self) -> bool {
        matches!(self, CallState::Connected { .. })
    }
}
