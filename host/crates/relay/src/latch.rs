//! Symmetric RTP: send to where the peer's packets come from, but only if
//! that source may speak for the peer.
//!
//! One-way audio is almost always a NAT between the peer and us: its SDP
//! names a private address (or the right IP with the wrong port), and only
//! its packets show where replies can get through. So each leg *latches* onto
//! the source of a valid RTP packet and sends there from then on. Latching
//! is also how media is stolen: our ports are reachable by anyone, and a
//! host that latches a leg before the peer's first packet receives the
//! call's audio. So who may latch depends on how far the SDP can be trusted.
//!
//! # Modes
//! A leg knows two addresses: the SDP connection address (`c=` and `m=`
//! port, from the peer's latest offer/answer) and the *signalling IP*, the
//! IP the peer's SIP came from (the caller's INVITE source, the agent's SIP
//! address).
//! - **Strict** when the SDP address is usable (see below) and either
//!   *public* (routable: nothing suggests a NAT rewrites it) or equal to the
//!   signalling IP (no NAT between SIP and RTP, as on one host or one LAN).
//!   Only sources on the SDP's IP may latch.
//! - **NAT** otherwise: the SDP address is *private* (RFC 1918, CGNAT
//!   100.64/10, loopback, link-local, IPv6 ULA fc00::/7 and link-local) and
//!   not the signalling IP, or unusable (unspecified, multicast, broadcast,
//!   port 0) or missing. The peer's packets may then come from anywhere
//!   its NAT maps them to; sources on the SDP's IP or the signalling IP are
//!   *trusted*, any other is a *stranger*.
//!
//! Addresses are compared after mapping IPv4-mapped IPv6 to IPv4.
//!
//! # Rules
//! - Before latching, the relay sends to the SDP address if it is usable,
//!   else nowhere. It never sends to a source that did not latch: a packet
//!   that is refused is dropped and counted, and gets nothing back.
//! - **The exact SDP ip:port** latches at once, in either mode and whatever
//!   is latched: the peer sending from where it said is the best evidence.
//! - **A trusted source** (the SDP's IP on another port; in NAT mode also
//!   the signalling IP) latches when nothing is, replaces a stranger at
//!   once, and replaces another trusted source once that has been silent
//!   for `relatch_after` (a NAT that rebinds mid-call moves the peer to a
//!   new port with no re-INVITE).
//! - **A stranger** (NAT mode only) latches only while nothing is latched
//!   and the *learning window* is open (it opens when the SDP address is set
//!   or changed). It never replaces a latched source. In strict mode
//!   strangers never latch.
//! - **A new SDP address** (re-INVITE) starts over: unlatched, window open.
//!   An answer without a usable address (a hold with `0.0.0.0`) keeps
//!   everything. A change of signalling IP that makes the latched source
//!   one that may not latch unlatches it.
//!
//! What is left in NAT mode: a host that sprays our ports before the peer's
//! first packet can still latch a leg whose media comes from neither the
//! SDP's IP nor the signalling IP, within the window. That is the price of
//! serving peers behind NATs that send from a third address; peers whose
//! RTP comes from their SIP address are protected, since that IP replaces
//! the stranger with its first packet.
//!
//! "Valid" is checked by the caller before asking: RTP version 2 and a payload
//! type negotiated on the leg; STUN, garbage and unknown types never latch.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// What to do with a packet from a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// From the latched source: relay it.
    Accept,
    /// Relay it; the leg now sends to this (new) source.
    Latched,
    /// Not from a source that may latch now: drop and count.
    Reject,
}

/// What an SDP connection address says about the path to the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AddressKind {
    /// Nothing can be sent there: unspecified, multicast, broadcast, port 0.
    Unusable,
    /// Not routable on the internet (see the module docs): a NAT is likely.
    Private,
    /// Anything else (documentation ranges included, so examples read as
    /// public addresses).
    Public,
}

impl AddressKind {
    /// Classifies an SDP address.
    pub(crate) fn of(addr: SocketAddr) -> AddressKind {
        let ip = addr.ip().to_canonical();
        if addr.port() == 0 || ip.is_unspecified() || ip.is_multicast() {
            return AddressKind::Unusable;
        }
        match ip {
            IpAddr::V4(v4) => {
                let [a, b, ..] = v4.octets();
                if v4.is_broadcast() || a == 0 {
                    AddressKind::Unusable
                } else if v4.is_private()
                    || v4.is_loopback()
                    || v4.is_link_local()
                    || (a == 100 && (64..128).contains(&b))
                {
                    AddressKind::Private
                } else {
                    AddressKind::Public
                }
            }
            IpAddr::V6(v6) => {
                let first = v6.segments()[0];
                if v6.is_loopback() || first & 0xfe00 == 0xfc00 || first & 0xffc0 == 0xfe80 {
                    AddressKind::Private
                } else {
                    AddressKind::Public
                }
            }
        }
    }
}

