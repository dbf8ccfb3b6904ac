//! SIP over TLS through the real binary: Five9 (SIPp, UDP) calls, the policy
//! routes to a `sips:` agent, and the gateway opens TLS to it, checks its
//! certificate against `[sip.tls_client] ca_path`, and runs the agent's
//! dialog over that connection: INVITE, 200, ACK, then the agent's BYE with
//! its outcome headers, which reach Five9 on the gateway's BYE.
//!
//! The agent is this test: a rustls server speaking SIP (SIPp on these
//! machines has no TLS), with a certificate made here by rcgen.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::time::Duration;

use support::gateway::Gateway;
use support::sip_text::Msg;
use support::sipp::{Sipp, loopback};
use support::tls::Cert;
use tokio_rustls::rustls::{ServerConnection, StreamOwned};

const LIMIT: Duration = Duration::from_secs(10);

/// One SIP message from a stream: headers to the blank line, then
/// Content-Length bytes of body. `pending` keeps what was read beyond it.
fn read_msg(stream: &mut impl Read, pending: &mut Vec<u8>) -> Msg {
    loop {
        if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&pending[..end]).into_owned();
            let len = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    let name = name.trim();
                    (name.eq_ignore_ascii_case("content-length") || name == "l")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            let total = end + 4 + len;
            if pending.len() >= total {
                let msg = String::from_utf8_lossy(&pending[..total]).into_owned();
                pending.drain(..total);
                return Msg(msg);
            }
        }
        let mut buf = [0u8; 4096];
        let n = stream.read(&mut buf).expect("reading from the gateway");
        assert!(n > 0, "the gateway closed the TLS connection");
        pending.extend_from_slice(&buf[..n]);
    }
}

/// The TLS agent: answers one INVITE, then hangs up with an outcome.
fn tls_agent(listener: TcpListener, cert: &Cert) -> Msg {
    let (tcp, _) = listener.accept().expect("the gateway connects");
    tcp.set_read_timeout(Some(LIMIT)).unwrap();
    let me = tcp.local_addr().unwrap();
    let conn = ServerConnection::new(cert.server_config()).unwrap();
    let mut tls = StreamOwned::new(conn, tcp);
    let mut pending = Vec::new();

    let invite = read_msg(&mut tls, &mut pending);
    assert_eq!(invite.method(), Some("INVITE"), "{}", invite.0);
    let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let sdp = format!(
        "v=0\r\no=agent 1 1 IN IP4 127.0.0.1\r\ns=agent\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n",
        rtp.local_addr().unwrap().port()
    );
    let to_tag = "ag-tls-1";
    let mut ok = String::from("SIP/2.0 200 OK\r\n");
    for via in invite.headers("Via") {
        ok += &format!("Via: {via}\r\n");
    }
    for name in ["From", "Call-ID", "CSeq"] {
        ok += &format!("{name}: {}\r\n", invite.header(name).unwrap());
    }
    ok += &format!(
        "To: {};tag={to_tag}\r\nContact: <sips:agent@{me}>\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        invite.header("To").unwrap(),
        sdp.len()
    );
    tls.write_all(ok.as_bytes()).unwrap();

    let ack = read_msg(&mut tls, &mut pending);
    assert_eq!(ack.method(), Some("ACK"), "{}", ack.0);
    std::thread::sleep(Duration::from_millis(300));

    let bye = format!(
        "BYE {target} SIP/2.0\r\nVia: SIP/2.0/TLS {me};branch=z9hG4bK-tls-bye;rport\r\n\
         Max-Forwards: 70\r\nFrom: {to};tag={to_tag}\r\nTo: {from}\r\nCall-ID: {cid}\r\n\
         CSeq: 1 BYE\r\nX-RouteReason: billing_question\r\nX-RouteType: queue\r\n\
         X-RouteValue: Billing_Queue\r\nX-MetaData: {{\"via\":\"tls\"}}\r\n\
         Content-Length: 0\r\n\r\n",
        target = invite.contact_uri().expect("the gateway's Contact"),
        to = invite.header("To").unwrap(),
        from = invite.header("From").unwrap(),
        cid = invite.header("Call-ID").unwrap(),
    );
    tls.write_all(bye.as_bytes()).unwrap();
    let answer = read_msg(&mut tls, &mut pending);
    assert_eq!(answer.status(), Some(200), "{}", answer.0);
    invite
}

fn free_tcp_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
}

