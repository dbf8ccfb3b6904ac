//! Early media through the real gateway: a SIP agent that answers with
//! `183 Session Progress` and SDP, plays a tone, then answers. Five9 and
//! the agent are raw UDP peers written here. What the caller must notice:
//! one 183 with our SDP before the 200, the agent's tone before the
//! answer, the same SDP in the 200, audio both ways after it; and a CANCEL
//! or an agent's 486 during early media ends the call and its audio.

mod support;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use support::gateway::Gateway;
use support::rtp::{PCMU, Packet, RtpPeer, analyse};
use support::sip_text::{Msg, UdpPeer as SipPeer};
use support::sipp::loopback;
use support::unique;

/// How long a message the gateway owes us may take (debug build, shared
/// cores).
const SOON: Duration = Duration::from_secs(5);
/// ITU-T O.133's 1004 Hz test tone.
const TONE_HZ: f64 = 1004.0;

fn branch() -> String {
    format!("z9hG4bK-{}", unique("b"))
}

/// Our response to `req`, tagged `tag`, with `extra` header lines and `body`.
fn reply_to(req: &Msg, status: &str, tag: &str, extra: &str, body: &str) -> String {
    let mut text = format!("SIP/2.0 {status}\r\n");
    for via in req.headers("Via") {
        text += &format!("Via: {via}\r\n");
    }
    let to = req.header("To").unwrap_or_default();
    let to = if to.contains(";tag=") {
        to.to_owned()
    } else {
        format!("{to};tag={tag}")
    };
    text += &format!("To: {to}\r\n");
    for name in ["From", "Call-ID", "CSeq"] {
        text += &format!("{name}: {}\r\n", req.header(name).unwrap_or_default());
    }
    text + extra + &format!("Content-Length: {}\r\n\r\n{body}", body.len())
}

/// PCMU and telephone-event at `rtp`, session version `version`.
fn sdp(rtp: SocketAddr, version: u32) -> String {
    let ip = rtp.ip();
    format!(
        "v=0\r\no=peer 7 {version} IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=sendrecv\r\n",
        rtp.port()
    )
}

/// The `o=` line of an SDP body.
fn origin(m: &Msg) -> String {
    m.body()
        .lines()
        .find(|l| l.starts_with("o="))
        .unwrap_or_else(|| panic!("no o= line in {m:?}"))
        .to_owned()
}

/// Five9: one INVITE, answered by hand.
struct Five9 {
    sip: SipPeer,
    rtp: RtpPeer,
    call_id: String,
    branch: String,
    tag: String,
}

impl Five9 {
    fn new(gw: &Gateway) -> Five9 {
        Five9 {
            sip: SipPeer::new(gw.sip),
            rtp: RtpPeer::bind(),
            call_id: unique("f9"),
            branch: branch(),
            tag: unique("tag"),
        }
    }

    /// Head lines shared by the INVITE, its CANCEL and a non-2xx ACK.
    fn head(&self, method: &str, to: &str) -> String {
        let (me, gw) = (self.sip.me, self.sip.gw);
        format!(
            "{method} sip:+14155550100@{gw} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {me};branch={b};rport\r\n\
             Max-Forwards: 70\r\n\
             From: \"Five9\" <sip:+14155550123@five9.example.com>;tag={tag}\r\n\
             To: {to}\r\n\
             Call-ID: {cid}\r\n\
             CSeq: 1 {method}\r\n",
            b = self.branch,
            tag = self.tag,
            cid = self.call_id,
        )
    }

    fn invite(&self) {
        let body = sdp(self.rtp.addr, 1);
        let to = format!("<sip:+14155550100@{}>", self.sip.gw);
        self.sip.send(&format!(
            "{}Contact: <sip:five9@{}>\r\nContent-Type: application/sdp\r\n\
             Content-Length: {}\r\n\r\n{body}",
            self.head("INVITE", &to),
            self.sip.me,
            body.len()
        ));
    }

