//! A policy's answers, checked by the host before they reach the wire: any
//! `route` or `conclude` answer the check lets through must build the
//! messages the gateway then sends (the reply to a rejected INVITE, the
//! agent's INVITE, the BYE or REFER toward Five9), and none of its headers
//! may add or replace a header the host owns.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trunkline::policy::fuzzing::{check_decision, check_outcome};
use trunkline::policy::{
    Attribute, Connect, Decision, HandoffField, Header, Outcome, Reject, Transfer,
};
use trunkline_fuzz::Input;
use trunkline_sip::dialog::Dialog;
use trunkline_sip::message::{Method, SipMessage};

/// The headers that make a request what it is: a policy header that reads
/// as one of them would change the dialog or the framing.
const IDENTITY: &[&str] = &[
    "Via",
    "From",
    "To",
    "Call-ID",
    "CSeq",
    "Contact",
    "Max-Forwards",
    "Content-Type",
    "Content-Length",
    "Route",
    "Refer-To",
    "Referred-By",
];

const INVITE: &str = "INVITE sip:18005550100@192.0.2.10:5060 SIP/2.0\r\n\
    Via: SIP/2.0/UDP 198.51.100.20:5060;branch=z9hG4bK-five9-1;rport\r\n\
    Max-Forwards: 69\r\n\
    From: \"John Smith\" <sip:5550199@198.51.100.20>;tag=f9-1\r\n\
    To: <sip:18005550100@192.0.2.10>\r\n\
    Call-ID: 1-2345@198.51.100.20\r\n\
    CSeq: 1 INVITE\r\n\
    Contact: <sip:5550199@198.51.100.20:5060>\r\n\
    Content-Length: 0\r\n\r\n";

/// Names a policy plausibly writes, or anything at all.
fn name(input: &mut Input<'_>) -> String {
    const NAMES: [&str; 4] = ["X-RouteReason", "X-RouteType", "X-MetaData", "X-contained"];
    match input.below(3) {
        0 => NAMES[input.below(NAMES.len())].to_string(),
        _ => input.string(24),
    }
}

fn headers(input: &mut Input<'_>) -> Vec<Header> {
    (0..input.below(4))
        .map(|_| Header {
            name: name(input),
            value: input.string(64),
        })
        .collect()
}

fn decision(input: &mut Input<'_>) -> Decision {
    if input.bool() {
        return Decision::Reject(Reject {
            status: input.u16(),
            reason: input.string(64),
        });
    }
    let target = match input.below(3) {
        0 => format!("sip:{}", input.string(48)),
        _ => input.string(64),
    };
    Decision::Connect(Connect {
        target,
        attributes: (0..input.below(3))
            .map(|_| Attribute {
                key: input.string(16),
                value: input.string(32),
            })
            .collect(),
        headers: headers(input),
    })
}

fn outcome(input: &mut Input<'_>) -> Outcome {
    Outcome {
        contained: input.bool(),
        destination: input.string(32),
        transfer: match input.below(3) {
            0 => Transfer::Bye,
            1 => Transfer::Refer(format!("sip:{}", input.string(48))),
            _ => Transfer::Refer(input.string(64)),
        },
        headers: headers(input),
        shared_id: input.bool().then(|| input.string(32)),
        handoff: (0..input.below(3))
            .map(|_| HandoffField {
                key: input.string(16),
                json: input.string(48),
            })
            .collect(),
    }
}

/// The lines of each identity header (of Via only how many: each request
/// gets a fresh branch).
fn identity(msg: &SipMessage) -> Vec<Vec<String>> {
    IDENTITY
        .iter()
        .map(|n| {
            msg.header_values(n)
                .map(|v| {
                    if *n == "Via" {
                        String::new()
                    } else {
                        v.to_owned()
                    }
                })
                .collect()
        })
        .collect()
}

/// `built` is `base` plus the policy's `headers`: on the wire it keeps the
/// identity of `base`, and carries every policy header as sent.
fn check_added(base: &SipMessage, built: &SipMessage, headers: &[Header]) {
    let again = SipMessage::parse(&built.to_bytes()).expect("what we build parses");
    let base = SipMessage::parse(&base.to_bytes()).expect("what we build parses");
    assert_eq!(
        identity(&again),
        identity(&base),
        "a policy header changed the identity"
    );
    for h in headers {
        assert!(
            again
                .headers()
                .iter()
                .any(|line| line.is(&h.name) && line.value == h.value.trim()),
            "{h:?} is not on the wire"
        );
    }
}

fn uas_dialog(invite: &SipMessage) -> Dialog {
    let ok = invite
        .reply(200, None, Some("tl-1"))
        .and_then(|r| r.with_header("Contact", "<sip:trunkline@192.0.2.10:5060>"))
        .expect("200 OK");
    Dialog::uas(invite, &ok, "SIP/2.0/UDP 192.0.2.10:5060").expect("dialog")
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let invite = SipMessage::parse(INVITE.as_bytes()).expect("INVITE");
    if input.bool() {
        let d = decision(&mut input);
        if check_decision(&d).is_err() {
            return;
        }
        match &d {
            Decision::Reject(r) => {
                // The gateway answers the caller with exactly this.
                let reason = (!r.reason.is_empty()).then_some(r.reason.as_str());
                let reply = invite
                    .reply(r.status, reason, Some("tl-1"))
                    .expect("an accepted rejection can be sent");
                let again = SipMessage::parse(&reply.to_bytes()).expect("the reply parses");
                assert_eq!(again.status_code(), Some(r.status));
                if let Some(reason) = reason {
                    assert_eq!(again.reason(), Some(reason.trim()));
                }
            }
            Decision::Connect(c) => {
                // The agent's INVITE: our headers, then the policy's.
                let base = SipMessage::request(Method::Invite, "sip:agent@192.0.2.20")
                    .and_then(|m| {
                        m.with_header("Via", "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-1")
                    })
                    .and_then(|m| m.with_header("Max-Forwards", "70"))
                    .and_then(|m| m.with_header("From", "<sip:5550199@192.0.2.10>;tag=a1"))
                    .and_then(|m| m.with_header("To", "<sip:agent@192.0.2.20>"))
                    .and_then(|m| m.with_header("Call-ID", "tl-1@192.0.2.10"))
                    .and_then(|m| m.with_header("CSeq", "1 INVITE"))
                    .and_then(|m| m.with_header("Contact", "<sip:trunkline@192.0.2.10>"))
                    .expect("agent INVITE");
                let mut built = base.clone();
                for h in &c.headers {
                    built
                        .push_header(&h.name, &h.value)
                        .expect("an accepted header can be sent");
                }
                check_added(&base, &built, &c.headers);
            }
        }
    } else {
        let o = outcome(&mut input);
        if check_outcome(&o).is_err() {
            return;
        }
        let extra: Vec<(&str, &str)> = o
            .headers
            .iter()
            .map(|h| (h.name.as_str(), h.value.as_str()))
            .collect();
        let base = uas_dialog(&invite).bye(&[]).expect("plain BYE");
        let bye = uas_dialog(&invite)
            .bye(&extra)
            .expect("an accepted outcome's BYE can be sent");
        check_added(&base, &bye, &o.headers);
        if let Transfer::Refer(uri) = &o.transfer {
            let base = uas_dialog(&invite).refer(uri, None, &[]);
            let refer = uas_dialog(&invite).refer(uri, None, &extra);
            let (base, refer) = (
                base.expect("an accepted REFER target can be sent"),
                refer.expect("an accepted outcome's REFER can be sent"),
            );
            check_added(&base, &refer, &o.headers);
        }
    }
});
