//! The gateway as a peer sees it on the wire: hand-written SIP text over real
//! UDP and TCP sockets. Unusual but valid INVITEs must be routed to the agent
//! (a SIPp UAS); malformed input must get the answer RFC 3261 owes it, or
//! none, and never cost the next caller; TCP framing must hold across
//! pipelining and split writes; over UDP our 2xx must survive a lost first
//! copy and a retransmitted INVITE must not become a second call.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use support::gateway::Gateway;
use support::sip_text::{Msg, UdpPeer};
use support::sipp::{Sipp, loopback};
use support::unique;

/// How long a message the gateway owes us may take (debug build, two cores
/// shared with the other tests).
const SOON: Duration = Duration::from_secs(5);
/// How long "no reply" is watched for.
const QUIET: Duration = Duration::from_millis(500);

fn route_reason_gateway(agent: SocketAddr) -> Gateway {
    Gateway::start(
        "route-reason",
        &format!("default_agent = \"sip:agent@{agent}\""),
        "",
    )
}

fn branch() -> String {
    format!("z9hG4bK-{}", unique("b"))
}

// ---------------------------------------------------------------- messages

/// Our response to a request of the gateway's (its BYE): Via, From, To,
/// Call-ID and CSeq copied.
fn reply_to(req: &Msg, status: &str) -> String {
    let mut text = format!("SIP/2.0 {status}\r\n");
    for via in req.headers("Via") {
        text += &format!("Via: {via}\r\n");
    }
    for name in ["From", "To", "Call-ID", "CSeq"] {
        text += &format!("{name}: {}\r\n", req.header(name).unwrap_or_default());
    }
    text + "Content-Length: 0\r\n\r\n"
}

/// An SDP offer from `me`: the payload types given, then telephone-event.
fn sdp(me: SocketAddr, payloads: &[u8]) -> String {
    let ip = me.ip();
    let list: Vec<String> = payloads.iter().map(u8::to_string).collect();
    let mut text = format!(
        "v=0\r\no=caller 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio 30000 RTP/AVP {} 101\r\n",
        list.join(" ")
    );
    for pt in payloads {
        let name = if *pt == 8 { "PCMA" } else { "PCMU" };
        text += &format!("a=rtpmap:{pt} {name}/8000\r\n");
    }
    text + "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n"
}

/// What one call's messages share.
struct Ctx {
    me: SocketAddr,
    gw: SocketAddr,
    call_id: String,
    tag: String,
    branch: String,
}

impl Ctx {
    fn new(me: SocketAddr, gw: SocketAddr) -> Ctx {
        Ctx {
            me,
            gw,
            call_id: unique("call"),
            tag: unique("tag"),
            branch: branch(),
        }
    }
}

/// A plain INVITE as Five9 sends it, offering `body`.
fn invite(c: &Ctx, body: &str) -> String {
    format!(
        "INVITE sip:+14155550100@{gw} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {me};branch={branch};rport\r\n\
         Max-Forwards: 70\r\n\
         From: \"Five9\" <sip:+14155550123@five9.example.com>;tag={tag}\r\n\
         To: <sip:+14155550100@{gw}>\r\n\
         Call-ID: {cid}\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:five9@{me}>\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {len}\r\n\r\n{body}",
        gw = c.gw,
        me = c.me,
        branch = c.branch,
        tag = c.tag,
        cid = c.call_id,
        len = body.len(),
    )
}

/// An out-of-dialog request `method` with no body.
fn request(method: &str, transport: &str, me: SocketAddr, gw: SocketAddr, cid: &str) -> String {
    format!(
        "{method} sip:trunkline@{gw} SIP/2.0\r\n\
         Via: SIP/2.0/{transport} {me};branch={b};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:ping@{me}>;tag={tag}\r\n\
         To: <sip:trunkline@{gw}>\r\n\
         Call-ID: {cid}\r\n\
         CSeq: 1 {method}\r\n\
         Content-Length: 0\r\n\r\n",
        b = branch(),
        tag = unique("tag"),
    )
}

/// The ACK (or in-dialog BYE) for the dialog `ok` established.
fn in_dialog(method: &str, cseq: u32, c: &Ctx, ok: &Msg) -> String {
    format!(
        "{method} {target} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {me};branch={b};rport\r\n\
         Max-Forwards: 70\r\n\
         From: {from}\r\n\
         To: {to}\r\n\
         Call-ID: {cid}\r\n\
         CSeq: {cseq} {method}\r\n\
         Content-Length: 0\r\n\r\n",
        target = ok.contact_uri().expect("Contact in the 200 OK"),
        me = c.me,
        b = branch(),
        from = ok.header("From").expect("From"),
        to = ok.header("To").expect("To"),
        cid = c.call_id,
    )
}

// ------------------------------------------------------------- UDP peer

/// An OPTIONS ping from a fresh peer gets its 200: the gateway survived
/// whatever came before.
fn assert_still_serves(gw: &Gateway, after: &str) {
    let peer = UdpPeer::new(gw.sip);
    let cid = unique("ping");
    peer.send(&request("OPTIONS", "UDP", peer.me, gw.sip, &cid));
    let (ok, _) = peer.wait_for(&format!("200 to OPTIONS after {after}"), SOON, |m| {
        m.header("Call-ID") == Some(cid.as_str())
    });
    assert_eq!(ok.status(), Some(200), "after {after}: {ok:?}");
}

// ---------------------------------------------------- 1. valid odd forms

/// One unusual but valid way of writing an INVITE.
struct Form {
    name: &'static str,
    /// Payload types offered (the answer must start with the first).
    offer: &'static [u8],
    text: fn(&Ctx, &str) -> String,
    /// Our Contact cannot be reached (IPv6 while the gateway is on IPv4), so
    /// we end the call; otherwise the agent does and its BYE reaches us.
    caller_hangs_up: bool,
    /// Further checks on the 200 OK.
    check: fn(&Ctx, &Msg),
}

const IPV6_VIA: &str =
    "SIP/2.0/UDP [2001:db8::5]:5060;branch=z9hG4bK-upstream-1;received=2001:db8::5";

fn no_check(_: &Ctx, _: &Msg) {}

