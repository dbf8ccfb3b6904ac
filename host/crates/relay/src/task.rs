//! The I/O side of a session: one tokio task per call.
//!
//! # Why one task per call
//! `benches/relay.rs` relays 100 PCMU↔PCMA calls (10 000 packets/s) over
//! loopback both ways: with one `MediaSession` task per call, and with the
//! cheapest shared reactor (one thread, one level-triggered epoll set over
//! every socket, same parse/rewrite/transcode, no latching, stats, events or
//! timers). On the 2-vCPU VM it was developed on (shared with other builds;
//! medians of 5 rounds, three runs):
//!
//! | relay thread CPU per packet | total       | user       | system     |
//! |-----------------------------|-------------|------------|------------|
//! | task per call (this design) | 9.8–11.8 µs | 2.2–3.0 µs | 7.6–8.9 µs |
//! | shared epoll reactor        | 7.9–9.4 µs  | 0.5–0.8 µs | 7.2–8.9 µs |
//!
//! The kernel dominates both: one loopback `sendto` costs ~4.5 µs there, and
//! includes delivering to the receiving peer. The per-call design costs about
//! 2 µs per packet more: tokio's wake-up and task poll, plus the `EAGAIN`
//! read that clears edge-triggered readiness (~0.5 µs). A shared reactor on
//! tokio would pay much of that too; only a hand-written epoll loop avoids
//! it, at the price of cross-call state, its own timers, locking for
//! re-INVITE updates, and one slow call stalling the others. At 1 000 calls
//! the difference is about a fifth of a core; tasks also spread over the
//! multi-threaded runtime's workers with no further design, so per-call
//! tasks it is. `recvmmsg` batches (a short batch proves the socket empty,
//! so no `EAGAIN` read) were tried and measured slower: kernel time fell
//! ~0.6 µs per packet but user time rose ~1.4 µs (12.8–13.3 against
//! 10.9–12.1 µs per packet), so they are not used. Most of the remaining cost
//! is the kernel's loopback `sendto` (~4.5 µs a packet on the test VM).
//!
//! # Hot path
//! One receive buffer per worker thread, packets rewritten in place, sends with
//! `try_send_to` (never awaiting: a full socket buffer drops the packet and
//! counts it, as a router would, instead of delaying both directions). A
//! readiness wake-up drains up to [`BATCH`] datagrams, and the sockets are
//! polled from a rotating start, so a flood on one socket cannot starve the
//! others.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant, SystemTime};

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::{Interval, MissedTickBehavior};
use trunkline_media::rtp::{PacketKind, RtpHeader, classify};

use crate::RelayError;
use crate::config::{LegId, LegParams};
use crate::engine::{Engine, Forward, MediaEvent, Route};
use crate::ports::PortGuard;
use crate::session::{Command, Transport};
use crate::stats::{RelayStats, StatsSnapshot, bump};
use crate::tap::TapFrame;

/// Datagrams handled per wake-up before yielding to the other branches.
const BATCH: usize = 32;
/// Generated media's packet interval (hold audio, key presses).
const GENERATE_PERIOD: Duration = Duration::from_millis(20);
/// Receive buffer: larger than any RTP packet over an Ethernet MTU.
const BUF_LEN: usize = 2048;
/// The "source" of frames from a tap (taps are never latched).
const TAP_SOURCE: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);

/// The housekeeping period: fine enough for the media timeout to fire within
/// an eighth of it, coarse enough to cost nothing (≤ 50 wake-ups/s).
pub(crate) fn tick_period(media_timeout: Duration) -> Duration {
    (media_timeout / 8).clamp(Duration::from_millis(20), Duration::from_millis(250))
}

/// The sockets or channels of one leg.
#[derive(Debug)]
pub(crate) struct LegIo {
    rtp: Option<UdpSocket>,
    rtcp: Option<UdpSocket>,
    tap_out: Option<mpsc::Sender<TapFrame>>,
    tap_in: Option<mpsc::Receiver<TapFrame>>,
    /// The frame just taken from `tap_in`.
    tap_frame: Option<TapFrame>,
    /// Header state for packetising tap frames.
    tap_header: RtpHeader,
    // Last field: the ports return to the pool after the sockets close.
    _ports: Option<PortGuard>,
}

