//! The contract versions a policy may be built against, and the
//! conversions between them: the host speaks the current one
//! (`trunkline:policy@0.2.0`) and hands a component built against 0.1.0
//! the same values without what 0.1.0 does not know (a call's direction),
//! so such a component keeps loading and deciding as it always did.

use super::bindings::trunkline::policy::{log, types};
use super::bindings::v0_1::trunkline::policy::{
    config as config_v1, log as log_v1, types as types_v1,
};
use super::bindings::{PolicyPre, v0_1};
use super::context::DecisionCtx;

/// The contract versions this host speaks, newest first.
pub const CONTRACTS: &[&str] = &["0.2.0", "0.1.0"];

/// A pre-instantiated component, by the contract it was built against.
#[derive(Clone)]
pub(crate) enum Contract {
    /// `trunkline:policy@0.2.0`.
    V0_2(PolicyPre<DecisionCtx>),
    /// `trunkline:policy@0.1.0`.
    V0_1(v0_1::PolicyPre<DecisionCtx>),
}

impl Contract {
    /// The version, as in the WIT package name.
    pub(crate) fn version(&self) -> &'static str {
        match self {
            Contract::V0_2(_) => "0.2.0",
            Contract::V0_1(_) => "0.1.0",
        }
    }

    pub(crate) fn component(&self) -> &wasmtime::component::Component {
        match self {
            Contract::V0_2(p) => p.instance_pre().component(),
            Contract::V0_1(p) => p.instance_pre().component(),
        }
    }
}

fn headers_v1(h: &[types::Header]) -> Vec<types_v1::Header> {
    h.iter()
        .map(|h| types_v1::Header {
            name: h.name.clone(),
            value: h.value.clone(),
        })
        .collect()
}

fn headers_v2(h: Vec<types_v1::Header>) -> Vec<types::Header> {
    h.into_iter()
        .map(|h| types::Header {
            name: h.name,
            value: h.value,
        })
        .collect()
}

fn attributes_v1(a: &[types::Attribute]) -> Vec<types_v1::Attribute> {
    a.iter()
        .map(|a| types_v1::Attribute {
            key: a.key.clone(),
            value: a.value.clone(),
        })
        .collect()
}

fn attributes_v2(a: Vec<types_v1::Attribute>) -> Vec<types::Attribute> {
    a.into_iter()
        .map(|a| types::Attribute {
            key: a.key,
            value: a.value,
        })
        .collect()
}

/// A call as 0.1.0 describes it: everything but its direction (0.1.0
/// policies only ever saw calls that came in).
pub(crate) fn call_v1(c: &types::Call) -> types_v1::Call {
    types_v1::Call {
        call_id: c.call_id.clone(),
        sip_call_id: c.sip_call_id.clone(),
        trunk: c.trunk.clone(),
        request_uri: c.request_uri.clone(),
        dialed: c.dialed.clone(),
        from_uri: c.from_uri.clone(),
        from_display: c.from_display.clone(),
        to_uri: c.to_uri.clone(),
        headers: headers_v1(&c.headers),
        source_ip: c.source_ip.clone(),
        source_port: c.source_port,
        transport: match c.transport {
            types::Transport::Udp => types_v1::Transport::Udp,
            types::Transport::Tcp => types_v1::Transport::Tcp,
            types::Transport::Tls => types_v1::Transport::Tls,
        },
        codecs: c
            .codecs
            .iter()
            .map(|k| types_v1::Codec {
                name: k.name.clone(),
                clock_rate: k.clock_rate,
                payload_type: k.payload_type,
            })
            .collect(),
    }
}

pub(crate) fn call_end_v1(e: &types::CallEnd) -> types_v1::CallEnd {
    types_v1::CallEnd {
        call: call_v1(&e.call),
        target: e.target.clone(),
        attributes: attributes_v1(&e.attributes),
        agent_bye_headers: headers_v1(&e.agent_bye_headers),
        dtmf: e.dtmf.clone(),
        reason: match e.reason {
            types::EndReason::AgentHangup => types_v1::EndReason::AgentHangup,
            types::EndReason::AgentRequest => types_v1::EndReason::AgentRequest,
            types::EndReason::CallerHangup => types_v1::EndReason::CallerHangup,
            types::EndReason::MaxDuration => types_v1::EndReason::MaxDuration,
            types::EndReason::MediaTimeout => types_v1::EndReason::MediaTimeout,
            types::EndReason::Error => types_v1::EndReason::Error,
        },
        duration_ms: e.duration_ms,
        caller_connected: e.caller_connected,
    }
}

pub(crate) fn decision_v2(d: types_v1::Decision) -> types::Decision {
    match d {
        types_v1::Decision::Connect(c) => types::Decision::Connect(types::Connect {
            target: c.target,
            attributes: attributes_v2(c.attributes),
            headers: headers_v2(c.headers),
        }),
        types_v1::Decision::Reject(r) => types::Decision::Reject(types::Reject {
            status: r.status,
            reason: r.reason,
        }),
    }
}

pub(crate) fn outcome_v2(o: types_v1::Outcome) -> types::Outcome {
    types::Outcome {
        contained: o.contained,
        destination: o.destination,
        transfer: match o.transfer {
            types_v1::Transfer::Bye => types::Transfer::Bye,
            types_v1::Transfer::Refer(to) => types::Transfer::Refer(to),
        },
        headers: headers_v2(o.headers),
        shared_id: o.shared_id,
        handoff: o
            .handoff
            .into_iter()
            .map(|f| types::HandoffField {
                key: f.key,
                json: f.json,
            })
            .collect(),
    }
}

// A 0.1.0 component's imports are the same functions as 0.2.0's.

impl types_v1::Host for DecisionCtx {}

impl log_v1::Host for DecisionCtx {
    fn log(&mut self, level: log_v1::Level, message: String) {
        let level = match level {
            log_v1::Level::Trace => log::Level::Trace,
            log_v1::Level::Debug => log::Level::Debug,
            log_v1::Level::Info => log::Level::Info,
            log_v1::Level::Warn => log::Level::Warn,
            log_v1::Level::Error => log::Level::Error,
        };
        log::Host::log(self, level, message)
    }
}

impl config_v1::Host for DecisionCtx {
    fn get(&mut self, key: String) -> Option<String> {
        super::bindings::trunkline::policy::config::Host::get(self, key)
    }

    fn entries(&mut self) -> Vec<(String, String)> {
        super::bindings::trunkline::policy::config::Host::entries(self)
    }
}