fn forms() -> Vec<Form> {
    vec![
        Form {
            name: "compact header names",
            offer: &[0, 8],
            text: |c, body| {
                format!(
                    "INVITE sip:+14155550100@{gw} SIP/2.0\r\n\
                     v: SIP/2.0/UDP {me};branch={b};rport\r\n\
                     Max-Forwards: 70\r\n\
                     f: <sip:+14155550123@five9.example.com>;tag={tag}\r\n\
                     t: <sip:+14155550100@{gw}>\r\n\
                     i: {cid}\r\n\
                     CSeq: 1 INVITE\r\n\
                     m: <sip:five9@{me}>\r\n\
                     c: application/sdp\r\n\
                     l: {len}\r\n\r\n{body}",
                    gw = c.gw,
                    me = c.me,
                    b = c.branch,
                    tag = c.tag,
                    cid = c.call_id,
                    len = body.len()
                )
            },
            caller_hangs_up: false,
            check: no_check,
        },
        Form {
            name: "folded From and Subject",
            offer: &[0, 8],
            text: |c, body| {
                invite(c, body)
                    .replace(
                        "From: \"Five9\" <sip",
                        "Subject: a call\r\n  that continues\r\nFrom: \"Five9\"\r\n\t<sip",
                    )
                    .replace(";tag=", "\r\n ;tag=")
            },
            caller_hangs_up: false,
            check: |c, ok| {
                let from = ok.header("From").unwrap_or_default();
                assert!(from.contains(&c.tag), "From tag kept: {from}");
            },
        },
        Form {
            name: "folded Via parameters",
            offer: &[0, 8],
            text: |c, body| invite(c, body).replace(";branch=", "\r\n ;branch="),
            caller_hangs_up: false,
            check: |c, ok| {
                let via = ok.header("Via").unwrap_or_default();
                assert!(via.contains(&c.branch), "branch echoed: {via}");
            },
        },
        Form {
            name: "whitespace before the colon",
            offer: &[0, 8],
            text: |c, body| {
                invite(c, body)
                    .replace("Via:", "Via :")
                    .replace("Call-ID:", "Call-ID  :")
                    .replace("CSeq:", "CSeq\t:")
                    .replace("Content-Length:", "Content-Length :")
            },
            caller_hangs_up: false,
            check: no_check,
        },
        Form {
            name: "LF-only line ends",
            offer: &[0, 8],
            text: |c, body| {
                // The SDP too; its length shrinks with it.
                let body = body.replace("\r\n", "\n");
                invite(c, &body).replace("\r\n", "\n")
            },
            caller_hangs_up: false,
            check: no_check,
        },
        Form {
            name: "tel: Request-URI and To",
            offer: &[0, 8],
            text: |c, body| {
                invite(c, body)
                    .replace(
                        &format!("INVITE sip:+14155550100@{}", c.gw),
                        "INVITE tel:+14155550100",
                    )
                    .replace(
                        &format!("To: <sip:+14155550100@{}>", c.gw),
                        "To: <tel:+14155550100>",
                    )
            },
            caller_hangs_up: false,
            check: |_, ok| {
                let to = ok.header("To").unwrap_or_default();
                assert!(to.starts_with("<tel:+14155550100>;tag="), "To: {to}");
            },
        },
        Form {
            name: "IPv6 host in the second Via",
            offer: &[0, 8],
            text: |c, body| {
                invite(c, body).replace(
                    "Max-Forwards:",
                    &format!("Via: {IPV6_VIA}\r\nMax-Forwards:"),
                )
            },
            caller_hangs_up: false,
            check: |c, ok| {
                let vias = ok.headers("Via");
                assert_eq!(vias.len(), 2, "both Vias echoed: {vias:?}");
                assert!(vias[0].contains(&c.branch), "ours on top: {vias:?}");
                assert_eq!(vias[1], IPV6_VIA, "the IPv6 Via is echoed untouched");
            },
        },
        Form {
            name: "IPv6 host in Contact",
            offer: &[0, 8],
            text: |c, body| {
                invite(c, body).replace(
                    &format!("Contact: <sip:five9@{}>", c.me),
                    "Contact: <sip:five9@[2001:db8::7]:5060>",
                )
            },
            caller_hangs_up: true,
            check: no_check,
        },
        Form {
            name: "an rtpmap without a clock rate for a codec we do not pick",
            // RFC 4475 spirit: 96 cannot be read, but PCMU answers the call.
            offer: &[0],
            text: |c, body| {
                let body =
                    body.replace("RTP/AVP 0 101", "RTP/AVP 0 96 101") + "a=rtpmap:96 opus\r\n";
                invite(c, &body)
            },
            caller_hangs_up: true,
            check: no_check,
        },
        Form {
            name: "no Content-Length over UDP",
            // PCMA only: an answer in PCMA proves the body was read.
            offer: &[8],
            text: |c, body| {
                let text = invite(c, body);
                let line = format!("Content-Length: {}\r\n", body.len());
                text.replace(&line, "")
            },
            caller_hangs_up: false,
            check: no_check,
        },
    ]
}

/// Places `form` from a raw peer and plays the call to its end; panics with
/// the form's name on anything a caller would notice.
fn call_with_form(gw: &Gateway, agent_addr: SocketAddr, form: &Form) {
    let name = form.name;
    let scenario = if form.caller_hangs_up {
        "agent_uas_wait_bye.xml"
    } else {
        "agent_uas.xml"
    };
    let mut agent = Sipp::new(scenario, agent_addr)
        .pause(Duration::from_millis(300))
        .spawn();
    agent.wait_ready(SOON);
    let peer = UdpPeer::new(gw.sip);
    let c = Ctx::new(peer.me, gw.sip);
    peer.send(&(form.text)(&c, &sdp(peer.me, form.offer)));

    let (ok, before) = peer.wait_for(&format!("200 OK ({name})"), Duration::from_secs(10), |m| {
        m.status().is_some_and(|s| s >= 200)
    });
    assert_eq!(ok.status(), Some(200), "{name}: {ok:?}");
    assert!(
        before.iter().any(|m| m.status() == Some(180)),
        "{name}: the agent's ringing reaches us: {before:#?}"
    );
    assert_eq!(ok.header("Call-ID"), Some(c.call_id.as_str()), "{name}");
    assert_eq!(ok.header("Content-Type"), Some("application/sdp"), "{name}");
    let first = form.offer[0].to_string();
    assert_eq!(
        ok.audio_payloads().first().copied(),
        Some(first.as_str()),
        "{name}: the answer follows our offer: {ok:?}"
    );
    (form.check)(&c, &ok);
    peer.send(&in_dialog("ACK", 1, &c, &ok));

    if form.caller_hangs_up {
        peer.send(&in_dialog("BYE", 2, &c, &ok));
        let (bye_ok, _) = peer.wait_for(&format!("200 to our BYE ({name})"), SOON, |m| {
            m.cseq_method() == Some("BYE")
        });
        assert_eq!(bye_ok.status(), Some(200), "{name}: {bye_ok:?}");
    } else {
        let (bye, _) = peer.wait_for(&format!("BYE ({name})"), SOON, |m| {
            m.method() == Some("BYE")
        });
        assert_eq!(bye.header("Call-ID"), Some(c.call_id.as_str()), "{name}");
        assert_eq!(
            bye.header("X-RouteReason"),
            Some("escalation"),
            "{name}: the agent's outcome reaches us: {bye:?}"
        );
        peer.send(&reply_to(&bye, "200 OK"));
    }
    let agent = agent.wait();
    assert!(agent.passed(), "{name}: the agent's side\n{agent}");
}

#[test]
fn unusual_but_valid_invites_are_routed() {
    let agent_addr = loopback();
    let gw = route_reason_gateway(agent_addr);
    for form in forms() {
        call_with_form(&gw, agent_addr, &form);
    }
}

// ------------------------------------------------ 2. malformed over UDP

