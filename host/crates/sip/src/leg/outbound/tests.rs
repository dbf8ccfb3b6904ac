//! The outbound leg against a scripted peer, on a simulated clock: each
//! test plays the responses a trunk or SBC sends and checks what the leg
//! asks for and reports.

use super::*;
use crate::auth::test_support::{PASSWORD, REALM, T0, USER, at, trunk};
use crate::auth::{DigestConfig, Secret, Verification};
use crate::leg::InviteRequest;

const RING: Duration = Duration::from_secs(30);
const T1: Duration = Duration::from_millis(500);

fn config() -> OutboundConfig {
    OutboundConfig {
        ring_timeout: RING,
        timers: Timers::default(),
        reliability: Reliability::Unreliable,
    }
}

fn invite() -> SipMessage {
    InviteRequest {
        request_uri: "sip:18005550100@192.0.2.10:5060".into(),
        to: "sip:18005550100@192.0.2.10:5060".into(),
        from_user: "+15550001111".into(),
        from_host: "192.0.2.1".into(),
        call_id: "out-1@192.0.2.1".into(),
        via: "SIP/2.0/UDP 192.0.2.1:5060".into(),
        contact: "<sip:trunkline@192.0.2.1:5060>".into(),
        sdp: Some(b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n".to_vec()),
        ..InviteRequest::default()
    }
    .build()
    .expect("builds")
}

/// A leg that has sent its INVITE; returns it, the clock's start, and the
/// INVITE's transaction and message.
fn start(digest: Option<DigestClient>) -> (OutboundLeg, Instant, TransactionKey, SipMessage) {
    let t0 = Instant::now();
    let mut leg = OutboundLeg::new(t0, invite(), &config(), digest).expect("an INVITE");
    let (tx, request) = started_invite(&drain(&mut leg));
    (leg, t0, tx, request)
}

fn drain(leg: &mut OutboundLeg) -> Vec<OutboundAction> {
    std::iter::from_fn(|| leg.poll_action()).collect()
}

fn started_invite(actions: &[OutboundAction]) -> (TransactionKey, SipMessage) {
    let found = actions.iter().find_map(|a| match a {
        OutboundAction::StartInvite { tx, request } => Some((tx.clone(), (**request).clone())),
        _ => None,
    });
    found.unwrap_or_else(|| panic!("no INVITE started in {actions:?}"))
}

fn started(actions: &[OutboundAction], method: Method) -> Vec<(TransactionKey, SipMessage)> {
    actions
        .iter()
        .filter_map(|a| match a {
            OutboundAction::StartRequest { tx, request } if request.method() == Some(&method) => {
                Some((tx.clone(), request.clone()))
            }
            _ => None,
        })
        .collect()
}

fn acks(actions: &[OutboundAction]) -> Vec<SipMessage> {
    actions
        .iter()
        .filter_map(|a| match a {
            OutboundAction::SendAck(ack) => Some(ack.clone()),
            _ => None,
        })
        .collect()
}

/// The peer's response to `request`: a To tag on 1xx/2xx, a Contact on
/// 2xx, `sdp` as body.
fn reply(request: &SipMessage, status: u16, tag: &str, sdp: Option<&str>) -> SipMessage {
    let tag = (status > 100).then_some(tag);
    let mut msg = request.reply(status, None, tag).expect("reply");
    if (101..300).contains(&status) {
        msg.push_header("Contact", "<sip:five9@192.0.2.10:5060>")
            .expect("contact");
    }
    match sdp {
        Some(sdp) => msg
            .with_body("application/sdp", sdp.as_bytes().to_vec())
            .expect("body"),
        None => msg,
    }
}

fn respond(leg: &mut OutboundLeg, now: Instant, tx: &TransactionKey, response: &SipMessage) {
    let status = response.status_code().expect("a response");
    leg.handle(
        now,
        OutboundInput::Response {
            tx,
            status,
            response,
        },
    );
}

/// The end reports in `actions` (Failed, Cancelled, Ended).
fn ends(actions: &[OutboundAction]) -> Vec<&OutboundAction> {
    actions
        .iter()
        .filter(|a| {
            matches!(
                a,
                OutboundAction::Failed { .. }
                    | OutboundAction::Cancelled
                    | OutboundAction::Ended { .. }
            )
        })
        .collect()
}

fn failure(actions: &[OutboundAction]) -> LegFailure {
    match ends(actions).as_slice() {
        [OutboundAction::Failed { failure, .. }] => *failure,
        other => panic!("expected one failure, got {other:?}"),
    }
}

#[test]
fn ringing_then_answer_is_acked_and_reported_with_its_sdp() {
    let (mut leg, t0, tx, invite) = start(None);
    assert_eq!(leg.state(), OutboundState::Calling);
    respond(&mut leg, t0, &tx, &reply(&invite, 100, "", None));
    assert!(drain(&mut leg).is_empty(), "100 Trying is not progress");
    respond(&mut leg, t0, &tx, &reply(&invite, 180, "f9", None));
    assert_eq!(
        drain(&mut leg),
        vec![OutboundAction::Progress {
            status: 180,
            sdp: None
        }]
    );
    assert_eq!(leg.state(), OutboundState::Ringing);

    let ok = reply(&invite, 200, "f9", Some("v=0\r\n"));
    respond(&mut leg, t0 + Duration::from_secs(3), &tx, &ok);
    let actions = drain(&mut leg);
    let ack = &acks(&actions)[0];
    assert_eq!(ack.method(), Some(&Method::Ack));
    assert_eq!(ack.cseq().unwrap().seq, 1);
    assert_eq!(ack.to().unwrap().tag(), Some("f9"));
    assert_eq!(ack.request_uri(), Some("sip:five9@192.0.2.10:5060"));
    assert!(matches!(
        &actions[1],
        OutboundAction::Answered { sdp, .. } if sdp == b"v=0\r\n"
    ));
    assert_eq!(leg.state(), OutboundState::Answered);
    assert_eq!(leg.poll_timeout(), None, "no ring timeout once answered");

    // RFC 6026: a retransmitted 2xx is passed up and ACKed again.
    respond(&mut leg, t0 + Duration::from_secs(4), &tx, &ok);
    assert_eq!(drain(&mut leg), vec![OutboundAction::SendAck(ack.clone())]);
    leg.handle(t0 + Duration::from_secs(40), OutboundInput::Late2xx(&ok));
    assert_eq!(drain(&mut leg), vec![OutboundAction::SendAck(ack.clone())]);
}

#[test]
fn our_bye_carries_the_headers_and_the_leg_finishes_with_its_answer() {
    let (mut leg, t0, tx, invite) = start(None);
    respond(
        &mut leg,
        t0,
        &tx,
        &reply(&invite, 200, "f9", Some("v=0\r\n")),
    );
    drain(&mut leg);
    leg.handle(t0, OutboundInput::HangUp(&[("X-Disposition", "contained")]));
    let actions = drain(&mut leg);
    assert_eq!(ends(&actions), [&OutboundAction::Ended { by_peer: false }]);
    let byes = started(&actions, Method::Bye);
    let (bye_tx, bye) = &byes[0];
    assert_eq!(bye.header("X-Disposition"), Some("contained"));
    assert_eq!(bye.cseq().unwrap().seq, 2);
    assert_eq!(leg.state(), OutboundState::Ending);
    respond(&mut leg, t0, bye_tx, &reply(bye, 200, "f9", None));
    assert_eq!(drain(&mut leg), vec![OutboundAction::Finished]);
    assert_eq!(leg.state(), OutboundState::Done);
}

#[test]
fn headers_the_dialog_refuses_still_leave_a_plain_bye() {
    let (mut leg, t0, tx, invite) = start(None);
    respond(&mut leg, t0, &tx, &reply(&invite, 200, "f9", None));
    drain(&mut leg);
    leg.handle(t0, OutboundInput::HangUp(&[("Call-ID", "forged")]));
    let byes = started(&drain(&mut leg), Method::Bye);
    assert_eq!(byes.len(), 1);
    assert_eq!(byes[0].1.call_id().unwrap(), "out-1@192.0.2.1");
}

#[test]
fn a_bye_that_times_out_still_finishes_the_leg() {
    let (mut leg, t0, tx, invite) = start(None);
    respond(&mut leg, t0, &tx, &reply(&invite, 200, "f9", None));
    leg.handle(t0, OutboundInput::HangUp(&[]));
    let (bye_tx, _) = started(&drain(&mut leg), Method::Bye).remove(0);
    leg.handle(t0 + T1 * 64, OutboundInput::Timeout(&bye_tx));
    assert_eq!(drain(&mut leg), vec![OutboundAction::Finished]);
}

#[test]
fn the_peers_bye_ends_the_leg() {
    let (mut leg, t0, tx, invite) = start(None);
    respond(&mut leg, t0, &tx, &reply(&invite, 200, "f9", None));
    drain(&mut leg);
    leg.handle(t0, OutboundInput::PeerBye);
    assert_eq!(
        drain(&mut leg),
        vec![
            OutboundAction::Ended { by_peer: true },
            OutboundAction::Finished
        ]
    );
    leg.handle(t0, OutboundInput::HangUp(&[]));
    assert!(drain(&mut leg).is_empty(), "nothing after Finished");
}

#[test]
fn early_media_is_relayed_with_its_sdp() {
    let (mut leg, t0, tx, invite) = start(None);
    let sdp = "v=0\r\nm=audio 4000 RTP/AVP 8\r\n";
    respond(&mut leg, t0, &tx, &reply(&invite, 183, "f9", Some(sdp)));
    assert_eq!(
        drain(&mut leg),
        vec![OutboundAction::Progress {
            status: 183,
            sdp: Some(sdp.as_bytes().to_vec())
        }]
    );
    assert_eq!(leg.state(), OutboundState::EarlyMedia);
    // A 180 after early media keeps the media.
    respond(&mut leg, t0, &tx, &reply(&invite, 180, "f9", None));
    drain(&mut leg);
    assert_eq!(leg.state(), OutboundState::EarlyMedia);
}

#[test]
fn final_statuses_become_typed_failures() {
    for (status, kind) in [
        (486, FailureKind::Busy),
        (600, FailureKind::Busy),
        (480, FailureKind::NoAnswer),
        (404, FailureKind::Rejected),
        (503, FailureKind::Rejected),
        (403, FailureKind::Rejected),
        (401, FailureKind::AuthFailed),
        (407, FailureKind::AuthFailed),
    ] {
        let (mut leg, t0, tx, invite) = start(None);
        respond(&mut leg, t0, &tx, &reply(&invite, 180, "f9", None));
        drain(&mut leg);
        respond(&mut leg, t0, &tx, &reply(&invite, status, "f9", None));
        let actions = drain(&mut leg);
        assert_eq!(
            failure(&actions),
            LegFailure {
                kind,
                status: Some(status)
            },
            "{status}"
        );
        assert_eq!(actions.last(), Some(&OutboundAction::Finished), "{status}");
        assert!(started(&actions, Method::Cancel).is_empty(), "{status}");
        assert_eq!(leg.poll_timeout(), None);
    }
}

#[test]
fn timer_b_and_transport_errors_are_unreachable() {
    let (mut leg, t0, tx, _) = start(None);
    leg.handle(t0 + T1 * 64, OutboundInput::Timeout(&tx));
    assert_eq!(failure(&drain(&mut leg)), LegFailure::timed_out());

    let (mut leg, t0, tx, _) = start(None);
    leg.handle(t0, OutboundInput::TransportError(&tx));
    let actions = drain(&mut leg);
    assert_eq!(failure(&actions).kind, FailureKind::Unreachable);
    assert_eq!(actions.last(), Some(&OutboundAction::Finished));
}

#[test]
fn the_ring_timeout_cancels_in_the_invites_transaction() {
    let (mut leg, t0, tx, invite) = start(None);
    respond(&mut leg, t0, &tx, &reply(&invite, 180, "f9", None));
    drain(&mut leg);
    assert_eq!(leg.poll_timeout(), Some(t0 + RING));
    leg.handle_timeout(t0 + RING - Duration::from_millis(1));
    assert!(drain(&mut leg).is_empty(), "not yet due");

    leg.handle_timeout(t0 + RING);
    let actions = drain(&mut leg);
    assert_eq!(failure(&actions), LegFailure::ring_timeout());
    let (cancel_tx, cancel) = started(&actions, Method::Cancel).remove(0);
    assert_eq!(cancel_tx.branch(), tx.branch(), "§9.1: the INVITE's branch");
    assert_eq!(cancel.cseq().unwrap().seq, 1);
    assert_eq!(cancel.cseq().unwrap().method, Method::Cancel);
    assert_eq!(leg.state(), OutboundState::Cancelling);

    respond(
        &mut leg,
        t0 + RING,
        &cancel_tx,
        &reply(&cancel, 200, "f9", None),
    );
    assert!(drain(&mut leg).is_empty(), "the CANCEL's 200 ends nothing");
    respond(&mut leg, t0 + RING, &tx, &reply(&invite, 487, "f9", None));
    assert_eq!(drain(&mut leg), vec![OutboundAction::Finished]);
}

#[test]
fn no_cancel_before_a_provisional_then_one_as_soon_as_it_comes() {
    let (mut leg, t0, tx, invite) = start(None);
    leg.handle(t0 + Duration::from_millis(50), OutboundInput::HangUp(&[]));
    let actions = drain(&mut leg);
    assert_eq!(ends(&actions), [&OutboundAction::Cancelled]);
    assert!(started(&actions, Method::Cancel).is_empty(), "§9.1");

    respond(&mut leg, t0, &tx, &reply(&invite, 100, "", None));
    let actions = drain(&mut leg);
    assert_eq!(started(&actions, Method::Cancel).len(), 1);
    assert!(ends(&actions).is_empty(), "reported once");
    respond(&mut leg, t0, &tx, &reply(&invite, 487, "f9", None));
    assert_eq!(drain(&mut leg), vec![OutboundAction::Finished]);
}

#[test]
fn a_hang_up_before_any_response_ends_with_timer_b() {
    let (mut leg, t0, tx, _) = start(None);
    leg.handle(t0, OutboundInput::HangUp(&[]));
    drain(&mut leg);
    leg.handle(t0 + T1 * 64, OutboundInput::Timeout(&tx));
    assert_eq!(drain(&mut leg), vec![OutboundAction::Finished]);
}

#[test]
fn a_2xx_racing_our_cancel_is_acked_and_ended_with_a_bye() {
    let (mut leg, t0, tx, invite) = start(None);
    respond(&mut leg, t0, &tx, &reply(&invite, 180, "f9", None));
    leg.handle(t0, OutboundInput::HangUp(&[]));
    drain(&mut leg);
    respond(
        &mut leg,
        t0,
        &tx,
        &reply(&invite, 200, "f9", Some("v=0\r\n")),
    );
    let actions = drain(&mut leg);
    assert!(ends(&actions).is_empty(), "Cancelled was the report");
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, OutboundAction::Answered { .. })),
        "the call never sees that answer"
    );
    assert_eq!(acks(&actions).len(), 1);
    let (bye_tx, bye) = started(&actions, Method::Bye).remove(0);
    assert_eq!(bye.to().unwrap().tag(), Some("f9"));
    assert_eq!(leg.state(), OutboundState::Ending);
    assert_eq!(leg.poll_timeout(), None);
    respond(&mut leg, t0, &bye_tx, &reply(&bye, 200, "f9", None));
    assert_eq!(drain(&mut leg), vec![OutboundAction::Finished]);
}

