//! Transfers the agent asks for (`POST /v1/calls/{id}/transfer` with a
//! `mode`), end to end: SIPp plays Five9 calling in, the AI agent, and the
//! Five9 inbound number the caller is transferred to (a digest challenge
//! checked with its `verifyauth`, then an answer, busy, or no answer).
//! After each, `/metrics` shows nothing left behind: no call, dialog or
//! media port.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::gateway::{Gateway, TEST_KEY};
use support::http;
use support::rtp::{PCMA, PCMU, analyse};
use support::sipp::{Sipp, loopback};
use support::uas::Uas;

const USER: &str = "trunkline";
const PASSWORD: &str = "s3cret-xfer-2291";
const HUMAN: &str = "+1 (800) 555-0199";

/// A gateway that routes Five9's calls to the SIP agent at `agent`, with
/// an outbound trunk `five9-out` toward `inbound` (the inbound number's
/// SBC), its password from the environment.
fn gateway(agent: SocketAddr, inbound: SocketAddr) -> Gateway {
    gateway_with(agent, inbound, PASSWORD, 4)
}

/// As [`gateway`], with the trunk's password and `max_concurrent`.
fn gateway_with(agent: SocketAddr, inbound: SocketAddr, password: &str, max: usize) -> Gateway {
    Gateway::builder("route-reason")
        .policy_toml(&format!("default_agent = \"sip:agent@{agent}\""))
        .env("F9_OUT_PASSWORD", password)
        .extra_toml(&format!(
            "[[outbound]]\nname = \"five9-out\"\nuri = \"sip:{inbound}\"\nring_timeout_secs = 3\nmax_concurrent = {max}\n\
             [outbound.auth]\nuser = \"{USER}\"\npassword_env = \"F9_OUT_PASSWORD\"\n\
             [outbound.caller_id]\nuser = \"+18005550100\"\n\
             [outbound.numbers]\ndefault_country_code = \"1\"\n"
        ))
        .start()
}

/// The inbound number: `answer` is `200`, `486` or `none`.
fn inbound_number(addr: SocketAddr, answer: &str) -> support::sipp::Running {
    let mut sipp = Sipp::new("five9_inbound_number.xml", addr)
        .set("user", USER)
        .set("password", PASSWORD)
        .set("answer", answer)
        .set("audio", "1")
        .set("expect1", "X-Trunkline-Call-ID: tl-")
        .timeout(Duration::from_secs(40))
        .spawn();
    sipp.wait_ready(Duration::from_secs(5));
    sipp
}

/// Five9 calling in; it hangs up `after` its call is answered.
fn five9_calls(gw: &Gateway, after: Duration) -> support::sipp::Running {
    let mut sipp = Sipp::new("five9_uac_hangup.xml", loopback())
        .remote(gw.sip)
        .set("audio", "1")
        .pause(after)
        .timeout(Duration::from_secs(40))
        .spawn();
    sipp.wait_ready(Duration::from_secs(5));
    sipp
}

fn agent_waits_for_bye(addr: SocketAddr) -> support::sipp::Running {
    let mut sipp = Sipp::new("agent_uas_wait_bye.xml", addr)
        .timeout(Duration::from_secs(40))
        .spawn();
    sipp.wait_ready(Duration::from_secs(5));
    sipp
}

