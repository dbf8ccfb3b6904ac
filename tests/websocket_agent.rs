//! WebSocket agents through the real gateway: route-reason sends every call
//! to a `ws://` agent written here (support/ws_agent.rs, raw JSON), and
//! Five9 (a raw SIP/RTP peer) calls with a 1 kHz voice. The agent hears the
//! caller's tone in its media events (μ-law, or L16 at 16 kHz), plays a
//! 440 Hz answer that reaches Five9 paced at real time, gets its marks back,
//! barges in with `clear`, sets attributes and ends the call, and Five9's
//! BYE carries the headers the policy composed from them. An agent whose
//! socket dies ends the call through `conclude`; an agent that is not
//! there gives the caller the failure answer.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::json;
use support::gateway::Gateway;
use support::rtp::{PCMU, Packet, RtpPeer, ToneSender, analyse, decode, send_digits};
use support::sip_text::{Msg, UdpPeer};
use support::tls::Cert;
use support::unique;
use support::ws_agent::{AgentConn, WsAgent};
use trunkline_media::g711;

/// How long a message the gateway owes us may take (debug build, shared
/// cores).
const SOON: Duration = Duration::from_secs(5);
/// The caller's voice: ITU-T O.133's 1004 Hz.
const CALLER_HZ: f64 = 1004.0;
/// The agent's voice.
const AGENT_HZ: f64 = 440.0;

/// A gateway routing every call to `target`.
fn gateway(target: &str) -> Gateway {
    Gateway::builder("route-reason")
        .policy_toml(&format!("default_agent = \"{target}\""))
        .start()
}

/// Five9's side of one call.
struct Five9 {
    sip: UdpPeer,
    rtp: RtpPeer,
    call_id: String,
    session_id: String,
    answer: Msg,
    voice: Option<ToneSender>,
}

impl Five9 {
    /// Places the call; `Err(final response)` when it is not answered.
    fn call(gw: &Gateway) -> Result<Five9, Msg> {
        let sip = UdpPeer::new(gw.sip);
        let rtp = RtpPeer::bind();
        let (me, to) = (sip.me, gw.sip);
        let ip = rtp.addr.ip();
        let body = format!(
            "v=0\r\no=Five9 1 1 IN IP4 {ip}\r\ns=Five9\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
             m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
             a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n\
             a=ptime:20\r\na=sendrecv\r\n",
            port = rtp.addr.port()
        );
        let session_id = unique("f9-session");
        let call_id = unique("f9-call");
        let branch = unique("z9hG4bK");
        sip.send(&format!(
            "INVITE sip:+14155550100@{to} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {me};branch={branch};rport\r\n\
             Max-Forwards: 70\r\n\
             From: \"Five9 IVR\" <sip:+14155550123@{me}>;tag=f9\r\n\
             To: <sip:+14155550100@{to}>\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: 1 INVITE\r\n\
             Contact: <sip:five9@{me}>\r\n\
             X-CallSessionID: {session_id}\r\n\
             X-first_name: Ada\r\n\
             Content-Type: application/sdp\r\n\
             Content-Length: {len}\r\n\r\n{body}",
            len = body.len(),
        ));
        let answer = sip.wait_for_msg("final answer to the INVITE", SOON * 2, |m| {
            m.header("Call-ID") == Some(call_id.as_str()) && m.status().is_some_and(|s| s >= 200)
        });
        let (from, to_hdr) = (
            answer.header("From").unwrap_or_default().to_owned(),
            answer.header("To").unwrap_or_default().to_owned(),
        );
        if answer.status() != Some(200) {
            // A failure is ACKed in its own transaction.
            sip.send(&format!(
                "ACK sip:+14155550100@{to} SIP/2.0\r\n\
                 Via: SIP/2.0/UDP {me};branch={branch};rport\r\n\
                 Max-Forwards: 70\r\nFrom: {from}\r\nTo: {to_hdr}\r\n\
                 Call-ID: {call_id}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
            ));
            return Err(answer);
        }
        let five9 = Five9 {
            sip,
            rtp,
            call_id,
            session_id,
            answer,
            voice: None,
        };
        five9.in_dialog("ACK", 1);
        Ok(five9)
    }

