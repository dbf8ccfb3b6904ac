//! The transports on real sockets (127.0.0.1, port 0), with plain tokio
//! sockets as the peers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::time::timeout;
use trunkline_sip::message::{SipMessage, ViaTrust};

use super::*;

const WAIT: Duration = Duration::from_secs(5);
/// How long to wait for something that must not come.
const QUIET: Duration = Duration::from_millis(300);

fn any_port() -> Option<SocketAddr> {
    Some(SocketAddr::from(([127, 0, 0, 1], 0)))
}

fn config() -> ListenConfig {
    ListenConfig {
        udp: any_port(),
        tcp: any_port(),
        udp_recv_buffer: 1 << 20,
        ..ListenConfig::default()
    }
}

async fn bind(config: &ListenConfig) -> (Transports, mpsc::Receiver<Inbound>) {
    Transports::bind(config).await.expect("binds")
}

/// An OPTIONS request from a client that thinks it is at 10.9.9.9 (NAT).
fn options(transport: &str, cseq: u32, extra: &str) -> String {
    format!(
        "OPTIONS sip:gw@127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/{transport} 10.9.9.9:5060;branch=z9hG4bK{cseq};rport\r\n\
         From: <sip:five9@10.9.9.9>;tag=f{cseq}\r\nTo: <sip:gw@127.0.0.1>\r\n\
         Call-ID: call-{cseq}\r\nCSeq: {cseq} OPTIONS\r\n{extra}Content-Length: 0\r\n\r\n"
    )
}

async fn next(rx: &mut mpsc::Receiver<Inbound>) -> Inbound {
    timeout(WAIT, rx.recv())
        .await
        .expect("a message in time")
        .expect("transports running")
}

async fn datagram(socket: &UdpSocket, wait: Duration) -> Option<String> {
    let mut buf = vec![0; 70_000];
    let (len, _) = timeout(wait, socket.recv_from(&mut buf)).await.ok()?.ok()?;
    Some(String::from_utf8_lossy(&buf[..len]).into_owned())
}

async fn udp_client() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").await.expect("client socket")
}

#[tokio::test]
async fn udp_request_is_stamped_and_its_response_reaches_the_client() {
    let (transports, mut rx) = bind(&config()).await;
    let server = transports.local_addr(TransportKind::Udp).expect("UDP on");
    let client = udp_client().await;
    let client_addr = client.local_addr().expect("bound");
    client
        .send_to(options("UDP", 1, "").as_bytes(), server)
        .await
        .expect("sent");

    let inbound = next(&mut rx).await;
    assert_eq!(
        (inbound.kind, inbound.source, inbound.conn),
        (TransportKind::Udp, client_addr, None)
    );
    let via = inbound.msg.top_via().expect("Via");
    assert_eq!(via.received(), Some(client_addr.ip()));
    assert_eq!(
        via.param("rport"),
        Some(Some(client_addr.port().to_string().as_str()))
    );

    let target = reply_target(&inbound, ViaTrust::Admitted).expect("target");
    assert_eq!(target, Target::udp(client_addr));
    let ok = inbound.msg.reply(200, None, Some("t1")).expect("reply");
    transports.send(&target, &ok).await.expect("sent");
    let text = datagram(&client, WAIT).await.expect("the 200 arrives");
    assert!(text.starts_with("SIP/2.0 200 OK\r\n"), "{text}");
    let via = text
        .lines()
        .find(|l| l.starts_with("Via: "))
        .expect("Via copied");
    assert!(via.contains(";received=127.0.0.1"), "{via}");
    assert!(
        via.contains(&format!(";rport={}", client_addr.port())),
        "{via}"
    );

    let stats = transports.stats();
    assert_eq!((stats.udp.messages_in, stats.udp.messages_out), (1, 1));
    transports.shutdown().await;
}

