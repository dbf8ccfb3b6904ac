//! The call legs (`trunkline_sip::leg`) under any sequence of what peers
//! and timers can hand them: responses of every status, with or without a
//! To tag, Contact or SDP, challenges of any text, forks, late 2xx,
//! timeouts, transport errors, hang-ups, BYEs and ACKs, at any time steps.
//!
//! What must hold, whatever comes: one end report at most, `Finished` at
//! most once and nothing after it but the ACK of a retransmitted 2xx; an
//! answer only before the end; a CANCEL
//! only on the INVITE in flight and only after it had a provisional; each
//! input asks for a bounded number of actions; and a due timer, once
//! handled, is not due again at the same instant (no busy loop), nor
//! pending once the leg has finished.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use trunkline_fuzz::Input;
use trunkline_sip::auth::{DigestClient, Secret};
use trunkline_sip::leg::{
    InboundAction, InboundConfig, InboundInput, InboundLeg, InviteRequest, OutboundAction,
    OutboundConfig, OutboundInput, OutboundLeg,
};
use trunkline_sip::message::{Method, SipMessage};
use trunkline_sip::transaction::{Reliability, Timers, TransactionKey};

/// Most inputs per run.
const STEPS: usize = 64;
/// Most actions one input may ask for.
const MAX_ACTIONS: usize = 8;

const SDP: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\n\
                   t=0 0\r\nm=audio 4000 RTP/AVP 0 101\r\n";

fn timers(input: &mut Input) -> Timers {
    Timers {
        t1: Duration::from_millis(u64::from(input.byte() % 50) * 10 + 1),
        ..Timers::default()
    }
}

fn reliability(input: &mut Input) -> Reliability {
    if input.bool() {
        Reliability::Reliable
    } else {
        Reliability::Unreliable
    }
}

/// The peer's response to `request`: `status`, a To tag from a few, maybe
/// a Contact, maybe SDP, maybe challenge lines of the fuzzer's text.
fn response(input: &mut Input, request: &SipMessage, status: u16) -> Option<SipMessage> {
    let tag = ["a", "b", "c"][input.below(3)];
    let tag = (status > 100 && input.byte() % 8 != 0).then_some(tag);
    let mut msg = request.reply(status, None, tag).ok()?;
    if input.byte() % 4 != 0 {
        let _ = msg.push_header("Contact", "<sip:peer@192.0.2.10:5060>");
    }
    if matches!(status, 401 | 407) {
        let name = if status == 401 {
            "WWW-Authenticate"
        } else {
            "Proxy-Authenticate"
        };
        let value = if input.bool() {
            format!(
                "Digest realm=\"r\", nonce=\"{}\", qop=\"auth\"{}",
                input.byte(),
                if input.bool() { ", stale=true" } else { "" }
            )
        } else {
            input.string(200)
        };
        let _ = msg.push_header(name, &value);
    }
    if input.bool() {
        msg = msg
            .with_body("application/sdp", SDP.as_bytes().to_vec())
            .ok()?;
    }
    Some(msg)
}

fn status(input: &mut Input) -> u16 {
    match input.below(8) {
        0 => 100,
        1 => 180,
        2 => 183,
        3 => 200,
        4 => [401, 407][input.below(2)],
        5 => [403, 486, 487, 408, 480, 503, 603][input.below(7)],
        _ => 100 + input.u16() % 600,
    }
}

/// What the harness knows of the outbound leg's transactions.
#[derive(Default)]
struct Out {
    invite: Option<(TransactionKey, SipMessage)>,
    /// Whether the INVITE in flight had a provisional.
    provisional: bool,
    others: Vec<(TransactionKey, SipMessage)>,
    answered: bool,
    ended: bool,
    finished: bool,
    /// A 2xx of ours that was seen, for late copies.
    last_2xx: Option<SipMessage>,
}

