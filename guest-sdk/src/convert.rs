//! Conversion between the plain types and the generated bindings, and the
//! adapter the [`crate::export_policy!`] macro exports.
//!
//! The generated types change with every `wit-bindgen` release; keeping
//! them behind these conversions means a policy crate never names them.

use crate::__bindings::{self as b, trunkline::policy::types as t};
use crate::{Attributes, Call, CallEnd, Codec, Decision, EndReason, Header, Outcome, Transfer};
use crate::{Direction, Policy, Transport};
use std::marker::PhantomData;

/// Implements the generated `Guest` trait for any [`Policy`], converting at
/// the boundary.
#[doc(hidden)]
pub struct Adapter<P>(PhantomData<P>);

impl<P: Policy> b::Guest for Adapter<P> {
    fn route(call: b::Call) -> b::Decision {
        P::route(&call.into()).into()
    }

    fn conclude(end: b::CallEnd) -> b::Outcome {
        P::conclude(&end.into()).into()
    }
}

impl From<t::Header> for Header {
    fn from(h: t::Header) -> Self {
        Header {
            name: h.name,
            value: h.value,
        }
    }
}

impl From<Header> for t::Header {
    fn from(h: Header) -> Self {
        t::Header {
            name: h.name,
            value: h.value,
        }
    }
}

impl From<t::Direction> for Direction {
    fn from(d: t::Direction) -> Self {
        match d {
            t::Direction::Inbound => Direction::Inbound,
            t::Direction::Outbound => Direction::Outbound,
        }
    }
}

impl From<Direction> for t::Direction {
    fn from(d: Direction) -> Self {
        match d {
            Direction::Inbound => t::Direction::Inbound,
            Direction::Outbound => t::Direction::Outbound,
        }
    }
}

impl From<t::Transport> for Transport {
    fn from(tr: t::Transport) -> Self {
        match tr {
            t::Transport::Udp => Transport::Udp,
            t::Transport::Tcp => Transport::Tcp,
            t::Transport::Tls => Transport::Tls,
        }
    }
}

impl From<Transport> for t::Transport {
    fn from(tr: Transport) -> Self {
        match tr {
            Transport::Udp => t::Transport::Udp,
            Transport::Tcp => t::Transport::Tcp,
            Transport::Tls => t::Transport::Tls,
        }
    }
}

impl From<t::Codec> for Codec {
    fn from(c: t::Codec) -> Self {
        Codec {
            name: c.name,
            clock_rate: c.clock_rate,
            payload_type: c.payload_type,
        }
    }
}

impl From<Codec> for t::Codec {
    fn from(c: Codec) -> Self {
        t::Codec {
            name: c.name,
            clock_rate: c.clock_rate,
            payload_type: c.payload_type,
        }
    }
}

