//! A call between a scripted caller (Five9) and a scripted SIP agent, on a
//! simulated clock: each test plays what the peers send and checks what
//! each of them would receive, and what the owner is asked to do.

use std::time::{Duration, Instant};

use trunkline_sip::leg::{
    FailureKind, InboundAction, InboundConfig, InboundInput, InboundLeg, InviteRequest,
    OutboundAction, OutboundConfig, OutboundInput, OutboundLeg,
};
use trunkline_sip::message::{Method, SipMessage};
use trunkline_sip::transaction::{Reliability, Timers, TransactionKey};

use crate::{
    Call, CallAction, CallConfig, CallInput, CallState, Delivery, EndCause, EndReason, MediaOrder,
    Outcome, ReferFailure,
};

const RING: Duration = Duration::from_secs(30);
const MAX: Duration = Duration::from_secs(3600);
const REFER_WAIT: Duration = Duration::from_secs(8);
const T1: Duration = Duration::from_millis(500);
const OUR_ANSWER: &[u8] = b"v=0\r\no=trunkline 1 1 IN IP4 192.0.2.1\r\n";
const AGENT_SDP: &str = "v=0\r\no=agent 7 7 IN IP4 192.0.2.20\r\n";

fn caller_invite() -> SipMessage {
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

fn agent_invite() -> SipMessage {
    InviteRequest {
        request_uri: "sip:bot@192.0.2.20:5080".into(),
        to: "sip:bot@192.0.2.20:5080".into(),
        from_user: "+15557654321".into(),
        from_host: "192.0.2.1".into(),
        call_id: "tl-1@192.0.2.1".into(),
        via: "SIP/2.0/UDP 192.0.2.1:5060".into(),
        contact: "<sip:trunkline@192.0.2.1:5060>".into(),
        sdp: Some(b"v=0\r\no=trunkline 2 2 IN IP4 192.0.2.1\r\n".to_vec()),
        ..InviteRequest::default()
    }
    .build()
    .expect("builds")
}

/// A call whose caller's INVITE is in, at `t0`.
fn new_call(t0: Instant) -> Call {
    let caller = InboundLeg::new(
        caller_invite(),
        InboundConfig {
            timers: Timers::default(),
            reliability: Reliability::Unreliable,
            local_via: "SIP/2.0/UDP 192.0.2.1:5060".into(),
            contact: "<sip:trunkline@192.0.2.1:5060>".into(),
        },
    )
    .expect("an INVITE");
    Call::new(
        t0,
        caller,
        CallConfig {
            ring_timeout: RING,
            max_duration: MAX,
            refer_timeout: REFER_WAIT,
            caller_sdp: OUR_ANSWER.to_vec(),
            session: None,
            agent_timeout: RING,
        },
    )
}

/// The agent scripted: its INVITE transaction and what it sent us.
struct Agent {
    tx: TransactionKey,
    invite: SipMessage,
}

impl Agent {
    /// Its response to our INVITE: a To tag above 100, a Contact on 1xx/2xx.
    fn says(&self, call: &mut Call, now: Instant, status: u16, sdp: Option<&str>) {
        let msg = response(
            &self.invite,
            status,
            "bot1",
            "<sip:bot@192.0.2.20:5080>",
            sdp,
        );
        let input = OutboundInput::Response {
            tx: &self.tx,
            status,
            response: &msg,
        };
        call.handle(now, CallInput::Agent(input));
    }
}

/// A UAS's answer to our `invite`: its To `tag` above 100, its `contact`
/// on 1xx/2xx, and `sdp` when given.
fn response(
    invite: &SipMessage,
    status: u16,
    tag: &str,
    contact: &str,
    sdp: Option<&str>,
) -> SipMessage {
    let mut msg = invite
        .reply(status, None, (status > 100).then_some(tag))
        .expect("reply");
    if (101..300).contains(&status) {
        msg.push_header("Contact", contact).expect("contact");
    }
    match sdp {
        Some(sdp) => msg
            .with_body("application/sdp", sdp.as_bytes().to_vec())
            .expect("body"),
        None => msg,
    }
}

/// Dials the agent at `now`; the call asks for its INVITE first.
fn dial(call: &mut Call, now: Instant) -> Agent {
    let config = OutboundConfig {
        ring_timeout: RING,
        timers: Timers::default(),
        reliability: Reliability::Unreliable,
    };
    let leg = OutboundLeg::new(now, agent_invite(), &config, None).expect("a leg");
    assert!(call.dial_agent(now, leg), "the call wants its agent");
    let actions = drain(call);
    match actions.as_slice() {
        [CallAction::Agent(OutboundAction::StartInvite { tx, request })] => Agent {
            tx: tx.clone(),
            invite: (**request).clone(),
        },
        other => panic!("expected the agent's INVITE, got {other:?}"),
    }
}

fn drain(call: &mut Call) -> Vec<CallAction> {
    std::iter::from_fn(|| call.poll_action()).collect()
}

/// The statuses the caller was sent, in order.
fn to_caller(actions: &[CallAction]) -> Vec<u16> {
    actions
        .iter()
        .filter_map(|a| match a {
            CallAction::Caller(InboundAction::Respond { status, .. }) => Some(*status),
            _ => None,
        })
        .collect()
}

/// The caller's response with `status`.
fn caller_response(actions: &[CallAction], status: u16) -> SipMessage {
    actions
        .iter()
        .find_map(|a| match a {
            CallAction::Caller(InboundAction::Respond {
                status: s,
                response,
            }) if *s == status => Some(response.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no {status} for the caller in {actions:?}"))
}

/// Requests started toward the caller (`Caller`) or the agent, by method.
fn requests_to_caller(actions: &[CallAction], method: Method) -> Vec<(TransactionKey, SipMessage)> {
    actions
        .iter()
        .filter_map(|a| match a {
            CallAction::Caller(InboundAction::StartRequest { tx, request })
                if request.method() == Some(&method) =>
            {
                Some((tx.clone(), request.clone()))
            }
            _ => None,
        })
        .collect()
}

fn requests_to_agent(actions: &[CallAction], method: Method) -> Vec<(TransactionKey, SipMessage)> {
    actions
        .iter()
        .filter_map(|a| match a {
            CallAction::Agent(OutboundAction::StartRequest { tx, request })
                if request.method() == Some(&method) =>
            {
                Some((tx.clone(), request.clone()))
            }
            _ => None,
        })
        .collect()
}

fn conclude(actions: &[CallAction]) -> Option<(EndReason, EndCause, bool)> {
    actions.iter().find_map(|a| match a {
        CallAction::Conclude {
            reason,
            cause,
            caller_connected,
        } => Some((*reason, *cause, *caller_connected)),
        _ => None,
    })
}

fn media_orders(actions: &[CallAction]) -> Vec<MediaOrder> {
    actions
        .iter()
        .filter_map(|a| match a {
            CallAction::Media(order) => Some(order.clone()),
            _ => None,
        })
        .collect()
}

/// A call answered by the agent and by us, the caller's ACK not yet in.
fn answered(t0: Instant) -> (Call, Agent, Vec<CallAction>) {
    let mut call = new_call(t0);
    let agent = dial(&mut call, t0);
    agent.says(&mut call, t0, 200, Some(AGENT_SDP));
    let mut actions = drain(&mut call);
    call.handle(t0, CallInput::Media(Ok(())));
    actions.extend(drain(&mut call));
    assert!(call.state().is_connected(), "{:?}", call.state());
    (call, agent, actions)
}

fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

#[test]
fn each_provisional_is_forwarded_once_and_early_media_gets_our_183() {
    let t0 = Instant::now();
    let mut call = new_call(t0);
    let agent = dial(&mut call, t0);
    agent.says(&mut call, t0, 100, None);
    agent.says(&mut call, t0, 180, None);
    agent.says(&mut call, t0, 180, None);
    let actions = drain(&mut call);
    assert_eq!(to_caller(&actions), [180], "one 180 for two");

    agent.says(&mut call, t0, 183, Some(AGENT_SDP));
    let actions = drain(&mut call);
    assert_eq!(
        media_orders(&actions),
        [MediaOrder::Start {
            agent_sdp: AGENT_SDP.as_bytes().to_vec()
        }]
    );
    assert!(
        to_caller(&actions).is_empty(),
        "no 183 before the media runs"
    );
    call.handle(t0, CallInput::Media(Ok(())));
    let actions = drain(&mut call);
    let early = caller_response(&actions, 183);
    assert_eq!(early.body(), OUR_ANSWER, "our answer on the 183");

    // A later 18x with other SDP updates the agent's side only.
    agent.says(
        &mut call,
        t0,
        183,
        Some("v=0\r\no=agent 7 8 IN IP4 192.0.2.21\r\n"),
    );
    agent.says(&mut call, t0, 180, None);
    let actions = drain(&mut call);
    assert!(matches!(
        media_orders(&actions).as_slice(),
        [MediaOrder::Update { .. }]
    ));
    call.handle(t0, CallInput::Media(Ok(())));
    let mut actions = actions;
    actions.extend(drain(&mut call));
    assert!(to_caller(&actions).is_empty(), "nothing more: {actions:?}");

    // The 200 without SDP keeps the early media and answers at once, with
    // the same answer as the 183.
    agent.says(&mut call, t0, 200, None);
    let actions = drain(&mut call);
    assert!(media_orders(&actions).is_empty());
    assert_eq!(caller_response(&actions, 200).body(), OUR_ANSWER);
    assert!(actions.contains(&CallAction::Connected));
}

#[test]
fn unusable_early_sdp_rings_the_caller_and_the_call_waits_for_the_answer() {
    let t0 = Instant::now();
    let mut call = new_call(t0);
    let agent = dial(&mut call, t0);
    agent.says(&mut call, t0, 183, Some(AGENT_SDP));
    drain(&mut call);
    call.handle(t0, CallInput::Media(Err(488)));
    assert_eq!(to_caller(&drain(&mut call)), [180]);
    assert!(call.state().is_calling());

    agent.says(&mut call, t0, 200, Some(AGENT_SDP));
    let actions = drain(&mut call);
    assert!(
        matches!(
            media_orders(&actions).as_slice(),
            [MediaOrder::Start { .. }]
        ),
        "the media starts from the 200's SDP: {actions:?}"
    );
}

#[test]
fn the_caller_is_answered_only_once_the_agent_answered_and_the_media_runs() {
    let t0 = Instant::now();
    let mut call = new_call(t0);
    let agent = dial(&mut call, t0);
    agent.says(&mut call, t0, 200, Some(AGENT_SDP));
    let actions = drain(&mut call);
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, CallAction::Agent(OutboundAction::SendAck(_)))),
        "the agent's 200 is ACKed"
    );
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, CallAction::AgentDialogUp(_)))
    );
    assert!(to_caller(&actions).is_empty(), "no 200 before the media");
    call.handle(t0, CallInput::Media(Ok(())));
    let actions = drain(&mut call);
    assert_eq!(to_caller(&actions), [200]);
    let dialog_up = actions
        .iter()
        .position(|a| matches!(a, CallAction::Caller(InboundAction::DialogUp(_))));
    let ok = actions.iter().position(|a| {
        matches!(
            a,
            CallAction::Caller(InboundAction::Respond { status: 200, .. })
        )
    });
    assert!(
        dialog_up < ok,
        "the dialog is indexed before its 200 leaves"
    );
    assert_eq!(actions.last(), Some(&CallAction::Connected));
    assert_eq!(call.state(), &CallState::Connected { since: t0 });
}

