//! The inbound leg against a scripted caller, on a simulated clock.

use std::time::Duration;

use super::*;

const T1: Duration = Duration::from_millis(500);

fn invite() -> SipMessage {
    SipMessage::request(Method::Invite, "sip:18005550100@192.0.2.1:5060")
        .and_then(|m| m.with_header("Via", "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKf9a"))
        .and_then(|m| m.with_header("From", "<sip:+15557654321@192.0.2.10>;tag=five9"))
        .and_then(|m| m.with_header("To", "<sip:18005550100@192.0.2.1>"))
        .and_then(|m| m.with_header("Call-ID", "in-1@192.0.2.10"))
        .and_then(|m| m.with_header("CSeq", "10 INVITE"))
        .and_then(|m| m.with_header("Contact", "<sip:five9@192.0.2.10:5060>"))
        .and_then(|m| m.with_header("Max-Forwards", "70"))
        .and_then(|m| m.with_body("application/sdp", b"v=0\r\n".to_vec()))
        .expect("valid INVITE")
}

fn leg(reliability: Reliability) -> InboundLeg {
    InboundLeg::new(
        invite(),
        InboundConfig {
            timers: Timers::default(),
            reliability,
            local_via: "SIP/2.0/UDP 192.0.2.1:5060".into(),
            contact: "<sip:trunkline@192.0.2.1:5060>".into(),
        },
    )
    .expect("an INVITE")
}

fn drain(leg: &mut InboundLeg) -> Vec<InboundAction> {
    std::iter::from_fn(|| leg.poll_action()).collect()
}

fn responses(actions: &[InboundAction]) -> Vec<(u16, SipMessage)> {
    actions
        .iter()
        .filter_map(|a| match a {
            InboundAction::Respond { status, response } => Some((*status, response.clone())),
            _ => None,
        })
        .collect()
}

fn bye(actions: &[InboundAction]) -> Option<(TransactionKey, SipMessage)> {
    actions.iter().find_map(|a| match a {
        InboundAction::StartRequest { tx, request } if request.method() == Some(&Method::Bye) => {
            Some((tx.clone(), request.clone()))
        }
        _ => None,
    })
}

/// Runs the 2xx schedule on the fake clock, firing exactly when due;
/// returns the retransmission times (ms after the 2xx) and the actions at
/// the end.
fn run_schedule(leg: &mut InboundLeg, t0: Instant) -> (Vec<u64>, Vec<InboundAction>) {
    let mut resent = Vec::new();
    let mut last = Vec::new();
    for _ in 0..100 {
        let Some(at) = leg.poll_timeout() else { break };
        leg.handle_timeout(at);
        last = drain(leg);
        if last
            .iter()
            .any(|a| matches!(a, InboundAction::Retransmit(_)))
        {
            resent.push((at - t0).as_millis() as u64);
        }
    }
    (resent, last)
}

#[test]
fn ringing_then_answer_then_ack_confirms_the_dialog() {
    let mut leg = leg(Reliability::Unreliable);
    leg.progress(180, None).unwrap();
    let ringing = responses(&drain(&mut leg));
    assert_eq!(ringing[0].0, 180);
    assert_eq!(ringing[0].1.to().unwrap().tag(), Some(leg.tag()));
    assert_eq!(leg.state(), InboundState::Early);

    let t0 = Instant::now();
    leg.answer(t0, b"v=0\r\nanswer\r\n", None).unwrap();
    let actions = drain(&mut leg);
    assert!(matches!(actions[0], InboundAction::DialogUp(_)));
    let (status, ok) = responses(&actions).remove(0);
    assert_eq!(status, 200);
    assert_eq!(
        ok.to().unwrap().tag(),
        Some(leg.tag()),
        "one tag on every response"
    );
    assert_eq!(ok.header("Contact"), Some("<sip:trunkline@192.0.2.1:5060>"));
    assert_eq!(ok.body(), b"v=0\r\nanswer\r\n");
    assert_eq!(leg.state(), InboundState::AwaitingAck);
    assert_eq!(leg.poll_timeout(), Some(t0 + T1));

    leg.handle(t0, InboundInput::Ack);
    assert_eq!(drain(&mut leg), vec![InboundAction::Acked]);
    assert_eq!(leg.state(), InboundState::Confirmed);
    assert_eq!(leg.poll_timeout(), None, "no more retransmissions");
}