    fn in_dialog(&self, method: &str, cseq: u32) {
        let me = self.sip.me;
        self.sip.send(&format!(
            "{method} {target} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {me};branch={branch};rport\r\n\
             Max-Forwards: 70\r\nFrom: {from}\r\nTo: {to}\r\nCall-ID: {cid}\r\n\
             CSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n",
            target = self.answer.contact_uri().expect("Contact in the 200"),
            branch = unique("z9hG4bK"),
            from = self.answer.header("From").unwrap_or_default(),
            to = self.answer.header("To").unwrap_or_default(),
            cid = self.call_id,
        ));
    }

    /// Starts the caller's voice (a 1 kHz tone, 20 ms packets).
    fn speak(&mut self) {
        self.voice = Some(
            self.rtp
                .send_tone(self.answer.rtp_target(), PCMU, CALLER_HZ),
        );
    }

    /// Waits for the gateway's BYE and answers it.
    fn bye(&self, limit: Duration) -> Msg {
        let bye = self
            .sip
            .wait_for_msg("the gateway's BYE", limit, |m| m.method() == Some("BYE"));
        let mut ok = String::from("SIP/2.0 200 OK\r\n");
        for via in bye.headers("Via") {
            ok += &format!("Via: {via}\r\n");
        }
        for name in ["From", "To", "Call-ID", "CSeq"] {
            ok += &format!("{name}: {}\r\n", bye.header(name).unwrap_or_default());
        }
        self.sip.send(&(ok + "Content-Length: 0\r\n\r\n"));
        bye
    }

    /// The caller hangs up.
    fn hang_up(&self) {
        self.in_dialog("BYE", 2);
        self.sip.wait_for_msg("200 to our BYE", SOON, |m| {
            m.cseq_method() == Some("BYE") && m.status().is_some()
        });
    }
}

/// Places a call to the agent and accepts its stream.
fn connect(gw: &Gateway, agent: &WsAgent) -> (Five9, AgentConn) {
    std::thread::scope(|s| {
        let calling = s.spawn(|| Five9::call(gw));
        let conn = agent.accept(SOON * 2);
        let five9 = calling
            .join()
            .expect("the caller's thread")
            .unwrap_or_else(|m| panic!("the call was not answered: {m:?}"));
        (five9, conn)
    })
}

/// `codes` (μ-law) as a run of consecutive 20 ms packets, for `analyse`.
fn as_packets(codes: &[u8]) -> Vec<Packet> {
    let from: SocketAddr = "127.0.0.1:9".parse().expect("address");
    codes
        .chunks_exact(160)
        .enumerate()
        .map(|(i, c)| Packet {
            from,
            at: Instant::now(),
            pt: PCMU,
            marker: false,
            seq: i as u16,
            ts: 160 * i as u32,
            ssrc: 1,
            payload: c.to_vec(),
        })
        .collect()
}

fn tone(freq: f64, rate: f64, n: usize) -> Vec<i16> {
    (0..n)
        .map(|i| (9000.0 * (2.0 * std::f64::consts::PI * freq * i as f64 / rate).sin()) as i16)
        .collect()
}

fn ulaw(samples: &[i16]) -> Vec<u8> {
    samples.iter().map(|&s| g711::ulaw_encode(s)).collect()
}

fn l16_le(samples: &[i16]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}

/// Root mean square of each packet.
fn loudness(packets: &[Packet]) -> Vec<f64> {
    packets
        .iter()
        .filter_map(|p| decode(p.pt, &p.payload))
        .map(|s| {
            (s.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / s.len().max(1) as f64).sqrt()
        })
        .collect()
}

/// The packets from the first to the last loud one: the agent's speech
/// inside the continuous stream (silence while the agent is quiet).
fn speech(packets: &[Packet]) -> &[Packet] {
    let rms = loudness(packets);
    let first = rms.iter().position(|&r| r > 1000.0).unwrap_or(0);
    let last = rms.iter().rposition(|&r| r > 1000.0).map_or(0, |i| i + 1);
    packets.get(first..last).unwrap_or_default()
}

