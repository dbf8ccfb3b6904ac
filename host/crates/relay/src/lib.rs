//! The media plane's I/O: RTP relaying between the two legs of a call.
//!
//! The per-packet logic comes from `trunkline-media` (G.711, RTP rewriting,
//! DTMF); this crate adds sockets, tasks, clocks and the policies around
//! them: which ports, where to send (latching), when to stop (hold), when to
//! complain (media timeout).
//!
//! # Layout
//! - [`ports`]: [`PortPool`] of even RTP / odd RTCP ports, drawn at random,
//!   bound at allocation, returned on drop; exhaustion maps to 503.
//! - [`config`]: [`RelayConfig`] (timeouts, latching windows) and
//!   [`LegParams`] (one leg's offer/answer outcome).
//! - [`latch`]: symmetric RTP rules: who may latch a leg (strict and NAT
//!   modes from the SDP and signalling addresses), strangers, re-latch.
//! - `engine`: the sans-IO per-call state machine: latch, DTMF, hold,
//!   transcode, rewrite, route; [`MediaEvent`]s for the owner.
//! - `report`: RTCP termination and the relay's own sender reports.
//! - [`tap`](mod@tap): in-process legs (WebSocket/built-in agents) fed with frames.
//! - [`session`]: [`MediaSession`], the B2BUA's handle; `task` runs it (one
//!   tokio task per call, justified there by measurement).
//! - [`stats`]: per-session and relay-wide counters.
//!
//! Benchmark: `cargo bench -p trunkline-relay --bench relay` (100 calls).

pub mod config;
mod engine;
mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod latch;
pub mod ports;
mod report;
pub mod session;
pub mod stats;
pub mod tap;
mod task;

pub use config::{LegCodec, LegId, LegParams, RelayConfig};
pub use engine::{MAX_QUEUED_DIGITS, MediaEvent};
pub use error::RelayError;
pub use ports::{PoolStats, PortAllocation, PortPool, RtcpMode};
pub use session::{Leg, MediaSession, Transport};
pub use stats::{RelayStats, StatsSnapshot};
pub use tap::{TapEnd, TapFrame, TapHandle, tap};
