//! Transfers on a simulated clock: a connected call (caller ACKed), a
//! scripted target (a Five9 inbound number), cold and warm, and every way
//! one fails.

use super::*;
use crate::{TransferFailure, TransferMode, TransferPhase, TransferRefused};
use trunkline_sip::leg::{FailureKind, LegFailure};

const TARGET_SDP: &str = "v=0\r\no=five9in 9 9 IN IP4 198.51.100.9\r\n";

fn target_invite() -> SipMessage {
    InviteRequest {
        request_uri: "sip:+18005550199@198.51.100.9:5060".into(),
        to: "sip:+18005550199@198.51.100.9:5060".into(),
        from_user: "+15557654321".into(),
        from_host: "192.0.2.1".into(),
        call_id: "tl-3@192.0.2.1".into(),
        via: "SIP/2.0/UDP 192.0.2.1:5060".into(),
        contact: "<sip:trunkline@192.0.2.1:5060>".into(),
        sdp: Some(OUR_ANSWER.to_vec()),
        ..InviteRequest::default()
    }
    .build()
    .expect("builds")
}

/// The target scripted.
struct Target {
    tx: TransactionKey,
    invite: SipMessage,
}

impl Target {
    fn says(&self, call: &mut Call, now: Instant, status: u16, sdp: Option<&str>) {
        let contact = "<sip:+18005550199@198.51.100.9:5060>";
        let msg = response(&self.invite, status, "human1", contact, sdp);
        let input = OutboundInput::Response {
            tx: &self.tx,
            status,
            response: &msg,
        };
        call.handle(now, CallInput::Transfer(input));
    }
}

/// A call connected to its agent, the caller's ACK in.
fn connected(t0: Instant) -> Call {
    let (mut call, _agent, _) = answered(t0);
    call.handle(t0, CallInput::Caller(InboundInput::Ack));
    drain(&mut call);
    call
}

/// Starts a transfer at `now`; the call asks for the target's INVITE.
fn start(call: &mut Call, now: Instant, mode: TransferMode) -> Target {
    let config = OutboundConfig {
        ring_timeout: RING,
        timers: Timers::default(),
        reliability: Reliability::Unreliable,
    };
    let leg = OutboundLeg::new(now, target_invite(), &config, None).expect("a leg");
    call.transfer(now, leg, mode)
        .expect("a connected call transfers");
    match drain(call).as_slice() {
        [CallAction::Transfer(OutboundAction::StartInvite { tx, request })] => Target {
            tx: tx.clone(),
            invite: (**request).clone(),
        },
        other => panic!("expected the target's INVITE, got {other:?}"),
    }
}

fn requests_to_target(actions: &[CallAction], method: Method) -> Vec<(TransactionKey, SipMessage)> {
    actions
        .iter()
        .filter_map(|a| match a {
            CallAction::Transfer(OutboundAction::StartRequest { tx, request })
                if request.method() == Some(&method) =>
            {
                Some((tx.clone(), request.clone()))
            }
            _ => None,
        })
        .collect()
}

fn transfer_failure(actions: &[CallAction]) -> Option<TransferFailure> {
    actions.iter().find_map(|a| match a {
        CallAction::TransferFailed { why, .. } => Some(*why),
        _ => None,
    })
}

/// A cold transfer whose target answered and whose bridge is up; the
/// actions after the bridge (the agent's BYE, `Transferred`).
fn bridged(t0: Instant) -> (Call, Target, Vec<CallAction>) {
    let mut call = connected(t0);
    let target = start(&mut call, t0, TransferMode::Cold);
    target.says(&mut call, t0, 200, Some(TARGET_SDP));
    drain(&mut call);
    call.handle(t0, CallInput::Media(Ok(())));
    let actions = drain(&mut call);
    assert!(call.transferred(), "{actions:?}");
    (call, target, actions)
}

