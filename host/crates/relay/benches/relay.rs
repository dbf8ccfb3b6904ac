//! Load benchmark of the relay: N concurrent calls, PCMU on leg A and PCMA
//! on leg B (every packet transcoded), 20 ms packets both ways, over
//! loopback. Reports the relay thread's CPU time per relayed packet
//! (getrusage RUSAGE_THREAD) and the latency the relay adds, measured by the
//! receiving peer from a send timestamp carried in the payload.
//!
//! The same load is then relayed by the cheapest shared-reactor design (one
//! thread, one level-triggered epoll set over all calls' sockets, the same
//! per-packet media work, no latching/stats/events/timers): the difference
//! is what the one-task-per-call design costs (see `src/task.rs`).
//!
//! Also reports the RSS each established session adds (VmRSS before and
//! after starting them, before any media; first round only, since later
//! rounds reuse freed heap). One `RESULT` line per design is for
//! `tests/bench/rtp-relay.sh`, which compares with rtpengine.
//!
//! Run: `cargo bench -p trunkline-relay --bench relay -- [calls] [seconds]`
//! (defaults: 100 calls, 5 s; `RELAY_BENCH_ROUNDS=n` rounds, default 5).
//! Targets: ≤ 2.5 µs CPU per packet, p99 ≤ 1 ms, ≤ 64 KiB RSS per call.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket as StdUdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::watch;
use trunkline_media::g711::{self, Law};
use trunkline_media::rtp::{RtpHeader, RtpPacket, RtpPacketMut, StreamRewriter};
use trunkline_relay::{
    Leg, LegCodec, LegParams, MediaSession, PortPool, RelayConfig, RelayStats, RtcpMode,
};

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const FRAME: usize = 160;
const PTIME: Duration = Duration::from_millis(20);
const WARM_UP: Duration = Duration::from_secs(1);

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| !a.starts_with('-'));
    let calls: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let window = Duration::from_secs(seconds);
    println!(
        "relay bench: {calls} calls, PCMU<->PCMA, {} packets/s, {seconds} s, loopback",
        calls * 2 * 50
    );
    // The machine is shared: interleave the two designs over several rounds
    // and report each one's median round.
    let mut runs: [Vec<RelayRun>; 2] = [Vec::new(), Vec::new()];
    let mut rss_first = 0.0;
    // RELAY_BENCH_ONLY=sessions|reactor runs one design (for profiling).
    let only = std::env::var("RELAY_BENCH_ONLY").ok();
    // RELAY_BENCH_ROUNDS=n overrides the number of rounds per design.
    let rounds: usize = std::env::var("RELAY_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(ROUNDS)
        .max(1);
    for round in 0..rounds {
        for (i, mode) in [Mode::Sessions, Mode::Reactor].into_iter().enumerate() {
            if only.as_deref().is_some_and(|o| o != mode.name()) {
                continue;
            }
            let r = run(mode, calls, window);
            let (total, ..) = r.relay_cpu.per_packet(r.relayed);
            println!(
                "round {round}: {:<9} {total:.2} µs/packet, p99 {} µs",
                mode.name(),
                r.p99
            );
            if round == 0 && mode == Mode::Sessions {
                rss_first = r.rss_per_call;
            }
            runs[i].push(r);
        }
    }
    let mut medians = [0.0; 2];
    for (i, mode) in [Mode::Sessions, Mode::Reactor].into_iter().enumerate() {
        let done = &mut runs[i];
        if done.is_empty() {
            continue;
        }
        done.sort_by(|a, b| {
            let cost = |r: &RelayRun| r.relay_cpu.per_packet(r.relayed).0;
            cost(a).total_cmp(&cost(b))
        });
        let r = &done[done.len() / 2];
        let (total, user, system) = r.relay_cpu.per_packet(r.relayed);
        medians[i] = total;
        println!("{} (median of {rounds}):", mode.describe());
        println!(
            "  {} packets relayed ({} dropped), {} received by peers",
            r.relayed, r.dropped, r.received
        );
        println!(
            "  relay thread CPU {total:.2} µs/packet (user {user:.2}, system {system:.2}); \
             whole process incl. peers {:.2} µs/packet",
            r.process_cpu.as_secs_f64() * 1e6 / r.relayed.max(1) as f64
        );
        println!(
            "  added latency p50 {} µs, p99 {} µs, max {} µs",
            r.p50, r.p99, r.max
        );
        // Only the first round's RSS delta means anything: later rounds
        // reuse heap pages the first one freed (RSS does not shrink).
        let rss = if mode == Mode::Sessions {
            rss_first
        } else {
            0.0
        };
        if mode == Mode::Sessions {
            println!(
                "  RSS per established call {rss:.1} KiB (first round, fresh heap; \
                 target <= 64 KiB)"
            );
        }
        // One machine-readable line per design for tests/bench/rtp-relay.sh.
        println!(
            "RESULT {} cpu_us={total:.2} p50_us={} p99_us={} rss_kib_per_call={:.1}",
            mode.name(),
            r.p50,
            r.p99,
            rss
        );
    }
    if runs.iter().all(|r| !r.is_empty()) {
        println!(
            "per-call tasks cost {:.2} µs/packet more than the ideal shared reactor \
             (targets: <= 2.5 µs/packet, p99 <= 1000 µs)",
            medians[0] - medians[1]
        );
    }
}