#[test]
fn our_200_is_resent_until_the_ack_and_the_outcome_bye_waits_for_it() {
    let t0 = Instant::now();
    let (mut call, _agent, _) = answered(t0);
    // Over UDP our 200 goes again at T1, 2*T1 later...
    assert_eq!(call.poll_timeout(), Some(t0 + T1));
    call.handle_timeout(t0 + T1);
    let actions = drain(&mut call);
    assert!(matches!(
        actions.as_slice(),
        [CallAction::Caller(InboundAction::Retransmit(ok))] if ok.status_code() == Some(200)
    ));

    // The agent hangs up before the caller's ACK: conclude runs, but the
    // BYE with the outcome's headers waits for the ACK.
    let t1 = t0 + Duration::from_secs(1);
    call.handle(t1, CallInput::Agent(OutboundInput::PeerBye));
    let actions = drain(&mut call);
    assert_eq!(
        conclude(&actions),
        Some((EndReason::AgentHangup, EndCause::AgentBye, true))
    );
    call.concluded(t1, Outcome::Bye(headers(&[("X-Contained", "true")])));
    assert!(requests_to_caller(&drain(&mut call), Method::Bye).is_empty());

    call.handle(t1, CallInput::Caller(InboundInput::Ack));
    let actions = drain(&mut call);
    let byes = requests_to_caller(&actions, Method::Bye);
    assert_eq!(byes.len(), 1, "{actions:?}");
    assert_eq!(byes[0].1.header("X-Contained"), Some("true"));
    assert!(!actions.contains(&CallAction::Finished));

    let input = InboundInput::Response {
        tx: &byes[0].0,
        status: 200,
    };
    call.handle(t1, CallInput::Caller(input));
    assert_eq!(drain(&mut call), [CallAction::Finished]);
    assert_eq!(call.poll_timeout(), None, "nothing left to wait for");
}

