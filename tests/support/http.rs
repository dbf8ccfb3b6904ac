//! A tiny HTTP/1.1 client (std only) for the gateway's API: one request per
//! connection (`Connection: close`), `Content-Length` or chunked bodies.
//!
//! ```ignore
//! let r = http::get(gw.http, "/v1/calls", Some(TEST_KEY));
//! assert_eq!(r.status, 200, "{r}");
//! let r = http::post_json(gw.http, "/handoff", Some(TEST_KEY), &json!({"shared_id": "S1"}));
//! assert_eq!(r.json["contained"], true);
//! ```

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// An answer.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header names (lower-cased) and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body as text.
    pub body: String,
    /// The body parsed as JSON (`Null` when it is not JSON).
    pub json: serde_json::Value,
}

impl Response {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

impl std::fmt::Display for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP {} {}", self.status, self.body)
    }
}

/// `GET path`, with `Authorization: Bearer key` when `key` is given.
pub fn get(addr: SocketAddr, path: &str, key: Option<&str>) -> Response {
    request(addr, "GET", path, &auth(key), b"")
}

/// `POST path` with `body` as `application/json`.
pub fn post_json(
    addr: SocketAddr,
    path: &str,
    key: Option<&str>,
    body: &serde_json::Value,
) -> Response {
    let mut headers = auth(key);
    headers.push(("Content-Type".into(), "application/json".into()));
    request(addr, "POST", path, &headers, body.to_string().as_bytes())
}

/// `POST path` with a raw body and the given headers (besides
/// `Authorization`), e.g. to send a wrong content type or broken JSON.
pub fn post_raw(
    addr: SocketAddr,
    path: &str,
    key: Option<&str>,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut all = auth(key);
    all.extend(headers.iter().map(|(n, v)| (n.to_string(), v.to_string())));
    request(addr, "POST", path, &all, body)
}

fn auth(key: Option<&str>) -> Vec<(String, String)> {
    key.map(|k| vec![("Authorization".to_string(), format!("Bearer {k}"))])
        .unwrap_or_default()
}

/// Any request. Panics when the server cannot be reached or answers
/// something that is not HTTP/1.1.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Response {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .unwrap_or_else(|e| panic!("reading the answer to {method} {path}: {e}"));
    parse(&raw).unwrap_or_else(|| {
        panic!(
            "not an HTTP answer to {method} {path}: {:?}",
            String::from_utf8_lossy(&raw)
        )
    })
}

fn parse(raw: &[u8]) -> Option<Response> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let rest = &raw[end + 4..];
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        dechunk(rest)?
    } else {
        rest.to_vec()
    };
    let body = String::from_utf8_lossy(&body).into_owned();
    let json = serde_json::from_str(&body).unwrap_or(serde_json::Value::Null);
    Some(Response {
        status,
        headers,
        body,
        json,
    })
}

fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&rest[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}