#[test]
fn our_2xx_is_resent_over_udp_until_64_t1_then_a_bye_ends_the_session() {
    let mut leg = leg(Reliability::Unreliable);
    let t0 = Instant::now();
    leg.answer(t0, b"v=0\r\n", None).unwrap();
    drain(&mut leg);
    let (resent, last) = run_schedule(&mut leg, t0);
    assert_eq!(
        resent,
        [
            500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500
        ],
        "T1, doubling to T2 (§13.3.1.4)"
    );
    assert_eq!(
        last,
        [InboundAction::AckTimedOut],
        "the owner decides the BYE's headers"
    );
    leg.hang_up(&[("X-Disposition", "error")]);
    let actions = drain(&mut leg);
    assert_eq!(actions[0], InboundAction::Ended { by_peer: false });
    let (bye_tx, bye) = bye(&actions).expect("a BYE at once");
    assert_eq!(bye.header("X-Disposition"), Some("error"));
    assert_eq!(bye.to().unwrap().tag(), Some("five9"));
    assert_eq!(leg.state(), InboundState::Ending);
    leg.handle(
        t0,
        InboundInput::Response {
            tx: &bye_tx,
            status: 200,
        },
    );
    assert_eq!(drain(&mut leg), vec![InboundAction::Finished]);
}

#[test]
fn over_tcp_nothing_is_resent_but_the_wait_still_ends() {
    let mut leg = leg(Reliability::Reliable);
    let t0 = Instant::now();
    leg.answer(t0, b"v=0\r\n", None).unwrap();
    drain(&mut leg);
    let (resent, last) = run_schedule(&mut leg, t0);
    assert!(resent.is_empty());
    assert_eq!(last, [InboundAction::AckTimedOut]);
    leg.hang_up(&[]);
    assert!(
        bye(&drain(&mut leg)).is_some(),
        "the caller that never ACKs is hung up on"
    );
}

#[test]
fn a_hang_up_before_the_ack_waits_for_it() {
    let mut leg = leg(Reliability::Unreliable);
    let t0 = Instant::now();
    leg.answer(t0, b"v=0\r\n", None).unwrap();
    drain(&mut leg);
    leg.hang_up(&[("X-Disposition", "contained")]);
    assert!(drain(&mut leg).is_empty(), "§15: no BYE before the ACK");
    leg.handle(t0 + T1, InboundInput::Ack);
    let actions = drain(&mut leg);
    assert_eq!(actions[0], InboundAction::Acked);
    assert_eq!(actions[1], InboundAction::Ended { by_peer: false });
    let (_, bye) = bye(&actions).expect("the BYE once ACKed");
    assert_eq!(bye.header("X-Disposition"), Some("contained"));
}

#[test]
fn a_held_hang_up_goes_out_when_the_ack_never_comes() {
    let mut leg = leg(Reliability::Unreliable);
    let t0 = Instant::now();
    leg.answer(t0, b"v=0\r\n", None).unwrap();
    drain(&mut leg);
    leg.hang_up(&[("X-Disposition", "contained")]);
    let (_, last) = run_schedule(&mut leg, t0);
    let (_, bye) = bye(&last).expect("a BYE at 64*T1");
    assert_eq!(bye.header("X-Disposition"), Some("contained"));
    let ended = last
        .iter()
        .filter(|a| matches!(a, InboundAction::Ended { .. }))
        .count();
    assert_eq!(ended, 1, "one end report");
}