/// Asserts Five9 hears the agent's 440 Hz in `packets`. The first and last
/// packets of the speech are left out: with L16 16 kHz the resampling
/// filter rings ahead of the onset, which throws off a zero-crossing
/// frequency estimate.
fn assert_hears_agent(packets: &[Packet]) {
    let packets = speech(packets);
    let inner = packets
        .get(1..packets.len().saturating_sub(1))
        .unwrap_or_default();
    let a = analyse(inner).expect("a run of the agent's audio at Five9");
    assert!(
        (a.freq - AGENT_HZ).abs() < 3.0 && a.snr_db > 25.0,
        "Five9 hears the agent's {AGENT_HZ} Hz: {a:?}"
    );
}

#[test]
fn mulaw_both_ways_marks_clear_and_an_end_that_composes_the_bye() {
    let agent = WsAgent::bind();
    let gw = gateway(&agent.url(""));
    let (mut five9, mut conn) = connect(&gw, &agent);

    let connected = conn.wait_for("connected", SOON);
    assert_eq!(connected["protocol"], "Call");
    let start = conn.wait_for("start", SOON);
    let call_sid = start["start"]["callSid"]
        .as_str()
        .expect("callSid")
        .to_owned();
    assert!(call_sid.starts_with("tl-"), "{start}");
    assert_eq!(
        start["start"]["mediaFormat"],
        json!({"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1})
    );
    let params = &start["start"]["customParameters"];
    assert_eq!(params["did"], "+14155550100", "routing attribute: {params}");
    assert_eq!(
        params["CallSessionID"],
        five9.session_id.as_str(),
        "X- variable: {params}"
    );
    assert_eq!(params["first_name"], "Ada");

    // The caller speaks; the agent hears the tone, chunk after chunk.
    five9.speak();
    conn.listen(Duration::from_millis(1200));
    assert!(conn.media.len() >= 40, "media events: {}", conn.media.len());
    for pair in conn.media.windows(2) {
        let chunk = |m: &serde_json::Value| {
            m["media"]["chunk"]
                .as_str()
                .unwrap_or("")
                .parse::<u64>()
                .unwrap_or(0)
        };
        let ts = |m: &serde_json::Value| {
            m["media"]["timestamp"]
                .as_str()
                .unwrap_or("")
                .parse::<u64>()
                .unwrap_or(0)
        };
        assert_eq!(chunk(&pair[1]), chunk(&pair[0]) + 1);
        assert_eq!(ts(&pair[1]), ts(&pair[0]) + 20);
        assert_eq!(pair[0]["media"]["track"], "inbound");
    }
    let heard = conn.heard();
    let a = analyse(&as_packets(&heard)).expect("caller audio at the agent");
    assert!(
        (a.freq - CALLER_HZ).abs() < 3.0 && a.snr_db > 25.0,
        "the agent hears the caller's {CALLER_HZ} Hz: {a:?}"
    );

    // The agent answers with one second of 440 Hz in a single message and a
    // mark; Five9 hears it paced (about 50 packets over a second).
    five9.rtp.drain();
    let played = Instant::now();
    conn.play(&ulaw(&tone(AGENT_HZ, 8000.0, 8000)));
    conn.mark("answer-done");
    let packets = five9.rtp.collect(Duration::from_millis(1500), Some(PCMU));
    assert_hears_agent(&packets);
    let loud: Vec<&Packet> = packets
        .iter()
        .zip(loudness(&packets))
        .filter(|(_, rms)| *rms > 1000.0)
        .map(|(p, _)| p)
        .collect();
    assert!(
        (45..=52).contains(&loud.len()),
        "one second of audio: {} packets",
        loud.len()
    );
    let spread = loud[loud.len() - 1].at - loud[0].at;
    assert!(
        spread >= Duration::from_millis(850),
        "paced at real time, not a burst: {spread:?}"
    );
    let mark = conn.wait_for("mark", SOON);
    assert_eq!(mark["mark"]["name"], "answer-done");
    assert!(played.elapsed() >= Duration::from_millis(950));

    // Barge-in: five seconds queued, cleared after 300 ms; the mark behind
    // them comes back at once and the audio stops.
    conn.play(&ulaw(&tone(AGENT_HZ, 8000.0, 40_000)));
    conn.mark("long-speech");
    std::thread::sleep(Duration::from_millis(300));
    let cleared = Instant::now();
    conn.send(json!({"event": "clear", "streamSid": "agent"}));
    let mark = conn.wait_for("mark", SOON);
    assert_eq!(mark["mark"]["name"], "long-speech");
    assert!(
        cleared.elapsed() < Duration::from_millis(500),
        "{:?}",
        cleared.elapsed()
    );
    std::thread::sleep(Duration::from_millis(100));
    five9.rtp.drain();
    let after = five9.rtp.collect(Duration::from_millis(500), Some(PCMU));
    assert!(
        loudness(&after).iter().all(|&rms| rms < 500.0),
        "nothing of the cleared speech plays: {:?}",
        loudness(&after)
    );

    // The outcome: attributes, then an end; Five9's BYE carries them.
    conn.send(json!({"event": "trunkline", "action": "set_attributes",
        "attributes": {"five9.route_reason": "order-placed", "meta.order": "A-42", "meta.score": 0.92}}));
    conn.send(json!({"event": "trunkline", "action": "end",
        "attributes": {"five9.route_type": "contained"}}));
    let bye = five9.bye(SOON);
    assert_eq!(bye.header("X-RouteReason"), Some("order-placed"), "{bye:?}");
    assert_eq!(bye.header("X-RouteType"), Some("contained"), "{bye:?}");
    let meta: serde_json::Value = bye
        .header("X-MetaData")
        .and_then(|m| m.parse().ok())
        .unwrap_or_else(|| panic!("X-MetaData is JSON: {bye:?}"));
    assert_eq!(
        meta,
        json!({"order": "A-42", "score": 0.92}),
        "a number stays a number: {bye:?}"
    );
    let stop = conn.wait_for("stop", SOON);
    assert_eq!(stop["stop"]["callSid"], call_sid.as_str());
    assert_eq!(stop["stop"]["reason"], "agent-request", "{stop}");
    assert!(
        conn.closed_within(Duration::from_secs(2)),
        "the socket closes after stop"
    );
    gw.wait_for_log("outcome stored", SOON);
}

#[test]
fn a_wss_agent_with_a_private_ca_streams_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let cert = Cert::new(dir.path(), "agent");
    let agent = WsAgent::bind_tls(cert.server_config());
    assert!(agent.url("").starts_with("wss://"));
    let gw = Gateway::builder("route-reason")
        .policy_toml(&format!("default_agent = \"{}\"", agent.url("")))
        .extra_toml(&format!(
            "[websocket]\nca_path = \"{}\"\n",
            cert.cert_pem.display()
        ))
        .start();
    let (mut five9, mut conn) = connect(&gw, &agent);
    conn.wait_for("start", SOON);
    five9.speak();
    conn.listen(Duration::from_millis(600));
    let a = analyse(&as_packets(&conn.heard())).expect("caller audio over wss");
    assert!((a.freq - CALLER_HZ).abs() < 3.0, "{a:?}");
    five9.hang_up();
    let stop = conn.wait_for("stop", SOON);
    assert_eq!(stop["stop"]["reason"], "caller-hangup", "{stop}");
}

#[test]
fn a_wss_agent_whose_certificate_is_not_trusted_gives_the_failure_answer() {
    // Without `ca_path`, a self-signed agent fails the Mozilla roots: the
    // caller gets the trunk's failure answer instead of a silent call.
    let dir = tempfile::tempdir().unwrap();
    let cert = Cert::new(dir.path(), "agent");
    let agent = WsAgent::bind_tls(cert.server_config());
    let gw = gateway(&agent.url(""));
    // The agent side: its handshake fails when the gateway rejects the
    // certificate (the panic stays in this thread).
    let agent_side = std::thread::spawn(move || agent.accept(SOON));
    let start = std::time::Instant::now();
    let refused = Five9::call(&gw)
        .err()
        .expect("no answer for an untrusted agent");
    assert_eq!(refused.status(), Some(503), "{}", refused.0);
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "refused at once, not after the connect timeout: {:?}",
        start.elapsed()
    );
    assert!(agent_side.join().is_err(), "the TLS handshake failed");
    let log = gw.log();
    assert!(
        log.contains("websocket connect") && log.contains("certificate"),
        "{log}"
    );
}

