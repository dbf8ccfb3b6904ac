//! The UDP socket and its receive task.
//!
//! One task reads datagrams into one reused 64 KiB buffer, so a datagram
//! costs only the allocation of the message parsed from it. Bursts at
//! thousands of calls per second are absorbed by a large SO_RCVBUF rather
//! than by extra tasks: the kernel queues while the task parses.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tracing::{debug, warn};
use trunkline_sip::message::parse_datagram;

use super::TransportKind;
use super::transports::Task;

/// Larger than any UDP payload (65,507 bytes over IPv4), so a datagram is
/// never silently truncated: one over the configured limit is seen whole
/// and gets its 513.
const RECV_BUFFER: usize = 64 * 1024;

/// Binds the UDP socket with a large receive buffer. `[::]` also receives
/// IPv4 where the OS allows dual-stack sockets.
pub(super) fn bind(addr: SocketAddr, recv_buffer: usize) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        // Not fatal: some systems force v6-only; IPv4 peers then need a
        // second config entry, which the log makes visible.
        if let Err(error) = socket.set_only_v6(false) {
            debug!(%addr, %error, "UDP socket stays IPv6-only");
        }
    }
    if let Err(error) = socket.set_recv_buffer_size(recv_buffer) {
        warn!(%addr, %error, "cannot set the UDP receive buffer");
    }
    // Linux reports twice what it granted; a smaller number means the
    // request was capped by net.core.rmem_max.
    match socket.recv_buffer_size() {
        Ok(granted) if granted < recv_buffer => warn!(
            %addr,
            requested = recv_buffer,
            granted,
            "UDP receive buffer capped by the OS (raise net.core.rmem_max): \
             bursts of calls may be dropped and retransmitted"
        ),
        _ => {}
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

/// Reads datagrams until shutdown: messages go to the gateway, malformed
/// requests get their reply straight back to the source, keep-alives and
/// garbage are dropped.
pub(super) async fn receive_loop(mut task: Task, socket: Arc<UdpSocket>) {
    let local = socket.local_addr().unwrap_or_else(|_| unspecified());
    let limits = task.transports.inner.limits;
    let mut buf = vec![0; RECV_BUFFER];
    let mut shutdown = task.shutdown.clone();
    loop {
        let received = tokio::select! {
            received = socket.recv_from(&mut buf) => received,
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        let (len, source) = match received {
            Ok(received) => received,
            Err(error) => {
                // ICMP errors for earlier sends can surface here (Windows,
                // Linux with IP_RECVERR); they concern other peers, so the
                // loop goes on.
                debug!(%error, "UDP receive error");
                tokio::task::yield_now().await;
                continue;
            }
        };
        match parse_datagram(&buf[..len], &limits) {
            Ok(None) => {}
            Ok(Some(msg)) => {
                if !task
                    .deliver(msg, source, TransportKind::Udp, None, local)
                    .await
                {
                    break;
                }
            }
            Err(malformed) => {
                if let Some(reply) = task.malformed(malformed, source, TransportKind::Udp)
                    && let Err(error) = socket.send_to(&reply, source).await
                {
                    debug!(%source, %error, "cannot send reply to malformed request");
                }
            }
        }
    }
    debug!(%local, "UDP receive task stopped");
}

fn unspecified() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 0))
}
