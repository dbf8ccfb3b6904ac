//! The example policies, built as components and run by the real engine:
//! the decisions an operator configures them for, and the headers Five9
//! gets back.

mod support;

use std::sync::Arc;

use support::*;
use trunkline::policy::{
    Attribute, CallEnd, Decision, EndReason, Header, Outcome, PolicyVersion, Transfer,
};

fn load(name: &str, config: &[(&str, &str)]) -> PolicyVersion {
    let dir = tempfile::tempdir().unwrap();
    engine(dir.path())
        .load(name, &policy(name), kv(config))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn connect(d: &Decision) -> &trunkline::policy::Connect {
    match d {
        Decision::Connect(c) => c,
        Decision::Reject(r) => panic!("expected connect, got reject {} {}", r.status, r.reason),
    }
}

fn reject_status(d: &Decision) -> u16 {
    match d {
        Decision::Reject(r) => r.status,
        Decision::Connect(c) => panic!("expected reject, got connect to {}", c.target),
    }
}

fn attr<'a>(attrs: &'a [Attribute], key: &str) -> Option<&'a str> {
    attrs
        .iter()
        .rev()
        .find(|a| a.key == key)
        .map(|a| a.value.as_str())
}

fn header<'a>(hs: &'a [Header], name: &str) -> Option<&'a str> {
    hs.iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

fn end(
    call: trunkline::policy::Call,
    routed: &Decision,
    attrs: &[(&str, &str)],
    bye: &[(&str, &str)],
) -> CallEnd {
    let mut attributes = connect(routed).attributes.clone();
    attributes.extend(attrs.iter().map(|(k, v)| Attribute {
        key: k.to_string(),
        value: v.to_string(),
    }));
    CallEnd {
        call,
        target: connect(routed).target.clone(),
        attributes,
        agent_bye_headers: bye.iter().map(|(n, v)| h(n, v)).collect(),
        dtmf: String::new(),
        reason: EndReason::AgentHangup,
        duration_ms: 95_000,
        caller_connected: true,
    }
}

const TENANTS: &[(&str, &str)] = &[
    ("token.tok-acme-123", "acme"),
    ("token.tok-globex-9", "globex"),
    ("extension.1001", "acme"),
    ("extension.2002", "globex"),
    ("tenant.acme.agent", "sip:acme-bot@127.0.0.1:5080"),
    ("tenant.globex.agent", "wss://agents.example.com/globex"),
    ("tenant.globex.destination", "Globex_Humans"),
];

#[test]
fn multi_tenant_routes_by_token_then_extension() {
    let v = load("multi-tenant", TENANTS);
    // The token wins over the extension.
    let by_token = v
        .route(&five9_call(
            "2002",
            &[("X-PolyAi-Auth-Token", "tok-acme-123")],
        ))
        .unwrap();
    assert_eq!(connect(&by_token).target, "sip:acme-bot@127.0.0.1:5080");
    assert_eq!(attr(&connect(&by_token).attributes, "tenant"), Some("acme"));

    let by_ext = v.route(&five9_call("2002", &[])).unwrap();
    assert_eq!(connect(&by_ext).target, "wss://agents.example.com/globex");

    // Unknown token and unknown extension are refused, never defaulted.
    assert_eq!(
        reject_status(
            &v.route(&five9_call("1001", &[("X-PolyAi-Auth-Token", "stolen")]))
                .unwrap()
        ),
        403
    );
    assert_eq!(
        reject_status(&v.route(&five9_call("9999", &[])).unwrap()),
        404
    );
}

#[test]
fn multi_tenant_tells_five9_contained_and_destination() {
    let v = load("multi-tenant", TENANTS);
    let call = five9_call("1001", &[]);
    let routed = v.route(&call).unwrap();

    let contained = v
        .conclude(&end(call.clone(), &routed, &[("contained", "true")], &[]))
        .unwrap();
    assert_eq!(header(&contained.headers, "X-contained"), Some("true"));
    assert!(contained.contained);
    assert_eq!(contained.transfer, Transfer::Bye);

    // The agent's own BYE header wins over the attribute.
    let escalated = v
        .conclude(&end(
            call,
            &routed,
            &[("contained", "true")],
            &[("X-contained", "false"), ("X-destination", "Billing")],
        ))
        .unwrap();
    assert_eq!(header(&escalated.headers, "X-contained"), Some("false"));
    assert_eq!(header(&escalated.headers, "X-destination"), Some("Billing"));
    assert_eq!(escalated.destination, "Billing");
    assert!(!escalated.contained);
}

const DIDS: &[(&str, &str)] = &[
    ("did.+14155550100", "sip:sales-bot@127.0.0.1:5080"),
    ("default_agent", "sip:agent@127.0.0.1:5080"),
];

#[test]
fn route_reason_picks_agent_by_did_with_a_default() {
    let v = load("route-reason", DIDS);
    assert_eq!(
        connect(&v.route(&five9_call("+14155550100", &[])).unwrap()).target,
        "sip:sales-bot@127.0.0.1:5080"
    );
    assert_eq!(
        connect(&v.route(&five9_call("+18005550000", &[])).unwrap()).target,
        "sip:agent@127.0.0.1:5080"
    );
    let strict = load("route-reason", &DIDS[..1]);
    assert_eq!(
        reject_status(&strict.route(&five9_call("+18005550000", &[])).unwrap()),
        404
    );
}

fn route_headers(o: &Outcome) -> [Option<&str>; 4] {
    ["X-RouteReason", "X-RouteType", "X-RouteValue", "X-MetaData"].map(|n| header(&o.headers, n))
}

