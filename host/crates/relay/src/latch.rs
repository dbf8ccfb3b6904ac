//! Symmetric RTP: send to where the peer's packets come from.
//!
//! One-way audio is almost always a NAT between the peer and us: its SDP
//! names a private address (or the right IP with the wrong port), and only
//! its packets show where replies can get through. So each leg *latches* onto
//! the source of a valid RTP packet and sends there from then on.
//!
//! # Rules
//! - Before latching, the relay sends to the SDP address.
//! - **Latch**: the first valid RTP packet latches when it comes from the
//!   SDP's IP (any port: NATs keep addresses more often than ports), or from
//!   anywhere while the *learning window* is open (it opens when the SDP
//!   address is set or changed; a private SDP address is why it exists).
//! - **After latching**, packets from other sources are dropped and counted:
//!   without this, anyone who can reach the port could inject audio or, by
//!   being latched, steal the call's audio (RTP bleed).
//! - **Re-latch**: (1) a re-INVITE that changes the SDP address starts over
//!   (unlatched, window open); (2) a packet from the SDP's IP re-latches once
//!   the latched source has been silent for `relatch_after` — a NAT that
//!   rebinds mid-call moves the peer to a new port with no re-INVITE.
//!   Sources on other IPs never replace a latch outside the window.
//!
//! "Valid" is checked by the caller before asking: RTP version 2 and a payload
//! type negotiated on the leg; STUN, garbage and unknown types never latch.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// What to do with a packet from a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// From the latched source: relay it.
    Accept,
    /// Relay it; the leg now sends to this (new) source.
    Latched,
    /// Not from the latched source: drop and count.
    Reject,
}

/// The latching state of one leg (see module docs).
#[derive(Debug, Clone)]
pub(crate) struct Latch {
    /// Address from the peer's latest SDP that named one.
    sdp: Option<SocketAddr>,
    /// Source the leg is latched to.
    latched: Option<SocketAddr>,
    /// Any source may latch until then.
    window_until: Instant,
    /// Last packet from the latched source.
    last_heard: Instant,
    window: Duration,
    relatch_after: Duration,
}

impl Latch {
    pub(crate) fn new(
        sdp: Option<SocketAddr>,
        window: Duration,
        relatch_after: Duration,
        now: Instant,
    ) -> Latch {
        Latch {
            sdp,
            latched: None,
            window_until: now + window,
            last_heard: now,
            window,
            relatch_after,
        }
    }

    /// Takes the SDP address of a new offer/answer. A different address
    /// unlatches and reopens the window (returns true); the same one (or
    /// none, as on a hold with `0.0.0.0`) keeps the latch.
    pub(crate) fn set_remote(&mut self, sdp: Option<SocketAddr>, now: Instant) -> bool {
        match sdp {
            Some(addr) if self.sdp != Some(addr) => {
                self.sdp = Some(addr);
                self.latched = None;
                self.window_until = now + self.window;
                true
            }
            _ => false,
        }
    }

    /// Judges a valid RTP packet from `source`.
    pub(crate) fn check(&mut self, source: SocketAddr, now: Instant) -> Verdict {
        let from_sdp_ip = self.sdp.is_some_and(|s| s.ip() == source.ip());
        let may_latch = match self.latched {
            Some(latched) if latched == source => {
                self.last_heard = now;
                return Verdict::Accept;
            }
            Some(_) => {
                from_sdp_ip && now.saturating_duration_since(self.last_heard) >= self.relatch_after
            }
            None => from_sdp_ip || now < self.window_until,
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

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_millis(3000);
    const RELATCH: Duration = Duration::from_millis(1000);

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// Replays (ms since start, source) and returns each verdict.
    fn replay(sdp: &str, packets: &[(u64, &str)]) -> Vec<Verdict> {
        let t0 = Instant::now();
        let mut latch = Latch::new(Some(addr(sdp)), WINDOW, RELATCH, t0);
        packets
            .iter()
            .map(|&(ms, src)| latch.check(addr(src), t0 + Duration::from_millis(ms)))
            .collect()
    }

    #[test]
    fn latching_rules() {
        use Verdict::*;
        let sdp = "10.0.0.5:4000";
        // (case, packets, expected verdicts)
        type Case<'a> = (&'a str, &'a [(u64, &'a str)], &'a [Verdict]);
        let cases: &[Case] = &[
            (
                "SDP address exactly",
                &[(0, "10.0.0.5:4000"), (20, "10.0.0.5:4000")],
                &[Latched, Accept],
            ),
            (
                "NAT: public address inside the window",
                &[(100, "203.0.113.9:6100"), (120, "203.0.113.9:6100")],
                &[Latched, Accept],
            ),
            (
                "stranger after latching",
                &[(0, "203.0.113.9:6100"), (10, "198.51.100.66:1234")],
                &[Latched, Reject],
            ),
            (
                "foreign source after the window never latches",
                &[(3500, "198.51.100.66:1234"), (3600, "10.0.0.5:5000")],
                &[Reject, Latched],
            ),
            (
                "same IP new port needs the latched source silent",
                &[
                    (0, "10.0.0.5:4000"),
                    (500, "10.0.0.5:4002"),
                    (1600, "10.0.0.5:4002"),
                    (1620, "10.0.0.5:4000"),
                ],
                &[Latched, Reject, Latched, Reject],
            ),
            (
                "other IP cannot take over even when silent",
                &[(0, "10.0.0.5:4000"), (5000, "198.51.100.66:4000")],
                &[Latched, Reject],
            ),
        ];
        for (case, packets, expected) in cases {
            assert_eq!(replay(sdp, packets), *expected, "{case}");
        }
    }

    #[test]
    fn new_sdp_address_relearns_and_same_address_keeps_the_latch() {
        let t0 = Instant::now();
        let mut latch = Latch::new(Some(addr("10.0.0.5:4000")), WINDOW, RELATCH, t0);
        let nat = addr("203.0.113.9:6100");
        assert_eq!(latch.check(nat, t0), Verdict::Latched);
        // Hold with 0.0.0.0, then resume with the same address: keep sending
        // where the packets came from.
        let later = t0 + Duration::from_secs(60);
        assert!(!latch.set_remote(None, later));
        assert!(!latch.set_remote(Some(addr("10.0.0.5:4000")), later));
        assert_eq!(latch.target(), Some(nat));
        // A new address (agent moved): unlatched, window open again.
        assert!(latch.set_remote(Some(addr("10.0.0.9:7000")), later));
        assert_eq!(latch.target(), Some(addr("10.0.0.9:7000")));
        assert_eq!(latch.latched(), None);
        let other = addr("203.0.113.10:7777");
        assert_eq!(latch.check(other, later + WINDOW / 2), Verdict::Latched);
    }

    #[test]
    fn unknown_remote_latches_only_in_the_window() {
        let t0 = Instant::now();
        let mut latch = Latch::new(None, WINDOW, RELATCH, t0);
        assert_eq!(latch.target(), None);
        let src = addr("192.0.2.1:5004");
        assert_eq!(latch.check(src, t0 + WINDOW), Verdict::Reject);
        let mut latch = Latch::new(None, WINDOW, RELATCH, t0);
        assert_eq!(latch.check(src, t0), Verdict::Latched);
        assert_eq!(latch.target(), Some(src));
    }
}
