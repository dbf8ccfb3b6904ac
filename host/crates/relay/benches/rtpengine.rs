//! Load generator for comparing with rtpengine (userspace mode, loopback):
//! the same load as `benches/relay.rs` (N calls, PCMU on leg A, PCMA on leg
//! B, every packet transcoded, 20 ms packets both ways) created through
//! rtpengine's ng protocol (bencode over UDP: `offer` with
//! `codec: {mask: [PCMU], transcode: [PCMA]}`, `answer` with PCMA only,
//! `delete` at the end). Reports rtpengine's CPU per relayed packet
//! (utime+stime of the whole process from /proc/PID/stat), the latency it
//! adds (send time carried in the payload), and its RSS per call.
//!
//! Not a relay test: it needs a running rtpengine. `tests/bench/rtp-relay.sh`
//! starts one and runs:
//! `RTPENGINE_PID=<pid> RTPENGINE_NG=127.0.0.1:22222 cargo bench -p
//! trunkline-relay --bench rtpengine -- [calls] [seconds]`.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket as StdUdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::watch;
use trunkline_media::g711::Law;
use trunkline_media::rtp::{RtpHeader, RtpPacket};

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const FRAME: usize = 160;
const PTIME: Duration = Duration::from_millis(20);
const WARM_UP: Duration = Duration::from_secs(1);

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| !a.starts_with('-'));
    let calls: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let Some(pid) = std::env::var("RTPENGINE_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
    else {
        eprintln!("rtpengine bench: set RTPENGINE_PID (see tests/bench/rtp-relay.sh); skipped");
        return;
    };
    let ng: SocketAddr = std::env::var("RTPENGINE_NG")
        .ok()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 22222)));
    let rounds: usize = std::env::var("RELAY_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3)
        .max(1);
    println!(
        "rtpengine bench: {calls} calls, PCMU<->PCMA, {} packets/s, {seconds} s, ng {ng}",
        calls * 2 * 50
    );
    let mut runs = Vec::new();
    for round in 0..rounds {
        let r = run(pid, ng, calls, Duration::from_secs(seconds), round);
        println!(
            "round {round}: rtpengine {:.2} µs/packet, p99 {} µs, {} received, {} undecoded",
            r.cpu_us, r.p99, r.received, r.undecoded
        );
        runs.push(r);
    }
    // Only the first round's RSS growth means anything: later rounds reuse
    // the memory the first one's calls freed.
    let (rss, rss_traffic) = (runs[0].rss_per_call, runs[0].rss_traffic_per_call);
    runs.sort_by(|a, b| a.cpu_us.total_cmp(&b.cpu_us));
    let r = &runs[runs.len() / 2];
    println!("rtpengine userspace (median of {rounds}):");
    println!(
        "  {} packets received by peers ({} sent), rtpengine CPU {:.2} µs/packet",
        r.received, r.sent, r.cpu_us
    );
    println!(
        "  added latency of the audio (stamp in the samples) p50 {} µs, p99 {} µs, max {} µs",
        r.p50, r.p99, r.max
    );
    println!(
        "  packet transit p50 {} µs, p99 {} µs; RSS per call (first round) {rss:.1} KiB \
         established, {rss_traffic:.1} KiB with media",
        r.transit_p50, r.transit_p99
    );
    println!(
        "RESULT rtpengine cpu_us={:.2} p50_us={} p99_us={} transit_p50_us={} transit_p99_us={} \
         rss_kib_per_call={rss:.1}",
        r.cpu_us, r.p50, r.p99, r.transit_p50, r.transit_p99
    );
}

struct Run {
    cpu_us: f64,
    sent: u64,
    received: u64,
    undecoded: u64,
    p50: u64,
    p99: u64,
    max: u64,
    /// Packet transit through rtpengine (arrival minus the other peer's
    /// latest send), µs: excludes any buffering of the audio itself.
    transit_p50: u64,
    transit_p99: u64,
    /// RSS added per call once established (before media), KiB.
    rss_per_call: f64,
    /// The same after one second of media.
    rss_traffic_per_call: f64,
}