#[test]
fn an_agent_socket_dying_mid_call_ends_it_through_conclude() {
    let agent = WsAgent::bind();
    let gw = gateway(&agent.url(""));
    let (mut five9, mut conn) = connect(&gw, &agent);
    five9.speak();
    conn.wait_for("media", SOON);
    conn.vanish();
    let bye = five9.bye(SOON);
    assert_eq!(bye.header("X-RouteReason"), Some("agent-hangup"), "{bye:?}");
    gw.wait_for_log("outcome stored", SOON);
    let log = gw.log();
    assert!(
        log.contains("agent went away"),
        "the reason is logged:\n{log}"
    );
}

#[test]
fn l16_16k_both_ways_key_presses_and_the_caller_hanging_up_stops_the_stream() {
    let agent = WsAgent::bind();
    let gw = gateway(&agent.url("#audio=l16-16000"));
    let (mut five9, mut conn) = connect(&gw, &agent);
    let start = conn.wait_for("start", SOON);
    assert_eq!(
        start["start"]["mediaFormat"],
        json!({"encoding": "audio/x-l16", "sampleRate": 16000, "channels": 1})
    );

    five9.speak();
    conn.listen(Duration::from_millis(1200));
    let heard = conn.heard();
    assert!(conn.media.iter().all(|m| {
        m["media"]["payload"]
            .as_str()
            .is_some_and(|p| p.len() == 856) // base64 of 640 bytes
    }));
    let wide: Vec<i16> = heard
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    // Every other sample of band-limited 16 kHz audio is 8 kHz audio. The
    // first 40 ms are skipped: the filter rings ahead of the tone's onset.
    let narrow: Vec<i16> = wide[640..].iter().step_by(2).copied().collect();
    let a = analyse(&as_packets(&ulaw(&narrow))).expect("caller audio at the agent");
    assert!(
        (a.freq - CALLER_HZ).abs() < 3.0 && a.snr_db > 25.0,
        "the agent hears the caller's {CALLER_HZ} Hz at 16 kHz: {a:?}"
    );

    five9.rtp.drain();
    let reply = l16_le(&tone(AGENT_HZ, 16000.0, 16000));
    // Pieces of odd sizes: samples split across messages.
    for piece in reply.chunks(1001) {
        conn.play(piece);
    }
    let packets = five9.rtp.collect(Duration::from_millis(1300), Some(PCMU));
    assert_hears_agent(&packets);

    // Key presses: RFC 4733 from Five9, one `dtmf` event each, with how
    // long the key was held (six 20 ms updates: 960 ticks = 120 ms).
    let digits_to = five9.answer.rtp_target();
    send_digits(
        &five9.rtp.sock,
        digits_to,
        101,
        &[5, 11],
        Duration::from_millis(60),
    );
    for digit in ["5", "#"] {
        let dtmf = conn.wait_for("dtmf", SOON);
        assert_eq!(
            dtmf["dtmf"],
            json!({"track": "inbound_track", "digit": digit, "durationMs": 120}),
            "{dtmf}"
        );
    }

    five9.hang_up();
    let stop = conn.wait_for("stop", SOON);
    assert_eq!(stop["stop"]["reason"], "caller-hangup", "{stop}");
    assert!(
        conn.closed_within(Duration::from_secs(1)),
        "closed within a second"
    );
}

