//! A third leg: the agent hands the caller to a number it has us dial
//! (a Five9 inbound number, a human), cold or warm.
//!
//! # The rules
//! - A transfer starts only on a connected call with no other transfer
//!   under way ([`TransferRefused`]).
//! - **Cold.** The target is dialled while the caller stays with the
//!   agent. On its answer the caller is bridged to it
//!   ([`MediaOrder::Bridge`]), then the agent's leg ends (a SIP agent
//!   gets a BYE; a connector is told by [`CallAction::Transferred`]). An
//!   agent that leaves while the target rings does not end the call: the
//!   caller waits for the target, and the call ends only if it fails.
//! - **Warm.** On the target's answer the agent talks to it and the caller
//!   hears hold audio ([`MediaOrder::Brief`]); [`Call::complete_transfer`]
//!   (or the agent hanging up) bridges caller and target
//!   ([`MediaOrder::Complete`]) and lets the agent go; [`Call::cancel_transfer`]
//!   (or the target hanging up) drops the target and returns the caller to
//!   the agent ([`MediaOrder::Unbrief`]). Cancelling while the target still
//!   rings, in either mode, CANCELs it.
//! - **Failure.** A target that is busy, does not answer, refuses or
//!   cannot be reached, or whose media cannot be used, leaves the caller
//!   with the agent; the owner is told ([`CallAction::TransferFailed`]),
//!   to tell the agent.
//! - **Bridged.** Caller and target stay until either hangs up; each end
//!   ends the other (the target's BYE ends the call as the agent's would),
//!   and the longest duration still applies.

use std::time::Instant;

use trunkline_sip::leg::{LegFailure, OutboundAction, OutboundInput, OutboundLeg, OutboundState};

use crate::action::{CallAction, EndCause, EndReason, MediaOrder};
use crate::call::Call;
use crate::state::{CallState, MediaStep, Progress};

/// How the agent leaves a transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferMode {
    /// Connect the caller to the target on its answer, and leave.
    Cold,
    /// Talk to the target first (the caller on hold), then complete or
    /// cancel.
    Warm,
}

impl TransferMode {
    /// `cold` or `warm`.
    pub fn as_str(self) -> &'static str {
        match self {
            TransferMode::Cold => "cold",
            TransferMode::Warm => "warm",
        }
    }
}

/// Where a transfer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferPhase {
    /// The target is being dialled; `progress` is what it sent (its 18x).
    Dialling {
        /// Quiet, rang or early media.
        progress: Progress,
    },
    /// Warm: the agent and the target talk; the caller hears hold audio.
    Briefing,
    /// The caller and the target talk; the agent is gone.
    Bridged,
    /// It failed or was cancelled; the target's leg is finishing.
    Over,
}

/// Why a transfer cannot start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TransferRefused {
    /// The caller is not answered yet.
    #[error("the call is not answered yet")]
    NotConnected,
    /// The call is ending.
    #[error("the call is already ending")]
    Ending,
    /// Another transfer is under way, or the caller was transferred
    /// already.
    #[error("a transfer is already under way on this call")]
    InProgress,
    /// `complete` without a warm transfer in its brief, `cancel` without
    /// a transfer to cancel.
    #[error("no transfer is waiting to be completed or cancelled")]
    NotBriefing,
}

/// Why a transfer left the caller with the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferFailure {
    /// The target's leg failed before its answer (busy, no-answer,
    /// rejected, auth-failed, unreachable), with its status.
    Leg(LegFailure),
    /// The target's SDP could not be used (the status the relay gave).
    Media(u16),
    /// Warm: the target hung up during the brief.
    TargetHungUp,
    /// Warm: the agent cancelled it.
    Cancelled,
}

impl TransferFailure {
    /// The kind, as the agent and the record see it.
    pub fn kind(&self) -> &'static str {
        match self {
            TransferFailure::Leg(f) => f.kind.as_str(),
            TransferFailure::Media(_) => "media",
            TransferFailure::TargetHungUp => "target-hangup",
            TransferFailure::Cancelled => "cancelled",
        }
    }

    /// The SIP status that failed it, if one did.
    pub fn status(&self) -> Option<u16> {
        match self {
            TransferFailure::Leg(f) => f.status,
            TransferFailure::Media(s) => Some(*s),
            TransferFailure::TargetHungUp | TransferFailure::Cancelled => None,
        }
    }
}

impl std::fmt::Display for TransferFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status() {
            Some(s) => write!(f, "{} ({s})", self.kind()),
            None => f.write_str(self.kind()),
        }
    }
}

/// The transfer leg and what it is for.
#[derive(Debug)]
pub(crate) struct Transfer {
    pub(crate) leg: OutboundLeg,
    pub(crate) mode: TransferMode,
    pub(crate) phase: TransferPhase,
    /// The agent hung up while the target was dialled (cold).
    pub(crate) agent_left: bool,
}