/// How far a leg's SDP address is trusted (see module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Only the SDP's IP may latch.
    Strict,
    /// The SDP's IP and the signalling IP are trusted; strangers may latch
    /// in the learning window.
    Nat,
}

/// How a source stands with a leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Standing {
    /// The exact SDP ip:port.
    Sdp,
    /// The SDP's IP, or the signalling IP in NAT mode.
    Trusted,
    /// Anyone else, in NAT mode.
    Stranger,
    /// Anyone else, in strict mode: never latches.
    Barred,
}

/// The latching state of one leg (see module docs).
#[derive(Debug, Clone)]
pub(crate) struct Latch {
    /// Usable address from the peer's latest SDP that named one.
    sdp: Option<SocketAddr>,
    /// Where the peer's SIP comes from, when known.
    signalling: Option<IpAddr>,
    /// Source the leg is latched to.
    latched: Option<SocketAddr>,
    /// Strangers may latch until then (NAT mode, nothing latched).
    window_until: Instant,
    /// Last packet from the latched source.
    last_heard: Instant,
    window: Duration,
    relatch_after: Duration,
}

impl Latch {
    pub(crate) fn new(
        sdp: Option<SocketAddr>,
        signalling: Option<IpAddr>,
        window: Duration,
        relatch_after: Duration,
        now: Instant,
    ) -> Latch {
        Latch {
            sdp: sdp.filter(|a| AddressKind::of(*a) != AddressKind::Unusable),
            signalling: signalling.map(|ip| ip.to_canonical()),
            latched: None,
            window_until: now + window,
            last_heard: now,
            window,
            relatch_after,
        }
    }

    /// Takes the addresses of a new offer/answer. A different usable SDP
    /// address unlatches and reopens the window (returns true); the same
    /// one, or none (a hold with `0.0.0.0`), keeps the latch, unless the
    /// signalling IP changed so that the latched source may no longer latch
    /// (also true).
    pub(crate) fn set_remote(
        &mut self,
        sdp: Option<SocketAddr>,
        signalling: Option<IpAddr>,
        now: Instant,
    ) -> bool {
        self.signalling = signalling.map(|ip| ip.to_canonical());
        let sdp = sdp.filter(|a| AddressKind::of(*a) != AddressKind::Unusable);
        match sdp {
            Some(addr) if self.sdp != Some(addr) => {
                self.sdp = Some(addr);
                self.latched = None;
                self.window_until = now + self.window;
                true
            }
            _ => match self.latched {
                Some(latched) if self.standing(latched) == Standing::Barred => {
                    self.latched = None;
                    true
                }
                _ => false,
            },
        }
    }

    /// The leg's mode (see module docs).
    pub(crate) fn mode(&self) -> Mode {
        match self.sdp {
            Some(sdp)
                if AddressKind::of(sdp) == AddressKind::Public
                    || self.signalling == Some(sdp.ip().to_canonical()) =>
            {
                Mode::Strict
            }
            _ => Mode::Nat,
        }
    }

    fn standing(&self, source: SocketAddr) -> Standing {
        let source = canonical(source);
        let sdp = self.sdp.map(canonical);
        if sdp == Some(source) {
            return Standing::Sdp;
        }
        let on_sdp_ip = sdp.is_some_and(|s| s.ip() == source.ip());
        match self.mode() {
            Mode::Strict if on_sdp_ip => Standing::Trusted,
            Mode::Strict => Standing::Barred,
            Mode::Nat if on_sdp_ip || self.signalling == Some(source.ip()) => Standing::Trusted,
            Mode::Nat => Standing::Stranger,
        }
    }

    /// Judges a valid RTP packet from `source`.
    pub(crate) fn check(&mut self, source: SocketAddr, now: Instant) -> Verdict {
        if self.latched == Some(source) {
            self.last_heard = now;
            return Verdict::Accept;
        }
        let may_latch = match (self.standing(source), self.latched) {
            (Standing::Sdp, _) => true,
            (Standing::Barred, _) | (Standing::Stranger, Some(_)) => false,
            (Standing::Trusted, None) => true,
            (Standing::Stranger, None) => now < self.window_until,
            (Standing::Trusted, Some(latched)) => {
                self.standing(latched) == Standing::Stranger
                    || now.saturating_duration_since(self.last_heard) >= self.relatch_after
            }
        };
        if !may_latch {
            return Verdict::Reject;
        }
        self.latched = Some(source);
        self.last_heard = now;
        Verdict::Latched
    }

    /// Where to send: the latched source, else the SDP address.
    pub(crate) fn target(&self) -> Option<SocketAddr> {
        self.latched.or(self.sdp)
    }

    /// The latched source, if any.
    pub(crate) fn latched(&self) -> Option<SocketAddr> {
        self.latched
    }
}

/// `addr` with an IPv4-mapped IPv6 address as IPv4 (for comparisons only:
/// a dual-stack socket needs the mapped form to send).
fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

#[cfg(test)]
#[path = "latch_tests.rs"]
mod tests;
