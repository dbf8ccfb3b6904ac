//! Trunkline: a WebAssembly-extensible programmable SIP call router.
//!
//! # Layout
//!
//! - [`config`] — the operator's TOML config, with safe defaults.
//! - [`invite`] — an INVITE on the wire becomes the `Call` a policy sees.
//! - [`policy`] — the wasmtime engine that loads policy components, runs
//!   `route`/`conclude` under a deadline and a memory cap, validates answers,
//!   falls back on failure and hot-reloads the watched folder.
//! - [`transport`] — SIP over UDP, TCP and TLS sockets (RFC 3261 §18).
//! - [`b2bua`] — the Five9 ↔ agent back-to-back user agent: admission,
//!   `route`, the agent leg, media, `conclude`, delivery to Five9.
//! - [`connector`] — non-SIP agents: WebSocket audio streams and the
//!   builtin agent.
//! - [`redact`] — secrets (API keys, tokens, digest responses) kept out of
//!   logs.
//! - [`store`] — outcome records for the Handoff API.
//! - [`http`] — the HTTP API: control, Handoff, `/metrics`, status.
//! - `cli` (binary only) — `trunkline run`, `trunkline policy check|run`.

pub mod b2bua;
pub mod config;
pub mod connector;
pub mod http;
pub mod invite;
pub mod policy;
pub mod redact;
pub mod store;
pub mod transport;
