//! Policies: WebAssembly components that make Trunkline's business
//! decisions.
//!
//! - [`PolicyEngine`] — one wasmtime engine (pooling allocator, epoch
//!   deadlines, compiled-artifact cache); loads and checks components.
//! - [`PolicyVersion`] — one loaded component; runs `route`/`conclude` in a
//!   fresh instance under the deadline and memory cap, checks the answer.
//! - [`PolicyRegistry`] — the serving version per name, hot-swapped by
//!   [`PolicyRegistry::rescan`]; `route`/`conclude` with trunk fallbacks.
//! - [`watcher`] — turns file-system events into rescans.

mod bindings;
mod cache;
mod context;
mod contract;
mod decide;
mod engine;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod registry;
mod stats;
mod validate;
mod version;
pub mod watcher;

pub use bindings::trunkline::policy::log::Level as LogLevel;
pub use bindings::trunkline::policy::types::{
    Attribute, Call, CallEnd, Codec, Connect, Decision, Direction, EndReason, HandoffField, Header,
    Outcome, Reject, Transfer, Transport,
};
pub use contract::CONTRACTS;
pub use decide::{Concluded, Routed, default_shared_id, fallback_decision, fallback_outcome};
pub use engine::{PolicyEngine, VersionInfo};
pub use error::{DecisionError, LoadError};
pub use registry::{PolicyRegistry, PolicyState, PolicyStatus, RescanReport, missing};
pub use stats::{LATENCY_BUCKETS, LatencyHistogram, PolicyStats};
pub use validate::limit_headers;
pub use version::PolicyVersion;