#[test]
fn malformed_udp_gets_the_answer_it_deserves_and_harms_no_one() {
    let gw = route_reason_gateway(loopback());
    let peer = UdpPeer::new(gw.sip);
    let c = Ctx::new(peer.me, gw.sip);
    let body = sdp(peer.me, &[0]);
    let good = invite(&c, &body);
    let tls_hello: &[u8] = b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\x5a\x9c\x00\xff";
    let noise: Vec<u8> = (0u32..600)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let stray_response = format!(
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP {gw};branch=z9hG4bK-nobody\r\nFrom: <sip:a@b>;tag=1\r\n\
         To: <sip:c@d>;tag=2\r\nCall-ID: stray\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
        gw = gw.sip
    );
    let to = format!("To: <sip:trunkline@{}>", gw.sip);
    let bye_unknown = request("BYE", "UDP", peer.me, gw.sip, &unique("gone"))
        .replace(&to, &format!("{to};tag=never-issued"));
    // (what, datagram, expected (status, words the reason phrase must hold))
    type Row<'a> = (&'a str, Vec<u8>, Option<(u16, &'a str)>);
    let table: Vec<Row> = vec![
        ("TLS ClientHello", tls_hello.to_vec(), None),
        ("binary noise", noise, None),
        (
            "text that is not SIP",
            b"hello gateway\r\n\r\n".to_vec(),
            None,
        ),
        ("HTTP", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), None),
        (
            "a response nobody asked for",
            stray_response.into_bytes(),
            None,
        ),
        (
            "INVITE without Call-ID",
            good.replace(&format!("Call-ID: {}\r\n", c.call_id), "")
                .into_bytes(),
            Some((400, "Call-ID")),
        ),
        (
            "garbage Content-Length",
            good.replace(
                &format!("Content-Length: {}", body.len()),
                "Content-Length: twelve",
            )
            .into_bytes(),
            Some((400, "Content-Length")),
        ),
        (
            "Content-Length beyond the datagram",
            good.replace(
                &format!("Content-Length: {}", body.len()),
                "Content-Length: 4000",
            )
            .into_bytes(),
            Some((400, "Content-Length")),
        ),
        (
            "a header line without a colon",
            good.replace("Max-Forwards: 70", "Max-Forwards 70")
                .into_bytes(),
            Some((400, "")),
        ),
        (
            "SIP/3.0",
            good.replacen(" SIP/2.0\r\n", " SIP/3.0\r\n", 1)
                .into_bytes(),
            Some((505, "")),
        ),
        (
            "unknown method FOOBAR",
            request("FOOBAR", "UDP", peer.me, gw.sip, &unique("foo")).into_bytes(),
            Some((501, "")),
        ),
        (
            "BYE for an unknown dialog",
            bye_unknown.into_bytes(),
            Some((481, "")),
        ),
        (
            "BYE without a To tag",
            request("BYE", "UDP", peer.me, gw.sip, &unique("bye")).into_bytes(),
            Some((481, "")),
        ),
    ];
    for (what, datagram, expected) in table {
        peer.send_bytes(&datagram);
        match expected {
            None => {
                let got = peer.collect(QUIET);
                assert!(got.is_empty(), "{what}: no reply expected, got {got:#?}");
            }
            Some((status, words)) => {
                let reply = peer
                    .recv(SOON)
                    .unwrap_or_else(|| panic!("{what}: no {status} within {SOON:?}"));
                assert_eq!(reply.status(), Some(status), "{what}: {reply:?}");
                assert!(
                    reply.reason().contains(words),
                    "{what}: the reason phrase should name {words:?}: {:?}",
                    reply.start_line()
                );
                assert!(
                    reply.header("Via").is_some_and(|v| v.contains("z9hG4bK")),
                    "{what}: the reply carries our Via: {reply:?}"
                );
                let extra = peer.collect(QUIET);
                assert!(
                    extra.is_empty(),
                    "{what}: one reply only, also got {extra:#?}"
                );
            }
        }
        assert_still_serves(&gw, what);
    }
}

// ------------------------------------------------------- 3. TCP framing

/// A raw SIP peer over one TCP connection, framing what it reads by
/// Content-Length.
struct TcpPeer {
    stream: TcpStream,
    buf: Vec<u8>,
    closed: bool,
}

impl TcpPeer {
    fn connect(gw: SocketAddr) -> TcpPeer {
        let stream = TcpStream::connect_timeout(&gw, SOON).expect("TCP connect to the gateway");
        stream.set_nodelay(true).expect("nodelay");
        TcpPeer {
            stream,
            buf: Vec::new(),
            closed: false,
        }
    }

    fn me(&self) -> SocketAddr {
        self.stream.local_addr().expect("local address")
    }

    fn write(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .expect("writing to the gateway");
        self.stream.flush().expect("flush");
    }

    /// A complete message at the front of the buffer, taken out.
    fn frame(&mut self) -> Option<Msg> {
        let head_end = self.buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
        let head = Msg(String::from_utf8_lossy(&self.buf[..head_end]).into_owned());
        let length: usize = head
            .header("Content-Length")
            .or_else(|| head.header("l"))
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        if self.buf.len() < head_end + length {
            return None;
        }
        let whole: Vec<u8> = self.buf.drain(..head_end + length).collect();
        Some(Msg(String::from_utf8_lossy(&whole).into_owned()))
    }

    /// The next message within `limit`; `None` on timeout or when the
    /// gateway closed the connection (see `closed`).
    fn next(&mut self, limit: Duration) -> Option<Msg> {
        let until = Instant::now() + limit;
        let mut chunk = [0; 8192];
        loop {
            if let Some(m) = self.frame() {
                return Some(m);
            }
            let left = until.saturating_duration_since(Instant::now());
            if self.closed || left.is_zero() {
                return None;
            }
            let step = left.min(Duration::from_millis(100));
            self.stream.set_read_timeout(Some(step)).expect("timeout");
            match self.stream.read(&mut chunk) {
                Ok(0) => self.closed = true,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
                    ) =>
                {
                    self.closed = true
                }
                Err(e) => panic!("reading from the gateway: {e}"),
            }
        }
    }

    /// Reads until the gateway closes the connection or `limit` passes;
    /// whether it closed, and what arrived meanwhile.
    fn until_closed(&mut self, limit: Duration) -> (bool, Vec<Msg>) {
        let until = Instant::now() + limit;
        let mut got = Vec::new();
        while !self.closed && Instant::now() < until {
            if let Some(m) = self.next(until.saturating_duration_since(Instant::now())) {
                got.push(m);
            }
        }
        (self.closed, got)
    }
}

fn options_tcp(me: SocketAddr, gw: SocketAddr, cid: &str) -> String {
    request("OPTIONS", "TCP", me, gw, cid)
}

/// An OPTIONS ping over a fresh TCP connection gets its 200.
fn assert_still_serves_tcp(gw: &Gateway, after: &str) {
    let mut peer = TcpPeer::connect(gw.sip);
    let cid = unique("tcp-ping");
    let text = options_tcp(peer.me(), gw.sip, &cid);
    peer.write(text.as_bytes());
    let ok = peer
        .next(SOON)
        .unwrap_or_else(|| panic!("no answer to a TCP OPTIONS after {after}"));
    assert_eq!(ok.status(), Some(200), "after {after}: {ok:?}");
    assert_eq!(ok.header("Call-ID"), Some(cid.as_str()));
}

