//! The builtin agent through the real gateway: route-reason sends every call
//! to `builtin:`, and Five9 (a raw SIP/RTP peer written here, or SIPp with
//! the demo's scenario) hears the menu prompt, presses a key and gets a BYE
//! whose headers carry the choice; a caller who presses nothing gets the
//! timeout outcome. Also: `examples/builtin.toml`, the zero-setup config,
//! loads and is the documented default menu.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::json;
use support::gateway::{Gateway, TEST_KEY};
use support::http;
use support::rtp::{PCMU, RtpPeer, ToneSender, decode, send_digits};
use support::sip_text::{Msg, UdpPeer};
use support::sipp::{Sipp, loopback};
use support::unique;
use trunkline::config::Config;
use trunkline::connector::builtin::BuiltinSettings;

/// How long a message the gateway owes us may take (debug build, shared
/// cores).
const SOON: Duration = Duration::from_secs(5);
/// Five9's telephone-event payload type in these calls.
const EVENT_PT: u8 = 101;

/// A gateway routing every call to the builtin agent, the keys on the BYE
/// as `X-DTMF`, `extra` appended (e.g. a `[builtin]` table).
fn gateway(extra: &str) -> Gateway {
    Gateway::builder("route-reason")
        .policy_toml("default_agent = \"builtin:default\"\ndtmf_header = \"X-DTMF\"")
        .extra_toml(extra)
        .start()
}

/// Five9's side of one call: SIP on its own address, RTP on another, a
/// 1 kHz "caller voice" flowing from the answer on (a live caller's media;
/// it also keeps the gateway's media timeout away).
struct Five9 {
    sip: UdpPeer,
    rtp: RtpPeer,
    session_id: String,
    answer: Msg,
    voice: Option<ToneSender>,
}

impl Five9 {
    fn call(gw: &Gateway) -> Five9 {
        let sip = UdpPeer::new(gw.sip);
        let rtp = RtpPeer::bind();
        let (me, to) = (sip.me, gw.sip);
        let ip = rtp.addr.ip();
        let body = format!(
            "v=0\r\no=Five9 1 1 IN IP4 {ip}\r\ns=Five9\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
             m=audio {port} RTP/AVP 0 {EVENT_PT}\r\na=rtpmap:0 PCMU/8000\r\n\
             a=rtpmap:{EVENT_PT} telephone-event/8000\r\na=fmtp:{EVENT_PT} 0-15\r\n\
             a=ptime:20\r\na=sendrecv\r\n",
            port = rtp.addr.port()
        );
        let session_id = unique("f9-session");
        let call_id = unique("f9-call");
        sip.send(&format!(
            "INVITE sip:+14155550100@{to} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {me};branch=z9hG4bK-{branch};rport\r\n\
             Max-Forwards: 70\r\n\
             From: \"Five9 IVR\" <sip:+14155550123@{me}>;tag=f9\r\n\
             To: <sip:+14155550100@{to}>\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: 1 INVITE\r\n\
             Contact: <sip:five9@{me}>\r\n\
             X-CallSessionID: {session_id}\r\n\
             X-CallCampaign: Inbound Sales\r\n\
             Content-Type: application/sdp\r\n\
             Content-Length: {len}\r\n\r\n{body}",
            branch = unique("b"),
            len = body.len(),
        ));
        let answer = sip.wait_for_msg("final answer to the INVITE", SOON * 2, |m| {
            m.header("Call-ID") == Some(call_id.as_str()) && m.status().is_some_and(|s| s >= 200)
        });
        assert_eq!(
            answer.status(),
            Some(200),
            "the builtin agent answers: {answer:?}"
        );
        sip.send(&format!(
            "ACK {target} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {me};branch=z9hG4bK-{branch};rport\r\n\
             Max-Forwards: 70\r\n\
             From: {from}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: 1 ACK\r\n\
             Content-Length: 0\r\n\r\n",
            target = answer.contact_uri().expect("Contact in the 200"),
            branch = unique("b"),
            from = answer.header("From").unwrap_or_default(),
            to = answer.header("To").unwrap_or_default(),
        ));
        let voice = rtp.send_tone(answer.rtp_target(), PCMU, 1004.0);
        Five9 {
            sip,
            rtp,
            session_id,
            answer,
            voice: Some(voice),
        }
    }

    fn media_target(&self) -> SocketAddr {
        self.answer.rtp_target()
    }