#[test]
fn a_cancel_nobody_answers_abandons_the_invite_after_64_t1() {
    let (mut leg, t0, tx, invite) = start(None);
    respond(&mut leg, t0, &tx, &reply(&invite, 180, "f9", None));
    leg.handle(t0, OutboundInput::HangUp(&[]));
    drain(&mut leg);
    assert_eq!(leg.poll_timeout(), Some(t0 + T1 * 64));
    leg.handle_timeout(t0 + T1 * 64);
    assert_eq!(
        drain(&mut leg),
        vec![OutboundAction::Abandon(tx), OutboundAction::Finished]
    );
}

#[test]
fn a_second_forks_2xx_is_acked_and_ended_and_the_first_stays_up() {
    let (mut leg, t0, tx, invite) = start(None);
    respond(&mut leg, t0, &tx, &reply(&invite, 200, "a", None));
    drain(&mut leg);
    let fork = reply(&invite, 200, "b", None);
    respond(&mut leg, t0, &tx, &fork);
    let actions = drain(&mut leg);
    let fork_acks = acks(&actions);
    assert_eq!(fork_acks[0].to().unwrap().tag(), Some("b"));
    let (_, bye) = started(&actions, Method::Bye).remove(0);
    assert_eq!(bye.to().unwrap().tag(), Some("b"));
    assert!(ends(&actions).is_empty());
    assert_eq!(leg.state(), OutboundState::Answered);
    assert_eq!(leg.dialog().unwrap().id().remote_tag(), "a");
    // The fork's 2xx again gets its ACK again, and no second BYE.
    respond(&mut leg, t0, &tx, &fork);
    assert_eq!(
        drain(&mut leg),
        vec![OutboundAction::SendAck(fork_acks[0].clone())]
    );
}