/// The one active call, once it is `connected`.
fn connected_call(gw: &Gateway) -> String {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let r = http::get(gw.http, "/v1/calls", Some(TEST_KEY));
        let v: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
        if let Some(c) = v["calls"].as_array().and_then(|c| c.first())
            && c["state"] == "connected"
        {
            return c["call_id"].as_str().expect("an id").to_owned();
        }
        assert!(Instant::now() < until, "no call connected: {v}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn transfer(gw: &Gateway, id: &str, body: Value) -> http::Response {
    http::post_json(
        gw.http,
        &format!("/v1/calls/{id}/transfer"),
        Some(TEST_KEY),
        &body,
    )
}

fn cold(to: &str) -> Value {
    json!({"mode": "cold", "to": to, "outbound": "five9-out"})
}

/// Polls the call until `done(view)` holds (or `limit` passes); returns the
/// last view (the record's, once ended).
fn wait_for(gw: &Gateway, id: &str, limit: Duration, done: impl Fn(&Value) -> bool) -> Value {
    let until = Instant::now() + limit;
    loop {
        let r = http::get(gw.http, &format!("/v1/calls/{id}"), Some(TEST_KEY));
        let v: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
        if done(&v) || Instant::now() >= until {
            return v;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Nothing of any call is left: records, dialogs, media ports.
fn assert_nothing_left(gw: &Gateway) {
    let until = Instant::now() + Duration::from_secs(40);
    while gw.metric("trunkline_calls_open") > 0.0 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(200));
    }
    for series in [
        "trunkline_active_calls",
        "trunkline_calls_open",
        "trunkline_sip_dialogs_open",
        "trunkline_rtp_port_pairs_in_use",
    ] {
        assert_eq!(gw.metric(series), 0.0, "{series} after the test");
    }
}

#[test]
fn a_cold_transfer_bridges_the_caller_to_the_inbound_number_and_releases_the_agent() {
    let agent_addr = loopback();
    let inbound_addr = loopback();
    let gw = gateway(agent_addr, inbound_addr);
    let target = inbound_number(inbound_addr, "200");
    let agent = agent_waits_for_bye(agent_addr);
    let five9 = five9_calls(&gw, Duration::from_secs(6));

    let id = connected_call(&gw);
    let r = transfer(&gw, &id, cold(HUMAN));
    assert_eq!(r.status, 202, "{r}");
    let v: Value = serde_json::from_str(&r.body).expect("JSON");
    assert_eq!(v["state"], "transferring", "{r}");

    let bridged = wait_for(&gw, &id, Duration::from_secs(10), |v| {
        v["transfer"]["result"] != "dialling"
    });
    assert_eq!(bridged["transfer"]["result"], "bridged", "{bridged}");
    assert_eq!(bridged["state"], "connected", "the call goes on: {bridged}");

    // The agent was let go with a BYE as soon as the caller was bridged.
    let agent = agent.wait_within(Duration::from_secs(5));
    agent.assert_passed();
    // The caller hangs up (6 s after its answer): the inbound number gets
    // the BYE, and the call ends as the caller's hang-up.
    let five9 = five9.wait_within(Duration::from_secs(15));
    five9.assert_passed();
    let target = target.wait_within(Duration::from_secs(10));
    target.assert_passed();

    let invite = target
        .last_received_request("INVITE")
        .expect("the inbound number got the INVITE");
    assert!(
        invite
            .start_line()
            .starts_with(&format!("INVITE sip:+18005550199@{inbound_addr}")),
        "the number in E.164: {}",
        invite.start_line()
    );
    assert!(
        invite
            .header("Authorization")
            .is_some_and(|a| a.contains("username=\"trunkline\"") && a.contains("qop=auth")),
        "answered the challenge: {invite:?}"
    );
    assert!(
        invite
            .header("From")
            .is_some_and(|f| f.contains("+14155550123")),
        "the inbound number sees the customer's number: {invite:?}"
    );
    assert_eq!(invite.header("X-Trunkline-Call-ID"), Some(id.as_str()));
    // The caller's media went to the number: the pcap's packets left
    // SIPp toward our port and the number's RTP came back to the caller
    // (SIPp plays both sides; the relay counts what crossed it).
    assert!(
        gw.metric("trunkline_rtp_packets_total{direction=\"agent_to_caller\"}") > 50.0,
        "audio from the inbound number reached the caller"
    );

    let ended = wait_for(&gw, &id, Duration::from_secs(5), |v| v["state"] == "ended");
    assert_eq!(ended["end_reason"], "caller-hangup", "{ended}");
    let t = &ended["outcome"]["transfer"];
    assert_eq!(t["result"], "bridged", "{ended}");
    assert_eq!(t["mode"], "cold");
    assert_eq!(t["to"], HUMAN);
    assert_eq!(t["outbound"], "five9-out");
    assert!(t["bridged_ms"].as_u64() >= t["started_ms"].as_u64(), "{t}");
    assert!(!gw.log().contains(PASSWORD), "the password reached the log");
    assert_nothing_left(&gw);
}

#[test]
fn a_busy_silent_or_refusing_number_leaves_the_caller_with_the_agent() {
    for (answer, password, kind, status) in [
        ("486", PASSWORD, "busy", Some(486u16)),
        ("none", PASSWORD, "no-answer", None),
        // Wrong trunk credentials: verifyauth fails, the number says 403.
        ("200", "not-the-password", "auth-failed", Some(403)),
    ] {
        let agent_addr = loopback();
        let inbound_addr = loopback();
        let gw = gateway_with(agent_addr, inbound_addr, password, 4);
        let target = inbound_number(inbound_addr, answer);
        let agent = agent_waits_for_bye(agent_addr);
        let five9 = five9_calls(&gw, Duration::from_secs(7));

        let id = connected_call(&gw);
        assert_eq!(transfer(&gw, &id, cold(HUMAN)).status, 202);
        let failed = wait_for(&gw, &id, Duration::from_secs(8), |v| {
            v["transfer"]["result"] != "dialling"
        });
        assert_eq!(failed["transfer"]["result"], "failed", "{answer}: {failed}");
        assert_eq!(failed["transfer"]["failure"], kind, "{failed}");
        assert_eq!(
            failed["transfer"]["status"].as_u64(),
            status.map(u64::from),
            "{failed}"
        );
        assert_eq!(
            failed["state"], "connected",
            "still with the agent: {failed}"
        );

        // The caller hangs up later: the agent, still on the call, gets
        // the BYE then.
        let five9 = five9.wait_within(Duration::from_secs(15));
        five9.assert_passed();
        let agent = agent.wait_within(Duration::from_secs(5));
        agent.assert_passed();
        let target = target.wait_within(Duration::from_secs(5));
        target.assert_passed();
        if answer == "none" {
            assert!(
                target.received_request("CANCEL").is_some(),
                "the number that never answered got a CANCEL"
            );
        }
        let ended = wait_for(&gw, &id, Duration::from_secs(5), |v| v["state"] == "ended");
        assert_eq!(ended["end_reason"], "caller-hangup", "{ended}");
        assert_eq!(ended["outcome"]["transfer"]["failure"], kind, "{ended}");
        assert!(!gw.log().contains(password), "the password reached the log");
        assert_nothing_left(&gw);
    }
}

#[test]
fn transfers_that_cannot_start_get_409_or_422_with_the_reason() {
    let agent_addr = loopback();
    let inbound_addr = loopback();
    let gw = gateway(agent_addr, inbound_addr);
    // A call whose agent rings for ever: not answered, so 409.
    let mut ringing = Sipp::new("agent_uas_slow.xml", agent_addr)
        .timeout(Duration::from_secs(30))
        .spawn();
    ringing.wait_ready(Duration::from_secs(5));
    let five9 = Sipp::new("five9_uac_cancel.xml", loopback())
        .remote(gw.sip)
        .pause(Duration::from_secs(3))
        .timeout(Duration::from_secs(30))
        .spawn();
    let until = Instant::now() + Duration::from_secs(5);
    let id = loop {
        let r = http::get(gw.http, "/v1/calls", Some(TEST_KEY));
        let v: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
        if let Some(id) = v["calls"][0]["call_id"].as_str() {
            break id.to_owned();
        }
        assert!(Instant::now() < until, "no call: {v}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let r = transfer(&gw, &id, cold(HUMAN));
    assert_eq!(r.status, 409, "{r}");
    assert!(r.body.contains("not answered"), "{r}");

    for (body, why) in [
        (
            json!({"mode": "cold", "to": HUMAN, "outbound": "nope"}),
            "no [[outbound]] trunk",
        ),
        (
            json!({"mode": "cold", "to": "1234", "outbound": "five9-out"}),
            "bare extension",
        ),
        (
            json!({"mode": "cold", "to": "call me", "outbound": "five9-out"}),
            "neither a phone number",
        ),
        (
            json!({"mode": "sideways", "to": HUMAN, "outbound": "five9-out"}),
            "`mode`",
        ),
        (json!({"mode": "cold", "outbound": "five9-out"}), "`to`"),
        (json!({"mode": "cold", "to": HUMAN}), "`outbound`"),
        (json!({}), "give `destination`"),
        (
            json!({"mode": "cold", "to": HUMAN, "outbound": "five9-out", "destination": "q"}),
            "exclude",
        ),
    ] {
        let r = transfer(&gw, &id, body.clone());
        assert!(r.status == 422 || r.status == 409, "{body}: {r}");
        if r.status == 422 {
            assert!(r.body.contains(why), "{body}: {r}");
        }
    }
    let r = transfer(&gw, "tl-0000000000000001", cold(HUMAN));
    assert_eq!(r.status, 404, "{r}");
    five9.wait_within(Duration::from_secs(10));
    ringing.wait_within(Duration::from_secs(10));
    assert_nothing_left(&gw);
}

#[test]
fn a_full_trunk_fails_a_transfer_and_a_second_transfer_while_one_dials_is_409() {
    let agent_addr = loopback();
    let inbound_addr = loopback();
    let gw = gateway_with(agent_addr, inbound_addr, PASSWORD, 1);
    // Never answers: two INVITEs (a call we place, then the transfer),
    // each CANCELled.
    let mut target = Sipp::new("five9_inbound_number.xml", inbound_addr)
        .set("user", USER)
        .set("password", PASSWORD)
        .set("answer", "none")
        .calls(2)
        .timeout(Duration::from_secs(40))
        .spawn();
    target.wait_ready(Duration::from_secs(5));
    let agent = agent_waits_for_bye(agent_addr);
    let five9 = five9_calls(&gw, Duration::from_secs(10));
    let id = connected_call(&gw);

    // A call placed through the trunk takes its one slot...
    let r = http::post_json(
        gw.http,
        "/v1/calls",
        Some(TEST_KEY),
        &json!({"to": HUMAN, "outbound": "five9-out", "agent": format!("sip:agent@{agent_addr}")}),
    );
    assert_eq!(r.status, 201, "{r}");
    // ...so the transfer fails at once, and the caller stays.
    assert_eq!(transfer(&gw, &id, cold(HUMAN)).status, 202);
    let full = wait_for(&gw, &id, Duration::from_secs(2), |v| {
        v["transfer"]["result"] == "failed"
    });
    assert_eq!(full["transfer"]["failure"], "capacity", "{full}");
    assert_eq!(full["state"], "connected", "{full}");

    // Once the placed call gave up ringing, the slot is free again.
    let until = Instant::now() + Duration::from_secs(6);
    let r = loop {
        let r = transfer(&gw, &id, cold(HUMAN));
        let dialling = wait_for(&gw, &id, Duration::from_millis(300), |v| {
            v["transfer"]["result"] == "dialling"
        });
        if dialling["transfer"]["result"] == "dialling" || Instant::now() >= until {
            break r;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(r.status, 202, "{r}");
    let again = transfer(&gw, &id, cold(HUMAN));
    assert_eq!(again.status, 409, "{again}");
    assert!(again.body.contains("already under way"), "{again}");

    five9.wait_within(Duration::from_secs(15)).assert_passed();
    agent.wait_within(Duration::from_secs(5)).assert_passed();
    target.wait_within(Duration::from_secs(10)).assert_passed();
    assert_nothing_left(&gw);
}

#[test]
fn after_a_cold_transfer_the_caller_and_the_target_hear_each_other_in_their_own_codecs() {
    let p = placed_call();
    let (gw, id) = (&p.gw, p.id.as_str());
    // Before: Five9 hears the agent (its 300 Hz); note our stream's SSRC.
    let tone = p.agent.rtp.send_tone(p.to_us_from_agent, PCMU, 300.0);
    std::thread::sleep(Duration::from_millis(300));
    p.five9.rtp.drain();
    let before = p.five9.rtp.collect(Duration::from_millis(500), Some(PCMA));
    tone.stop();
    let a = analyse(&before).expect("Five9 heard the agent");
    assert!(near(a.freq, 300.0), "{a:?}");

    let r = transfer(
        gw,
        id,
        json!({"mode": "cold", "to": "+18005550199", "outbound": "human"}),
    );
    assert_eq!(r.status, 202, "{r}");
    let to_human = p.human.answer(PCMU);
    assert_eq!(
        to_human.audio_payloads(),
        ["0", "8", "101"],
        "G.711 only toward a trunk"
    );
    assert!(
        to_human
            .header("From")
            .is_some_and(|f| f.contains("sip:+14155550100@")),
        "the human sees the customer (the number we dialled): {to_human:?}"
    );
    let bye = p.agent.take_bye();
    assert!(bye.start_line().starts_with("BYE "), "the agent is let go");
    let bridged = wait_for(gw, id, Duration::from_secs(5), |v| {
        v["transfer"]["result"] == "bridged"
    });
    assert_eq!(bridged["transfer"]["result"], "bridged", "{bridged}");

    // Five9 says 1004 Hz in PCMA, the human 440 Hz in PCMU.
    let f9_tone = p.five9.rtp.send_tone(p.to_us_from_five9, PCMA, 1004.0);
    let human_tone = p.human.rtp.send_tone(to_human.rtp_target(), PCMU, 440.0);
    std::thread::sleep(Duration::from_millis(300));
    p.five9.rtp.drain();
    p.human.rtp.drain();
    let heard_by_five9 = p.five9.rtp.collect(Duration::from_secs(1), Some(PCMA));
    let heard_by_human = p.human.rtp.collect(Duration::from_secs(1), Some(PCMU));
    f9_tone.stop();
    human_tone.stop();
    let f = analyse(&heard_by_five9).expect("Five9 heard the human");
    let h = analyse(&heard_by_human).expect("the human heard Five9");
    assert!(near(f.freq, 440.0), "Five9 heard {f:?}");
    assert!(near(h.freq, 1004.0), "the human heard {h:?}");
    assert!(f.snr_db > 30.0 && h.snr_db > 30.0, "{f:?} {h:?}");
    // One stream toward Five9 throughout: the same SSRC, sequence going on.
    let (first, after) = (&before[0], &heard_by_five9[0]);
    assert_eq!(first.ssrc, after.ssrc, "Five9 sees one RTP stream");
    assert!(
        after.seq.wrapping_sub(before.last().expect("packets").seq) < 1000,
        "its numbering goes on"
    );

    // The human hangs up: Five9 gets the BYE, the call ends.
    hang_up(&p.human, &to_human);
    p.five9.take_bye();
    let ended = wait_for(gw, id, Duration::from_secs(5), |v| v["state"] == "ended");
    assert_eq!(
        ended["end_reason"], "agent-hangup",
        "the far end hung up: {ended}"
    );
    assert_eq!(ended["outcome"]["transfer"]["result"], "bridged", "{ended}");
    assert_nothing_left(gw);
}

/// `POST /v1/calls/{id}/{what}` with an empty body (`end`,
/// `transfer/complete`, `transfer/cancel`).
fn order(gw: &Gateway, id: &str, what: &str) -> http::Response {
    http::post_json(
        gw.http,
        &format!("/v1/calls/{id}/{what}"),
        Some(TEST_KEY),
        &json!({}),
    )
}

/// Five9 and the agent hear each other (after a transfer that did not
/// take the caller away).
fn assert_with_the_agent_again(p: &Placed) {
    let heard = hear(
        &[
            (&p.five9, p.to_us_from_five9, PCMA, 1004.0),
            (&p.agent, p.to_us_from_agent, PCMU, 300.0),
        ],
        &[(&p.five9, PCMA), (&p.agent, PCMU)],
    );
    assert!(
        near(heard[0], 300.0),
        "Five9 hears the agent again: {heard:?}"
    );
    assert!(
        near(heard[1], 1004.0),
        "the agent hears Five9 again: {heard:?}"
    );
}

/// `uas` hangs up the dialog it answered (`invite`, the gateway's INVITE).
fn hang_up(uas: &Uas, invite: &support::sip_text::Msg) {
    uas.sip.send(&format!(
        "BYE {target} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-{n}\r\nMax-Forwards: 70\r\n\
         From: {to};tag=uas\r\nTo: {from}\r\nCall-ID: {cid}\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n",
        target = invite.contact_uri().expect("our Contact"),
        me = uas.sip.me,
        n = support::unique("bye"),
        to = invite.header("To").expect("To"),
        from = invite.header("From").expect("From"),
        cid = invite.header("Call-ID").expect("Call-ID"),
    ));
}

/// A call we place to a PCMA number (Five9) with a PCMU agent, both
/// written here, and a PCMU human behind the trunk `human`.
struct Placed {
    gw: Gateway,
    id: String,
    five9: Uas,
    agent: Uas,
    human: Uas,
    /// Where Five9 and the agent send their RTP (our offers).
    to_us_from_five9: SocketAddr,
    to_us_from_agent: SocketAddr,
}

fn placed_call() -> Placed {
    let five9_sip = loopback();
    let human_sip = loopback();
    let gw = Gateway::builder("route-reason")
        .policy_toml("default_agent = \"builtin:menu\"")
        .extra_toml(&format!(
            "[[outbound]]\nname = \"plain\"\nuri = \"sip:{five9_sip}\"\n\
             [[outbound]]\nname = \"human\"\nuri = \"sip:{human_sip}\"\n\
             [outbound.caller_id]\nuser = \"+18005550100\"\n"
        ))
        .start();
    let five9 = Uas::at(five9_sip, gw.sip);
    let agent = Uas::new(gw.sip);
    let human = Uas::at(human_sip, gw.sip);
    let r = http::post_json(
        gw.http,
        "/v1/calls",
        Some(TEST_KEY),
        &json!({"to": "+14155550100", "outbound": "plain", "agent": format!("sip:agent@{}", agent.sip.me)}),
    );
    assert_eq!(r.status, 201, "{r}");
    let id = serde_json::from_str::<Value>(&r.body).expect("JSON")["call_id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let offer = five9.answer(PCMA);
    let to_agent = agent.answer(PCMU);
    let up = wait_for(&gw, &id, Duration::from_secs(5), |v| {
        v["state"] == "connected"
    });
    assert_eq!(up["state"], "connected", "{up}");
    Placed {
        to_us_from_five9: offer.rtp_target(),
        to_us_from_agent: to_agent.rtp_target(),
        gw,
        id,
        five9,
        agent,
        human,
    }
}

/// While the peers send their tones (`(who, to, pt, Hz)`), the frequency
/// each listener hears (`(who, pt)`), in order.
fn hear(talk: &[(&Uas, SocketAddr, u8, f64)], listen: &[(&Uas, u8)]) -> Vec<f64> {
    let tones: Vec<_> = talk
        .iter()
        .map(|(peer, to, pt, hz)| peer.rtp.send_tone(*to, *pt, *hz))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    for (peer, _) in listen {
        peer.rtp.drain();
    }
    let heard = listen
        .iter()
        .map(|(peer, pt)| {
            let packets = peer.rtp.collect(Duration::from_millis(800), Some(*pt));
            analyse(&packets).map_or(0.0, |a| a.freq)
        })
        .collect();
    for t in tones {
        t.stop();
    }
    heard
}

fn near(heard: f64, hz: f64) -> bool {
    (heard - hz).abs() < 5.0
}

#[test]
fn a_warm_transfer_briefs_the_human_while_the_caller_hears_hold_audio_then_completes() {
    let p = placed_call();
    let (gw, id) = (&p.gw, p.id.as_str());
    let r = transfer(
        gw,
        id,
        json!({"mode": "warm", "to": "+18005550199", "outbound": "human"}),
    );
    assert_eq!(r.status, 202, "{r}");
    let r = order(gw, id, "transfer/complete");
    assert_eq!(
        r.status, 409,
        "nothing to complete while the human rings: {r}"
    );
    let to_human = p.human.answer(PCMU);
    let briefing = wait_for(gw, id, Duration::from_secs(5), |v| {
        v["transfer"]["result"] == "briefing"
    });
    assert_eq!(briefing["transfer"]["result"], "briefing", "{briefing}");

    // The brief: agent (300 Hz) and human (440 Hz) hear each other; Five9
    // hears our 400 Hz hold tone, and its own 1004 Hz reaches nobody.
    let heard = hear(
        &[
            (&p.five9, p.to_us_from_five9, PCMA, 1004.0),
            (&p.agent, p.to_us_from_agent, PCMU, 300.0),
            (&p.human, to_human.rtp_target(), PCMU, 440.0),
        ],
        &[(&p.five9, PCMA), (&p.agent, PCMU), (&p.human, PCMU)],
    );
    assert!(near(heard[0], 400.0), "Five9 hears hold audio: {heard:?}");
    assert!(
        near(heard[1], 440.0),
        "the agent hears the human: {heard:?}"
    );
    assert!(
        near(heard[2], 300.0),
        "the human hears the agent: {heard:?}"
    );

    let r = order(gw, id, "transfer/complete");
    assert_eq!(r.status, 202, "{r}");
    p.agent.take_bye();
    let bridged = wait_for(gw, id, Duration::from_secs(5), |v| {
        v["transfer"]["result"] == "bridged"
    });
    assert_eq!(bridged["transfer"]["mode"], "warm", "{bridged}");
    let heard = hear(
        &[
            (&p.five9, p.to_us_from_five9, PCMA, 1004.0),
            (&p.human, to_human.rtp_target(), PCMU, 440.0),
        ],
        &[(&p.five9, PCMA), (&p.human, PCMU)],
    );
    assert!(near(heard[0], 440.0), "Five9 hears the human: {heard:?}");
    assert!(near(heard[1], 1004.0), "the human hears Five9: {heard:?}");

    let r = order(gw, id, "end");
    assert_eq!(r.status, 202, "{r}");
    p.five9.take_bye();
    p.human.take_bye();
    assert_nothing_left(gw);
}

#[test]
fn cancelling_a_warm_brief_returns_the_caller_to_the_agent() {
    let p = placed_call();
    let (gw, id) = (&p.gw, p.id.as_str());
    let r = transfer(
        gw,
        id,
        json!({"mode": "warm", "to": "+18005550199", "outbound": "human"}),
    );
    assert_eq!(r.status, 202, "{r}");
    p.human.answer(PCMU);
    wait_for(gw, id, Duration::from_secs(5), |v| {
        v["transfer"]["result"] == "briefing"
    });
    let r = order(gw, id, "transfer/cancel");
    assert_eq!(r.status, 202, "{r}");
    p.human.take_bye();
    let back = wait_for(gw, id, Duration::from_secs(5), |v| {
        v["transfer"]["result"] == "cancelled"
    });
    assert_eq!(back["transfer"]["result"], "cancelled", "{back}");
    assert_eq!(back["state"], "connected", "{back}");
    assert_with_the_agent_again(&p);
    let r = order(gw, id, "transfer/cancel");
    assert_eq!(r.status, 409, "nothing left to cancel: {r}");

    let r = order(gw, id, "end");
    assert_eq!(r.status, 202, "{r}");
    p.five9.take_bye();
    p.agent.take_bye();
    assert_nothing_left(gw);
}

#[test]
fn a_websocket_agent_dials_a_transfer_hears_why_one_failed_and_is_stopped_when_one_bridges() {
    let five9_sip = loopback();
    let busy_sip = loopback();
    let human_sip = loopback();
    let agent = support::ws_agent::WsAgent::bind();
    let gw = Gateway::builder("route-reason")
        .policy_toml("default_agent = \"builtin:menu\"")
        .env("F9_OUT_PASSWORD", PASSWORD)
        .extra_toml(&format!(
            "[[outbound]]\nname = \"plain\"\nuri = \"sip:{five9_sip}\"\n\
             [[outbound]]\nname = \"human\"\nuri = \"sip:{human_sip}\"\n\
             [outbound.caller_id]\nuser = \"+18005550111\"\non_transfer = \"trunk\"\n\
             [[outbound]]\nname = \"busy\"\nuri = \"sip:{busy_sip}\"\n\
             [outbound.auth]\nuser = \"{USER}\"\npassword_env = \"F9_OUT_PASSWORD\"\n"
        ))
        .start();
    let busy = inbound_number(busy_sip, "486");
    let five9 = Uas::at(five9_sip, gw.sip);
    let human = Uas::at(human_sip, gw.sip);
    let r = http::post_json(
        gw.http,
        "/v1/calls",
        Some(TEST_KEY),
        &json!({"to": "+14155550100", "outbound": "plain", "agent": agent.url("")}),
    );
    assert_eq!(r.status, 201, "{r}");
    let id = serde_json::from_str::<Value>(&r.body).expect("JSON")["call_id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let offer = five9.answer(PCMA);
    let mut conn = agent.accept(Duration::from_secs(5));
    conn.wait_for("start", Duration::from_secs(5));

    let dial = |to: &str, outbound: &str| json!({"event": "trunkline", "action": "dial_transfer", "mode": "cold", "to": to, "outbound": outbound});
    // A trunk that does not exist: refused at once, with the reason.
    conn.send(dial(HUMAN, "nope"));
    let refused = conn.wait_for("transfer_failed", Duration::from_secs(5));
    assert_eq!(refused["transfer"]["failure"], "refused", "{refused}");
    assert!(
        refused["transfer"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("no [[outbound]] trunk")),
        "{refused}"
    );
    // A busy number: the agent hears busy and the 486; the caller stays.
    conn.send(dial(HUMAN, "busy"));
    let failed = conn.wait_for("transfer_failed", Duration::from_secs(8));
    assert_eq!(failed["transfer"]["failure"], "busy", "{failed}");
    assert_eq!(failed["transfer"]["status"], 486, "{failed}");
    busy.wait_within(Duration::from_secs(5)).assert_passed();

    // A human who answers: the caller is bridged, the stream stops.
    conn.send(dial("+18005550199", "human"));
    let to_human = human.answer(PCMU);
    assert!(
        to_human
            .header("From")
            .is_some_and(|f| f.contains("sip:+18005550111@")),
        "`on_transfer = \"trunk\"`: the trunk's caller id: {to_human:?}"
    );
    let stop = conn.wait_for("stop", Duration::from_secs(5));
    assert_eq!(stop["stop"]["reason"], "transferred", "{stop}");
    let heard = hear(
        &[
            (&five9, offer.rtp_target(), PCMA, 1004.0),
            (&human, to_human.rtp_target(), PCMU, 440.0),
        ],
        &[(&five9, PCMA), (&human, PCMU)],
    );
    assert!(near(heard[0], 440.0), "Five9 hears the human: {heard:?}");
    assert!(near(heard[1], 1004.0), "the human hears Five9: {heard:?}");

    let r = order(&gw, &id, "end");
    assert_eq!(r.status, 202, "{r}");
    five9.take_bye();
    human.take_bye();
    assert_nothing_left(&gw);
}

#[test]
fn the_builtin_agents_transfer_to_a_human_option_bridges_the_caller_or_ends_with_the_failure() {
    for answer in ["200", "486"] {
        let inbound_addr = loopback();
        let gw = Gateway::builder("route-reason")
            .policy_toml("default_agent = \"builtin:front-desk\"")
            .env("F9_OUT_PASSWORD", PASSWORD)
            .extra_toml(&format!(
                "[builtin.menus.front-desk.options]\n\
                 \"1\" = {{ name = \"human\", attributes = {{ contained = \"false\" }}, \
                 transfer = {{ to = \"{HUMAN}\", outbound = \"five9-out\" }} }}\n\
                 [[outbound]]\nname = \"five9-out\"\nuri = \"sip:{inbound_addr}\"\nring_timeout_secs = 3\n\
                 [outbound.auth]\nuser = \"{USER}\"\npassword_env = \"F9_OUT_PASSWORD\"\n"
            ))
            .start();
        // The human answers, talks, and hangs up after 2 s.
        let mut target = Sipp::new("five9_inbound_number.xml", inbound_addr)
            .set("user", USER)
            .set("password", PASSWORD)
            .set("answer", answer)
            .set("hangup", "1")
            .pause(Duration::from_secs(2))
            .timeout(Duration::from_secs(40))
            .spawn();
        target.wait_ready(Duration::from_secs(5));
        let mut five9 = Sipp::new("five9_uac_builtin.xml", loopback())
            .remote(gw.sip)
            .set("key", "1")
            .set("session_id", format!("sess-human-{answer}"))
            .timeout(Duration::from_secs(40))
            .spawn();
        five9.wait_ready(Duration::from_secs(5));
        // Five9 presses 1 and gets its BYE once the call ends: after the
        // human hung up, or at once when the human's line is busy.
        five9.wait_within(Duration::from_secs(30)).assert_passed();
        target.wait_within(Duration::from_secs(10)).assert_passed();

        let r = http::get(
            gw.http,
            &format!("/v1/outcomes?shared_id=sess-human-{answer}"),
            Some(TEST_KEY),
        );
        assert_eq!(r.status, 200, "{r}");
        let record: Value = serde_json::from_str(&r.body).expect("JSON");
        let t = &record["transfer"];
        if answer == "200" {
            assert_eq!(t["result"], "bridged", "{record}");
            assert_eq!(
                record["end_reason"], "agent-hangup",
                "the human hung up: {record}"
            );
        } else {
            assert_eq!(t["result"], "failed", "{record}");
            assert_eq!(t["failure"], "busy", "{record}");
            assert_eq!(record["end_reason"], "agent-request", "{record}");
        }
        assert_nothing_left(&gw);
    }
}

/// The keys in RFC 4733 packets (payload type 101) `peer` receives within
/// `d`: each key once, from its end packets, with how many end packets
/// and the duration they carried.
fn keys_heard(peer: &Uas, d: Duration) -> Vec<(u8, usize, u16)> {
    let packets = peer.rtp.collect(d, Some(101));
    let mut keys: Vec<(u32, u8, usize, u16)> = Vec::new();
    for p in packets.iter().filter(|p| p.payload.len() >= 4) {
        let (event, end, duration) = (
            p.payload[0],
            p.payload[1] & 0x80 != 0,
            u16::from_be_bytes([p.payload[2], p.payload[3]]),
        );
        if !end {
            continue;
        }
        match keys.last_mut() {
            Some(k) if k.0 == p.ts => k.2 += 1,
            _ => keys.push((p.ts, event, 1, duration)),
        }
    }
    keys.into_iter().map(|(_, e, n, d)| (e, n, d)).collect()
}

#[test]
fn key_presses_reach_the_caller_or_the_transfer_target_as_rfc_4733_events() {
    let p = placed_call();
    let (gw, id) = (&p.gw, p.id.as_str());
    let dtmf = |body: Value| {
        http::post_json(
            gw.http,
            &format!("/v1/calls/{id}/dtmf"),
            Some(TEST_KEY),
            &body,
        )
    };
    for (body, why) in [
        (json!({"digits": "12x"}), "not a DTMF key"),
        (json!({"digits": ""}), "give 1 to"),
        (json!({"digits": "1", "to": "target"}), "no transfer target"),
        (json!({"digits": "1", "to": "moon"}), "`to`"),
    ] {
        let r = dtmf(body.clone());
        assert_eq!(r.status, 422, "{body}: {r}");
        assert!(r.body.contains(why), "{body}: {r}");
    }
    // Toward Five9 (the caller here): 100 ms keys, each end packet thrice.
    p.five9.rtp.drain();
    let r = dtmf(json!({"digits": "5*"}));
    assert_eq!(r.status, 202, "{r}");
    assert_eq!(
        keys_heard(&p.five9, Duration::from_millis(900)),
        [(5, 3, 800), (10, 3, 800)]
    );

    // Toward a human behind an IVR, once transferred.
    let r = transfer(
        gw,
        id,
        json!({"mode": "cold", "to": "+18005550199", "outbound": "human"}),
    );
    assert_eq!(r.status, 202, "{r}");
    p.human.answer(PCMU);
    p.agent.take_bye();
    wait_for(gw, id, Duration::from_secs(5), |v| {
        v["transfer"]["result"] == "bridged"
    });
    p.human.rtp.drain();
    let r = dtmf(json!({"digits": "12#", "to": "target"}));
    assert_eq!(r.status, 202, "{r}");
    assert_eq!(
        keys_heard(&p.human, Duration::from_millis(1200)),
        [(1, 3, 800), (2, 3, 800), (11, 3, 800)]
    );

    let r = order(gw, id, "end");
    assert_eq!(r.status, 202, "{r}");
    p.five9.take_bye();
    p.human.take_bye();
    assert_nothing_left(gw);
}

#[test]
fn the_transfer_example_config_loads_with_its_outbound_trunk() {
    let path = xtask::workspace_root().join("examples/transfer.toml");
    let config = trunkline::config::Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let trunk = config.outbound("five9-out").expect("the five9-out trunk");
    assert_eq!(trunk.uri, "sip:127.0.0.1:5090");
    assert_eq!(
        trunk.credentials.as_ref().map(|(user, _)| user.as_str()),
        Some("trunkline")
    );
    assert_eq!(config.sip.udp, Some("127.0.0.1:5060".parse().unwrap()));
    assert_eq!(
        config.policy_values("route-reason").get("default_agent"),
        Some(&"sip:agent@127.0.0.1:5080".to_owned())
    );
    assert!(
        config
            .http
            .keys
            .iter()
            .all(|k| k.key.starts_with("change-me-loopback"))
    );
}

#[test]
fn a_target_that_sends_early_media_first_is_bridged_on_its_answer() {
    let agent_addr = loopback();
    let inbound_addr = loopback();
    let gw = gateway(agent_addr, inbound_addr);
    // 183 with SDP (announcements), 180, then the answer; the human hangs
    // up 2 s later.
    let mut target = Sipp::new("five9_inbound_number.xml", inbound_addr)
        .set("user", USER)
        .set("password", PASSWORD)
        .set("early", "1")
        .set("hangup", "1")
        .pause(Duration::from_secs(2))
        .timeout(Duration::from_secs(40))
        .spawn();
    target.wait_ready(Duration::from_secs(5));
    let agent = agent_waits_for_bye(agent_addr);
    let five9 = Sipp::new("five9_uac.xml", loopback())
        .remote(gw.sip)
        .timeout(Duration::from_secs(40))
        .spawn();
    let id = connected_call(&gw);
    assert_eq!(transfer(&gw, &id, cold(HUMAN)).status, 202);
    let bridged = wait_for(&gw, &id, Duration::from_secs(10), |v| {
        v["transfer"]["result"] != "dialling"
    });
    assert_eq!(bridged["transfer"]["result"], "bridged", "{bridged}");
    agent.wait_within(Duration::from_secs(5)).assert_passed();
    target.wait_within(Duration::from_secs(10)).assert_passed();
    // The human hung up: Five9 gets the BYE with the outcome.
    five9.wait_within(Duration::from_secs(10)).assert_passed();
    let ended = wait_for(&gw, &id, Duration::from_secs(5), |v| v["state"] == "ended");
    assert_eq!(ended["end_reason"], "agent-hangup", "{ended}");
    assert_nothing_left(&gw);
}

#[test]
fn the_target_hanging_up_during_a_warm_brief_returns_the_caller_to_the_agent() {
    let p = placed_call();
    let (gw, id) = (&p.gw, p.id.as_str());
    let r = transfer(
        gw,
        id,
        json!({"mode": "warm", "to": "+18005550199", "outbound": "human"}),
    );
    assert_eq!(r.status, 202, "{r}");
    let to_human = p.human.answer(PCMU);
    wait_for(gw, id, Duration::from_secs(5), |v| {
        v["transfer"]["result"] == "briefing"
    });
    // The human hangs up on the agent's brief.
    hang_up(&p.human, &to_human);
    let back = wait_for(gw, id, Duration::from_secs(5), |v| {
        v["transfer"]["result"] == "failed"
    });
    assert_eq!(back["transfer"]["failure"], "target-hangup", "{back}");
    assert_eq!(back["state"], "connected", "{back}");
    assert_with_the_agent_again(&p);

    let r = order(gw, id, "end");
    assert_eq!(r.status, 202, "{r}");
    p.five9.take_bye();
    p.agent.take_bye();
    assert_nothing_left(gw);
}

#[test]
fn a_stranger_cannot_hang_up_the_transfer_target_s_dialog() {
    let p = placed_call();
    let (gw, id) = (&p.gw, p.id.as_str());
    let r = transfer(
        gw,
        id,
        json!({"mode": "cold", "to": "+18005550199", "outbound": "human"}),
    );
    assert_eq!(r.status, 202, "{r}");
    let to_human = p.human.answer(PCMU);
    p.agent.take_bye();
    wait_for(gw, id, Duration::from_secs(5), |v| {
        v["transfer"]["result"] == "bridged"
    });
    // The human's dialog, replayed from another address: refused, and
    // nothing changes.
    let stranger = Uas::new(gw.sip);
    hang_up(&stranger, &to_human);
    let refused = stranger.sip.wait_for_msg(
        "an answer to the stranger's BYE",
        Duration::from_secs(5),
        |m| m.status().is_some(),
    );
    assert_eq!(refused.status(), Some(403), "{refused:?}");
    let still = wait_for(gw, id, Duration::from_millis(500), |_| false);
    assert_eq!(still["state"], "connected", "{still}");
    // The human itself may.
    hang_up(&p.human, &to_human);
    p.five9.take_bye();
    let ended = wait_for(gw, id, Duration::from_secs(5), |v| v["state"] == "ended");
    assert_eq!(ended["end_reason"], "agent-hangup", "{ended}");
    assert_nothing_left(gw);
}