    fn cancel(&self) {
        let to = format!("<sip:+14155550100@{}>", self.sip.gw);
        self.sip.send(&format!(
            "{}Content-Length: 0\r\n\r\n",
            self.head("CANCEL", &to)
        ));
    }

    /// The ACK for a final response `r` to the INVITE.
    fn ack(&self, r: &Msg) {
        let to = r.header("To").unwrap_or_default();
        if r.status() == Some(200) {
            let target = r.contact_uri().expect("Contact in the 200");
            self.sip.send(&format!(
                "ACK {target} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch={b};rport\r\n\
                 Max-Forwards: 70\r\nFrom: {from}\r\nTo: {to}\r\nCall-ID: {cid}\r\n\
                 CSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
                me = self.sip.me,
                b = branch(),
                from = r.header("From").unwrap_or_default(),
                cid = self.call_id,
            ));
        } else {
            let head = self.head("ACK", to);
            self.sip.send(&format!("{head}Content-Length: 0\r\n\r\n"));
        }
    }

    /// The next response to the INVITE with status `status`, and the
    /// responses before it.
    fn response(&self, status: u16) -> (Msg, Vec<Msg>) {
        self.sip
            .wait_for(&format!("{status} to the INVITE"), SOON * 2, |m| {
                m.status() == Some(status) && m.cseq_method() == Some("INVITE")
            })
    }
}

/// The SIP agent: a UAS driven step by step.
struct Agent {
    sip: SipPeer,
    rtp: RtpPeer,
}

impl Agent {
    fn new() -> Agent {
        // The gateway's address is learnt from its INVITE.
        let me = loopback();
        let sock = UdpSocket::bind(me).expect("binding the agent");
        let gw = "0.0.0.0:0".parse().expect("placeholder");
        Agent {
            sip: SipPeer { sock, me, gw },
            rtp: RtpPeer::bind(),
        }
    }

    fn gateway(&self) -> Gateway {
        let toml = format!("default_agent = \"sip:agent@{}\"", self.sip.me);
        Gateway::start_with_media("route-reason", &toml, "", "", "")
    }

    fn invite(&mut self, gw: &Gateway) -> Msg {
        self.sip.gw = gw.sip;
        let inv = self
            .sip
            .wait_for_msg("the gateway's INVITE", SOON * 2, |m| {
                m.method() == Some("INVITE")
            });
        let supported = inv.headers("Supported").join(",") + &inv.headers("Require").join(",");
        assert!(
            !supported.contains("100rel"),
            "reliable provisionals are not offered: {inv:?}"
        );
        inv
    }

    fn respond(&self, inv: &Msg, status: &str, body: &str) {
        let mut extra = format!("Contact: <sip:agent@{}>\r\n", self.sip.me);
        if !body.is_empty() {
            extra += "Content-Type: application/sdp\r\n";
        }
        self.sip.send(&reply_to(inv, status, "agent", &extra, body));
    }
}

/// Asserts `packets` carry the test tone.
fn assert_tone(what: &str, packets: &[Packet]) {
    assert!(
        packets.len() >= 25,
        "{what}: too few packets arrived ({})",
        packets.len()
    );
    let a = analyse(packets).unwrap_or_else(|| panic!("{what}: no analysable run of audio"));
    assert!(
        (a.freq - TONE_HZ).abs() < 3.0 && a.snr_db > 25.0,
        "{what}: the {TONE_HZ} Hz tone arrives clean: {a:?}"
    );
}

/// Five9 and the agent at the point the caller has our 183: the agent's
/// INVITE, the 183, and what Five9 got before it.
fn early(gw: &Gateway, five9: &Five9, agent: &mut Agent) -> (Msg, Msg, Vec<Msg>) {
    five9.invite();
    let inv = agent.invite(gw);
    agent.respond(&inv, "180 Ringing", "");
    agent.respond(&inv, "183 Session Progress", &sdp(agent.rtp.addr, 1));
    let (p183, before) = five9.response(183);
    assert!(
        p183.header("Content-Type") == Some("application/sdp") && !p183.body().is_empty(),
        "the caller's 183 carries our SDP answer: {p183:?}"
    );
    assert!(
        p183.header("Require").is_none() && p183.header("RSeq").is_none(),
        "an unreliable 183: {p183:?}"
    );
    (inv, p183, before)
}

