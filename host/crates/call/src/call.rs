//! The machine: a call owns its leg toward Five9 (one that called us, or
//! one we dialled) and its agent's leg, turns what they report into the
//! call's decisions, and queues what the owner must carry out, in the
//! order it must happen.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use trunkline_sip::dialog::Negotiated;
use trunkline_sip::leg::{
    InboundAction, InboundInput, InboundLeg, InboundState, LegFailure, OutboundAction,
    OutboundInput, OutboundLeg, OutboundState, client_key,
};
use trunkline_sip::transaction::TransactionKey;

use crate::action::{
    CallAction, CallInput, EndCause, EndReason, MediaOrder, Outcome, ReferFailure,
};
use crate::state::{CallState, Delivery, MediaStep, Progress};
use crate::transfer::Transfer;

/// How long a call waits, and what it answers the caller with.
#[derive(Debug, Clone)]
pub struct CallConfig {
    /// From the INVITE to the agent's answer (DNS, connectors and the
    /// agent's INVITE included); then the caller gets `480`.
    pub ring_timeout: Duration,
    /// From the answer to the gateway's own hang-up.
    pub max_duration: Duration,
    /// How long a REFER waits for its final NOTIFY before the outcome goes
    /// on a BYE instead.
    pub refer_timeout: Duration,
    /// Our SDP answer to the caller's offer (it depends on that offer
    /// only, so the `183` and the `200` carry the same one).
    pub caller_sdp: Vec<u8>,
    /// The RFC 4028 session timer agreed with the caller, put on our 2xx.
    pub session: Option<Negotiated>,
    /// A call we place: how long the agent may take once the dialled side
    /// answered (`ring_timeout` is then the dialled side's).
    pub agent_timeout: Duration,
}

/// The leg toward Five9 (or whichever peer the trunk is). One per call,
/// inside the call: the variants' sizes differ, the calls' do not (the
/// dialled leg is boxed only to keep `Call` from growing by its size).
#[allow(clippy::large_enum_variant)]
enum Five9Leg {
    /// It called us.
    Inbound(InboundLeg),
    /// We dialled it (a call we place).
    Dialled(Box<OutboundLeg>),
}

/// One call (see the crate docs).
pub struct Call {
    state: CallState,
    config: CallConfig,
    five9: Five9Leg,
    agent: Option<OutboundLeg>,
    /// The dialled side's SDP from an 18x: the answer when its 2xx has
    /// none.
    early_sdp: Option<Vec<u8>>,
    ring_deadline: Instant,
    max_deadline: Option<Instant>,
    /// The agent's first failure before the answer, for the record.
    failure: Option<LegFailure>,
    /// A transfer's leg toward its target, once one started.
    pub(crate) transfer: Option<Transfer>,
    /// A media order of a connected call (a transfer's) the call waits on.
    connected_media: Option<MediaStep>,
    finished: bool,
    actions: VecDeque<CallAction>,
}

impl std::fmt::Debug for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call")
            .field("state", &self.state)
            .field(
                "five9",
                match &self.five9 {
                    Five9Leg::Inbound(l) => l as &dyn std::fmt::Debug,
                    Five9Leg::Dialled(l) => l.as_ref(),
                },
            )
            .field("agent", &self.agent)
            .field("transfer", &self.transfer)
            .finish_non_exhaustive()
    }
}

impl Call {
    /// A call for the caller's leg (its INVITE admitted and routed) at
    /// `now`; the agent is reached next ([`Call::dial_agent`], or
    /// [`CallInput::AgentReady`] for a connector).
    pub fn new(now: Instant, caller: InboundLeg, config: CallConfig) -> Call {
        Call {
            state: CallState::Calling {
                progress: Progress::Quiet,
                media: None,
            },
            ring_deadline: now + config.ring_timeout,
            config,
            five9: Five9Leg::Inbound(caller),
            agent: None,
            early_sdp: None,
            max_deadline: None,
            failure: None,
            transfer: None,
            connected_media: None,
            finished: false,
            actions: VecDeque::new(),
        }
    }