#[test]
fn nothing_listening_gives_the_caller_the_failure_answer() {
    let url = {
        let gone = WsAgent::bind();
        gone.url("")
    };
    let gw = gateway(&url);
    let answer = match Five9::call(&gw) {
        Ok(_) => panic!("the call was answered with no agent"),
        Err(answer) => answer,
    };
    assert_eq!(answer.status(), Some(503), "{answer:?}");
    gw.wait_for_log("agent connector failed", SOON);
}

/// What Five9 must get from an agent that spoke `AGENT_HZ` for 2.0 s
/// (`sent` exactly):
/// - a continuous stream all along (silence while the agent is quiet), in
///   sequence, 20 ms of timestamp per packet, never a gap in arrival;
/// - the tone, 2.0 s ± 40 ms long both in RTP time and in arrival time (no
///   time stretch), at its frequency;
/// - no silence padded inside it: every 2.5 ms of every packet but the
///   first and the last is loud.
fn assert_two_seconds_of_agent_tone(packets: &[Packet], sent: Duration) {
    assert!(packets.len() >= 140, "{} packets", packets.len());
    for w in packets.windows(2) {
        assert_eq!(w[1].seq, w[0].seq.wrapping_add(1), "a continuous stream");
        assert_eq!(w[1].ts, w[0].ts.wrapping_add(160), "20 ms a packet");
        assert!(
            w[1].at - w[0].at < Duration::from_millis(80),
            "no gap in the stream: {:?} at seq {}",
            w[1].at - w[0].at,
            w[1].seq
        );
    }
    let tone = speech(packets);
    let (first, last) = (&tone[0], &tone[tone.len() - 1]);
    let by_ts = Duration::from_micros(u64::from(last.ts.wrapping_sub(first.ts) + 160) * 125);
    let by_arrival = last.at - first.at + Duration::from_millis(20);
    for (what, took) in [("RTP time", by_ts), ("arrival time", by_arrival)] {
        for expected in [Duration::from_secs(2), sent] {
            assert!(
                took.abs_diff(expected) <= Duration::from_millis(40),
                "the tone ({sent:?} sent) lasts {took:?} in {what}"
            );
        }
    }
    for p in &tone[1..tone.len() - 1] {
        let samples = decode(p.pt, &p.payload).expect("G.711");
        for (i, part) in samples.chunks(20).enumerate() {
            let rms = (part.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / 20.0).sqrt();
            assert!(
                rms > 2000.0,
                "silence inside the tone: seq {} at {} ms ({rms:.0} RMS)",
                p.seq,
                i as f64 * 2.5
            );
        }
    }
    assert_hears_agent(packets);
}

