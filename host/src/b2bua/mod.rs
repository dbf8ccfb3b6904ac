//! The Five9 ↔ agent back-to-back user agent.
//!
//! - `gateway` — the signalling core: one task owning transactions, dialogs
//!   and calls; sockets and clocks meet the I/O-free SIP layers here.
//! - `inbound` — a new INVITE: admission, `route`, the agent leg.
//! - `agent` — the agent's SIP leg (an `OutboundLeg`) driven by the gateway.
//! - `caller` — the caller's leg (an `InboundLeg`): provisionals, our 2xx
//!   until the ACK, refusals, its ACK.
//! - `early` — the agent's provisional responses: 180, or 183 with SDP and
//!   early media.
//! - `uas` — answers outside any call: RFC 3261 §8.2 refusals (405, 501,
//!   416, 420, 415, 406), OPTIONS, 481; stateful to admitted peers,
//!   stateless to others.
//! - `dialogs` — in-dialog requests of either leg, CANCEL, request routing.
//! - `peers` — who may send in a call's dialogs (the established peer, the
//!   trunk's allow-list; credentials again for media moves); refusals.
//! - `session` — RFC 4028 session timers toward the caller.
//! - `ending` — `conclude`, the outcome to Five9 (BYE with headers or
//!   REFER), the handoff record, tear-down.
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
mod early;
mod ending;
mod gateway;
mod inbound;
mod media;
mod peers;
mod session;
mod stats;
mod timers;
mod uas;
mod wire;

pub use control::{CallInfo, ControlError, ControlOrder};
pub use gateway::{GatewayEvent, GatewayHandle, start};
pub use stats::{GatewayStats, GatewayStatsSnapshot};
