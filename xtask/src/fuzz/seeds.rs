//! Seed corpora for the fuzz targets, written fresh on every run from the
//! repository's own fixtures and the RFC 4475 torture messages (the
//! conformance suite checked out beside the repository, `../shared/`), in
//! the input layout each target reads (a target's leading choice bytes,
//! then the text).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Where the RFC 4475 messages are, relative to the repository root.
const RFC4475: &str = "../shared/conformance/rfc4475/messages";

/// Config files of the examples and benchmarks.
const CONFIGS: &[&str] = &[
    "examples/loopback.toml",
    "examples/builtin.toml",
    "examples/two-nodes/node-a.toml",
    "examples/two-nodes/node-b.toml",
    "tests/bench/trunkline.toml",
];

/// Writes `out/TARGET/NNNN` for every target that has seeds; returns how
/// many each got.
pub(super) fn write(root: &Path, out: &Path) -> Result<BTreeMap<&'static str, usize>> {
    if out.exists() {
        std::fs::remove_dir_all(out).with_context(|| format!("clearing {}", out.display()))?;
    }
    let messages = sip_messages(root)?;
    let mut seeds: BTreeMap<&'static str, Vec<Vec<u8>>> = BTreeMap::new();
    for msg in &messages {
        seeds.entry("sip_datagram").or_default().push(msg.clone());
        let stream = seeds.entry("sip_stream").or_default();
        stream.push([&[0u8][..], msg].concat());
        // Two cuts (8 and 32 bytes), two messages back to back.
        stream.push([&[2u8, 7, 31][..], msg, msg].concat());
        seeds
            .entry("sip_header")
            .or_default()
            .extend(header_seeds(msg));
        if let Some(body) = body_of(msg).filter(|b| b.starts_with(b"v=0")) {
            seeds
                .entry("sdp")
                .or_default()
                .push([&[0u8][..], body].concat());
        }
    }
    let realm = b"trunk.example";
    let challenge = [&[6u8, 0, realm.len() as u8][..], realm, &[0, 1]].concat();
    seeds.entry("sip_header").or_default().push(challenge);
    for line in ws_messages(root)? {
        seeds
            .entry("ws_json")
            .or_default()
            .push([&[0u8, 0, 7][..], &line].concat());
    }
    for file in CONFIGS {
        let text = std::fs::read(root.join(file)).with_context(|| format!("reading {file}"))?;
        seeds
            .entry("config")
            .or_default()
            .push([&[0u8, 0][..], &text].concat());
    }
    seeds.insert("dtmf", dtmf_seeds());
    seeds.insert("sip_legs", leg_seeds());

    let mut counts = BTreeMap::new();
    for (target, list) in &seeds {
        let dir = out.join(target);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        for (i, seed) in list.iter().enumerate() {
            std::fs::write(dir.join(format!("{i:04}")), seed)?;
        }
        counts.insert(*target, list.len());
    }
    Ok(counts)
}

/// The RFC 4475 messages (when the suite is checked out) and the captured
/// Five9 INVITE.
fn sip_messages(root: &Path) -> Result<Vec<Vec<u8>>> {
    let mut files: Vec<PathBuf> = vec![root.join("examples/invites/five9.sip")];
    match std::fs::read_dir(root.join(RFC4475)) {
        Ok(entries) => files.extend(
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "dat")),
        ),
        Err(_) => eprintln!("xtask: {RFC4475} not found: SIP seeds from the examples only"),
    }
    files.sort();
    files
        .iter()
        .map(|f| std::fs::read(f).with_context(|| format!("reading {}", f.display())))
        .collect()
}

/// What follows the blank line ending the headers.
fn body_of(msg: &[u8]) -> Option<&[u8]> {
    let end = msg
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
        .or_else(|| msg.windows(2).position(|w| w == b"\n\n").map(|i| i + 2))?;
    Some(&msg[end..])
}

