//! Load benchmark of the relay: N concurrent calls, PCMU on leg A and PCMA
//! on leg B (every packet transcoded), 20 ms packets both ways, over
//! loopback. Reports the relay thread's CPU time per relayed packet
//! (getrusage RUSAGE_THREAD) and the latency the relay adds, measured by the
//! receiving peer from a send timestamp carried in the payload.
//!
//! For comparison it also measures the floor: one blocking thread doing only
//! `recv_from` + transcoding + `send_to` for the same packet rate, no tokio,
//! no per-call state. The difference is what the per-call task design costs.
//!
//! Run: `cargo bench -p trunkline-relay --bench relay -- [calls] [seconds]`
//! (defaults: 100 calls, 5 s). Targets: ≤ 2.5 µs CPU per packet, p99 ≤ 1 ms.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket as StdUdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::{oneshot, watch};
use trunkline_media::g711::{self, Law};
use trunkline_media::rtp::{RtpHeader, RtpPacket};
use trunkline_relay::{
    Leg, LegCodec, LegParams, MediaSession, PortPool, RelayConfig, RelayStats, RtcpMode,
    StatsSnapshot,
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
    let rate = calls * 2 * 50;
    println!("relay bench: {calls} calls, PCMU<->PCMA, {rate} packets/s, {seconds} s");

    let (floor_cpu, floor_packets) = floor_cpu(rate, window);
    let (floor, floor_user, floor_sys) = floor_cpu.per_packet(floor_packets);
    println!(
        "floor (blocking recv+transcode+send, 1 thread): {floor:.2} µs CPU/packet \
         (user {floor_user:.2}, system {floor_sys:.2})"
    );

    let r = relay_run(calls, window);
    let (cpu_per_packet, user, system) = r.relay_cpu.per_packet(r.relayed);
    println!(
        "relay: {} packets relayed ({} transcoded, {} dropped), {} received by peers",
        r.relayed, r.stats.transcoded, r.dropped, r.received
    );
    println!(
        "relay thread CPU: {:.3} s = {cpu_per_packet:.2} µs/packet (user {user:.2}, \
         system {system:.2}; target <= 2.5); process CPU incl. peers: {:.2} µs/packet",
        r.relay_cpu.total().as_secs_f64(),
        r.process_cpu.as_secs_f64() * 1e6 / r.relayed as f64
    );
    println!(
        "added latency: p50 {} µs, p99 {} µs, max {} µs (target p99 <= 1000)",
        r.p50, r.p99, r.max
    );
    println!(
        "per-call task overhead over the floor: {:.2} µs/packet",
        cpu_per_packet - floor
    );
}

struct RelayRun {
    relay_cpu: Cpu,
    process_cpu: Duration,
    relayed: u64,
    dropped: u64,
    received: u64,
    stats: StatsSnapshot,
    p50: u64,
    p99: u64,
    max: u64,
}

