//! Outcome records shaped like real ones (route-reason headers, a handoff
//! object, ~1 KiB of JSON), for the store benchmark and the seeding tool.

use trunkline::policy::Header;
use trunkline::store::OutcomeRecord;

/// Record number `i`: shared id `seed-{i}`, call id `tl-seed-{i}`, tenant
/// `five9`, ended at `ended_ms`.
pub fn record(i: u64, ended_ms: u64) -> OutcomeRecord {
    let header = |name: &str, value: &str| Header {
        name: name.into(),
        value: value.into(),
    };
    let mut handoff = serde_json::Map::new();
    handoff.insert("intent".into(), "billing".into());
    handoff.insert(
        "summary".into(),
        "Caller disputes the last invoice; verified identity.".into(),
    );
    handoff.insert(
        "account".into(),
        format!("ACC-{:08}", i % 100_000_000).into(),
    );
    OutcomeRecord {
        shared_id: format!("seed-{i}"),
        call_id: format!("tl-seed-{i}"),
        sip_call_id: format!("{i:016x}@10.1.2.3"),
        trunk: "five9".into(),
        tenant: "five9".into(),
        contained: i.is_multiple_of(3),
        destination: "Billing_Queue".into(),
        delivery: "bye".into(),
        refer_to: None,
        headers_sent: vec![
            header("X-RouteReason", "billing_question"),
            header("X-RouteType", "queue"),
            header("X-RouteValue", "Billing_Queue"),
            header("X-contained", "false"),
            header("X-destination", "Billing_Queue"),
            header("X-MetaData", "{\"intent\":\"billing\",\"confidence\":0.93}"),
        ],
        overflow_headers: Vec::new(),
        handoff,
        end_reason: "agent-hangup".into(),
        target: "sip:agent@127.0.0.1:5080".into(),
        policy: "route-reason".into(),
        policy_version: "9f2c4e1d8a7b6c5d".into(),
        policy_error: None,
        started_ms: ended_ms.saturating_sub(180_000),
        answered_ms: Some(ended_ms.saturating_sub(178_000)),
        ended_ms,
        failure: None,
        transfer: None,
    }
}

/// Now, in milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
