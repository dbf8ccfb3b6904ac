//! Non-INVITE client transaction (RFC 3261 §17.1.2): BYE, CANCEL, OPTIONS,
//! REFER, INFO, ... sent by us.
//!
//! ```text
//!  Trying --1xx--> Proceeding --200-699--> Completed --K--> Terminated
//!     \--200-699-------------------------------^
//!  Trying/Proceeding --F (timeout)--> Terminated
//! ```
//! Timer E retransmits the request over unreliable transports: T1, doubling
//! up to T2 while Trying, and every T2 once a provisional arrived. Timer F
//! (64*T1) ends the transaction with [`Event::Timeout`] unless a final
//! response arrived; unlike INVITE, a provisional does not stop it.

use std::collections::VecDeque;
use std::fmt;
use std::time::Instant;

use super::timers::{Backoff, earliest};
use super::{Event, Reliability, State, Timer, Timers, class};

/// A non-INVITE client transaction. ACK is not a transaction and must not
/// be sent through one.
pub struct Client<M> {
    /// Timer values for this transaction.
    timers: Timers,
    /// Decides whether timer E runs and whether timer K waits.
    reliability: Reliability,
    /// Current state.
    state: State,
    /// The request, kept for retransmission.
    request: M,
    /// Request retransmission (unreliable only).
    timer_e: Option<Backoff>,
    /// Transaction timeout.
    timer_f: Option<Instant>,
    /// End of Completed.
    timer_k: Option<Instant>,
    /// Messages waiting for `poll_transmit`.
    transmits: VecDeque<M>,
    /// Events waiting for `poll_event`.
    events: VecDeque<Event<M>>,
}

impl<M: Clone> Client<M> {
    /// Starts the transaction at `now`: the request is queued for sending and
    /// timers E (unreliable only) and F are armed.
    pub fn new(now: Instant, reliability: Reliability, timers: Timers, request: M) -> Self {
        let timer_e = (reliability == Reliability::Unreliable)
            .then(|| Backoff::start(now, timers.t1, Some(timers.t2)));
        Self {
            timers,
            reliability,
            state: State::Trying,
            transmits: VecDeque::from([request.clone()]),
            request,
            timer_e,
            timer_f: Some(now + timers.transaction_timeout()),
            timer_k: None,
            events: VecDeque::new(),
        }
    }

    /// A response matching this transaction arrived. Status codes outside
    /// 100..=699 are ignored, as are responses once Completed
    /// (retransmissions of the final).
    pub fn handle_response(&mut self, now: Instant, status: u16, response: M) {
        let Some(class) = class(status) else { return };
        match (self.state, class) {
            (State::Trying | State::Proceeding, 1) => {
                self.state = State::Proceeding;
                self.events.push_back(Event::Response { status, response });
            }
            (State::Trying | State::Proceeding, _) => {
                self.timer_e = None;
                self.timer_f = None;
                self.state = State::Completed;
                self.events.push_back(Event::Response { status, response });
                let wait = self.timers.timer_k(self.reliability);
                if wait.is_zero() {
                    self.terminate();
                } else {
                    self.timer_k = Some(now + wait);
                }
            }
            _ => {}
        }
    }

    /// Fires every timer due at or before `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((timer, at)) = self.next_timer() {
            if at > now {
                break;
            }
            match timer {
                Timer::E => {
                    self.transmits.push_back(self.request.clone());
                    let proceeding = self.state == State::Proceeding;
                    let t2 = self.timers.t2;
                    if let Some(e) = &mut self.timer_e {
                        // §17.1.2.2: in Proceeding the interval is T2 flat,
                        // the server has told us it is working on it.
                        if proceeding {
                            e.fixed(now, t2);
                        } else {
                            e.double(now);
                        }
                    }
                }
                Timer::F => {
                    self.events.push_back(Event::Timeout(Timer::F));
                    self.terminate();
                }
                _ => self.terminate(),
            }
        }
    }

    /// The transport could not deliver the request: the TU is told and the
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
        self.next_timer().map(|(_, at)| at)
    }

    /// Current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The transport reliability the transaction was created with.
    pub fn reliability(&self) -> Reliability {
        self.reliability
    }

    /// The request this transaction sends.
    pub fn request(&self) -> &M {
        &self.request
    }

    fn next_timer(&self) -> Option<(Timer, Instant)> {
        earliest(&[
            (Timer::F, self.timer_f),
            (Timer::K, self.timer_k),
            (Timer::E, self.timer_e.map(|e| e.at)),
        ])
    }

    fn terminate(&mut self) {
        self.timer_e = None;
        self.timer_f = None;
        self.timer_k = None;
        self.state = State::Terminated;
        self.events.push_back(Event::Terminated);
    }
}

