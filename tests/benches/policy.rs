//! Policy benchmark: `cargo bench -p trunkline-tests --bench policy`.
//!
//! 1. `route` latency of the route-reason example with a realistic Five9
//!    INVITE (17 headers), a fresh instance per decision, next to the same
//!    policy logic compiled natively: p50, p99, p99.9 and the ratio.
//! 2. Reload-to-serving: from the atomic rename of a new ~100 KiB component
//!    into the watched folder until the registry serves it (watcher, hash,
//!    compile, pre-instantiate, swap).
//!
//! Each decision is timed on its own (not a batch mean), so the tail is
//! real. Figures go to stdout; the README quotes them.

#[path = "../support/mod.rs"]
mod support;

use std::hint::black_box;
use std::time::{Duration, Instant};

use route_reason::RouteReason;
use trunkline::policy::{PolicyRegistry, watcher};
use trunkline_guest_sdk::{Policy, testing};

const ITERATIONS: usize = 20_000;
const WARMUP: usize = 2_000;
const RELOADS: usize = 15;
const CONFIG: &[(&str, &str)] = &[
    ("did.+14155550100", "sip:sales-bot@127.0.0.1:5080"),
    ("default_agent", "sip:agent@127.0.0.1:5080"),
];

fn main() {
    // `cargo bench ... -- route` or `-- reload` runs one part; `cargo
    // bench` itself passes `--bench`, which is not a filter.
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wanted = |part: &str| filter.is_empty() || filter.iter().any(|f| part.contains(f.as_str()));
    let built = support::built();
    let bytes = std::fs::read(built.policies.join("route-reason.wasm")).unwrap();
    if wanted("route") {
        route_latency(&bytes);
    }
    if wanted("reload") {
        reload_to_serving(&bytes);
    }
}

struct Stats {
    p50: Duration,
    p99: Duration,
    p999: Duration,
    mean: Duration,
}

fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    let total: Duration = samples.iter().sum();
    Stats {
        p50: at(0.50),
        p99: at(0.99),
        p999: at(0.999),
        mean: total / samples.len() as u32,
    }
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn route_latency(bytes: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let engine = support::engine(dir.path());
    let version = engine
        .load("route-reason", bytes, support::kv(CONFIG))
        .expect("route-reason loads");
    let call = support::five9_call("+14155550100", &[("X-PolyAi-Auth-Token", "tok-1")]);
    assert!(call.headers.len() >= 15);

    for _ in 0..WARMUP {
        black_box(version.route(black_box(&call)).unwrap());
    }
    let mut wasm = Vec::with_capacity(ITERATIONS);
    for _ in 0..ITERATIONS {
        let t = Instant::now();
        black_box(version.route(black_box(&call)).unwrap());
        wasm.push(t.elapsed());
    }

    // The same logic, natively, on the same call.
    let native_call = to_sdk(&call);
    let native = testing::with_config(CONFIG, || {
        for _ in 0..WARMUP {
            black_box(RouteReason::route(black_box(&native_call)));
        }
        let mut samples = Vec::with_capacity(ITERATIONS);
        for _ in 0..ITERATIONS {
            let t = Instant::now();
            black_box(RouteReason::route(black_box(&native_call)));
            samples.push(t.elapsed());
        }
        samples
    });

    let (w, n) = (stats(wasm), stats(native));
    println!(
        "route latency, route-reason policy, {} headers, {ITERATIONS} decisions each",
        call.headers.len()
    );
    println!(
        "  {:<34} {:>9} {:>9} {:>9} {:>9}",
        "", "p50 µs", "p99 µs", "p99.9 µs", "mean µs"
    );
    println!(
        "  {:<34} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
        "wasm (fresh instance per call)",
        us(w.p50),
        us(w.p99),
        us(w.p999),
        us(w.mean)
    );
    println!(
        "  {:<34} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
        "native (same crate, rlib)",
        us(n.p50),
        us(n.p99),
        us(n.p999),
        us(n.mean)
    );
    println!(
        "  ratio wasm/native: p50 {:.1}x, p99 {:.1}x   (target: wasm p99 <= 50 µs)",
        us(w.p50) / us(n.p50),
        us(w.p99) / us(n.p99)
    );
}