/// Rounds per design (default).
const ROUNDS: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The product: one `MediaSession` (tokio task) per call.
    Sessions,
    /// The alternative: one thread, one level-triggered epoll set over every
    /// call's sockets, parse + rewrite + transcode + send, nothing else.
    Reactor,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Sessions => "sessions",
            Mode::Reactor => "reactor",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Mode::Sessions => "MediaSession per call (tokio task, current-thread runtime)",
            Mode::Reactor => "shared reactor floor (raw epoll, no latching/stats/events)",
        }
    }
}

/// Measurement phases, sent from the peers' thread to the relay's.
const WARMING: u8 = 0;
const MEASURING: u8 = 1;
const DONE: u8 = 2;

struct RelayRun {
    /// RSS added per established call, KiB (sessions mode only).
    rss_per_call: f64,
    relay_cpu: Cpu,
    process_cpu: Duration,
    relayed: u64,
    dropped: u64,
    received: u64,
    p50: u64,
    p99: u64,
    max: u64,
}

/// Runs the relay of `mode` on its own thread (so that thread's CPU is the
/// relay's alone) and `calls` pairs of peers on another.
fn run(mode: Mode, calls: usize, window: Duration) -> RelayRun {
    let (addr_tx, addr_rx) = std::sync::mpsc::channel::<Vec<(SocketAddr, SocketAddr)>>();
    let (relay_tx, relay_rx) = std::sync::mpsc::channel::<Vec<(SocketAddr, SocketAddr)>>();
    let (phase_tx, phase_rx) = watch::channel(WARMING);
    let relay: std::thread::JoinHandle<(Cpu, u64, u64, f64)> = std::thread::Builder::new()
        .name("relay".into())
        .spawn(move || {
            let peers = addr_rx.recv().unwrap();
            match mode {
                Mode::Sessions => sessions_relay(peers, relay_tx, phase_rx),
                Mode::Reactor => reactor_relay(peers, relay_tx, phase_rx),
            }
        })
        .unwrap();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (mut latencies, process_cpu) = rt.block_on(async move {
        let epoch = Instant::now();
        let mut sockets = Vec::new();
        for _ in 0..calls {
            let a = UdpSocket::bind((LOCAL, 0)).await.unwrap();
            let b = UdpSocket::bind((LOCAL, 0)).await.unwrap();
            sockets.push((Arc::new(a), Arc::new(b)));
        }
        let addrs = sockets
            .iter()
            .map(|(a, b)| (a.local_addr().unwrap(), b.local_addr().unwrap()))
            .collect();
        addr_tx.send(addrs).unwrap();
        let relay_addrs = relay_rx.recv().unwrap();
        let recording = Arc::new(AtomicBool::new(false));
        let (stop_tx, stop_rx) = watch::channel(false);
        let codes = TimestampCodes::new();
        let mut receivers = Vec::new();
        for (i, ((a, b), (relay_a, relay_b))) in sockets.iter().zip(relay_addrs).enumerate() {
            // Calls start spread over one packet time, as real calls would be.
            let phase = PTIME * i as u32 / calls as u32;
            tokio::spawn(send_loop(
                [
                    (Arc::clone(a), relay_a, Law::Ulaw),
                    (Arc::clone(b), relay_b, Law::Alaw),
                ],
                epoch,
                phase,
                codes,
                stop_rx.clone(),
            ));
            // A's peer receives μ-law (transcoded from B's A-law), and back.
            for (socket, law) in [(a, Law::Ulaw), (b, Law::Alaw)] {
                receivers.push(tokio::spawn(receive_loop(
                    Arc::clone(socket),
                    law,
                    epoch,
                    codes,
                    Arc::clone(&recording),
                    stop_rx.clone(),
                )));
            }
        }
        tokio::time::sleep(WARM_UP).await;
        let cpu0 = process_cpu();
        recording.store(true, Ordering::Relaxed);
        phase_tx.send(MEASURING).unwrap();
        tokio::time::sleep(window).await;
        phase_tx.send(DONE).unwrap();
        recording.store(false, Ordering::Relaxed);
        let cpu = process_cpu() - cpu0;
        stop_tx.send(true).unwrap();
        let mut all = Vec::new();
        for r in receivers {
            all.extend(r.await.unwrap());
        }
        (all, cpu)
    });
    let (relay_cpu, relayed, dropped, rss_per_call) = relay.join().unwrap();
    latencies.sort_unstable();
    let pct = |p: f64| {
        let i = (latencies.len() as f64 * p) as usize;
        latencies
            .get(i.min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    RelayRun {
        rss_per_call,
        relay_cpu,
        process_cpu,
        relayed,
        dropped,
        received: latencies.len() as u64,
        p50: pct(0.50),
        p99: pct(0.99),
        max: latencies.last().copied().unwrap_or(0),
    }
}

/// The product path: a current-thread runtime running one session per call.
/// Returns (CPU, packets relayed, packets dropped) over the measured window.
fn sessions_relay(
    peers: Vec<(SocketAddr, SocketAddr)>,
    relay_tx: std::sync::mpsc::Sender<Vec<(SocketAddr, SocketAddr)>>,
    mut phase: watch::Receiver<u8>,
) -> (Cpu, u64, u64, f64) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let rss0 = vm_rss_kib();
        let pool = PortPool::new(40000..=49999).unwrap();
        let global = Arc::new(RelayStats::new());
        let config = RelayConfig::default();
        let mut sessions = Vec::new();
        let mut relay_addrs = Vec::new();
        for (peer_a, peer_b) in peers {
            let a = pool.allocate(LOCAL, RtcpMode::Mux).unwrap();
            let b = pool.allocate(LOCAL, RtcpMode::Mux).unwrap();
            relay_addrs.push((a.rtp_addr(), b.rtp_addr()));
            let leg = |law, remote| {
                let mut p = LegParams::new(LegCodec::g711(law));
                p.remote_rtp = Some(remote);
                p.rtcp_mux = true;
                p
            };
            let (session, events) = MediaSession::start(
                &config,
                Leg::udp(a, leg(Law::Ulaw, peer_a)),
                Leg::udp(b, leg(Law::Alaw, peer_b)),
                Arc::clone(&global),
            )
            .unwrap();
            sessions.push((session, events));
        }
        // Let every session task run once (allocating what it keeps), then
        // read RSS while the peers' thread waits for our addresses, so the
        // delta is the sessions' own memory (socket buffers are kernel
        // memory and not in RSS).
        tokio::time::sleep(Duration::from_millis(50)).await;
        let rss_per_call = vm_rss_kib().saturating_sub(rss0) as f64 / sessions.len().max(1) as f64;
        relay_tx.send(relay_addrs).unwrap();
        let total = |s: &[(MediaSession, _)]| {
            s.iter().fold((0, 0), |(relayed, dropped), (session, _)| {
                let x = session.stats();
                (
                    relayed + x.packets_a_to_b + x.packets_b_to_a,
                    dropped + x.dropped_source + x.dropped_unroutable + x.send_errors,
                )
            })
        };
        phase.wait_for(|p| *p >= MEASURING).await.unwrap();
        let (cpu0, (relayed0, dropped0)) = (thread_cpu(), total(&sessions));
        phase.wait_for(|p| *p >= DONE).await.unwrap();
        let (cpu1, (relayed1, dropped1)) = (thread_cpu(), total(&sessions));
        for (session, _) in sessions {
            session.stop().await;
        }
        (
            cpu1 - cpu0,
            relayed1 - relayed0,
            dropped1 - dropped0,
            rss_per_call,
        )
    })
}