#[test]
fn a_caller_that_never_acks_is_ended_after_64_t1_with_the_outcome_on_the_bye() {
    let t0 = Instant::now();
    let (mut call, _agent, _) = answered(t0);
    let mut all = Vec::new();
    for _ in 0..100 {
        let Some(at) = call.poll_timeout() else { break };
        call.handle_timeout(at);
        let actions = drain(&mut call);
        let ended = conclude(&actions).is_some();
        all.extend(actions);
        if ended {
            assert_eq!(at, t0 + 64 * T1, "given up at 64*T1");
            break;
        }
    }
    assert_eq!(
        conclude(&all),
        Some((EndReason::Error, EndCause::CallerNeverAcked, true))
    );
    assert_eq!(
        requests_to_agent(&all, Method::Bye).len(),
        1,
        "the agent is hung up on"
    );
    let now = t0 + 64 * T1;
    call.concluded(now, Outcome::Bye(headers(&[("X-Reason", "no-ack")])));
    let byes = requests_to_caller(&drain(&mut call), Method::Bye);
    assert_eq!(byes.len(), 1, "the BYE goes at once");
    assert_eq!(byes[0].1.header("X-Reason"), Some("no-ack"));
}

#[test]
fn a_caller_cancelling_while_the_agent_rings_cancels_the_agent() {
    let t0 = Instant::now();
    let mut call = new_call(t0);
    let agent = dial(&mut call, t0);
    agent.says(&mut call, t0, 180, None);
    drain(&mut call);
    call.handle(t0, CallInput::Caller(InboundInput::Cancel));
    let actions = drain(&mut call);
    assert_eq!(to_caller(&actions), [487]);
    let cancels = requests_to_agent(&actions, Method::Cancel);
    assert_eq!(cancels.len(), 1, "{actions:?}");
    assert_eq!(
        conclude(&actions),
        Some((EndReason::CallerHangup, EndCause::CallerCancelled, false))
    );
    call.concluded(t0, Outcome::Nothing);
    assert!(drain(&mut call).is_empty(), "the agent's 487 is still due");

    agent.says(&mut call, t0, 487, None);
    let actions = drain(&mut call);
    assert_eq!(
        actions.last(),
        Some(&CallAction::Finished),
        "over once the agent's INVITE is: {actions:?}"
    );
}

