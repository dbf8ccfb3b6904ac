//! INVITE client transaction (RFC 3261 §17.1.1, RFC 6026 §8.4).
//!
//! ```text
//!  Calling --1xx--> Proceeding --300-699 (send ACK)--> Completed --D--> Terminated
//!     |  \______________________________________________/^
//!     |               \--2xx--> Accepted --M--> Terminated
//!     +--B (timeout)--> Terminated
//! ```
//! Timer A retransmits the INVITE over unreliable transports (T1, doubling,
//! no cap) until a response arrives; timer B (64*T1) ends the transaction
//! with [`Event::Timeout`] if no response at all arrived. The ACK for a
//! non-2xx final is sent by this machine (built by the owner's
//! [`AckBuilder`]) and re-sent for each retransmission of that final. A 2xx
//! is the dialog's: it is passed up, every retransmission too, and the ACK
//! for it is never sent from here.

use std::collections::VecDeque;
use std::fmt;
use std::time::Instant;

use super::timers::{Backoff, earliest};
use super::{Event, Reliability, State, Timer, Timers, class};

/// Builds the ACK for a non-2xx final response from `(invite, response)`
/// (§17.1.1.3: the INVITE's Request-URI, Call-ID, From, CSeq number, top Via
/// and Route set; the response's To, tag included; CSeq method ACK).
pub type AckBuilder<M> = Box<dyn FnMut(&M, &M) -> M + Send>;

/// An INVITE client transaction.
pub struct ClientInvite<M> {
    /// Timer values for this transaction.
    timers: Timers,
    /// Decides whether timer A runs and whether timer D waits.
    reliability: Reliability,
    /// Current state.
    state: State,
    /// The INVITE, kept for retransmission and for building the ACK.
    invite: M,
    /// Builds the ACK for a non-2xx final.
    build_ack: AckBuilder<M>,
    /// The ACK sent for the non-2xx final, re-sent for its retransmissions.
    ack: Option<M>,
    /// INVITE retransmission (Calling, unreliable only).
    timer_a: Option<Backoff>,
    /// Calling timeout.
    timer_b: Option<Instant>,
    /// End of Completed.
    timer_d: Option<Instant>,
    /// End of Accepted.
    timer_m: Option<Instant>,
    /// Messages waiting for `poll_transmit`.
    transmits: VecDeque<M>,
    /// Events waiting for `poll_event`.
    events: VecDeque<Event<M>>,
}

impl<M: Clone> ClientInvite<M> {
    /// Starts the transaction at `now`: the INVITE is queued for sending and
    /// timers A (unreliable only) and B are armed.
    pub fn new(
        now: Instant,
        reliability: Reliability,
        timers: Timers,
        invite: M,
        build_ack: AckBuilder<M>,
    ) -> Self {
        let timer_a =
            (reliability == Reliability::Unreliable).then(|| Backoff::start(now, timers.t1, None));
        Self {
            timers,
            reliability,
            state: State::Calling,
            transmits: VecDeque::from([invite.clone()]),
            invite,
            build_ack,
            ack: None,
            timer_a,
            timer_b: Some(now + timers.transaction_timeout()),
            timer_d: None,
            timer_m: None,
            events: VecDeque::new(),
        }
    }

