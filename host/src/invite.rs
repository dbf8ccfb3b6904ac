//! From an INVITE on the wire to the [`Call`] a policy sees.
//!
//! Used by the B2BUA for every new call and by `trunkline policy run` for a
//! captured INVITE, so a dry run sees exactly what production would.

use std::net::SocketAddr;

use trunkline_media::sdp::{Codec as SdpCodec, SessionDescription};
use trunkline_sip::message::{FrameLimits, Method, ParseError, SipMessage, parse_datagram};

use crate::policy::{Call, Codec, Direction, Header, Transport};

/// Where an INVITE came from, and the id Trunkline gives the call.
#[derive(Debug, Clone)]
pub struct InviteSource {
    /// The trunk that admitted it.
    pub trunk: String,
    /// The packet's source address.
    pub addr: SocketAddr,
    /// The transport it arrived on.
    pub transport: Transport,
    /// Trunkline's id for the call.
    pub call_id: String,
}

/// Why an INVITE cannot be turned into a call.
#[derive(Debug, thiserror::Error)]
pub enum InviteError {
    /// The text is not a SIP message.
    #[error("not a SIP message: {0}")]
    Parse(String),
    /// It is a SIP message, but not an INVITE request.
    #[error("not an INVITE request (got {0})")]
    NotInvite(String),
    /// A header every INVITE must have is missing or unreadable.
    #[error("{0}")]
    Header(String),
    /// The SDP body cannot be read.
    #[error("bad SDP body: {0}")]
    Sdp(String),
}

impl InviteError {
    /// The SIP status the gateway answers with.
    pub fn status(&self) -> u16 {
        match self {
            InviteError::Sdp(_) => 488,
            _ => 400,
        }
    }
}

/// Parses INVITE text (CRLF or LF line endings, as captures often have) and
/// builds the call.
pub fn call_from_bytes(bytes: &[u8], source: &InviteSource) -> Result<Call, InviteError> {
    let msg = match parse_datagram(bytes, &FrameLimits::default()) {
        Ok(Some(m)) => m,
        Ok(None) => return Err(InviteError::Parse("empty input".into())),
        Err(e) => return Err(InviteError::Parse(e.error.to_string())),
    };
    call_from_message(&msg, source)
}

/// Like [`call_from_bytes`], for a file captured by hand (`policy run`): a
/// Content-Length larger than the body, as a CRLF capture pasted with LF
/// endings has, is accepted with a warning naming both lengths, and the body
/// is used as it is. Never used for the network, where that is a 400.
pub fn call_from_capture(
    bytes: &[u8],
    source: &InviteSource,
) -> Result<(Call, Option<String>), InviteError> {
    let Err(e) = parse_datagram(bytes, &FrameLimits::default()) else {
        return call_from_bytes(bytes, source).map(|call| (call, None));
    };
    let ParseError::BodyTruncated { declared, received } = e.error else {
        return Err(InviteError::Parse(e.error.to_string()));
    };
    let fixed = with_content_length(bytes, received)
        .ok_or_else(|| InviteError::Parse(e.error.to_string()))?;
    let call = call_from_bytes(&fixed, source)?;
    let hint = if bytes.contains(&b'\r') {
        ""
    } else {
        " (LF line endings?)"
    };
    let warning = format!(
        "Content-Length says {declared} but the body has {received} bytes{hint}; \
         using the body as it is"
    );
    Ok((call, Some(warning)))
}

/// The message with its Content-Length header (`l:` too) set to `length`;
/// `None` when no such header line is found.
fn with_content_length(bytes: &[u8], length: usize) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut out = String::with_capacity(text.len());
    let mut in_head = true;
    let mut found = false;
    let mut started = false;
    for line in text.split_inclusive('\n') {
        let bare = line.trim_end_matches(['\r', '\n']);
        if in_head && started && bare.is_empty() {
            in_head = false;
        }
        started |= !bare.is_empty();
        let name = bare.split_once(':').map(|(n, _)| n.trim());
        let is_length = name.is_some_and(|n| {
            n.eq_ignore_ascii_case("content-length") || n.eq_ignore_ascii_case("l")
        });
        if in_head && is_length && !found {
            found = true;
            let end = &line[bare.len()..];
            out.push_str(&format!("Content-Length: {length}{end}"));
        } else {
            out.push_str(line);
        }
    }
    found.then(|| out.into_bytes())
}

/// Builds the call from a parsed INVITE.
pub fn call_from_message(msg: &SipMessage, source: &InviteSource) -> Result<Call, InviteError> {
    match msg.method() {
        Some(Method::Invite) => {}
        Some(other) => return Err(InviteError::NotInvite(other.to_string())),
        None => {
            return Err(InviteError::NotInvite(format!(
                "a {} response",
                msg.status_code().unwrap_or_default()
            )));
        }
    }
    let header_err = |e: trunkline_sip::message::ParseError| InviteError::Header(e.to_string());
    let from = msg.from().map_err(header_err)?;
    let to = msg.to().map_err(header_err)?;
    let sip_call_id = msg.call_id().map_err(header_err)?.to_owned();
    let codecs = offered_codecs(msg)?;
    Ok(Call {
        call_id: source.call_id.clone(),
        sip_call_id,
        trunk: source.trunk.clone(),
        request_uri: msg.request_uri().unwrap_or_default().to_owned(),
        dialed: msg.request_user(),
        from_uri: from.uri,
        from_display: from.display_name,
        to_uri: to.uri,
        headers: msg
            .headers()
            .iter()
            .map(|h| Header {
                name: h.name.clone(),
                value: h.value.clone(),
            })
            .collect(),
        source_ip: source.addr.ip().to_string(),
        source_port: source.addr.port(),
        direction: Direction::Inbound,
        transport: source.transport,
        codecs,
    })
}

