//! The state of one call: the caller's leg (Five9), the agent's leg, the
//! media, the policy version that routed it, and what the policy will be
//! told at the end.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use trunkline_call::CallState;
use trunkline_sip::dialog::{Dialog, DialogId, DialogPeer, Negotiated, SessionTimer};
use trunkline_sip::leg::OutboundLeg;
use trunkline_sip::message::SipMessage;
use trunkline_sip::transaction::TransactionKey;

use super::media::CallMedia;
use super::wire::Wire;
use crate::policy::{Attribute, Call as PolicyCall, EndReason, Header, PolicyVersion};
use crate::transport::{ConnId, Target};

// The core's reasons and the WIT's are the same six: `conclude` hears the
// core's.
impl From<trunkline_call::EndReason> for EndReason {
    fn from(r: trunkline_call::EndReason) -> EndReason {
        use trunkline_call::EndReason as R;
        match r {
            R::AgentHangup => EndReason::AgentHangup,
            R::AgentRequest => EndReason::AgentRequest,
            R::CallerHangup => EndReason::CallerHangup,
            R::MaxDuration => EndReason::MaxDuration,
            R::MediaTimeout => EndReason::MediaTimeout,
            R::Error => EndReason::Error,
        }
    }
}

impl From<EndReason> for trunkline_call::EndReason {
    fn from(r: EndReason) -> trunkline_call::EndReason {
        use trunkline_call::EndReason as R;
        match r {
            EndReason::AgentHangup => R::AgentHangup,
            EndReason::AgentRequest => R::AgentRequest,
            EndReason::CallerHangup => R::CallerHangup,
            EndReason::MaxDuration => R::MaxDuration,
            EndReason::MediaTimeout => R::MediaTimeout,
            EndReason::Error => R::Error,
        }
    }
}

/// The gateway's handle for a call (also its Trunkline call id, in hex).
pub(crate) type CallKey = u64;

/// Which side of the B2BUA a message belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Leg {
    /// Five9 (or any peer) that called in.
    Caller,
    /// The agent Trunkline called out to.
    Agent,
    /// A transfer target Trunkline dialled for the agent.
    Transfer,
}

/// A transfer of the call, for the API, the agent and the record.
#[derive(Debug, Clone)]
pub(crate) struct TransferInfo {
    /// `cold` or `warm`.
    pub(crate) mode: trunkline_call::TransferMode,
    /// The number or URI as asked.
    pub(crate) to: String,
    /// The `[[outbound]]` trunk it goes through.
    pub(crate) outbound: String,
    /// When it was asked for.
    pub(crate) started: SystemTime,
    /// The trunk's `max_concurrent` counts it (until it fails or the call
    /// ends).
    pub(crate) counted: bool,
    /// `dialling`, `briefing`, `bridged`, `failed`, `cancelled`.
    pub(crate) result: &'static str,
    /// Why it failed, and the SIP status behind it.
    pub(crate) failure: Option<(String, Option<u16>)>,
    /// When the caller was bridged to the target.
    pub(crate) bridged: Option<SystemTime>,
}

impl TransferInfo {
    /// As the record keeps it.
    pub(crate) fn record(&self) -> crate::store::TransferRecord {
        crate::store::TransferRecord {
            to: self.to.clone(),
            mode: self.mode.as_str().to_owned(),
            outbound: self.outbound.clone(),
            result: self.result.to_owned(),
            failure: self.failure.as_ref().map(|(k, _)| k.clone()),
            status: self.failure.as_ref().and_then(|(_, s)| *s),
            started_ms: super::ending::millis(self.started),
            bridged_ms: self.bridged.map(super::ending::millis),
        }
    }
}

