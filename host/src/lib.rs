//! Trunkline: a WebAssembly-extensible programmable SIP call router.
//!
//! # Layout
//!
//! - [`config`] — the operator's TOML config, with safe defaults.
//! - [`invite`] — an INVITE on the wire becomes the `Call` a policy sees.
//! - [`policy`] — the wasmtime engine that loads policy components, runs
//!   `route`/`conclude` under a deadline and a memory cap, validates answers,
//!   falls back on failure and hot-reloads the watched folder.
//! - `cli` (binary only) — `trunkline run`, `trunkline policy check|run`.

pub mod config;
pub mod invite;
pub mod policy;