/// Credentials for the test trunk.
fn digest(password: &str) -> Option<DigestClient> {
    Some(DigestClient::new(USER, Secret::password(password)))
}

fn challenge_401(invite: &SipMessage, challenges: &[String]) -> SipMessage {
    let mut msg = reply(invite, 401, "srv", None);
    for c in challenges {
        msg.push_header("WWW-Authenticate", c).expect("challenge");
    }
    msg
}

#[test]
fn a_401_is_answered_with_a_new_invite_the_trunk_accepts() {
    let mut server = trunk(DigestConfig::new(REALM));
    let (leg, t0, tx, invite) = start(digest(PASSWORD));
    let mut leg = leg.with_cnonce(|| "0a4f113b".to_string());
    let challenged = challenge_401(&invite, &server.challenge(at(T0), false));
    respond(&mut leg, t0, &tx, &challenged);
    let actions = drain(&mut leg);
    assert!(ends(&actions).is_empty(), "a challenge is not a failure");
    let (retry_tx, retry) = started_invite(&actions);
    assert_ne!(retry_tx, tx, "a new transaction");
    assert_eq!(retry.cseq().unwrap().seq, 2);
    assert_eq!(retry.call_id().unwrap(), invite.call_id().unwrap());
    assert_eq!(retry.from().unwrap().tag(), invite.from().unwrap().tag());
    assert_eq!(retry.body(), invite.body());
    assert_eq!(server.verify(&retry, at(T0)), Verification::Ok(USER.into()));
    assert!(
        retry
            .header("Authorization")
            .is_some_and(|a| a.contains("cnonce=\"0a4f113b\""))
    );
    assert_eq!(leg.invite(), &retry);

    // The old transaction's CANCEL would be wrong now: a hang-up cancels
    // the retried INVITE.
    respond(&mut leg, t0, &retry_tx, &reply(&retry, 180, "f9", None));
    leg.handle(t0, OutboundInput::HangUp(&[]));
    let (cancel_tx, _) = started(&drain(&mut leg), Method::Cancel).remove(0);
    assert_eq!(cancel_tx.branch(), retry_tx.branch());
}

