//! Media through the real gateway: a Five9 and an agent written here speak
//! SIP and RTP over loopback UDP, and what one says must reach the other the
//! way a listener would notice — the same tone across a PCMU/PCMA
//! transcoding, key presses relayed and counted once, silence toward a
//! caller on hold, a BYE when the caller's media stops, audio that follows a
//! caller sending from another port, and a 503 when no ports are left.

mod support;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use support::gateway::Gateway;
use support::rtp::{PCMA, PCMU, Packet, RtpPeer, analyse, send_digits};
use support::sip_text::{Msg, UdpPeer as SipPeer, reply_to};
use support::sipp::loopback;
use support::unique;

/// How long a message the gateway owes us may take (debug build, shared
/// cores).
const SOON: Duration = Duration::from_secs(5);
/// The tone every test sends: 1 kHz as telephony tests it (ITU-T O.133's
/// 1004 Hz), so samples do not repeat every 8 and the G.711 quantisation
/// error spreads as noise instead of hiding in harmonics.
const TONE_HZ: f64 = 1004.0;
/// Five9's telephone-event payload type; the agent's is the gateway's 101.
const FIVE9_EVENT_PT: u8 = 96;
const AGENT_EVENT_PT: u8 = 101;

fn branch() -> String {
    format!("z9hG4bK-{}", unique("b"))
}

// ---------------------------------------------------------------- messages

/// An SDP body for `rtp` with `codecs` (payload type, encoding name) and
/// the `direction` attribute.
fn sdp(rtp: SocketAddr, codecs: &[(u8, &str)], direction: &str) -> String {
    let ip = rtp.ip();
    let list: Vec<String> = codecs.iter().map(|(pt, _)| pt.to_string()).collect();
    let mut text = format!(
        "v=0\r\no=peer 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {} RTP/AVP {}\r\n",
        rtp.port(),
        list.join(" ")
    );
    for (pt, name) in codecs {
        text += &format!("a=rtpmap:{pt} {name}/8000\r\n");
        if name.starts_with("telephone-event") {
            text += &format!("a=fmtp:{pt} 0-15\r\n");
        }
    }
    text + &format!("a={direction}\r\n")
}

/// Five9's usual offer: PCMU, PCMA, telephone-event on 96.
fn five9_offer(rtp: SocketAddr, direction: &str) -> String {
    sdp(
        rtp,
        &[
            (PCMU, "PCMU"),
            (PCMA, "PCMA"),
            (FIVE9_EVENT_PT, "telephone-event"),
        ],
        direction,
    )
}

// ------------------------------------------------------------- SIP peer

/// Five9's side of one call.
struct Five9 {
    sip: SipPeer,
    call_id: String,
    tag: String,
    cseq: u32,
    /// The gateway's 200 OK to the INVITE (dialog From/To/Contact).
    ok: Option<Msg>,
}

impl Five9 {
    fn new(gw: &Gateway) -> Five9 {
        Five9 {
            sip: SipPeer::new(gw.sip),
            call_id: unique("f9"),
            tag: unique("tag"),
            cseq: 1,
            ok: None,
        }
    }

