//! Non-INVITE server transaction (RFC 3261 §17.2.2): BYE, CANCEL, OPTIONS,
//! REFER, INFO, ... received by us.
//!
//! ```text
//!  Trying --1xx from TU--> Proceeding --200-699 from TU--> Completed --J--> Terminated
//!     \--200-699 from TU------------------------------------^
//! ```
//! The server never retransmits on its own: the client's timer E does that,
//! and each retransmitted request is answered with the last response
//! (nothing while Trying: the TU has not said anything yet). Timer J keeps
//! the final response around for 64*T1 over UDP so that the retransmissions
//! of a slow peer still get it; over reliable transports it is zero.

use std::collections::VecDeque;
use std::fmt;
use std::time::Instant;

use super::{Event, Reliability, ResponseError, State, Timers, class};

/// A non-INVITE server transaction.
pub struct Server<M> {
    /// Timer values for this transaction.
    timers: Timers,
    /// Decides how long timer J waits.
    reliability: Reliability,
    /// Current state.
    state: State,
    /// The response a retransmitted request gets.
    last: Option<M>,
    /// End of Completed.
    timer_j: Option<Instant>,
    /// Messages waiting for `poll_transmit`.
    transmits: VecDeque<M>,
    /// Events waiting for `poll_event`.
    events: VecDeque<Event<M>>,
}

impl<M: Clone> Server<M> {
    /// Creates the transaction for a request received at `now`. The request
    /// itself goes from the owner to the TU, not through here.
    pub fn new(_now: Instant, reliability: Reliability, timers: Timers) -> Self {
        Self {
            timers,
            reliability,
            state: State::Trying,
            last: None,
            timer_j: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// The request was received again: answer with the last response, if
    /// the TU gave one.
    pub fn handle_request(&mut self, _now: Instant) {
        if let (State::Proceeding | State::Completed, Some(last)) = (self.state, &self.last) {
            self.transmits.push_back(last.clone());
        }
    }

    /// The TU responds. Once a final response went out, further responses
    /// are discarded (§17.2.2).
    pub fn send_response(
        &mut self,
        now: Instant,
        status: u16,
        response: M,
    ) -> Result<(), ResponseError> {
        let class = class(status).ok_or(ResponseError::InvalidStatus(status))?;
        if !matches!(self.state, State::Trying | State::Proceeding) {
            return Err(ResponseError::Discarded(self.state));
        }
        self.transmits.push_back(response.clone());
        self.last = Some(response);
        if class == 1 {
            self.state = State::Proceeding;
            return Ok(());
        }
        self.state = State::Completed;
        let wait = self.timers.timer_j(self.reliability);
        if wait.is_zero() {
            self.terminate();
        } else {
            self.timer_j = Some(now + wait);
        }
        Ok(())
    }

    /// Fires timer J if it is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.timer_j.is_some_and(|j| j <= now) {
            self.terminate();
        }
    }

    /// The transport could not deliver a response: the TU is told and the
    /// transaction ends.
    pub fn handle_transport_error(&mut self, _now: Instant) {
        if self.state != State::Terminated {
            self.events.push_back(Event::TransportError);
            self.terminate();
        }
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<M> {
        self.transmits.pop_front()
    }

    /// The next event for the TU.
    pub fn poll_event(&mut self) -> Option<Event<M>> {
        self.events.pop_front()
    }

    /// When `handle_timeout` must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timer_j
    }

    /// Current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The transport reliability the transaction was created with.
    pub fn reliability(&self) -> Reliability {
        self.reliability
    }

    fn terminate(&mut self) {
        self.timer_j = None;
        self.state = State::Terminated;
        self.events.push_back(Event::Terminated);
    }
}

impl<M> fmt::Debug for Server<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("state", &self.state)
            .field("reliability", &self.reliability)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transaction::testing::{Clock, Out};

    fn start(clock: &Clock, reliability: Reliability) -> Server<String> {
        Server::new(clock.now, reliability, Timers::default())
    }

    #[test]
    fn retransmitted_request_gets_the_last_response() {
        let mut clock = Clock::new();
        let mut tx = start(&clock, Reliability::Unreliable);
        // (TU response to send first, if any; what a retransmission then gets)
        let steps: [(Option<u16>, Option<&str>); 4] = [
            (None, None),
            (Some(100), Some("100")),
            (Some(200), Some("200")),
            (None, Some("200")),
        ];
        for (i, (respond, resend)) in steps.into_iter().enumerate() {
            if let Some(status) = respond {
                tx.send_response(clock.now, status, status.to_string())
                    .expect("accepted");
                clock.drain(&mut tx);
            }
            tx.handle_request(clock.now);
            let want: Vec<Out> = resend
                .map(|m| Out::Sent(clock.ms(), m.into()))
                .into_iter()
                .collect();
            assert_eq!(clock.drain(&mut tx), want, "step {i}");
            clock.run(&mut tx, clock.ms() + 1_000);
        }
    }

    #[test]
    fn timer_j_is_64_t1_on_udp_and_zero_on_reliable() {
        // (reliability, ms at which the transaction ends after a 200 at 1 s)
        let cases = [
            (Reliability::Unreliable, 33_000),
            (Reliability::Reliable, 1_000),
        ];
        for (reliability, end) in cases {
            let mut clock = Clock::new();
            let mut tx = start(&clock, reliability);
            clock.run(&mut tx, 1_000);
            tx.send_response(clock.now, 200, "200".into())
                .expect("accepted");
            let out = clock.run(&mut tx, 60_000);
            assert_eq!(
                out,
                [
                    Out::Sent(1_000, "200".into()),
                    Out::Event(end, Event::Terminated)
                ],
                "{reliability:?}"
            );
        }
    }

    #[test]
    fn responses_after_the_final_are_discarded() {
        let clock = Clock::new();
        let mut tx = start(&clock, Reliability::Unreliable);
        let cases = [
            (99, Err(ResponseError::InvalidStatus(99))),
            (180, Ok(())),
            (481, Ok(())),
            (200, Err(ResponseError::Discarded(State::Completed))),
        ];
        for (status, want) in cases {
            assert_eq!(tx.send_response(clock.now, status, "x".into()), want);
        }
    }

    #[test]
    fn transport_error_is_reported_and_ends_the_transaction() {
        let clock = Clock::new();
        let mut tx = start(&clock, Reliability::Reliable);
        tx.send_response(clock.now, 100, "100".into())
            .expect("accepted");
        tx.handle_transport_error(clock.now);
        assert_eq!(tx.state(), State::Terminated);
        assert_eq!(tx.poll_transmit(), Some("100".into()));
        assert_eq!(tx.poll_event(), Some(Event::TransportError));
        assert_eq!(tx.poll_event(), Some(Event::Terminated));
    }
}
