//! What the owner tells a call, and what the call asks of it.

use trunkline_sip::dialog::DialogId;
use trunkline_sip::leg::{InboundAction, InboundInput, LegFailure, OutboundAction, OutboundInput};

/// Why a call ended, as the policy's `conclude` hears it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The agent hung up (its BYE, its connector closing).
    AgentHangup,
    /// The agent asked the gateway to end the call (control API).
    AgentRequest,
    /// The caller hung up (CANCEL or BYE).
    CallerHangup,
    /// The call reached its longest allowed duration.
    MaxDuration,
    /// No media from one side.
    MediaTimeout,
    /// Anything else: the agent failed, a leg broke, shutdown.
    Error,
}

/// What ended a call, in more detail than its [`EndReason`]: for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndCause {
    /// The caller sent CANCEL before the answer.
    CallerCancelled,
    /// The caller sent BYE.
    CallerBye,
    /// The agent sent BYE.
    AgentBye,
    /// The caller never ACKed our 2xx (64*T1).
    CallerNeverAcked,
    /// The agent never ACKed our 2xx to its re-INVITE (64*T1).
    AgentNeverAcked,
    /// The agent did not answer within the ring timeout.
    RingTimeout,
    /// The agent could not be reached, refused, or failed otherwise.
    AgentFailed,
    /// The number we dialled was busy, did not answer, or failed otherwise.
    DialledFailed,
    /// The agent's media could not be used (the status the caller got).
    MediaFailed(u16),
    /// Our 2xx to the caller could not be built.
    AnswerFailed,
    /// The call reached its longest allowed duration.
    MaxDuration,
    /// The owner ended it ([`CallInput::End`]).
    Ordered,
    /// The transfer target the caller was bridged to sent BYE.
    TargetBye,
    /// The transfer target never ACKed our 2xx to its re-INVITE.
    TargetNeverAcked,
    /// A transfer failed after its agent had left.
    TransferFailed,
    /// A connector agent went away.
    AgentLeft,
}

impl std::fmt::Display for EndCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EndCause::CallerCancelled => f.write_str("caller cancelled"),
            EndCause::CallerBye => f.write_str("caller hung up"),
            EndCause::AgentBye => f.write_str("agent hung up"),
            EndCause::CallerNeverAcked => f.write_str("caller never ACKed our 200 OK"),
            EndCause::AgentNeverAcked => {
                f.write_str("agent never ACKed our 200 OK to its re-INVITE")
            }
            EndCause::RingTimeout => f.write_str("agent rang too long"),
            EndCause::AgentFailed => f.write_str("agent leg failed"),
            EndCause::DialledFailed => f.write_str("dialled leg failed"),
            EndCause::MediaFailed(status) => write!(f, "agent media unusable ({status})"),
            EndCause::AnswerFailed => f.write_str("cannot build the 200 OK"),
            EndCause::MaxDuration => f.write_str("longest call duration reached"),
            EndCause::Ordered => f.write_str("ended by the gateway"),
            EndCause::TargetBye => f.write_str("transfer target hung up"),
            EndCause::TargetNeverAcked => {
                f.write_str("transfer target never ACKed our 200 OK to its re-INVITE")
            }
            EndCause::TransferFailed => f.write_str("transfer failed after the agent left"),
            EndCause::AgentLeft => f.write_str("agent connector went away"),
        }
    }
}