#[tokio::test]
async fn udp_malformed_input_is_answered_only_when_it_can_be() {
    let (transports, mut rx) = bind(&ListenConfig {
        max_message_size: 2000,
        ..config()
    })
    .await;
    let server = transports.local_addr(TransportKind::Udp).expect("UDP on");
    let client = udp_client().await;
    let no_call_id = options("UDP", 2, "").replace("Call-ID: call-2\r\n", "");
    let oversize = options("UDP", 3, &format!("X-Padding: {}\r\n", "x".repeat(3000)));
    // (what, datagram, the status line that must come back, if any)
    let table: [(&str, Vec<u8>, Option<&str>); 4] = [
        (
            "binary garbage",
            b"\x16\x03\x01\x00\xa5\x01\x00\x00".to_vec(),
            None,
        ),
        ("keep-alive", b"\r\n\r\n".to_vec(), None),
        (
            "no Call-ID",
            no_call_id.into_bytes(),
            Some("SIP/2.0 400 Bad Request - Missing Call-ID\r\n"),
        ),
        (
            "oversize",
            oversize.into_bytes(),
            Some("SIP/2.0 513 Message Too Large\r\n"),
        ),
    ];
    for (what, bytes, expected) in table {
        client.send_to(&bytes, server).await.expect("sent");
        let wait = if expected.is_some() { WAIT } else { QUIET };
        let reply = datagram(&client, wait).await;
        match (reply, expected) {
            (None, None) => {}
            (Some(text), Some(line)) => assert!(text.starts_with(line), "{what}: {text}"),
            (reply, _) => panic!("{what}: got {reply:?}, wanted {expected:?}"),
        }
    }
    assert!(rx.try_recv().is_err(), "nothing reaches the gateway");
    let udp = transports.stats().udp;
    assert_eq!(
        (udp.malformed, udp.malformed_replies, udp.messages_in),
        (3, 2, 0)
    );
    transports.shutdown().await;
}

async fn tcp_client(transports: &Transports) -> TcpStream {
    let server = transports.local_addr(TransportKind::Tcp).expect("TCP on");
    TcpStream::connect(server).await.expect("connects")
}

