//! SIP dialogs (RFC 3261 §12-§15), session timers (RFC 4028) and REFER
//! (RFC 3515), free of I/O: no sockets, no clocks (time comes in as
//! `now: Instant`), no randomness beyond the crate's tag generator.
//!
//! The B2BUA holds one [`Dialog`] per leg: the UAS side toward Five9, the
//! UAC side toward a SIP agent. It files them under [`DialogId`]s, hands
//! every in-dialog request to [`Dialog::on_request`] and every response to
//! [`Dialog::handle_response`], and builds what goes out with the request
//! builders, the X- headers for Five9 included.
//!
//! # Layout
//! - `id`: [`DialogId`] and reading it off a received or sent message.
//! - `state`: [`Dialog`] and its creation on either side.
//! - `response`: responses to our requests ([`ResponseEffect`]: ACK needed,
//!   481/408 ends the dialog, 491 retry delay).
//! - `request`: in-dialog requests (BYE, re-INVITE, INFO, UPDATE, ...) and
//!   the ACK for a 2xx.
//! - `cancel`: [`cancel`](fn@cancel) and [`ack_for_failure`], built from the INVITE.
//! - `uas`: requests from the peer ([`Incoming`]).
//! - `answer`: our answers ([`Dialog::answer`]), 481 for unknown dialogs,
//!   OPTIONS.
//! - `refer`: REFER, NOTIFY progress (`message/sipfrag`).
//! - `peer`: who may send in a dialog ([`check_source`]), which offers
//!   need credentials again ([`needs_reauth`]), a log budget for refusals.
//! - `session_expires`: RFC 4028 headers (Session-Expires, Min-SE, `timer`).
//! - `negotiate`: RFC 4028 negotiation as UAS (422, refresher) and as UAC.
//! - `session_timer`: [`SessionTimer`], when to refresh and when to give up.
//! - `error`: [`DialogError`], with the status each maps to.
//!
//! # Choices the RFCs leave open
//! - A UAS dialog numbers its own requests from 1.
//! - The remote target changes on the 2xx of a target refresh (RFC 6141),
//!   not on the request, so a refused re-INVITE leaves it alone.
//! - Tags compare case-insensitively (tokens, §7.3.1), Call-IDs exactly.
//! - As UAS we insert a session timer when the caller asked for none
//!   ([`TimerConfig::session_expires`]), so a caller that vanished without
//!   BYE is noticed within the interval.

mod answer;
mod cancel;
mod error;
mod id;
mod negotiate;
mod peer;
mod refer;
mod request;
mod response;
mod session_expires;
mod session_timer;
mod state;
mod uas;

#[cfg(test)]
mod testing;

pub use answer::{ACCEPT, ALLOW, SUPPORTED, answer_options, reject_unknown_dialog};
pub use cancel::{ack_for_failure, cancel};
pub use error::DialogError;
pub use id::DialogId;
pub use negotiate::{
    Negotiated, TimerConfig, UasTimer, interval_too_small, negotiate_uac, negotiate_uas,
    retry_after_422,
};
pub use peer::{
    DialogPeer, MAX_PEER_ADDRESSES, SourceVerdict, check_source, moves_media, needs_reauth,
};
pub use refer::{ReferProgress, SIPFRAG, parse_sipfrag};
pub use request::Body;
pub use response::ResponseEffect;
pub use session_expires::{
    DEFAULT_SESSION_EXPIRES, MIN_SE_FLOOR, Refresher, SessionExpires, add_timer_headers, min_se,
    supports_timer,
};
pub use session_timer::{SessionTimer, TimerEvent};
pub use state::{Dialog, DialogState, Role};
pub use uas::Incoming;

#[cfg(test)]
mod tests {
    //! Whole calls, both legs, as SIPp would run them.
    use super::testing::*;
    use super::*;
    use crate::message::Method;
    use std::time::{Duration, Instant};