#[test]
fn an_agent_answering_after_the_caller_left_gets_its_ack_and_a_bye() {
    let t0 = Instant::now();
    let mut call = new_call(t0);
    let agent = dial(&mut call, t0);
    // No provisional yet: the CANCEL must wait for one (§9.1).
    call.handle(t0, CallInput::Caller(InboundInput::Cancel));
    let actions = drain(&mut call);
    assert!(requests_to_agent(&actions, Method::Cancel).is_empty());
    call.concluded(t0, Outcome::Nothing);
    agent.says(&mut call, t0, 200, Some(AGENT_SDP));
    let actions = drain(&mut call);
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, CallAction::Agent(OutboundAction::SendAck(_))))
    );
    assert_eq!(requests_to_agent(&actions, Method::Bye).len(), 1);
    assert!(
        media_orders(&actions).is_empty(),
        "no media for a call that ended"
    );
    assert!(
        to_caller(&actions).is_empty(),
        "the caller got its 487 only"
    );
}

#[test]
fn an_agent_failure_reaches_the_caller_as_its_typed_status() {
    let cases = [
        (486, 486, FailureKind::Busy),
        (480, 480, FailureKind::NoAnswer),
        (404, 480, FailureKind::Rejected),
        (603, 486, FailureKind::Rejected),
        (503, 503, FailureKind::Rejected),
    ];
    for (agent_status, caller_status, kind) in cases {
        let t0 = Instant::now();
        let mut call = new_call(t0);
        let agent = dial(&mut call, t0);
        agent.says(&mut call, t0, agent_status, None);
        let actions = drain(&mut call);
        assert_eq!(to_caller(&actions), [caller_status], "agent {agent_status}");
        assert_eq!(call.failure().map(|f| f.kind), Some(kind));
        assert_eq!(
            conclude(&actions),
            Some((EndReason::Error, EndCause::AgentFailed, false))
        );
        call.concluded(t0, Outcome::Nothing);
        assert_eq!(
            drain(&mut call),
            [CallAction::Finished],
            "agent {agent_status}"
        );
    }
}

