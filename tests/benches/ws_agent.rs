//! WebSocket-agent benchmark: `tests/bench/ws-agent.sh` (or
//! `cargo bench -p trunkline-tests --bench ws_agent -- CALLS SECS ROUNDS`).
//!
//! Runs the real `trunkline` binary (release build, `TRUNKLINE_BIN`) three
//! times with CALLS concurrent calls each, route-reason sending every call to
//!
//! - `relay`: a SIP agent answering PCMU, RTP both ways (the plain relayed
//!   call, the reference);
//! - `ws-mulaw`: a WebSocket agent, μ-law 8 kHz;
//! - `ws-l16`: a WebSocket agent, L16 16 kHz (`#audio=l16-16000`: μ-law ↔
//!   linear and 8 ↔ 16 kHz resampling in the host).
//!
//! In every mode the caller sends 20 ms PCMU packets and the agent answers
//! with 20 ms of audio every 20 ms (RTP, or one `media` message), so both
//! directions carry a conversation's load. CPU = utime+stime of the
//! trunkline process (/proc/PID/stat) over SECS seconds after a warm-up,
//! per call. Latency caller → agent = arrival at the agent minus the
//! caller's send time of the same 20 ms frame (the frame index rides in the
//! first payload bytes for μ-law; for L16, the stream's `chunk` number).
//!
//! The modes run ROUNDS times in turn (default 3). `RESULT` lines give the
//! medians; `ratio_to_relay` is the median of each round's ratio, since
//! this VM's speed drifts by a third between runs a minute apart.

#[path = "../support/mod.rs"]
mod support;

use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::json;
use support::rtp::{PCMU, encode, packet, tone};
use support::sip_text::UdpPeer;
use support::sipp::loopback;
use support::ws_agent::{AgentConn, WsAgent};

const WARMUP: Duration = Duration::from_secs(2);
const SOON: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Relay,
    WsMulaw,
    WsL16,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Relay => "relay",
            Mode::WsMulaw => "ws-mulaw",
            Mode::WsL16 => "ws-l16",
        }
    }
}

