//! What the call core needs of a leg beyond its dialog and transactions,
//! free of I/O: typed failures and the status each becomes, the 2xx
//! retransmission schedule of a UAS leg, and a request's next hop.
//!
//! # Layout
//! - `failure`: [`LegFailure`] and [`FailureKind`] (`busy`, `no-answer`,
//!   `unreachable`, `rejected`, `auth-failed`, `policy`), from a final
//!   status and to the status for the caller.
//! - `retransmit`: [`OkRetransmit`], our 2xx until the ACK (§13.3.1.4).
//! - `next_hop`: [`next_hop`](fn@next_hop), the first loose Route or the
//!   Request-URI.

mod failure;
mod next_hop;
mod retransmit;

pub use failure::{FailureKind, LegFailure};
pub use next_hop::next_hop;
pub use retransmit::{OkRetransmit, OkStep};
