//! The per-call engine for the fuzz targets in `tests/fuzz`: not part of the
//! relay's API. The engine is sans-IO, so a target can drive it with any
//! datagrams, sources and clock and check what it would send; this module
//! only makes it reachable and its randomness repeatable.

use std::net::SocketAddr;
use std::ops::Range;
use std::time::{Instant, SystemTime};

use crate::config::{LegId, LegParams, RelayConfig};
use crate::engine::{Engine, MediaEvent, Route};

/// One call's relay logic, seeded so a run repeats exactly.
#[derive(Debug)]
pub struct FuzzEngine(Engine);

/// A packet the engine would send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forwarded {
    /// The leg it goes out on.
    pub to: LegId,
    /// The UDP destination; `None` for a tap leg.
    pub udp: Option<SocketAddr>,
    /// Where the payload sits in the rewritten buffer.
    pub payload: Range<usize>,
}

impl FuzzEngine {
    /// Two legs (params, is a tap) as a session starts them.
    pub fn new(
        config: RelayConfig,
        a: (LegParams, bool),
        b: (LegParams, bool),
        now: Instant,
        seed: u64,
    ) -> FuzzEngine {
        FuzzEngine(Engine::with_seed(config, a, b, now, seed))
    }

    /// An RTP datagram from `from`'s peer, rewritten in place.
    pub fn on_rtp(
        &mut self,
        from: LegId,
        source: SocketAddr,
        buf: &mut [u8],
        now: Instant,
        events: &mut Vec<MediaEvent>,
    ) -> Option<Forwarded> {
        let forward = self
            .0
            .on_rtp(from, source, buf, now, &mut |e| events.push(e))?;
        Some(Forwarded {
            to: forward.to,
            udp: match forward.route {
                Route::Udp(addr) => Some(addr),
                Route::Tap => None,
            },
            payload: forward.payload,
        })
    }

    /// An RTCP datagram from `from`'s peer.
    pub fn on_rtcp(&mut self, from: LegId, source: SocketAddr, buf: &[u8], on_rtcp_port: bool) {
        self.0.on_rtcp(from, source, buf, on_rtcp_port);
    }

    /// Housekeeping at `now`.
    pub fn on_tick(&mut self, now: Instant, events: &mut Vec<MediaEvent>) {
        self.0.on_tick(now, &mut |e| events.push(e));
    }

    /// Our sender report for `id` when one is due: (destination, length,
    /// from the RTCP socket).
    pub fn rtcp_report(
        &mut self,
        id: LegId,
        now: Instant,
        wallclock: SystemTime,
        buf: &mut [u8],
    ) -> Option<(SocketAddr, usize, bool)> {
        self.0.rtcp_report(id, now, wallclock, buf)
    }

    /// A re-INVITE's outcome for `id`.
    pub fn update(&mut self, id: LegId, params: LegParams, now: Instant) {
        self.0.update(id, params, now);
    }
}