#[test]
fn tcp_pipelined_requests_each_get_their_answer() {
    let gw = route_reason_gateway(loopback());
    let mut peer = TcpPeer::connect(gw.sip);
    let (a, b) = (unique("pipe-a"), unique("pipe-b"));
    let both = options_tcp(peer.me(), gw.sip, &a) + &options_tcp(peer.me(), gw.sip, &b);
    peer.write(both.as_bytes());
    let mut answered = Vec::new();
    while answered.len() < 2 {
        let Some(m) = peer.next(SOON) else { break };
        assert_eq!(m.status(), Some(200), "{m:?}");
        answered.push(m.header("Call-ID").unwrap_or_default().to_owned());
    }
    answered.sort();
    let mut want = vec![a, b];
    want.sort();
    assert_eq!(answered, want, "one 200 per pipelined OPTIONS");
    assert_eq!(peer.next(QUIET), None, "nothing more");
}

#[test]
fn tcp_message_split_across_writes_is_answered_once_complete() {
    let gw = route_reason_gateway(loopback());
    let mut peer = TcpPeer::connect(gw.sip);
    let cid = unique("split");
    // A body, so the framer must also wait for bytes after the blank line.
    let text = options_tcp(peer.me(), gw.sip, &cid).replace(
        "Content-Length: 0\r\n\r\n",
        "Content-Type: text/plain\r\nContent-Length: 11\r\n\r\nhello there",
    );
    let bytes = text.as_bytes();
    let blank = text.find("\r\n\r\n").expect("blank line");
    // Cut inside the start line, inside a header name, between the two
    // CRLFs of the blank line, and inside the body.
    let cuts = [5, 60, blank + 2, blank + 4 + 3, bytes.len()];
    let mut from = 0;
    for (i, &to) in cuts.iter().enumerate() {
        peer.write(&bytes[from..to]);
        from = to;
        if i + 1 < cuts.len() {
            let early = peer.next(Duration::from_millis(150));
            assert_eq!(
                early, None,
                "answered before the message was complete (cut {to})"
            );
        }
    }
    let ok = peer.next(SOON).expect("200 once the last piece arrived");
    assert_eq!(ok.status(), Some(200), "{ok:?}");
    assert_eq!(ok.header("Call-ID"), Some(cid.as_str()));
    // Framing picks up cleanly after it.
    let next = unique("after-split");
    peer.write(options_tcp(peer.me(), gw.sip, &next).as_bytes());
    let ok = peer.next(SOON).expect("200 to the next message");
    assert_eq!(ok.header("Call-ID"), Some(next.as_str()), "{ok:?}");
}

#[test]
fn tcp_without_content_length_gets_400_then_the_connection_closes() {
    let gw = route_reason_gateway(loopback());
    let mut peer = TcpPeer::connect(gw.sip);
    let cid = unique("nolen");
    let text = options_tcp(peer.me(), gw.sip, &cid).replace("Content-Length: 0\r\n", "");
    peer.write(text.as_bytes());
    let reply = peer.next(SOON).expect("a 400 before the close");
    assert_eq!(reply.status(), Some(400), "{reply:?}");
    assert!(
        reply.reason().contains("Content-Length"),
        "the reason names the problem: {:?}",
        reply.start_line()
    );
    let (closed, more) = peer.until_closed(SOON);
    assert!(closed, "the connection is closed after the 400");
    assert!(more.is_empty(), "nothing after the 400: {more:#?}");
    assert_still_serves_tcp(&gw, "a message without Content-Length");
    assert_still_serves(&gw, "a message without Content-Length");
}

