//! SIP transactions (RFC 3261 §17, with RFC 6026's Accepted states), free of I/O.
//!
//! # Layout
//! - [`timers`]: T1/T2/T4 and the timer durations derived from them.
//! - [`key`]: transaction keys (§17.1.3, §17.2.3, RFC 2543 peers included),
//!   built from plain values; [`server_key`] reads one off a received
//!   [`SipMessage`](crate::message::SipMessage).
//! - [`client_inv`] / [`client`]: INVITE and non-INVITE client transactions.
//! - [`server_inv`] / [`server`]: INVITE and non-INVITE server transactions.
//! - [`Transaction`]: any one of the four machines, driven alike.
//! - [`table`]: [`Transactions`], which owns machines by key and drives them.
//! - [`budget`]: caps on open server transactions, in all and per source.
//!
//! # Driving a machine
//! Machines never read a clock or touch a socket. The owner feeds them
//! (`handle_response`, `send_response`, `handle_timeout(now)`, ...) and then
//! drains `poll_transmit()` (messages to put on the wire), `poll_event()`
//! (news for the transaction user) and `poll_timeout()` (when to call
//! `handle_timeout` next). Messages are an opaque `M: Clone` chosen by the
//! owner (bytes, a parsed message, ...); the machines only learn a
//! response's status code, passed alongside it.
//!
//! # Choices the RFCs leave open
//! - INVITE server transactions send `100 Trying` themselves only if the TU
//!   has not responded within [`Timers::trying`] (200 ms), as §17.2.1 allows;
//!   a retransmitted INVITE before that sends it at once.
//! - Both INVITE machines implement RFC 6026's Accepted state (timers L and
//!   M): 2xx responses and their retransmissions go to the TU, which owns
//!   2xx retransmission and the ACK for 2xx; the transactions only absorb
//!   duplicates so a late INVITE retransmission is never taken for a new call.
//! - A transport error in Accepted is reported but does not end the
//!   transaction, for the same reason; everywhere else it terminates it.
//! - Timer B only runs in Calling, as §17.1.1.2 says: once a provisional
//!   arrives, how long to ring is the TU's decision (CANCEL), not a timeout.

mod any;
pub mod budget;
pub mod client;
pub mod client_inv;
pub mod key;
mod message_key;
pub mod server;
pub mod server_inv;
pub mod table;
pub mod timers;

pub use any::Transaction;
pub use budget::{Overload, ServerLimits};
pub use client::Client;
pub use client_inv::{AckBuilder, ClientInvite};
pub use key::{KeyError, Rfc2543Fields, Role, SentBy, TransactionKey};
pub use message_key::server_key;
pub use server::Server;
pub use server_inv::ServerInvite;
pub use table::{Routed, TableError, Transactions, Transmit};
pub use timers::{T1, T2, T4, Timer, Timers};

/// Whether the transport can lose or duplicate messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reliability {
    /// UDP: the transactions retransmit and wait out duplicates.
    Unreliable,
    /// TCP, TLS, WebSocket: no retransmissions, and the wait timers
    /// (D, I, J, K) are zero.
    Reliable,
}

/// Where a transaction is in its RFC 3261 / RFC 6026 state machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// INVITE client: request sent, no response yet.
    Calling,
    /// Non-INVITE client or server: no provisional response yet.
    Trying,
    /// A provisional response was received (client) or sent (server).
    Proceeding,
    /// A final response was received (client) or sent (server); waiting out
    /// retransmissions (or, for an INVITE server, the ACK).
    Completed,
    /// INVITE server: the ACK for a non-2xx final arrived.
    Confirmed,
    /// INVITE client or server after a 2xx (RFC 6026).
    Accepted,
    /// Done; the owner may drop the machine.
    Terminated,
}

/// What a transaction tells its user (the TU: UA core, dialog, B2BUA).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event<M> {
    /// A response for a client transaction, 1xx or final. A non-2xx final is
    /// passed up once; every 2xx to an INVITE is passed up, because the
    /// dialog must answer each one with its ACK (RFC 6026 §8.4).
    Response {
        /// The response's status code.
        status: u16,
        /// The response as the owner handed it in.
        response: M,
    },
    /// An ACK matched an INVITE server transaction that sent a 2xx (RFC 6026
    /// Accepted state); the dialog should stop retransmitting its 2xx.
    Ack(M),
    /// Timer B or F fired (map to 408 Request Timeout), or timer H fired
    /// (the ACK for our non-2xx final response never came).
    Timeout(Timer),
    /// The owner reported that the transport could not deliver a message.
    TransportError,
    /// The machine reached Terminated; it is always the last event.
    Terminated,
}