/// The project's own agent, sending like a framework streaming at real
/// time: 2.0 s of tone in 95 ms chunks, each up to 25 ms late or 15 ms
/// early on the real-time schedule.
fn speak_in_uneven_chunks(conn: &mut AgentConn) {
    let speech = ulaw(&tone(AGENT_HZ, 8000.0, 16_000));
    let lateness = [0i64, 25, -15, 10, 20, -5, 15, -10, 25, 0, 5];
    let began = Instant::now();
    for (k, chunk) in speech.chunks(760).enumerate() {
        let due = 95 * k as i64
            + if k == 0 {
                0
            } else {
                lateness[k % lateness.len()]
            };
        let due = began + Duration::from_millis(due.max(0) as u64);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        conn.play(chunk);
    }
}

/// The caller speaks in `ptime_ms` packets; the project's own agent checks
/// it gets 20 ms chunks, then speaks in uneven chunks.
fn own_agent_with_caller_packets_of(ptime_ms: u64) {
    let agent = WsAgent::bind();
    let gw = gateway(&agent.url(""));
    let (mut five9, mut conn) = connect(&gw, &agent);
    conn.wait_for("start", SOON);
    five9.voice = Some(five9.rtp.send_tone_every(
        five9.answer.rtp_target(),
        PCMU,
        CALLER_HZ,
        ptime_ms,
    ));
    conn.listen(Duration::from_millis(600));
    assert!(conn.media.len() >= 20, "media events: {}", conn.media.len());
    for m in &conn.media {
        let payload = m["media"]["payload"].as_str().unwrap_or_default();
        assert_eq!(payload.len(), 216, "160 bytes of base64 a chunk: {m}");
    }
    five9.rtp.drain();
    let collecting = std::thread::scope(|s| {
        let five9 = &five9;
        let heard = s.spawn(move || five9.rtp.collect(Duration::from_millis(3000), Some(PCMU)));
        speak_in_uneven_chunks(&mut conn);
        heard.join().expect("collecting")
    });
    assert_two_seconds_of_agent_tone(&collecting, Duration::from_secs(2));
    assert_eq!(gw.metric("trunkline_ws_playout_underruns_total"), 0.0);
    assert_eq!(gw.metric("trunkline_ws_playout_padded_frames_total"), 0.0);
    five9.hang_up();
    conn.wait_for("stop", SOON);
}

#[test]
fn the_own_agent_speaks_at_real_time_to_a_caller_sending_20_ms_packets() {
    own_agent_with_caller_packets_of(20);
}

#[test]
fn the_own_agent_speaks_at_real_time_to_a_caller_sending_30_ms_packets() {
    own_agent_with_caller_packets_of(30);
}

/// The tests' Python, with Pipecat (`cargo xtask peers` installs it).
fn peers_python() -> std::path::PathBuf {
    let python = std::env::var_os("TRUNKLINE_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/peers/venv/bin/python")
        });
    assert!(
        python.exists(),
        "no Python with Pipecat at {}: run `cargo xtask peers` (cargo xtask test does)",
        python.display()
    );
    python
}

