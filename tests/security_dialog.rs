//! Security: a call belongs to the peer that set it up. Someone who learns a
//! dialog's identifiers (they travel in clear over UDP) and sends from
//! another address gets `403`, and the call, its media and its dialog stay
//! exactly as they were; on a digest trunk even the real peer must present
//! credentials again to move the media elsewhere.
//!
//! Five9 and the agent are raw SIP/RTP peers written here, each on its own
//! 127.0.0.x; the attacker is on 127.0.0.66, outside the trunk's
//! allow-list (Five9's one address) and outside the range the other peers
//! are given.

mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use sha2::{Digest, Sha256};
use support::gateway::{Gateway, TEST_KEY};
use support::http;
use support::rtp::{PCMA, PCMU, Packet, RtpPeer, analyse};
use support::sip_text::{Msg, UdpPeer as SipPeer, reply_to};
use support::sipp::loopback;
use support::unique;

/// How long a message the gateway owes us may take (debug build, two
/// shared cores).
const SOON: Duration = Duration::from_secs(5);
/// The test tone (ITU-T O.133's 1004 Hz).
const TONE_HZ: f64 = 1004.0;
/// The attacker's address: not Five9's, not the agent's, not in the allow-list.
const ATTACKER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 66);
/// The digest trunk's user.
const USER: &str = "five9";
const PASSWORD: &str = "s3cret-dialog";
const REALM: &str = "trunkline";

fn branch() -> String {
    format!("z9hG4bK-{}", unique("b"))
}

fn bind_peer(ip: IpAddr, gw: SocketAddr) -> SipPeer {
    let sock = UdpSocket::bind((ip, 0)).expect("binding a SIP peer");
    let me = sock.local_addr().expect("bound");
    SipPeer { sock, me, gw }
}

/// A G.711 offer or answer for `rtp`, with telephone-event on 101.
fn sdp(rtp: SocketAddr, pt: u8) -> String {
    let ip = rtp.ip();
    let name = if pt == PCMU { "PCMU" } else { "PCMA" };
    format!(
        "v=0\r\no=peer 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {} RTP/AVP {pt} 101\r\na=rtpmap:{pt} {name}/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=sendrecv\r\n",
        rtp.port()
    )
}