#[test]
fn an_agent_ringing_too_long_gets_a_cancel_and_the_caller_480() {
    let t0 = Instant::now();
    let mut call = new_call(t0);
    let agent = dial(&mut call, t0 + Duration::from_secs(2));
    agent.says(&mut call, t0 + Duration::from_secs(3), 180, None);
    drain(&mut call);
    // The call's ring timeout counts from the INVITE's arrival, the DNS
    // look-up before the dial included.
    assert_eq!(call.poll_timeout(), Some(t0 + RING));
    call.handle_timeout(t0 + RING);
    let actions = drain(&mut call);
    assert_eq!(to_caller(&actions), [480]);
    assert_eq!(requests_to_agent(&actions, Method::Cancel).len(), 1);
    assert_eq!(call.failure().map(|f| f.kind), Some(FailureKind::NoAnswer));
    assert_eq!(
        conclude(&actions),
        Some((EndReason::Error, EndCause::RingTimeout, false))
    );
}

#[test]
fn unusable_agent_media_at_the_answer_fails_the_call_and_hangs_up_on_the_agent() {
    let t0 = Instant::now();
    let mut call = new_call(t0);
    let agent = dial(&mut call, t0);
    agent.says(&mut call, t0, 200, Some(AGENT_SDP));
    drain(&mut call);
    call.handle(t0, CallInput::Media(Err(488)));
    let actions = drain(&mut call);
    assert_eq!(to_caller(&actions), [488]);
    assert_eq!(requests_to_agent(&actions, Method::Bye).len(), 1);
    assert_eq!(
        conclude(&actions),
        Some((EndReason::Error, EndCause::MediaFailed(488), false))
    );
}

#[test]
fn a_connector_agent_is_answered_once_its_media_runs() {
    let t0 = Instant::now();
    let mut call = new_call(t0);
    call.handle(t0, CallInput::AgentReady);
    let actions = drain(&mut call);
    assert_eq!(
        media_orders(&actions),
        [MediaOrder::Start { agent_sdp: vec![] }]
    );
    call.handle(t0, CallInput::Media(Ok(())));
    assert_eq!(to_caller(&drain(&mut call)), [200]);
    assert!(call.state().is_connected());
}

#[test]
fn an_unreachable_agent_gives_the_caller_the_status_it_was_given() {
    let t0 = Instant::now();
    let mut call = new_call(t0);
    let failure = trunkline_sip::leg::LegFailure::unreachable();
    call.handle(
        t0,
        CallInput::AgentUnreachable {
            failure,
            status: 503,
        },
    );
    let actions = drain(&mut call);
    assert_eq!(to_caller(&actions), [503]);
    assert_eq!(call.failure(), Some(failure));
    // A leg dialled after that (a late DNS answer) is not wanted.
    let config = OutboundConfig {
        ring_timeout: RING,
        timers: Timers::default(),
        reliability: Reliability::Unreliable,
    };
    let leg = OutboundLeg::new(t0, agent_invite(), &config, None).expect("a leg");
    assert!(!call.dial_agent(t0, leg));
    assert!(drain(&mut call).is_empty(), "no INVITE leaves");
}

#[test]
fn ending_before_the_answer_refuses_the_caller() {
    for (reason, status) in [
        (EndReason::Error, 503),
        (EndReason::AgentRequest, 480),
        (EndReason::MaxDuration, 480),
    ] {
        let t0 = Instant::now();
        let mut call = new_call(t0);
        let _agent = dial(&mut call, t0);
        call.handle(t0, CallInput::End(reason));
        let actions = drain(&mut call);
        assert_eq!(to_caller(&actions), [status], "{reason:?}");
        assert_eq!(conclude(&actions), Some((reason, EndCause::Ordered, false)));
        // Ending twice changes nothing.
        call.handle(t0, CallInput::End(EndReason::CallerHangup));
        assert!(drain(&mut call).is_empty());
    }
}

#[test]
fn a_connected_call_ends_at_its_longest_duration() {
    let t0 = Instant::now();
    let (mut call, _agent, _) = answered(t0);
    call.handle(t0, CallInput::Caller(InboundInput::Ack));
    drain(&mut call);
    assert_eq!(call.poll_timeout(), Some(t0 + MAX));
    call.handle_timeout(t0 + MAX);
    let actions = drain(&mut call);
    assert_eq!(
        conclude(&actions),
        Some((EndReason::MaxDuration, EndCause::MaxDuration, true))
    );
    assert_eq!(requests_to_agent(&actions, Method::Bye).len(), 1);
}