    /// A response matching this transaction arrived. Status codes outside
    /// 100..=699 are ignored.
    pub fn handle_response(&mut self, now: Instant, status: u16, response: M) {
        let Some(class) = class(status) else { return };
        match (self.state, class) {
            (State::Calling | State::Proceeding, 1) => {
                // No more retransmissions, and no timeout: ringing may last
                // as long as the TU lets it.
                self.timer_a = None;
                self.timer_b = None;
                self.state = State::Proceeding;
                self.events.push_back(Event::Response { status, response });
            }
            (State::Calling | State::Proceeding, 2) => {
                self.timer_a = None;
                self.timer_b = None;
                self.state = State::Accepted;
                self.timer_m = Some(now + self.timers.transaction_timeout());
                self.events.push_back(Event::Response { status, response });
            }
            (State::Calling | State::Proceeding, _) => {
                self.timer_a = None;
                self.timer_b = None;
                let ack = (self.build_ack)(&self.invite, &response);
                self.transmits.push_back(ack.clone());
                self.ack = Some(ack);
                self.state = State::Completed;
                self.events.push_back(Event::Response { status, response });
                let wait = self.timers.timer_d(self.reliability);
                if wait.is_zero() {
                    self.terminate();
                } else {
                    self.timer_d = Some(now + wait);
                }
            }
            // The final was retransmitted because our ACK was lost: send the
            // same ACK again, and keep the TU out of it.
            (State::Completed, 3..) => {
                if let Some(ack) = &self.ack {
                    self.transmits.push_back(ack.clone());
                }
            }
            // Each 2xx retransmission means the dialog's ACK was lost; only
            // the dialog can send it again.
            (State::Accepted, 2) => self.events.push_back(Event::Response { status, response }),
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
                Timer::A => {
                    self.transmits.push_back(self.invite.clone());
                    if let Some(a) = &mut self.timer_a {
                        a.double(now);
                    }
                }
                Timer::B => {
                    self.events.push_back(Event::Timeout(Timer::B));
                    self.terminate();
                }
                _ => self.terminate(),
            }
        }
    }

    /// The transport could not deliver the INVITE or the ACK. In Accepted
    /// the TU is told but the transaction stays, to keep absorbing 2xx
    /// retransmissions for the dialog.
    pub fn handle_transport_error(&mut self, _now: Instant) {
        match self.state {
            State::Terminated => {}
            State::Accepted => self.events.push_back(Event::TransportError),
            _ => {
                self.events.push_back(Event::TransportError);
                self.terminate();
            }
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

    /// The INVITE this transaction sends.
    pub fn request(&self) -> &M {
        &self.invite
    }

    fn next_timer(&self) -> Option<(Timer, Instant)> {
        earliest(&[
            (Timer::B, self.timer_b),
            (Timer::D, self.timer_d),
            (Timer::M, self.timer_m),
            (Timer::A, self.timer_a.map(|a| a.at)),
        ])
    }

    fn terminate(&mut self) {
        self.timer_a = None;
        self.timer_b = None;
        self.timer_d = None;
        self.timer_m = None;
        self.state = State::Terminated;
        self.events.push_back(Event::Terminated);
    }
}

impl<M> fmt::Debug for ClientInvite<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientInvite")
            .field("state", &self.state)
            .field("reliability", &self.reliability)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transaction::testing::{Clock, Out, events, sent};
    use std::time::Duration;

    fn start(clock: &Clock, reliability: Reliability) -> ClientInvite<String> {
        start_with(clock, reliability, Timers::default())
    }

    fn start_with(clock: &Clock, reliability: Reliability, timers: Timers) -> ClientInvite<String> {
        let build_ack: AckBuilder<String> =
            Box::new(|invite, response| format!("ACK ({invite} / {response})"));
        ClientInvite::new(clock.now, reliability, timers, "INVITE".into(), build_ack)
    }

    fn response(status: u16) -> Event<String> {
        Event::Response {
            status,
            response: status.to_string(),
        }
    }

    #[test]
    fn timer_a_doubles_until_timer_b_times_out_at_32_s() {
        let mut clock = Clock::new();
        let mut tx = start(&clock, Reliability::Unreliable);
        let out = clock.run(&mut tx, 40_000);
        let invites: Vec<u64> = sent(&out).into_iter().map(|(t, _)| t).collect();
        assert_eq!(invites, [0, 500, 1_500, 3_500, 7_500, 15_500, 31_500]);
        assert_eq!(
            events(&out),
            [
                (32_000, Event::Timeout(Timer::B)),
                (32_000, Event::Terminated)
            ]
        );
        assert_eq!(tx.poll_timeout(), None);
    }

    #[test]
    fn reliable_transport_sends_once_and_still_times_out() {
        let mut clock = Clock::new();
        let mut tx = start(&clock, Reliability::Reliable);
        let out = clock.run(&mut tx, 40_000);
        assert_eq!(sent(&out), [(0, "INVITE".to_owned())]);
        assert_eq!(events(&out)[0], (32_000, Event::Timeout(Timer::B)));
    }

    #[test]
    fn shorter_t1_shrinks_the_whole_schedule() {
        let mut clock = Clock::new();
        let timers = Timers {
            t1: Duration::from_millis(100),
            ..Timers::default()
        };
        let mut tx = start_with(&clock, Reliability::Unreliable, timers);
        let out = clock.run(&mut tx, 10_000);
        let invites: Vec<u64> = sent(&out).into_iter().map(|(t, _)| t).collect();
        assert_eq!(invites, [0, 100, 300, 700, 1_500, 3_100, 6_300]);
        assert_eq!(events(&out)[0], (6_400, Event::Timeout(Timer::B)));
    }

    #[test]
    fn provisional_stops_retransmission_and_timer_b() {
        let mut clock = Clock::new();
        let mut tx = start(&clock, Reliability::Unreliable);
        clock.run(&mut tx, 1_000);
        tx.handle_response(clock.now, 180, "180".into());
        assert_eq!(tx.state(), State::Proceeding);
        let out = clock.run(&mut tx, 120_000);
        assert_eq!(out, [Out::Event(1_000, response(180))]);
        assert_eq!(
            tx.poll_timeout(),
            None,
            "ringing has no transaction timeout"
        );
    }

    #[test]
    fn non_2xx_final_is_acked_here_and_the_ack_resent_on_retransmission() {
        let mut clock = Clock::new();
        let mut tx = start(&clock, Reliability::Unreliable);
        clock.run(&mut tx, 700);
        tx.handle_response(clock.now, 486, "486".into());
        let mut out = clock.drain(&mut tx);
        tx.handle_response(clock.now, 486, "486".into());
        out.extend(clock.drain(&mut tx));
        let ack = "ACK (INVITE / 486)".to_owned();
        assert_eq!(
            out,
            [
                Out::Sent(700, ack.clone()),
                Out::Event(700, response(486)),
                Out::Sent(700, ack.clone()),
            ],
            "the retransmitted 486 is absorbed, not passed up"
        );
        clock.run(&mut tx, 20_000);
        tx.handle_response(clock.now, 486, "486 again".into());
        assert_eq!(clock.drain(&mut tx), [Out::Sent(20_000, ack)]);
        // Timer D: 32 s after the final, not after the INVITE.
        let out = clock.run(&mut tx, 40_000);
        assert_eq!(out, [Out::Event(32_700, Event::Terminated)]);
    }

    #[test]
    fn non_2xx_final_over_reliable_transport_terminates_at_once() {
        let clock = Clock::new();
        let mut tx = start(&clock, Reliability::Reliable);
        tx.handle_response(clock.now, 180, "180".into());
        tx.handle_response(clock.now, 603, "603".into());
        assert_eq!(tx.state(), State::Terminated);
        let out = clock.drain(&mut tx);
        assert!(out.contains(&Out::Sent(0, "ACK (INVITE / 603)".into())));
        assert_eq!(out.last(), Some(&Out::Event(0, Event::Terminated)));
    }

    #[test]
    fn every_2xx_goes_to_the_tu_and_none_is_acked_here() {
        let mut clock = Clock::new();
        let mut tx = start(&clock, Reliability::Unreliable);
        clock.run(&mut tx, 200);
        tx.handle_response(clock.now, 200, "200".into());
        assert_eq!(tx.state(), State::Accepted);
        let mut out = clock.run(&mut tx, 700);
        tx.handle_response(clock.now, 200, "200".into());
        tx.handle_response(clock.now, 486, "486".into());
        out.extend(clock.run(&mut tx, 60_000));
        assert_eq!(
            out,
            [
                Out::Event(200, response(200)),
                Out::Event(700, response(200)),
                // Timer M = 64*T1 after the first 2xx.
                Out::Event(32_200, Event::Terminated),
            ]
        );
    }

    #[test]
    fn transport_error_ends_the_transaction_except_in_accepted() {
        let clock = Clock::new();
        let mut tx = start(&clock, Reliability::Reliable);
        tx.handle_transport_error(clock.now);
        assert_eq!(tx.state(), State::Terminated);
        let mut tx = start(&clock, Reliability::Reliable);
        tx.handle_response(clock.now, 200, "200".into());
        tx.handle_transport_error(clock.now);
        assert_eq!(tx.state(), State::Accepted);
        assert_eq!(tx.poll_event(), Some(response(200)));
        assert_eq!(tx.poll_event(), Some(Event::TransportError));
    }

    #[test]
    fn bogus_status_codes_are_ignored() {
        let clock = Clock::new();
        let mut tx = start(&clock, Reliability::Reliable);
        for status in [0, 99, 700, 999] {
            tx.handle_response(clock.now, status, "x".into());
        }
        assert_eq!(tx.state(), State::Calling);
        assert_eq!(tx.poll_event(), None);
    }
}