#[test]
fn a_challenged_retry_is_answered_and_then_the_call_connects() {
    let mut server = trunk(DigestConfig::new(REALM));
    let (mut leg, t0, tx, invite) = start(digest(PASSWORD));
    respond(
        &mut leg,
        t0,
        &tx,
        &challenge_401(&invite, &server.challenge(at(T0), false)),
    );
    let (retry_tx, retry) = started_invite(&drain(&mut leg));
    assert_eq!(server.verify(&retry, at(T0)), Verification::Ok(USER.into()));
    respond(&mut leg, t0, &retry_tx, &reply(&retry, 200, "f9", None));
    let actions = drain(&mut leg);
    assert_eq!(
        acks(&actions)[0].cseq().unwrap().seq,
        2,
        "ACK has the 2xx's CSeq"
    );
    assert_eq!(leg.state(), OutboundState::Answered);
}

#[test]
fn wrong_credentials_fail_as_auth_failed_after_one_retry() {
    let server = trunk(DigestConfig::new(REALM));
    let (mut leg, t0, tx, invite) = start(digest("wrong password"));
    respond(
        &mut leg,
        t0,
        &tx,
        &challenge_401(&invite, &server.challenge(at(T0), false)),
    );
    let (retry_tx, retry) = started_invite(&drain(&mut leg));
    respond(
        &mut leg,
        t0,
        &retry_tx,
        &challenge_401(&retry, &server.challenge(at(T0), false)),
    );
    let actions = drain(&mut leg);
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, OutboundAction::StartInvite { .. })),
        "no third INVITE"
    );
    let [OutboundAction::Failed { failure, detail }] = ends(&actions)[..] else {
        panic!("one failure: {actions:?}");
    };
    assert_eq!(
        *failure,
        LegFailure {
            kind: FailureKind::AuthFailed,
            status: Some(401)
        }
    );
    let detail = detail.as_deref().unwrap_or_default();
    assert!(detail.contains(REALM), "{detail}");
    assert!(!detail.contains("wrong password"), "no secret in the log");
}