/// A connected, ACKed call ended by the agent's request, its outcome a
/// REFER: returns the call and the REFER's transaction.
fn referring(t0: Instant, ack_first: bool) -> (Call, TransactionKey, SipMessage) {
    let (mut call, _agent, _) = answered(t0);
    if ack_first {
        call.handle(t0, CallInput::Caller(InboundInput::Ack));
        drain(&mut call);
    }
    call.handle(t0, CallInput::End(EndReason::AgentRequest));
    drain(&mut call);
    call.concluded(
        t0,
        Outcome::Refer {
            to: "sip:2001@five9.example".into(),
            headers: headers(&[("X-Destination", "billing")]),
        },
    );
    let mut actions = drain(&mut call);
    if !ack_first {
        assert!(
            requests_to_caller(&actions, Method::Refer).is_empty(),
            "the REFER waits for the ACK"
        );
        assert!(matches!(
            call.state(),
            CallState::Ending {
                delivery: Delivery::HeldForAck { .. },
                ..
            }
        ));
        call.handle(t0, CallInput::Caller(InboundInput::Ack));
        actions = drain(&mut call);
    }
    let mut refers = requests_to_caller(&actions, Method::Refer);
    assert_eq!(refers.len(), 1, "{actions:?}");
    let (tx, refer) = refers.remove(0);
    assert!(call.is_refer(&tx));
    (call, tx, refer)
}

#[test]
fn a_refer_waits_for_the_ack_and_a_failed_one_ends_with_a_bye_carrying_the_headers() {
    let t0 = Instant::now();
    let (mut call, tx, refer) = referring(t0, false);
    assert_eq!(refer.header("X-Destination"), Some("billing"));
    let accepted = InboundInput::Response {
        tx: &tx,
        status: 202,
    };
    call.handle(t0, CallInput::Caller(accepted));
    assert!(drain(&mut call).is_empty(), "202: the NOTIFY decides");

    call.handle(t0, CallInput::ReferNotified { succeeded: false });
    let actions = drain(&mut call);
    assert_eq!(
        actions.first(),
        Some(&CallAction::ReferFailed(ReferFailure::Failed))
    );
    let byes = requests_to_caller(&actions, Method::Bye);
    assert_eq!(byes.len(), 1);
    assert_eq!(byes[0].1.header("X-Destination"), Some("billing"));
}

#[test]
fn a_transfer_that_succeeds_ends_with_a_plain_bye() {
    let t0 = Instant::now();
    let (mut call, _tx, _) = referring(t0, true);
    call.handle(t0, CallInput::ReferNotified { succeeded: true });
    let actions = drain(&mut call);
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, CallAction::ReferFailed(_)))
    );
    let byes = requests_to_caller(&actions, Method::Bye);
    assert_eq!(byes.len(), 1);
    assert_eq!(byes[0].1.header("X-Destination"), None);
}

#[test]
fn a_refused_or_unanswered_refer_falls_back_to_the_bye() {
    // Refused.
    let t0 = Instant::now();
    let (mut call, tx, _) = referring(t0, true);
    let refused = InboundInput::Response {
        tx: &tx,
        status: 603,
    };
    call.handle(t0, CallInput::Caller(refused));
    let actions = drain(&mut call);
    assert_eq!(
        actions.first(),
        Some(&CallAction::ReferFailed(ReferFailure::Refused(Some(603))))
    );
    assert_eq!(requests_to_caller(&actions, Method::Bye).len(), 1);

    // Accepted, but no final NOTIFY within the wait.
    let (mut call, _tx, _) = referring(t0, true);
    assert_eq!(call.poll_timeout(), Some(t0 + REFER_WAIT));
    call.handle_timeout(t0 + REFER_WAIT);
    let actions = drain(&mut call);
    assert_eq!(
        actions.first(),
        Some(&CallAction::ReferFailed(ReferFailure::NoNotify))
    );
    assert_eq!(requests_to_caller(&actions, Method::Bye).len(), 1);
}

#[test]
fn a_caller_hanging_up_during_the_refer_leaves_nothing_to_deliver() {
    let t0 = Instant::now();
    let (mut call, _tx, _) = referring(t0, true);
    call.handle(t0, CallInput::Caller(InboundInput::PeerBye));
    let actions = drain(&mut call);
    assert!(requests_to_caller(&actions, Method::Bye).is_empty());
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, CallAction::ReferFailed(_)))
    );
    assert!(matches!(
        call.state(),
        CallState::Ending {
            delivery: Delivery::Done,
            ..
        }
    ));
    assert_eq!(call.poll_timeout(), None, "no REFER wait left");
}

// Calls we place: the leg toward the trunk is dialled first; the agent is
// reached once it answered.

const AGENT_WAIT: Duration = Duration::from_secs(10);