/// The agent's 183 with SDP reaches Five9 as one 183 with our answer; the
/// agent's tone reaches Five9 before the 200, which carries the same SDP;
/// after it audio flows both ways.
#[test]
fn agents_183_gives_the_caller_early_media_then_the_same_sdp_in_the_200() {
    let mut agent = Agent::new();
    let gw = agent.gateway();
    let five9 = Five9::new(&gw);
    let (inv, p183, before) = early(&gw, &five9, &mut agent);
    let statuses: Vec<_> = before.iter().filter_map(|m| m.status()).collect();
    assert!(
        statuses.iter().all(|s| [100, 180].contains(s)),
        "only 100 and 180 before the 183: {statuses:?}"
    );
    assert!(
        p183.rtp_target().ip() != "0.0.0.0".parse::<std::net::IpAddr>().unwrap(),
        "a usable address in the 183: {p183:?}"
    );

    // The agent's second 183 (same SDP) is not forwarded again.
    agent.respond(&inv, "183 Session Progress", &sdp(agent.rtp.addr, 1));
    let ringing = agent.rtp.send_tone(inv.rtp_target(), PCMU, TONE_HZ);
    let heard = five9.rtp.collect(Duration::from_millis(1000), None);
    assert_tone("agent -> Five9 before the answer", &heard);
    let extra: Vec<_> = five9.sip.collect(Duration::from_millis(200));
    assert!(
        extra
            .iter()
            .all(|(_, m)| m.status() != Some(183) && m.status() != Some(200)),
        "one 183 only, no 200 yet: {extra:#?}"
    );

    agent.respond(&inv, "200 OK", &sdp(agent.rtp.addr, 1));
    agent.sip.wait_for_msg("ACK of the agent's 200", SOON, |m| {
        m.method() == Some("ACK")
    });
    let (ok, _) = five9.response(200);
    five9.ack(&ok);
    assert_eq!(
        origin(&ok),
        origin(&p183),
        "the 200 repeats the 183's SDP version"
    );
    assert_eq!(ok.body(), p183.body(), "the 200 repeats the 183's SDP");

    let talking = five9.rtp.send_tone(ok.rtp_target(), PCMU, TONE_HZ);
    five9.rtp.drain();
    agent.rtp.drain();
    assert_tone(
        "agent -> Five9 after the answer",
        &five9.rtp.collect(Duration::from_millis(800), None),
    );
    assert_tone(
        "Five9 -> agent after the answer",
        &agent.rtp.collect(Duration::from_millis(800), None),
    );
    drop((ringing, talking));
}

/// The agent's 200 moves its media (another port, a new SDP version): the
/// relay follows it, and the caller's SDP, which does not depend on it,
/// keeps its version.
#[test]
fn a_200_with_other_sdp_than_the_183_moves_the_agent_leg() {
    let mut agent = Agent::new();
    let gw = agent.gateway();
    let five9 = Five9::new(&gw);
    let (inv, p183, _) = early(&gw, &five9, &mut agent);
    // The relay latches the agent leg to the 183's port first.
    let ringing = agent.rtp.send_tone(inv.rtp_target(), PCMU, TONE_HZ);
    let _to_agent = five9.rtp.send_tone(p183.rtp_target(), PCMU, TONE_HZ);
    assert_tone(
        "Five9 -> the agent's 183 port",
        &agent.rtp.collect(Duration::from_millis(600), None),
    );
    ringing.stop();

    let moved = RtpPeer::bind();
    agent.respond(&inv, "200 OK", &sdp(moved.addr, 2));
    let (ok, _) = five9.response(200);
    five9.ack(&ok);
    assert_eq!(origin(&ok), origin(&p183), "our answer is unchanged");

    // Before the new port sends anything, only the 200's SDP can send
    // Five9's audio there.
    moved.drain();
    assert_tone(
        "Five9 -> the agent's new port",
        &moved.collect(Duration::from_millis(800), None),
    );
    let _to_five9 = moved.send_tone(inv.rtp_target(), PCMU, TONE_HZ);
    five9.rtp.drain();
    assert_tone(
        "the agent's new port -> Five9",
        &five9.rtp.collect(Duration::from_millis(800), None),
    );
}

