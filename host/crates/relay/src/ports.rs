//! The media port pool: RTP on even ports, RTCP on the next odd one.
//!
//! The pool hands out *bound sockets*, not numbers: a port written into an
//! SDP answer must already be ours, or another program (or a second call)
//! could take it between the answer and the first packet. Binding happens at
//! allocation; a port some other program holds is skipped and counted.
//!
//! # Which pair
//! A random one, so that the next call's ports cannot be guessed from the
//! last call's: ports handed out in order (35000, 35004, ...) let a host
//! that sprays them latch a leg before the peer's first packet (see
//! [`crate::latch`] for why that alone no longer gets it the audio).
//!
//! Freed pairs are still reused late: late packets of an ended call (the
//! peer keeps sending until it processes our BYE) should land on a closed
//! port, not in the next call's audio. So a freed pair first *cools* in a
//! FIFO; pairs are drawn at random from the *free* set only, and when that
//! is empty the older half of the cooling FIFO moves into it. A freed pair
//! is thus never handed out while a pair that was free before it is still
//! unused, and the more recently freed half of the cooling pairs always
//! stays back: the pair freed last is reused last, as with the round-robin
//! this replaced, unless it is the only one left. Each allocation costs O(1)
//! amortised: a pair moves from cooling to free once per use.

use std::collections::VecDeque;
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
    /// Pairs to draw from at random.
    free: Vec<usize>,
    /// Freed pairs, oldest first, kept back from `free` (see module docs).
    cooling: VecDeque<usize>,
    in_use: usize,
}