#[test]
fn a_403_to_our_credentials_is_auth_failed() {
    let server = trunk(DigestConfig::new(REALM));
    let (mut leg, t0, tx, invite) = start(digest(PASSWORD));
    respond(
        &mut leg,
        t0,
        &tx,
        &challenge_401(&invite, &server.challenge(at(T0), false)),
    );
    let (retry_tx, retry) = started_invite(&drain(&mut leg));
    respond(&mut leg, t0, &retry_tx, &reply(&retry, 403, "srv", None));
    assert_eq!(
        failure(&drain(&mut leg)),
        LegFailure {
            kind: FailureKind::AuthFailed,
            status: Some(403)
        }
    );
}

#[test]
fn a_challenge_without_a_digest_is_auth_failed_not_retried() {
    let (mut leg, t0, tx, invite) = start(digest(PASSWORD));
    let mut bad = reply(&invite, 407, "srv", None);
    bad.push_header("Proxy-Authenticate", "Basic realm=\"x\"")
        .unwrap();
    respond(&mut leg, t0, &tx, &bad);
    let actions = drain(&mut leg);
    assert_eq!(failure(&actions).kind, FailureKind::AuthFailed);
    assert_eq!(failure(&actions).status, Some(407));
}

#[test]
fn a_challenged_bye_is_answered_once() {
    let mut server = trunk(DigestConfig::new(REALM));
    let (mut leg, t0, tx, invite) = start(digest(PASSWORD));
    respond(&mut leg, t0, &tx, &reply(&invite, 200, "f9", None));
    leg.handle(t0, OutboundInput::HangUp(&[]));
    let (bye_tx, bye) = started(&drain(&mut leg), Method::Bye).remove(0);
    respond(
        &mut leg,
        t0,
        &bye_tx,
        &challenge_401(&bye, &server.challenge(at(T0), false)),
    );
    let (retry_tx, retry) = started(&drain(&mut leg), Method::Bye).remove(0);
    assert_eq!(retry.cseq().unwrap().seq, bye.cseq().unwrap().seq + 1);
    assert_eq!(server.verify(&retry, at(T0)), Verification::Ok(USER.into()));
    // Challenged again: the leg is over all the same.
    respond(
        &mut leg,
        t0,
        &retry_tx,
        &challenge_401(&retry, &server.challenge(at(T0), false)),
    );
    assert_eq!(drain(&mut leg), vec![OutboundAction::Finished]);
}