    /// Sends the INVITE offering `body`; returns the final response (100
    /// and 18x skipped), ACKed.
    fn invite(&mut self, body: &str) -> Msg {
        let me = self.sip.me;
        let gw = self.sip.gw;
        let b = branch();
        self.sip.send(&format!(
            "INVITE sip:+14155550100@{gw} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {me};branch={b};rport\r\n\
             Max-Forwards: 70\r\n\
             From: \"Five9\" <sip:+14155550123@five9.example.com>;tag={tag}\r\n\
             To: <sip:+14155550100@{gw}>\r\n\
             Call-ID: {cid}\r\n\
             CSeq: 1 INVITE\r\n\
             Contact: <sip:five9@{me}>\r\n\
             Content-Type: application/sdp\r\n\
             Content-Length: {len}\r\n\r\n{body}",
            tag = self.tag,
            cid = self.call_id,
            len = body.len(),
        ));
        let cid = self.call_id.clone();
        let last = self
            .sip
            .wait_for_msg("final response to the INVITE", SOON * 2, |m| {
                m.header("Call-ID") == Some(cid.as_str()) && m.status().is_some_and(|s| s >= 200)
            });
        if last.status() == Some(200) {
            self.ok = Some(last.clone());
            self.ack(1);
        } else {
            // A non-2xx is ACKed in its transaction (RFC 3261 §17.1.1.3).
            self.sip.send(&format!(
                "ACK sip:+14155550100@{gw} SIP/2.0\r\n\
                 Via: SIP/2.0/UDP {me};branch={b};rport\r\n\
                 Max-Forwards: 70\r\n\
                 From: {from}\r\n\
                 To: {to}\r\n\
                 Call-ID: {cid}\r\n\
                 CSeq: 1 ACK\r\n\
                 Content-Length: 0\r\n\r\n",
                from = last.header("From").unwrap_or_default(),
                to = last.header("To").unwrap_or_default(),
                cid = self.call_id,
            ));
        }
        last
    }

    /// An in-dialog request `method` with CSeq `cseq` and `body` (SDP when
    /// not empty).
    fn in_dialog(&self, method: &str, cseq: u32, body: &str) -> String {
        let ok = self.ok.as_ref().expect("an established call");
        let ctype = if body.is_empty() {
            ""
        } else {
            "Content-Type: application/sdp\r\n"
        };
        format!(
            "{method} {target} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {me};branch={b};rport\r\n\
             Max-Forwards: 70\r\n\
             From: {from}\r\n\
             To: {to}\r\n\
             Call-ID: {cid}\r\n\
             CSeq: {cseq} {method}\r\n\
             Contact: <sip:five9@{me}>\r\n\
             {ctype}Content-Length: {len}\r\n\r\n{body}",
            target = ok.contact_uri().expect("Contact in the 200 OK"),
            me = self.sip.me,
            b = branch(),
            from = ok.header("From").expect("From"),
            to = ok.header("To").expect("To"),
            cid = self.call_id,
            len = body.len(),
        )
    }

    fn ack(&self, cseq: u32) {
        self.sip.send(&self.in_dialog("ACK", cseq, ""));
    }

    /// A re-INVITE offering `body`; returns the 200 OK (ACKed).
    fn reinvite(&mut self, body: &str) -> Msg {
        self.cseq += 1;
        let cseq = self.cseq;
        self.sip.send(&self.in_dialog("INVITE", cseq, body));
        let want = format!("{cseq} INVITE");
        let ok = self.sip.wait_for_msg("200 to the re-INVITE", SOON, |m| {
            m.header("CSeq") == Some(want.as_str()) && m.status().is_some_and(|s| s >= 200)
        });
        assert_eq!(ok.status(), Some(200), "re-INVITE answered: {ok:?}");
        self.ack(cseq);
        ok
    }

    /// Hangs up and waits for the gateway's 200.
    fn bye(&mut self) {
        self.cseq += 1;
        let cseq = self.cseq;
        self.sip.send(&self.in_dialog("BYE", cseq, ""));
        let want = format!("{cseq} BYE");
        let ok = self.sip.wait_for_msg("200 to our BYE", SOON, |m| {
            m.header("CSeq") == Some(want.as_str()) && m.status().is_some()
        });
        assert_eq!(ok.status(), Some(200), "BYE answered: {ok:?}");
    }

    /// The 200 OK's SDP: where to send RTP.
    fn media_target(&self) -> SocketAddr {
        self.ok.as_ref().expect("an established call").rtp_target()
    }
}

/// The agent: a UAS that answers the gateway's INVITE with `codecs`.
struct Agent {
    sip: SipPeer,
    rtp: RtpPeer,
    /// The gateway's INVITE (its SDP offer).
    invite: Option<Msg>,
}