impl LegIo {
    /// Registers a leg's transport with the current runtime.
    pub(crate) fn new(transport: Transport, params: LegParams) -> Result<LegIo, RelayError> {
        let register = |socket: std::net::UdpSocket| {
            let ip = socket
                .local_addr()
                .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip());
            UdpSocket::from_std(socket).map_err(|source| RelayError::Bind { ip, source })
        };
        let mut io = LegIo {
            rtp: None,
            rtcp: None,
            tap_out: None,
            tap_in: None,
            tap_frame: None,
            tap_header: RtpHeader {
                marker: true,
                payload_type: params.codec.payload_type,
                ..RtpHeader::default()
            },
            _ports: None,
        };
        match transport {
            Transport::Udp(ports) => {
                io.rtp = Some(register(ports.rtp)?);
                io.rtcp = ports.rtcp.map(register).transpose()?;
                io._ports = Some(ports.guard);
            }
            Transport::Tap(end) => {
                io.tap_out = Some(end.to_connector);
                io.tap_in = Some(end.from_connector);
                // Internal only: the rewriter gives the other leg its own SSRC.
                io.tap_header.ssrc = 0x7A9_7A9;
            }
        }
        Ok(io)
    }

    /// A leg with no transport (C outside a warm brief).
    pub(crate) fn idle() -> LegIo {
        LegIo {
            rtp: None,
            rtcp: None,
            tap_out: None,
            tap_in: None,
            tap_frame: None,
            tap_header: RtpHeader::default(),
            _ports: None,
        }
    }

    pub(crate) fn local_rtp(&self) -> Option<SocketAddr> {
        self.rtp.as_ref().and_then(|s| s.local_addr().ok())
    }
}

/// What woke the session's task.
enum Wake {
    /// A command, or `None` when the handle was dropped.
    Command(Option<Command>),
    /// A socket of the leg is readable (`true`: the RTCP socket).
    Readable(LegId, bool),
    /// A frame from the leg's tap (in its `tap_frame` slot: keeping the
    /// 480-byte frame out of this enum keeps every wake-up a small value).
    Tap(LegId),
    /// Housekeeping is due.
    Tick,
    /// 20 ms of generated media is due (hold audio, key presses).
    Clock,
}

/// Every socket a session may poll, in the order rotated through.
const SOCKETS: [(LegId, bool); 6] = [
    (LegId::A, false),
    (LegId::B, false),
    (LegId::C, false),
    (LegId::A, true),
    (LegId::B, true),
    (LegId::C, true),
];

/// Every leg, in index order.
const LEGS: [LegId; 3] = [LegId::A, LegId::B, LegId::C];

/// Polls every source of work once. A hand-written poll rather than
/// `select!`: no futures built and dropped per packet, no random branch
/// choice; fairness comes from starting at a different socket each `turn`.
fn poll_wake(
    cx: &mut std::task::Context<'_>,
    commands: &mut mpsc::UnboundedReceiver<Command>,
    legs: &mut [LegIo; 3],
    ticker: &mut Interval,
    clock: &mut Option<Interval>,
    turn: usize,
) -> Poll<Wake> {
    if let Poll::Ready(command) = commands.poll_recv(cx) {
        return Poll::Ready(Wake::Command(command));
    }
    for k in 0..SOCKETS.len() {
        let (leg, rtcp) = SOCKETS[(turn + k) % SOCKETS.len()];
        let io = &legs[leg.index()];
        let socket = if rtcp { &io.rtcp } else { &io.rtp };
        // An error is "ready" too: the drain reads and logs it.
        if let Some(socket) = socket
            && socket.poll_recv_ready(cx).is_ready()
        {
            return Poll::Ready(Wake::Readable(leg, rtcp));
        }
    }
    for leg in LEGS {
        let tap = &mut legs[leg.index()].tap_in;
        match tap.as_mut().map(|rx| rx.poll_recv(cx)) {
            Some(Poll::Ready(Some(frame))) => {
                legs[leg.index()].tap_frame = Some(frame);
                return Poll::Ready(Wake::Tap(leg));
            }
            // The connector hung up: the leg stays silent from now on.
            Some(Poll::Ready(None)) => *tap = None,
            _ => {}
        }
    }
    if ticker.poll_tick(cx).is_ready() {
        return Poll::Ready(Wake::Tick);
    }
    if let Some(clock) = clock
        && clock.poll_tick(cx).is_ready()
    {
        return Poll::Ready(Wake::Clock);
    }
    Poll::Pending
}

thread_local! {
    /// The packet buffer of this worker thread, shared by every session it
    /// runs (a session only holds it between awaits, never across one), so
    /// 10 000 calls use one cache-hot buffer per core, not 20 MB of cold ones.
    static BUF: RefCell<[u8; BUF_LEN]> = const { RefCell::new([0; BUF_LEN]) };
}

