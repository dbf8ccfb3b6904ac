//! [`SessionTimer`]: the clock side of RFC 4028 §10, free of I/O.
//!
//! The refresher sends a session refresh (re-INVITE or UPDATE) when half
//! the interval has passed. The other side waits; if no refresh arrives by
//! the interval minus min(32 s, interval/3), it takes the session for dead
//! and sends BYE, so a call whose far end vanished without a BYE does not
//! hold media ports and a Five9 line for hours. The refresher gets the same
//! deadline: a refresh not answered by then means the peer will give up on
//! the session, so it should hang up too.
//!
//! Driven like the transactions: `handle_timeout(now)` at
//! `poll_timeout()`, then drain `poll_event()`; after every successful
//! refresh transaction (2xx sent or received) call `refreshed(now, ..)`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::negotiate::Negotiated;

/// What the owner must do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerEvent {
    /// We are the refresher and half the interval passed: send a re-INVITE
    /// with the current SDP (or UPDATE if the peer allows it) carrying
    /// Session-Expires, then call [`SessionTimer::refreshed`] on its 2xx.
    Refresh,
    /// No refresh in time: send BYE and end the call.
    Expired,
}

/// The session timer of one dialog.
#[derive(Debug, Clone)]
pub struct SessionTimer {
    /// The negotiated session interval.
    interval: Duration,
    /// Whether we send the refreshes.
    local_refreshes: bool,
    /// When to ask for a refresh; `None` once asked, or when the peer
    /// refreshes.
    refresh_at: Option<Instant>,
    /// When the session is given up without a refresh; `None` once
    /// reported or stopped.
    expire_at: Option<Instant>,
    /// Events waiting for `poll_event`.
    events: VecDeque<TimerEvent>,
}

impl SessionTimer {
    /// Starts the timer when the session (or its first refresh) is
    /// established at `now`.
    pub fn new(now: Instant, negotiated: &Negotiated) -> Self {
        let mut timer = SessionTimer {
            interval: Duration::ZERO,
            local_refreshes: false,
            refresh_at: None,
            expire_at: None,
            events: VecDeque::new(),
        };
        timer.refreshed(now, negotiated);
        timer
    }

    /// A refresh transaction succeeded at `now`: restart with what it
    /// negotiated (the interval and the refresher may both change).
    pub fn refreshed(&mut self, now: Instant, negotiated: &Negotiated) {
        self.interval = negotiated.interval();
        self.local_refreshes = negotiated.local_refreshes;
        self.refresh_at = self.local_refreshes.then(|| now + self.interval / 2);
        let margin = (self.interval / 3).min(Duration::from_secs(32));
        self.expire_at = Some(now + self.interval - margin);
    }

    /// Stops the timer (the call ended); nothing more is reported.
    pub fn stop(&mut self) {
        self.refresh_at = None;
        self.expire_at = None;
        self.events.clear();
    }

    /// The negotiated interval.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Whether we send the refreshes.
    pub fn local_refreshes(&self) -> bool {
        self.local_refreshes
    }

