//! Decisions with their fallbacks: what the B2BUA calls. Whatever a policy
//! does (trap, overrun, bad answer, missing), the caller gets a usable
//! decision and outcome, and the failure is logged and counted.

use std::sync::Arc;
use std::time::Instant;

use super::error::DecisionError;
use super::registry::PolicyRegistry;
use super::validate;
use super::version::PolicyVersion;
use super::{Call, CallEnd, Connect, Decision, HandoffField, Header, Outcome, Reject, Transfer};
use crate::config::{RouteFallback, TrunkConfig};

/// The answer to a new call.
#[derive(Debug, Clone)]
pub struct Routed {
    /// What to do with the call.
    pub decision: Decision,
    /// The version that decided; the call keeps it for `conclude`. `None`
    /// when the fallback decided.
    pub version: Option<Arc<PolicyVersion>>,
    /// Why the fallback was used, when it was.
    pub fallback: Option<DecisionError>,
}

/// The answer at the end of a call.
#[derive(Debug, Clone)]
pub struct Concluded {
    /// The outcome, its headers cut to the trunk's limit.
    pub outcome: Outcome,
    /// The headers past the limit: kept for the handoff record.
    pub overflow: Vec<Header>,
    /// Why the fallback was used, when it was.
    pub fallback: Option<DecisionError>,
}

impl PolicyRegistry {
    /// Asks the trunk's policy to route `call`, falling back on failure.
    pub fn route(&self, trunk: &TrunkConfig, call: &Call) -> Routed {
        let result = match self.get(&trunk.policy) {
            None => Err((None, DecisionError::NotLoaded(trunk.policy.clone()))),
            Some(v) => {
                let started = Instant::now();
                let result = v.route(call);
                self.stats()
                    .decision_latency(&trunk.policy, "route", started.elapsed());
                match result {
                    Ok(decision) => Ok((v, decision)),
                    Err(e) => Err((Some(v), e)),
                }
            }
        };
        match result {
            Ok((version, decision)) => {
                self.stats().decision(&trunk.policy, "route", "ok");
                Routed {
                    decision,
                    version: Some(version),
                    fallback: None,
                }
            }
            Err((version, e)) => {
                self.stats().decision(&trunk.policy, "route", e.kind());
                self.stats().fallback(&trunk.policy, "route");
                tracing::warn!(policy = %trunk.policy,
                    version = version.as_ref().map(|v| v.short_hash()).unwrap_or("-"),
                    trunk = %trunk.name, call_id = %call.call_id, kind = e.kind(), error = %e,
                    "route failed; using the trunk's fallback");
                Routed {
                    decision: fallback_decision(&trunk.fallback),
                    // A version that failed routing still concludes the call:
                    // it is the policy the operator deployed for it.
                    version,
                    fallback: Some(e),
                }
            }
        }
    }

    /// Asks `version` (the one that routed the call; the serving one when
    /// the fallback routed it) to conclude, falling back on failure, and
    /// applies the trunk's header limit.
    pub fn conclude(
        &self,
        trunk: &TrunkConfig,
        version: Option<&Arc<PolicyVersion>>,
        end: &CallEnd,
    ) -> Concluded {
        let version = version.cloned().or_else(|| self.get(&trunk.policy));
        let result = match &version {
            None => Err(DecisionError::NotLoaded(trunk.policy.clone())),
            Some(v) => {
                let started = Instant::now();
                let result = v.conclude(end);
                self.stats()
                    .decision_latency(&trunk.policy, "conclude", started.elapsed());
                result
            }
        };
        let (mut outcome, fallback) = match result {
            Ok(o) => {
                self.stats().decision(&trunk.policy, "conclude", "ok");
                (o, None)
            }
            Err(e) => {
                self.stats().decision(&trunk.policy, "conclude", e.kind());
                self.stats().fallback(&trunk.policy, "conclude");
                tracing::warn!(policy = %trunk.policy, trunk = %trunk.name,
                    call_id = %end.call.call_id, kind = e.kind(), error = %e,
                    "conclude failed; using the trunk's fallback outcome");
                (fallback_outcome(trunk, &e), Some(e))
            }
        };
        let overflow = validate::limit_headers(&mut outcome.headers, trunk.header_limit);
        if !overflow.is_empty() {
            let names: Vec<&str> = overflow.iter().map(|h| h.name.as_str()).collect();
            tracing::warn!(policy = %trunk.policy, call_id = %end.call.call_id,
                limit = trunk.header_limit, overflow = ?names,
                "outcome has more headers than the trunk allows; the rest go to the handoff record");
        }
        Concluded {
            outcome,
            overflow,
            fallback,
        }
    }
}

/// The decision a trunk's fallback config stands for.
pub fn fallback_decision(f: &RouteFallback) -> Decision {
    match f {
        RouteFallback::Reject { status, reason } => Decision::Reject(Reject {
            status: *status,
            reason: reason.clone().unwrap_or_default(),
        }),
        RouteFallback::Connect { target } => Decision::Connect(Connect {
            target: target.clone(),
            attributes: Vec::new(),
            headers: Vec::new(),
        }),
    }
}

/// The outcome a trunk's conclude fallback stands for; the failure is
/// recorded in the handoff data so Five9 scripting can see it.
pub fn fallback_outcome(trunk: &TrunkConfig, e: &DecisionError) -> Outcome {
    Outcome {
        contained: trunk.conclude_fallback.contained,
        destination: trunk.conclude_fallback.destination.clone(),
        transfer: Transfer::Bye,
        headers: Vec::new(),
        shared_id: None,
        handoff: vec![HandoffField {
            key: "policy_error".into(),
            json: serde_json::Value::String(e.to_string()).to_string(),
        }],
    }
}

/// The id a call's outcome is filed under when the policy does not pick
/// one: Five9's `X-CallSessionID`, else the caller's SIP Call-ID.
pub fn default_shared_id(call: &Call) -> String {
    call.headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("X-CallSessionID") && !h.value.trim().is_empty())
        .map(|h| h.value.trim().to_owned())
        .unwrap_or_else(|| call.sip_call_id.clone())
}
