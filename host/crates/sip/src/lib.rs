//! SIP for the Trunkline gateway, free of I/O: no sockets, no tokio, no clocks.
//!
//! # Layout
//! - [`rfc`]: RFC constants shared by every layer (branch magic cookie, default
//!   ports, compact header forms, default reason phrases).
//! - [`message`]: framing (TCP/TLS streams, UDP datagrams), normalisation of what
//!   real peers send, the [`message::SipMessage`] type with typed accessors,
//!   builders and printing, transport helpers (RFC 3261 §18, RFC 3581).
//! - [`transaction`]: RFC 3261 / RFC 6026 transactions, keys (RFC 2543
//!   peers included), caps.
//! - [`inspect`]: what a UAS checks before processing a request (RFC 3261
//!   §8.2: 405/501, 416, 420, 415, 406).
//! - [`dialog`]: dialogs, session timers, REFER.
//! - [`leg`]: typed leg failures and their statuses, the 2xx retransmit
//!   schedule, a request's next hop.
//! - [`auth`]: digest authentication, allow-lists, lockout.
//! - [`log_budget`]: so many log lines per interval about refused requests,
//!   and a count of the ones left out (floods must not flood the log).
pub mod auth;
pub mod dialog;
pub mod inspect;
pub mod leg;
pub mod log_budget;
pub mod message;
pub mod rfc;
pub mod transaction;
