//! The host's `bindgen!`s: Rust types and traits generated from
//! `wit/policy.wit` (the current contract, re-exported under short names by
//! `policy/mod.rs`), and from `wit/v0.1.0/policy.wit`, the first contract,
//! kept so components built against it still load (`contract` converts).
//!
//! Everything else in the host uses the current types; the old ones appear
//! only in `contract`.

wasmtime::component::bindgen!({
    world: "policy",
    path: "../wit",
    additional_derives: [PartialEq, Eq, serde::Serialize, serde::Deserialize],
});

/// `trunkline:policy@0.1.0`, frozen: what components built before 0.2.0
/// were built against.
pub(crate) mod v0_1 {
    wasmtime::component::bindgen!({
        world: "policy",
        path: "../wit/v0.1.0",
    });
}