#[test]
fn a_cold_transfer_bridges_the_caller_on_the_answer_and_lets_the_agent_go() {
    let t0 = Instant::now();
    let mut call = connected(t0);
    let target = start(&mut call, t0, TransferMode::Cold);
    target.says(&mut call, t0, 180, None);
    assert_eq!(
        call.transfer_phase(),
        Some(TransferPhase::Dialling {
            progress: crate::Progress::Rang
        })
    );
    let ringing = drain(&mut call);
    assert!(
        requests_to_agent(&ringing, Method::Bye).is_empty() && to_caller(&ringing).is_empty(),
        "the caller stays with the agent while the target rings: {ringing:?}"
    );

    let t1 = t0 + Duration::from_secs(4);
    target.says(&mut call, t1, 200, Some(TARGET_SDP));
    let actions = drain(&mut call);
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, CallAction::Transfer(OutboundAction::SendAck(_)))),
        "the target's 200 is ACKed: {actions:?}"
    );
    assert_eq!(
        media_orders(&actions),
        [MediaOrder::Bridge {
            sdp: TARGET_SDP.as_bytes().to_vec()
        }]
    );
    assert!(
        requests_to_agent(&actions, Method::Bye).is_empty(),
        "the agent stays until the bridge is up"
    );

    call.handle(t1, CallInput::Media(Ok(())));
    let actions = drain(&mut call);
    assert_eq!(
        requests_to_agent(&actions, Method::Bye).len(),
        1,
        "{actions:?}"
    );
    assert!(actions.contains(&CallAction::Transferred));
    assert!(call.transferred());
    assert!(call.state().is_connected(), "the call goes on");
    assert_eq!(call.can_transfer(), Err(TransferRefused::InProgress));

    // The target hangs up: the call ends, the caller gets the outcome.
    let t2 = t1 + Duration::from_secs(60);
    call.handle(t2, CallInput::Transfer(OutboundInput::PeerBye));
    let actions = drain(&mut call);
    assert_eq!(
        conclude(&actions),
        Some((EndReason::AgentHangup, EndCause::TargetBye, true))
    );
    call.concluded(t2, Outcome::Bye(headers(&[("X-Transferred", "true")])));
    let byes = requests_to_caller(&drain(&mut call), Method::Bye);
    assert_eq!(byes.len(), 1);
    assert_eq!(byes[0].1.header("X-Transferred"), Some("true"));
}

#[test]
fn the_caller_hanging_up_after_the_bridge_hangs_up_on_the_target() {
    let t0 = Instant::now();
    let (mut call, _target, _) = bridged(t0);
    call.handle(t0, CallInput::Caller(InboundInput::PeerBye));
    let actions = drain(&mut call);
    assert_eq!(
        conclude(&actions),
        Some((EndReason::CallerHangup, EndCause::CallerBye, false))
    );
    assert_eq!(requests_to_target(&actions, Method::Bye).len(), 1);
    assert!(
        requests_to_agent(&actions, Method::Bye).is_empty(),
        "the agent had its BYE at the bridge already"
    );
}

#[test]
fn a_busy_or_refusing_target_leaves_the_caller_with_the_agent_and_the_agent_is_told() {
    for (status, kind) in [
        (486, FailureKind::Busy),
        (403, FailureKind::Rejected),
        (404, FailureKind::Rejected),
        (503, FailureKind::Rejected),
    ] {
        let t0 = Instant::now();
        let mut call = connected(t0);
        let target = start(&mut call, t0, TransferMode::Cold);
        target.says(&mut call, t0, 183, Some(TARGET_SDP));
        target.says(&mut call, t0, status, None);
        let actions = drain(&mut call);
        let why = transfer_failure(&actions).expect("the agent is told");
        assert_eq!(
            why,
            TransferFailure::Leg(LegFailure {
                kind,
                status: Some(status)
            })
        );
        assert_eq!(why.status(), Some(status));
        assert!(
            media_orders(&actions).is_empty(),
            "nothing moved: {actions:?}"
        );
        assert!(conclude(&actions).is_none(), "the call goes on");
        assert!(requests_to_agent(&actions, Method::Bye).is_empty());
        assert_eq!(call.transfer_phase(), Some(TransferPhase::Over));
        // Another try is allowed once the failed leg is over.
        assert_eq!(call.can_transfer(), Ok(()), "{status}");
    }
}

#[test]
fn a_target_that_never_answers_is_cancelled_at_its_ring_timeout() {
    let t0 = Instant::now();
    let mut call = connected(t0);
    let target = start(&mut call, t0, TransferMode::Cold);
    target.says(&mut call, t0, 180, None);
    drain(&mut call);
    let mut all = Vec::new();
    let mut at = t0;
    while at < t0 + RING {
        let Some(next) = call.poll_timeout() else {
            break;
        };
        at = next;
        call.handle_timeout(at);
        all.extend(drain(&mut call));
    }
    assert_eq!(at, t0 + RING, "at the ring timeout");
    let cancels: Vec<_> = all
        .iter()
        .filter(|a| {
            matches!(a, CallAction::Transfer(OutboundAction::StartRequest { request, .. })
                if request.method() == Some(&Method::Cancel))
        })
        .collect();
    assert_eq!(cancels.len(), 1, "{all:?}");
    let why = transfer_failure(&all).expect("told");
    assert_eq!(why.kind(), "no-answer");
    assert!(call.state().is_connected());
    assert!(conclude(&all).is_none());
}