/// Why a server transaction refused a response from its TU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    /// The status code is outside 100..=699; nothing was sent.
    #[error("status code {0} is not a SIP response status")]
    InvalidStatus(u16),
    /// The transaction already sent its final response (or ended), so RFC
    /// 3261 says to discard this one; nothing was sent.
    #[error("response discarded: transaction is {0:?}")]
    Discarded(State),
}

/// Splits a status code into its class, rejecting what is not a status.
fn class(status: u16) -> Option<u16> {
    (100..=699).contains(&status).then_some(status / 100)
}

/// A fake clock and a driver shared by the machines' tests.
#[cfg(test)]
mod testing {
    use std::time::{Duration, Instant};

    use super::{Client, ClientInvite, Event, Server, ServerInvite};

    /// The polling surface every machine offers.
    pub(super) trait Machine {
        fn poll_timeout(&self) -> Option<Instant>;
        fn handle_timeout(&mut self, now: Instant);
        fn poll_transmit(&mut self) -> Option<String>;
        fn poll_event(&mut self) -> Option<Event<String>>;
    }

    macro_rules! machine {
        ($($ty:ident),*) => {$(
            impl Machine for $ty<String> {
                fn poll_timeout(&self) -> Option<Instant> {
                    $ty::poll_timeout(self)
                }
                fn handle_timeout(&mut self, now: Instant) {
                    $ty::handle_timeout(self, now)
                }
                fn poll_transmit(&mut self) -> Option<String> {
                    $ty::poll_transmit(self)
                }
                fn poll_event(&mut self) -> Option<Event<String>> {
                    $ty::poll_event(self)
                }
            }
        )*};
    }
    machine!(ClientInvite, Client, ServerInvite, Server);

    /// Something the owner saw, stamped with milliseconds since the start.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub(super) enum Out {
        Sent(u64, String),
        Event(u64, Event<String>),
    }

    /// Only the sent messages of `out`.
    pub(super) fn sent(out: &[Out]) -> Vec<(u64, String)> {
        out.iter()
            .filter_map(|o| match o {
                Out::Sent(t, m) => Some((*t, m.clone())),
                Out::Event(..) => None,
            })
            .collect()
    }

    /// Only the events of `out`.
    pub(super) fn events(out: &[Out]) -> Vec<(u64, Event<String>)> {
        out.iter()
            .filter_map(|o| match o {
                Out::Event(t, e) => Some((*t, e.clone())),
                Out::Sent(..) => None,
            })
            .collect()
    }

    /// A clock that only moves when a test says so.
    pub(super) struct Clock {
        pub(super) t0: Instant,
        pub(super) now: Instant,
    }

    impl Clock {
        pub(super) fn new() -> Self {
            let t0 = Instant::now();
            Self { t0, now: t0 }
        }

        /// Milliseconds since the start.
        pub(super) fn ms(&self) -> u64 {
            u64::try_from((self.now - self.t0).as_millis()).unwrap_or(u64::MAX)
        }

        /// Drains what the machine has queued, stamped with the current time.
        pub(super) fn drain(&self, m: &mut impl Machine) -> Vec<Out> {
            let mut out = vec![];
            while let Some(msg) = m.poll_transmit() {
                out.push(Out::Sent(self.ms(), msg));
            }
            while let Some(event) = m.poll_event() {
                out.push(Out::Event(self.ms(), event));
            }
            out
        }

        /// Drains, then fires every timer up to `until_ms`, jumping straight
        /// to each deadline as the owner's event loop would; leaves the
        /// clock at `until_ms`.
        pub(super) fn run(&mut self, m: &mut impl Machine, until_ms: u64) -> Vec<Out> {
            let until = self.t0 + Duration::from_millis(until_ms);
            let mut out = self.drain(m);
            while let Some(at) = m.poll_timeout().filter(|at| *at <= until) {
                self.now = self.now.max(at);
                m.handle_timeout(self.now);
                out.extend(self.drain(m));
            }
            self.now = self.now.max(until);
            out
        }
    }
}
