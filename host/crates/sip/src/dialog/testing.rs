//! SIPp-style messages shared by the dialog tests: Five9 calling Trunkline
//! through two record-routing proxies (we are the UAS), and Trunkline
//! calling an AI agent through two proxies (we are the UAC).

use super::Dialog;
use crate::message::SipMessage;

/// The request line of Five9's BYE to us.
pub(super) const BYE_LINE: &str = "BYE sip:trunkline@192.0.2.10:5060 SIP/2.0";
/// The Via sent-protocol and sent-by of our own requests.
pub(super) const LOCAL_VIA: &str = "SIP/2.0/UDP 192.0.2.10:5060";
/// The Contact we put in our 2xx.
pub(super) const LOCAL_CONTACT: &str = "<sip:trunkline@192.0.2.10:5060>";

/// G.711 offer, as Five9 sends it.
pub(super) const SDP: &str = "v=0\r\n\
    o=Five9 1714572202 1714572202 IN IP4 198.51.100.21\r\n\
    s=Five9\r\n\
    c=IN IP4 198.51.100.21\r\n\
    t=0 0\r\n\
    m=audio 20000 RTP/AVP 0 8 101\r\n\
    a=rtpmap:101 telephone-event/8000\r\n";

/// Five9's INVITE after two proxies (p2 nearest to us) added Via and
/// Record-Route; one Record-Route line holds a comma list.
pub(super) const FIVE9_INVITE: &str = "INVITE sip:18005550100@192.0.2.10:5060 SIP/2.0\r\n\
    Via: SIP/2.0/UDP 203.0.113.2:5060;branch=z9hG4bK-p2-1\r\n\
    Via: SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bK-p1-1\r\n\
    Via: SIP/2.0/UDP 198.51.100.20:5060;branch=z9hG4bK-five9-1;rport\r\n\
    Record-Route: <sip:203.0.113.2;lr>\r\n\
    Record-Route: <sip:203.0.113.1;lr>, <sip:edge.five9.example.com;lr;transport=udp>\r\n\
    Max-Forwards: 67\r\n\
    From: \"John Smith\" <sip:5550199@five9.example.com>;tag=f9-1\r\n\
    To: <sip:18005550100@trunkline.example.com>\r\n\
    Call-ID: 1-2345@198.51.100.20\r\n\
    CSeq: 1 INVITE\r\n\
    Contact: <sip:5550199@198.51.100.20:5060>\r\n\
    Supported: timer, replaces\r\n\
    Session-Expires: 1800;refresher=uac\r\n\
    Min-SE: 90\r\n\
    X-CallSessionID: 8F2A6C4E1B9D4F7A9C3E5B1D7F2A4C6E\r\n\
    Content-Type: application/sdp\r\n";

/// Our INVITE toward the agent, as our B2BUA leg built it.
pub(super) const AGENT_INVITE: &str = "INVITE sip:agent@agent.example.com SIP/2.0\r\n\
    Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-tl-1;rport\r\n\
    Max-Forwards: 70\r\n\
    From: <sip:trunkline@192.0.2.10>;tag=tl-uac\r\n\
    To: <sip:agent@agent.example.com>\r\n\
    Call-ID: tl-call-1@192.0.2.10\r\n\
    CSeq: 10 INVITE\r\n\
    Contact: <sip:trunkline@192.0.2.10:5060>\r\n\
    Supported: timer\r\n\
    Session-Expires: 1800\r\n\
    Min-SE: 90\r\n\
    Content-Type: application/sdp\r\n";

/// The agent's 180 (px2 is nearest the agent, so it is listed first).
pub(super) const AGENT_180: &str = "SIP/2.0 180 Ringing\r\n\
    Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-tl-1;rport=5060;received=192.0.2.10\r\n\
    Record-Route: <sip:px2.example.net;lr>, <sip:px1.example.net;lr>\r\n\
    From: <sip:trunkline@192.0.2.10>;tag=tl-uac\r\n\
    To: <sip:agent@agent.example.com>;tag=agent-1\r\n\
    Call-ID: tl-call-1@192.0.2.10\r\n\
    CSeq: 10 INVITE\r\n\
    Contact: <sip:agent@10.1.1.5:5070>\r\n";