/// One round: create `calls` calls through rtpengine, stream, measure, delete.
fn run(pid: u32, ng: SocketAddr, calls: usize, window: Duration, round: usize) -> Run {
    let control = StdUdpSocket::bind((LOCAL, 0)).unwrap();
    control
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut peers = Vec::new();
    for _ in 0..calls {
        let a = StdUdpSocket::bind((LOCAL, 0)).unwrap();
        let b = StdUdpSocket::bind((LOCAL, 0)).unwrap();
        peers.push((a, b));
    }
    let rss0 = proc_rss_kib(pid);
    let mut routes = Vec::new();
    let mut call_ids = Vec::new();
    for (i, (a, b)) in peers.iter().enumerate() {
        let call_id = format!("bench-{}-{round}-{i}", std::process::id());
        let port_a = a.local_addr().unwrap().port();
        let port_b = b.local_addr().unwrap().port();
        let offer = Bencode::dict([
            ("command", Bencode::str("offer")),
            ("call-id", Bencode::str(&call_id)),
            ("from-tag", Bencode::str("a")),
            ("sdp", Bencode::str(&sdp(port_a, Law::Ulaw))),
            (
                "codec",
                Bencode::dict([
                    ("mask", Bencode::List(vec![Bencode::str("PCMU")])),
                    ("transcode", Bencode::List(vec![Bencode::str("PCMA")])),
                ]),
            ),
        ]);
        // rtpengine's port for leg B is in the offer it forwards to B.
        let to_b = media_addr(&ng_call(&control, ng, &offer));
        let answer = Bencode::dict([
            ("command", Bencode::str("answer")),
            ("call-id", Bencode::str(&call_id)),
            ("from-tag", Bencode::str("a")),
            ("to-tag", Bencode::str("b")),
            ("sdp", Bencode::str(&sdp(port_b, Law::Alaw))),
        ]);
        let to_a = media_addr(&ng_call(&control, ng, &answer));
        routes.push((to_a, to_b));
        call_ids.push(call_id);
    }
    let rss_per_call = proc_rss_kib(pid).saturating_sub(rss0) as f64 / calls.max(1) as f64;

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (latencies, mut transit, undecoded, sent, cpu, rss_traffic) = rt.block_on(async move {
        let epoch = Instant::now();
        let recording = Arc::new(AtomicBool::new(false));
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut senders = Vec::new();
        let mut receivers = Vec::new();
        for (i, ((a, b), (to_a, to_b))) in peers.into_iter().zip(routes).enumerate() {
            a.set_nonblocking(true).unwrap();
            b.set_nonblocking(true).unwrap();
            let a = Arc::new(UdpSocket::from_std(a).unwrap());
            let b = Arc::new(UdpSocket::from_std(b).unwrap());
            let phase = PTIME * i as u32 / calls as u32;
            let last_sent = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
            senders.push(tokio::spawn(send_loop(
                Arc::clone(&last_sent),
                [
                    (Arc::clone(&a), to_a, Law::Ulaw),
                    (Arc::clone(&b), to_b, Law::Alaw),
                ],
                epoch,
                phase,
                Arc::clone(&recording),
                stop_rx.clone(),
            )));
            // Leg A's peer receives what B's sent, and back.
            for (socket, law, from) in [(a, Law::Ulaw, 1), (b, Law::Alaw, 0)] {
                receivers.push(tokio::spawn(receive_loop(
                    Arc::clone(&last_sent),
                    from,
                    socket,
                    law,
                    epoch,
                    Arc::clone(&recording),
                    stop_rx.clone(),
                )));
            }
        }
        tokio::time::sleep(WARM_UP).await;
        // Codec state may be built on the first packets: RSS again now.
        let rss_traffic = proc_rss_kib(pid);
        let cpu0 = proc_cpu(pid);
        recording.store(true, Ordering::Relaxed);
        tokio::time::sleep(window).await;
        recording.store(false, Ordering::Relaxed);
        let cpu = proc_cpu(pid).saturating_sub(cpu0);
        // Let packets in flight arrive before the receivers stop.
        tokio::time::sleep(Duration::from_millis(50)).await;
        stop_tx.send(true).unwrap();
        let mut sent = 0;
        for s in senders {
            sent += s.await.unwrap();
        }
        let (mut all, mut transit, mut undecoded) = (Vec::new(), Vec::new(), 0);
        for r in receivers {
            let (l, t, u) = r.await.unwrap();
            all.extend(l);
            transit.extend(t);
            undecoded += u;
        }
        (all, transit, undecoded, sent, cpu, rss_traffic)
    });
    for call_id in &call_ids {
        let delete = Bencode::dict([
            ("command", Bencode::str("delete")),
            ("call-id", Bencode::str(call_id)),
        ]);
        ng_call(&control, ng, &delete);
    }
    let mut latencies = latencies;
    latencies.sort_unstable();
    transit.sort_unstable();
    let received = latencies.len() as u64 + undecoded;
    let pct = |v: &[u64], p: f64| {
        let i = (v.len() as f64 * p) as usize;
        v.get(i.min(v.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    Run {
        cpu_us: cpu.as_secs_f64() * 1e6 / received.max(1) as f64,
        sent,
        received,
        undecoded,
        p50: pct(&latencies, 0.5),
        p99: pct(&latencies, 0.99),
        max: latencies.last().copied().unwrap_or(0),
        transit_p50: pct(&transit, 0.5),
        transit_p99: pct(&transit, 0.99),
        rss_per_call,
        rss_traffic_per_call: rss_traffic.saturating_sub(rss0) as f64 / calls.max(1) as f64,
    }
}

/// A one-codec SDP body for a peer at 127.0.0.1:`port`.
fn sdp(port: u16, law: Law) -> String {
    let pt = law.payload_type();
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP {pt}\r\na=rtpmap:{pt} {}/8000\r\na=ptime:20\r\na=sendrecv\r\n",
        law.encoding_name()
    )
}

/// The address of the (only) audio stream of an SDP body.
fn media_addr(sdp: &str) -> SocketAddr {
    let ip = sdp
        .lines()
        .find_map(|l| l.strip_prefix("c=IN IP4 "))
        .and_then(|ip| ip.trim().parse::<Ipv4Addr>().ok())
        .expect("SDP without c=IN IP4");
    let port = sdp
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|m| m.split_whitespace().next()?.parse::<u16>().ok())
        .expect("SDP without m=audio");
    SocketAddr::from((ip, port))
}

/// Sends one ng command and returns the `sdp` of the reply (empty if none);
/// panics on an error reply, since the comparison is meaningless then.
fn ng_call(control: &StdUdpSocket, ng: SocketAddr, command: &Bencode) -> String {
    static COOKIE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    // rtpengine caches replies by cookie (retransmission detection), so
    // cookies must not repeat across runs either.
    let cookie = format!(
        "{}-{}-{} ",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis()),
        COOKIE.fetch_add(1, Ordering::Relaxed)
    );
    let mut msg = cookie.clone().into_bytes();
    command.write(&mut msg);
    control.send_to(&msg, ng).unwrap();
    let mut buf = vec![0u8; 65536];
    loop {
        let len = control.recv(&mut buf).expect("no reply from rtpengine ng");
        let Some(body) = buf[..len].strip_prefix(cookie.as_bytes()) else {
            continue; // a late reply to an earlier command
        };
        let text = String::from_utf8_lossy(body);
        assert!(text.contains("6:result2:ok"), "rtpengine refused: {text}");
        if std::env::var_os("RTPENGINE_DEBUG").is_some() {
            eprintln!("ng reply: {text}");
        }
        return Bencode::string_after(body, b"3:sdp").unwrap_or_default();
    }
}