#[test]
fn transfers_start_only_on_a_connected_call_one_at_a_time() {
    let t0 = Instant::now();
    let mut ringing = new_call(t0);
    let _agent = dial(&mut ringing, t0);
    assert_eq!(ringing.can_transfer(), Err(TransferRefused::NotConnected));

    let mut call = connected(t0);
    let _target = start(&mut call, t0, TransferMode::Cold);
    assert_eq!(call.can_transfer(), Err(TransferRefused::InProgress));
    assert_eq!(
        call.complete_transfer(t0),
        Err(TransferRefused::NotBriefing),
        "nothing to complete on a cold transfer that rings"
    );

    let mut ended = connected(t0);
    ended.handle(t0, CallInput::End(EndReason::AgentRequest));
    assert_eq!(ended.can_transfer(), Err(TransferRefused::Ending));
}

#[test]
fn the_caller_leaving_while_the_target_rings_cancels_the_target() {
    let t0 = Instant::now();
    let mut call = connected(t0);
    let target = start(&mut call, t0, TransferMode::Cold);
    target.says(&mut call, t0, 180, None);
    drain(&mut call);
    call.handle(t0, CallInput::Caller(InboundInput::PeerBye));
    let actions = drain(&mut call);
    assert_eq!(
        conclude(&actions),
        Some((EndReason::CallerHangup, EndCause::CallerBye, false))
    );
    assert_eq!(
        requests_to_target(&actions, Method::Cancel).len(),
        1,
        "{actions:?}"
    );
    // The target answers anyway (the race): it gets its ACK and a BYE.
    target.says(&mut call, t0, 200, Some(TARGET_SDP));
    let actions = drain(&mut call);
    assert!(media_orders(&actions).is_empty());
    assert_eq!(
        requests_to_target(&actions, Method::Bye).len(),
        1,
        "{actions:?}"
    );
}

#[test]
fn an_agent_leaving_a_cold_transfer_waits_for_the_target_and_ends_if_it_fails() {
    // It answers: the caller is bridged.
    let t0 = Instant::now();
    let mut call = connected(t0);
    let target = start(&mut call, t0, TransferMode::Cold);
    call.handle(t0, CallInput::Agent(OutboundInput::PeerBye));
    let actions = drain(&mut call);
    assert!(
        conclude(&actions).is_none(),
        "the caller waits: {actions:?}"
    );
    target.says(&mut call, t0, 200, Some(TARGET_SDP));
    drain(&mut call);
    call.handle(t0, CallInput::Media(Ok(())));
    assert!(drain(&mut call).contains(&CallAction::Transferred));
    assert!(call.transferred());

    // It is busy: nobody is left for the caller.
    let mut call = connected(t0);
    let target = start(&mut call, t0, TransferMode::Cold);
    call.handle(t0, CallInput::Agent(OutboundInput::PeerBye));
    drain(&mut call);
    target.says(&mut call, t0, 486, None);
    let actions = drain(&mut call);
    assert!(transfer_failure(&actions).is_some());
    assert_eq!(
        conclude(&actions),
        Some((EndReason::AgentHangup, EndCause::TransferFailed, true))
    );
}

#[test]
fn unusable_target_media_hangs_up_on_the_target_and_keeps_the_agent() {
    let t0 = Instant::now();
    let mut call = connected(t0);
    let target = start(&mut call, t0, TransferMode::Cold);
    target.says(&mut call, t0, 200, Some(TARGET_SDP));
    drain(&mut call);
    call.handle(t0, CallInput::Media(Err(488)));
    let actions = drain(&mut call);
    assert_eq!(
        transfer_failure(&actions),
        Some(TransferFailure::Media(488))
    );
    assert_eq!(requests_to_target(&actions, Method::Bye).len(), 1);
    assert!(requests_to_agent(&actions, Method::Bye).is_empty());
    assert!(call.state().is_connected() && !call.transferred());
}

/// A warm transfer whose target answered and whose brief runs.
fn briefing(t0: Instant) -> (Call, Target) {
    let mut call = connected(t0);
    let target = start(&mut call, t0, TransferMode::Warm);
    target.says(&mut call, t0, 200, Some(TARGET_SDP));
    let actions = drain(&mut call);
    assert_eq!(
        media_orders(&actions),
        [MediaOrder::Brief {
            sdp: TARGET_SDP.as_bytes().to_vec()
        }]
    );
    call.handle(t0, CallInput::Media(Ok(())));
    assert!(drain(&mut call).is_empty());
    assert_eq!(call.transfer_phase(), Some(TransferPhase::Briefing));
    (call, target)
}

