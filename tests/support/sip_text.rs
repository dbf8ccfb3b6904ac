//! SIP messages as raw text, for tests that play a peer with plain sockets
//! (what a peer sees on the wire, parsed just enough to assert on it).

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use super::sipp::loopback;

/// One SIP message as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Msg(pub String);

impl Msg {
    /// The first line, without its line end.
    pub fn start_line(&self) -> &str {
        self.0.lines().next().unwrap_or("").trim_end()
    }

    /// The status code of a response.
    pub fn status(&self) -> Option<u16> {
        self.start_line()
            .strip_prefix("SIP/2.0 ")?
            .get(..3)?
            .parse()
            .ok()
    }

    /// The reason phrase of a response.
    pub fn reason(&self) -> &str {
        self.start_line().get("SIP/2.0 200 ".len()..).unwrap_or("")
    }

    /// The method of a request.
    pub fn method(&self) -> Option<&str> {
        let line = self.start_line();
        (!line.starts_with("SIP/")).then(|| line.split(' ').next().unwrap_or(""))
    }

    fn head_and_body(&self) -> (&str, &str) {
        ["\r\n\r\n", "\n\n"]
            .iter()
            .find_map(|end| self.0.split_once(end))
            .unwrap_or((&self.0, ""))
    }

    /// Every value of header `name` (case-insensitive), trimmed, in order.
    pub fn headers(&self, name: &str) -> Vec<&str> {
        self.head_and_body()
            .0
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
            .collect()
    }

    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers(name).into_iter().next()
    }

    /// The body.
    pub fn body(&self) -> &str {
        self.head_and_body().1
    }

    /// The method named in CSeq.
    pub fn cseq_method(&self) -> Option<&str> {
        self.header("CSeq")?.split_whitespace().nth(1)
    }

    /// The URI inside the Contact's angle brackets.
    pub fn contact_uri(&self) -> Option<&str> {
        let c = self.header("Contact")?;
        let start = c.find('<')? + 1;
        let end = c[start..].find('>')? + start;
        Some(&c[start..end])
    }

    /// Where the SDP body says to send RTP.
    pub fn rtp_target(&self) -> SocketAddr {
        let body = self.body();
        let ip = body
            .lines()
            .find_map(|l| l.trim().strip_prefix("c=IN IP4 "))
            .unwrap_or_else(|| panic!("no c= line in {self:?}"));
        let port = body
            .lines()
            .find_map(|l| l.strip_prefix("m=audio "))
            .and_then(|m| m.split_whitespace().next())
            .unwrap_or_else(|| panic!("no m=audio line in {self:?}"));
        format!("{}:{}", ip.trim(), port)
            .parse()
            .unwrap_or_else(|e| panic!("bad SDP address in {self:?}: {e}"))
    }

    /// The payload types of the SDP body's audio line.
    pub fn audio_payloads(&self) -> Vec<&str> {
        self.body()
            .lines()
            .find_map(|l| l.strip_prefix("m=audio "))
            .map(|m| m.split_whitespace().skip(2).collect())
            .unwrap_or_default()
    }

    /// Whether the SDP body has the attribute line `a` (e.g. `a=recvonly`).
    pub fn has_attribute(&self, a: &str) -> bool {
        self.body().lines().any(|l| l.trim() == a)
    }
}

/// A raw SIP peer on its own loopback address.
pub struct UdpPeer {
    /// The socket.
    pub sock: UdpSocket,
    /// Its address.
    pub me: SocketAddr,
    /// The gateway's SIP address.
    pub gw: SocketAddr,
}

impl UdpPeer {
    pub fn new(gw: SocketAddr) -> UdpPeer {
        let me = loopback();
        let sock = UdpSocket::bind(me).expect("binding the raw peer");
        UdpPeer { sock, me, gw }
    }

    pub fn send(&self, text: &str) {
        self.send_bytes(text.as_bytes());
    }

    pub fn send_bytes(&self, bytes: &[u8]) {
        self.sock
            .send_to(bytes, self.gw)
            .expect("sending to the gateway");
    }

    /// The next datagram from the gateway within `limit`.
    pub fn recv(&self, limit: Duration) -> Option<Msg> {
        let until = Instant::now() + limit;
        let mut buf = vec![0; 70_000];
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            let step = left.min(Duration::from_millis(100));
            self.sock.set_read_timeout(Some(step)).expect("timeout");
            match self.sock.recv_from(&mut buf) {
                Ok((n, from)) if from == self.gw => {
                    return Some(Msg(String::from_utf8_lossy(&buf[..n]).into_owned()));
                }
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => panic!("receiving from the gateway: {e}"),
            }
        }
    }

    /// Everything the gateway sends within `d`, with arrival times.
    pub fn collect(&self, d: Duration) -> Vec<(Instant, Msg)> {
        let until = Instant::now() + d;
        let mut out = Vec::new();
        while let Some(m) = self.recv(until.saturating_duration_since(Instant::now())) {
            out.push((Instant::now(), m));
        }
        out
    }

    /// Waits for a message `want` accepts; returns it and what came before.
    /// Panics, listing what did arrive, when none does within `limit`.
    pub fn wait_for(
        &self,
        what: &str,
        limit: Duration,
        want: impl Fn(&Msg) -> bool,
    ) -> (Msg, Vec<Msg>) {
        let until = Instant::now() + limit;
        let mut seen = Vec::new();
        while let Some(m) = self.recv(until.saturating_duration_since(Instant::now())) {
            if want(&m) {
                return (m, seen);
            }
            seen.push(m);
        }
        panic!("no {what} within {limit:?}; received instead: {seen:#?}");
    }

    /// As [`UdpPeer::wait_for`], without what came before.
    pub fn wait_for_msg(&self, what: &str, limit: Duration, want: impl Fn(&Msg) -> bool) -> Msg {
        self.wait_for(what, limit, want).0
    }
}

/// A response to `req`: its Via, From, Call-ID and CSeq copied, its To
/// tagged with `tag` (unless tagged already), then the `extra` header
/// lines (each ending in CRLF) and `body`.
pub fn reply_to(req: &Msg, status: &str, tag: Option<&str>, extra: &str, body: &str) -> String {
    let mut text = format!("SIP/2.0 {status}\r\n");
    for via in req.headers("Via") {
        text += &format!("Via: {via}\r\n");
    }
    let to = req.header("To").unwrap_or_default();
    let to = match tag {
        Some(t) if !to.contains(";tag=") => format!("{to};tag={t}"),
        _ => to.to_owned(),
    };
    text += &format!("To: {to}\r\n");
    for name in ["From", "Call-ID", "CSeq"] {
        text += &format!("{name}: {}\r\n", req.header(name).unwrap_or_default());
    }
    text + extra + &format!("Content-Length: {}\r\n\r\n{body}", body.len())
}
