//! One call of the B2BUA, free of I/O: the caller's leg, the agent's leg,
//! and the rules between them.
//!
//! The owner (the host's gateway) keeps the lookup tables, the event loop,
//! the sockets and clocks, the relay, the policy and the store. It tells
//! the call what happened ([`Call::handle`], [`Call::dial_agent`],
//! [`Call::concluded`], [`Call::handle_timeout`]), carries out what the
//! call asks ([`Call::poll_action`]), and arms one timer for
//! [`Call::poll_timeout`]. Everything here runs on a clock it is given, so
//! every rule below is tested on a simulated one.
//!
//! # The rules
//! - **Ringing.** An agent's 18x without SDP becomes one `180` for the
//!   caller, whatever its code. The first 18x with SDP starts the media
//!   and gives the caller one `183` with our answer (the same answer the
//!   `200` will carry); later 18x are not forwarded, their SDP only
//!   updates the agent's side of the media.
//! - **Answer.** The caller gets our `200` only once the agent answered
//!   and the media runs; it is re-sent until the caller's ACK (the
//!   caller's leg). An agent that answers after the caller left gets its
//!   ACK and a BYE.
//! - **Failure.** An agent that cannot be reached, refuses or rings too
//!   long fails the call before the answer: the caller gets the status
//!   its typed failure maps to ([`LegFailure::caller_status`]), the agent
//!   a CANCEL if it was ringing.
//! - **End.** A call ends once, for one [`EndReason`]: the caller is
//!   refused if not yet answered, the agent hung up on, and the owner asked
//!   to conclude ([`CallAction::Conclude`]), which stores the outcome
//!   *before* anything goes to the caller. The outcome is then delivered
//!   ([`Outcome`]): a BYE with headers, held until the caller's ACK; or a
//!   REFER, likewise held, and a BYE with the headers if the transfer fails
//!   or its NOTIFY never comes.
//!
//! # Layout
//! - `state`: [`CallState`] and its parts, what the call is waiting for.
//! - `action`: [`CallAction`], [`CallInput`], [`Outcome`] and the rest of
//!   the owner's vocabulary.
//! - `call`: [`Call`], the machine.
//! - `transfer`: the third leg (cold and warm transfers) and its rules.

mod action;
mod call;
mod state;
mod transfer;

pub use action::{CallAction, CallInput, EndCause, EndReason, MediaOrder, Outcome, ReferFailure};
pub use call::{Call, CallConfig};
pub use state::{CallState, Delivery, MediaStep, Progress};
pub use transfer::{TransferFailure, TransferMode, TransferPhase, TransferRefused};

pub use trunkline_sip::leg::{FailureKind, LegFailure};

#[cfg(test)]
mod tests;