    /// A call we place at `now`: `dialled` is the leg toward the trunk,
    /// its INVITE (with our SDP offer) its first action. Once it answers
    /// and its media is settled, the owner is asked to reach the agent
    /// ([`CallAction::ReachAgent`]).
    pub fn originate(now: Instant, dialled: OutboundLeg, config: CallConfig) -> Call {
        let mut call = Call {
            state: CallState::Dialling {
                progress: Progress::Quiet,
                media: None,
            },
            ring_deadline: now + config.ring_timeout,
            config,
            five9: Five9Leg::Dialled(Box::new(dialled)),
            agent: None,
            early_sdp: None,
            max_deadline: None,
            failure: None,
            transfer: None,
            connected_media: None,
            finished: false,
            actions: VecDeque::new(),
        };
        call.pump(now);
        call
    }

    /// Where the call is.
    pub fn state(&self) -> &CallState {
        &self.state
    }

    /// The leg that called us, on an inbound call.
    pub fn caller(&self) -> Option<&InboundLeg> {
        match &self.five9 {
            Five9Leg::Inbound(l) => Some(l),
            Five9Leg::Dialled(_) => None,
        }
    }

    /// The leg that called us, for in-dialog work the owner does
    /// (re-INVITEs, INFO, session refreshes); the call picks up what it
    /// queues.
    pub fn caller_mut(&mut self) -> Option<&mut InboundLeg> {
        match &mut self.five9 {
            Five9Leg::Inbound(l) => Some(l),
            Five9Leg::Dialled(_) => None,
        }
    }

    /// The leg we dialled, on a call we place.
    pub fn dialled(&self) -> Option<&OutboundLeg> {
        match &self.five9 {
            Five9Leg::Dialled(l) => Some(l.as_ref()),
            Five9Leg::Inbound(_) => None,
        }
    }

    /// The leg we dialled, for in-dialog work the owner does.
    pub fn dialled_mut(&mut self) -> Option<&mut OutboundLeg> {
        match &mut self.five9 {
            Five9Leg::Dialled(l) => Some(l.as_mut()),
            Five9Leg::Inbound(_) => None,
        }
    }

    /// The Five9 side's dialog, whichever way the call went.
    pub fn five9_dialog(&self) -> Option<&trunkline_sip::dialog::Dialog> {
        match &self.five9 {
            Five9Leg::Inbound(l) => l.dialog(),
            Five9Leg::Dialled(l) => l.dialog(),
        }
    }

    /// The Five9 side's dialog, for in-dialog requests the owner builds.
    pub fn five9_dialog_mut(&mut self) -> Option<&mut trunkline_sip::dialog::Dialog> {
        match &mut self.five9 {
            Five9Leg::Inbound(l) => l.dialog_mut(),
            Five9Leg::Dialled(l) => l.dialog_mut(),
        }
    }

    /// The agent's SIP leg, once dialled.
    pub fn agent(&self) -> Option<&OutboundLeg> {
        self.agent.as_ref()
    }

    /// The agent's SIP leg, for in-dialog work the owner does.
    pub fn agent_mut(&mut self) -> Option<&mut OutboundLeg> {
        self.agent.as_mut()
    }

    /// The agent's first failure before the answer, if any.
    pub fn failure(&self) -> Option<LegFailure> {
        self.failure
    }

    /// Keeps `failure` for the record unless an earlier one is kept.
    pub fn note_failure(&mut self, failure: LegFailure) {
        self.failure.get_or_insert(failure);
    }

    /// Whether the caller is still on the line: not refused, cancelled,
    /// hung up or hung up on.
    pub fn caller_up(&self) -> bool {
        match &self.five9 {
            Five9Leg::Inbound(l) => matches!(
                l.state(),
                InboundState::Offered
                    | InboundState::Early
                    | InboundState::AwaitingAck
                    | InboundState::Confirmed
            ),
            Five9Leg::Dialled(l) => l.state().is_pending() || l.state() == OutboundState::Answered,
        }
    }

    /// Whether the caller's leg is answered and on the line.
    pub fn caller_connected(&self) -> bool {
        match &self.five9 {
            Five9Leg::Inbound(l) => matches!(
                l.state(),
                InboundState::AwaitingAck | InboundState::Confirmed
            ),
            Five9Leg::Dialled(l) => l.state() == OutboundState::Answered,
        }
    }