    #[test]
    fn five9_call_ends_with_our_bye_and_x_headers() {
        let t0 = Instant::now();
        let invite = five9_invite();
        let UasTimer::Run(timer) = negotiate_uas(&invite, &TimerConfig::default()).expect("reads")
        else {
            panic!("Five9 asked for a timer")
        };
        let mut ok = five9_ok(&invite);
        timer.apply(&mut ok).expect("applies");
        let mut dialog = Dialog::uas(&invite, &ok, LOCAL_VIA).expect("dialog");
        let mut session = SessionTimer::new(t0, &timer);
        assert!(!session.local_refreshes(), "Five9 refreshes");

        let ack = from_five9("ACK sip:trunkline@192.0.2.10:5060 SIP/2.0", 1, "", "");
        assert_eq!(dialog.on_request(&ack), Ok(Incoming::Ack));

        // Five9 refreshes at half the interval with a re-INVITE.
        let refresh = from_five9(
            "INVITE sip:trunkline@192.0.2.10:5060 SIP/2.0",
            2,
            "Supported: timer\r\nSession-Expires: 1800;refresher=uac\r\nContact: <sip:5550199@198.51.100.20:5060>\r\nContent-Type: application/sdp\r\n",
            SDP,
        );
        assert_eq!(dialog.on_request(&refresh), Ok(Incoming::Reinvite));
        let UasTimer::Run(again) = negotiate_uas(&refresh, &TimerConfig::default()).expect("reads")
        else {
            panic!("refresh keeps the timer")
        };
        let mut refreshed = dialog
            .answer(&refresh, 200, Some(("application/sdp", SDP.as_bytes())))
            .expect("builds");
        again.apply(&mut refreshed).expect("applies");
        session.refreshed(t0 + Duration::from_secs(900), &again);
        assert_eq!(
            session.poll_timeout(),
            Some(t0 + Duration::from_secs(900 + 1768))
        );

        // The policy concluded: BYE toward Five9 with its X- headers.
        let bye = dialog
            .bye(&[("X-contained", "true"), ("X-destination", "none")])
            .expect("builds");
        session.stop();
        let text = String::from_utf8(bye.to_bytes()).expect("utf-8");
        assert!(
            text.starts_with("BYE sip:5550199@198.51.100.20:5060 SIP/2.0\r\n"),
            "{text}"
        );
        assert!(
            text.contains("CSeq: 1 BYE\r\nX-contained: true\r\nX-destination: none\r\nContent-Length: 0\r\n\r\n"),
            "{text}"
        );
        let bye_ok = bye.reply(200, None, None).expect("Five9's 200");
        assert_eq!(dialog.handle_response(&bye_ok), Ok(ResponseEffect::None));
        assert_eq!(dialog.state(), DialogState::Terminated);
    }

    #[test]
    fn agent_call_ends_with_its_bye() {
        let invite = message(AGENT_INVITE, SDP);
        let mut dialog = Dialog::uac(&invite, &message(AGENT_180, "")).expect("early");
        let ok = message(AGENT_200, SDP);
        assert_eq!(dialog.handle_response(&ok), Ok(ResponseEffect::SendAck));
        let ack = dialog.ack(&ok, None).expect("builds");
        assert_eq!(ack.header("CSeq"), Some("10 ACK"));
        let negotiated = negotiate_uac(&ok).expect("reads").expect("timer");
        assert!(!negotiated.local_refreshes, "the agent (UAS) refreshes");

        // The agent hangs up through the proxies, with its outcome headers.
        let bye = message(
            "BYE sip:trunkline@192.0.2.10:5060 SIP/2.0\r\n\
             Via: SIP/2.0/UDP px1.example.net;branch=z9hG4bK-px1-b\r\n\
             Via: SIP/2.0/UDP 10.1.1.5:5080;branch=z9hG4bK-agent-b\r\n\
             From: <sip:agent@agent.example.com>;tag=agent-1\r\n\
             To: <sip:trunkline@192.0.2.10>;tag=tl-uac\r\n\
             Call-ID: tl-call-1@192.0.2.10\r\n\
             CSeq: 1 BYE\r\n\
             X-RouteReason: resolved\r\n",
            "",
        );
        assert_eq!(DialogId::of_received(&bye).as_ref(), Some(dialog.id()));
        let Ok(Incoming::Bye(reply)) = dialog.on_request(&bye) else {
            panic!("not a BYE")
        };
        assert_eq!(reply.status_code(), Some(200));
        assert_eq!(dialog.state(), DialogState::Terminated);
        assert_eq!(
            dialog.request(Method::Info, None, &[]).err(),
            Some(DialogError::Terminated)
        );
        // A late 2xx retransmission is still ACKed after the BYE.
        assert_eq!(dialog.handle_response(&ok), Ok(ResponseEffect::SendAck));
        assert!(dialog.ack(&ok, None).is_ok());
    }
}
