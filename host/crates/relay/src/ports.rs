//! The media port pool: RTP on even ports, RTCP on the next odd one.
//!
//! The pool hands out *bound sockets*, not numbers: a port written into an
//! SDP answer must already be ours, or another program (or a second call)
//! could take it between the answer and the first packet. Binding happens at
//! allocation; a port some other program holds is skipped and counted.
//!
//! Allocation walks the range round-robin from the last allocated pair, so a
//! freed pair is reused as late as possible: late packets of an ended call
//! (the peer keeps sending until it processes our BYE) land on a closed port
//! instead of in the next call's audio.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::RelayError;

/// How many sockets a leg needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtcpMode {
    /// RTCP on the RTP port (RFC 5761): one socket. The odd port of the pair
    /// stays reserved but unbound.
    Mux,
    /// RTCP on RTP port + 1: both sockets bound. Use it when the peer's
    /// rtcp-mux support is not known yet (an offer to an agent).
    Separate,
}

/// Counters of a pool, for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// RTP/RTCP pairs in the range.
    pub total: usize,
    /// Pairs held by live allocations.
    pub in_use: usize,
    /// Allocations refused because no pair could be bound.
    pub exhausted: u64,
    /// Pairs skipped because another program held one of their ports.
    pub bind_conflicts: u64,
}

/// A range of media ports shared by all calls; cheap to clone.
#[derive(Debug, Clone)]
pub struct PortPool {
    inner: Arc<PoolInner>,
}

#[derive(Debug)]
struct PoolInner {
    /// First (even) port of the range.
    first: u16,
    /// Last port of the range as configured (for error messages).
    last: u16,
    state: Mutex<PoolState>,
    exhausted: AtomicU64,
    bind_conflicts: AtomicU64,
}

#[derive(Debug)]
struct PoolState {
    /// One flag per pair: true while allocated.
    used: Vec<bool>,
    /// Where the next search starts.
    cursor: usize,
    in_use: usize,
}

impl PoolInner {
    fn lock(&self) -> std::sync::MutexGuard<'_, PoolState> {
        // A panic elsewhere while holding the lock leaves the flags valid
        // (each update is a single store), so poisoning is not a reason to fail.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl PortPool {
    /// A pool over `range`; the first port is rounded up to even, and a
    /// trailing even port without its odd partner is left out.
    pub fn new(range: RangeInclusive<u16>) -> Result<PortPool, RelayError> {
        let (first, last) = (*range.start(), *range.end());
        // Port 0 means "any" to the OS, so the range starts at 2 at least.
        let low = first.max(2);
        let start = low.checked_add(low % 2);
        let pairs = match start {
            Some(start) if last > start => usize::from((last - start).div_ceil(2)),
            _ => 0,
        };
        let (Some(start), 1..) = (start, pairs) else {
            return Err(RelayError::EmptyRange { first, last });
        };
        Ok(PortPool {
            inner: Arc::new(PoolInner {
                first: start,
                last,
                state: Mutex::new(PoolState {
                    used: vec![false; pairs],
                    cursor: 0,
                    in_use: 0,
                }),
                exhausted: AtomicU64::new(0),
                bind_conflicts: AtomicU64::new(0),
            }),
        })
    }