impl Agent {
    fn new() -> Agent {
        // The gateway's address is learnt from its INVITE; filter on any.
        let me = loopback();
        let sock = UdpSocket::bind(me).expect("binding the agent");
        Agent {
            sip: SipPeer {
                sock,
                me,
                gw: "0.0.0.0:0".parse().expect("placeholder"),
            },
            rtp: RtpPeer::bind(),
            invite: None,
        }
    }

    fn policy_toml(&self) -> String {
        format!("default_agent = \"sip:agent@{}\"", self.sip.me)
    }

    /// Answers the gateway's INVITE with `codecs` and waits for the ACK.
    fn answer(&mut self, gw: &Gateway, codecs: &[(u8, &str)]) {
        self.sip.gw = gw.sip;
        let inv = self
            .sip
            .wait_for_msg("the gateway's INVITE", SOON * 2, |m| {
                m.method() == Some("INVITE")
            });
        let contact = format!("Contact: <sip:agent@{}>\r\n", self.sip.me);
        let extra = contact + "Content-Type: application/sdp\r\n";
        let body = sdp(self.rtp.addr, codecs, "sendrecv");
        self.sip
            .send(&reply_to(&inv, "200 OK", Some("agent"), &extra, &body));
        self.sip.wait_for_msg("ACK of the agent's 200", SOON, |m| {
            m.method() == Some("ACK")
        });
        self.invite = Some(inv);
    }

    /// Where the gateway's offer says to send RTP.
    fn media_target(&self) -> SocketAddr {
        self.invite.as_ref().expect("answered").rtp_target()
    }
}

/// A connected call: Five9 offered PCMU/PCMA, the agent answered `codecs`.
fn connect(gw: &Gateway, agent: &mut Agent, f9_rtp: SocketAddr, codecs: &[(u8, &str)]) -> Five9 {
    let mut five9 = Five9::new(gw);
    let offer = five9_offer(f9_rtp, "sendrecv");
    std::thread::scope(|s| {
        let answering = s.spawn(|| agent.answer(gw, codecs));
        let last = five9.invite(&offer);
        answering.join().expect("the agent answered");
        assert_eq!(last.status(), Some(200), "call connected: {last:?}");
    });
    five9
}

const AGENT_PCMA: &[(u8, &str)] = &[(PCMA, "PCMA"), (AGENT_EVENT_PT, "telephone-event")];

fn gateway(agent: &Agent, media_toml: &str) -> Gateway {
    Gateway::start_with_media("route-reason", &agent.policy_toml(), "", "", media_toml)
}

/// Asserts `packets` carry the test tone with payload type `pt`.
fn assert_tone(what: &str, packets: &[Packet], pt: u8) {
    assert!(
        packets.len() >= 25,
        "{what}: too few packets arrived ({})",
        packets.len()
    );
    assert!(
        packets.iter().all(|p| p.pt == pt),
        "{what}: every packet is payload type {pt}: {:?}",
        packets.iter().map(|p| p.pt).collect::<Vec<_>>()
    );
    let a = analyse(packets).unwrap_or_else(|| panic!("{what}: no analysable run of audio"));
    assert!(
        (a.freq - TONE_HZ).abs() < 3.0,
        "{what}: the tone arrives at {TONE_HZ} Hz: {a:?}"
    );
    assert!(a.snr_db > 25.0, "{what}: the tone arrives clean: {a:?}");
}

// ------------------------------------------------------------------ tests

/// A PCMU tone from Five9 reaches an agent that answered PCMA as the same
/// tone, and the agent's PCMA tone reaches Five9 as PCMU.
#[test]
fn tone_is_transcoded_both_ways() {
    let mut agent = Agent::new();
    let gw = gateway(&agent, "");
    let f9_rtp = RtpPeer::bind();
    let five9 = connect(&gw, &mut agent, f9_rtp.addr, AGENT_PCMA);
    let ok = five9.ok.as_ref().expect("200");
    assert_eq!(
        ok.audio_payloads().first().copied(),
        Some("0"),
        "Five9 is answered PCMU, its first choice: {ok:?}"
    );

    let _to_agent = f9_rtp.send_tone(five9.media_target(), PCMU, TONE_HZ);
    let _to_five9 = agent.rtp.send_tone(agent.media_target(), PCMA, TONE_HZ);
    agent.rtp.drain();
    f9_rtp.drain();
    let at_agent = agent.rtp.collect(Duration::from_millis(1000), None);
    let at_five9 = f9_rtp.collect(Duration::from_millis(1000), None);
    assert_tone("Five9 -> agent", &at_agent, PCMA);
    assert_tone("agent -> Five9", &at_five9, PCMU);
}