/// The agent's 200, with a different Contact than its 180.
pub(super) const AGENT_200: &str = "SIP/2.0 200 OK\r\n\
    Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-tl-1;rport=5060;received=192.0.2.10\r\n\
    Record-Route: <sip:px2.example.net;lr>\r\n\
    Record-Route: <sip:px1.example.net;lr>\r\n\
    From: <sip:trunkline@192.0.2.10>;tag=tl-uac\r\n\
    To: <sip:agent@agent.example.com>;tag=agent-1\r\n\
    Call-ID: tl-call-1@192.0.2.10\r\n\
    CSeq: 10 INVITE\r\n\
    Contact: <sip:agent@10.1.1.5:5080;transport=udp>\r\n\
    Require: timer\r\n\
    Session-Expires: 1800;refresher=uas\r\n\
    Content-Type: application/sdp\r\n";

/// Parses a head (each line ending in CRLF, no Content-Length) plus body.
pub(super) fn message(head: &str, body: &str) -> SipMessage {
    let text = format!("{head}Content-Length: {}\r\n\r\n{body}", body.len());
    SipMessage::parse(text.as_bytes()).unwrap_or_else(|e| panic!("{e}:\n{text}"))
}

/// Five9's INVITE with its SDP.
pub(super) fn five9_invite() -> SipMessage {
    message(FIVE9_INVITE, SDP)
}

/// Our 200 to Five9's INVITE (local tag `tl-1`).
pub(super) fn five9_ok(invite: &SipMessage) -> SipMessage {
    invite
        .reply(200, None, Some("tl-1"))
        .and_then(|r| r.with_header("Contact", LOCAL_CONTACT))
        .and_then(|r| r.with_body("application/sdp", SDP.as_bytes().to_vec()))
        .expect("builds")
}

/// The confirmed dialog with Five9 (we are the UAS).
pub(super) fn uas_dialog() -> Dialog {
    let invite = five9_invite();
    Dialog::uas(&invite, &five9_ok(&invite), LOCAL_VIA).expect("dialog")
}

/// The confirmed dialog with the agent (we are the UAC).
pub(super) fn uac_dialog() -> Dialog {
    let invite = message(AGENT_INVITE, SDP);
    Dialog::uac(&invite, &message(AGENT_200, SDP)).expect("dialog")
}

/// A request from the peer in a dialog, e.g. Five9's BYE or re-INVITE.
/// `head` is the request line; Via/From/To/Call-ID/CSeq follow Five9's
/// dialog with us (local tag `tl-1`).
pub(super) fn from_five9(request_line: &str, cseq: u32, extra: &str, body: &str) -> SipMessage {
    let method = request_line.split(' ').next().unwrap_or_default();
    let head = format!(
        "{request_line}\r\n\
         Via: SIP/2.0/UDP 203.0.113.2:5060;branch=z9hG4bK-p2-{cseq}{method}\r\n\
         Via: SIP/2.0/UDP 198.51.100.20:5060;branch=z9hG4bK-five9-{cseq}{method}\r\n\
         Max-Forwards: 69\r\n\
         From: \"John Smith\" <sip:5550199@five9.example.com>;tag=f9-1\r\n\
         To: <sip:18005550100@trunkline.example.com>;tag=tl-1\r\n\
         Call-ID: 1-2345@198.51.100.20\r\n\
         CSeq: {cseq} {method}\r\n\
         {extra}"
    );
    message(&head, body)
}

/// The text of a header line as printed, for order checks.
pub(super) fn lines(msg: &SipMessage) -> Vec<String> {
    String::from_utf8_lossy(&msg.to_bytes())
        .split("\r\n")
        .map(str::to_string)
        .collect()
}