#[test]
fn tcp_garbage_closes_the_connection_without_a_reply() {
    let gw = route_reason_gateway(loopback());
    let mut peer = TcpPeer::connect(gw.sip);
    peer.write(b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03garbage\r\n\r\n");
    let (closed, got) = peer.until_closed(SOON);
    assert!(
        closed,
        "garbage loses the framing: the connection must close"
    );
    assert!(got.is_empty(), "no reply to garbage: {got:#?}");
    assert_still_serves_tcp(&gw, "TCP garbage");
}

/// RFC 3261 §18.1.1/§21.5.14: a message over `[sip] max_message_size`
/// (64 KiB by default) gets 513. Over UDP no IPv4 datagram can exceed the
/// default, and the test gateway cannot lower the limit, so TCP shows it.
#[test]
fn tcp_message_over_the_size_limit_gets_513_and_the_connection_closes() {
    let gw = route_reason_gateway(loopback());
    let mut peer = TcpPeer::connect(gw.sip);
    let c = Ctx::new(peer.me(), gw.sip);
    let text = invite(&c, "")
        .replace("SIP/2.0/UDP", "SIP/2.0/TCP")
        .replace("Content-Length: 0", "Content-Length: 70000");
    peer.write(text.as_bytes());
    let reply = peer.next(SOON).expect("a 513 for a 70 kB INVITE");
    assert_eq!(reply.status(), Some(513), "{reply:?}");
    assert_eq!(reply.header("Call-ID"), Some(c.call_id.as_str()));
    let (closed, more) = peer.until_closed(SOON);
    assert!(closed, "the connection is closed after the 513");
    assert!(more.is_empty(), "nothing after the 513: {more:#?}");
    assert_still_serves_tcp(&gw, "an oversize message");
}

// ------------------------------------------- 4. UDP retransmission

#[test]
fn udp_200_is_retransmitted_until_the_ack_then_stops() {
    let agent_addr = loopback();
    let gw = route_reason_gateway(agent_addr);
    let mut agent = Sipp::new("agent_uas_wait_bye.xml", agent_addr).spawn();
    agent.wait_ready(SOON);
    let peer = UdpPeer::new(gw.sip);
    let c = Ctx::new(peer.me, gw.sip);
    peer.send(&invite(&c, &sdp(peer.me, &[0, 8])));
    let (ok, _) = peer.wait_for("200 OK", Duration::from_secs(10), |m| {
        m.status().is_some_and(|s| s >= 200)
    });
    assert_eq!(ok.status(), Some(200), "{ok:?}");
    let first = Instant::now();

    // We "lost" it: no ACK. T1 = 500 ms, doubling: copies at ~0.5 s and
    // ~1.5 s, the next only at ~3.5 s.
    let copies = peer.collect(Duration::from_millis(2300));
    let at: Vec<Duration> = copies.iter().map(|(t, _)| *t - first).collect();
    assert!(
        copies.len() >= 2,
        "at least two copies of the 200 within 2.3 s: {at:?}"
    );
    for (_, m) in &copies {
        assert_eq!(m, &ok, "a retransmission is the same 200 OK");
    }
    assert!(
        at[0] >= Duration::from_millis(350),
        "the first copy waits about T1, not a flood: {at:?}"
    );
    assert!(
        at[1] - at[0] >= Duration::from_millis(700),
        "the interval doubles: {at:?}"
    );

    peer.send(&in_dialog("ACK", 1, &c, &ok));
    // Past the ~3.5 s copy that would have come without the ACK.
    let after = peer.collect(Duration::from_millis(2500));
    assert!(
        after.is_empty(),
        "the ACK stops the retransmissions: {after:#?}"
    );

    peer.send(&in_dialog("BYE", 2, &c, &ok));
    let (bye_ok, _) = peer.wait_for("200 to our BYE", SOON, |m| m.cseq_method() == Some("BYE"));
    assert_eq!(bye_ok.status(), Some(200), "{bye_ok:?}");
    agent.wait().assert_passed();
}

/// A caller that never ACKs our 200 OK (RFC 3261 §13.3.1.4): the copies
/// stop after 64*T1 and the call is ended with a BYE to both legs, rather
/// than held open. T1 is 20 ms here, so that is 1.28 s.
#[test]
fn udp_200_never_acked_ends_the_call_with_a_bye_after_64_t1() {
    let agent_addr = loopback();
    let gw = Gateway::start_with(
        "route-reason",
        &format!("default_agent = \"sip:agent@{agent_addr}\""),
        "",
        "t1_ms = 20",
    );
    let mut agent = Sipp::new("agent_uas_wait_bye.xml", agent_addr).spawn();
    agent.wait_ready(SOON);
    let peer = UdpPeer::new(gw.sip);
    let c = Ctx::new(peer.me, gw.sip);
    peer.send(&invite(&c, &sdp(peer.me, &[0, 8])));
    let (ok, _) = peer.wait_for("200 OK", Duration::from_secs(10), |m| {
        m.status().is_some_and(|s| s >= 200)
    });
    assert_eq!(ok.status(), Some(200), "{ok:?}");
    let first = Instant::now();
    let (bye, before) = peer.wait_for("BYE once the 200 was given up", SOON, |m| {
        m.method() == Some("BYE")
    });
    let waited = first.elapsed();
    let copies = before.iter().filter(|m| **m == ok).count();
    // T1 = 20 ms: copies at 20, 60, 140, 300, 620 and 1,260 ms.
    assert!(
        (3..=8).contains(&copies),
        "{copies} copies of the 200 before giving up: {before:#?}"
    );
    assert!(
        waited >= Duration::from_millis(1200),
        "the BYE waited for the retransmissions to give up: {waited:?}"
    );
    peer.send(&reply_to(&bye, "200 OK"));
    agent.wait().assert_passed();
    let after = peer.collect(Duration::from_millis(600));
    assert!(
        after
            .iter()
            .all(|(_, m)| m.status() != Some(200) || m.cseq_method() != Some("INVITE")),
        "no 200 to the INVITE after giving up: {after:#?}"
    );
}

/// Over TCP nothing is re-sent (the transport is reliable), but a caller
/// that never ACKs must not hold the call either: after 64*T1 the gateway
/// ends it with a BYE on the same connection.
#[test]
fn tcp_200_never_acked_ends_the_call_with_a_bye_after_64_t1() {
    let agent_addr = loopback();
    let gw = Gateway::start_with(
        "route-reason",
        &format!("default_agent = \"sip:agent@{agent_addr}\""),
        "",
        "t1_ms = 20",
    );
    let mut agent = Sipp::new("agent_uas_wait_bye.xml", agent_addr).spawn();
    agent.wait_ready(SOON);
    let mut peer = TcpPeer::connect(gw.sip);
    let c = Ctx::new(peer.me(), gw.sip);
    let text = invite(&c, &sdp(peer.me(), &[0, 8]))
        .replace("SIP/2.0/UDP", "SIP/2.0/TCP")
        .replace(
            &format!("<sip:five9@{}>", peer.me()),
            &format!("<sip:five9@{};transport=tcp>", peer.me()),
        );
    peer.write(text.as_bytes());
    let started = Instant::now();
    let mut ok = None;
    let bye = loop {
        let m = peer
            .next(Duration::from_secs(10))
            .unwrap_or_else(|| panic!("no BYE {:?} after the INVITE", started.elapsed()));
        match (m.status(), m.method()) {
            (Some(200), _) => {
                assert!(ok.is_none(), "a 200 re-sent over TCP: {m:?}");
                ok = Some(Instant::now());
            }
            (_, Some("BYE")) => break m,
            _ => {}
        }
    };
    let ok = ok.expect("a 200 OK before the BYE");
    assert!(
        ok.elapsed() >= Duration::from_millis(1200),
        "the BYE waited 64*T1 for the ACK: {:?}",
        ok.elapsed()
    );
    peer.write(reply_to(&bye, "200 OK").as_bytes());
    agent.wait().assert_passed();
}

#[test]
fn retransmitted_invite_gets_the_last_provisional_and_makes_no_second_call() {
    let agent_addr = loopback();
    let gw = route_reason_gateway(agent_addr);
    let mut agent = Sipp::new("agent_uas_slow.xml", agent_addr).calls(1).spawn();
    agent.wait_ready(SOON);
    let peer = UdpPeer::new(gw.sip);
    let c = Ctx::new(peer.me, gw.sip);
    let text = invite(&c, &sdp(peer.me, &[0, 8]));
    peer.send(&text);
    let (ringing, _) = peer.wait_for("180 Ringing", Duration::from_secs(10), |m| {
        m.status() == Some(180)
    });
    // Anything else already on its way (a 100) is not what we test.
    let _ = peer.collect(Duration::from_millis(300));

    // Our INVITE "was lost": the same bytes, same branch, again.
    peer.send(&text);
    let again = peer
        .recv(SOON)
        .expect("an answer to the retransmitted INVITE");
    assert_eq!(
        again.status(),
        Some(180),
        "the last provisional again: {again:?}"
    );
    assert_eq!(again.header("To"), ringing.header("To"), "same To tag");

    // Give a second call time to reach the agent if one was made.
    std::thread::sleep(Duration::from_millis(700));
    let cancel = format!(
        "CANCEL sip:+14155550100@{gw} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch={b};rport\r\n\
         Max-Forwards: 70\r\nFrom: \"Five9\" <sip:+14155550123@five9.example.com>;tag={tag}\r\n\
         To: <sip:+14155550100@{gw}>\r\nCall-ID: {cid}\r\nCSeq: 1 CANCEL\r\n\
         Content-Length: 0\r\n\r\n",
        gw = gw.sip,
        me = peer.me,
        b = c.branch,
        tag = c.tag,
        cid = c.call_id,
    );
    peer.send(&cancel);
    let (terminated, _) = peer.wait_for("487 to the INVITE", SOON, |m| m.status() == Some(487));
    let ack = format!(
        "ACK sip:+14155550100@{gw} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch={b};rport\r\n\
         Max-Forwards: 70\r\nFrom: {from}\r\nTo: {to}\r\nCall-ID: {cid}\r\nCSeq: 1 ACK\r\n\
         Content-Length: 0\r\n\r\n",
        gw = gw.sip,
        me = peer.me,
        b = c.branch,
        from = terminated.header("From").unwrap_or_default(),
        to = terminated.header("To").unwrap_or_default(),
        cid = c.call_id,
    );
    peer.send(&ack);

    let agent = agent.wait();
    agent.assert_passed();
    let mut agent_calls: Vec<&str> = agent
        .received()
        .filter(|m| m.method() == Some("INVITE"))
        .filter_map(|m| m.header("Call-ID"))
        .collect();
    agent_calls.dedup();
    assert_eq!(
        agent_calls.len(),
        1,
        "one call reached the agent: {agent_calls:?}"
    );
    let routed = gw.log().matches("routing call").count();
    assert_eq!(routed, 1, "the gateway routed one call\n{}", gw.log());
}

/// RFC 3261 §15: the callee's UA must not send a BYE on a dialog before the
/// ACK for its 2xx (or the 2xx's retransmissions giving up). An agent that
/// hangs up at once must not make the gateway BYE a caller whose ACK is
/// still on its way: the BYE would overtake the ACK and the caller may
/// refuse it (481) or tear down a call it has not set up.
#[test]
fn agent_hanging_up_at_once_waits_for_the_callers_ack() {
    let agent_addr = loopback();
    let gw = route_reason_gateway(agent_addr);
    let mut agent = Sipp::new("agent_uas.xml", agent_addr).spawn();
    agent.wait_ready(SOON);
    let peer = UdpPeer::new(gw.sip);
    let c = Ctx::new(peer.me, gw.sip);
    peer.send(&invite(&c, &sdp(peer.me, &[0, 8])));
    let (ok, _) = peer.wait_for("200 OK", Duration::from_secs(10), |m| {
        m.status().is_some_and(|s| s >= 200)
    });
    assert_eq!(ok.status(), Some(200), "{ok:?}");
    // Our ACK is slow; only 200 retransmissions may come meanwhile.
    let early = peer.collect(Duration::from_millis(1200));
    let byes: Vec<&Msg> = early
        .iter()
        .map(|(_, m)| m)
        .filter(|m| m.method() == Some("BYE"))
        .collect();
    assert!(byes.is_empty(), "BYE sent before our ACK: {byes:#?}");
    peer.send(&in_dialog("ACK", 1, &c, &ok));
    let (bye, _) = peer.wait_for("BYE after our ACK", SOON, |m| m.method() == Some("BYE"));
    peer.send(&reply_to(&bye, "200 OK"));
    agent.wait().assert_passed();
}

/// A retransmitted INVITE that crosses our 200 OK (RFC 6026 Accepted
/// state) is absorbed: our 2xx retransmissions answer it, and no second
/// call reaches the agent.
#[test]
fn invite_retransmitted_after_the_200_makes_no_second_call() {
    let agent_addr = loopback();
    let gw = route_reason_gateway(agent_addr);
    let mut agent = Sipp::new("agent_uas_wait_bye.xml", agent_addr).spawn();
    agent.wait_ready(SOON);
    let peer = UdpPeer::new(gw.sip);
    let c = Ctx::new(peer.me, gw.sip);
    let text = invite(&c, &sdp(peer.me, &[0, 8]));
    peer.send(&text);
    let (ok, _) = peer.wait_for("200 OK", Duration::from_secs(10), |m| {
        m.status().is_some_and(|s| s >= 200)
    });
    assert_eq!(ok.status(), Some(200), "{ok:?}");
    peer.send(&text);
    let answers = peer.collect(Duration::from_millis(800));
    for (_, m) in &answers {
        assert_eq!(m, &ok, "only our 200 OK again, never a new answer");
    }
    peer.send(&in_dialog("ACK", 1, &c, &ok));
    peer.send(&in_dialog("BYE", 2, &c, &ok));
    let (bye_ok, _) = peer.wait_for("200 to our BYE", SOON, |m| m.cseq_method() == Some("BYE"));
    assert_eq!(bye_ok.status(), Some(200), "{bye_ok:?}");
    agent.wait().assert_passed();
    let routed = gw.log().matches("routing call").count();
    assert_eq!(routed, 1, "the gateway routed one call\n{}", gw.log());
}

/// Bad digest credentials: the first failure gets a fresh challenge, the next
/// one from the same source and Call-ID a bare 403; neither says why.
#[test]
fn bad_credentials_get_a_fresh_challenge_then_403() {
    let gw = Gateway::start(
        "route-reason",
        "default_agent = \"sip:agent@127.0.0.1:9\"",
        "allow = []\n[trunk.auth]\nrealm = \"trunkline\"\nalgorithms = [\"MD5\"]\nusers = { five9 = \"s3cret\" }\n",
    );
    let peer = UdpPeer::new(gw.sip);
    let mut c = Ctx::new(peer.me, gw.sip);
    let body = sdp(peer.me, &[0]);
    let with_auth = |c: &Ctx, cseq: u32, auth: Option<&str>| {
        let text = invite(c, &body).replace("CSeq: 1 INVITE", &format!("CSeq: {cseq} INVITE"));
        match auth {
            Some(a) => text.replacen(
                "Max-Forwards: 70\r\n",
                &format!("Max-Forwards: 70\r\nAuthorization: {a}\r\n"),
                1,
            ),
            None => text,
        }
    };
    let ack_for = |c: &Ctx, r: &Msg| {
        format!(
            "ACK sip:+14155550100@{gw} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch={b};rport\r\nMax-Forwards: 70\r\nFrom: \"Five9\" <sip:+14155550123@five9.example.com>;tag={tag}\r\nTo: {to}\r\nCall-ID: {cid}\r\nCSeq: {n} ACK\r\nContent-Length: 0\r\n\r\n",
            gw = c.gw,
            me = c.me,
            b = c.branch,
            tag = c.tag,
            cid = c.call_id,
            to = r.header("To").unwrap_or_default(),
            n = r
                .header("CSeq")
                .and_then(|s| s.split_whitespace().next())
                .unwrap_or("1"),
        )
    };

    peer.send(&with_auth(&c, 1, None));
    let (challenge, _) = peer.wait_for("401", SOON, |m| m.status() == Some(401));
    peer.send(&ack_for(&c, &challenge));
    let www = challenge
        .header("WWW-Authenticate")
        .expect("a challenge")
        .to_owned();
    let nonce = www
        .split("nonce=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("a nonce")
        .to_owned();
    let wrong = format!(
        "Digest username=\"five9\", realm=\"trunkline\", nonce=\"{nonce}\", uri=\"sip:+14155550100@{}\", response=\"00000000000000000000000000000000\", algorithm=MD5",
        gw.sip
    );

    c.branch = branch();
    peer.send(&with_auth(&c, 2, Some(&wrong)));
    let (again, _) = peer.wait_for("a fresh challenge", SOON, |m| {
        m.status().is_some_and(|s| s >= 400)
    });
    assert_eq!(again.status(), Some(401), "{again:?}");
    assert!(again.header("WWW-Authenticate").is_some());
    peer.send(&ack_for(&c, &again));

    c.branch = branch();
    peer.send(&with_auth(&c, 3, Some(&wrong)));
    let (forbidden, _) = peer.wait_for("403", SOON, |m| m.status().is_some_and(|s| s >= 400));
    assert_eq!(forbidden.status(), Some(403), "{forbidden:?}");
    assert!(forbidden.header("WWW-Authenticate").is_none());
    assert_eq!(forbidden.reason(), "Forbidden", "the reason must not leak");
    peer.send(&ack_for(&c, &forbidden));
    assert!(!gw.log().contains("s3cret"));
}

/// RFC 4028 §7.4: when the gateway is the refresher, its refresh re-INVITE
/// must say so (Session-Expires with the interval and `refresher=uac`,
/// `Supported: timer`), or a timer-aware caller takes the timer as
/// switched off and stops expecting refreshes; it also carries `Allow`.
/// The caller asks for the smallest interval (90 s) with the gateway as
/// refresher, so the refresh comes after 45 s of real time.
#[test]
fn our_session_refresh_reinvite_keeps_the_timer_on() {
    let agent_addr = loopback();
    // No RTP flows in this test: the media timeout must outlast the refresh.
    let gw = Gateway::start_with_media(
        "route-reason",
        &format!("default_agent = \"sip:agent@{agent_addr}\""),
        "",
        "",
        "timeout_secs = 300",
    );
    let mut agent = Sipp::new("agent_uas_wait_bye.xml", agent_addr)
        .timeout(Duration::from_secs(90))
        .spawn();
    agent.wait_ready(SOON);
    let peer = UdpPeer::new(gw.sip);
    let c = Ctx::new(peer.me, gw.sip);
    let offer = invite(&c, &sdp(peer.me, &[0, 8])).replacen(
        "Max-Forwards: 70\r\n",
        "Max-Forwards: 70\r\nSupported: timer\r\nSession-Expires: 90;refresher=uas\r\n",
        1,
    );
    peer.send(&offer);
    let (ok, _) = peer.wait_for("200 OK", Duration::from_secs(10), |m| {
        m.status().is_some_and(|s| s >= 200)
    });
    assert_eq!(ok.status(), Some(200), "{ok:?}");
    assert_eq!(ok.header("Session-Expires"), Some("90;refresher=uas"));
    peer.send(&in_dialog("ACK", 1, &c, &ok));

    let started = Instant::now();
    let (refresh, _) = peer.wait_for("the refresh re-INVITE", Duration::from_secs(60), |m| {
        m.method() == Some("INVITE")
    });
    let waited = started.elapsed();
    assert!(
        (Duration::from_secs(40)..Duration::from_secs(55)).contains(&waited),
        "refreshed after {waited:?}, half of 90 s expected"
    );
    assert_eq!(refresh.header("Call-ID"), Some(c.call_id.as_str()));
    let se = refresh
        .header("Session-Expires")
        .expect("Session-Expires on the refresh");
    assert_eq!(se.replace(' ', ""), "90;refresher=uac", "{refresh:?}");
    let supported = refresh.headers("Supported").join(",");
    assert!(
        supported.split(',').any(|t| t.trim() == "timer"),
        "Supported: {supported:?}"
    );
    let min_se: u32 = refresh
        .header("Min-SE")
        .and_then(|v| v.trim().parse().ok())
        .expect("Min-SE on the refresh");
    assert!(min_se <= 90, "Min-SE {min_se}");
    let allow = refresh.header("Allow").expect("Allow on the refresh");
    for method in ["INVITE", "ACK", "BYE", "CANCEL", "OPTIONS"] {
        assert!(allow.contains(method), "Allow: {allow}");
    }

    // We answer as a timer-aware UA would; the gateway ACKs and the call
    // goes on until we hang up.
    let answer = sdp(peer.me, &[0]);
    let reply = reply_to(&refresh, "200 OK").replace(
        "Content-Length: 0\r\n\r\n",
        &format!(
            "Contact: <sip:five9@{}>\r\nSupported: timer\r\nRequire: timer\r\n\
             Session-Expires: 90;refresher=uac\r\nContent-Type: application/sdp\r\n\
             Content-Length: {}\r\n\r\n{answer}",
            peer.me,
            answer.len()
        ),
    );
    peer.send(&reply);
    let (ack, _) = peer.wait_for("the ACK of the refresh", SOON, |m| {
        m.method() == Some("ACK")
    });
    assert_eq!(
        ack.header("CSeq").and_then(|v| v.split_whitespace().next()),
        refresh
            .header("CSeq")
            .and_then(|v| v.split_whitespace().next())
    );
    peer.send(&in_dialog("BYE", 2, &c, &ok));
    let (bye_ok, _) = peer.wait_for("200 to our BYE", SOON, |m| m.cseq_method() == Some("BYE"));
    assert_eq!(bye_ok.status(), Some(200), "{bye_ok:?}");
    agent.wait().assert_passed();
}

// ------------------------------------------------- a hand-driven agent

/// The agent's answer to the gateway's `request`: its Vias, From, Call-ID
/// and CSeq, To with our tag, and a Contact (plus an SDP answer) on 1xx/2xx.
fn agent_reply(req: &Msg, status: &str, agent: SocketAddr) -> String {
    let mut text = format!("SIP/2.0 {status}\r\n");
    for via in req.headers("Via") {
        text += &format!("Via: {via}\r\n");
    }
    for name in ["From", "Call-ID", "CSeq"] {
        text += &format!("{name}: {}\r\n", req.header(name).unwrap_or_default());
    }
    text += &format!(
        "To: {};tag=agent-1\r\n",
        req.header("To").unwrap_or_default()
    );
    let code: u16 = status[..3].parse().expect("a status");
    if (101..300).contains(&code) {
        text += &format!("Contact: <sip:agent@{agent}>\r\n");
    }
    if (200..300).contains(&code) {
        let body = sdp(agent, &[0]);
        return text
            + &format!(
                "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
    }
    text + "Content-Length: 0\r\n\r\n"
}

/// The caller's CANCEL for the INVITE of `c`.
fn cancel(c: &Ctx) -> String {
    format!(
        "CANCEL sip:+14155550100@{gw} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch={b};rport\r\n\
         Max-Forwards: 70\r\nFrom: \"Five9\" <sip:+14155550123@five9.example.com>;tag={tag}\r\n\
         To: <sip:+14155550100@{gw}>\r\nCall-ID: {cid}\r\nCSeq: 1 CANCEL\r\n\
         Content-Length: 0\r\n\r\n",
        gw = c.gw,
        me = c.me,
        b = c.branch,
        tag = c.tag,
        cid = c.call_id,
    )
}

/// A caller whose call reached a hand-driven agent, which rang; then the
/// caller CANCELled and got its 487. Returns the gateway, the agent (and
/// the INVITE it got, and the CANCEL that followed) and the caller.
fn cancelled_while_ringing() -> (Gateway, UdpPeer, Msg, UdpPeer) {
    let mut agent = UdpPeer::new(loopback());
    let gw = Gateway::start_with(
        "route-reason",
        &format!("default_agent = \"sip:agent@{}\"", agent.me),
        "",
        "t1_ms = 20",
    );
    agent.gw = gw.sip;
    let caller = UdpPeer::new(gw.sip);
    let c = Ctx::new(caller.me, gw.sip);
    caller.send(&invite(&c, &sdp(caller.me, &[0, 8])));
    let invite = agent.wait_for_msg("the agent's INVITE", Duration::from_secs(10), |m| {
        m.method() == Some("INVITE")
    });
    agent.send(&agent_reply(&invite, "180 Ringing", agent.me));
    caller.wait_for_msg("180 to the caller", SOON, |m| m.status() == Some(180));
    caller.send(&cancel(&c));
    caller.wait_for_msg("487 to the caller", SOON, |m| m.status() == Some(487));
    agent.wait_for_msg("the CANCEL to the agent", SOON, |m| {
        m.method() == Some("CANCEL")
    });
    (gw, agent, invite, caller)
}

/// Waits until the gateway holds no call record (`calls_open` is 0).
fn wait_all_forgotten(gw: &Gateway, limit: Duration) {
    let until = Instant::now() + limit;
    while gw.metric("trunkline_calls_open") > 0.0 {
        assert!(
            Instant::now() < until,
            "a call is still held after {limit:?}\n{}",
            gw.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// RFC 3261 §9.1: an agent that rings and then ignores our CANCEL (no 200,
/// no 487) must not keep the call for ever: 64*T1 after the CANCEL the
/// INVITE is abandoned and the call forgotten. T1 is 20 ms here.
#[test]
fn an_agent_ignoring_our_cancel_is_let_go_after_64_t1() {
    let (gw, agent, _invite, _caller) = cancelled_while_ringing();
    assert!(
        gw.metric("trunkline_calls_open") >= 1.0,
        "still held at first"
    );
    wait_all_forgotten(&gw, Duration::from_secs(10));
    gw.wait_for_log("INVITE abandoned", SOON);
    assert_eq!(gw.metric("trunkline_sip_transactions_open"), 0.0);
    // Nothing more goes to the agent (no INVITE retransmission, no BYE).
    let late: Vec<Msg> = agent
        .collect(Duration::from_millis(300))
        .into_iter()
        .map(|(_, m)| m)
        .filter(|m| m.method() != Some("CANCEL"))
        .collect();
    assert!(late.is_empty(), "{late:#?}");
}

/// An agent that answers after our CANCEL (its 200 crossed the CANCEL)
/// gets our ACK and then a BYE: it must not be left in a call nobody is
/// on. The caller, who got its 487, sees nothing more.
#[test]
fn an_agent_answering_after_our_cancel_gets_an_ack_and_a_bye() {
    let (gw, agent, invite, caller) = cancelled_while_ringing();
    agent.send(&agent_reply(&invite, "200 OK", agent.me));
    let ack = agent.wait_for_msg("the ACK for the agent's 200", SOON, |m| {
        m.method() == Some("ACK")
    });
    assert_eq!(ack.header("CSeq"), Some("1 ACK"));
    assert!(ack.header("To").is_some_and(|t| t.contains("tag=agent-1")));
    let bye = agent.wait_for_msg("a BYE after the ACK", SOON, |m| m.method() == Some("BYE"));
    assert_eq!(bye.header("Call-ID"), invite.header("Call-ID"));
    agent.send(
        &agent_reply(&bye, "200 OK", agent.me)
            .replace(&format!("Contact: <sip:agent@{}>\r\n", agent.me), ""),
    );
    wait_all_forgotten(&gw, Duration::from_secs(10));
    let after: Vec<Msg> = caller
        .collect(Duration::from_millis(300))
        .into_iter()
        .map(|(_, m)| m)
        .filter(|m| m.status() != Some(487))
        .collect();
    assert!(after.is_empty(), "the caller sees nothing more: {after:#?}");
}

/// The agent's re-INVITE in the dialog its 200 to `invite` made (the agent
/// is that dialog's UAS: its From is the INVITE's To with its tag).
fn agent_reinvite(invite: &Msg, agent: SocketAddr, cseq: u32) -> String {
    let body = sdp(agent, &[0]);
    format!(
        "INVITE {target} SIP/2.0\r\nVia: SIP/2.0/UDP {agent};branch={b};rport\r\n\
         Max-Forwards: 70\r\nFrom: {to};tag=agent-1\r\nTo: {from}\r\nCall-ID: {cid}\r\n\
         CSeq: {cseq} INVITE\r\nContact: <sip:agent@{agent}>\r\n\
         Content-Type: application/sdp\r\nContent-Length: {len}\r\n\r\n{body}",
        target = invite.contact_uri().expect("our Contact"),
        b = branch(),
        to = invite.header("To").unwrap_or_default(),
        from = invite.header("From").unwrap_or_default(),
        cid = invite.header("Call-ID").unwrap_or_default(),
        len = body.len(),
    )
}

/// §13.3.1.4 on the agent's side: our 200 to the agent's re-INVITE is
/// re-sent over UDP until its ACK; an agent that never ACKs gets the call
/// ended (BYE to both sides) after 64*T1, rather than a dialog left half
/// done. T1 is 20 ms here.
#[test]
fn our_200_to_an_agents_reinvite_is_resent_and_a_missing_ack_ends_the_call() {
    let mut agent = UdpPeer::new(loopback());
    let gw = Gateway::start_with(
        "route-reason",
        &format!("default_agent = \"sip:agent@{}\"", agent.me),
        "",
        "t1_ms = 20",
    );
    agent.gw = gw.sip;
    let caller = UdpPeer::new(gw.sip);
    let c = Ctx::new(caller.me, gw.sip);
    caller.send(&invite(&c, &sdp(caller.me, &[0, 8])));
    let invite = agent.wait_for_msg("the agent's INVITE", Duration::from_secs(10), |m| {
        m.method() == Some("INVITE")
    });
    agent.send(&agent_reply(&invite, "200 OK", agent.me));
    agent.wait_for_msg("our ACK", SOON, |m| m.method() == Some("ACK"));
    let ok = caller.wait_for_msg("200 to the caller", SOON, |m| m.status() == Some(200));
    caller.send(&in_dialog("ACK", 1, &c, &ok));

    // ACKed: no copy follows (T1 = 20 ms would send them at 20, 60, 140 ms).
    agent.send(&agent_reinvite(&invite, agent.me, 7));
    let ok = agent.wait_for_msg("our 200 to the re-INVITE", SOON, |m| {
        m.status() == Some(200) && m.cseq_method() == Some("INVITE")
    });
    let ack = format!(
        "ACK {target} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch={b};rport\r\n\
         Max-Forwards: 70\r\nFrom: {from}\r\nTo: {to}\r\nCall-ID: {cid}\r\n\
         CSeq: 7 ACK\r\nContent-Length: 0\r\n\r\n",
        target = ok.contact_uri().expect("Contact in our 200"),
        me = agent.me,
        b = branch(),
        from = ok.header("From").unwrap_or_default(),
        to = ok.header("To").unwrap_or_default(),
        cid = ok.header("Call-ID").unwrap_or_default(),
    );
    agent.send(&ack);
    let after_ack: Vec<Msg> = agent
        .collect(Duration::from_millis(400))
        .into_iter()
        .map(|(_, m)| m)
        .collect();
    assert!(
        after_ack.is_empty(),
        "nothing after the ACK: {after_ack:#?}"
    );

    // Not ACKed: copies, then the call ends.
    agent.send(&agent_reinvite(&invite, agent.me, 8));
    let (bye, before) = agent.wait_for("a BYE once our 200 was given up", SOON, |m| {
        m.method() == Some("BYE")
    });
    let copies = before
        .iter()
        .filter(|m| m.status() == Some(200) && m.cseq_method() == Some("INVITE"))
        .count();
    // T1 = 20 ms: the 200 and copies at 20, 60, 140, 300, 620 and 1,260 ms.
    assert!(
        (3..=8).contains(&copies),
        "{copies} copies of our 200 to the re-INVITE before giving up: {before:#?}"
    );
    agent.send(
        &agent_reply(&bye, "200 OK", agent.me)
            .replace(&format!("Contact: <sip:agent@{}>\r\n", agent.me), ""),
    );
    let caller_bye = caller.wait_for_msg("the caller's BYE", SOON, |m| m.method() == Some("BYE"));
    caller.send(&reply_to(&caller_bye, "200 OK"));
    wait_all_forgotten(&gw, Duration::from_secs(10));
    gw.wait_for_log("agent never ACKed", SOON);
}