/// Runs `calls` sessions on a dedicated current-thread runtime (so its
/// thread's CPU is the relay's alone) and peers on another.
fn relay_run(calls: usize, window: Duration) -> RelayRun {
    let (addr_tx, addr_rx) = std::sync::mpsc::channel::<Vec<(SocketAddr, SocketAddr)>>();
    let (relay_tx, relay_rx) = std::sync::mpsc::channel::<Vec<(SocketAddr, SocketAddr)>>();
    let (begin_tx, begin_rx) = oneshot::channel::<()>();
    let (end_tx, end_rx) = oneshot::channel::<()>();
    let relay = std::thread::Builder::new()
        .name("relay".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let peers = addr_rx.recv().unwrap();
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
                relay_tx.send(relay_addrs).unwrap();
                let total = |s: &[(MediaSession, _)]| {
                    s.iter()
                        .fold(StatsSnapshot::default(), |acc, (session, _)| {
                            let x = session.stats();
                            StatsSnapshot {
                                packets_a_to_b: acc.packets_a_to_b + x.packets_a_to_b,
                                packets_b_to_a: acc.packets_b_to_a + x.packets_b_to_a,
                                transcoded: acc.transcoded + x.transcoded,
                                dropped_source: acc.dropped_source + x.dropped_source,
                                dropped_unroutable: acc.dropped_unroutable + x.dropped_unroutable,
                                send_errors: acc.send_errors + x.send_errors,
                                ..acc
                            }
                        })
                };
                begin_rx.await.unwrap();
                let (cpu0, stats0) = (thread_cpu(), total(&sessions));
                end_rx.await.unwrap();
                let (cpu1, stats1) = (thread_cpu(), total(&sessions));
                for (session, _) in sessions {
                    session.stop().await;
                }
                (cpu1 - cpu0, stats1.since(&stats0))
            })
        })
        .unwrap();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (latencies, received, process_cpu) = rt.block_on(async move {
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
        begin_tx.send(()).unwrap();
        tokio::time::sleep(window).await;
        end_tx.send(()).unwrap();
        recording.store(false, Ordering::Relaxed);
        let cpu = process_cpu() - cpu0;
        stop_tx.send(true).unwrap();
        let mut all = Vec::new();
        for r in receivers {
            all.extend(r.await.unwrap());
        }
        let received = all.len() as u64;
        (all, received, cpu)
    });
    let (relay_cpu, stats) = relay.join().unwrap();
    let mut latencies = latencies;
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    RelayRun {
        relay_cpu,
        process_cpu,
        relayed: stats.packets_a_to_b + stats.packets_b_to_a,
        dropped: stats.dropped_source + stats.dropped_unroutable + stats.send_errors,
        received,
        stats,
        p50: pct(0.50),
        p99: pct(0.99),
        max: latencies.last().copied().unwrap_or(0),
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

/// The floor: a blocking thread relaying `rate` packets/s from one socket to
/// another with transcoding and nothing else. Returns its CPU and packets.
fn floor_cpu(rate: usize, window: Duration) -> (Cpu, u64) {
    let relay_in = StdUdpSocket::bind((LOCAL, 0)).unwrap();
    let relay_out = StdUdpSocket::bind((LOCAL, 0)).unwrap();
    let sink = StdUdpSocket::bind((LOCAL, 0)).unwrap();
    let sender = StdUdpSocket::bind((LOCAL, 0)).unwrap();
    relay_in
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    sink.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let (to_relay, to_sink) = (relay_in.local_addr().unwrap(), sink.local_addr().unwrap());
    let done = Arc::new(AtomicBool::new(false));
    let relay_done = Arc::clone(&done);
    let relay = std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        let (cpu0, mut packets) = (thread_cpu(), 0u64);
        while !relay_done.load(Ordering::Relaxed) {
            let Ok(len) = relay_in.recv(&mut buf) else {
                continue;
            };
            g711::transcode_in_place(Law::Ulaw, Law::Alaw, &mut buf[12..len]);
            let _ = relay_out.send_to(&buf[..len], to_sink);
            packets += 1;
        }
        (thread_cpu() - cpu0, packets)
    });
    let sink_done = Arc::clone(&done);
    let sink_thread = std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while !sink_done.load(Ordering::Relaxed) {
            let _ = sink.recv(&mut buf);
        }
    });
    // Paced in 1 ms bursts, like the peers' millisecond timer wheel.
    let per_ms = rate / 1000;
    let packet = [0x80u8; 172];
    let start = Instant::now();
    let mut ms = 0u32;
    while start.elapsed() < window {
        for _ in 0..per_ms.max(1) {
            let _ = sender.send_to(&packet, to_relay);
        }
        ms += 1;
        if let Some(wait) =
            (start + Duration::from_millis(u64::from(ms))).checked_duration_since(Instant::now())
        {
            std::thread::sleep(wait);
        }
    }
    done.store(true, Ordering::Relaxed);
    let (cpu, packets) = relay.join().unwrap();
    sink_thread.join().unwrap();
    (cpu, packets)
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