/// What happened, for [`crate::Call::handle`].
#[derive(Debug, Clone, Copy)]
pub enum CallInput<'a> {
    /// For the caller's leg: its ACK, CANCEL or BYE (the owner answered
    /// the request itself), or what one of our requests toward the caller
    /// (BYE, REFER) got.
    Caller(InboundInput<'a>),
    /// For the agent's SIP leg: a response, a timeout, the agent's BYE or
    /// ACK.
    Agent(OutboundInput<'a>),
    /// For the leg we dialled toward the trunk (a call we place): likewise.
    Dialled(OutboundInput<'a>),
    /// For a transfer target's leg: likewise.
    Transfer(OutboundInput<'a>),
    /// An agent that is not a SIP leg (a WebSocket or builtin connector)
    /// is up: start the media and answer the caller.
    AgentReady,
    /// The agent cannot be reached (no address, a connector that failed
    /// with no fallback left): the caller gets `status`.
    AgentUnreachable {
        /// Why, typed, for the record.
        failure: LegFailure,
        /// For the caller.
        status: u16,
    },
    /// The owner carried out the [`MediaOrder`] the call asked for: `Ok`,
    /// or the SIP status for the caller when the media cannot be used.
    Media(Result<(), u16>),
    /// The caller's NOTIFY reported the REFER's final result (or the
    /// subscription ended without one: not a success).
    ReferNotified {
        /// The transferee reached the target.
        succeeded: bool,
    },
    /// End the call (control API, media timeout, shutdown).
    End(EndReason),
    /// An agent that is not a SIP leg (a connector) went away: the call
    /// ends, unless a cold transfer is dialling for the caller (see
    /// `transfer`).
    AgentLeft,
}

/// A media order for the owner's relay; it answers with
/// [`CallInput::Media`] before anything else happens to the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaOrder {
    /// Start the relay toward the agent's SDP (empty: an agent with no SDP,
    /// a connector).
    Start {
        /// The agent's SDP answer (its 18x or 2xx).
        agent_sdp: Vec<u8>,
    },
    /// Apply the agent's new SDP to the running relay.
    Update {
        /// The agent's later SDP.
        agent_sdp: Vec<u8>,
    },
    /// The dialled side's SDP answer to our offer (its 2xx's, or its 18x's
    /// when the 2xx has none): the media toward it is settled.
    DialledAnswer {
        /// Its SDP answer.
        sdp: Vec<u8>,
    },
    /// Cold transfer: the target answered with `sdp` (our offer's answer,
    /// empty if it had none): bridge the caller to the target in place of
    /// the agent.
    Bridge {
        /// The target's SDP answer.
        sdp: Vec<u8>,
    },
    /// Warm transfer: the target answered with `sdp`: the agent talks to
    /// the target, the caller hears hold audio.
    Brief {
        /// The target's SDP answer.
        sdp: Vec<u8>,
    },
    /// Warm transfer completed: bridge the caller to the target (already
    /// set up by `Brief`) in place of the agent.
    Complete,
    /// Warm transfer over without the bridge: the caller and the agent
    /// talk again, the target's media goes.
    Unbrief,
}

/// The outcome `conclude` gave, for the caller, after
/// [`CallAction::Conclude`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing to deliver (the caller is gone or was never answered).
    Nothing,
    /// A BYE with these headers.
    Bye(Vec<(String, String)>),
    /// A REFER to `to` with these headers; a BYE with them if it fails.
    Refer {
        /// The transfer target.
        to: String,
        /// The outcome's headers.
        headers: Vec<(String, String)>,
    },
}

/// Why a REFER did not transfer the caller (its outcome then goes on a
/// BYE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferFailure {
    /// It could not be built (a target the dialog refuses).
    NotBuilt,
    /// The caller refused it with this status (or it got none: a timeout,
    /// a transport failure).
    Refused(Option<u16>),
    /// The caller's NOTIFY reported the transfer failed.
    Failed,
    /// No final NOTIFY came within the wait.
    NoNotify,
}

impl std::fmt::Display for ReferFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReferFailure::NotBuilt => f.write_str("cannot build the REFER"),
            ReferFailure::Refused(Some(status)) => write!(f, "REFER refused ({status})"),
            ReferFailure::Refused(None) => f.write_str("REFER got no answer"),
            ReferFailure::Failed => f.write_str("the transfer failed (NOTIFY)"),
            ReferFailure::NoNotify => f.write_str("no final NOTIFY for the REFER"),
        }
    }
}

/// What the call asks of its owner, or tells it, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum CallAction {
    /// For the caller: a response on the INVITE's server transaction, our
    /// 2xx again, a client transaction (BYE, REFER), the dialog's id for
    /// in-dialog routing. (Only those variants are passed on.)
    Caller(InboundAction),
    /// For the agent's SIP leg: the INVITE's transaction, a CANCEL or BYE,
    /// an ACK, our 2xx to its re-INVITE again, an INVITE to abandon, and
    /// `Finished` when its last transaction is over. (Only those variants
    /// are passed on.)
    Agent(OutboundAction),
    /// For the leg we dialled toward the trunk: as for `Agent`.
    Dialled(OutboundAction),
    /// The agent's dialog is up: its id, for in-dialog routing.
    AgentDialogUp(DialogId),
    /// The dialled leg's dialog is up: its id, for in-dialog routing.
    DialledDialogUp(DialogId),
    /// For a transfer target's leg: as for `Agent`.
    Transfer(OutboundAction),
    /// The transfer target's dialog is up: its id, for in-dialog routing.
    TransferDialogUp(DialogId),
    /// The transfer left the caller with the agent: tell the agent (and
    /// the record).
    TransferFailed {
        /// Why.
        why: crate::TransferFailure,
        /// More for the log.
        detail: Option<String>,
    },
    /// The caller is bridged to the transfer target; the agent's SIP leg
    /// is hung up by the call, a connector agent is to be stopped.
    Transferred,
    /// The dialled side answered and its media is settled: reach the agent
    /// now ([`crate::Call::dial_agent`], or [`CallInput::AgentReady`]).
    ReachAgent,
    /// The dialled leg failed before an answer (for the log; the call ends
    /// by itself).
    DialledFailed {
        /// Why, typed.
        failure: LegFailure,
        /// More for the log.
        detail: Option<String>,
    },
    /// The agent leg failed before an answer (for the log; the call fails
    /// by itself).
    AgentFailed {
        /// Why, typed.
        failure: LegFailure,
        /// More for the log.
        detail: Option<String>,
    },
    /// Carry out this media order, then answer with [`CallInput::Media`].
    Media(MediaOrder),
    /// The caller got our 2xx: the call is connected.
    Connected,
    /// The call ended: stop the agent's connector, run `conclude`, store
    /// the record, stop the media, then give the outcome with
    /// [`crate::Call::concluded`].
    Conclude {
        /// Why, for `conclude`.
        reason: EndReason,
        /// Why, in detail, for the log.
        cause: EndCause,
        /// The caller was answered and is still there: the outcome is
        /// delivered to it.
        caller_connected: bool,
    },
    /// The REFER failed: the outcome went on a BYE instead (the record
    /// says so).
    ReferFailed(ReferFailure),
    /// Nothing of the call is left to send or wait for.
    Finished,
}