    /// Binds a free pair on `ip`. Fails with [`RelayError::PortsExhausted`]
    /// (503) when none is left, or [`RelayError::Bind`] when `ip` is unusable.
    pub fn allocate(&self, ip: IpAddr, mode: RtcpMode) -> Result<PortAllocation, RelayError> {
        let inner = &self.inner;
        let mut state = inner.lock();
        let pairs = state.used.len();
        for step in 0..pairs {
            let slot = (state.cursor + step) % pairs;
            if state.used[slot] {
                continue;
            }
            let port = inner.first + 2 * slot as u16;
            match bind_pair(ip, port, mode) {
                Ok((rtp, rtcp)) => {
                    state.used[slot] = true;
                    state.in_use += 1;
                    state.cursor = (slot + 1) % pairs;
                    return Ok(PortAllocation {
                        rtp,
                        rtcp,
                        guard: PortGuard {
                            pool: Arc::clone(inner),
                            slot,
                        },
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                    inner.bind_conflicts.fetch_add(1, Ordering::Relaxed);
                }
                Err(source) => return Err(RelayError::Bind { ip, source }),
            }
        }
        inner.exhausted.fetch_add(1, Ordering::Relaxed);
        Err(RelayError::PortsExhausted {
            first: inner.first,
            last: inner.last,
        })
    }

    /// Current counters.
    pub fn stats(&self) -> PoolStats {
        let state = self.inner.lock();
        PoolStats {
            total: state.used.len(),
            in_use: state.in_use,
            exhausted: self.inner.exhausted.load(Ordering::Relaxed),
            bind_conflicts: self.inner.bind_conflicts.load(Ordering::Relaxed),
        }
    }
}

fn bind_pair(
    ip: IpAddr,
    port: u16,
    mode: RtcpMode,
) -> std::io::Result<(UdpSocket, Option<UdpSocket>)> {
    let rtp = bind(ip, port)?;
    let rtcp = match mode {
        RtcpMode::Mux => None,
        RtcpMode::Separate => Some(bind(ip, port + 1)?),
    };
    Ok((rtp, rtcp))
}

fn bind(ip: IpAddr, port: u16) -> std::io::Result<UdpSocket> {
    let socket = UdpSocket::bind(SocketAddr::new(ip, port))?;
    // tokio requires non-blocking sockets; set here so the allocation can be
    // handed to a runtime without further syscalls.
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// Bound media sockets of one leg; the pair returns to the pool on drop
/// (after the sockets are closed).
#[must_use = "dropping the allocation closes its sockets and frees the ports"]
#[derive(Debug)]
pub struct PortAllocation {
    // Field order matters: sockets drop (close) before the guard frees the
    // pair, so a new allocation never finds the port still bound by us.
    pub(crate) rtp: UdpSocket,
    pub(crate) rtcp: Option<UdpSocket>,
    pub(crate) guard: PortGuard,
}

impl PortAllocation {
    /// The RTP port (the `m=` port of our SDP).
    pub fn rtp_port(&self) -> u16 {
        self.guard.port()
    }

    /// The local RTP address.
    pub fn rtp_addr(&self) -> SocketAddr {
        self.rtp
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::new(IpAddr::from([0, 0, 0, 0]), self.rtp_port()))
    }

    /// The local RTCP address, when a separate RTCP socket is bound.
    pub fn rtcp_addr(&self) -> Option<SocketAddr> {
        self.rtcp.as_ref().and_then(|s| s.local_addr().ok())
    }

    /// True when RTCP shares the RTP socket.
    pub fn is_mux(&self) -> bool {
        self.rtcp.is_none()
    }
}

/// Returns a pair to its pool when dropped.
#[derive(Debug)]
pub(crate) struct PortGuard {
    pool: Arc<PoolInner>,
    slot: usize,
}

impl PortGuard {
    fn port(&self) -> u16 {
        self.pool.first + 2 * self.slot as u16
    }
}

impl Drop for PortGuard {
    fn drop(&mut self) {
        let mut state = self.pool.lock();
        if let Some(used) = state.used.get_mut(self.slot)
            && *used
        {
            *used = false;
            state.in_use -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    /// A pool over ports nobody else in this test binary uses.
    fn pool(first: u16, last: u16) -> PortPool {
        PortPool::new(first..=last).unwrap()
    }

    #[test]
    fn ranges_are_rounded_to_even_pairs() {
        let cases: [(u16, u16, Option<usize>); 6] = [
            (20000, 29999, Some(5000)),
            (20001, 20004, Some(1)), // 20002/20003; 20004 lacks a partner
            (20000, 20001, Some(1)),
            (20001, 20002, None),
            (20000, 20000, None),
            (65535, 65535, None),
        ];
        for (first, last, pairs) in cases {
            let got = PortPool::new(first..=last).ok().map(|p| p.stats().total);
            assert_eq!(got, pairs, "{first}-{last}");
        }
    }

    #[test]
    fn allocations_bind_even_rtp_and_odd_rtcp() {
        let pool = pool(31000, 31009);
        let separate = pool.allocate(LOCAL, RtcpMode::Separate).unwrap();
        assert_eq!(separate.rtp_port() % 2, 0);
        assert_eq!(separate.rtp_addr().port(), separate.rtp_port());
        assert_eq!(
            separate.rtcp_addr().map(|a| a.port()),
            Some(separate.rtp_port() + 1)
        );
        let mux = pool.allocate(LOCAL, RtcpMode::Mux).unwrap();
        assert!(mux.is_mux() && mux.rtcp_addr().is_none());
        assert_ne!(mux.rtp_port(), separate.rtp_port());
        // Really bound: a second bind on the same port fails.
        assert!(UdpSocket::bind(separate.rtp_addr()).is_err());
    }

    #[test]
    fn exhaustion_is_a_503_and_dropped_pairs_come_back() {
        let pool = pool(31100, 31103);
        let first = pool.allocate(LOCAL, RtcpMode::Separate).unwrap();
        let second = pool.allocate(LOCAL, RtcpMode::Separate).unwrap();
        let err = pool.allocate(LOCAL, RtcpMode::Mux).unwrap_err();
        assert_eq!(err.status(), 503, "{err}");
        let stats = pool.stats();
        assert_eq!((stats.total, stats.in_use, stats.exhausted), (2, 2, 1));
        let freed = first.rtp_port();
        drop(first);
        assert_eq!(pool.stats().in_use, 1);
        let again = pool.allocate(LOCAL, RtcpMode::Separate).unwrap();
        assert_eq!(again.rtp_port(), freed, "the freed pair is bindable again");
        drop((second, again));
        assert_eq!(pool.stats().in_use, 0);
    }

    #[test]
    fn ports_held_by_others_are_skipped_and_counted() {
        let pool = pool(31200, 31205);
        let squatter = UdpSocket::bind((LOCAL, 31201)).unwrap(); // RTCP of pair 0
        let a = pool.allocate(LOCAL, RtcpMode::Separate).unwrap();
        assert_eq!(a.rtp_port(), 31202);
        assert_eq!(pool.stats().bind_conflicts, 1);
        drop(squatter);
    }

    #[test]
    fn freed_pairs_are_reused_last() {
        let pool = pool(31300, 31305);
        let a = pool.allocate(LOCAL, RtcpMode::Mux).unwrap();
        let a_port = a.rtp_port();
        drop(a);
        let b = pool.allocate(LOCAL, RtcpMode::Mux).unwrap();
        assert_ne!(
            b.rtp_port(),
            a_port,
            "late packets must not reach a new call"
        );
    }

    #[test]
    fn foreign_ip_is_a_bind_error_not_exhaustion() {
        let pool = pool(31400, 31403);
        // TEST-NET-1 is never assigned to a local interface.
        let err = pool
            .allocate(IpAddr::from([192, 0, 2, 1]), RtcpMode::Mux)
            .unwrap_err();
        assert!(matches!(err, RelayError::Bind { .. }), "{err}");
        assert_eq!(pool.stats().exhausted, 0);
    }
}