/// An offer with Opus only cannot be bridged to Five9's G.711 world: 488
/// with a Warning saying why.
#[test]
fn opus_only_offer_gets_488_with_warning() {
    let mut agent = Agent::new();
    let gw = gateway(&agent, "");
    agent.sip.gw = gw.sip;
    let mut five9 = Five9::new(&gw);
    let rtp = loopback();
    let mut offer = sdp(rtp, &[(111, "opus")], "sendrecv");
    offer = offer.replace("opus/8000", "opus/48000/2");
    let last = five9.invite(&offer);
    assert_eq!(last.status(), Some(488), "{last:?}");
    let warning = last.header("Warning").unwrap_or_default();
    assert!(
        warning.starts_with("305 ") && warning.contains('"'),
        "a Warning with text: {last:?}"
    );
    // No agent was called for it.
    assert!(
        agent.sip.recv(Duration::from_millis(300)).is_none(),
        "the agent is not called"
    );
}

/// Key presses 1, 2, # from Five9 (RFC 4733 on payload type 96, each with
/// three end packets) reach the agent on its own payload type 101, one
/// event each.
#[test]
fn dtmf_is_relayed_with_the_agents_payload_type_and_reaches_conclude() {
    let mut agent = Agent::new();
    // A short media timeout ends the call once the digits are sent; the
    // route-reason policy then puts them on Five9's BYE (`dtmf_header`).
    let gw = Gateway::start_with_media(
        "route-reason",
        &format!("{}\ndtmf_header = \"X-DTMF\"", agent.policy_toml()),
        "",
        "",
        "timeout_secs = 2",
    );
    let f9_rtp = RtpPeer::bind();
    let five9 = connect(&gw, &mut agent, f9_rtp.addr, AGENT_PCMA);
    let target = five9.media_target();
    let ok = five9.ok.as_ref().expect("200");
    assert!(
        ok.audio_payloads().contains(&"96"),
        "telephone-event answered on Five9's type: {ok:?}"
    );

    let presses = [1u8, 2, 11];
    let sender = f9_rtp.sock.try_clone().expect("clone");
    let sending = std::thread::spawn(move || {
        send_digits(
            &sender,
            target,
            FIVE9_EVENT_PT,
            &presses,
            Duration::from_millis(100),
        )
    });
    let got = agent.rtp.collect(Duration::from_millis(3000), None);
    sending.join().expect("sent");

    assert!(!got.is_empty(), "events reach the agent");
    assert!(
        got.iter().all(|p| p.pt == AGENT_EVENT_PT),
        "on the agent's telephone-event type: {:?}",
        got.iter().map(|p| p.pt).collect::<Vec<_>>()
    );
    // One press = one RTP timestamp; its code is the first payload byte.
    let mut events: Vec<(u32, u8)> = got
        .iter()
        .filter(|p| p.payload.len() >= 4)
        .map(|p| (p.ts, p.payload[0]))
        .collect();
    events.dedup();
    let codes: Vec<u8> = events.iter().map(|(_, c)| *c).collect();
    assert_eq!(codes, presses, "each press relayed once, in order: {got:?}");
    let ends = got.iter().filter(|p| p.payload[1] & 0x80 != 0).count();
    assert_eq!(ends, 9, "the end packets are relayed with their E bit");

    // Detected once each (despite the three end packets) and handed to
    // `conclude`: the BYE that ends the silent call carries them.
    let bye = five9
        .sip
        .wait_for_msg("BYE after the silence", SOON, |m| m.method() == Some("BYE"));
    assert_eq!(bye.header("X-DTMF"), Some("12#"), "{bye:?}");
}

