//! SIP messages as raw text, for tests that play a peer with plain sockets
//! (what a peer sees on the wire, parsed just enough to assert on it).

use std::net::SocketAddr;

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