fn trunk_invite() -> SipMessage {
    InviteRequest {
        request_uri: "sip:+14155550100@198.51.100.7:5060".into(),
        to: "sip:+14155550100@198.51.100.7:5060".into(),
        from_user: "+18005550100".into(),
        from_host: "192.0.2.1".into(),
        call_id: "tl-2@192.0.2.1".into(),
        via: "SIP/2.0/UDP 192.0.2.1:5060".into(),
        contact: "<sip:trunkline@192.0.2.1:5060>".into(),
        sdp: Some(OUR_ANSWER.to_vec()),
        ..InviteRequest::default()
    }
    .build()
    .expect("builds")
}

/// A call we place at `t0`, and the trunk side scripted.
fn placed(t0: Instant) -> (Call, Trunk) {
    let config = OutboundConfig {
        ring_timeout: RING,
        timers: Timers::default(),
        reliability: Reliability::Unreliable,
    };
    let leg = OutboundLeg::new(t0, trunk_invite(), &config, None).expect("a leg");
    let mut call = Call::originate(
        t0,
        leg,
        CallConfig {
            ring_timeout: RING,
            max_duration: MAX,
            refer_timeout: REFER_WAIT,
            caller_sdp: Vec::new(),
            session: None,
            agent_timeout: AGENT_WAIT,
        },
    );
    let actions = drain(&mut call);
    let trunk = match actions.as_slice() {
        [CallAction::Dialled(OutboundAction::StartInvite { tx, request })] => Trunk {
            tx: tx.clone(),
            invite: (**request).clone(),
        },
        other => panic!("expected the INVITE toward the trunk, got {other:?}"),
    };
    assert!(call.state().is_dialling());
    (call, trunk)
}

/// The trunk (Five9) answering the INVITE we sent it.
struct Trunk {
    tx: TransactionKey,
    invite: SipMessage,
}

impl Trunk {
    fn says(&self, call: &mut Call, now: Instant, status: u16, sdp: Option<&str>) {
        let contact = "<sip:+14155550100@198.51.100.7:5060>";
        let msg = response(&self.invite, status, "f9out", contact, sdp);
        let input = OutboundInput::Response {
            tx: &self.tx,
            status,
            response: &msg,
        };
        call.handle(now, CallInput::Dialled(input));
    }
}

fn requests_to_trunk(actions: &[CallAction], method: Method) -> Vec<(TransactionKey, SipMessage)> {
    actions
        .iter()
        .filter_map(|a| match a {
            CallAction::Dialled(OutboundAction::StartRequest { tx, request })
                if request.method() == Some(&method) =>
            {
                Some((tx.clone(), request.clone()))
            }
            _ => None,
        })
        .collect()
}

const FIVE9_SDP: &str = "v=0\r\no=five9 3 3 IN IP4 198.51.100.7\r\n";

#[test]
fn a_placed_call_reaches_the_agent_only_once_the_number_answered() {
    let t0 = Instant::now();
    let (mut call, trunk) = placed(t0);
    trunk.says(&mut call, t0, 180, None);
    assert!(matches!(
        call.state(),
        CallState::Dialling {
            progress: crate::Progress::Rang,
            ..
        }
    ));
    assert!(drain(&mut call).is_empty(), "ringing asks nothing");
    let t1 = t0 + Duration::from_secs(5);
    trunk.says(&mut call, t1, 200, Some(FIVE9_SDP));
    let actions = drain(&mut call);
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, CallAction::Dialled(OutboundAction::SendAck(_)))),
        "the 200 is ACKed: {actions:?}"
    );
    assert_eq!(
        media_orders(&actions),
        [MediaOrder::DialledAnswer {
            sdp: FIVE9_SDP.as_bytes().to_vec()
        }]
    );
    assert!(
        !actions.contains(&CallAction::ReachAgent),
        "not before the media"
    );
    call.handle(t1, CallInput::Media(Ok(())));
    assert_eq!(drain(&mut call), [CallAction::ReachAgent]);
    // The agent gets its own wait from here, not what is left of the
    // dialled side's.
    assert_eq!(call.poll_timeout(), Some(t1 + AGENT_WAIT));

    let agent = dial(&mut call, t1);
    agent.says(&mut call, t1, 200, Some(AGENT_SDP));
    drain(&mut call);
    call.handle(t1, CallInput::Media(Ok(())));
    let actions = drain(&mut call);
    assert_eq!(actions, [CallAction::Connected]);
    assert!(call.state().is_connected());

    // The agent hangs up: the dialled side gets a BYE with the outcome.
    call.handle(t1, CallInput::Agent(OutboundInput::PeerBye));
    let actions = drain(&mut call);
    assert_eq!(
        conclude(&actions),
        Some((EndReason::AgentHangup, EndCause::AgentBye, true))
    );
    call.concluded(t1, Outcome::Bye(headers(&[("X-Outcome", "sale")])));
    let byes = requests_to_trunk(&drain(&mut call), Method::Bye);
    assert_eq!(byes.len(), 1);
    assert_eq!(byes[0].1.header("X-Outcome"), Some("sale"));
}