/// A gateway routing every call to the `sips:` agent on `agent`, with a TLS
/// listener on `own` and trusting only `trusted` for agents.
fn gateway(agent: &TcpListener, own: &Cert, trusted: &Cert) -> Gateway {
    let agent_addr = agent.local_addr().unwrap();
    Gateway::builder("route-reason")
        .policy_toml(&format!("default_agent = \"sips:agent@{agent_addr}\""))
        .extra_toml(&format!(
            "[sip.tls]\naddr = \"{tls}\"\ncert_path = \"{cert}\"\nkey_path = \"{key}\"\n\n\
             [sip.tls_client]\nca_path = \"{ca}\"\n",
            tls = free_tcp_port(),
            cert = own.cert_pem.display(),
            key = own.key_pem.display(),
            ca = trusted.cert_pem.display(),
        ))
        .start()
}

#[test]
fn a_sips_agent_gets_the_call_over_tls_and_its_outcome_reaches_five9() {
    let dir = tempfile::tempdir().unwrap();
    let agent_cert = Cert::new(dir.path(), "agent");
    let gateway_cert = Cert::new(dir.path(), "gateway");
    let agent = TcpListener::bind("127.0.0.1:0").unwrap();
    let gw = gateway(&agent, &gateway_cert, &agent_cert);
    let agent_thread = std::thread::spawn(move || tls_agent(agent, &agent_cert));
    let five9 = Sipp::new("five9_uac_expect_route_reason.xml", loopback())
        .remote(gw.sip)
        .set("session_id", "sess-tls-1")
        .set("route_reason", "billing_question")
        .set("route_type", "queue")
        .set("route_value", "Billing_Queue")
        .run();
    let invite = agent_thread.join().expect("the TLS agent");
    five9.assert_passed();
    // Over TLS the gateway says so in its Via and Contact, and gives the
    // agent the call id of the control API.
    assert!(
        invite.headers("Via")[0].starts_with("SIP/2.0/TLS "),
        "{}",
        invite.0
    );
    let contact = invite.contact_uri().unwrap_or_default();
    assert!(
        contact.starts_with("sips:") || contact.contains("transport=tls"),
        "{contact}"
    );
    assert!(
        invite.header("X-Trunkline-Call-ID").is_some(),
        "{}",
        invite.0
    );
    gw.wait_for_log("outcome stored", LIMIT);
}

#[test]
fn an_agent_whose_certificate_is_not_trusted_gets_no_call() {
    let dir = tempfile::tempdir().unwrap();
    let agent_cert = Cert::new(dir.path(), "agent");
    let stranger = Cert::new(dir.path(), "stranger");
    let agent = TcpListener::bind("127.0.0.1:0").unwrap();
    // Trusts another certificate than the agent's.
    let gw = gateway(&agent, &agent_cert, &stranger);
    // The agent presents its certificate; the gateway does not trust it and
    // aborts the handshake, so no SIP message ever reaches the agent.
    let agent_thread = std::thread::spawn(move || {
        let (tcp, _) = agent.accept().expect("the gateway connects");
        tcp.set_read_timeout(Some(LIMIT)).unwrap();
        let mut tls = StreamOwned::new(
            ServerConnection::new(agent_cert.server_config()).unwrap(),
            tcp,
        );
        let mut buf = [0u8; 1024];
        tls.read(&mut buf).map(|n| buf[..n].to_vec())
    });
    let five9 = support::sip_text::UdpPeer::new(gw.sip);
    let me = five9.me;
    let to = gw.sip;
    let body = "v=0\r\no=f9 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
    five9.send(&format!(
        "INVITE sip:+14155550100@{to} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-untrusted\r\n\
         Max-Forwards: 70\r\nFrom: <sip:+14155550123@{me}>;tag=f9\r\nTo: <sip:+14155550100@{to}>\r\n\
         Call-ID: untrusted-tls-1\r\nCSeq: 1 INVITE\r\nContact: <sip:f9@{me}>\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ));
    let answer = five9.wait_for_msg("a final answer", Duration::from_secs(20), |m| {
        m.status().is_some_and(|s| s >= 200)
    });
    assert_eq!(answer.status(), Some(503), "{}", answer.0);
    let read = agent_thread.join().unwrap();
    assert!(
        read.as_ref().is_err() || read.as_ref().is_ok_and(|b| b.is_empty()),
        "the agent got no SIP: {read:?}"
    );
    let log = gw.log();
    assert!(
        log.contains("UnknownIssuer") || log.contains("certificate"),
        "the log says why: {log}"
    );
}