/// `sip_header` inputs (kind byte, then the text) from a message's lines:
/// the Request-URI, each value for its own parser, and each whole line.
fn header_seeds(msg: &[u8]) -> Vec<Vec<u8>> {
    let head = match body_of(msg) {
        Some(body) => &msg[..msg.len() - body.len()],
        None => msg,
    };
    let text = String::from_utf8_lossy(head);
    let mut lines = text.lines();
    let mut seeds = Vec::new();
    let seed = |kind: u8, text: &str| [&[kind][..], text.as_bytes()].concat();
    if let Some(uri) = lines.next().and_then(|l| l.split_whitespace().nth(1)) {
        seeds.push(seed(0, uri));
    }
    for line in lines.filter(|l| !l.trim().is_empty()) {
        seeds.push(seed(7, line));
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        let kind = match name.trim().to_ascii_lowercase().as_str() {
            "from" | "f" | "to" | "t" | "contact" | "m" | "route" | "record-route" => 1,
            "via" | "v" => 2,
            "cseq" => 3,
            "authorization" | "proxy-authorization" | "www-authenticate" => {
                if let Some(params) = value.split_once(' ').map(|(_, p)| p) {
                    seeds.push(seed(5, params));
                }
                4
            }
            _ => continue,
        };
        seeds.push(seed(kind, value));
    }
    seeds
}

/// The agent's JSON messages shown in the WebSocket protocol page, and a
/// `media` one with real audio.
fn ws_messages(root: &Path) -> Result<Vec<Vec<u8>>> {
    let page = root.join("host/docs/websocket-agents.md");
    let text =
        std::fs::read_to_string(&page).with_context(|| format!("reading {}", page.display()))?;
    let mut lines: Vec<Vec<u8>> = text
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("{\"event\"") && l.ends_with('}'))
        .map(|l| l.as_bytes().to_vec())
        .collect();
    lines.push(
        br#"{"event":"media","streamSid":"MZ1","media":{"payload":"/39/f39/fw=="}}"#.to_vec(),
    );
    Ok(lines)
}

/// Leg runs: an outbound call that rings, is answered and hung up; one
/// challenged; one cancelled while ringing; an inbound call answered and
/// ACKed, and one whose ACK never comes.
fn leg_seeds() -> Vec<Vec<u8>> {
    vec![
        // Outbound (odd first byte): ring timeout 1 s, T1 100 ms, UDP, no
        // digest; 180, 200 with Contact and SDP, hang-up, the BYE's 200.
        vec![
            1, 3, 232, 10, 0, 0, 0, 1, 0, 1, 0, 3, 0, 1, 1, 5, 3, 0, 3, 0, 1, 0,
        ],
        // Challenged: digest on; a 401 with a well-formed challenge, then 200.
        vec![
            1, 3, 232, 10, 0, 1, 0, 4, 0, 0, 1, 1, 7, 1, 0, 0, 3, 0, 1, 1,
        ],
        // Cancelled while ringing, then time passes.
        vec![1, 3, 232, 10, 0, 0, 0, 1, 0, 1, 0, 5, 8, 255, 255],
        // Inbound (even first byte): 180, answer, ACK, hang-up, BYE's 200.
        vec![0, 10, 0, 0, 0, 80, 0, 1, 4, 0, 3, 5, 0, 3],
        // Answered, never ACKed: time passes.
        vec![0, 10, 0, 1, 7, 0, 255, 7, 0, 255, 7, 255, 255],
    ]
}

/// RFC 4733 payloads (digit 5 held, its end packet, flash), a detector
/// run, and a packet train.
fn dtmf_seeds() -> Vec<Vec<u8>> {
    vec![
        vec![0, 5, 0x0A, 0x03, 0x20],
        vec![0, 11, 0x8A, 0x06, 0x40],
        vec![0, 16, 0x3F, 0xFF, 0xFF],
        // Detector: three packets of one press, the last with the E bit.
        vec![
            1, 1, 0, 4, 5, 10, 0, 160, 2, 1, 0, 4, 5, 10, 1, 64, 2, 1, 0, 4, 5, 0x8A, 3, 32, 2,
        ],
        // Train: event 1, volume 10, 800 ticks, every 160.
        vec![2, 1, 10, 3, 32, 0, 160],
    ]
}