/// A Pipecat agent (tests/agents/pipecat_agent.py) running for one call.
struct PipecatAgent {
    child: std::process::Child,
    port: u16,
    out: tempfile::TempDir,
}

impl PipecatAgent {
    fn start() -> PipecatAgent {
        use std::io::BufRead;
        let out = tempfile::tempdir().expect("temp dir");
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("agents/pipecat_agent.py");
        let mut child = std::process::Command::new(peers_python())
            .arg(script)
            .arg("--out")
            .arg(out.path().join("result.json"))
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("starting the Pipecat agent");
        let stdout = child.stdout.take().expect("its stdout");
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("reading its port");
        let port = line
            .trim()
            .strip_prefix("LISTENING ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the Pipecat agent did not start: {line:?}"));
        PipecatAgent { child, port, out }
    }

    /// Waits for the agent to finish its stream; what it saw.
    fn result(mut self) -> serde_json::Value {
        let until = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().expect("waiting").is_none() {
            assert!(Instant::now() < until, "the Pipecat agent did not finish");
            std::thread::sleep(Duration::from_millis(50));
        }
        let text = std::fs::read_to_string(self.out.path().join("result.json"))
            .expect("the Pipecat agent's result");
        serde_json::from_str(&text).expect("JSON")
    }
}

impl Drop for PipecatAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Five9 calls with `ptime_ms` packets; a Pipecat agent hears the caller
/// through `TwilioFrameSerializer`, then speaks 2.0 s of tone in Pipecat's
/// uneven chunks; the caller hangs up.
fn pipecat_agent_with_caller_packets_of(ptime_ms: u64) {
    let pipecat = PipecatAgent::start();
    let gw = gateway(&format!("ws://127.0.0.1:{}/", pipecat.port));
    let mut five9 = Five9::call(&gw).unwrap_or_else(|m| panic!("not answered: {m:?}"));
    five9.voice = Some(five9.rtp.send_tone_every(
        five9.answer.rtp_target(),
        PCMU,
        CALLER_HZ,
        ptime_ms,
    ));
    // The agent speaks after 0.5 s of the caller: 2 s of tone and the
    // playout delay fit in 4 s.
    let packets = five9.rtp.collect(Duration::from_millis(4000), Some(PCMU));
    five9.hang_up();
    let seen = pipecat.result();
    let sent = seen["sent_codes"].as_u64().unwrap_or_default();
    assert_two_seconds_of_agent_tone(&packets, Duration::from_micros(sent * 125));
    assert_eq!(gw.metric("trunkline_ws_playout_underruns_total"), 0.0);
    // At most the tail, where Pipecat's resampler left a part frame.
    assert!(gw.metric("trunkline_ws_playout_padded_frames_total") <= 1.0);
    assert_eq!(
        seen["media_format"],
        json!({"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}),
        "{seen}"
    );
    let sizes = seen["media_sizes"].as_array().expect("media sizes");
    assert!(sizes.len() >= 25, "{seen}");
    assert!(sizes.iter().all(|n| n == 160), "20 ms chunks: {seen}");
    let caller_hz = seen["caller_hz"].as_f64().unwrap_or_default();
    assert!(
        (caller_hz - CALLER_HZ).abs() < 5.0,
        "Pipecat hears the caller: {seen}"
    );
    assert_eq!(seen["mark"], "tone-end", "{seen}");
    let mark_delay = seen["mark_delay"].as_f64().unwrap_or(-1.0);
    assert!(
        (0.0..0.5).contains(&mark_delay),
        "the mark comes back once the tone has played: {seen}"
    );
    assert_eq!(seen["stop_reason"], "caller-hangup", "{seen}");
    assert_eq!(seen["close_code"], 1000, "a normal closure: {seen}");
}

#[test]
fn a_pipecat_agent_speaks_at_real_time_to_a_caller_sending_20_ms_packets() {
    pipecat_agent_with_caller_packets_of(20);
}

#[test]
fn a_pipecat_agent_speaks_at_real_time_to_a_caller_sending_30_ms_packets() {
    pipecat_agent_with_caller_packets_of(30);
}
