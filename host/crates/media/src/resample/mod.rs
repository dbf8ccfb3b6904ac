//! Sample-rate conversion between narrowband (8 kHz, what G.711 carries) and
//! wideband (16 kHz, what many agents' speech models take), plus L16 byte
//! order helpers.
//!
//! Typical use by a WebSocket agent leg: decode G.711 to linear, [`Upsampler`]
//! to 16 kHz, [`l16_to_be`] into the message; the reverse with
//! [`l16_from_be`], [`Downsampler`], encode. One converter per direction per
//! call, fed 20 ms frames (160 ↔ 320 samples).

pub mod halfband;
pub mod l16;

pub use halfband::{Downsampler, Upsampler};
pub use l16::{l16_from_be, l16_to_be};