impl Out {
    fn take(&mut self, leg: &mut OutboundLeg) {
        let mut n = 0;
        while let Some(action) = leg.poll_action() {
            n += 1;
            assert!(n <= MAX_ACTIONS, "too many actions for one input");
            // A retransmitted 2xx still gets its ACK after Finished.
            assert!(
                !self.finished || matches!(action, OutboundAction::SendAck(_)),
                "{action:?} after Finished"
            );
            match action {
                OutboundAction::StartInvite { tx, request } => {
                    assert_eq!(request.method(), Some(&Method::Invite));
                    self.invite = Some((tx, (*request).clone()));
                    self.provisional = false;
                }
                OutboundAction::StartRequest { tx, request } => {
                    if request.method() == Some(&Method::Cancel) {
                        let (invite_tx, _) = self.invite.as_ref().expect("an INVITE");
                        assert_eq!(
                            tx.branch(),
                            invite_tx.branch(),
                            "CANCEL the INVITE in flight"
                        );
                        assert!(self.provisional, "§9.1: CANCEL after a provisional");
                    }
                    if self.others.len() < 16 {
                        self.others.push((tx, request));
                    }
                }
                OutboundAction::Answered { .. } => {
                    assert!(!self.answered && !self.ended, "one answer, before the end");
                    self.answered = true;
                }
                OutboundAction::Failed { .. } | OutboundAction::Cancelled => {
                    assert!(!self.ended, "one end report");
                    assert!(!self.answered, "no failure after the answer");
                    self.ended = true;
                }
                OutboundAction::Ended { .. } => {
                    assert!(!self.ended, "one end report");
                    assert!(self.answered, "Ended follows Answered");
                    self.ended = true;
                }
                OutboundAction::Finished => self.finished = true,
                OutboundAction::SendAck(ack) => assert_eq!(ack.method(), Some(&Method::Ack)),
                OutboundAction::Retransmit(_)
                | OutboundAction::AckTimedOut
                | OutboundAction::Abandon(_)
                | OutboundAction::Progress { .. } => {}
            }
        }
        if self.finished {
            assert_eq!(leg.poll_timeout(), None, "no timer once finished");
        }
    }
}

fn outbound(input: &mut Input) {
    let t0 = Instant::now();
    let mut now = t0;
    let config = OutboundConfig {
        ring_timeout: Duration::from_millis(u64::from(input.u16()) + 1),
        timers: timers(input),
        reliability: reliability(input),
    };
    let invite = InviteRequest {
        request_uri: "sip:+14155550100@192.0.2.10:5060".into(),
        to: "sip:+14155550100@192.0.2.10:5060".into(),
        from_user: "+18005550100".into(),
        from_host: "192.0.2.1".into(),
        call_id: "fuzz@192.0.2.1".into(),
        via: "SIP/2.0/UDP 192.0.2.1:5060".into(),
        contact: "<sip:trunkline@192.0.2.1:5060>".into(),
        sdp: Some(SDP.as_bytes().to_vec()),
        ..InviteRequest::default()
    }
    .build()
    .expect("builds");
    let digest = input
        .bool()
        .then(|| DigestClient::new("u", Secret::password("p")));
    let mut leg = OutboundLeg::new(now, invite, &config, digest).expect("an INVITE");
    let mut seen = Out::default();
    seen.take(&mut leg);
    for _ in 0..STEPS {
        if input.is_empty() {
            break;
        }
        match input.below(9) {
            0 | 1 | 2 => {
                let Some((tx, request)) = seen.invite.clone() else {
                    continue;
                };
                let status = status(input);
                let Some(r) = response(input, &request, status) else {
                    continue;
                };
                if status < 200 {
                    seen.provisional = true;
                }
                if (200..300).contains(&status) {
                    seen.last_2xx = Some(r.clone());
                }
                leg.handle(
                    now,
                    OutboundInput::Response {
                        tx: &tx,
                        status,
                        response: &r,
                    },
                );
            }
            3 => {
                let Some((tx, request)) = seen.others.get(input.below(16)).cloned() else {
                    continue;
                };
                let status = status(input);
                if let Some(r) = response(input, &request, status) {
                    leg.handle(
                        now,
                        OutboundInput::Response {
                            tx: &tx,
                            status,
                            response: &r,
                        },
                    );
                }
            }
            4 => {
                let tx = match (input.bool(), &seen.invite, seen.others.first()) {
                    (true, Some((tx, _)), _) | (false, _, Some((tx, _))) => tx.clone(),
                    _ => continue,
                };
                if input.bool() {
                    leg.handle(now, OutboundInput::Timeout(&tx));
                } else {
                    leg.handle(now, OutboundInput::TransportError(&tx));
                }
            }
            5 => leg.handle(now, OutboundInput::HangUp(&[("X-Outcome", "fuzz")])),
            6 => match input.below(3) {
                0 => leg.handle(now, OutboundInput::PeerBye),
                1 => leg.handle(now, OutboundInput::Ack),
                _ => {
                    if let Some(r) = seen.last_2xx.clone() {
                        leg.handle(now, OutboundInput::Late2xx(&r));
                    }
                }
            },
            7 => {
                if let Ok(ok) = SipMessage::response(200, None) {
                    leg.reinvite_answered(now, ok);
                }
            }
            _ => {
                now += Duration::from_millis(u64::from(input.u16()));
                let due = leg.poll_timeout().is_some_and(|at| at <= now);
                leg.handle_timeout(now);
                seen.take(&mut leg);
                if due {
                    assert!(
                        leg.poll_timeout().is_none_or(|at| at > now),
                        "a handled timer is due again at once"
                    );
                }
                continue;
            }
        }
        seen.take(&mut leg);
    }
}

