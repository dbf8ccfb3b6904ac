//! A UAS written here (Five9's SBC without a challenge, an agent, a
//! transfer target): answers the gateway's INVITE with one codec, RTP at
//! its own socket.

use std::net::SocketAddr;
use std::time::Duration;

use super::rtp::{PCMU, RtpPeer};
use super::sip_text::{Msg, UdpPeer, reply_to};
use super::sipp::loopback;

/// A UAS written here (Five9's SBC without a challenge, or the agent):
/// answers the gateway's INVITE with one codec, RTP at its own socket.
pub struct Uas {
    /// Its SIP socket.
    pub sip: UdpPeer,
    /// Its RTP socket.
    pub rtp: RtpPeer,
}

impl Uas {
    /// On a fresh loopback address, talking to the gateway at `gw`.
    pub fn new(gw: SocketAddr) -> Uas {
        Uas::at(loopback(), gw)
    }

    /// On `me` (a trunk's address), talking to the gateway at `gw`.
    pub fn at(me: SocketAddr, gw: SocketAddr) -> Uas {
        let sock = std::net::UdpSocket::bind(me).expect("binding a UAS");
        Uas {
            sip: UdpPeer { sock, me, gw },
            rtp: RtpPeer::bind(),
        }
    }

    /// Answers the next INVITE with `pt` (PCMU or PCMA) and waits for the
    /// ACK; returns the INVITE.
    pub fn answer(&self, pt: u8) -> Msg {
        let invite = self
            .sip
            .wait_for_msg("the gateway's INVITE", Duration::from_secs(10), |m| {
                m.method() == Some("INVITE")
            });
        let name = if pt == PCMU { "PCMU" } else { "PCMA" };
        let ip = self.rtp.addr.ip();
        let body = format!(
            "v=0\r\no=uas 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
             m=audio {} RTP/AVP {pt} 101\r\na=rtpmap:{pt} {name}/8000\r\n\
             a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=sendrecv\r\n",
            self.rtp.addr.port()
        );
        let extra = format!(
            "Contact: <sip:uas@{}>\r\nContent-Type: application/sdp\r\n",
            self.sip.me
        );
        self.sip
            .send(&reply_to(&invite, "200 OK", Some("uas"), &extra, &body));
        self.sip
            .wait_for_msg("the ACK", Duration::from_secs(5), |m| {
                m.method() == Some("ACK")
            });
        invite
    }

    /// Answers the gateway's BYE; returns it.
    pub fn take_bye(&self) -> Msg {
        let bye = self
            .sip
            .wait_for_msg("the gateway's BYE", Duration::from_secs(10), |m| {
                m.method() == Some("BYE")
            });
        self.sip.send(&reply_to(&bye, "200 OK", None, "", ""));
        bye
    }
}
