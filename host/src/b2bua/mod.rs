//! The Five9 ↔ agent back-to-back user agent.
//!
//! - `gateway` — the signalling core: one task owning transactions, dialogs
//!   and calls; sockets and clocks meet the I/O-free SIP layers here.
//! - `inbound` — a new INVITE: admission, `route`, the agent leg.
//! - `legs` — responses and in-dialog requests of either leg, CANCEL.
//! - `ending` — `conclude`, the outcome to Five9 (BYE with headers or
//!   REFER), the handoff record, tear-down.
//! - `admission` — trunks: IP allow-lists and digest auth.
//! - `media` — SDP toward each leg and the RTP relay session.
//! - `call`, `wire` — the state of a call; a message with its destination.

mod admission;
mod call;
mod ending;
mod gateway;
mod inbound;
mod legs;
mod media;
mod wire;

pub use gateway::{GatewayEvent, GatewayHandle, start};