#[test]
fn a_2xx_that_cannot_start_a_dialog_fails_the_leg() {
    let (mut leg, t0, tx, invite) = start(None);
    let no_contact = invite.reply(200, None, Some("f9")).unwrap();
    respond(&mut leg, t0, &tx, &no_contact);
    let actions = drain(&mut leg);
    assert_eq!(failure(&actions).kind, FailureKind::Rejected);
    assert_eq!(actions.last(), Some(&OutboundAction::Finished));
}

#[test]
fn only_an_invite_starts_a_leg() {
    let bye = SipMessage::request(Method::Bye, "sip:a@192.0.2.1").unwrap();
    assert!(OutboundLeg::new(Instant::now(), bye, &config(), None).is_err());
}

#[test]
fn our_2xx_to_the_peers_reinvite_is_resent_until_its_ack() {
    let (mut leg, t0, tx, invite) = start(None);
    respond(&mut leg, t0, &tx, &reply(&invite, 200, "f9", None));
    drain(&mut leg);
    let ok = SipMessage::response(200, None).unwrap();
    leg.reinvite_answered(t0, ok.clone());
    assert_eq!(leg.poll_timeout(), Some(t0 + T1));
    leg.handle_timeout(t0 + T1);
    assert_eq!(
        drain(&mut leg),
        vec![OutboundAction::Retransmit(ok.clone())]
    );
    leg.handle(t0 + T1, OutboundInput::Ack);
    assert_eq!(leg.poll_timeout(), None, "the ACK stops it");

    leg.reinvite_answered(t0, ok);
    let mut last = Vec::new();
    for _ in 0..100 {
        let Some(at) = leg.poll_timeout() else { break };
        leg.handle_timeout(at);
        last = drain(&mut leg);
    }
    assert_eq!(last, vec![OutboundAction::AckTimedOut]);
    assert_eq!(
        leg.state(),
        OutboundState::Answered,
        "the owner ends the call"
    );
    leg.handle(t0, OutboundInput::HangUp(&[]));
    assert_eq!(started(&drain(&mut leg), Method::Bye).len(), 1);
}