/// Resident set size of this process in KiB (VmRSS of /proc/self/status).
fn vm_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The alternative architecture at its cheapest: one level-triggered epoll
/// set over all sockets (one `recvfrom` per event, no `EAGAIN` read, one
/// `epoll_wait` per batch of ready sockets), the same per-packet media work
/// (parse, rewrite, transcode), no per-call tasks or timers.
fn reactor_relay(
    peers: Vec<(SocketAddr, SocketAddr)>,
    relay_tx: std::sync::mpsc::Sender<Vec<(SocketAddr, SocketAddr)>>,
    phase: watch::Receiver<u8>,
) -> (Cpu, u64, u64, f64) {
    use std::os::fd::AsRawFd;
    struct Route {
        socket: StdUdpSocket,
        /// Where packets received here go, and how.
        out_to: SocketAddr,
        from: Law,
        to: Law,
        rewriter: StreamRewriter,
    }
    let mut routes = Vec::new();
    let mut relay_addrs = Vec::new();
    for (i, (peer_a, peer_b)) in peers.iter().enumerate() {
        let a = StdUdpSocket::bind((LOCAL, 0)).unwrap();
        let b = StdUdpSocket::bind((LOCAL, 0)).unwrap();
        relay_addrs.push((a.local_addr().unwrap(), b.local_addr().unwrap()));
        for (socket, out_to, from, to) in [
            (a, *peer_b, Law::Ulaw, Law::Alaw),
            (b, *peer_a, Law::Alaw, Law::Ulaw),
        ] {
            socket.set_nonblocking(true).unwrap();
            let rewriter = StreamRewriter::new(i as u32, 0, 0, 8000);
            routes.push(Route {
                socket,
                out_to,
                from,
                to,
                rewriter,
            });
        }
    }
    // SAFETY: plain epoll syscalls on descriptors this function owns; the
    // event array outlives every epoll_wait call that writes into it.
    let epfd = unsafe { libc::epoll_create1(0) };
    for (i, r) in routes.iter().enumerate() {
        let mut event = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: i as u64,
        };
        unsafe { libc::epoll_ctl(epfd, libc::EPOLL_CTL_ADD, r.socket.as_raw_fd(), &mut event) };
    }
    relay_tx.send(relay_addrs).unwrap();
    let mut events = [libc::epoll_event { events: 0, u64: 0 }; 64];
    let mut buf = [0u8; 2048];
    let (mut relayed, mut dropped, mut cpu0) = (0u64, 0u64, None);
    loop {
        let n = unsafe { libc::epoll_wait(epfd, events.as_mut_ptr(), 64, 5) };
        let now = Instant::now();
        for event in &events[..n.max(0) as usize] {
            let i = event.u64 as usize;
            let Ok((len, _)) = routes[i].socket.recv_from(&mut buf) else {
                continue;
            };
            let Ok(mut packet) = RtpPacketMut::parse(&mut buf[..len]) else {
                continue;
            };
            let route = &mut routes[i];
            g711::transcode_in_place(route.from, route.to, packet.payload_mut());
            packet.set_payload_type(route.to.payload_type());
            if !route.rewriter.rewrite(&mut packet, now) {
                continue;
            }
            // Leg A's socket receives from peer A and its partner sends to B.
            let out = &routes[i ^ 1];
            match out.socket.send_to(&buf[..len], routes[i].out_to) {
                Ok(_) => relayed += 1,
                Err(_) => dropped += 1,
            }
        }
        match (*phase.borrow(), cpu0) {
            (MEASURING, None) => {
                cpu0 = Some(thread_cpu());
                (relayed, dropped) = (0, 0);
            }
            (DONE, Some(start)) => {
                unsafe { libc::close(epfd) };
                return (thread_cpu() - start, relayed, dropped, 0.0);
            }
            _ => {}
        }
    }
}