/// Five9 puts the call on hold (sendonly): the gateway answers recvonly and
/// agent audio stops reaching Five9, while Five9's still reaches the agent;
/// resuming brings the agent's audio back. The agent kept sending on hold
/// and the relay dropped it, yet Five9 sees our stream go on at the next
/// sequence number (no loss to count) with the marker bit, its timestamp
/// moved on by the time the hold lasted.
#[test]
fn hold_stops_audio_toward_five9_and_resume_restores_it() {
    let mut agent = Agent::new();
    let gw = gateway(&agent, "");
    let f9_rtp = RtpPeer::bind();
    let mut five9 = connect(&gw, &mut agent, f9_rtp.addr, AGENT_PCMA);
    let _to_agent = f9_rtp.send_tone(five9.media_target(), PCMU, TONE_HZ);
    let _to_five9 = agent.rtp.send_tone(agent.media_target(), PCMA, TONE_HZ);
    f9_rtp.drain();
    let before = f9_rtp.collect(Duration::from_millis(400), None);
    assert!(before.len() >= 10, "audio flows before the hold");

    let held = five9.reinvite(&five9_offer(f9_rtp.addr, "sendonly"));
    assert!(
        held.has_attribute("a=recvonly"),
        "hold answered recvonly: {held:?}"
    );
    // Packets already in flight when the relay took the hold may land.
    let in_flight = f9_rtp.collect(Duration::from_millis(200), Some(PCMU));
    let last_before = in_flight
        .last()
        .or(before.iter().rfind(|p| p.pt == PCMU))
        .cloned()
        .expect("agent audio before the hold");
    agent.rtp.drain();
    let on_hold = f9_rtp.collect(Duration::from_millis(600), None);
    let agent_hears = agent.rtp.collect(Duration::from_millis(400), None);
    assert!(
        on_hold.is_empty(),
        "no agent audio toward Five9 on hold: {} packets",
        on_hold.len()
    );
    assert!(
        agent_hears.len() >= 10,
        "the agent still hears the caller on hold: {} packets",
        agent_hears.len()
    );

    let resumed = five9.reinvite(&five9_offer(f9_rtp.addr, "sendrecv"));
    assert!(
        !resumed.has_attribute("a=recvonly") && !resumed.has_attribute("a=inactive"),
        "resume answered sendrecv: {resumed:?}"
    );
    // No drain: the first packet after the resume is the one to check.
    let after = f9_rtp.collect(Duration::from_millis(1000), None);
    assert_tone("agent -> Five9 after resume", &after, PCMU);
    let first = after
        .iter()
        .find(|p| p.pt == PCMU)
        .expect("agent audio after the resume");
    assert_eq!(
        first.seq,
        last_before.seq.wrapping_add(1),
        "Five9 would count {} packets lost over the hold",
        first.seq.wrapping_sub(last_before.seq).wrapping_sub(1)
    );
    assert!(first.marker, "the resume starts a talkspurt");
    assert_eq!(first.ssrc, last_before.ssrc);
    // At least the time between the two as received here (the last one
    // before the hold may have been read late from the socket), 8 ticks/ms.
    let gap_ms = first.at.duration_since(last_before.at).as_millis() as u32;
    let ticks = first.ts.wrapping_sub(last_before.ts);
    assert!(
        (8 * gap_ms.saturating_sub(100)..=8 * (gap_ms + 2000)).contains(&ticks),
        "timestamp moved {ticks} ticks over {gap_ms} ms"
    );
}