#[test]
fn route_reason_headers_come_from_attributes_or_the_agent_bye() {
    let v = load("route-reason", DIDS);
    let call = five9_call("+14155550100", &[]);
    let routed = v.route(&call).unwrap();

    let from_attrs = v
        .conclude(&end(
            call.clone(),
            &routed,
            &[
                ("five9.route_reason", "billing_question"),
                ("five9.route_type", "queue"),
                ("five9.route_value", "Billing_Queue"),
                ("meta.intent", "refund"),
            ],
            &[],
        ))
        .unwrap();
    let [reason, kind, value, meta] = route_headers(&from_attrs);
    assert_eq!(
        (reason, kind, value),
        (
            Some("billing_question"),
            Some("queue"),
            Some("Billing_Queue")
        )
    );
    let meta: serde_json::Value = serde_json::from_str(meta.unwrap()).unwrap();
    assert_eq!(meta["intent"], "refund");
    assert!(!from_attrs.contained);
    assert_eq!(from_attrs.destination, "Billing_Queue");

    let from_bye = v
        .conclude(&end(
            call,
            &routed,
            &[("five9.route_reason", "provisional")],
            &[
                ("X-RouteReason", "resolved"),
                ("X-RouteType", "end"),
                ("X-RouteValue", "none"),
                ("X-MetaData", r#"{"csat":5}"#),
            ],
        ))
        .unwrap();
    let [reason, kind, _, meta] = route_headers(&from_bye);
    assert_eq!((reason, kind), (Some("resolved"), Some("end")));
    let meta: serde_json::Value = serde_json::from_str(meta.unwrap()).unwrap();
    assert_eq!(meta["csat"], 5);
    assert!(from_bye.contained);
}

const LEADS: &[(&str, &str)] = &[
    ("did.+14155550100", "sip:qualifier@127.0.0.1:5080"),
    ("skill.qualified", "Sales_Closers"),
    ("skill.unqualified", "Nurture"),
];

#[test]
fn lead_data_exposes_x_variables_and_maps_the_verdict_to_a_skill() {
    let v = load("lead-data", LEADS);
    let call = five9_call("+14155550100", &[("X-account_number", "000123")]);
    let routed = v.route(&call).unwrap();
    let c = connect(&routed);
    assert_eq!(c.target, "sip:qualifier@127.0.0.1:5080");
    assert_eq!(attr(&c.attributes, "var.first_name"), Some("Ada"));
    assert_eq!(attr(&c.attributes, "var.account_number"), Some("000123"));
    assert_eq!(header(&c.headers, "X-first_name"), Some("Ada"));

    let qualified = v
        .conclude(&end(
            call.clone(),
            &routed,
            &[("lead.qualified", "true")],
            &[],
        ))
        .unwrap();
    assert_eq!(qualified.destination, "Sales_Closers");
    assert_eq!(header(&qualified.headers, "X-LeadQualified"), Some("true"));
    assert_eq!(
        header(&qualified.headers, "X-LeadSkill"),
        Some("Sales_Closers")
    );
    let lead = qualified
        .handoff
        .iter()
        .find(|f| f.key == "lead")
        .expect("lead data in the handoff");
    let lead: serde_json::Value = serde_json::from_str(&lead.json).unwrap();
    assert_eq!(lead["first_name"], "Ada");

    let not = v
        .conclude(&end(call, &routed, &[("lead.qualified", "false")], &[]))
        .unwrap();
    assert_eq!(not.destination, "Nurture");
}

#[test]
fn sdk_header_limit_spills_to_the_handoff_data() {
    // The lead-data policy echoes every lead variable the agent changed as an
    // X- header: with 14 changed, Five9's limit of 10 is passed and the
    // rest must land in `overflow_headers`, not vanish.
    let v = load("lead-data", LEADS);
    let extra: Vec<(String, String)> = (0..14)
        .map(|i| (format!("X-field{i:02}"), "old".to_string()))
        .collect();
    let extra_ref: Vec<(&str, &str)> = extra
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let call = five9_call("+14155550100", &extra_ref);
    let routed = v.route(&call).unwrap();
    let changed: Vec<(String, String)> = (0..14)
        .map(|i| (format!("var.field{i:02}"), "new".to_string()))
        .collect();
    let mut attrs: Vec<(&str, &str)> = changed
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    attrs.push(("lead.qualified", "true"));
    let o = v.conclude(&end(call, &routed, &attrs, &[])).unwrap();
    assert!(
        o.headers.len() <= 10,
        "{} headers on the BYE",
        o.headers.len()
    );
    let overflow = o
        .handoff
        .iter()
        .find(|f| f.key == "overflow_headers")
        .expect("overflow kept");
    let spilled: Vec<serde_json::Value> = serde_json::from_str(&overflow.json).unwrap();
    let sent = o
        .headers
        .iter()
        .filter(|h| h.name.starts_with("X-field"))
        .count();
    assert_eq!(
        sent + spilled.len(),
        14,
        "every changed variable is either sent or kept"
    );
    assert!(
        spilled.iter().all(|s| s["reason"] == "header-limit"),
        "{spilled:?}"
    );
}

#[test]
fn captured_invite_file_routes_like_the_wire() {
    let text = std::fs::read(xtask::workspace_root().join("examples/invites/five9.sip")).unwrap();
    let call = trunkline::invite::call_from_bytes(
        &text,
        &trunkline::invite::InviteSource {
            trunk: "five9".into(),
            addr: "127.0.0.1:5070".parse().unwrap(),
            transport: trunkline::policy::Transport::Udp,
            call_id: "tl-1".into(),
        },
    )
    .unwrap();
    let v: Arc<PolicyVersion> = Arc::new(load("multi-tenant", TENANTS));
    let d = v.route(&call).unwrap();
    assert_eq!(connect(&d).target, "sip:acme-bot@127.0.0.1:5080");
}