fn to_sdk(call: &trunkline::policy::Call) -> trunkline_guest_sdk::Call {
    use trunkline_guest_sdk as sdk;
    sdk::Call {
        call_id: call.call_id.clone(),
        sip_call_id: call.sip_call_id.clone(),
        trunk: call.trunk.clone(),
        direction: match call.direction {
            trunkline::policy::Direction::Inbound => sdk::Direction::Inbound,
            trunkline::policy::Direction::Outbound => sdk::Direction::Outbound,
        },
        request_uri: call.request_uri.clone(),
        dialed: call.dialed.clone(),
        from_uri: call.from_uri.clone(),
        from_display: call.from_display.clone(),
        to_uri: call.to_uri.clone(),
        headers: call
            .headers
            .iter()
            .map(|h| sdk::Header::new(h.name.clone(), h.value.clone()))
            .collect(),
        source_ip: call.source_ip.clone(),
        source_port: call.source_port,
        transport: sdk::Transport::Udp,
        codecs: call
            .codecs
            .iter()
            .map(|c| sdk::Codec::new(c.name.clone(), c.clock_rate, c.payload_type))
            .collect(),
    }
}

/// `bytes` plus a custom section: the same code, a different content hash,
/// so every reload is a real load (no cache is configured here).
fn variant(bytes: &[u8], i: usize) -> Vec<u8> {
    let name = b"trunkline-bench";
    let payload = format!("variant-{i}");
    let mut body = vec![name.len() as u8];
    body.extend_from_slice(name);
    body.extend_from_slice(payload.as_bytes());
    let mut out = bytes.to_vec();
    out.push(0); // custom section id
    out.push(body.len() as u8); // < 128: one LEB128 byte
    out.extend_from_slice(&body);
    out
}

fn reload_to_serving(bytes: &[u8]) {
    use sha2_hex::hex_sha256;
    let dir = tempfile::tempdir().unwrap();
    support::drop_atomically(dir.path(), "route-reason.wasm", bytes);
    let reg: std::sync::Arc<PolicyRegistry> =
        support::registry(dir.path(), &[("route-reason", CONFIG)]);
    let _watcher = watcher::watch(reg.clone()).unwrap();
    assert!(reg.get("route-reason").is_some());

    let mut samples = Vec::new();
    let mut compile = Vec::new();
    for i in 0..RELOADS {
        let next = variant(bytes, i);
        let want = hex_sha256(&next);
        std::thread::sleep(Duration::from_millis(100));
        let started = Instant::now();
        support::drop_atomically(dir.path(), "route-reason.wasm", &next);
        loop {
            if let Some(v) = reg.get("route-reason")
                && v.hash() == want
            {
                samples.push(started.elapsed());
                compile.push(v.info().load_time);
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "reload never served"
            );
            std::thread::sleep(Duration::from_micros(500));
        }
    }
    let (s, c) = (stats(samples), stats(compile));
    println!(
        "reload to serving, route-reason.wasm ({:.1} KiB), {RELOADS} reloads through the watcher",
        bytes.len() as f64 / 1024.0
    );
    println!(
        "  rename -> serving: p50 {:.1} ms, max {:.1} ms; of which compile+check: p50 {:.1} ms   (target: <= 200 ms)",
        s.p50.as_secs_f64() * 1e3,
        s.p999.as_secs_f64() * 1e3,
        c.p50.as_secs_f64() * 1e3
    );
}

mod sha2_hex {
    pub fn hex_sha256(bytes: &[u8]) -> String {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(bytes))
    }
}