/// The bencode values ng commands need (strings, lists, dictionaries).
enum Bencode {
    Bytes(Vec<u8>),
    List(Vec<Bencode>),
    Dict(BTreeMap<&'static str, Bencode>),
}

impl Bencode {
    fn str(s: &str) -> Bencode {
        Bencode::Bytes(s.as_bytes().to_vec())
    }

    fn dict<const N: usize>(entries: [(&'static str, Bencode); N]) -> Bencode {
        Bencode::Dict(entries.into_iter().collect())
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Bencode::Bytes(b) => {
                out.extend_from_slice(format!("{}:", b.len()).as_bytes());
                out.extend_from_slice(b);
            }
            Bencode::List(items) => {
                out.push(b'l');
                items.iter().for_each(|i| i.write(out));
                out.push(b'e');
            }
            // Keys are sorted (BTreeMap), as bencode requires.
            Bencode::Dict(entries) => {
                out.push(b'd');
                for (k, v) in entries {
                    Bencode::str(k).write(out);
                    v.write(out);
                }
                out.push(b'e');
            }
        }
    }

    /// The byte string following `key` (an encoded key) in a reply.
    fn string_after(reply: &[u8], key: &[u8]) -> Option<String> {
        let at = reply.windows(key.len()).position(|w| w == key)? + key.len();
        let rest = &reply[at..];
        let colon = rest.iter().position(|&b| b == b':')?;
        let len: usize = std::str::from_utf8(&rest[..colon]).ok()?.parse().ok()?;
        let body = rest.get(colon + 1..colon + 1 + len)?;
        Some(String::from_utf8_lossy(body).into_owned())
    }
}

/// One call's two peers: every 20 ms each sends a packet stamped with the
/// send time. Returns the packets sent while recording.
async fn send_loop(
    last_sent: Arc<[AtomicU64; 2]>,
    peers: [(Arc<UdpSocket>, SocketAddr, Law); 2],
    epoch: Instant,
    phase: Duration,
    recording: Arc<AtomicBool>,
    mut stop: watch::Receiver<bool>,
) -> u64 {
    tokio::time::sleep(phase).await;
    let mut ticker = tokio::time::interval(PTIME);
    let mut buf = [0u8; 256];
    let mut payload = [0u8; FRAME];
    let (mut seq, mut sent) = (0u16, 0u64);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => return sent,
        }
        for (leg, (socket, to, law)) in peers.iter().enumerate() {
            let now = epoch.elapsed().as_nanos() as u64;
            stamp(*law, now, &mut payload);
            last_sent[leg].store(now, Ordering::Relaxed);
            let header = RtpHeader {
                payload_type: law.payload_type(),
                sequence: seq,
                timestamp: u32::from(seq) * FRAME as u32,
                ssrc: 7,
                marker: false,
            };
            let len = header.write_packet(&payload, &mut buf).unwrap();
            if socket.send_to(&buf[..len], to).await.is_ok() && recording.load(Ordering::Relaxed) {
                sent += 1;
            }
        }
        seq = seq.wrapping_add(1);
    }
}