/// Everything the handlers share.
struct Context {
    engine: Engine,
    events: mpsc::Sender<MediaEvent>,
    stats: Arc<RelayStats>,
}

impl Context {
    fn emit(events: &mpsc::Sender<MediaEvent>, stats: &RelayStats) -> impl FnMut(MediaEvent) {
        move |event| {
            if let Err(mpsc::error::TrySendError::Full(_)) = events.try_send(event) {
                bump(&stats.events_lost, 1);
            }
        }
    }

    /// Drains datagrams from leg `from`'s RTP (or RTCP) socket.
    fn drain(&mut self, from: LegId, rtcp_port: bool, legs: &[LegIo; 3]) {
        let src = &legs[from.index()];
        let Some(socket) = (if rtcp_port { &src.rtcp } else { &src.rtp }) else {
            return;
        };
        let now = Instant::now();
        let mut emit = Context::emit(&self.events, &self.stats);
        BUF.with_borrow_mut(|buf| {
            for _ in 0..BATCH {
                let (len, source) = match socket.try_recv_from(buf) {
                    Ok(received) => received,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                    Err(e) => {
                        tracing::debug!(leg = ?from, error = %e, "media socket receive error");
                        continue;
                    }
                };
                let datagram = &mut buf[..len];
                match classify(datagram) {
                    PacketKind::Rtp if !rtcp_port => {
                        let forward = self.engine.on_rtp(from, source, datagram, now, &mut emit);
                        if let Some(forward) = forward {
                            send(&forward, &buf[..len], legs, &self.stats);
                        }
                    }
                    PacketKind::Rtcp => self.engine.on_rtcp(from, source, datagram, rtcp_port),
                    // STUN/DTLS are not negotiated on these plain RTP/AVP legs.
                    _ => bump(&self.stats.dropped_malformed, 1),
                }
            }
        });
    }

    /// Packetises a frame from leg `from`'s tap and relays it.
    fn tap_frame(&mut self, from: LegId, frame: &TapFrame, legs: &mut [LegIo; 3]) {
        let mut emit = Context::emit(&self.events, &self.stats);
        let now = Instant::now();
        BUF.with_borrow_mut(|buf| {
            let header = &mut legs[from.index()].tap_header;
            let Ok(len) = header.write_packet(frame.payload(), buf) else {
                return;
            };
            header.marker = false;
            header.sequence = header.sequence.wrapping_add(1);
            header.timestamp = header.timestamp.wrapping_add(frame.payload().len() as u32);
            let datagram = &mut buf[..len];
            if let Some(forward) = self
                .engine
                .on_rtp(from, TAP_SOURCE, datagram, now, &mut emit)
            {
                send(&forward, &buf[..len], legs, &self.stats);
            }
        });
    }

    /// Sends the next 20 ms of generated media: hold audio toward the
    /// caller, key presses toward any leg.
    fn generate(&mut self, legs: &[LegIo; 3]) {
        let now = Instant::now();
        BUF.with_borrow_mut(|buf| {
            if let Some((forward, len)) = self.engine.hold_packet(now, buf) {
                send(&forward, &buf[..len], legs, &self.stats);
            }
            for leg in LEGS {
                if let Some((forward, len)) = self.engine.digit_packet(leg, now, buf) {
                    send(&forward, &buf[..len], legs, &self.stats);
                }
            }
        });
    }

    fn tick(&mut self, legs: &[LegIo; 3], published: &mut StatsSnapshot, global: &RelayStats) {
        let now = Instant::now();
        let mut emit = Context::emit(&self.events, &self.stats);
        self.engine.on_tick(now, &mut emit);
        for id in LEGS {
            let wallclock = SystemTime::now();
            BUF.with_borrow_mut(|buf| {
                let Some((addr, len, via_rtcp)) = self.engine.rtcp_report(id, now, wallclock, buf)
                else {
                    return;
                };
                let io = &legs[id.index()];
                // Without an RTCP socket for a non-mux peer, stay silent rather
                // than send reports from a port the peer does not expect.
                let socket = if via_rtcp { &io.rtcp } else { &io.rtp };
                if let Some(socket) = socket {
                    match socket.try_send_to(&buf[..len], addr) {
                        Ok(_) => bump(&self.stats.rtcp_sent, 1),
                        Err(_) => bump(&self.stats.send_errors, 1),
                    }
                }
            });
        }
        publish(&self.stats, published, global);
    }
}