/// One call's two peers: every 20 ms each sends a packet stamped with the
/// send time.
async fn send_loop(
    peers: [(Arc<UdpSocket>, SocketAddr, Law); 2],
    epoch: Instant,
    phase: Duration,
    codes: TimestampCodes,
    mut stop: watch::Receiver<bool>,
) {
    tokio::time::sleep(phase).await;
    let mut ticker = tokio::time::interval(PTIME);
    let tone: Vec<i16> = (0..FRAME)
        .map(|n| (8000.0 * (n as f64 * 0.785).sin()) as i16)
        .collect();
    let mut payloads = [[0u8; FRAME]; 2];
    for (payload, (_, _, law)) in payloads.iter_mut().zip(&peers) {
        law.encode(&tone, payload);
    }
    let mut buf = [0u8; 256];
    let mut seq = 0u16;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => return,
        }
        for ((socket, to, law), payload) in peers.iter().zip(&mut payloads) {
            codes.stamp(*law, epoch.elapsed().as_nanos() as u64, payload);
            let header = RtpHeader {
                payload_type: law.payload_type(),
                sequence: seq,
                timestamp: u32::from(seq) * FRAME as u32,
                ssrc: 7,
                marker: false,
            };
            let len = header.write_packet(payload, &mut buf).unwrap();
            let _ = socket.send_to(&buf[..len], to).await;
        }
        seq = seq.wrapping_add(1);
    }
}