/// The audio codecs of the first audio section, in the caller's order. An
/// INVITE without SDP (a late offer) offers none.
fn offered_codecs(msg: &SipMessage) -> Result<Vec<Codec>, InviteError> {
    let is_sdp = msg.content_type().is_some_and(|ct| {
        ct.trim()
            .to_ascii_lowercase()
            .starts_with("application/sdp")
    });
    if msg.body().is_empty() || !is_sdp {
        return Ok(Vec::new());
    }
    let text = std::str::from_utf8(msg.body())
        .map_err(|_| InviteError::Sdp("the body is not UTF-8".into()))?;
    let sdp = SessionDescription::parse(text).map_err(|e| InviteError::Sdp(e.to_string()))?;
    let Some(audio) = sdp
        .media
        .iter()
        .find(|m| m.media.eq_ignore_ascii_case("audio"))
    else {
        return Ok(Vec::new());
    };
    Ok(audio
        .payload_types()
        .filter(|pt| !audio.is_malformed(*pt))
        .filter_map(|pt| {
            let (name, clock_rate) = match audio.rtpmap(pt) {
                Some(map) => (map.encoding.clone(), map.clock_rate),
                None => {
                    let c: SdpCodec = SdpCodec::from_static(pt)?;
                    (c.name, c.clock_rate)
                }
            };
            Some(Codec {
                name,
                clock_rate,
                payload_type: pt,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source() -> InviteSource {
        InviteSource {
            trunk: "five9".into(),
            addr: "127.0.0.1:5070".parse().unwrap(),
            transport: Transport::Udp,
            call_id: "tl-1".into(),
        }
    }

    #[test]
    fn five9_invite_becomes_a_call_with_headers_in_wire_order() {
        let text = include_bytes!("../../examples/invites/five9.sip");
        let call = call_from_bytes(text, &source()).unwrap();
        assert_eq!(call.dialed.as_deref(), Some("+14155550100"));
        assert_eq!(call.request_uri, "sip:+14155550100@127.0.0.1:5060");
        assert_eq!(call.from_display.as_deref(), Some("Five9 IVR"));
        assert_eq!(call.from_uri, "sip:+14155550123@five9.example.com");
        assert_eq!(call.sip_call_id, "4f0c2b9e-1a7d-4c1e-9f55-five9@10.1.2.3");
        assert_eq!(call.headers[0].name, "Via");
        let x: Vec<&str> = call
            .headers
            .iter()
            .filter(|h| h.name.starts_with("X-"))
            .map(|h| h.name.as_str())
            .collect();
        assert_eq!(x[0], "X-CallANI");
        assert_eq!(x.len(), 11);
        let names: Vec<&str> = call.codecs.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["PCMU", "PCMA", "telephone-event"]);
        assert_eq!(call.codecs[2].payload_type, 101);
    }

    #[test]
    fn compact_lf_only_invite_without_rtpmap_uses_static_types() {
        let text = b"INVITE tel:+15551234567 SIP/2.0\nv: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-x\nf: <sip:a@127.0.0.1>;tag=1\nt: <tel:+15551234567>\ni: abc\nCSeq: 1 INVITE\nc: application/sdp\n\nv=0\no=- 1 1 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\nm=audio 4000 RTP/AVP 8 0\n";
        let call = call_from_bytes(text, &source()).unwrap();
        assert_eq!(call.dialed.as_deref(), Some("+15551234567"));
        assert_eq!(call.request_uri, "tel:+15551234567");
        let names: Vec<&str> = call.codecs.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["PCMA", "PCMU"]);
        assert_eq!(call.headers[0].name, "Via", "compact names are expanded");
    }

    #[test]
    fn lf_capture_with_a_crlf_content_length_is_accepted_with_a_warning() {
        let crlf = include_str!("../../examples/invites/five9.sip");
        let lf = crlf.replace("\r\n", "\n");
        let network = call_from_bytes(lf.as_bytes(), &source()).unwrap_err();
        assert!(network.to_string().contains("Content-Length"), "{network}");
        let (call, warning) = call_from_capture(lf.as_bytes(), &source()).unwrap();
        let body = lf.split_once("\n\n").unwrap().1.len();
        let warning = warning.unwrap();
        assert!(
            warning.contains(&format!("but the body has {body} bytes")),
            "{warning}"
        );
        assert!(warning.contains("LF line endings"), "{warning}");
        assert_eq!(call.codecs.len(), 3);
        let (_, none) = call_from_capture(crlf.as_bytes(), &source()).unwrap();
        assert_eq!(none, None, "a correct capture gets no warning");
    }

    #[test]
    fn bad_input_says_what_is_wrong() {
        let e = call_from_bytes(b"hello world", &source()).unwrap_err();
        assert_eq!(e.status(), 400);
        let bye = b"BYE sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK-1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:b@c>\r\nCall-ID: x\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n";
        let e = call_from_bytes(bye, &source()).unwrap_err();
        assert!(e.to_string().contains("not an INVITE"), "{e}");
    }
}