/// One call.
pub(crate) struct Call {
    pub(crate) key: CallKey,
    /// Index of the trunk in the config (a call we place: the trunk the
    /// outbound trunk belongs to, whose policy and tenant it has).
    pub(crate) trunk: usize,
    /// A call we place: the `[[outbound]]` trunk it goes through.
    pub(crate) outbound: Option<String>,
    /// The call as the policy saw it in `route`.
    pub(crate) policy_call: PolicyCall,
    /// The version that routed the call; it also concludes it.
    pub(crate) version: Option<Arc<PolicyVersion>>,
    /// The agent target from the decision.
    pub(crate) target: String,
    /// Attributes: the decision's, then those set during the call.
    pub(crate) attributes: Vec<Attribute>,
    /// DTMF digits collected.
    pub(crate) dtmf: String,
    pub(crate) started: SystemTime,
    /// When the caller was answered (for the duration and the record).
    pub(crate) answered: Option<(Instant, SystemTime)>,

    /// The caller's INVITE (and where its responses go) and its server
    /// transaction; a call we place: our INVITE toward the trunk, where
    /// the trunk is, and our INVITE's client transaction.
    pub(crate) caller_invite: Wire,
    pub(crate) caller_tx: TransactionKey,
    /// The call's state machine: both SIP legs, the rules between them,
    /// the ring timeout, the longest duration, the outcome's delivery.
    pub(crate) core: trunkline_call::Call,
    /// When the core's timer is armed for (not armed twice).
    pub(crate) armed: Option<Instant>,
    /// Where the admitted INVITE came from (address, TCP/TLS connection):
    /// with the trunk's allow-list, who may send in the caller's dialog.
    pub(crate) caller_peer: DialogPeer<ConnId>,

    /// The policy's extra headers for the agent's INVITE.
    pub(crate) agent_extra: Vec<Header>,
    /// Where the agent leg's requests go when no Route says otherwise.
    pub(crate) agent_target: Option<Target>,
    /// Where our 2xx to the agent's last re-INVITE went (its copies go
    /// there too).
    pub(crate) agent_ok_to: Option<Target>,
    /// The agent we called and where its 2xx came from: who may send in
    /// the agent's dialog. `None` until a SIP agent is called.
    pub(crate) agent_peer: Option<DialogPeer<ConnId>>,
    /// Headers of the agent's BYE, for `conclude`.
    pub(crate) agent_bye_headers: Vec<Header>,
    /// The last transfer asked for (its leg is in the core).
    pub(crate) transfer: Option<TransferInfo>,
    /// Where the transfer leg's requests go.
    pub(crate) transfer_target: Option<Target>,
    /// The target we dialled and where its 2xx came from: who may send in
    /// its dialog.
    pub(crate) transfer_peer: Option<DialogPeer<ConnId>>,

    pub(crate) media: Option<CallMedia>,
    /// Every log line about the call is inside this span.
    pub(crate) span: tracing::Span,
    /// The call's credentials (tenant tokens, digest values), kept out of
    /// logs while the call lives.
    pub(crate) _secrets: crate::redact::Registered,
    /// The call was sent to the trunk's fallback target after its agent
    /// could not be reached (tried once).
    pub(crate) fell_back: bool,
    /// The WebSocket or builtin agent, when the agent is not a SIP leg.
    pub(crate) connector: Option<super::connector::ConnectorLink>,
    /// Client transactions still running for this call (BYE, REFER,
    /// CANCEL): the call is forgotten when none remain.
    pub(crate) pending: Vec<TransactionKey>,
    /// The RFC 4028 session timer agreed with the caller, if any.
    pub(crate) session: Option<(SessionTimer, Negotiated)>,
    /// Our refreshing re-INVITE toward the caller, while it is pending.
    pub(crate) refresh_tx: Option<TransactionKey>,
}

impl Call {
    /// The Trunkline call id shown to policies, agents and the API.
    pub(crate) fn id(&self) -> String {
        format_call_id(self.key)
    }

    /// The dialog of `leg`, if established.
    pub(crate) fn dialog_mut(&mut self, leg: Leg) -> Option<&mut Dialog> {
        match leg {
            Leg::Caller => self.core.five9_dialog_mut(),
            Leg::Agent => self.core.agent_mut().and_then(OutboundLeg::dialog_mut),
            Leg::Transfer => self
                .core
                .transfer_leg_mut()
                .and_then(OutboundLeg::dialog_mut),
        }
    }

