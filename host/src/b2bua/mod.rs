//! The Five9 ↔ agent back-to-back user agent.
//!
//! - `gateway` — the signalling core: one task owning transactions, dialogs
//!   and calls; sockets and clocks meet the I/O-free SIP layers here.
//! - `inbound` — a new INVITE: admission, `route`, the agent leg.
//! - `originate` — a call we place (`POST /v1/calls`): checks, the trunk's
//!   address, our INVITE and offer, then the agent once it answered.
//! - `drive` — each call's state machine (`trunkline_call::Call`, which
//!   owns both legs and the rules between them) fed and carried out:
//!   messages, media orders, `conclude`, timers, indexes.
//! - `transfer` — a transfer the agent asks for: checks, the trunk's
//!   address, the target's leg, what its end leaves (count, record).
//! - `agent` — the agent's SIP leg: its transactions' reports.
//! - `caller` — the caller's leg: its ACK, CANCEL and our requests' answers.
//! - `uas` — answers outside any call: RFC 3261 §8.2 refusals (405, 501,
//!   416, 420, 415, 406), OPTIONS, 481; stateful to admitted peers,
//!   stateless to others.
//! - `dialogs` — in-dialog requests of either leg, CANCEL, request routing.
//! - `peers` — who may send in a call's dialogs (the established peer, the
//!   trunk's allow-list; credentials again for media moves); refusals.
//! - `session` — RFC 4028 session timers toward the caller.
//! - `ending` — `conclude` and the handoff record (the core then delivers
//!   the outcome: BYE with headers or REFER), requests into transactions,
//!   tear-down.
//! - `connector` — calls whose agent is a WebSocket stream or the builtin
//!   agent: the tap, the connector task, its reports.
//! - `control` — agents' orders (control API, connectors): attributes,
//!   end, transfer; the call's public view.
//! - `admission` — trunks: IP allow-lists and digest auth.
//! - `media` — SDP toward each leg and the RTP relay session.
//! - `stats` — the core's counters for `/metrics`.
//! - `timers` — the calls' timers, pruned of ended calls'.
//! - `call`, `wire` — the state of a call; a message with its destination.

mod admission;
mod agent;
mod call;
mod caller;
mod connector;
mod control;
mod dialogs;
mod drive;
mod ending;
mod gateway;
mod inbound;
mod media;
mod originate;
mod peers;
mod session;
mod stats;
mod timers;
mod transfer;
mod uas;
mod wire;

pub use control::{CallInfo, ControlError, ControlOrder};
pub use gateway::{GatewayEvent, GatewayHandle, start};
#[doc(hidden)]
pub use originate::Pending as OriginatePending;
pub use originate::{OriginateError, OriginateRequest};
pub use stats::{GatewayStats, GatewayStatsSnapshot};
#[doc(hidden)]
pub use transfer::PendingTransfer;
pub use transfer::TransferRequest;
pub use trunkline_call::TransferMode;