    /// When `handle_timeout` must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.refresh_at, self.expire_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Fires what is due at `now`; early calls do nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.refresh_at.is_some_and(|at| at <= now) {
            self.refresh_at = None;
            self.events.push_back(TimerEvent::Refresh);
        }
        if self.expire_at.is_some_and(|at| at <= now) {
            self.expire_at = None;
            self.refresh_at = None;
            self.events.push_back(TimerEvent::Expired);
        }
    }

    /// The next thing the owner must do.
    pub fn poll_event(&mut self) -> Option<TimerEvent> {
        self.events.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::super::session_expires::Refresher;
    use super::*;

    fn negotiated(interval: u32, local_refreshes: bool) -> Negotiated {
        Negotiated {
            interval,
            refresher: if local_refreshes {
                Refresher::Uas
            } else {
                Refresher::Uac
            },
            local_refreshes,
            require: true,
        }
    }

    /// Runs a timer on a fake clock until `horizon_ms`, reporting a
    /// successful refresh at each of `refreshes_ms`; returns the events
    /// with the millisecond they fired at.
    fn run(
        timer: &mut SessionTimer,
        t0: Instant,
        refreshes_ms: &[(u64, Negotiated)],
        horizon_ms: u64,
    ) -> Vec<(u64, TimerEvent)> {
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut out = Vec::new();
        let mut refreshes = refreshes_ms.iter().peekable();
        loop {
            let next_refresh = refreshes.peek().map(|(ms, _)| at(*ms));
            let next_timer = timer.poll_timeout();
            let now = match (next_refresh, next_timer) {
                (Some(r), Some(t)) if r <= t => {
                    let (_, n) = refreshes.next().expect("peeked");
                    timer.refreshed(r, n);
                    continue;
                }
                (Some(r), None) => {
                    let (_, n) = refreshes.next().expect("peeked");
                    timer.refreshed(r, n);
                    continue;
                }
                (_, Some(t)) => t,
                (None, None) => break,
            };
            if now > at(horizon_ms) {
                break;
            }
            // An early wake-up changes nothing.
            timer.handle_timeout(now - Duration::from_millis(1));
            assert_eq!(timer.poll_event(), None);
            timer.handle_timeout(now);
            let ms = u64::try_from((now - t0).as_millis()).unwrap_or(u64::MAX);
            while let Some(event) = timer.poll_event() {
                out.push((ms, event));
            }
        }
        out
    }

    #[test]
    fn refresh_and_expiry_timing() {
        use TimerEvent::{Expired, Refresh};
        let s = |secs: u64| secs * 1000;
        type Row<'a> = (
            &'a str,
            Negotiated,
            Vec<(u64, Negotiated)>,
            u64,
            Vec<(u64, TimerEvent)>,
        );
        let table: Vec<Row> = vec![
            (
                "Five9 refreshes, then stops: BYE 32 s before expiry",
                negotiated(1800, false),
                vec![(s(900), negotiated(1800, false))],
                s(10_000),
                vec![(s(900 + 1768), Expired)],
            ),
            (
                "Five9 never refreshes",
                negotiated(1800, false),
                vec![],
                s(10_000),
                vec![(s(1768), Expired)],
            ),
            (
                "we refresh every half interval",
                negotiated(1800, true),
                vec![
                    (s(901), negotiated(1800, true)),
                    (s(1802), negotiated(1800, true)),
                ],
                s(2750),
                vec![(s(900), Refresh), (s(1801), Refresh), (s(2702), Refresh)],
            ),
            (
                "our refresh is never answered: a third of 90 s before expiry",
                negotiated(90, true),
                vec![],
                s(1000),
                vec![(s(45), Refresh), (s(60), Expired)],
            ),
            (
                "a peer re-INVITE hands the refreshing to us",
                negotiated(1800, false),
                vec![(s(600), negotiated(600, true))],
                s(1000),
                vec![(s(900), Refresh)],
            ),
        ];
        for (what, first, refreshes, horizon, expected) in table {
            let t0 = Instant::now();
            let mut timer = SessionTimer::new(t0, &first);
            assert_eq!(run(&mut timer, t0, &refreshes, horizon), expected, "{what}");
        }
    }

    #[test]
    fn stopped_timer_is_silent() {
        let t0 = Instant::now();
        let mut timer = SessionTimer::new(t0, &negotiated(90, true));
        assert_eq!(timer.poll_timeout(), Some(t0 + Duration::from_secs(45)));
        assert!(timer.local_refreshes());
        assert_eq!(timer.interval(), Duration::from_secs(90));
        timer.stop();
        assert_eq!(timer.poll_timeout(), None);
        timer.handle_timeout(t0 + Duration::from_secs(3600));
        assert_eq!(timer.poll_event(), None);
    }
}