impl PoolState {
    /// Takes a random pair out of `free`, refilling it from the older half
    /// of `cooling` when empty; `None` when both are empty.
    fn draw(&mut self, rng: &mut SmallRng) -> Option<usize> {
        if self.free.is_empty() {
            let older = self.cooling.len().div_ceil(2);
            self.free.extend(self.cooling.drain(..older));
        }
        if self.free.is_empty() {
            return None;
        }
        let pick = rng.below(self.free.len());
        Some(self.free.swap_remove(pick))
    }
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
                    free: (0..pairs).collect(),
                    cooling: VecDeque::with_capacity(pairs),
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
        let mut rng = SmallRng::seeded();
        let mut state = inner.lock();
        // Pairs another program holds go back to cooling after this search,
        // so each pair is tried at most once per allocation.
        let mut held = Vec::new();
        let result = loop {
            let Some(slot) = state.draw(&mut rng) else {
                inner.exhausted.fetch_add(1, Ordering::Relaxed);
                break Err(RelayError::PortsExhausted {
                    first: inner.first,
                    last: inner.last,
                });
            };
            let port = inner.first + 2 * slot as u16;
            match bind_pair(ip, port, mode) {
                Ok((rtp, rtcp)) => {
                    state.used[slot] = true;
                    state.in_use += 1;
                    break Ok(PortAllocation {
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
                    held.push(slot);
                }
                Err(source) => {
                    state.free.push(slot);
                    break Err(RelayError::Bind { ip, source });
                }
            }
        };
        state.cooling.extend(held);
        result
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

/// xorshift64* seeded from the OS for one allocation: which pair to try is
/// drawn from it, so its state never outlives the allocation and cannot be
/// learnt from the ports other calls were given.
#[derive(Debug)]
struct SmallRng(u64);

impl SmallRng {
    fn seeded() -> SmallRng {
        // Without OS randomness (never seen on Linux) fall back to the
        // process's hash keys and the clock: still unknown to a peer.
        let seed = getrandom::u64().unwrap_or_else(|_| {
            use std::hash::BuildHasher;
            std::collections::hash_map::RandomState::new().hash_one(std::time::Instant::now())
        });
        SmallRng(seed | 1)
    }

    /// A number in `0..n` (`n > 0`); the modulo bias is below 2^-48 for any
    /// pool (at most 2^15 pairs).
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n as u64) as usize
    }
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
            state.cooling.push_back(self.slot);
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
        // RTCP of pair 0 and RTP of pair 2: only 31202/31203 can be bound.
        let squatters = [31201, 31204].map(|p| UdpSocket::bind((LOCAL, p)).unwrap());
        let a = pool.allocate(LOCAL, RtcpMode::Separate).unwrap();
        assert_eq!(a.rtp_port(), 31202);
        let err = pool.allocate(LOCAL, RtcpMode::Separate).unwrap_err();
        assert_eq!(err.status(), 503, "{err}");
        let stats = pool.stats();
        // The second allocation tried both held pairs once each.
        assert!((2..=4).contains(&stats.bind_conflicts), "{stats:?}");
        assert_eq!((stats.in_use, stats.exhausted), (1, 1));
        // Held pairs are not lost: once released they serve calls again.
        drop(squatters);
        let b = pool.allocate(LOCAL, RtcpMode::Separate).unwrap();
        let c = pool.allocate(LOCAL, RtcpMode::Separate).unwrap();
        let mut ports = [a.rtp_port(), b.rtp_port(), c.rtp_port()];
        ports.sort_unstable();
        assert_eq!(ports, [31200, 31202, 31204]);
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
    fn a_freed_pair_waits_for_every_pair_free_before_it() {
        let pool = pool(31500, 31519); // 10 pairs
        let freed = pool.allocate(LOCAL, RtcpMode::Mux).unwrap();
        let freed_port = freed.rtp_port();
        drop(freed);
        let others: Vec<_> = (0..9)
            .map(|_| pool.allocate(LOCAL, RtcpMode::Mux).unwrap())
            .collect();
        assert!(others.iter().all(|a| a.rtp_port() != freed_port));
        let last = pool.allocate(LOCAL, RtcpMode::Mux).unwrap();
        assert_eq!(last.rtp_port(), freed_port, "the only pair left");
    }

    #[test]
    fn allocations_are_not_sequential() {
        let pool = pool(31600, 31799); // 100 pairs
        let ports: Vec<u16> = (0..20)
            .map(|_| pool.allocate(LOCAL, RtcpMode::Mux).unwrap())
            .map(|a| {
                let port = a.rtp_port();
                drop(a);
                port
            })
            .collect();
        let steps_of_two = ports.windows(2).filter(|w| w[1] == w[0] + 2).count();
        // In order, all 19 steps would be +2; at random, about 1 in 100 is.
        assert!(steps_of_two <= 4, "guessable ports: {ports:?}");
        let mut distinct = ports.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), 20, "freed pairs are not reused at once");
        // The draw differs between pools: not a fixed permutation.
        assert_ne!(pool_order(31800, 31999), pool_order(32000, 32199));
    }

    /// The first 20 pairs a fresh pool over `first..=last` hands out, as
    /// offsets from `first`.
    fn pool_order(first: u16, last: u16) -> Vec<u16> {
        let pool = pool(first, last);
        let held: Vec<_> = (0..20)
            .map(|_| pool.allocate(LOCAL, RtcpMode::Mux).unwrap())
            .collect();
        held.iter().map(|a| a.rtp_port() - first).collect()
    }

    #[test]
    fn every_pair_is_reachable_then_exhaustion() {
        let pool = pool(32200, 32299); // 50 pairs
        let held: Vec<_> = (0..50)
            .map(|_| pool.allocate(LOCAL, RtcpMode::Separate).unwrap())
            .collect();
        let mut ports: Vec<u16> = held.iter().map(|a| a.rtp_port()).collect();
        ports.sort_unstable();
        assert_eq!(ports, (32200..32300).step_by(2).collect::<Vec<_>>());
        let err = pool.allocate(LOCAL, RtcpMode::Mux).unwrap_err();
        assert_eq!(err.status(), 503, "{err}");
        drop(held);
        assert_eq!(pool.stats().in_use, 0);
        assert!(pool.allocate(LOCAL, RtcpMode::Mux).is_ok());
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