impl Call {
    /// Whether a transfer may start now.
    pub fn can_transfer(&self) -> Result<(), TransferRefused> {
        match self.state() {
            CallState::Ending { .. } => return Err(TransferRefused::Ending),
            CallState::Connected { .. } => {}
            _ => return Err(TransferRefused::NotConnected),
        }
        match &self.transfer {
            None => Ok(()),
            Some(t) if t.phase == TransferPhase::Over && t.leg.state() == OutboundState::Done => {
                Ok(())
            }
            Some(_) => Err(TransferRefused::InProgress),
        }
    }

    /// Starts a transfer at `now` on `leg`, the target's leg (its INVITE,
    /// with our offer, its first action).
    pub fn transfer(
        &mut self,
        now: Instant,
        leg: OutboundLeg,
        mode: TransferMode,
    ) -> Result<(), TransferRefused> {
        self.can_transfer()?;
        self.transfer = Some(Transfer {
            leg,
            mode,
            phase: TransferPhase::Dialling {
                progress: Progress::Quiet,
            },
            agent_left: false,
        });
        self.pump(now);
        Ok(())
    }

    /// Warm: bridges the caller and the target, and lets the agent go.
    pub fn complete_transfer(&mut self, now: Instant) -> Result<(), TransferRefused> {
        if self.transfer_phase() != Some(TransferPhase::Briefing) || self.state().is_ending() {
            return Err(TransferRefused::NotBriefing);
        }
        self.order_connected_media(MediaStep::Bridge, MediaOrder::Complete);
        self.pump(now);
        Ok(())
    }

    /// Drops the target (a CANCEL while it rings, a BYE in a warm brief)
    /// and leaves, or returns, the caller with the agent.
    pub fn cancel_transfer(&mut self, now: Instant) -> Result<(), TransferRefused> {
        if self.state().is_ending() {
            return Err(TransferRefused::NotBriefing);
        }
        match self.transfer_phase() {
            Some(TransferPhase::Briefing) => self.unbrief(now, TransferFailure::Cancelled),
            Some(TransferPhase::Dialling { .. }) => {
                self.set_transfer_phase(TransferPhase::Over);
                self.hang_up_transfer(now);
                self.push(CallAction::TransferFailed {
                    why: TransferFailure::Cancelled,
                    detail: None,
                });
                self.after_failure(now);
            }
            _ => return Err(TransferRefused::NotBriefing),
        }
        self.pump(now);
        Ok(())
    }

    /// Where the transfer is, if one started.
    pub fn transfer_phase(&self) -> Option<TransferPhase> {
        self.transfer.as_ref().map(|t| t.phase)
    }

    /// The transfer's mode, if one started.
    pub fn transfer_mode(&self) -> Option<TransferMode> {
        self.transfer.as_ref().map(|t| t.mode)
    }

    /// The target's leg, once dialled.
    pub fn transfer_leg(&self) -> Option<&OutboundLeg> {
        self.transfer.as_ref().map(|t| &t.leg)
    }

    /// The target's leg, for in-dialog work the owner does.
    pub fn transfer_leg_mut(&mut self) -> Option<&mut OutboundLeg> {
        self.transfer.as_mut().map(|t| &mut t.leg)
    }

    /// Whether the caller talks to the target now (the agent is gone).
    pub fn transferred(&self) -> bool {
        self.transfer_phase() == Some(TransferPhase::Bridged)
    }

    /// Whether the target's leg still has something to send or wait for.
    pub(crate) fn transfer_busy(&self) -> bool {
        self.transfer
            .as_ref()
            .is_some_and(|t| t.leg.state() != OutboundState::Done)
    }

