//! # contract-v0-1: a policy built against the first contract
//!
//! Test fixture, not an example. It is built with plain `wit-bindgen`
//! from `wit/v0.1.0/policy.wit` (frozen), as a policy built before the
//! contract's 0.2.0 was, so the host's tests can check that such a
//! component keeps loading and deciding as it did. `cargo xtask fixtures`
//! writes `target/test-policies/contract-v0-1.wasm`.
//!
//! ## Config keys
//!
//! | key | value |
//! |---|---|
//! | `target` | the agent target `route` connects to (404 when unset) |
//!
//! `route` connects with the attributes `contract` (`0.1.0`), `dialed` and
//! `trunk` (as the call's fields say). `conclude` ends with a BYE carrying
//! `X-Contract: 0.1.0`, `X-End-Reason: <reason>` and
//! `X-Dialed: <the call's dialed>`, contained, destination `v0.1.0`.

wit_bindgen::generate!({
    path: "../../../wit/v0.1.0",
    world: "policy",
});

// The world's `use types.{call, decision, call-end, outcome}` puts those
// four at the crate root.
use trunkline::policy::types::{Attribute, Connect, EndReason, Header, Reject, Transfer};
use trunkline::policy::{config, log};

struct ContractV01;

fn attribute(key: &str, value: &str) -> Attribute {
    Attribute {
        key: key.to_owned(),
        value: value.to_owned(),
    }
}

fn header(name: &str, value: &str) -> Header {
    Header {
        name: name.to_owned(),
        value: value.to_owned(),
    }
}

impl Guest for ContractV01 {
    fn route(call: Call) -> Decision {
        log::log(log::Level::Info, "contract 0.1.0 fixture routing");
        let Some(target) = config::get("target") else {
            return Decision::Reject(Reject {
                status: 404,
                reason: "no target".to_owned(),
            });
        };
        Decision::Connect(Connect {
            target,
            attributes: vec![
                attribute("contract", "0.1.0"),
                attribute("dialed", call.dialed.as_deref().unwrap_or("")),
                attribute("trunk", &call.trunk),
            ],
            headers: Vec::new(),
        })
    }

    fn conclude(end: CallEnd) -> Outcome {
        let reason = match end.reason {
            EndReason::AgentHangup => "agent-hangup",
            EndReason::AgentRequest => "agent-request",
            EndReason::CallerHangup => "caller-hangup",
            EndReason::MaxDuration => "max-duration",
            EndReason::MediaTimeout => "media-timeout",
            EndReason::Error => "error",
        };
        Outcome {
            contained: true,
            destination: "v0.1.0".to_owned(),
            transfer: Transfer::Bye,
            headers: vec![
                header("X-Contract", "0.1.0"),
                header("X-End-Reason", reason),
                header("X-Dialed", end.call.dialed.as_deref().unwrap_or("")),
            ],
            shared_id: None,
            handoff: Vec::new(),
        }
    }
}

export!(ContractV01);