impl From<t::Call> for Call {
    fn from(c: t::Call) -> Self {
        Call {
            call_id: c.call_id,
            sip_call_id: c.sip_call_id,
            trunk: c.trunk,
            direction: c.direction.into(),
            request_uri: c.request_uri,
            dialed: c.dialed,
            from_uri: c.from_uri,
            from_display: c.from_display,
            to_uri: c.to_uri,
            headers: c.headers.into_iter().map(Into::into).collect(),
            source_ip: c.source_ip,
            source_port: c.source_port,
            transport: c.transport.into(),
            codecs: c.codecs.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<Call> for t::Call {
    fn from(c: Call) -> Self {
        t::Call {
            call_id: c.call_id,
            sip_call_id: c.sip_call_id,
            trunk: c.trunk,
            direction: c.direction.into(),
            request_uri: c.request_uri,
            dialed: c.dialed,
            from_uri: c.from_uri,
            from_display: c.from_display,
            to_uri: c.to_uri,
            headers: c.headers.into_iter().map(Into::into).collect(),
            source_ip: c.source_ip,
            source_port: c.source_port,
            transport: c.transport.into(),
            codecs: c.codecs.into_iter().map(Into::into).collect(),
        }
    }
}

fn attributes_to_wit(attrs: Attributes) -> Vec<t::Attribute> {
    attrs
        .into_iter()
        .map(|(key, value)| t::Attribute { key, value })
        .collect()
}

impl From<Decision> for t::Decision {
    fn from(d: Decision) -> Self {
        match d {
            Decision::Connect(c) => t::Decision::Connect(t::Connect {
                target: c.target,
                attributes: attributes_to_wit(c.attributes),
                headers: c.headers.into_iter().map(Into::into).collect(),
            }),
            Decision::Reject(r) => t::Decision::Reject(t::Reject {
                status: r.status,
                reason: r.reason,
            }),
        }
    }
}

impl From<t::EndReason> for EndReason {
    fn from(r: t::EndReason) -> Self {
        match r {
            t::EndReason::AgentHangup => EndReason::AgentHangup,
            t::EndReason::AgentRequest => EndReason::AgentRequest,
            t::EndReason::CallerHangup => EndReason::CallerHangup,
            t::EndReason::MaxDuration => EndReason::MaxDuration,
            t::EndReason::MediaTimeout => EndReason::MediaTimeout,
            t::EndReason::Error => EndReason::Error,
        }
    }
}

impl From<t::CallEnd> for CallEnd {
    fn from(e: t::CallEnd) -> Self {
        CallEnd {
            call: e.call.into(),
            target: e.target,
            // Collecting into `Attributes` applies "later values win" even
            // if the host ever sends a key twice.
            attributes: e.attributes.into_iter().map(|a| (a.key, a.value)).collect(),
            agent_bye_headers: e.agent_bye_headers.into_iter().map(Into::into).collect(),
            dtmf: e.dtmf,
            reason: e.reason.into(),
            duration_ms: e.duration_ms,
            caller_connected: e.caller_connected,
        }
    }
}

impl From<Outcome> for t::Outcome {
    fn from(o: Outcome) -> Self {
        t::Outcome {
            contained: o.contained,
            destination: o.destination,
            transfer: match o.transfer {
                Transfer::Bye => t::Transfer::Bye,
                Transfer::Refer(uri) => t::Transfer::Refer(uri),
            },
            headers: o.headers.into_iter().map(Into::into).collect(),
            shared_id: o.shared_id,
            handoff: o
                .handoff
                .into_iter()
                // `Value`'s Display writes compact JSON and cannot fail.
                .map(|(key, value)| t::HandoffField {
                    key,
                    json: value.to_string(),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::__bindings::Guest;
    use crate::testing;
    use serde_json::json;

    struct Echo;

    impl Policy for Echo {
        fn route(call: &Call) -> Decision {
            Decision::connect(format!("sip:{}@agents.example", call.trunk))
                .attribute("session", call.x_var("CallSessionID").unwrap_or_default())
                .attribute("session", "replaced")
                .header("X-Dialed", call.dialed.clone().unwrap_or_default())
        }

        fn conclude(end: &CallEnd) -> Outcome {
            Outcome::refer("sip:queue@five9.example.com")
                .contained(end.attributes.get_bool("contained").unwrap_or(false))
                .destination(end.attribute("destination").unwrap_or_default())
                .header("X-Reason", end.reason.as_str())
                .shared_id(end.call.call_id.clone())
                .handoff("meta", json!({"a": [1, "two"]}))
        }
    }

    #[test]
    fn route_through_the_generated_types() {
        let call = testing::five9_call().dialed("1001").build();
        let wit_call: t::Call = call.clone().into();
        assert_eq!(Call::from(wit_call.clone()), call);

        let t::Decision::Connect(c) = <Adapter<Echo> as Guest>::route(wit_call) else {
            panic!("expected connect");
        };
        assert_eq!(c.target, format!("sip:{}@agents.example", call.trunk));
        assert_eq!(c.attributes.len(), 1);
        assert_eq!(c.attributes[0].value, "replaced");
        assert_eq!(c.headers[0].name, "X-Dialed");
        assert_eq!(c.headers[0].value, "1001");
    }

    #[test]
    fn conclude_through_the_generated_types() {
        let call = testing::five9_call().build();
        let end = t::CallEnd {
            call: call.clone().into(),
            target: "sip:bot@agents.example".into(),
            attributes: vec![
                t::Attribute {
                    key: "contained".into(),
                    value: "false".into(),
                },
                t::Attribute {
                    key: "destination".into(),
                    value: "sales".into(),
                },
                t::Attribute {
                    key: "contained".into(),
                    value: "true".into(),
                },
            ],
            agent_bye_headers: vec![],
            dtmf: "12#".into(),
            reason: t::EndReason::MediaTimeout,
            duration_ms: 1500,
            caller_connected: true,
        };
        let out = <Adapter<Echo> as Guest>::conclude(end);
        assert!(out.contained, "the later attribute value wins");
        assert_eq!(out.destination, "sales");
        assert!(
            matches!(&out.transfer, t::Transfer::Refer(uri) if uri == "sip:queue@five9.example.com")
        );
        assert_eq!(out.headers[0].value, "media-timeout");
        assert_eq!(out.shared_id.as_deref(), Some(call.call_id.as_str()));
        assert_eq!(out.handoff[0].key, "meta");
        assert_eq!(out.handoff[0].json, r#"{"a":[1,"two"]}"#);
    }
}