    /// Every dialog id of the call, for the gateway's index.
    pub(crate) fn dialog_ids(&self) -> Vec<DialogId> {
        let agent = self.core.agent().and_then(OutboundLeg::dialog);
        let target = self.core.transfer_leg().and_then(OutboundLeg::dialog);
        self.core
            .five9_dialog()
            .into_iter()
            .chain(agent)
            .chain(target)
            .map(|d| d.id().clone())
            .collect()
    }

    /// Whether the call is still being answered, is up, or has ended.
    pub(crate) fn state(&self) -> &CallState {
        self.core.state()
    }

    /// Sets an attribute, replacing an earlier one with the same key.
    pub(crate) fn set_attribute(&mut self, key: &str, value: &str) {
        self.attributes.retain(|a| a.key != key);
        self.attributes.push(Attribute {
            key: key.to_owned(),
            value: value.to_owned(),
        });
    }
}

/// `tl-` and 16 lowercase hex digits.
pub(crate) fn format_call_id(key: CallKey) -> String {
    format!("tl-{key:016x}")
}

/// The inverse of [`format_call_id`]: exactly `tl-` and 16 lowercase hex
/// digits, so one call has one spelling.
pub(crate) fn parse_call_id(id: &str) -> Option<CallKey> {
    let hex = id.strip_prefix("tl-")?;
    if hex.len() != 16 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// A fresh call key: 64 random bits from the OS, so ids say nothing about
/// how many calls there were and one tenant cannot guess another's.
pub(crate) fn random_key() -> CallKey {
    match getrandom::u64() {
        Ok(k) => k,
        Err(e) => {
            // Not seen on Linux after boot. std's hasher is keyed from the
            // OS at start-up: a counter through it still cannot be guessed.
            use std::hash::BuildHasher;
            use std::sync::atomic::{AtomicU64, Ordering};
            static KEYED: std::sync::OnceLock<std::collections::hash_map::RandomState> =
                std::sync::OnceLock::new();
            static COUNT: AtomicU64 = AtomicU64::new(0);
            tracing::warn!(error = %e, "OS randomness failed: call id from the keyed hasher");
            KEYED
                .get_or_init(Default::default)
                .hash_one(COUNT.fetch_add(1, Ordering::Relaxed))
        }
    }
}

/// The headers of a message, as the policy types.
pub(crate) fn policy_headers(msg: &SipMessage) -> Vec<Header> {
    msg.headers()
        .iter()
        .map(|h| Header {
            name: h.name.clone(),
            value: h.value.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_ids_round_trip() {
        for key in [0, 1, 0xdead_beef, u64::MAX] {
            assert_eq!(parse_call_id(&format_call_id(key)), Some(key));
        }
        assert_eq!(parse_call_id("tl-zz"), None);
        assert_eq!(parse_call_id("12"), None);
        for other_spelling in [
            "tl-1",
            "tl-00000000000000001",
            "tl-000000000000000A",
            "tl-+00000000000000a",
            "TL-000000000000000a",
            "tl- 00000000000000a",
        ] {
            assert_eq!(parse_call_id(other_spelling), None, "{other_spelling}");
        }
    }

    #[test]
    fn random_keys_differ_in_about_half_their_bits() {
        let keys: Vec<CallKey> = (0..64).map(|_| random_key()).collect();
        let mut flips = 0;
        for pair in keys.windows(2) {
            assert_ne!(pair[0], pair[1]);
            assert_ne!(pair[0].wrapping_add(1), pair[1], "sequential");
            flips += (pair[0] ^ pair[1]).count_ones();
        }
        // 63 pairs × 32 expected flipped bits; sequential or clock-based
        // keys would flip a handful.
        let mean = f64::from(flips) / 63.0;
        assert!(
            (24.0..=40.0).contains(&mean),
            "{mean} bits differ on average"
        );
    }
}