/// Five9 hangs up during early media: 200 to the CANCEL, 487 to the
/// INVITE, the agent gets a CANCEL, and the agent's audio stops.
#[test]
fn cancel_during_early_media_gives_487_and_cancels_the_agent() {
    let mut agent = Agent::new();
    let gw = agent.gateway();
    let five9 = Five9::new(&gw);
    let (inv, _, _) = early(&gw, &five9, &mut agent);
    let _ringing = agent.rtp.send_tone(inv.rtp_target(), PCMU, TONE_HZ);
    assert_tone(
        "agent -> Five9 before the CANCEL",
        &five9.rtp.collect(Duration::from_millis(600), None),
    );

    five9.cancel();
    let cancel = agent.sip.wait_for_msg("the gateway's CANCEL", SOON, |m| {
        m.method() == Some("CANCEL")
    });
    agent.respond(&cancel, "200 OK", "");
    agent.respond(&inv, "487 Request Terminated", "");
    let (done, _) = five9.response(487);
    five9.ack(&done);
    agent.sip.wait_for_msg("ACK of the agent's 487", SOON, |m| {
        m.method() == Some("ACK")
    });

    five9.rtp.drain();
    let after = five9.rtp.collect(Duration::from_millis(500), None);
    assert!(
        after.is_empty(),
        "no agent audio after the call ended: {} packets",
        after.len()
    );
}

/// The agent rejects after its 183 (busy): Five9 gets the final failure
/// as without early media, and the audio stops.
#[test]
fn agent_busy_after_183_gives_the_caller_486_and_stops_media() {
    let mut agent = Agent::new();
    let gw = agent.gateway();
    let five9 = Five9::new(&gw);
    let (inv, _, _) = early(&gw, &five9, &mut agent);
    let _ringing = agent.rtp.send_tone(inv.rtp_target(), PCMU, TONE_HZ);
    assert_tone(
        "agent -> Five9 before the rejection",
        &five9.rtp.collect(Duration::from_millis(600), None),
    );
    agent.respond(&inv, "486 Busy Here", "");
    let (done, _) = five9.response(486);
    five9.ack(&done);
    five9.rtp.drain();
    let after = five9.rtp.collect(Duration::from_millis(500), None);
    assert!(
        after.is_empty(),
        "no agent audio after the rejection: {} packets",
        after.len()
    );
}

/// An 18x without SDP still gives the caller exactly one 180 and no SDP.
#[test]
fn a_183_without_sdp_is_one_180() {
    let mut agent = Agent::new();
    let gw = agent.gateway();
    let five9 = Five9::new(&gw);
    five9.invite();
    let inv = agent.invite(&gw);
    agent.respond(&inv, "183 Session Progress", "");
    agent.respond(&inv, "180 Ringing", "");
    let (ringing, _) = five9.response(180);
    assert!(ringing.body().is_empty(), "no SDP in the 180: {ringing:?}");
    let extra = five9.sip.collect(Duration::from_millis(300));
    assert!(
        extra
            .iter()
            .all(|(_, m)| m.status().is_none_or(|s| s == 100)),
        "one provisional only: {extra:#?}"
    );
    agent.respond(&inv, "200 OK", &sdp(agent.rtp.addr, 1));
    let (ok, _) = five9.response(200);
    five9.ack(&ok);
    assert!(!ok.body().is_empty(), "the answer is in the 200: {ok:?}");
}