/// Sends a relayed packet out of the destination leg.
fn send(forward: &Forward, datagram: &[u8], legs: &[LegIo; 3], stats: &RelayStats) {
    let dst = &legs[forward.to.index()];
    match forward.route {
        Route::Udp(addr) => {
            let sent = dst.rtp.as_ref().map(|s| s.try_send_to(datagram, addr));
            if !matches!(sent, Some(Ok(_))) {
                bump(&stats.send_errors, 1);
            }
        }
        Route::Tap => {
            let frame = datagram
                .get(forward.payload.clone())
                .and_then(TapFrame::new);
            let queued = match (&dst.tap_out, frame) {
                (Some(tx), Some(frame)) => tx.try_send(frame).is_ok(),
                _ => false,
            };
            if !queued {
                bump(&stats.dropped_unroutable, 1);
            }
        }
    }
}

/// Adds what the session counted since the last call to the global stats.
fn publish(session: &RelayStats, published: &mut StatsSnapshot, global: &RelayStats) {
    let now = session.snapshot();
    global.add_snapshot(&now.since(published));
    *published = now;
}

/// The session task: relays until stopped or its handle is dropped.
pub(crate) async fn run(
    mut engine: Engine,
    mut legs: [LegIo; 3],
    mut commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::Sender<MediaEvent>,
    global: Arc<RelayStats>,
    tick: Duration,
) {
    let stats = Arc::clone(engine.stats());
    let first_tick = tokio::time::Instant::now() + engine.random_phase(tick);
    let mut cx = Context {
        engine,
        events,
        stats,
    };
    let mut published = StatsSnapshot::default();
    let mut ticker = tokio::time::interval_at(first_tick, tick);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut turn = 0usize;
    // The 20 ms clock of generated media (hold audio, key presses),
    // while there is some.
    let mut clock: Option<Interval> = None;
    loop {
        turn = turn.wrapping_add(1);
        let wake = poll_fn(|task_cx| {
            poll_wake(
                task_cx,
                &mut commands,
                &mut legs,
                &mut ticker,
                &mut clock,
                turn,
            )
        })
        .await;
        match wake {
            Wake::Command(Some(Command::Update(leg, params))) => {
                legs[leg.index()].tap_header.payload_type = params.codec.payload_type;
                cx.engine.update(leg, params, Instant::now());
            }
            Wake::Command(Some(Command::Replace(leg, with))) => {
                let (io, params, tap) = *with;
                // The old sockets close here; their ports go back.
                legs[leg.index()] = io;
                cx.engine.replace(leg, params, tap, Instant::now());
            }
            Wake::Command(Some(Command::Brief(with))) => {
                let (io, params, tap) = *with;
                legs[LegId::C.index()] = io;
                cx.engine.brief(params, tap, Instant::now());
            }
            Wake::Command(Some(Command::Complete)) => {
                // The target takes B's place; the agent's sockets close.
                legs.swap(LegId::B.index(), LegId::C.index());
                legs[LegId::C.index()] = LegIo::idle();
                cx.engine.complete(Instant::now());
            }
            Wake::Command(Some(Command::Unbrief)) => {
                legs[LegId::C.index()] = LegIo::idle();
                cx.engine.unbrief(Instant::now());
            }
            Wake::Command(Some(Command::Digits(leg, keys))) => {
                if let Err(e) = cx.engine.send_digits(leg, &keys) {
                    tracing::debug!(?leg, ?e, "key presses not sent");
                    bump(&cx.stats.dropped_unroutable, 1);
                }
            }
            Wake::Clock => cx.generate(&legs),
            Wake::Command(Some(Command::Stop) | None) => break,
            Wake::Readable(leg, rtcp) => cx.drain(leg, rtcp, &legs),
            Wake::Tap(leg) => {
                if let Some(frame) = legs[leg.index()].tap_frame.take() {
                    cx.tap_frame(leg, &frame, &mut legs);
                }
            }
            Wake::Tick => cx.tick(&legs, &mut published, &global),
        }
        // The generated-media clock runs only while there is some.
        match (cx.engine.needs_clock(), clock.is_some()) {
            (true, false) => {
                let mut c = tokio::time::interval(GENERATE_PERIOD);
                c.set_missed_tick_behavior(MissedTickBehavior::Delay);
                clock = Some(c);
            }
            (false, true) => clock = None,
            _ => {}
        }
    }
    publish(&cx.stats, &mut published, &global);
}