fn inbound(input: &mut Input) {
    let t0 = Instant::now();
    let mut now = t0;
    let invite = SipMessage::request(Method::Invite, "sip:+18005550100@192.0.2.1:5060")
        .and_then(|m| m.with_header("Via", "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKf"))
        .and_then(|m| m.with_header("From", "<sip:+14155550123@192.0.2.10>;tag=f9"))
        .and_then(|m| m.with_header("To", "<sip:+18005550100@192.0.2.1>"))
        .and_then(|m| m.with_header("Call-ID", "in@192.0.2.10"))
        .and_then(|m| m.with_header("CSeq", "1 INVITE"))
        .and_then(|m| m.with_header("Contact", "<sip:five9@192.0.2.10:5060>"))
        .and_then(|m| m.with_body("application/sdp", SDP.as_bytes().to_vec()))
        .expect("an INVITE");
    let config = InboundConfig {
        timers: timers(input),
        reliability: reliability(input),
        local_via: "SIP/2.0/UDP 192.0.2.1:5060".into(),
        contact: "<sip:trunkline@192.0.2.1:5060>".into(),
    };
    let mut leg = InboundLeg::new(invite, config).expect("an INVITE");
    let (mut ended, mut finished, mut finals, mut byes) = (false, false, 0, Vec::new());
    for _ in 0..STEPS {
        if input.is_empty() {
            break;
        }
        match input.below(8) {
            0 => {
                let status = 101 + input.u16() % 99;
                let sdp = input.bool().then_some(SDP.as_bytes());
                let _ = leg.progress(status, sdp);
            }
            1 => {
                let _ = leg.answer(now, SDP.as_bytes(), None);
            }
            2 => {
                let _ = leg.reject(input.u16() % 800, &[]);
            }
            3 => leg.hang_up(&[("X-Outcome", "fuzz")]),
            4 => match input.below(3) {
                0 => leg.handle(now, InboundInput::Ack),
                1 => leg.handle(now, InboundInput::Cancel),
                _ => leg.handle(now, InboundInput::PeerBye),
            },
            5 => {
                let Some(tx) = byes.first().cloned() else {
                    continue;
                };
                match input.below(3) {
                    0 => leg.handle(
                        now,
                        InboundInput::Response {
                            tx: &tx,
                            status: status(input),
                        },
                    ),
                    1 => leg.handle(now, InboundInput::Timeout(&tx)),
                    _ => leg.handle(now, InboundInput::TransportError(&tx)),
                }
            }
            6 => {
                if let Ok(ok) = SipMessage::response(200, None) {
                    leg.reinvite_answered(now, ok);
                }
            }
            _ => {
                now += Duration::from_millis(u64::from(input.u16()));
                let due = leg.poll_timeout().is_some_and(|at| at <= now);
                leg.handle_timeout(now);
                if due {
                    assert!(
                        leg.poll_timeout().is_none_or(|at| at > now),
                        "a handled timer is due again at once"
                    );
                }
            }
        }
        let mut n = 0;
        while let Some(action) = leg.poll_action() {
            n += 1;
            assert!(n <= MAX_ACTIONS, "too many actions for one input");
            assert!(!finished, "{action:?} after Finished");
            match action {
                InboundAction::Respond { status, .. } if status >= 200 => {
                    finals += 1;
                    assert_eq!(finals, 1, "one final response to the INVITE");
                }
                InboundAction::StartRequest { tx, request } => {
                    assert_eq!(request.method(), Some(&Method::Bye));
                    byes.push(tx);
                    assert!(byes.len() <= 1, "one BYE");
                }
                InboundAction::Cancelled
                | InboundAction::Rejected(_)
                | InboundAction::Ended { .. } => {
                    assert!(!ended, "one end report");
                    ended = true;
                }
                InboundAction::Finished => finished = true,
                _ => {}
            }
        }
        if finished {
            assert_eq!(leg.poll_timeout(), None, "no timer once finished");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    if input.bool() {
        outbound(&mut input);
    } else {
        inbound(&mut input);
    }
});
