//! INVITE server transaction (RFC 3261 §17.2.1, RFC 6026 §8.5-8.7).
//!
//! ```text
//!  Proceeding --300-699 from TU--> Completed --ACK--> Confirmed --I--> Terminated
//!      |                              \--H (no ACK)--> Terminated
//!      \--2xx from TU--> Accepted --L--> Terminated
//! ```
//! `100 Trying`: the owner hands one in at creation, and the transaction
//! sends it only if the TU has not responded within [`Timers::trying`]
//! (200 ms by default), or at once if the INVITE is retransmitted first. A
//! TU that answers quickly (a policy rejecting with 403) thus costs the peer
//! no extra message, and a slow one (waiting on an agent) still stops the
//! peer's timer A.
//!
//! Retransmitted INVITEs are answered with the last response (Proceeding,
//! Completed) or absorbed (Confirmed, Accepted). A non-2xx final is
//! retransmitted by timer G over UDP until the ACK arrives or timer H gives
//! up. A 2xx moves to Accepted (RFC 6026): retransmitting it until the ACK
//! is the dialog's job, and the ACK, if it matches here, is passed up.

use std::collections::VecDeque;
use std::fmt;
use std::time::Instant;

use super::timers::{Backoff, earliest};
use super::{Event, Reliability, ResponseError, State, Timer, Timers, class};

/// An INVITE server transaction.
pub struct ServerInvite<M> {
    /// Timer values for this transaction.
    timers: Timers,
    /// Decides whether timer G runs and whether timer I waits.
    reliability: Reliability,
    /// Current state.
    state: State,
    /// The `100 Trying` not sent yet; dropped once any response went out.
    trying: Option<M>,
    /// The response a retransmitted INVITE gets: the last provisional in
    /// Proceeding, the final in Completed.
    last: Option<M>,
    /// When to send `trying` if the TU stays silent.
    timer_trying: Option<Instant>,
    /// Final response retransmission (Completed, unreliable only).
    timer_g: Option<Backoff>,
    /// Give up waiting for the ACK (Completed).
    timer_h: Option<Instant>,
    /// End of Confirmed.
    timer_i: Option<Instant>,
    /// End of Accepted.
    timer_l: Option<Instant>,
    /// Messages waiting for `poll_transmit`.
    transmits: VecDeque<M>,
    /// Events waiting for `poll_event`.
    events: VecDeque<Event<M>>,
}

impl<M: Clone> ServerInvite<M> {
    /// Creates the transaction for an INVITE received at `now`. `trying` is
    /// the `100 Trying` response to send if the TU is slow. The INVITE
    /// itself goes from the owner to the TU, not through here.
    pub fn new(now: Instant, reliability: Reliability, timers: Timers, trying: M) -> Self {
        let mut tx = Self {
            timers,
            reliability,
            state: State::Proceeding,
            trying: Some(trying),
            last: None,
            timer_trying: Some(now + timers.trying),
            timer_g: None,
            timer_h: None,
            timer_i: None,
            timer_l: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        };
        if timers.trying.is_zero() {
            tx.send_trying();
        }
        tx
    }

    /// The INVITE was received again.
    pub fn handle_request(&mut self, _now: Instant) {
        match self.state {
            State::Proceeding if self.last.is_none() => self.send_trying(),
            State::Proceeding | State::Completed => {
                if let Some(last) = &self.last {
                    self.transmits.push_back(last.clone());
                }
            }
            // Confirmed: the peer got our final. Accepted: the TU's 2xx
            // retransmissions answer the peer (RFC 6026 §8.7).
            _ => {}
        }
    }