struct Gateway {
    child: Child,
    sip: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_gateway(target: &str) -> Gateway {
    let bin = std::env::var("TRUNKLINE_BIN").unwrap_or_else(|_| {
        xtask::workspace_root()
            .join("target/release/trunkline")
            .display()
            .to_string()
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies).expect("policies dir");
    std::fs::copy(
        support::built().policies.join("route-reason.wasm"),
        policies.join("route-reason.wasm"),
    )
    .expect("route-reason.wasm");
    let sip = loopback();
    let http = std::net::TcpListener::bind((sip.ip(), 0))
        .and_then(|l| l.local_addr())
        .expect("HTTP port");
    let config = format!(
        "[policy]\ndir = \"policies\"\n\n[sip]\nudp = \"{sip}\"\ntcp = false\n\n\
         [http]\nlisten = \"{http}\"\n\n[gateway]\nring_timeout_secs = 10\n\n\
         [policies.route-reason]\ndefault_agent = \"{target}\"\n\n\
         [[trunk]]\nname = \"five9\"\npolicy = \"route-reason\"\nallow = [\"127.0.0.0/8\"]\n\n\
         [store]\nbackend = \"memory\"\n"
    );
    let path = dir.path().join("trunkline.toml");
    std::fs::write(&path, config).expect("config");
    let log = dir.path().join("trunkline.log");
    let child = Command::new(&bin)
        .args(["run", "--config"])
        .arg(&path)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .unwrap_or_else(|e| panic!("starting {bin}: {e} (cargo build --release -p trunkline)"));
    // Ready when it answers an OPTIONS.
    let probe = UdpPeer::new(sip);
    let until = Instant::now() + SOON;
    loop {
        probe.send(&format!(
            "OPTIONS sip:{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-probe{n}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:probe@{me}>;tag=p\r\nTo: <sip:{sip}>\r\n\
             Call-ID: probe-{n}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
            me = probe.me,
            n = until.elapsed().as_nanos()
        ));
        if probe.recv(Duration::from_millis(200)).is_some() {
            break;
        }
        assert!(
            Instant::now() < until,
            "trunkline did not start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }
    Gateway {
        child,
        sip,
        _dir: dir,
    }
}

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc stat");
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    fields[11].parse::<u64>().unwrap_or(0) + fields[12].parse::<u64>().unwrap_or(0)
}

fn clock_ticks_per_sec() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

fn sdp(rtp: SocketAddr) -> String {
    let ip = rtp.ip();
    format!(
        "v=0\r\no=x 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\na=sendrecv\r\n",
        rtp.port()
    )
}

/// One caller: SIP done, RTP socket and the gateway's RTP address.
struct Caller {
    rtp: UdpSocket,
    target: SocketAddr,
}

fn place_call(gw: SocketAddr, n: usize) -> Caller {
    let sip = UdpPeer::new(gw);
    let rtp = UdpSocket::bind(loopback()).expect("caller RTP");
    let body = sdp(rtp.local_addr().expect("addr"));
    let me = sip.me;
    let cid = format!("bench-{}-{n}", std::process::id());
    sip.send(&format!(
        "INVITE sip:+14155550100@{gw} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-i{n};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:+14155550123@{me}>;tag=f9-{n}\r\nTo: <sip:+14155550100@{gw}>\r\n\
         Call-ID: {cid}\r\nCSeq: 1 INVITE\r\nContact: <sip:five9@{me}>\r\nX-CallSessionID: S{n}\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ));
    let ok = sip.wait_for_msg("200 to the INVITE", SOON, |m| {
        m.header("Call-ID") == Some(cid.as_str()) && m.status().is_some_and(|s| s >= 200)
    });
    assert_eq!(ok.status(), Some(200), "call {n}: {ok:?}");
    sip.send(&format!(
        "ACK {} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-a{n};rport\r\nMax-Forwards: 70\r\n\
         From: {}\r\nTo: {}\r\nCall-ID: {cid}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
        ok.contact_uri().expect("Contact"),
        ok.header("From").unwrap_or_default(),
        ok.header("To").unwrap_or_default(),
    ));
    std::mem::forget(sip); // Keep the SIP port bound for the call's life.
    Caller {
        rtp,
        target: ok.rtp_target(),
    }
}

/// The SIP agent of the relay mode: answers INVITEs with PCMU, hands out
/// (RTP socket, where to send) per call.
fn sip_agent(peer: UdpPeer, calls: usize, tx: mpsc::Sender<(UdpSocket, SocketAddr)>) {
    let mut answered = 0;
    while answered < calls {
        let Some(inv) = peer.recv(SOON) else { return };
        if inv.method() != Some("INVITE") {
            continue;
        }
        let rtp = UdpSocket::bind(loopback()).expect("agent RTP");
        let body = sdp(rtp.local_addr().expect("addr"));
        let mut text = String::from("SIP/2.0 200 OK\r\n");
        for via in inv.headers("Via") {
            text += &format!("Via: {via}\r\n");
        }
        text += &format!(
            "To: {};tag=agent{answered}\r\n",
            inv.header("To").unwrap_or_default()
        );
        for name in ["From", "Call-ID", "CSeq"] {
            text += &format!("{name}: {}\r\n", inv.header(name).unwrap_or_default());
        }
        text += &format!(
            "Contact: <sip:agent@{}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
            peer.me,
            body.len()
        );
        peer.send(&text);
        let _ = tx.send((rtp, inv.rtp_target()));
        answered += 1;
    }
}

/// The agent's side of one call.
enum AgentSide {
    Rtp(UdpSocket, SocketAddr),
    Ws(Box<AgentConn>),
}

/// Runs one agent until `stop`: records (frame index, arrival) of caller
/// audio and sends 20 ms of audio every 20 ms.
fn run_agent(side: AgentSide, mode: Mode, stop: Arc<AtomicBool>) -> Vec<(u32, Instant)> {
    let mut arrivals = Vec::new();
    let reply_ulaw = encode(PCMU, &tone(440.0, 9000.0, 0, 160));
    let reply_l16: Vec<u8> = (0..320)
        .flat_map(|i| {
            ((9000.0 * (i as f64 * 2.0 * std::f64::consts::PI * 440.0 / 16000.0).sin()) as i16)
                .to_le_bytes()
        })
        .collect();
    let media = json!({"event": "media", "media": {"payload": BASE64.encode(
        if mode == Mode::WsL16 { &reply_l16[..] } else { &reply_ulaw[..] })}});
    let mut next = Instant::now();
    let mut seq: u16 = 0;
    match side {
        AgentSide::Rtp(sock, to) => {
            let mut buf = [0u8; 2048];
            while !stop.load(Ordering::Relaxed) {
                let now = Instant::now();
                if now >= next {
                    let p = packet(PCMU, false, seq, u32::from(seq) * 160, 0xa9e7, &reply_ulaw);
                    let _ = sock.send_to(&p, to);
                    seq = seq.wrapping_add(1);
                    next += Duration::from_millis(20);
                }
                sock.set_read_timeout(Some(
                    next.saturating_duration_since(Instant::now())
                        .max(Duration::from_micros(200)),
                ))
                .expect("timeout");
                if let Ok(n) = sock.recv(&mut buf)
                    && n >= 14
                {
                    arrivals.push((
                        u32::from(u16::from_be_bytes([buf[12], buf[13]])),
                        Instant::now(),
                    ));
                }
            }
        }
        AgentSide::Ws(mut conn) => {
            while !stop.load(Ordering::Relaxed) {
                if Instant::now() >= next {
                    conn.send(media.clone());
                    next += Duration::from_millis(20);
                }
                let left = next
                    .saturating_duration_since(Instant::now())
                    .max(Duration::from_micros(200));
                if let Some(e) = conn.next_event(left)
                    && e["event"] == "media"
                {
                    let at = Instant::now();
                    let index = if mode == Mode::WsL16 {
                        e["media"]["chunk"]
                            .as_str()
                            .and_then(|c| c.parse::<u32>().ok())
                            .unwrap_or(0)
                            .wrapping_sub(1)
                    } else {
                        let p = BASE64
                            .decode(e["media"]["payload"].as_str().unwrap_or_default())
                            .unwrap_or_default();
                        if p.len() < 2 {
                            continue;
                        }
                        u32::from(u16::from_be_bytes([p[0], p[1]]))
                    };
                    arrivals.push((index, at));
                }
                conn.media.clear();
                conn.events.clear();
            }
        }
    }
    arrivals
}

struct Figures {
    cpu_ms_per_call_s: f64,
    p50_us: f64,
    p99_us: f64,
    received: usize,
    expected: usize,
}

fn run_mode(mode: Mode, calls: usize, secs: u64) -> Figures {
    let ws = WsAgent::bind();
    let sip_agent_peer = UdpPeer::new("0.0.0.0:9".parse().expect("addr"));
    let target = match mode {
        Mode::Relay => format!("sip:agent@{}", sip_agent_peer.me),
        Mode::WsMulaw => ws.url(""),
        Mode::WsL16 => ws.url("#audio=l16-16000"),
    };
    let gw = start_gateway(&target);
    let pid = gw.child.id();
    let (tx, rx) = mpsc::channel();
    let mut agent_peer = sip_agent_peer;
    agent_peer.gw = gw.sip;
    let sip_thread =
        (mode == Mode::Relay).then(|| std::thread::spawn(move || sip_agent(agent_peer, calls, tx)));

    let mut callers = Vec::new();
    let mut sides = Vec::new();
    for n in 0..calls {
        let gw_sip = gw.sip;
        let calling = std::thread::spawn(move || place_call(gw_sip, n));
        let side = match mode {
            Mode::Relay => {
                let (sock, to) = rx.recv_timeout(SOON).expect("the SIP agent got the INVITE");
                AgentSide::Rtp(sock, to)
            }
            _ => AgentSide::Ws(Box::new(ws.accept(SOON))),
        };
        callers.push(calling.join().expect("caller"));
        sides.push(side);
    }
    if let Some(t) = sip_thread {
        let _ = t.join();
    }

    let stop = Arc::new(AtomicBool::new(false));
    let agents: Vec<_> = sides
        .into_iter()
        .map(|side| {
            let stop = stop.clone();
            std::thread::spawn(move || run_agent(side, mode, stop))
        })
        .collect();

    // The callers: one thread, every call's frame k sent at tick k.
    let total = ((WARMUP.as_millis() as u64 + secs * 1000) / 20) as usize;
    let sender = std::thread::spawn(move || {
        let voice = encode(PCMU, &tone(1004.0, 9000.0, 0, 160));
        let mut sent_at = vec![Vec::with_capacity(total); callers.len()];
        let start = Instant::now();
        for k in 0..total {
            let mut payload = voice.clone();
            payload[..2].copy_from_slice(&(k as u16).to_be_bytes());
            for (c, at) in callers.iter().zip(sent_at.iter_mut()) {
                let p = packet(PCMU, k == 0, k as u16, (k * 160) as u32, 0xca11, &payload);
                at.push(Instant::now());
                let _ = c.rtp.send_to(&p, c.target);
            }
            let next = start + Duration::from_millis(20 * (k as u64 + 1));
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
        }
        (sent_at, callers)
    });
    std::thread::sleep(WARMUP);
    let ticks = clock_ticks_per_sec();
    let before = cpu_ticks(pid);
    let window = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    let after = cpu_ticks(pid);
    let elapsed = window.elapsed().as_secs_f64();
    let (sent_at, _callers) = sender.join().expect("sender");
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    let first_measured = (WARMUP.as_millis() / 20) as usize;
    let mut latencies = Vec::new();
    for (agent, sent) in agents.into_iter().zip(&sent_at) {
        for (index, at) in agent.join().expect("agent") {
            let k = index as usize;
            if k >= first_measured && k < sent.len() {
                latencies.push(at.saturating_duration_since(sent[k]).as_micros() as f64);
            }
        }
    }
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(f64::NAN)
    };
    drop(gw);
    Figures {
        cpu_ms_per_call_s: (after - before) as f64 / ticks * 1000.0 / elapsed / calls as f64,
        p50_us: pct(0.5),
        p99_us: pct(0.99),
        received: latencies.len(),
        expected: calls * (total - first_measured),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let calls: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(50);
    let secs: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(10);
    let rounds: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(3).max(1);
    let modes: Vec<Mode> = match std::env::var("WS_BENCH_MODES") {
        Ok(list) => [Mode::Relay, Mode::WsMulaw, Mode::WsL16]
            .into_iter()
            .filter(|m| list.split(',').any(|x| x == m.name()))
            .collect(),
        Err(_) => vec![Mode::Relay, Mode::WsMulaw, Mode::WsL16],
    };
    println!(
        "{calls} concurrent calls, {secs} s measured after {WARMUP:?} warm-up, \
         {rounds} rounds of every mode (the machine's speed drifts between runs: \
         each round's ratio compares runs made a few seconds apart)"
    );
    let mut results: Vec<(Mode, Vec<Figures>, Vec<f64>)> =
        modes.iter().map(|&m| (m, Vec::new(), Vec::new())).collect();
    for round in 1..=rounds {
        let mut relay_cpu = None;
        for (mode, figures, ratios) in results.iter_mut() {
            let f = run_mode(*mode, calls, secs);
            if *mode == Mode::Relay {
                relay_cpu = Some(f.cpu_ms_per_call_s);
            }
            let ratio = relay_cpu.map(|r| f.cpu_ms_per_call_s / r);
            println!(
                "round {round} {} cpu_ms_per_call_s={:.3} ratio_to_relay={} p50_us={:.0} p99_us={:.0} frames={}/{}",
                mode.name(),
                f.cpu_ms_per_call_s,
                ratio.map_or("-".to_owned(), |r| format!("{r:.2}")),
                f.p50_us,
                f.p99_us,
                f.received,
                f.expected
            );
            ratios.extend(ratio);
            figures.push(f);
        }
    }
    for (mode, figures, ratios) in results {
        let of = |f: fn(&Figures) -> f64| median(figures.iter().map(f).collect());
        let ratio = if ratios.is_empty() {
            "-".to_owned()
        } else {
            format!("{:.2}", median(ratios))
        };
        println!(
            "RESULT {} cpu_ms_per_call_s={:.3} ratio_to_relay={ratio} p50_us={:.0} p99_us={:.0} frames={}/{}",
            mode.name(),
            of(|f| f.cpu_ms_per_call_s),
            of(|f| f.p50_us),
            of(|f| f.p99_us),
            figures.iter().map(|f| f.received).sum::<usize>(),
            figures.iter().map(|f| f.expected).sum::<usize>()
        );
    }
}