impl<M> fmt::Debug for Client<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("state", &self.state)
            .field("reliability", &self.reliability)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transaction::testing::{Clock, Out, events, sent};

    fn start(clock: &Clock, reliability: Reliability) -> Client<String> {
        Client::new(clock.now, reliability, Timers::default(), "BYE".into())
    }

    fn times(out: &[Out]) -> Vec<u64> {
        sent(out).into_iter().map(|(t, _)| t).collect()
    }

    #[test]
    fn timer_e_doubles_to_t2_then_timer_f_times_out() {
        let mut clock = Clock::new();
        let mut tx = start(&clock, Reliability::Unreliable);
        let out = clock.run(&mut tx, 40_000);
        assert_eq!(
            times(&out),
            [
                0, 500, 1_500, 3_500, 7_500, 11_500, 15_500, 19_500, 23_500, 27_500, 31_500
            ]
        );
        assert_eq!(
            events(&out),
            [
                (32_000, Event::Timeout(Timer::F)),
                (32_000, Event::Terminated)
            ]
        );
    }

    #[test]
    fn timer_e_runs_at_t2_in_proceeding_and_timer_f_still_applies() {
        let mut clock = Clock::new();
        let mut tx = start(&clock, Reliability::Unreliable);
        clock.run(&mut tx, 600);
        // A 100 at 0.6 s: the 1 s interval already armed still runs, then T2.
        tx.handle_response(clock.now, 100, "100".into());
        let out = clock.run(&mut tx, 40_000);
        assert_eq!(
            times(&out),
            [1_500, 5_500, 9_500, 13_500, 17_500, 21_500, 25_500, 29_500]
        );
        assert_eq!(
            events(&out),
            [
                (
                    600,
                    Event::Response {
                        status: 100,
                        response: "100".into()
                    }
                ),
                (32_000, Event::Timeout(Timer::F)),
                (32_000, Event::Terminated),
            ]
        );
    }

    #[test]
    fn reliable_transport_never_retransmits_but_times_out() {
        let mut clock = Clock::new();
        let mut tx = start(&clock, Reliability::Reliable);
        let out = clock.run(&mut tx, 40_000);
        assert_eq!(times(&out), [0]);
        assert_eq!(events(&out)[0], (32_000, Event::Timeout(Timer::F)));
    }

    #[test]
    fn timer_k_absorbs_retransmitted_finals_for_t4_on_udp_only() {
        // (reliability, when the transaction ends after a final at 1 s)
        let cases = [
            (Reliability::Unreliable, Some(6_000)),
            (Reliability::Reliable, None),
        ];
        for (reliability, end) in cases {
            let mut clock = Clock::new();
            let mut tx = start(&clock, reliability);
            clock.run(&mut tx, 1_000);
            tx.handle_response(clock.now, 200, "200".into());
            tx.handle_response(clock.now, 200, "200 again".into());
            let mut out = clock.drain(&mut tx);
            out.extend(clock.run(&mut tx, 60_000));
            let ok = Event::Response {
                status: 200,
                response: "200".into(),
            };
            let terminated_at = end.unwrap_or(1_000);
            assert_eq!(
                out,
                [
                    Out::Event(1_000, ok),
                    Out::Event(terminated_at, Event::Terminated)
                ],
                "{reliability:?}: one 200 passed up, no retransmission after it"
            );
        }
    }

    #[test]
    fn transport_error_is_reported_and_ends_the_transaction() {
        let clock = Clock::new();
        let mut tx = start(&clock, Reliability::Reliable);
        tx.handle_transport_error(clock.now);
        tx.handle_transport_error(clock.now);
        assert_eq!(tx.poll_event(), Some(Event::TransportError));
        assert_eq!(tx.poll_event(), Some(Event::Terminated));
        assert_eq!(tx.poll_event(), None);
        assert_eq!(tx.poll_timeout(), None);
    }
}