    /// Presses `keys` (RFC 4733 events) from the RTP address. The voice
    /// stops first: a phone sends its events in its audio stream (same
    /// SSRC, RFC 4733 §2.1), and this peer's tone and events are two
    /// streams.
    fn press(&mut self, keys: &[u8]) {
        if let Some(voice) = self.voice.take() {
            voice.stop();
        }
        send_digits(
            &self.rtp.sock,
            self.media_target(),
            EVENT_PT,
            keys,
            Duration::from_millis(800),
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
}

/// Root mean square of each received PCMU packet.
fn loudness(packets: &[support::rtp::Packet]) -> Vec<f64> {
    packets
        .iter()
        .filter(|p| p.pt == PCMU)
        .filter_map(|p| decode(PCMU, &p.payload))
        .map(|s| {
            let sum: f64 = s.iter().map(|&x| f64::from(x).powi(2)).sum();
            (sum / s.len().max(1) as f64).sqrt()
        })
        .collect()
}

#[test]
fn caller_hears_the_prompt_presses_2_and_five9_gets_the_choice_on_the_bye() {
    let gw = gateway("");
    let mut five9 = Five9::call(&gw);

    // The prompt: about 1.2 s of chime, paced at 20 ms.
    let started = Instant::now();
    let heard = five9.rtp.collect(Duration::from_millis(1500), Some(PCMU));
    let loud = loudness(&heard).iter().filter(|&&rms| rms > 1000.0).count();
    assert!(
        loud >= 25,
        "the prompt is audible: {loud} loud packets of {}",
        heard.len()
    );
    assert!(
        heard.len() <= 80,
        "paced at real time, not a burst: {} packets in {:?}",
        heard.len(),
        started.elapsed()
    );

    five9.press(&[2]);
    let bye = five9.bye(SOON);
    let header = |name: &str| bye.header(name).map(str::trim);
    assert_eq!(header("X-RouteReason"), Some("support_request"), "{bye:?}");
    assert_eq!(header("X-RouteType"), Some("queue"));
    assert_eq!(header("X-RouteValue"), Some("support"));
    assert_eq!(header("X-DTMF"), Some("2"));

    // The same outcome for the Handoff API, under Five9's session id.
    let body = json!({ "shared_id": five9.session_id });
    let mut record = http::post_json(gw.http, "/handoff", Some(TEST_KEY), &body);
    let until = Instant::now() + SOON;
    while record.status == 404 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(100));
        record = http::post_json(gw.http, "/handoff", Some(TEST_KEY), &body);
    }
    assert_eq!(record.status, 200, "{record}");
    assert_eq!(record.json["contained"], false, "{record}");
    assert_eq!(record.json["destination"], "support", "{record}");
}

#[test]
fn a_silent_caller_times_out_to_the_timeout_outcome() {
    let gw = gateway("[builtin]\ntimeout_secs = 1\nrepeats = 0\n");
    let five9 = Five9::call(&gw);
    let started = Instant::now();
    let bye = five9.bye(SOON * 2);
    let took = started.elapsed();
    assert_eq!(
        bye.header("X-RouteReason").map(str::trim),
        Some("no_input"),
        "{bye:?}"
    );
    assert_eq!(bye.header("X-RouteValue").map(str::trim), Some("operator"));
    assert_eq!(bye.header("X-DTMF"), None, "nothing was pressed");
    // Prompt (~1.2 s), a 1 s wait, the goodbye (~0.4 s).
    assert!(
        took >= Duration::from_millis(2200),
        "waited for a key first: {took:?}"
    );
}

#[test]
fn a_wrong_key_plays_the_menu_again_then_a_right_one_counts() {
    let gw = gateway("");
    let mut five9 = Five9::call(&gw);
    // 9 is not on the menu: the invalid tone, the menu again; then 1. (One
    // event stream: a second `press` would restart its timestamps.)
    five9.press(&[9, 1]);
    let bye = five9.bye(SOON);
    assert_eq!(
        bye.header("X-RouteReason").map(str::trim),
        Some("sales_inquiry")
    );
    assert_eq!(bye.header("X-DTMF").map(str::trim), Some("91"));
}

/// The demo's own scenario: SIPp as Five9 presses a key with SIPp's DTMF
/// capture and checks the BYE.
#[test]
fn the_demo_call_scenario_passes_against_the_builtin_agent() {
    let gw = gateway("");
    let outcome = Sipp::new("five9_uac_builtin.xml", loopback())
        .remote(gw.sip)
        .set("key", "1")
        .set("route_reason", "sales_inquiry")
        .set("route_value", "sales")
        .timeout(Duration::from_secs(30))
        .run();
    outcome.assert_passed();
    let bye = outcome.received_request("BYE").expect("a BYE");
    assert_eq!(
        bye.header("X-RouteReason").map(str::trim),
        Some("sales_inquiry")
    );
}

#[test]
fn the_zero_setup_config_loads_and_spells_out_the_default_menu() {
    let path = xtask::workspace_root().join("examples/builtin.toml");
    let config = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.builtin, BuiltinSettings::default());
    config.builtin.check().unwrap();
    assert_eq!(
        config.policy_values("route-reason").get("default_agent"),
        Some(&"builtin:default".to_owned())
    );
    assert_eq!(config.sip.udp, Some("127.0.0.1:5060".parse().unwrap()));
    assert_eq!(config.http.listen, "127.0.0.1:8080".parse().unwrap());
    assert!(
        config
            .http
            .keys
            .iter()
            .all(|k| k.key.starts_with("change-me-loopback"))
    );
    let demo = xtask::demo::demo_dir();
    assert_eq!(
        config.policy.dir,
        path.parent().unwrap().join("../target/demo/policies")
    );
    assert!(config.policy.dir.ends_with("target/demo/policies"));
    assert!(config.store.path.starts_with(path.parent().unwrap()));
    assert!(demo.ends_with("target/demo"));

    // Same addresses as the loopback rehearsal.
    let loopback = Config::load(&path.with_file_name("loopback.toml")).unwrap();
    assert_eq!(config.sip.udp, loopback.sip.udp);
    assert_eq!(config.sip.tcp, loopback.sip.tcp);
    assert_eq!(config.http.listen, loopback.http.listen);
}