    /// The target's leg reported `action`.
    pub(crate) fn on_transfer_action(&mut self, now: Instant, action: OutboundAction) {
        match action {
            OutboundAction::StartInvite { .. }
            | OutboundAction::StartRequest { .. }
            | OutboundAction::SendAck(_)
            | OutboundAction::Retransmit(_)
            | OutboundAction::Abandon(_)
            | OutboundAction::Finished => self.push(CallAction::Transfer(action)),
            OutboundAction::AckTimedOut => {
                // The target never ACKed our 2xx to its re-INVITE.
                if self.transferred() {
                    self.end(now, EndReason::Error, EndCause::TargetNeverAcked);
                }
            }
            OutboundAction::Progress { sdp, .. } => {
                if let Some(Transfer {
                    phase: TransferPhase::Dialling { progress },
                    ..
                }) = &mut self.transfer
                {
                    *progress = match (sdp.is_some(), *progress) {
                        (true, _) => Progress::EarlyMedia,
                        (false, Progress::Quiet) => Progress::Rang,
                        (false, p) => p,
                    };
                }
            }
            OutboundAction::Answered { dialog, sdp } => {
                self.push(CallAction::TransferDialogUp(dialog));
                let dialling =
                    matches!(self.transfer_phase(), Some(TransferPhase::Dialling { .. }));
                if !dialling || self.state().is_ending() {
                    // Answered as the call ended or the transfer was given
                    // up: the target is hung up.
                    self.hang_up_transfer(now);
                    return;
                }
                // A warm transfer whose agent left while it rang has nobody
                // to brief: it is bridged at once.
                let warm = self
                    .transfer
                    .as_ref()
                    .is_some_and(|t| t.mode == TransferMode::Warm && !t.agent_left);
                if warm {
                    self.order_connected_media(MediaStep::Brief, MediaOrder::Brief { sdp });
                } else {
                    self.order_connected_media(MediaStep::Bridge, MediaOrder::Bridge { sdp });
                }
            }
            OutboundAction::Failed { failure, detail } => {
                self.set_transfer_phase(TransferPhase::Over);
                self.push(CallAction::TransferFailed {
                    why: TransferFailure::Leg(failure),
                    detail,
                });
                self.after_failure(now);
            }
            OutboundAction::Cancelled | OutboundAction::Ended { .. } => {}
        }
    }

    /// The target sent BYE.
    pub(crate) fn on_transfer_bye(&mut self, now: Instant) {
        match self.transfer_phase() {
            Some(TransferPhase::Bridged) => {
                self.end(now, EndReason::AgentHangup, EndCause::TargetBye)
            }
            Some(TransferPhase::Briefing) => self.unbrief(now, TransferFailure::TargetHungUp),
            _ => {}
        }
    }

    /// The agent sent BYE: `true` when the call goes on without it (a
    /// transfer will decide).
    pub(crate) fn agent_left_during_transfer(&mut self) -> bool {
        let Some(t) = self.transfer.as_mut() else {
            return false;
        };
        match t.phase {
            TransferPhase::Dialling { .. } => {
                t.agent_left = true;
                true
            }
            // The agent hung up on the brief: that completes it.
            TransferPhase::Briefing => {
                t.agent_left = true;
                self.order_connected_media(MediaStep::Bridge, MediaOrder::Complete);
                true
            }
            // Gone already (our BYE and its crossed).
            TransferPhase::Bridged => true,
            TransferPhase::Over => false,
        }
    }

    /// The owner carried out a transfer's media order.
    pub(crate) fn on_transfer_media(&mut self, now: Instant, step: MediaStep, ok: Result<(), u16>) {
        match (step, ok) {
            (MediaStep::Bridge, Ok(())) => {
                self.set_transfer_phase(TransferPhase::Bridged);
                self.hang_up_agent(now);
                self.push(CallAction::Transferred);
            }
            (MediaStep::Bridge | MediaStep::Brief, Err(status)) => {
                let was_briefing = self.transfer_phase() == Some(TransferPhase::Briefing);
                self.set_transfer_phase(TransferPhase::Over);
                self.hang_up_transfer(now);
                self.push(CallAction::TransferFailed {
                    why: TransferFailure::Media(status),
                    detail: None,
                });
                if self.transfer.as_ref().is_some_and(|t| t.agent_left) {
                    // Nobody is left for the caller.
                    self.end(now, EndReason::AgentHangup, EndCause::TransferFailed);
                } else if was_briefing || step == MediaStep::Brief {
                    // The agent may have heard the target: back to it.
                    self.order_connected_media(MediaStep::Unbrief, MediaOrder::Unbrief);
                }
            }
            (MediaStep::Brief, Ok(())) => self.set_transfer_phase(TransferPhase::Briefing),
            _ => {}
        }
    }

    /// Warm: the target goes, the caller returns to the agent.
    fn unbrief(&mut self, now: Instant, why: TransferFailure) {
        self.set_transfer_phase(TransferPhase::Over);
        self.hang_up_transfer(now);
        // The BYE leaves before the media order (which pauses the queue).
        self.pump(now);
        self.push(CallAction::TransferFailed { why, detail: None });
        self.order_connected_media(MediaStep::Unbrief, MediaOrder::Unbrief);
    }

    /// A failed transfer whose agent left meanwhile ends the call.
    fn after_failure(&mut self, now: Instant) {
        if self.transfer.as_ref().is_some_and(|t| t.agent_left) {
            self.end(now, EndReason::AgentHangup, EndCause::TransferFailed);
        }
    }

    /// CANCEL before the target's answer, BYE after; nothing once gone.
    pub(crate) fn hang_up_transfer(&mut self, now: Instant) {
        if let Some(t) = self.transfer.as_mut() {
            t.leg.handle(now, OutboundInput::HangUp(&[]));
        }
    }

    fn set_transfer_phase(&mut self, phase: TransferPhase) {
        if let Some(t) = self.transfer.as_mut() {
            t.phase = phase;
        }
    }
}
