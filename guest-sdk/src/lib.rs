//! Write Trunkline routing policies in plain Rust.
//!
//! A policy is a WebAssembly component that makes two decisions for every
//! call on a trunk: [`Policy::route`] picks the agent (or rejects the call)
//! when the INVITE arrives, and [`Policy::conclude`] says what Five9 is told
//! when the AI leg ends. This crate hides the component ABI: a policy is a
//! type implementing [`Policy`] plus one [`export_policy!`] line.
//!
//! ```
//! use trunkline_guest_sdk::{config, export_policy, CallEnd, Call, Decision, Outcome, Policy};
//!
//! struct ByExtension;
//!
//! impl Policy for ByExtension {
//!     fn route(call: &Call) -> Decision {
//!         let dialed = call.dialed.as_deref().unwrap_or_default();
//!         match config::get(&format!("extension.{dialed}")) {
//!             Some(target) => Decision::connect(target).attribute("extension", dialed),
//!             None => Decision::reject(404, "Unknown extension"),
//!         }
//!     }
//!
//!     fn conclude(end: &CallEnd) -> Outcome {
//!         let contained = end.attributes.get_bool("contained").unwrap_or(false);
//!         Outcome::bye()
//!             .contained(contained)
//!             .header("X-contained", if contained { "true" } else { "false" })
//!     }
//! }
//!
//! export_policy!(ByExtension);
//!
//! // The same logic runs natively in `cargo test`, no Wasm involved.
//! use trunkline_guest_sdk::testing;
//! let call = testing::five9_call().dialed("1001").build();
//! let decision = testing::with_config(&[("extension.1001", "sip:bot@agents.example")], || {
//!     ByExtension::route(&call)
//! });
//! assert_eq!(decision.target(), Some("sip:bot@agents.example"));
//! ```
//!
//! Build a policy crate (`crate-type = ["cdylib", "rlib"]`) into a component
//! with `cargo xtask policies`; the host loads the `.wasm` file.
//!
//! # Layout
//!
//! - [`call`]: the INVITE as a policy sees it ([`Call`], [`Header`], [`Codec`],
//!   [`Transport`]), with header and X- variable lookups.
//! - [`attributes`]: [`Attributes`], the ordered key/value map used for call
//!   attributes.
//! - [`decision`]: the answer to `route` ([`Decision`], [`Connect`], [`Reject`]).
//! - [`end`]: everything known when the AI leg ends ([`CallEnd`], [`EndReason`]).
//! - [`outcome`]: the answer to `conclude` ([`Outcome`], [`Transfer`]) and the
//!   BYE-header limit that moves what does not fit into the handoff data.
//! - [`headers`]: RFC 3261 header name and value checks shared by the builders.
//! - [`config`], [`log`]: the two host services a policy may use.
//! - [`testing`] (native only): Five9-like calls, call ends, config and
//!   captured logs for unit tests.
//! - `convert` (private): conversion between these types and the generated
//!   component bindings.
//! - `arena` (private, wasm only): the bump allocator every decision uses.
#![deny(missing_docs)]
#![deny(unsafe_code)]

#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod arena;
pub mod attributes;
pub mod call;
pub mod config;
mod convert;
pub mod decision;
pub mod end;
pub mod headers;
pub mod log;
pub mod outcome;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

pub use attributes::Attributes;
pub use call::{Call, Codec, Direction, Header, Transport};
pub use decision::{Connect, Decision, Reject};
pub use end::{CallEnd, EndReason};
pub use outcome::{Outcome, Transfer};
/// JSON values for handoff data and `X-MetaData`; re-exported so policies
/// need no direct `serde_json` dependency. `Map` is a JSON object (keys
/// sorted).
///
/// ```
/// use trunkline_guest_sdk::{json, Map, Value};
/// let meta: Value = json!({"intent": "billing"});
/// assert_eq!(meta["intent"], "billing");
/// let mut object = Map::new();
/// object.insert("lang".to_string(), Value::from("en"));
/// assert_eq!(Value::Object(object).to_string(), r#"{"lang":"en"}"#);
/// ```
pub use serde_json::{Map, Value, json};

/// The two decisions a policy makes.
///
/// Both are plain functions of their input plus the policy's
/// [`config`]: the host runs each call in a fresh instance, so no state
/// survives between calls (a `static` set in `route` is gone in `conclude`).
/// Whatever `conclude` needs must travel in the connect attributes.
///
/// ```
/// use trunkline_guest_sdk::{Call, CallEnd, Decision, Outcome, Policy};
///
/// struct Always;
/// impl Policy for Always {
///     fn route(_call: &Call) -> Decision {
///         Decision::connect("builtin:echo")
///     }
///     fn conclude(_end: &CallEnd) -> Outcome {
///         Outcome::bye().contained(true)
///     }
/// }
/// let call = trunkline_guest_sdk::testing::five9_call().build();
/// assert_eq!(Always::route(&call).target(), Some("builtin:echo"));
/// ```
pub trait Policy {
    /// Decides what happens to a new call: connect it to an agent or
    /// reject it with a SIP status. Runs under a deadline (10 ms by
    /// default); a panic or timeout gives the trunk's fallback.
    fn route(call: &Call) -> Decision;

    /// Decides what the caller's side is told when the AI leg ends. Runs
    /// exactly once per routed call.
    fn conclude(end: &CallEnd) -> Outcome;
}

/// Exports a [`Policy`] implementation as the component's `route` and
/// `conclude` functions.
///
/// Use it once, at the top level of the policy crate. On `wasm32` it emits
/// the component exports; on native targets it only checks that the type
/// implements [`Policy`], so the crate's unit tests and several policies
/// linked into one test binary never clash on export symbols.
///
/// ```
/// use trunkline_guest_sdk::{export_policy, Call, CallEnd, Decision, Outcome, Policy};
///
/// struct Reject;
/// impl Policy for Reject {
///     fn route(_call: &Call) -> Decision {
///         Decision::reject(503, "Closed")
///     }
///     fn conclude(_end: &CallEnd) -> Outcome {
///         Outcome::bye()
///     }
/// }
/// export_policy!(Reject);
/// ```
#[macro_export]
macro_rules! export_policy {
    ($policy:ty) => {
        const _: () = {
            fn __trunkline_assert_policy<P: $crate::Policy>() {}
            let _ = __trunkline_assert_policy::<$policy>;
        };
        #[cfg(target_arch = "wasm32")]
        #[doc(hidden)]
        type __TrunklinePolicyExport = $crate::__private::Adapter<$policy>;
        #[cfg(target_arch = "wasm32")]
        $crate::__bindings::__export_policy_bindings!(
            __TrunklinePolicyExport with_types_in $crate::__bindings
        );
    };
}

/// Every decision runs in a fresh instance, so a bump arena is the right
/// allocator on wasm (see `arena.rs`).
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: arena::BumpArena = arena::BumpArena;

/// The generated component bindings. Not part of the API: use the plain
/// types of this crate instead.
#[doc(hidden)]
#[allow(unsafe_code, missing_docs, unreachable_pub)]
pub mod __bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "policy",
        pub_export_macro: true,
        export_macro_name: "__export_policy_bindings",
        default_bindings_module: "trunkline_guest_sdk::__bindings",
    });
}

/// Items the [`export_policy!`] expansion names; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::convert::Adapter;
}
