//! What the call core needs of a leg beyond its dialog and transactions,
//! free of I/O: typed failures and the status each becomes, the 2xx
//! retransmission schedule of a UAS leg, a request's next hop, and the
//! whole of a leg we place.
//!
//! # Layout
//! - `failure`: [`LegFailure`] and [`FailureKind`] (`busy`, `no-answer`,
//!   `unreachable`, `rejected`, `auth-failed`, `policy`), from a final
//!   status and to the status for the caller.
//! - `retransmit`: [`OkRetransmit`], our 2xx until the ACK (§13.3.1.4).
//! - `next_hop`: [`next_hop`](fn@next_hop), the first loose Route or the
//!   Request-URI.
//! - `invite`: [`InviteRequest`], the initial INVITE of a leg we place,
//!   and [`resend_with`], a request again with credentials.
//! - `outbound`: [`OutboundLeg`], a leg we place, from the INVITE to its
//!   last transaction: progress, answer, CANCEL, BYE, digest, forks.
//! - `inbound`: [`InboundLeg`], a leg that calls us: provisional, 2xx
//!   until the ACK, 487 on CANCEL, a BYE that never overtakes the ACK.

mod failure;
mod inbound;
mod invite;
mod next_hop;
mod outbound;
mod retransmit;

pub use failure::{FailureKind, LegFailure};
pub use inbound::{InboundAction, InboundConfig, InboundInput, InboundLeg, InboundState};
pub use invite::{FALLBACK_USER, InviteRequest, client_key, is_user_token, resend_with};
pub use next_hop::next_hop;
pub use outbound::{OutboundAction, OutboundConfig, OutboundInput, OutboundLeg, OutboundState};
pub use retransmit::{OkRetransmit, OkStep};