    /// An ACK matched this transaction (same branch as the INVITE). In
    /// Completed it confirms our non-2xx final; in Accepted it is the ACK
    /// for the 2xx and goes to the TU.
    pub fn handle_ack(&mut self, now: Instant, ack: M) {
        match self.state {
            State::Completed => {
                self.timer_g = None;
                self.timer_h = None;
                self.state = State::Confirmed;
                let wait = self.timers.timer_i(self.reliability);
                if wait.is_zero() {
                    self.terminate();
                } else {
                    self.timer_i = Some(now + wait);
                }
            }
            State::Accepted => self.events.push_back(Event::Ack(ack)),
            // An ACK before any final (Proceeding) is meaningless; further
            // ACKs in Confirmed are what Confirmed exists to absorb.
            _ => {}
        }
    }

    /// The TU responds. 1xx is sent as is; 2xx moves to Accepted; 300-699
    /// moves to Completed and is retransmitted over UDP until the ACK.
    /// Only 2xx retransmissions are accepted once a final went out.
    pub fn send_response(
        &mut self,
        now: Instant,
        status: u16,
        response: M,
    ) -> Result<(), ResponseError> {
        let class = class(status).ok_or(ResponseError::InvalidStatus(status))?;
        match (self.state, class) {
            (State::Proceeding, _) => {
                self.trying = None;
                self.timer_trying = None;
                self.transmits.push_back(response.clone());
                match class {
                    1 => self.last = Some(response),
                    2 => {
                        self.last = None;
                        self.state = State::Accepted;
                        self.timer_l = Some(now + self.timers.transaction_timeout());
                    }
                    _ => {
                        self.last = Some(response);
                        self.state = State::Completed;
                        self.timer_h = Some(now + self.timers.transaction_timeout());
                        if self.reliability == Reliability::Unreliable {
                            let g = Backoff::start(now, self.timers.t1, Some(self.timers.t2));
                            self.timer_g = Some(g);
                        }
                    }
                }
                Ok(())
            }
            (State::Accepted, 2) => {
                self.transmits.push_back(response);
                Ok(())
            }
            (state, _) => Err(ResponseError::Discarded(state)),
        }
    }

    /// Fires every timer due at or before `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((timer, at)) = self.next_timer() {
            if at > now {
                break;
            }
            match timer {
                Timer::Trying => self.send_trying(),
                Timer::G => {
                    if let Some(last) = &self.last {
                        self.transmits.push_back(last.clone());
                    }
                    if let Some(g) = &mut self.timer_g {
                        g.double(now);
                    }
                }
                Timer::H => {
                    self.events.push_back(Event::Timeout(Timer::H));
                    self.terminate();
                }
                _ => self.terminate(),
            }
        }
    }

    /// The transport could not deliver a response. In Accepted the TU is
    /// told but the transaction stays, so a late INVITE retransmission is
    /// still absorbed rather than taken for a new call.
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

    /// Current state. A CANCEL can still take effect only in Proceeding.
    pub fn state(&self) -> State {
        self.state
    }

    /// The transport reliability the transaction was created with.
    pub fn reliability(&self) -> Reliability {
        self.reliability
    }

    /// Sends the held `100 Trying`, if no response went out yet.
    fn send_trying(&mut self) {
        self.timer_trying = None;
        if let Some(trying) = self.trying.take() {
            self.transmits.push_back(trying.clone());
            self.last = Some(trying);
        }
    }

    fn next_timer(&self) -> Option<(Timer, Instant)> {
        earliest(&[
            (Timer::H, self.timer_h),
            (Timer::I, self.timer_i),
            (Timer::L, self.timer_l),
            (Timer::Trying, self.timer_trying),
            (Timer::G, self.timer_g.map(|g| g.at)),
        ])
    }

    fn terminate(&mut self) {
        self.timer_trying = None;
        self.timer_g = None;
        self.timer_h = None;
        self.timer_i = None;
        self.timer_l = None;
        self.state = State::Terminated;
        self.events.push_back(Event::Terminated);
    }
}