fn hex_sha256(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// A parameter of a challenge header (`nonce`, `opaque`, `realm`).
fn param(challenge: &str, name: &str) -> Option<String> {
    let start = challenge.find(&format!("{name}=\""))? + name.len() + 2;
    Some(challenge[start..].split('"').next()?.to_owned())
}

/// `Authorization` for `method` on `uri` answering `challenge` (SHA-256,
/// qop=auth, RFC 7616).
fn authorization(challenge: &str, method: &str, uri: &str) -> String {
    let nonce = param(challenge, "nonce").expect("a nonce");
    let (nc, cnonce) = ("00000001", unique("cn"));
    let ha1 = hex_sha256(&format!("{USER}:{REALM}:{PASSWORD}"));
    let ha2 = hex_sha256(&format!("{method}:{uri}"));
    let response = hex_sha256(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"));
    let opaque = param(challenge, "opaque")
        .map(|o| format!(", opaque=\"{o}\""))
        .unwrap_or_default();
    format!(
        "Digest username=\"{USER}\", realm=\"{REALM}\", nonce=\"{nonce}\", uri=\"{uri}\", \
         response=\"{response}\", algorithm=SHA-256, qop=auth, nc={nc}, cnonce=\"{cnonce}\"{opaque}"
    )
}

// ------------------------------------------------------------------ peers

/// Five9's side of one call; `dialog` (the gateway's 200 OK) once up.
struct Five9 {
    sip: SipPeer,
    call_id: String,
    tag: String,
    cseq: u32,
    ok: Option<Msg>,
}

impl Five9 {
    fn new(sip: SipPeer) -> Five9 {
        Five9 {
            sip,
            call_id: unique("f9"),
            tag: unique("tag"),
            cseq: 0,
            ok: None,
        }
    }

    /// The INVITE (CSeq `self.cseq + 1`), with `auth` when given; the final
    /// response, ACKed (a non-2xx in its transaction, a 2xx end to end).
    fn invite(&mut self, body: &str, auth: Option<&str>) -> Msg {
        self.cseq += 1;
        let (me, gw, b, cseq) = (self.sip.me, self.sip.gw, branch(), self.cseq);
        let auth = auth
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        self.sip.send(&format!(
            "INVITE sip:+14155550100@{gw} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {me};branch={b};rport\r\nMax-Forwards: 70\r\n\
             From: \"Five9\" <sip:+14155550123@five9.example.com>;tag={tag}\r\n\
             To: <sip:+14155550100@{gw}>\r\nCall-ID: {cid}\r\nCSeq: {cseq} INVITE\r\n\
             Contact: <sip:five9@{me}>\r\n{auth}Content-Type: application/sdp\r\n\
             Content-Length: {len}\r\n\r\n{body}",
            tag = self.tag,
            cid = self.call_id,
            len = body.len(),
        ));
        let cid = self.call_id.clone();
        let last = self
            .sip
            .wait_for_msg("final answer to the INVITE", SOON * 2, |m| {
                m.header("Call-ID") == Some(cid.as_str()) && m.status().is_some_and(|s| s >= 200)
            });
        if last.status() == Some(200) {
            self.ok = Some(last.clone());
            self.sip.send(&self.in_dialog("ACK", cseq, "", None));
        } else {
            self.sip.send(&format!(
                "ACK sip:+14155550100@{gw} SIP/2.0\r\n\
                 Via: SIP/2.0/UDP {me};branch={b};rport\r\nMax-Forwards: 70\r\n\
                 From: {from}\r\nTo: {to}\r\nCall-ID: {cid}\r\nCSeq: {cseq} ACK\r\n\
                 Content-Length: 0\r\n\r\n",
                from = last.header("From").unwrap_or_default(),
                to = last.header("To").unwrap_or_default(),
                cid = self.call_id,
            ));
        }
        last
    }

    /// The Request-URI of in-dialog requests: the gateway's Contact.
    fn target(&self) -> String {
        let ok = self.ok.as_ref().expect("an established call");
        ok.contact_uri().expect("Contact in the 200 OK").to_owned()
    }

    /// `method` in the dialog with CSeq `cseq`, as sent from `me`.
    fn in_dialog_from(
        &self,
        me: SocketAddr,
        method: &str,
        cseq: u32,
        body: &str,
        auth: Option<&str>,
    ) -> String {
        let ok = self.ok.as_ref().expect("an established call");
        let ctype = if body.is_empty() {
            ""
        } else {
            "Content-Type: application/sdp\r\n"
        };
        let auth = auth
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        let cseq_method = if method == "ACK" { "ACK" } else { method };
        format!(
            "{method} {target} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch={b};rport\r\n\
             Max-Forwards: 70\r\nFrom: {from}\r\nTo: {to}\r\nCall-ID: {cid}\r\n\
             CSeq: {cseq} {cseq_method}\r\nContact: <sip:five9@{me}>\r\n{auth}{ctype}\
             Content-Length: {len}\r\n\r\n{body}",
            target = self.target(),
            b = branch(),
            from = ok.header("From").expect("From"),
            to = ok.header("To").expect("To"),
            cid = self.call_id,
            len = body.len(),
        )
    }

    fn in_dialog(&self, method: &str, cseq: u32, body: &str, auth: Option<&str>) -> String {
        self.in_dialog_from(self.sip.me, method, cseq, body, auth)
    }

    /// Sends `method` (next CSeq) and returns the final answer. An INVITE's
    /// is ACKed: a 2xx end to end (new branch), a non-2xx in its
    /// transaction (the INVITE's branch).
    fn request(&mut self, method: &str, body: &str, auth: Option<&str>) -> Msg {
        self.cseq += 1;
        let cseq = self.cseq;
        let request = self.in_dialog(method, cseq, body, auth);
        self.sip.send(&request);
        let want = format!("{cseq} {method}");
        let answer = self.sip.wait_for_msg("answer to our request", SOON, |m| {
            m.header("CSeq") == Some(want.as_str()) && m.status().is_some_and(|s| s >= 200)
        });
        if method == "INVITE" {
            let ack = self.in_dialog("ACK", cseq, "", None);
            let ack = if answer.status() == Some(200) {
                ack
            } else {
                let via = |text: &str| {
                    let m = Msg(text.to_owned());
                    m.header("Via").expect("a Via").to_owned()
                };
                ack.replace(&via(&ack), &via(&request))
            };
            self.sip.send(&ack);
        }
        answer
    }

    fn media_target(&self) -> SocketAddr {
        self.ok.as_ref().expect("an established call").rtp_target()
    }
}

/// The agent: answers the gateway's INVITE with PCMA.
struct Agent {
    sip: SipPeer,
    rtp: RtpPeer,
    invite: Option<Msg>,
}

impl Agent {
    fn new() -> Agent {
        let me = loopback();
        Agent {
            sip: bind_peer(me.ip(), "0.0.0.0:0".parse().expect("placeholder")),
            rtp: RtpPeer::bind(),
            invite: None,
        }
    }

    fn answer(&mut self, gw: SocketAddr) {
        self.sip.gw = gw;
        let inv = self
            .sip
            .wait_for_msg("the gateway's INVITE", SOON * 2, |m| {
                m.method() == Some("INVITE")
            });
        let extra = format!(
            "Contact: <sip:agent@{}>\r\nContent-Type: application/sdp\r\n",
            self.sip.me
        );
        let body = sdp(self.rtp.addr, PCMA);
        self.sip
            .send(&reply_to(&inv, "200 OK", Some("agent"), &extra, &body));
        self.sip.wait_for_msg("ACK of the agent's 200", SOON, |m| {
            m.method() == Some("ACK")
        });
        self.invite = Some(inv);
    }

    fn media_target(&self) -> SocketAddr {
        self.invite.as_ref().expect("answered").rtp_target()
    }

    /// A BYE in the agent's dialog (CSeq 1), as sent from `me`.
    fn bye_from(&self, me: SocketAddr) -> String {
        let inv = self.invite.as_ref().expect("answered");
        format!(
            "BYE {target} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch={b};rport\r\n\
             Max-Forwards: 70\r\nFrom: {from};tag=agent\r\nTo: {to}\r\nCall-ID: {cid}\r\n\
             CSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n",
            target = inv.contact_uri().expect("the gateway's Contact"),
            b = branch(),
            from = inv.header("To").expect("To"),
            to = inv.header("From").expect("From"),
            cid = inv.header("Call-ID").expect("Call-ID"),
        )
    }
}

/// The policy config routing to `agent`.
fn policy_toml(agent: &Agent) -> String {
    format!("default_agent = \"sip:agent@{}\"", agent.sip.me)
}

/// Sets the call up: Five9 offers `f9_rtp` (authenticating after a 401
/// when the trunk asks), the agent answers.
fn connect(gw: &Gateway, five9: &mut Five9, agent: &mut Agent, f9_rtp: SocketAddr) {
    let offer = sdp(f9_rtp, PCMU);
    std::thread::scope(|s| {
        let answering = s.spawn(|| agent.answer(gw.sip));
        let mut last = five9.invite(&offer, None);
        if let Some(401) = last.status() {
            let challenge = last.header("WWW-Authenticate").expect("a challenge");
            let uri = format!("sip:+14155550100@{}", gw.sip);
            let auth = authorization(challenge, "INVITE", &uri);
            last = five9.invite(&offer, Some(&auth));
        }
        assert_eq!(last.status(), Some(200), "call connected: {last:?}");
        answering.join().expect("the agent answered");
    });
}

/// The call as `GET /v1/calls` shows it, if listed.
fn listed_call(gw: &Gateway, sip_call_id: &str) -> Option<serde_json::Value> {
    let r = http::get(gw.http, "/v1/calls", Some(TEST_KEY));
    assert_eq!(r.status, 200, "{r}");
    r.json["calls"]
        .as_array()?
        .iter()
        .find(|c| c["sip_call_id"] == sip_call_id)
        .cloned()
}

/// Asserts `packets` carry the test tone as `pt`.
fn assert_tone(what: &str, packets: &[Packet], pt: u8) {
    assert!(
        packets.len() >= 25,
        "{what}: too few packets arrived ({})",
        packets.len()
    );
    assert!(
        packets.iter().all(|p| p.pt == pt),
        "{what}: every packet is payload type {pt}"
    );
    let a = analyse(packets).unwrap_or_else(|| panic!("{what}: no analysable run of audio"));
    assert!(
        (a.freq - TONE_HZ).abs() < 3.0 && a.snr_db > 25.0,
        "{what}: the tone arrives clean at {TONE_HZ} Hz: {a:?}"
    );
}

/// Listens on both media ends (and the attacker's, when given) at once for
/// `d`: (at Five9, at the agent, at the attacker).
fn listen(
    five9: &RtpPeer,
    agent: &RtpPeer,
    attacker: Option<&RtpPeer>,
    d: Duration,
) -> (Vec<Packet>, Vec<Packet>, Vec<Packet>) {
    std::thread::scope(|s| {
        let at_agent = s.spawn(|| agent.collect(d, None));
        let at_attacker = s.spawn(|| attacker.map(|a| a.collect(d, None)).unwrap_or_default());
        let at_five9 = five9.collect(d, None);
        (
            at_five9,
            at_agent.join().expect("agent listener"),
            at_attacker.join().expect("attacker listener"),
        )
    })
}

// ------------------------------------------------------------------ tests

/// On an allow-list trunk (Five9's one address), a re-INVITE that would
/// send the call's audio to the attacker and a BYE that would end the call,
/// both with the dialog's exact identifiers, get one `403` each from a
/// foreign address; the attacker receives no RTP, both sides keep hearing
/// each other, and Five9's own BYE later ends the call normally.
#[test]
fn foreign_reinvite_and_bye_get_403_and_change_nothing() {
    let mut agent = Agent::new();
    // Five9's address is needed for the trunk's allow-list before start.
    let f9_sip = bind_peer(loopback().ip(), "0.0.0.0:0".parse().expect("placeholder"));
    let allow = format!("allow = [\"{}/32\"]\n", f9_sip.me.ip());
    let gw = Gateway::start("route-reason", &policy_toml(&agent), &allow);
    let mut five9 = Five9::new(SipPeer {
        gw: gw.sip,
        ..f9_sip
    });
    let f9_rtp = RtpPeer::bind();
    connect(&gw, &mut five9, &mut agent, f9_rtp.addr);
    let _to_agent = f9_rtp.send_tone(five9.media_target(), PCMU, TONE_HZ);
    let _to_five9 = agent.rtp.send_tone(agent.media_target(), PCMA, TONE_HZ);
    let (before_f9, before_agent, _) =
        listen(&f9_rtp, &agent.rtp, None, Duration::from_millis(1000));
    assert_tone("agent -> Five9 before the attack", &before_f9, PCMU);
    assert_tone("Five9 -> agent before the attack", &before_agent, PCMA);

    let attacker = bind_peer(IpAddr::V4(ATTACKER), gw.sip);
    let attacker_rtp_sock = UdpSocket::bind((ATTACKER, 0)).expect("attacker RTP");
    let attacker_rtp = RtpPeer {
        addr: attacker_rtp_sock.local_addr().expect("bound"),
        sock: attacker_rtp_sock,
    };

    // The re-INVITE, with the next CSeq, moving the media to the attacker.
    let next = five9.cseq + 1;
    let hijack = sdp(attacker_rtp.addr, PCMU);
    attacker.send(&five9.in_dialog_from(attacker.me, "INVITE", next, &hijack, None));
    let want = format!("{next} INVITE");
    let refused = attacker.wait_for_msg("403 to the foreign re-INVITE", SOON, |m| {
        m.header("CSeq") == Some(want.as_str())
    });
    assert_eq!(refused.status(), Some(403), "{refused:?}");
    // Its ACK gets nothing either.
    attacker.send(&five9.in_dialog_from(attacker.me, "ACK", next, "", None));
    // 3 s: nothing more to the attacker (the 403 is not retransmitted), no
    // RTP to the attacker, and the tones still flow both ways.
    let (sip_after, (at_f9, at_agent, at_attacker)) = std::thread::scope(|s| {
        let sip = s.spawn(|| attacker.collect(Duration::from_secs(3)));
        let media = listen(
            &f9_rtp,
            &agent.rtp,
            Some(&attacker_rtp),
            Duration::from_secs(3),
        );
        (sip.join().expect("attacker SIP listener"), media)
    });
    assert!(
        sip_after.is_empty(),
        "one 403, not retransmitted, nothing for the ACK: {sip_after:?}"
    );
    assert!(
        at_attacker.is_empty(),
        "the attacker receives no RTP: {} packets",
        at_attacker.len()
    );
    assert_tone("agent -> Five9 after the re-INVITE", &at_f9, PCMU);
    assert_tone("Five9 -> agent after the re-INVITE", &at_agent, PCMA);

    // The BYE, with a CSeq far ahead: were it taken, Five9's next request
    // would be out of order.
    let far = five9.cseq + 1000;
    attacker.send(&five9.in_dialog_from(attacker.me, "BYE", far, "", None));
    let want = format!("{far} BYE");
    let refused = attacker.wait_for_msg("403 to the foreign BYE", SOON, |m| {
        m.header("CSeq") == Some(want.as_str())
    });
    assert_eq!(refused.status(), Some(403), "{refused:?}");
    let to_agent = agent.sip.collect(Duration::from_millis(500));
    assert!(
        to_agent.iter().all(|(_, m)| m.method() != Some("BYE")),
        "no BYE reaches the agent: {to_agent:?}"
    );
    // The agent's dialog is no softer: a BYE as if from the agent, 403.
    attacker.send(&agent.bye_from(attacker.me));
    let refused = attacker.wait_for_msg("403 to the agent-leg BYE", SOON, |m| {
        m.header("CSeq") == Some("1 BYE")
    });
    assert_eq!(refused.status(), Some(403), "{refused:?}");
    let to_five9 = five9.sip.collect(Duration::from_millis(500));
    assert!(
        to_five9.iter().all(|(_, m)| m.method() != Some("BYE")),
        "no BYE reaches Five9: {to_five9:?}"
    );
    let call = listed_call(&gw, &five9.call_id).expect("the call is still listed");
    assert_eq!(call["state"], "connected", "{call}");
    let (at_f9, at_agent, at_attacker) = listen(
        &f9_rtp,
        &agent.rtp,
        Some(&attacker_rtp),
        Duration::from_millis(1500),
    );
    assert_tone("agent -> Five9 after the BYE", &at_f9, PCMU);
    assert_tone("Five9 -> agent after the BYE", &at_agent, PCMA);
    assert!(at_attacker.is_empty(), "still no RTP to the attacker");
    assert!(
        gw.log().contains("in-dialog request from outside"),
        "the refusal is logged"
    );

    // Five9 hangs up: 200 (its CSeq is still in order), the agent gets its
    // BYE, and the call is gone.
    let ok = five9.request("BYE", "", None);
    assert_eq!(ok.status(), Some(200), "Five9's BYE: {ok:?}");
    let bye = agent
        .sip
        .wait_for_msg("BYE to the agent", SOON, |m| m.method() == Some("BYE"));
    agent.sip.send(&reply_to(&bye, "200 OK", None, "", ""));
    let gone =
        support::within_two_seconds(|| listed_call(&gw, &five9.call_id).is_none().then_some(()));
    assert!(gone.is_some(), "the call ended with Five9's BYE");
}

/// On a digest trunk: the real peer's re-INVITE moving the media gets a
/// fresh challenge in the trunk's realm and the media stays; resent with
/// credentials it is accepted and the audio follows. A re-INVITE keeping
/// the address is not challenged, and a foreign BYE still gets 403.
#[test]
fn digest_trunk_challenges_a_media_move_and_accepts_it_with_credentials() {
    let mut agent = Agent::new();
    let trunk = format!(
        "allow = []\n[trunk.auth]\nrealm = \"{REALM}\"\nalgorithms = [\"SHA-256\"]\n\
         users = {{ {USER} = \"{PASSWORD}\" }}\n"
    );
    let gw = Gateway::start("route-reason", &policy_toml(&agent), &trunk);
    let mut five9 = Five9::new(SipPeer::new(gw.sip));
    let f9_rtp = RtpPeer::bind();
    connect(&gw, &mut five9, &mut agent, f9_rtp.addr);
    let to_agent = f9_rtp.send_tone(five9.media_target(), PCMU, TONE_HZ);
    let _to_five9 = agent.rtp.send_tone(agent.media_target(), PCMA, TONE_HZ);

    // Same address (a refresh): answered 200 at once.
    let refresh = five9.request("INVITE", &sdp(f9_rtp.addr, PCMU), None);
    assert_eq!(refresh.status(), Some(200), "refresh: {refresh:?}");

    // A foreign BYE: 403, as on allow-list trunks.
    let attacker = bind_peer(IpAddr::V4(ATTACKER), gw.sip);
    let far = five9.cseq + 1000;
    attacker.send(&five9.in_dialog_from(attacker.me, "BYE", far, "", None));
    let refused = attacker.wait_for_msg("403 to the foreign BYE", SOON, |m| m.status().is_some());
    assert_eq!(refused.status(), Some(403), "{refused:?}");

    // Moving the media: challenged, once, in the trunk's realm.
    let moved = RtpPeer::bind();
    let offer = sdp(moved.addr, PCMU);
    let challenge = five9.request("INVITE", &offer, None);
    assert_eq!(challenge.status(), Some(401), "{challenge:?}");
    let www = challenge
        .header("WWW-Authenticate")
        .expect("a challenge")
        .to_owned();
    assert_eq!(param(&www, "realm").as_deref(), Some(REALM), "{www}");
    let (at_f9, _, at_moved) = listen(&f9_rtp, &agent.rtp, Some(&moved), Duration::from_secs(1));
    assert_tone(
        "agent -> Five9's old address while challenged",
        &at_f9,
        PCMU,
    );
    assert!(at_moved.is_empty(), "no RTP to the new address yet");
    // (1.6 s after it: a retransmission would have come at 0.5 and 1.5 s.)
    let again = five9.sip.collect(Duration::from_millis(600));
    assert!(
        again.iter().all(|(_, m)| m.status() != Some(401)),
        "the challenge is not retransmitted: {again:?}"
    );

    // With credentials: 200, and the audio moves. (The old address falls
    // silent first, as a caller that moved would.)
    to_agent.stop();
    let auth = authorization(&www, "INVITE", &five9.target());
    let accepted = five9.request("INVITE", &offer, Some(&auth));
    assert_eq!(accepted.status(), Some(200), "{accepted:?}");
    let _from_moved = moved.send_tone(five9.media_target(), PCMU, TONE_HZ);
    std::thread::sleep(Duration::from_millis(300));
    // What queued up before the move (the old tone) is not listened to.
    f9_rtp.drain();
    agent.rtp.drain();
    let (at_old, at_agent, at_new) = listen(
        &f9_rtp,
        &agent.rtp,
        Some(&moved),
        Duration::from_millis(1500),
    );
    assert_tone("agent -> Five9's new address", &at_new, PCMU);
    assert_tone("Five9's new address -> agent", &at_agent, PCMA);
    assert!(
        at_old.is_empty(),
        "nothing to the old address: {} packets",
        at_old.len()
    );

    let ok = five9.request("BYE", "", None);
    assert_eq!(ok.status(), Some(200), "Five9's BYE: {ok:?}");
    let bye = agent
        .sip
        .wait_for_msg("BYE to the agent", SOON, |m| m.method() == Some("BYE"));
    agent.sip.send(&reply_to(&bye, "200 OK", None, "", ""));
}

/// Five9 over one TCP connection, framing what it reads by Content-Length.
struct TcpFive9 {
    stream: std::net::TcpStream,
    buf: Vec<u8>,
}

impl TcpFive9 {
    fn send(&mut self, text: &str) {
        use std::io::Write;
        self.stream.write_all(text.as_bytes()).expect("writing");
    }

    /// The next message `want` accepts within `limit`; panics otherwise.
    fn wait_for(&mut self, what: &str, limit: Duration, want: impl Fn(&Msg) -> bool) -> Msg {
        use std::io::Read;
        let until = std::time::Instant::now() + limit;
        let mut chunk = [0; 8192];
        loop {
            while let Some(m) = self.frame() {
                if want(&m) {
                    return m;
                }
            }
            let left = until.saturating_duration_since(std::time::Instant::now());
            assert!(!left.is_zero(), "no {what} over TCP within {limit:?}");
            let step = left.min(Duration::from_millis(100));
            self.stream.set_read_timeout(Some(step)).expect("timeout");
            match self.stream.read(&mut chunk) {
                Ok(0) => panic!("the gateway closed the connection before {what}"),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(e) => panic!("reading from the gateway: {e}"),
            }
        }
    }

    fn frame(&mut self) -> Option<Msg> {
        let head_end = self.buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
        let head = Msg(String::from_utf8_lossy(&self.buf[..head_end]).into_owned());
        let length: usize = head
            .header("Content-Length")
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        if self.buf.len() < head_end + length {
            return None;
        }
        let whole: Vec<u8> = self.buf.drain(..head_end + length).collect();
        Some(Msg(String::from_utf8_lossy(&whole).into_owned()))
    }
}

/// A call set up over TCP takes its requests over TCP only: a BYE sent as
/// a datagram from Five9's own IP (what a blind attacker can forge) gets
/// 403 and the call stays; the BYE over TCP ends it. (A digest trunk, so
/// no allow-list vouches for the address.)
#[test]
fn tcp_dialog_refuses_a_datagram_from_the_peers_ip() {
    let mut agent = Agent::new();
    let trunk = format!(
        "allow = []\n[trunk.auth]\nrealm = \"{REALM}\"\nalgorithms = [\"SHA-256\"]\n\
         users = {{ {USER} = \"{PASSWORD}\" }}\n"
    );
    let gw = Gateway::start("route-reason", &policy_toml(&agent), &trunk);
    let stream =
        std::net::TcpStream::connect_timeout(&gw.sip, SOON).expect("TCP connect to the gateway");
    stream.set_nodelay(true).expect("nodelay");
    let me = stream.local_addr().expect("local address");
    let mut five9 = TcpFive9 {
        stream,
        buf: Vec::new(),
    };
    let (gw_sip, call_id, tag) = (gw.sip, unique("f9tcp"), unique("tag"));
    let uri = format!("sip:+14155550100@{gw_sip}");
    let body = sdp(RtpPeer::bind().addr, PCMU);
    let request =
        |method: &str, uri: &str, b: &str, cseq: u32, to: &str, extra: &str, body: &str| {
            format!(
                "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/TCP {me};branch={b}\r\nMax-Forwards: 70\r\n\
             From: <sip:+14155550123@five9.example.com>;tag={tag}\r\nTo: {to}\r\n\
             Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\n\
             Contact: <sip:five9@{me};transport=tcp>\r\n{extra}Content-Length: {len}\r\n\r\n{body}",
                len = body.len()
            )
        };
    let plain_to = format!("<{uri}>");
    let sdp_type = "Content-Type: application/sdp\r\n";
    let (to, target) = std::thread::scope(|s| {
        let answering = s.spawn(|| agent.answer(gw_sip));
        let b = branch();
        five9.send(&request("INVITE", &uri, &b, 1, &plain_to, sdp_type, &body));
        let challenge = five9.wait_for("401", SOON, |m| m.status().is_some_and(|s| s >= 200));
        assert_eq!(challenge.status(), Some(401), "{challenge:?}");
        let to = challenge.header("To").expect("To").to_owned();
        five9.send(&request("ACK", &uri, &b, 1, &to, "", ""));
        let www = challenge.header("WWW-Authenticate").expect("a challenge");
        let auth = format!(
            "Authorization: {}\r\n{sdp_type}",
            authorization(www, "INVITE", &uri)
        );
        five9.send(&request(
            "INVITE",
            &uri,
            &branch(),
            2,
            &plain_to,
            &auth,
            &body,
        ));
        let ok = five9.wait_for("200", SOON * 2, |m| m.status().is_some_and(|s| s >= 200));
        assert_eq!(ok.status(), Some(200), "{ok:?}");
        answering.join().expect("the agent answered");
        let (to, target) = (
            ok.header("To").expect("To"),
            ok.contact_uri().expect("Contact"),
        );
        five9.send(&request("ACK", target, &branch(), 2, to, "", ""));
        (to.to_owned(), target.to_owned())
    });
    let (to, target) = (to.as_str(), target.as_str());

    // The datagram, from Five9's IP (another port): 403, nothing else.
    let udp = bind_peer(me.ip(), gw_sip);
    let bye = request("BYE", target, &branch(), 3, to, "", "")
        .replace("SIP/2.0/TCP", "SIP/2.0/UDP")
        .replace(&me.to_string(), &udp.me.to_string());
    udp.send(&bye);
    let refused = udp.wait_for_msg("403 to the datagram BYE", SOON, |m| m.status().is_some());
    assert_eq!(refused.status(), Some(403), "{refused:?}");
    let at_agent = agent.sip.collect(Duration::from_millis(500));
    assert!(
        at_agent.iter().all(|(_, m)| m.method() != Some("BYE")),
        "the call stays: {at_agent:?}"
    );
    assert!(listed_call(&gw, &call_id).is_some(), "still listed");

    // The same BYE over the connection: 200, and the agent's BYE.
    five9.send(&request("BYE", target, &branch(), 3, to, "", ""));
    let ok = five9.wait_for("200 to the BYE", SOON, |m| {
        m.header("CSeq") == Some("3 BYE") && m.status().is_some()
    });
    assert_eq!(ok.status(), Some(200), "{ok:?}");
    let bye = agent
        .sip
        .wait_for_msg("BYE to the agent", SOON, |m| m.method() == Some("BYE"));
    agent.sip.send(&reply_to(&bye, "200 OK", None, "", ""));
}