/// Receives one peer's RTP in `law` (RTCP and other payload types are
/// ignored); returns the latencies (µs) seen while recording and the count of
/// packets whose stamp did not survive transcoding, and the packets' transit
/// times (µs since the other peer's latest send).
async fn receive_loop(
    last_sent: Arc<[AtomicU64; 2]>,
    from: usize,
    socket: Arc<UdpSocket>,
    law: Law,
    epoch: Instant,
    recording: Arc<AtomicBool>,
    mut stop: watch::Receiver<bool>,
) -> (Vec<u64>, Vec<u64>, u64) {
    let mut buf = [0u8; 1500];
    let mut out = Vec::with_capacity(1024);
    let mut transit = Vec::with_capacity(1024);
    let mut undecoded = 0;
    loop {
        let len = tokio::select! {
            r = socket.recv(&mut buf) => match r { Ok(len) => len, Err(_) => continue },
            _ = stop.changed() => return (out, transit, undecoded),
        };
        let now = epoch.elapsed().as_nanos() as u64;
        let Ok(p) = RtpPacket::parse(&buf[..len]) else {
            continue;
        };
        if p.payload_type() != law.payload_type() || !recording.load(Ordering::Relaxed) {
            continue;
        }
        transit.push(now.saturating_sub(last_sent[from].load(Ordering::Relaxed)) / 1000);
        match read_stamp(law, p.payload()) {
            Some(sent) => out.push(now.saturating_sub(sent) / 1000),
            None => undecoded += 1,
        }
    }
}

/// Level of nibble value `n` (16 levels 4000 apart, far from each other in
/// both laws, so any G.711 transcoder keeps them apart).
fn level(n: u64) -> i16 {
    -30000 + 4000 * n as i16
}

/// Writes `nanos` into the first 16 payload bytes, one nibble per sample.
fn stamp(law: Law, nanos: u64, payload: &mut [u8; FRAME]) {
    let mut samples = [0i16; FRAME];
    for (i, s) in samples[..16].iter_mut().enumerate() {
        *s = level((nanos >> (60 - 4 * i)) & 0xF);
    }
    law.encode(&samples, payload);
}

/// Reads a stamp back from a transcoded payload by nearest level.
fn read_stamp(law: Law, payload: &[u8]) -> Option<u64> {
    let mut samples = [0i16; 16];
    law.decode(payload.get(..16)?, &mut samples);
    let mut nanos = 0u64;
    for s in samples {
        let n = (i32::from(s) + 30000 + 2000).div_euclid(4000);
        if !(0..16).contains(&n) {
            return None;
        }
        nanos = (nanos << 4) | n as u64;
    }
    Some(nanos)
}

/// utime + stime of all threads of process `pid` (/proc/PID/stat).
fn proc_cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
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

/// VmRSS of process `pid` in KiB.
fn proc_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