#[test]
fn a_cancel_before_the_answer_gets_487_after_it_nothing() {
    let mut leg = leg(Reliability::Unreliable);
    leg.progress(180, None).unwrap();
    drain(&mut leg);
    leg.handle(Instant::now(), InboundInput::Cancel);
    let actions = drain(&mut leg);
    assert_eq!(responses(&actions)[0].0, 487);
    assert_eq!(
        &actions[1..],
        [InboundAction::Cancelled, InboundAction::Finished]
    );
    leg.answer(Instant::now(), b"v=0\r\n", None).unwrap();
    assert!(drain(&mut leg).is_empty(), "no 2xx after the 487");

    let mut leg = self::leg(Reliability::Unreliable);
    leg.answer(Instant::now(), b"v=0\r\n", None).unwrap();
    drain(&mut leg);
    leg.handle(Instant::now(), InboundInput::Cancel);
    assert!(drain(&mut leg).is_empty(), "§9.2: the 2xx stands");
    assert_eq!(leg.state(), InboundState::AwaitingAck);
}

#[test]
fn the_callers_bye_ends_the_leg_even_before_its_ack() {
    let mut leg = leg(Reliability::Unreliable);
    let t0 = Instant::now();
    leg.answer(t0, b"v=0\r\n", None).unwrap();
    drain(&mut leg);
    leg.handle(t0, InboundInput::PeerBye);
    assert_eq!(
        drain(&mut leg),
        vec![
            InboundAction::Ended { by_peer: true },
            InboundAction::Finished
        ]
    );
    assert_eq!(leg.poll_timeout(), None, "the 2xx is no longer resent");
}

#[test]
fn a_rejection_is_one_final_response() {
    let mut leg = leg(Reliability::Unreliable);
    leg.reject(486, &[("Retry-After", "30")]).unwrap();
    let actions = drain(&mut leg);
    let (status, response) = responses(&actions).remove(0);
    assert_eq!(status, 486);
    assert_eq!(response.header("Retry-After"), Some("30"));
    assert_eq!(
        &actions[1..],
        [InboundAction::Rejected(486), InboundAction::Finished]
    );
    leg.reject(500, &[]).unwrap();
    assert!(drain(&mut leg).is_empty());

    let mut leg = self::leg(Reliability::Unreliable);
    leg.reject(200, &[]).unwrap();
    assert_eq!(
        responses(&drain(&mut leg))[0].0,
        500,
        "a 2xx is not a rejection"
    );
}

#[test]
fn a_bye_that_times_out_finishes_the_leg() {
    let mut leg = leg(Reliability::Unreliable);
    let t0 = Instant::now();
    leg.answer(t0, b"v=0\r\n", None).unwrap();
    leg.handle(t0, InboundInput::Ack);
    drain(&mut leg);
    leg.hang_up(&[]);
    let (tx, _) = bye(&drain(&mut leg)).expect("a BYE");
    leg.handle(t0 + T1 * 64, InboundInput::Timeout(&tx));
    assert_eq!(drain(&mut leg), vec![InboundAction::Finished]);
}

#[test]
fn a_reinvites_2xx_is_resent_until_its_ack() {
    let mut leg = leg(Reliability::Unreliable);
    let t0 = Instant::now();
    leg.answer(t0, b"v=0\r\n", None).unwrap();
    leg.handle(t0, InboundInput::Ack);
    drain(&mut leg);
    let reinvite_ok = invite().reply(200, None, Some(leg.tag())).unwrap();
    leg.reinvite_answered(t0, reinvite_ok.clone());
    assert_eq!(leg.poll_timeout(), Some(t0 + T1));
    leg.handle_timeout(t0 + T1);
    assert_eq!(
        drain(&mut leg),
        vec![InboundAction::Retransmit(reinvite_ok.clone())]
    );
    leg.handle(t0 + T1, InboundInput::Ack);
    assert_eq!(leg.poll_timeout(), None);

    // Never ACKed: the owner is told, the leg stays confirmed.
    leg.reinvite_answered(t0, reinvite_ok);
    let (_, last) = run_schedule(&mut leg, t0);
    assert_eq!(last, [InboundAction::AckTimedOut]);
    assert_eq!(leg.state(), InboundState::Confirmed);
}