    /// Whether the Five9 side's leg has nothing left to send or wait for.
    fn five9_done(&self) -> bool {
        match &self.five9 {
            Five9Leg::Inbound(l) => l.state() == InboundState::Done,
            Five9Leg::Dialled(l) => l.state() == OutboundState::Done,
        }
    }

    /// Whether the agent's SIP leg still has something to send or wait
    /// for.
    pub fn agent_busy(&self) -> bool {
        self.agent
            .as_ref()
            .is_some_and(|l| l.state() != OutboundState::Done)
    }

    /// The session timer agreed with the caller, if any.
    pub fn session(&self) -> Option<&Negotiated> {
        self.config.session.as_ref()
    }

    /// Whether nothing of the call is left to send or wait for (reported
    /// once as [`CallAction::Finished`]).
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Whether `tx` is our REFER toward the caller.
    pub fn is_refer(&self, tx: &TransactionKey) -> bool {
        matches!(&self.state, CallState::Ending { delivery: Delivery::Referring { tx: t, .. }, .. } if t == tx)
    }

    /// The next thing to carry out, in order.
    pub fn poll_action(&mut self) -> Option<CallAction> {
        self.actions.pop_front()
    }

    /// When [`Call::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let own = match &self.state {
            CallState::Dialling { .. } | CallState::Calling { .. } => Some(self.ring_deadline),
            CallState::Connected { .. } => self.max_deadline,
            CallState::Ending {
                delivery: Delivery::Referring { until, .. },
                ..
            } => Some(*until),
            CallState::Ending { .. } => None,
        };
        let five9 = match &self.five9 {
            Five9Leg::Inbound(l) => l.poll_timeout(),
            Five9Leg::Dialled(l) => l.poll_timeout(),
        };
        [
            own,
            five9,
            self.agent.as_ref().and_then(OutboundLeg::poll_timeout),
            self.transfer.as_ref().and_then(|t| t.leg.poll_timeout()),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Whatever is due at `now`: the legs' timers, the ring timeout, the
    /// longest duration, the REFER's wait.
    pub fn handle_timeout(&mut self, now: Instant) {
        match &mut self.five9 {
            Five9Leg::Inbound(l) if l.poll_timeout().is_some_and(|at| at <= now) => {
                l.handle_timeout(now)
            }
            Five9Leg::Dialled(l) if l.poll_timeout().is_some_and(|at| at <= now) => {
                l.handle_timeout(now)
            }
            _ => {}
        }
        if let Some(agent) = self.agent.as_mut()
            && agent.poll_timeout().is_some_and(|at| at <= now)
        {
            agent.handle_timeout(now);
        }
        if let Some(t) = self.transfer.as_mut()
            && t.leg.poll_timeout().is_some_and(|at| at <= now)
        {
            t.leg.handle_timeout(now);
        }
        self.pump(now);
        match &self.state {
            CallState::Calling { .. } if self.ring_deadline <= now => {
                self.note_failure(LegFailure::ring_timeout());
                self.fail(now, 480, EndCause::RingTimeout);
            }
            CallState::Dialling { .. } if self.ring_deadline <= now => {
                // The dialled leg's own timer is the same length; whichever
                // fires first, the failure is `no-answer`.
                self.note_failure(LegFailure::ring_timeout());
                self.end(now, EndReason::Error, EndCause::DialledFailed);
            }
            CallState::Connected { .. } if self.max_deadline.is_some_and(|at| at <= now) => {
                self.end(now, EndReason::MaxDuration, EndCause::MaxDuration);
            }
            CallState::Ending {
                delivery: Delivery::Referring { until, .. },
                ..
            } if *until <= now => self.finish_refer(Some(ReferFailure::NoNotify)),
            _ => {}
        }
        self.pump(now);
    }

    /// What happened (see [`CallInput`]).
    pub fn handle(&mut self, now: Instant, input: CallInput<'_>) {
        match input {
            CallInput::Caller(input) => self.on_caller_input(now, input),
            CallInput::Agent(input) => {
                let bye = matches!(input, OutboundInput::PeerBye);
                if let Some(agent) = self.agent.as_mut() {
                    agent.handle(now, input);
                }
                if bye {
                    self.pump(now);
                    if !self.agent_left_during_transfer() {
                        self.end(now, EndReason::AgentHangup, EndCause::AgentBye);
                    }
                }
            }
            CallInput::Transfer(input) => {
                let bye = matches!(input, OutboundInput::PeerBye);
                if let Some(t) = self.transfer.as_mut() {
                    t.leg.handle(now, input);
                }
                if bye {
                    self.pump(now);
                    self.on_transfer_bye(now);
                }
            }
            CallInput::Dialled(input) => {
                let bye = matches!(input, OutboundInput::PeerBye);
                if let Some(leg) = self.dialled_mut() {
                    leg.handle(now, input);
                }
                if bye {
                    self.pump(now);
                    self.end(now, EndReason::CallerHangup, EndCause::CallerBye);
                }
            }
            CallInput::AgentReady => {
                if self.state.is_calling() && self.caller_up() && self.awaiting().is_none() {
                    self.order_media(MediaStep::Answer, MediaOrder::Start { agent_sdp: vec![] });
                }
            }
            CallInput::AgentUnreachable { failure, status } => {
                if self.state.is_calling() {
                    self.note_failure(failure);
                    self.fail(now, status, EndCause::AgentFailed);
                }
            }
            CallInput::Media(result) => self.on_media(now, result),
            CallInput::ReferNotified { succeeded } => {
                if matches!(
                    self.state,
                    CallState::Ending {
                        delivery: Delivery::Referring { .. },
                        ..
                    }
                ) {
                    self.finish_refer((!succeeded).then_some(ReferFailure::Failed));
                }
            }
            CallInput::End(reason) => self.end(now, reason, EndCause::Ordered),
            CallInput::AgentLeft => {
                if !self.agent_left_during_transfer() {
                    self.end(now, EndReason::AgentHangup, EndCause::AgentLeft);
                }
            }
        }
        self.pump(now);
    }

    /// The agent's SIP leg, its INVITE ready (its first action): `false`,
    /// and the leg dropped unsent, when the call no longer wants an agent
    /// (the caller left while its address was looked up).
    pub fn dial_agent(&mut self, now: Instant, leg: OutboundLeg) -> bool {
        if !self.state.is_calling() || !self.caller_up() || self.agent_busy() {
            return false;
        }
        self.agent = Some(leg);
        self.pump(now);
        true
    }

    /// The outcome `conclude` gave, after [`CallAction::Conclude`]; it is
    /// delivered to the caller if the caller is still connected.
    pub fn concluded(&mut self, now: Instant, outcome: Outcome) {
        let CallState::Ending {
            reason,
            delivery: Delivery::Concluding,
        } = self.state
        else {
            return;
        };
        let awaiting_ack = self
            .caller()
            .is_some_and(|l| l.state() == InboundState::AwaitingAck);
        let delivery = match outcome {
            _ if !self.caller_connected() => Delivery::Done,
            // Nothing to say, but a connected leg is still hung up.
            Outcome::Nothing => {
                self.hang_up_five9(now, &[]);
                Delivery::Done
            }
            // A leg we dialled is not transferred: its BYE carries the
            // headers.
            Outcome::Bye(headers) | Outcome::Refer { headers, .. } if self.dialled().is_some() => {
                self.hang_up_five9(now, &headers);
                Delivery::Done
            }
            Outcome::Bye(headers) => {
                self.hang_up_five9(now, &headers);
                Delivery::Done
            }
            Outcome::Refer { to, headers } if awaiting_ack => Delivery::HeldForAck {
                refer_to: to,
                headers,
            },
            Outcome::Refer { to, headers } => {
                self.state = CallState::Ending {
                    reason,
                    delivery: Delivery::Done,
                };
                self.send_refer(now, &to, headers);
                self.pump(now);
                return;
            }
        };
        self.state = CallState::Ending { reason, delivery };
        self.pump(now);
    }

    fn on_caller_input(&mut self, now: Instant, input: InboundInput<'_>) {
        // What our REFER got; the caller's leg knows only its BYE.
        match input {
            InboundInput::Response { tx, status } if self.is_refer(tx) => {
                if status >= 300 {
                    self.finish_refer(Some(ReferFailure::Refused(Some(status))));
                }
                return;
            }
            InboundInput::Timeout(tx) | InboundInput::TransportError(tx) if self.is_refer(tx) => {
                self.finish_refer(Some(ReferFailure::Refused(None)));
                return;
            }
            _ => {}
        }
        let Five9Leg::Inbound(caller) = &mut self.five9 else {
            return;
        };
        caller.handle(now, input);
        if matches!(input, InboundInput::PeerBye) {
            if let CallState::Ending { delivery, .. } = &mut self.state {
                // Five9 hung up while our REFER was pending (or held):
                // nothing is left to deliver.
                *delivery = Delivery::Done;
            }
            self.pump(now);
            self.end(now, EndReason::CallerHangup, EndCause::CallerBye);
        }
    }

    /// Moves what the legs queued into the call's queue, deciding on what
    /// they report; stops while a media order is out (its result decides
    /// what comes next).
    pub(crate) fn pump(&mut self, now: Instant) {
        loop {
            if self.awaiting().is_some() {
                return;
            }
            match &mut self.five9 {
                Five9Leg::Inbound(l) => {
                    if let Some(action) = l.poll_action() {
                        self.on_caller_action(now, action);
                        continue;
                    }
                }
                Five9Leg::Dialled(l) => {
                    if let Some(action) = l.poll_action() {
                        self.on_dialled_action(now, action);
                        continue;
                    }
                }
            }
            if let Some(action) = self.agent.as_mut().and_then(OutboundLeg::poll_action) {
                self.on_agent_action(now, action);
                continue;
            }
            if let Some(action) = self.transfer.as_mut().and_then(|t| t.leg.poll_action()) {
                self.on_transfer_action(now, action);
                continue;
            }
            break;
        }
        if !self.finished
            && matches!(
                self.state,
                CallState::Ending {
                    delivery: Delivery::Done,
                    ..
                }
            )
            && self.five9_done()
            && !self.agent_busy()
            && !self.transfer_busy()
        {
            self.finished = true;
            self.actions.push_back(CallAction::Finished);
        }
    }

    fn on_caller_action(&mut self, now: Instant, action: InboundAction) {
        match action {
            InboundAction::Respond { .. }
            | InboundAction::Retransmit(_)
            | InboundAction::StartRequest { .. }
            | InboundAction::DialogUp(_) => self.actions.push_back(CallAction::Caller(action)),
            InboundAction::Acked => self.release_held(now),
            InboundAction::AckTimedOut => {
                // §13.3.1.4: the session is to be ended with a BYE; an
                // outcome held for the ACK goes out now, else the call ends
                // here (and its outcome goes on that BYE).
                self.end(now, EndReason::Error, EndCause::CallerNeverAcked);
                self.release_held(now);
            }
            InboundAction::Cancelled => {
                self.end(now, EndReason::CallerHangup, EndCause::CallerCancelled)
            }
            InboundAction::Rejected(_) | InboundAction::Ended { .. } => {}
            InboundAction::Finished => {}
        }
    }

    /// What the leg we dialled toward the trunk reports.
    fn on_dialled_action(&mut self, now: Instant, action: OutboundAction) {
        match action {
            OutboundAction::StartInvite { .. }
            | OutboundAction::StartRequest { .. }
            | OutboundAction::SendAck(_)
            | OutboundAction::Retransmit(_)
            | OutboundAction::Abandon(_)
            | OutboundAction::Finished => self.actions.push_back(CallAction::Dialled(action)),
            OutboundAction::AckTimedOut => {
                self.end(now, EndReason::Error, EndCause::CallerNeverAcked)
            }
            OutboundAction::Progress { sdp, .. } => {
                if sdp.is_some() {
                    self.early_sdp = sdp;
                    self.set_progress(Progress::EarlyMedia);
                } else if matches!(
                    self.state,
                    CallState::Dialling {
                        progress: Progress::Quiet,
                        ..
                    }
                ) {
                    self.set_progress(Progress::Rang);
                }
            }
            OutboundAction::Answered { dialog, sdp } => {
                self.actions.push_back(CallAction::DialledDialogUp(dialog));
                if !self.state.is_dialling() {
                    // Answered as the call ended: the leg is hung up.
                    self.hang_up_five9(now, &[]);
                    return;
                }
                let sdp = match sdp {
                    sdp if sdp.is_empty() => self.early_sdp.take().unwrap_or_default(),
                    sdp => sdp,
                };
                self.order_media(MediaStep::DialledAnswer, MediaOrder::DialledAnswer { sdp });
            }
            OutboundAction::Failed { failure, detail } => {
                self.actions
                    .push_back(CallAction::DialledFailed { failure, detail });
                self.note_failure(failure);
                self.end(now, EndReason::Error, EndCause::DialledFailed);
            }
            OutboundAction::Cancelled | OutboundAction::Ended { .. } => {}
        }
    }

    fn on_agent_action(&mut self, now: Instant, action: OutboundAction) {
        match action {
            OutboundAction::StartInvite { .. }
            | OutboundAction::StartRequest { .. }
            | OutboundAction::SendAck(_)
            | OutboundAction::Retransmit(_)
            | OutboundAction::Abandon(_)
            | OutboundAction::Finished => self.actions.push_back(CallAction::Agent(action)),
            OutboundAction::AckTimedOut => {
                self.end(now, EndReason::Error, EndCause::AgentNeverAcked)
            }
            OutboundAction::Progress { sdp, .. } => self.on_agent_progress(sdp),
            OutboundAction::Answered { dialog, sdp } => {
                self.actions.push_back(CallAction::AgentDialogUp(dialog));
                self.on_agent_answer(now, sdp);
            }
            OutboundAction::Failed { failure, detail } => {
                self.actions
                    .push_back(CallAction::AgentFailed { failure, detail });
                self.note_failure(failure);
                let status = match failure.status {
                    // A 2xx we could not take (no Contact): toward the
                    // caller, a bad gateway.
                    Some(200..=299) => 502,
                    _ => failure.caller_status(),
                };
                self.fail(now, status, EndCause::AgentFailed);
            }
            OutboundAction::Cancelled | OutboundAction::Ended { .. } => {}
        }
    }

    /// A 101–199 from the agent (see the crate docs, "Ringing").
    fn on_agent_progress(&mut self, sdp: Option<Vec<u8>>) {
        let CallState::Calling { progress, .. } = self.state else {
            return;
        };
        if !self.caller_up() || self.dialled().is_some() {
            // (A dialled side is answered already: nothing to ring.)
            return;
        }
        match (progress, sdp) {
            (Progress::EarlyMedia, Some(agent_sdp)) => {
                self.order_media(MediaStep::EarlyUpdate, MediaOrder::Update { agent_sdp })
            }
            (Progress::EarlyMedia, None) | (Progress::Rang, None) => {}
            (_, Some(agent_sdp)) => {
                self.order_media(MediaStep::Early, MediaOrder::Start { agent_sdp })
            }
            (Progress::Quiet, None) => self.ring(),
        }
    }

    fn on_agent_answer(&mut self, now: Instant, sdp: Vec<u8>) {
        let CallState::Calling { progress, .. } = self.state else {
            // The call ended while the agent was answering.
            self.hang_up_agent(now);
            return;
        };
        if !self.caller_up() {
            self.hang_up_agent(now);
            return;
        }
        let order = match (progress, sdp.is_empty()) {
            // Early media runs already: the 2xx's SDP matters only if it
            // changes the 18x's (none at all keeps it).
            (Progress::EarlyMedia, true) => None,
            (Progress::EarlyMedia, false) => Some(MediaOrder::Update { agent_sdp: sdp }),
            (_, _) => Some(MediaOrder::Start { agent_sdp: sdp }),
        };
        match order {
            Some(order) => self.order_media(MediaStep::Answer, order),
            None => self.answer_caller(now),
        }
    }

    fn on_media(&mut self, now: Instant, result: Result<(), u16>) {
        let Some(step) = self.awaiting() else {
            return;
        };
        self.set_awaiting(None);
        match (step, result) {
            (MediaStep::Early, Ok(())) => {
                self.set_progress(Progress::EarlyMedia);
                let sdp = self.config.caller_sdp.clone();
                if let Some(caller) = self.caller_mut() {
                    let _ = caller.progress(183, Some(&sdp));
                }
            }
            (MediaStep::Early, Err(_)) => {
                // The 18x's SDP cannot be used: the caller rings, and the
                // call waits for the 2xx's SDP.
                if matches!(
                    self.state,
                    CallState::Calling {
                        progress: Progress::Quiet,
                        ..
                    }
                ) {
                    self.ring();
                }
            }
            (MediaStep::EarlyUpdate, _) => {}
            (MediaStep::Answer, Ok(())) => self.answer_caller(now),
            (MediaStep::Answer, Err(status)) => {
                self.hang_up_agent(now);
                self.fail(now, status, EndCause::MediaFailed(status));
            }
            (MediaStep::DialledAnswer, Ok(())) => {
                self.state = CallState::Calling {
                    progress: Progress::Quiet,
                    media: None,
                };
                self.ring_deadline = now + self.config.agent_timeout;
                self.actions.push_back(CallAction::ReachAgent);
            }
            (MediaStep::DialledAnswer, Err(status)) => {
                self.end(now, EndReason::Error, EndCause::MediaFailed(status));
            }
            (MediaStep::Bridge | MediaStep::Brief | MediaStep::Unbrief, result) => {
                self.on_transfer_media(now, step, result)
            }
        }
    }

    fn answer_caller(&mut self, now: Instant) {
        if !self.state.is_calling() || !self.caller_up() {
            self.hang_up_agent(now);
            return;
        }
        let sdp = self.config.caller_sdp.clone();
        let session = self.config.session;
        let answered = match &mut self.five9 {
            Five9Leg::Inbound(caller) => caller.answer(now, &sdp, session.as_ref()).is_ok(),
            // The dialled side answered before the agent was reached.
            Five9Leg::Dialled(_) => true,
        };
        if !answered {
            self.hang_up_agent(now);
            self.fail(now, 500, EndCause::AnswerFailed);
            return;
        }
        self.state = CallState::Connected { since: now };
        self.max_deadline = Some(now + self.config.max_duration);
        // The 2xx first, then the news.
        self.pump(now);
        self.actions.push_back(CallAction::Connected);
    }

    fn ring(&mut self) {
        self.set_progress(Progress::Rang);
        if let Some(caller) = self.caller_mut() {
            let _ = caller.progress(180, None);
        }
    }

    /// The agent failed before the answer: the caller gets `status`.
    fn fail(&mut self, now: Instant, status: u16, cause: EndCause) {
        if self.state.is_calling()
            && let Some(caller) = self.caller_mut()
        {
            let _ = caller.reject(status, &[]);
        }
        self.end(now, EndReason::Error, cause);
    }

    /// Ends the call for `reason`; nothing when it has ended already.
    pub(crate) fn end(&mut self, now: Instant, reason: EndReason, cause: EndCause) {
        if self.state.is_ending() {
            return;
        }
        if self.state.is_calling()
            && let Some(caller) = self.caller_mut()
        {
            // Ended before an answer (max duration, control API,
            // shutdown): the caller is refused.
            let status = if reason == EndReason::Error { 503 } else { 480 };
            let _ = caller.reject(status, &[]);
        }
        if self.state.is_dialling() {
            // Not answered yet: CANCEL (once a provisional allows it).
            self.hang_up_five9(now, &[]);
        }
        self.hang_up_agent(now);
        self.hang_up_transfer(now);
        self.connected_media = None;
        self.state = CallState::Ending {
            reason,
            delivery: Delivery::Concluding,
        };
        self.pump(now);
        let caller_connected = self.caller_connected();
        self.actions.push_back(CallAction::Conclude {
            reason,
            cause,
            caller_connected,
        });
    }

    /// The Five9 side's BYE with `headers` (held until the ACK on a leg
    /// that called us); a CANCEL on a leg we dialled that has not answered.
    fn hang_up_five9(&mut self, now: Instant, headers: &[(String, String)]) {
        let headers = pairs(headers);
        match &mut self.five9 {
            Five9Leg::Inbound(l) => l.hang_up(&headers),
            Five9Leg::Dialled(l) => l.handle(now, OutboundInput::HangUp(&headers)),
        }
    }

    /// CANCEL before the agent's answer, BYE after; nothing once it is
    /// gone.
    pub(crate) fn hang_up_agent(&mut self, now: Instant) {
        if let Some(agent) = self.agent.as_mut() {
            agent.handle(now, OutboundInput::HangUp(&[]));
        }
    }

    /// The caller ACKed our 2xx (or we gave up waiting): a REFER held for
    /// the ACK goes out now.
    fn release_held(&mut self, now: Instant) {
        let CallState::Ending {
            reason,
            delivery: Delivery::HeldForAck { .. },
        } = self.state
        else {
            return;
        };
        let held = std::mem::replace(
            &mut self.state,
            CallState::Ending {
                reason,
                delivery: Delivery::Done,
            },
        );
        if let CallState::Ending {
            delivery: Delivery::HeldForAck { refer_to, headers },
            ..
        } = held
        {
            self.send_refer(now, &refer_to, headers);
        }
    }

    /// Our REFER to `to` (the state is `Ending`); a BYE with `headers` if
    /// it cannot be built.
    fn send_refer(&mut self, now: Instant, to: &str, headers: Vec<(String, String)>) {
        let CallState::Ending { reason, .. } = self.state else {
            return;
        };
        let refer = self
            .caller_mut()
            .and_then(InboundLeg::dialog_mut)
            .and_then(|d| d.refer(to, None, &pairs(&headers)).ok());
        let Some((tx, refer)) = refer.and_then(|r| Some((client_key(&r)?, r))) else {
            self.actions
                .push_back(CallAction::ReferFailed(ReferFailure::NotBuilt));
            self.hang_up_five9(now, &headers);
            return;
        };
        self.actions
            .push_back(CallAction::Caller(InboundAction::StartRequest {
                tx: tx.clone(),
                request: refer,
            }));
        self.state = CallState::Ending {
            reason,
            delivery: Delivery::Referring {
                tx,
                headers,
                until: now + self.config.refer_timeout,
            },
        };
    }

    /// The REFER is over: a plain BYE after a transfer, or the BYE with the
    /// outcome's headers when it failed.
    fn finish_refer(&mut self, failed: Option<ReferFailure>) {
        let CallState::Ending {
            reason,
            delivery: Delivery::Referring { .. },
        } = self.state
        else {
            return;
        };
        let CallState::Ending {
            delivery: Delivery::Referring { headers, .. },
            ..
        } = std::mem::replace(
            &mut self.state,
            CallState::Ending {
                reason,
                delivery: Delivery::Done,
            },
        )
        else {
            return;
        };
        let headers = match failed {
            Some(why) => {
                self.actions.push_back(CallAction::ReferFailed(why));
                headers
            }
            None => Vec::new(),
        };
        if let Some(caller) = self.caller_mut() {
            caller.hang_up(&pairs(&headers));
        }
    }

    fn order_media(&mut self, step: MediaStep, order: MediaOrder) {
        self.set_awaiting(Some(step));
        self.actions.push_back(CallAction::Media(order));
    }

    /// A media order of a connected call (a transfer's).
    pub(crate) fn order_connected_media(&mut self, step: MediaStep, order: MediaOrder) {
        self.connected_media = Some(step);
        self.actions.push_back(CallAction::Media(order));
    }

    /// Queues `action` for the owner.
    pub(crate) fn push(&mut self, action: CallAction) {
        self.actions.push_back(action);
    }

    fn awaiting(&self) -> Option<MediaStep> {
        match self.state {
            CallState::Calling { media, .. } | CallState::Dialling { media, .. } => media,
            CallState::Connected { .. } => self.connected_media,
            CallState::Ending { .. } => None,
        }
    }

    fn set_awaiting(&mut self, step: Option<MediaStep>) {
        match &mut self.state {
            CallState::Calling { media, .. } | CallState::Dialling { media, .. } => *media = step,
            _ => self.connected_media = step,
        }
    }

    fn set_progress(&mut self, to: Progress) {
        if let CallState::Calling { progress, .. } | CallState::Dialling { progress, .. } =
            &mut self.state
        {
            *progress = to;
        }
    }
}

fn pairs(headers: &[(String, String)]) -> Vec<(&str, &str)> {
    headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect()
}