impl<M> fmt::Debug for ServerInvite<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerInvite")
            .field("state", &self.state)
            .field("reliability", &self.reliability)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transaction::testing::{Clock, Out, events, sent};

    fn start(clock: &Clock, reliability: Reliability) -> ServerInvite<String> {
        ServerInvite::new(clock.now, reliability, Timers::default(), "100".into())
    }

    fn respond(clock: &Clock, tx: &mut ServerInvite<String>, status: u16) {
        tx.send_response(clock.now, status, status.to_string())
            .expect("response accepted");
    }

    #[test]
    fn sends_100_trying_only_if_the_tu_is_silent_for_200_ms() {
        /// The TU's first response, (at ms, status), if any.
        type Tu = Option<(u64, u16)>;
        // TU behaviour -> what goes on the wire, (at ms, message).
        let cases: [(Tu, &[(u64, &str)]); 4] = [
            (None, &[(200, "100")]),
            (Some((150, 180)), &[(150, "180")]),
            (Some((199, 403)), &[(199, "403")]),
            (Some((300, 180)), &[(200, "100"), (300, "180")]),
        ];
        for (tu, want) in cases {
            let mut clock = Clock::new();
            let mut tx = start(&clock, Reliability::Reliable);
            let mut out = vec![];
            if let Some((at, status)) = tu {
                out.extend(clock.run(&mut tx, at));
                respond(&clock, &mut tx, status);
            }
            out.extend(clock.run(&mut tx, 400));
            let want: Vec<(u64, String)> = want.iter().map(|(t, m)| (*t, m.to_string())).collect();
            assert_eq!(sent(&out), want, "TU answer {tu:?}");
        }
    }

    #[test]
    fn zero_trying_delay_sends_100_at_once() {
        let mut clock = Clock::new();
        let timers = Timers {
            trying: std::time::Duration::ZERO,
            ..Timers::default()
        };
        let mut tx = ServerInvite::new(clock.now, Reliability::Reliable, timers, "100".into());
        assert_eq!(clock.run(&mut tx, 1_000), [Out::Sent(0, "100".into())]);
    }

    #[test]
    fn retransmitted_invite_gets_the_last_provisional() {
        let mut clock = Clock::new();
        let mut tx = start(&clock, Reliability::Unreliable);
        // Retransmitted before the trying timer: the 100 goes out at once.
        clock.run(&mut tx, 100);
        tx.handle_request(clock.now);
        assert_eq!(clock.drain(&mut tx), [Out::Sent(100, "100".into())]);
        assert_eq!(clock.run(&mut tx, 400), [], "the 100 is not sent twice");
        respond(&clock, &mut tx, 180);
        respond(&clock, &mut tx, 183);
        clock.drain(&mut tx);
        clock.run(&mut tx, 500);
        tx.handle_request(clock.now);
        assert_eq!(clock.drain(&mut tx), [Out::Sent(500, "183".into())]);
    }

    #[test]
    fn timer_g_retransmits_the_final_capped_at_t2_until_timer_h() {
        let mut clock = Clock::new();
        let mut tx = start(&clock, Reliability::Unreliable);
        respond(&clock, &mut tx, 486);
        let out = clock.run(&mut tx, 40_000);
        let times: Vec<u64> = sent(&out).into_iter().map(|(t, _)| t).collect();
        assert_eq!(
            times,
            [
                0, 500, 1_500, 3_500, 7_500, 11_500, 15_500, 19_500, 23_500, 27_500, 31_500
            ]
        );
        assert!(sent(&out).iter().all(|(_, m)| m == "486"));
        assert_eq!(
            events(&out),
            [
                (32_000, Event::Timeout(Timer::H)),
                (32_000, Event::Terminated)
            ]
        );
    }

    #[test]
    fn reliable_final_is_sent_once_and_timer_h_still_waits_for_the_ack() {
        let mut clock = Clock::new();
        let mut tx = start(&clock, Reliability::Reliable);
        respond(&clock, &mut tx, 404);
        let out = clock.run(&mut tx, 40_000);
        assert_eq!(sent(&out), [(0, "404".to_owned())]);
        assert_eq!(events(&out)[0], (32_000, Event::Timeout(Timer::H)));
    }

    #[test]
    fn ack_confirms_and_timer_i_absorbs_duplicates_for_t4_on_udp_only() {
        // (reliability, ms at which the transaction ends after an ACK at 2 s)
        let cases = [
            (Reliability::Unreliable, 7_000),
            (Reliability::Reliable, 2_000),
        ];
        for (reliability, end) in cases {
            let mut clock = Clock::new();
            let mut tx = start(&clock, reliability);
            respond(&clock, &mut tx, 486);
            clock.run(&mut tx, 1_000);
            tx.handle_request(clock.now);
            assert_eq!(clock.drain(&mut tx), [Out::Sent(1_000, "486".into())]);
            clock.run(&mut tx, 2_000);
            tx.handle_ack(clock.now, "ACK".into());
            if reliability == Reliability::Unreliable {
                assert_eq!(tx.state(), State::Confirmed);
            }
            tx.handle_ack(clock.now, "ACK".into());
            tx.handle_request(clock.now);
            let mut out = clock.drain(&mut tx);
            out.extend(clock.run(&mut tx, 60_000));
            assert_eq!(out, [Out::Event(end, Event::Terminated)], "{reliability:?}");
        }
    }

    #[test]
    fn tu_2xx_moves_to_accepted_per_rfc_6026() {
        for reliability in [Reliability::Unreliable, Reliability::Reliable] {
            let mut clock = Clock::new();
            let mut tx = start(&clock, reliability);
            respond(&clock, &mut tx, 180);
            clock.run(&mut tx, 1_000);
            respond(&clock, &mut tx, 200);
            assert_eq!(tx.state(), State::Accepted);
            assert_eq!(clock.drain(&mut tx), [Out::Sent(1_000, "200".into())]);
            // The transaction never retransmits the 2xx itself, and absorbs
            // a retransmitted INVITE without bothering the TU.
            clock.run(&mut tx, 1_500);
            tx.handle_request(clock.now);
            assert_eq!(clock.run(&mut tx, 2_000), []);
            // The dialog retransmits its 2xx through here; a late failure
            // response is refused.
            respond(&clock, &mut tx, 200);
            assert_eq!(
                tx.send_response(clock.now, 487, "487".into()),
                Err(ResponseError::Discarded(State::Accepted))
            );
            tx.handle_ack(clock.now, "ACK".into());
            let mut out = clock.drain(&mut tx);
            // Timer L: 64*T1 after the 2xx, for every transport.
            out.extend(clock.run(&mut tx, 60_000));
            assert_eq!(
                out,
                [
                    Out::Sent(2_000, "200".into()),
                    Out::Event(2_000, Event::Ack("ACK".into())),
                    Out::Event(33_000, Event::Terminated),
                ],
                "{reliability:?}"
            );
        }
    }

    #[test]
    fn responses_after_the_final_and_bad_statuses_are_refused() {
        let clock = Clock::new();
        let mut tx = start(&clock, Reliability::Unreliable);
        let cases = [
            (0, Err(ResponseError::InvalidStatus(0))),
            (700, Err(ResponseError::InvalidStatus(700))),
            (486, Ok(())),
            (486, Err(ResponseError::Discarded(State::Completed))),
            (200, Err(ResponseError::Discarded(State::Completed))),
        ];
        for (status, want) in cases {
            assert_eq!(tx.send_response(clock.now, status, "x".into()), want);
        }
    }

    #[test]
    fn transport_error_ends_the_transaction_except_in_accepted() {
        let clock = Clock::new();
        let mut tx = start(&clock, Reliability::Reliable);
        respond(&clock, &mut tx, 500);
        tx.handle_transport_error(clock.now);
        assert_eq!(tx.state(), State::Terminated);
        let mut tx = start(&clock, Reliability::Reliable);
        respond(&clock, &mut tx, 200);
        tx.handle_transport_error(clock.now);
        assert_eq!(tx.state(), State::Accepted);
        assert_eq!(tx.poll_event(), Some(Event::TransportError));
    }
}