#[test]
fn a_warm_transfer_briefs_then_completes_into_the_bridge() {
    let t0 = Instant::now();
    let (mut call, _target) = briefing(t0);
    call.complete_transfer(t0).expect("briefing");
    let actions = drain(&mut call);
    assert_eq!(media_orders(&actions), [MediaOrder::Complete]);
    assert!(requests_to_agent(&actions, Method::Bye).is_empty());
    call.handle(t0, CallInput::Media(Ok(())));
    let actions = drain(&mut call);
    assert_eq!(requests_to_agent(&actions, Method::Bye).len(), 1);
    assert!(actions.contains(&CallAction::Transferred));
}

#[test]
fn the_agent_hanging_up_on_the_brief_completes_it() {
    let t0 = Instant::now();
    let (mut call, _target) = briefing(t0);
    call.handle(t0, CallInput::Agent(OutboundInput::PeerBye));
    let actions = drain(&mut call);
    assert!(conclude(&actions).is_none(), "{actions:?}");
    assert_eq!(media_orders(&actions), [MediaOrder::Complete]);
    call.handle(t0, CallInput::Media(Ok(())));
    assert!(drain(&mut call).contains(&CallAction::Transferred));
}

#[test]
fn cancelling_a_brief_or_the_target_hanging_up_returns_the_caller_to_the_agent() {
    let t0 = Instant::now();
    let (mut call, _target) = briefing(t0);
    call.cancel_transfer(t0).expect("briefing");
    let actions = drain(&mut call);
    assert_eq!(requests_to_target(&actions, Method::Bye).len(), 1);
    assert_eq!(transfer_failure(&actions), Some(TransferFailure::Cancelled));
    assert_eq!(media_orders(&actions), [MediaOrder::Unbrief]);
    call.handle(t0, CallInput::Media(Ok(())));
    assert!(drain(&mut call).is_empty());
    assert!(call.state().is_connected());

    let (mut call, _target) = briefing(t0);
    call.handle(t0, CallInput::Transfer(OutboundInput::PeerBye));
    let actions = drain(&mut call);
    assert_eq!(
        transfer_failure(&actions),
        Some(TransferFailure::TargetHungUp)
    );
    assert_eq!(media_orders(&actions), [MediaOrder::Unbrief]);
    assert!(
        requests_to_target(&actions, Method::Bye).is_empty(),
        "it hung up itself"
    );
    assert!(conclude(&actions).is_none());
}

#[test]
fn cancelling_while_the_target_rings_cancels_it() {
    let t0 = Instant::now();
    let mut call = connected(t0);
    let target = start(&mut call, t0, TransferMode::Warm);
    target.says(&mut call, t0, 180, None);
    drain(&mut call);
    call.cancel_transfer(t0).expect("ringing");
    let actions = drain(&mut call);
    assert_eq!(
        requests_to_target(&actions, Method::Cancel).len(),
        1,
        "{actions:?}"
    );
    assert_eq!(transfer_failure(&actions), Some(TransferFailure::Cancelled));
    assert!(media_orders(&actions).is_empty());
}

#[test]
fn a_call_with_a_transfer_finishes_only_once_the_target_leg_is_over() {
    let t0 = Instant::now();
    let (mut call, _target, actions) = bridged(t0);
    let agent_bye = requests_to_agent(&actions, Method::Bye);
    call.handle(
        t0,
        CallInput::Agent(OutboundInput::Response {
            tx: &agent_bye[0].0,
            status: 200,
            response: &agent_bye[0].1.reply(200, None, None).expect("reply"),
        }),
    );
    drain(&mut call);
    call.handle(t0, CallInput::Caller(InboundInput::PeerBye));
    let actions = drain(&mut call);
    call.concluded(t0, Outcome::Nothing);
    let actions: Vec<_> = actions.into_iter().chain(drain(&mut call)).collect();
    assert!(
        !actions.contains(&CallAction::Finished),
        "the target's BYE is out"
    );
    let bye = requests_to_target(&actions, Method::Bye);
    assert_eq!(bye.len(), 1);
    call.handle(
        t0,
        CallInput::Transfer(OutboundInput::Response {
            tx: &bye[0].0,
            status: 200,
            response: &bye[0].1.reply(200, None, None).expect("reply"),
        }),
    );
    assert!(drain(&mut call).contains(&CallAction::Finished));
}

#[test]
fn a_warm_target_answering_after_the_agent_left_is_bridged_at_once() {
    let t0 = Instant::now();
    let mut call = connected(t0);
    let target = start(&mut call, t0, TransferMode::Warm);
    call.handle(t0, CallInput::Agent(OutboundInput::PeerBye));
    assert!(conclude(&drain(&mut call)).is_none());
    target.says(&mut call, t0, 200, Some(TARGET_SDP));
    let actions = drain(&mut call);
    assert_eq!(
        media_orders(&actions),
        [MediaOrder::Bridge {
            sdp: TARGET_SDP.as_bytes().to_vec()
        }],
        "nobody to brief"
    );
}
