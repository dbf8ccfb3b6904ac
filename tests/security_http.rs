//! The HTTP API under hostile clients, against the real binary: slowloris
//! heads, trickled bodies and idle keep-alives are cut off at their
//! timeouts; connections over the cap are refused while the API keeps
//! serving; another tenant's call id answers exactly like an unknown one
//! (status, body and latency); call ids look random; config errors name
//! the line but never print the secret on it.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::gateway::{Gateway, OTHER_TENANT_KEY, TEST_KEY};
use support::http::get;
use support::sipp::{Sipp, loopback};
use support::trunkline_bin;

/// The value of the series `series` (name and labels exactly as printed),
/// 0 when absent.
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.split(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connect");
    s.set_nodelay(true).unwrap();
    s
}

/// Whether the server has closed `s` (EOF or reset), without blocking.
/// Any bytes it sent are appended to `got`.
fn closed(s: &mut TcpStream, got: &mut Vec<u8>) -> bool {
    s.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 1024];
    let out = loop {
        match s.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => break false,
            Err(_) => break true,
        }
    };
    s.set_nonblocking(false).unwrap();
    out
}

/// One request on a keep-alive connection; `(status, body)`, or `None`
/// when the connection fails or closes first.
fn exchange(s: &mut TcpStream, path: &str, key: Option<&str>) -> Option<(u16, String)> {
    let auth = key.map_or(String::new(), |k| format!("Authorization: Bearer {k}\r\n"));
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\n{auth}\r\n").as_bytes())
        .ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut buf).ok().filter(|&n| n > 0)?;
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).to_ascii_lowercase();
    let status: u16 = head.split(' ').nth(1)?.parse().ok()?;
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while raw.len() < head_end + length {
        let n = s.read(&mut buf).ok().filter(|&n| n > 0)?;
        raw.extend_from_slice(&buf[..n]);
    }
    let body = String::from_utf8_lossy(&raw[head_end..head_end + length]).into_owned();
    Some((status, body))
}