/// With a 1 s media timeout, a call stays up while both sides send, and
/// ends with a BYE to Five9 saying `media-timeout` once the caller stops.
#[test]
fn caller_silence_ends_the_call_with_media_timeout() {
    let mut agent = Agent::new();
    let gw = gateway(&agent, "timeout_secs = 1");
    let f9_rtp = RtpPeer::bind();
    let five9 = connect(&gw, &mut agent, f9_rtp.addr, AGENT_PCMA);
    let to_agent = f9_rtp.send_tone(five9.media_target(), PCMU, TONE_HZ);
    let _to_five9 = agent.rtp.send_tone(agent.media_target(), PCMA, TONE_HZ);

    // Twice the timeout with media flowing: no BYE.
    let early = five9.sip.recv(Duration::from_millis(2000));
    assert!(
        early.as_ref().is_none_or(|m| m.method() != Some("BYE")),
        "no BYE while media flows: {early:?}"
    );

    to_agent.stop();
    let stopped = Instant::now();
    let bye = five9
        .sip
        .wait_for_msg("BYE after the caller's silence", SOON, |m| {
            m.method() == Some("BYE")
        });
    assert!(
        stopped.elapsed() >= Duration::from_millis(800),
        "not before the timeout ({:?})",
        stopped.elapsed()
    );
    five9.sip.send(&reply_to(&bye, "200 OK", None, "", ""));
    assert_eq!(
        bye.header("X-RouteReason"),
        Some("media-timeout"),
        "the BYE says why: {bye:?}"
    );
    let agent_bye = agent
        .sip
        .wait_for_msg("BYE to the agent", SOON, |m| m.method() == Some("BYE"));
    agent
        .sip
        .send(&reply_to(&agent_bye, "200 OK", None, "", ""));
}

/// Five9 sends RTP from another port than its SDP says (a NAT): the relay
/// latches onto the real source and the agent's audio follows it there.
#[test]
fn agent_audio_follows_the_callers_actual_source() {
    let mut agent = Agent::new();
    let gw = gateway(&agent, "");
    let advertised = RtpPeer::bind();
    let actual = RtpPeer::bind();
    let five9 = connect(&gw, &mut agent, advertised.addr, AGENT_PCMA);
    let _from_actual = actual.send_tone(five9.media_target(), PCMU, TONE_HZ);
    let _to_five9 = agent.rtp.send_tone(agent.media_target(), PCMA, TONE_HZ);
    // Let the first packets latch, then listen.
    std::thread::sleep(Duration::from_millis(200));
    actual.drain();
    advertised.drain();
    let at_actual = actual.collect(Duration::from_millis(1000), None);
    let at_advertised = advertised.collect(Duration::from_millis(200), None);
    assert_tone("agent -> Five9's real port", &at_actual, PCMU);
    assert!(
        at_advertised.is_empty(),
        "nothing goes to the advertised port once latched: {} packets",
        at_advertised.len()
    );
    assert!(
        at_actual.iter().all(|p| p.from == five9.media_target()),
        "sent from the port our SDP answer gave (symmetric RTP)"
    );
}

/// With ports for one call only, a second caller gets 503 (with a Warning)
/// while the first call holds them; once it ends, the next caller connects.
#[test]
fn exhausted_port_pool_gives_503() {
    let mut agent = Agent::new();
    // One call = two legs = two RTP/RTCP pairs = four ports.
    let base = 40_000 + 4 * (std::process::id() % 2000) as u16;
    let media = format!("port_min = {base}\nport_max = {}", base + 3);
    let gw = gateway(&agent, &media);
    let f9_rtp = RtpPeer::bind();
    let mut first = connect(&gw, &mut agent, f9_rtp.addr, AGENT_PCMA);

    let mut second = Five9::new(&gw);
    let last = second.invite(&five9_offer(loopback(), "sendrecv"));
    assert_eq!(last.status(), Some(503), "{last:?}");
    assert!(
        last.header("Warning").is_some(),
        "the 503 says why: {last:?}"
    );

    first.bye();
    let bye = agent
        .sip
        .wait_for_msg("BYE to the agent", SOON, |m| m.method() == Some("BYE"));
    agent.sip.send(&reply_to(&bye, "200 OK", None, "", ""));
    // The relay hands its ports back as it stops, in the background.
    std::thread::sleep(Duration::from_millis(500));
    let third = connect(&gw, &mut agent, f9_rtp.addr, AGENT_PCMA);
    assert!(third.ok.is_some(), "the freed ports serve the next call");
}