#[test]
fn a_busy_number_ends_the_placed_call_with_its_typed_failure_and_no_agent() {
    let t0 = Instant::now();
    let (mut call, trunk) = placed(t0);
    trunk.says(&mut call, t0, 486, None);
    let actions = drain(&mut call);
    assert!(matches!(
        actions.first(),
        Some(CallAction::DialledFailed { failure, .. }) if failure.kind == FailureKind::Busy
    ));
    assert!(!actions.contains(&CallAction::ReachAgent));
    assert_eq!(
        conclude(&actions),
        Some((EndReason::Error, EndCause::DialledFailed, false))
    );
    assert_eq!(call.failure().map(|f| f.kind), Some(FailureKind::Busy));
    call.concluded(t0, Outcome::Bye(headers(&[("X-Outcome", "none")])));
    assert_eq!(
        drain(&mut call),
        [CallAction::Finished],
        "no BYE: never answered"
    );
}

#[test]
fn an_unanswered_placed_call_is_cancelled_at_the_ring_timeout() {
    let t0 = Instant::now();
    let (mut call, trunk) = placed(t0);
    trunk.says(&mut call, t0, 183, Some(FIVE9_SDP));
    drain(&mut call);
    call.handle_timeout(t0 + RING);
    let actions = drain(&mut call);
    assert_eq!(requests_to_trunk(&actions, Method::Cancel).len(), 1);
    assert_eq!(call.failure().map(|f| f.kind), Some(FailureKind::NoAnswer));
    assert!(conclude(&actions).is_some());
}

#[test]
fn a_placed_call_keeps_the_early_sdp_when_the_200_has_none() {
    let t0 = Instant::now();
    let (mut call, trunk) = placed(t0);
    trunk.says(&mut call, t0, 183, Some(FIVE9_SDP));
    trunk.says(&mut call, t0, 200, None);
    assert_eq!(
        media_orders(&drain(&mut call)),
        [MediaOrder::DialledAnswer {
            sdp: FIVE9_SDP.as_bytes().to_vec()
        }]
    );
}

#[test]
fn an_agent_that_fails_after_the_number_answered_gets_the_number_a_bye() {
    let t0 = Instant::now();
    let (mut call, trunk) = placed(t0);
    trunk.says(&mut call, t0, 200, Some(FIVE9_SDP));
    drain(&mut call);
    call.handle(t0, CallInput::Media(Ok(())));
    drain(&mut call);
    let agent = dial(&mut call, t0);
    agent.says(&mut call, t0, 503, None);
    let actions = drain(&mut call);
    assert_eq!(
        conclude(&actions),
        Some((EndReason::Error, EndCause::AgentFailed, true))
    );
    assert!(
        to_caller(&actions).is_empty(),
        "no response: we are the UAC"
    );
    call.concluded(t0, Outcome::Nothing);
    // Nothing to deliver, but the number is on the line: it gets a BYE.
    assert_eq!(requests_to_trunk(&drain(&mut call), Method::Bye).len(), 1);
}

#[test]
fn the_number_hanging_up_ends_a_placed_call_as_a_caller_hangup() {
    let t0 = Instant::now();
    let (mut call, trunk) = placed(t0);
    trunk.says(&mut call, t0, 200, Some(FIVE9_SDP));
    drain(&mut call);
    call.handle(t0, CallInput::Media(Ok(())));
    drain(&mut call);
    call.handle(t0, CallInput::AgentReady);
    drain(&mut call);
    call.handle(t0, CallInput::Media(Ok(())));
    assert_eq!(drain(&mut call), [CallAction::Connected]);
    call.handle(t0, CallInput::Dialled(OutboundInput::PeerBye));
    let actions = drain(&mut call);
    assert_eq!(
        conclude(&actions),
        Some((EndReason::CallerHangup, EndCause::CallerBye, false))
    );
    call.concluded(t0, Outcome::Bye(Vec::new()));
    assert!(requests_to_trunk(&drain(&mut call), Method::Bye).is_empty());
}

#[path = "transfer_tests.rs"]
mod transfer;
