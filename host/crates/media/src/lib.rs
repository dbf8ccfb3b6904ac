//! Media logic for the Trunkline gateway, free of I/O: no sockets, no tasks,
//! no clocks (time comes in as `Instant` arguments). The relay calls these on
//! every packet, so the per-packet paths never allocate.
//!
//! # Layout
//! - [`g711`]: μ-law / A-law encode, decode and direct transcoding, table
//!   driven, bit-exact with ITU-T G.191.
//! - [`sdp`]: SDP parse/print, codecs, hold detection, offer/answer (G.711
//!   only toward Five9; 488 with a Warning otherwise).
//! - [`rtp`]: RTP/RTCP views and writers over caller buffers, rtcp-mux
//!   demultiplexing, [`rtp::StreamRewriter`] for per-leg continuity.
//! - [`dtmf`]: RFC 4733 telephone-events: payloads, once-per-press detection,
//!   payload-type remapping between legs.
//! - [`resample`]: 8 ↔ 16 kHz halfband resampling, L16 byte order.
//!
//! Benchmarks of the per-packet costs: `benches/codec.rs`.

pub mod dtmf;
pub mod g711;
pub mod resample;
pub mod rtp;
pub mod sdp;
#[cfg(test)]
mod test_util;