/// Receives one peer's packets; returns the latencies (µs) seen while
/// recording.
async fn receive_loop(
    socket: Arc<UdpSocket>,
    law: Law,
    epoch: Instant,
    codes: TimestampCodes,
    recording: Arc<AtomicBool>,
    mut stop: watch::Receiver<bool>,
) -> Vec<u64> {
    let mut buf = [0u8; 1500];
    let mut out = Vec::with_capacity(600);
    loop {
        let len = tokio::select! {
            r = socket.recv(&mut buf) => match r { Ok(len) => len, Err(_) => continue },
            _ = stop.changed() => return out,
        };
        let now = epoch.elapsed().as_nanos() as u64;
        let Ok(p) = RtpPacket::parse(&buf[..len]) else {
            continue;
        };
        if recording.load(Ordering::Relaxed)
            && let Some(sent) = codes.read(law, p.payload())
        {
            out.push(now.saturating_sub(sent) / 1000);
        }
    }
}

/// Carries a 64-bit send time in the first 16 payload bytes, one nibble per
/// byte, using codes that survive μ-law ↔ A-law transcoding unambiguously.
#[derive(Clone, Copy)]
struct TimestampCodes {
    /// Codes a μ-law sender uses, and their A-law images.
    ulaw: [u8; 16],
    /// Codes an A-law sender uses, and their μ-law images.
    alaw: [u8; 16],
}

impl TimestampCodes {
    fn new() -> TimestampCodes {
        let pick = |map: fn(u8) -> u8| {
            let mut codes = [0u8; 16];
            let mut used = [false; 256];
            let mut n = 0;
            for c in 0x80..=0xFFu8 {
                if n < 16 && !used[map(c) as usize] {
                    used[map(c) as usize] = true;
                    codes[n] = c;
                    n += 1;
                }
            }
            assert_eq!(n, 16);
            codes
        };
        TimestampCodes {
            ulaw: pick(g711::ulaw_to_alaw),
            alaw: pick(g711::alaw_to_ulaw),
        }
    }

    /// Writes `nanos` into a payload of `law`.
    fn stamp(&self, law: Law, nanos: u64, payload: &mut [u8]) {
        let table = if law == Law::Ulaw {
            &self.ulaw
        } else {
            &self.alaw
        };
        for (i, b) in payload[..16].iter_mut().enumerate() {
            *b = table[((nanos >> (60 - 4 * i)) & 0xF) as usize];
        }
    }

    /// Reads the time from a payload received in `law` (sent in the other).
    fn read(&self, law: Law, payload: &[u8]) -> Option<u64> {
        let (sent_codes, map): (&[u8; 16], fn(u8) -> u8) = match law {
            Law::Alaw => (&self.ulaw, g711::ulaw_to_alaw),
            Law::Ulaw => (&self.alaw, g711::alaw_to_ulaw),
        };
        let mut nanos = 0u64;
        for &b in payload.get(..16)? {
            let nibble = sent_codes.iter().position(|&c| map(c) == b)?;
            nanos = (nanos << 4) | nibble as u64;
        }
        Some(nanos)
    }
}

/// CPU time of the calling thread: user and system.
#[derive(Debug, Clone, Copy, Default)]
struct Cpu {
    user: Duration,
    system: Duration,
}

impl std::ops::Sub for Cpu {
    type Output = Cpu;
    fn sub(self, earlier: Cpu) -> Cpu {
        Cpu {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
        }
    }
}

impl Cpu {
    fn total(self) -> Duration {
        self.user + self.system
    }

    /// (total, user, system) in µs per packet.
    fn per_packet(self, packets: u64) -> (f64, f64, f64) {
        let per = |d: Duration| d.as_secs_f64() * 1e6 / packets.max(1) as f64;
        (per(self.total()), per(self.user), per(self.system))
    }
}

/// CPU time (user, system) of the calling thread.
fn thread_cpu() -> Cpu {
    // SAFETY: getrusage only writes the struct we pass, which is plain data
    // for which all-zero bytes are a valid value.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_THREAD, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Cpu {
        user: tv(usage.ru_utime),
        system: tv(usage.ru_stime),
    }
}

/// CPU time (utime + stime) of the whole process, from /proc/self/stat.
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may contain spaces) in parentheses.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the line: indices 11 and 12 here.
    let total = ticks(11) + ticks(12);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_micros(total * 1_000_000 / hz)
}
