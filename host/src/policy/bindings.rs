//! The one `bindgen!` of the host: Rust types and traits generated from
//! `wit/policy.wit`, re-exported under short names by `policy/mod.rs`.
//!
//! Everything else in the host uses these types directly; there is no second
//! copy of the contract to keep in sync.

wasmtime::component::bindgen!({
    world: "policy",
    path: "../wit",
    additional_derives: [PartialEq, Eq, serde::Serialize, serde::Deserialize],
});