#[tokio::test]
async fn tcp_pipelined_and_split_messages_are_all_delivered() {
    let (transports, mut rx) = bind(&config()).await;
    let mut client = tcp_client(&transports).await;
    let two = format!("{}{}", options("TCP", 1, ""), options("TCP", 2, ""));
    client.write_all(two.as_bytes()).await.expect("written");
    let third = options("TCP", 3, "");
    for chunk in third.as_bytes().chunks(40) {
        client.write_all(chunk).await.expect("written");
        client.flush().await.expect("flushed");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut seen = Vec::new();
    for _ in 0..3 {
        let inbound = next(&mut rx).await;
        assert_eq!(inbound.kind, TransportKind::Tcp);
        assert_eq!(inbound.source, client.local_addr().expect("bound"));
        seen.push((inbound.msg.cseq().expect("CSeq").seq, inbound.conn));
    }
    let conn = seen[0].1;
    assert!(conn.is_some());
    assert_eq!(seen, [(1, conn), (2, conn), (3, conn)]);

    // The response goes back on the same connection.
    let inbound_conn = conn.expect("connection");
    let request = SipMessage::parse(third.as_bytes()).expect("valid");
    let target =
        Target::new(TransportKind::Tcp, "127.0.0.1:9".parse().expect("addr")).on(inbound_conn);
    transports
        .send(
            &target,
            &request.reply(200, None, Some("t")).expect("reply"),
        )
        .await
        .expect("sent");
    let mut buf = vec![0; 4096];
    let len = timeout(WAIT, client.read(&mut buf))
        .await
        .expect("in time")
        .expect("read");
    assert!(buf[..len].starts_with(b"SIP/2.0 200 OK\r\n"));
    transports.shutdown().await;
}

#[tokio::test]
async fn tcp_without_content_length_is_answered_then_closed() {
    let (transports, mut rx) = bind(&config()).await;
    let mut client = tcp_client(&transports).await;
    let request = options("TCP", 1, "").replace("Content-Length: 0\r\n", "");
    client.write_all(request.as_bytes()).await.expect("written");
    let mut answer = Vec::new();
    timeout(WAIT, client.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("SIP/2.0 400 "), "{answer}");
    assert!(rx.try_recv().is_err());
    let tcp = transports.stats().tcp;
    assert_eq!((tcp.malformed_replies, tcp.connections_open), (1, 0));
    transports.shutdown().await;
}

#[tokio::test]
async fn tcp_request_before_junk_is_still_answered_then_closed() {
    // RFC 4475 dblreq on a stream: a complete request, then bytes that lose
    // the message boundaries. The reader gives up at once, but the answer
    // the signalling task sends a moment later still goes out, and only
    // then is the connection closed.
    let (transports, mut rx) = bind(&config()).await;
    let mut client = tcp_client(&transports).await;
    let bytes = format!("{}C\r\n\r\n", options("TCP", 1, ""));
    client.write_all(bytes.as_bytes()).await.expect("written");
    let inbound = next(&mut rx).await;
    tokio::time::sleep(QUIET).await;
    let target = Target::new(TransportKind::Tcp, "127.0.0.1:9".parse().expect("addr"))
        .on(inbound.conn.expect("a connection"));
    let ok = inbound.msg.reply(200, None, Some("t")).expect("reply");
    transports.send(&target, &ok).await.expect("queued");
    let mut answer = Vec::new();
    timeout(WAIT, client.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("SIP/2.0 200 OK\r\n"), "{answer}");
    assert_eq!(transports.stats().tcp.connections_open, 0);

    // Junk alone is closed at once: nothing can be owed to it.
    let mut client = tcp_client(&transports).await;
    client.write_all(b"C\r\n\r\n").await.expect("written");
    let mut rest = Vec::new();
    let read = timeout(QUIET, client.read_to_end(&mut rest)).await;
    assert!(matches!(read, Ok(Ok(0))), "closed at once: {read:?}");
    transports.shutdown().await;
}

#[tokio::test]
async fn tcp_ping_gets_a_pong_and_the_connection_stays_up() {
    let (transports, mut rx) = bind(&config()).await;
    let mut client = tcp_client(&transports).await;
    client.write_all(b"\r\n\r\n").await.expect("written");
    let mut pong = [0; 2];
    timeout(WAIT, client.read_exact(&mut pong))
        .await
        .expect("in time")
        .expect("pong");
    assert_eq!(&pong, b"\r\n");
    client
        .write_all(options("TCP", 1, "").as_bytes())
        .await
        .expect("written");
    assert_eq!(next(&mut rx).await.msg.cseq().expect("CSeq").seq, 1);
    assert_eq!(transports.stats().tcp.pongs, 1);
    transports.shutdown().await;
}

#[tokio::test]
async fn idle_connections_are_closed() {
    let (transports, _rx) = bind(&ListenConfig {
        idle_timeout_secs: 1,
        ..config()
    })
    .await;
    let mut client = tcp_client(&transports).await;
    let mut rest = Vec::new();
    let read = timeout(Duration::from_secs(4), client.read_to_end(&mut rest)).await;
    assert!(matches!(read, Ok(Ok(0))), "closed after 1 s idle: {read:?}");
    transports.shutdown().await;
}

#[tokio::test]
async fn outbound_requests_reuse_one_connection() {
    let (transports, mut rx) = bind(&config()).await;
    let agent = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("agent listens");
    let agent_addr = agent.local_addr().expect("bound");
    // Ten requests at once, as in a burst of calls to one agent.
    let mut sends = Vec::new();
    for cseq in 1..=10 {
        let (transports, msg) = (transports.clone(), options("TCP", cseq, ""));
        sends.push(tokio::spawn(async move {
            let msg = SipMessage::parse(msg.as_bytes()).expect("valid");
            transports
                .send(&Target::new(TransportKind::Tcp, agent_addr), &msg)
                .await
        }));
    }
    let (mut stream, _) = timeout(WAIT, agent.accept())
        .await
        .expect("in time")
        .expect("accepts");
    for send in sends {
        send.await.expect("joined").expect("sent");
    }
    assert!(
        timeout(QUIET, agent.accept()).await.is_err(),
        "no second connection"
    );
    let mut received = Vec::new();
    let mut buf = vec![0; 8192];
    while received.windows(7).filter(|w| w == b"OPTIONS").count() < 20 {
        let len = timeout(WAIT, stream.read(&mut buf))
            .await
            .expect("in time")
            .expect("read");
        assert!(len > 0, "connection open");
        received.extend_from_slice(&buf[..len]);
    }
    // The agent answers on that connection; the answer comes in tagged with it.
    let ok = "SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP 10.9.9.9:5060;branch=z9hG4bK1\r\n\
              From: <sip:five9@10.9.9.9>;tag=f1\r\nTo: <sip:gw@127.0.0.1>;tag=a\r\n\
              Call-ID: call-1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    stream.write_all(ok.as_bytes()).await.expect("written");
    let inbound = next(&mut rx).await;
    assert_eq!(inbound.msg.status_code(), Some(200));
    assert_eq!(
        inbound.conn,
        transports.connection_to(TransportKind::Tcp, agent_addr)
    );
    assert!(inbound.conn.is_some());
    let tcp = transports.stats().tcp;
    assert_eq!(
        (
            tcp.connections_open,
            tcp.connections_total,
            tcp.messages_out
        ),
        (1, 1, 10)
    );
    transports.shutdown().await;
}

/// Where an outbound connection to a fresh agent on 127.0.0.1 comes from.
async fn outbound_source(transports: &Transports) -> std::net::IpAddr {
    let agent = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("agent listens");
    let agent_addr = agent.local_addr().expect("bound");
    let msg = SipMessage::parse(options("TCP", 1, "").as_bytes()).expect("valid");
    transports
        .send(&Target::new(TransportKind::Tcp, agent_addr), &msg)
        .await
        .expect("sent");
    let (_stream, peer) = timeout(WAIT, agent.accept())
        .await
        .expect("in time")
        .expect("accepts");
    peer.ip()
}

#[tokio::test]
async fn outbound_connections_leave_from_the_listener_address() {
    let at = |host: u8| Some(SocketAddr::from(([127, 0, 0, host], 0)));
    // The TCP listener's own address (an unbound socket would leave from
    // 127.0.0.1).
    let (listener, _rx) = bind(&ListenConfig {
        tcp: at(7),
        ..config()
    })
    .await;
    assert_eq!(outbound_source(&listener).await.to_string(), "127.0.0.7");
    listener.shutdown().await;

    // TCP off (or a wildcard): the advertised address when it is one of
    // ours, else another listener's.
    let no_tcp = ListenConfig {
        udp: at(9),
        tcp: None,
        ..config()
    };
    let (advertised, _rx) = bind(&no_tcp).await;
    advertised.set_wildcard_source("127.0.0.8".parse().expect("ip"));
    assert_eq!(outbound_source(&advertised).await.to_string(), "127.0.0.8");
    advertised.shutdown().await;
    let (not_ours, _rx) = bind(&no_tcp).await;
    // TEST-NET-1: not on this host, as a NAT's public address would not be.
    not_ours.set_wildcard_source("192.0.2.1".parse().expect("ip"));
    assert_eq!(outbound_source(&not_ours).await.to_string(), "127.0.0.9");
    not_ours.shutdown().await;
}

#[tokio::test]
async fn outbound_connect_failure_is_reported() {
    let (transports, _rx) = bind(&config()).await;
    // A port that was just free: connecting is refused.
    let closed = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bound")
        .local_addr()
        .expect("addr");
    let msg = SipMessage::parse(options("TCP", 1, "").as_bytes()).expect("valid");
    let error = transports
        .send(&Target::new(TransportKind::Tcp, closed), &msg)
        .await
        .expect_err("refused");
    assert!(matches!(error, TransportError::Connect { .. }), "{error}");
    assert_eq!(error.status(), 503);
    transports.shutdown().await;
}

#[tokio::test]
async fn tls_round_trip() {
    let dir = tempfile::tempdir().expect("temp dir");
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let pair = rcgen::generate_simple_self_signed(names).expect("certificate");
    let (cert_path, key_path) = (dir.path().join("sip.crt"), dir.path().join("sip.key"));
    std::fs::write(&cert_path, pair.cert.pem()).expect("written");
    std::fs::write(&key_path, pair.signing_key.serialize_pem()).expect("written");
    let server_config = ListenConfig {
        udp: None,
        tcp: None,
        tls: Some(TlsListen {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            cert_path,
            key_path,
        }),
        ..ListenConfig::default()
    };
    let (server, mut server_rx) = bind(&server_config).await;
    let server_addr = server.local_addr(TransportKind::Tls).expect("TLS on");
    assert_eq!(server.local_addr(TransportKind::Udp), None);

    let client_config = client_config_trusting(pair.cert.pem().as_bytes()).expect("trusts");
    let (client, mut client_rx) = Transports::bind_with_tls_client(
        &ListenConfig {
            udp: None,
            tcp: None,
            ..ListenConfig::default()
        },
        Some(Arc::new(client_config)),
    )
    .await
    .expect("binds");
    let request = SipMessage::parse(options("TLS", 1, "").as_bytes()).expect("valid");
    client
        .send(&Target::tls(server_addr, "localhost"), &request)
        .await
        .expect("handshake and send");

    let inbound = next(&mut server_rx).await;
    assert_eq!(inbound.kind, TransportKind::Tls);
    assert_eq!(inbound.msg.call_id(), Ok("call-1"));
    let target = reply_target(&inbound, ViaTrust::Admitted).expect("target");
    assert_eq!(
        (target.kind, target.conn),
        (TransportKind::Tls, inbound.conn)
    );
    let ok = inbound.msg.reply(200, None, Some("t")).expect("reply");
    server.send(&target, &ok).await.expect("sent");

    let answer = next(&mut client_rx).await;
    assert_eq!(
        (answer.kind, answer.msg.status_code()),
        (TransportKind::Tls, Some(200))
    );
    assert_eq!(answer.source, server_addr);

    // The open connection is reused: no new handshake, so no new name check.
    let reused = client
        .send(&Target::tls(server_addr, "agent.example.com"), &request)
        .await;
    assert!(reused.is_ok(), "{reused:?}");
    assert_eq!(client.stats().tls.connections_total, 1);
    // A fresh connection checks the name, and this certificate lacks it.
    let other = client_config_trusting(pair.cert.pem().as_bytes()).expect("trusts");
    let (stranger, _rx) = Transports::bind_with_tls_client(
        &ListenConfig {
            udp: None,
            tcp: None,
            ..ListenConfig::default()
        },
        Some(Arc::new(other)),
    )
    .await
    .expect("binds");
    let error = stranger
        .send(&Target::tls(server_addr, "agent.example.com"), &request)
        .await
        .expect_err("name mismatch");
    assert!(error.to_string().contains("certificate"), "{error}");
    for transports in [server, client, stranger] {
        transports.shutdown().await;
    }
}

#[tokio::test]
async fn shutdown_stops_listening_and_ends_the_receiver() {
    let (transports, mut rx) = bind(&config()).await;
    let tcp = transports.local_addr(TransportKind::Tcp).expect("TCP on");
    let mut client = TcpStream::connect(tcp).await.expect("connects");
    client
        .write_all(options("TCP", 1, "").as_bytes())
        .await
        .expect("written");
    next(&mut rx).await;
    timeout(WAIT, transports.shutdown())
        .await
        .expect("shuts down in time");
    assert!(timeout(WAIT, rx.recv()).await.expect("ends").is_none());
    assert!(TcpStream::connect(tcp).await.is_err(), "listener closed");
    let mut rest = Vec::new();
    let read = timeout(WAIT, client.read_to_end(&mut rest)).await;
    assert!(matches!(read, Ok(Ok(0))), "connection closed: {read:?}");
    let msg = SipMessage::parse(options("UDP", 2, "").as_bytes()).expect("valid");
    let sent = transports.send(&Target::udp(tcp), &msg).await;
    assert!(matches!(sent, Err(TransportError::Shutdown)));
}