/// Polls `s` every 20 ms until the server closes it, at most `limit`; when
/// it closed, measured from `since`.
fn wait_closed(s: &mut TcpStream, since: Instant, limit: Duration) -> Option<Duration> {
    let mut got = Vec::new();
    while since.elapsed() < limit {
        if closed(s, &mut got) {
            assert!(
                !String::from_utf8_lossy(&got).contains(" 200 "),
                "answered instead of cut off"
            );
            return Some(since.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

fn timeouts_gateway() -> Gateway {
    Gateway::builder("route-reason")
        .http_toml("header_timeout_secs = 1\nbody_timeout_secs = 2\nidle_timeout_secs = 3")
        .start()
}

#[test]
fn slowloris_heads_are_cut_off_at_the_header_timeout_while_the_api_answers() {
    let gw = timeouts_gateway();
    let start = Instant::now();
    let mut slow: Vec<(TcpStream, Option<Duration>)> = (0..20)
        .map(|_| {
            let mut s = connect(gw.http);
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: ")
                .unwrap();
            (s, None)
        })
        .collect();
    let mut checked_api = false;
    // One more header byte to each every 100 ms: they never finish.
    while start.elapsed() < Duration::from_secs(6) && slow.iter().any(|(_, c)| c.is_none()) {
        for (s, closed_at) in slow.iter_mut().filter(|(_, c)| c.is_none()) {
            let mut got = Vec::new();
            if s.write_all(b"a").is_err() || closed(s, &mut got) {
                assert!(got.is_empty(), "no answer to a head that never ends");
                *closed_at = Some(start.elapsed());
            }
        }
        if !checked_api && start.elapsed() > Duration::from_millis(300) {
            let r = get(gw.http, "/healthz", None);
            assert_eq!(r.status, 200, "{r}");
            assert!(
                slow.iter().all(|(_, c)| c.is_none()),
                "all 20 are still open while the API answers"
            );
            checked_api = true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for (i, (_, closed_at)) in slow.iter().enumerate() {
        let at = closed_at.unwrap_or_else(|| panic!("connection {i} still open after 6 s"));
        assert!(
            at >= Duration::from_millis(900) && at <= Duration::from_secs(3),
            "connection {i} closed after {at:?}; the header timeout is 1 s"
        );
    }
    let text = get(gw.http, "/metrics", None).body;
    assert!(
        metric(
            &text,
            "trunkline_http_connections_timed_out_total{phase=\"header\"}"
        ) >= 20.0,
        "{text}"
    );
}

#[test]
fn a_trickled_body_is_cut_off_at_the_body_timeout() {
    let gw = timeouts_gateway();
    let mut s = connect(gw.http);
    let head = format!(
        "POST /handoff HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TEST_KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: 400\r\n\r\n{{\"shared_id\": \""
    );
    s.write_all(head.as_bytes()).unwrap();
    let start = Instant::now();
    let mut closed_at = None;
    let mut got = Vec::new();
    // A byte every 200 ms keeps it busy, never complete.
    while start.elapsed() < Duration::from_secs(8) {
        if s.write_all(b"x").is_err() || closed(&mut s, &mut got) {
            closed_at = Some(start.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let at = closed_at.expect("the half-sent body was never cut off");
    assert!(
        at >= Duration::from_millis(1800) && at <= Duration::from_millis(4500),
        "closed after {at:?}; the body timeout is 2 s"
    );
    assert!(
        !String::from_utf8_lossy(&got).contains(" 200 "),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
    let text = get(gw.http, "/metrics", None).body;
    assert_eq!(
        metric(
            &text,
            "trunkline_http_connections_timed_out_total{phase=\"body\"}"
        ),
        1.0,
        "{text}"
    );
}

#[test]
fn keep_alive_pauses_get_the_idle_timeout_not_the_header_one() {
    let gw = timeouts_gateway();
    let mut s = connect(gw.http);
    assert_eq!(exchange(&mut s, "/healthz", None).map(|r| r.0), Some(200));
    // 1.5 s idle: past the 1 s header timeout, within the 3 s idle one.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        exchange(&mut s, "/healthz", None).map(|r| r.0),
        Some(200),
        "a keep-alive pause is not a slow head"
    );
    let answered = Instant::now();
    let at = wait_closed(&mut s, answered, Duration::from_secs(8))
        .expect("an idle keep-alive connection is closed");
    assert!(
        at >= Duration::from_millis(2800) && at <= Duration::from_secs(5),
        "closed {at:?} after the answer; the idle timeout is 3 s"
    );
}

#[test]
fn connections_over_the_cap_are_refused_and_the_api_answers_once_they_close() {
    let gw = Gateway::builder("route-reason")
        .http_toml("max_connections = 8\nidle_timeout_secs = 30")
        .start();
    let mut idle: Vec<TcpStream> = (0..8)
        .map(|i| {
            let mut s = connect(gw.http);
            let r = exchange(&mut s, "/healthz", None);
            assert_eq!(r.map(|r| r.0), Some(200), "connection {i}");
            s
        })
        .collect();

    // The 9th: a canned 503 or nothing, and closed at once.
    let mut ninth = connect(gw.http);
    let started = Instant::now();
    let answer = exchange(&mut ninth, "/healthz", None);
    assert!(
        matches!(&answer, None | Some((503, _))),
        "over the cap: {answer:?}"
    );
    if let Some((_, body)) = &answer {
        let json: Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["error"], "unavailable", "{body}");
    }
    let at = wait_closed(&mut ninth, started, Duration::from_secs(3)).expect("closed");
    assert!(at < Duration::from_secs(1), "closed after {at:?}");
    // The 8 still work.
    assert_eq!(
        exchange(&mut idle[0], "/healthz", None).map(|r| r.0),
        Some(200)
    );

    drop(idle);
    let start = Instant::now();
    loop {
        let mut s = connect(gw.http);
        if exchange(&mut s, "/healthz", None).map(|r| r.0) == Some(200) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "the API never answered again after the 8 closed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let text = get(gw.http, "/metrics", None).body;
    assert!(
        metric(&text, "trunkline_http_connections_refused_total") >= 1.0,
        "{text}"
    );
    assert!(
        text.contains("trunkline_http_connections "),
        "the open-connections gauge: {text}"
    );
}

#[test]
fn sigterm_exits_promptly_with_idle_and_slow_connections_open() {
    let mut gw = Gateway::builder("route-reason").start();
    let mut idle = connect(gw.http);
    assert_eq!(
        exchange(&mut idle, "/healthz", None).map(|r| r.0),
        Some(200)
    );
    let mut slow = connect(gw.http);
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: a")
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let term = Instant::now();
    gw.signal("TERM");
    let status = gw
        .wait_exit(Duration::from_secs(10))
        .expect("the gateway exits");
    assert!(status.success(), "{status:?}");
    let took = term.elapsed();
    // The default header timeout is 10 s: neither connection held it up.
    assert!(took < Duration::from_secs(3), "exit took {took:?}");
    for s in [&mut idle, &mut slow] {
        assert!(wait_closed(s, term, Duration::from_secs(1)).is_some());
    }
}

/// Starts a gateway and `n` connected SIP calls of tenant `five9`; their
/// ids.
fn live_calls(n: usize) -> (Gateway, Vec<support::sipp::Running>, Vec<String>) {
    let agent_addr = loopback();
    let gw = Gateway::start(
        "route-reason",
        &format!("default_agent = \"sip:agent@{agent_addr}\""),
        "",
    );
    let mut peers = vec![
        Sipp::new("agent_uas_wait_bye.xml", agent_addr)
            .calls(n as u32)
            .spawn(),
    ];
    for i in 0..n {
        peers.push(
            Sipp::new("five9_uac.xml", loopback())
                .remote(gw.sip)
                .set("session_id", format!("sess-sec-{i}"))
                .spawn(),
        );
    }
    let start = Instant::now();
    loop {
        let r = get(gw.http, "/v1/calls", Some(TEST_KEY));
        let ids: Vec<String> = r.json["calls"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| c["state"] == "connected")
            .filter_map(|c| c["call_id"].as_str().map(str::to_owned))
            .collect();
        if ids.len() == n {
            return (gw, peers, ids);
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "{n} calls never connected: {r}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A well-formed call id no call has.
fn unknown_id(taken: &str) -> String {
    use std::hash::BuildHasher;
    let k = std::collections::hash_map::RandomState::new().hash_one(taken);
    let id = format!("tl-{k:016x}");
    assert_ne!(id, taken);
    id
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[test]
fn another_tenants_call_answers_exactly_like_an_unknown_id() {
    let (gw, _peers, ids) = live_calls(1);
    let live = &ids[0];
    let unknown = unknown_id(live);
    let foreign_path = format!("/v1/calls/{live}");
    let unknown_path = format!("/v1/calls/{unknown}");
    let mut s = connect(gw.http);
    let other = Some(OTHER_TENANT_KEY);

    let foreign = exchange(&mut s, &foreign_path, other).expect("answer");
    let missing = exchange(&mut s, &unknown_path, other).expect("answer");
    assert_eq!(foreign.0, 404, "{foreign:?}");
    assert_eq!(foreign, missing, "same status and body");
    // Interleaved (ABAB, then BABA) so drift hits both alike.
    let mut times = [Vec::new(), Vec::new()];
    for round in 0..220 {
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for which in order {
            let path = [&foreign_path, &unknown_path][which];
            let sent = Instant::now();
            let r = exchange(&mut s, path, other).expect("answer");
            let took = sent.elapsed();
            assert_eq!(r, missing);
            if round >= 20 {
                times[which].push(took);
            }
        }
    }
    let [foreign_times, unknown_times] = times;
    let (f, u) = (median(foreign_times), median(unknown_times));
    let diff = f.abs_diff(u);
    let bound = Duration::from_micros(20).max(f.min(u) / 4);
    eprintln!("median latency: foreign {f:?}, unknown {u:?}, difference {diff:?}");
    assert!(
        diff < bound,
        "foreign {f:?} vs unknown {u:?}: {diff:?} apart (bound {bound:?})"
    );
    let upper = format!(
        "/v1/calls/{}",
        live.to_ascii_uppercase().replacen("TL", "tl", 1)
    );
    if upper != foreign_path {
        assert_eq!(
            exchange(&mut s, &upper, Some(TEST_KEY)).map(|r| r.0),
            Some(404),
            "one spelling per id"
        );
    }

    // The call was live all along, for its own tenant.
    assert_eq!(
        exchange(&mut s, &foreign_path, Some(TEST_KEY)).map(|r| r.0),
        Some(200)
    );
}

#[test]
fn call_ids_are_random_not_sequential() {
    let (_gw, _peers, ids) = live_calls(2);
    let keys: Vec<u64> = ids
        .iter()
        .map(|id| {
            let hex = id.strip_prefix("tl-").unwrap_or_else(|| panic!("{id}"));
            assert!(
                hex.len() == 16
                    && hex
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
                "`tl-` and 16 lowercase hex digits: {id}"
            );
            u64::from_str_radix(hex, 16).unwrap()
        })
        .collect();
    let (a, b) = (keys[0], keys[1]);
    assert!(a.abs_diff(b) > 1 << 20, "{ids:?} are close together");
    let differ = (a ^ b).count_ones();
    // Random keys differ in 32 bits on average; fewer than 12 is a
    // one-in-ten-million chance.
    assert!(differ >= 12, "{ids:?} differ in only {differ} bits");
}

/// Runs `trunkline run` on `config`; its stderr.
fn run_config(config: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, config).unwrap();
    let out = std::process::Command::new(trunkline_bin())
        .args(["run", "--config"])
        .arg(&path)
        .output()
        .expect("running trunkline");
    assert!(!out.status.success(), "a broken config must not start");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn config_errors_name_the_line_and_the_problem_but_not_the_secret() {
    let cases = [
        (
            // An unclosed string on a digest password's line.
            "[[trunk]]\nname = \"five9\"\npolicy = \"p\"\n[trunk.auth]\nrealm = \"r\"\n\
             [trunk.auth.users]\nfive9 = \"Digest-Pa55word-xyz\n",
            "Digest-Pa55word-xyz",
            "line 7",
            "invalid basic string",
        ),
        (
            // Junk after an API key on the same line.
            "[http]\n\n[[http.keys]]\nname = \"ops\"\nkey = \"sk-live-9f8e7d6c5b4a3210\" tenant = \"*\"\n",
            "sk-live-9f8e7d6c5b4a3210",
            "line 5",
            "expected newline",
        ),
        (
            // An API key written as a number: serde quotes what it found.
            "[[http.keys]]\nname = \"ops\"\ntenant = \"*\"\nkey = 73910582736401928\n",
            "73910582736401928",
            "line 4",
            "invalid type",
        ),
    ];
    for (config, secret, line, problem) in cases {
        let stderr = run_config(config);
        assert!(stderr.contains("bad.toml"), "names the file: {stderr}");
        assert!(stderr.contains(line), "names {line}: {stderr}");
        assert!(stderr.contains(problem), "says {problem:?}: {stderr}");
        assert!(!stderr.contains(secret), "prints the secret: {stderr}");
        assert!(
            !stderr.contains(&secret[..8]),
            "prints part of the secret: {stderr}"
        );
    }
}
