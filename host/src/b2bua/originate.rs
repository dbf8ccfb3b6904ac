//! Calls we place (`POST /v1/calls`): through an `[[outbound]]` trunk to a
//! number, then to an agent once the number answered.
//!
//! The request is checked on the core task without waiting for anything
//! (the trunk, the tenant, the trunk's capacity, the number); a trunk named
//! by DNS is looked up off it, and the call starts when the address is
//! known. The agent is the request's, or the policy's choice: `route` sees
//! the INVITE we send (its `trunk` is the outbound trunk's name). The call
//! is then a `trunkline_call::Call` like any other: `Dialling` until the
//! number answers, `Calling` while the agent is reached, then `Connected`;
//! it ends through `conclude` with the policy of the `[[trunk]]` the
//! outbound trunk belongs to.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::oneshot;
use trunkline_call::CallConfig;
use trunkline_sip::auth::DigestClient;
use trunkline_sip::dialog::DialogPeer;
use trunkline_sip::leg::{InviteRequest, OutboundConfig, OutboundLeg, client_key};
use trunkline_sip::message::{Host, Uri};

use super::call::{Call, format_call_id};
use super::gateway::{Gateway, GatewayEvent};
use super::inbound::CALL_ID_HEADER;
use super::wire::Wire;
use crate::config::{OutboundTrunk, TargetError};
use crate::invite::{InviteSource, call_from_message};
use crate::policy::{Attribute, Decision, Header, Transport as PolicyTransport};
use crate::transport::{Target, TransportKind};

/// What `POST /v1/calls` asks for.
#[derive(Debug, Clone)]
pub struct OriginateRequest {
    /// The number (any common writing) or `sip:` URI to call.
    pub to: String,
    /// The `[[outbound]]` trunk to call through.
    pub outbound: String,
    /// The agent target; `None`: the policy's `route` decides.
    pub agent: Option<String>,
    /// Attributes the call starts with (agents and `conclude` see them).
    pub attributes: Vec<Attribute>,
    /// Extra headers for our INVITE (`X-` headers only).
    pub headers: Vec<Header>,
    /// The From user for this call instead of the trunk's caller id.
    pub caller_id: Option<String>,
    /// How long the number may ring, instead of the trunk's setting.
    pub ring_timeout_secs: Option<u64>,
    /// The API key's tenant (`None`: any).
    pub tenant: Option<String>,
}

/// Why a call cannot be placed; the API's status follows from it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OriginateError {
    /// No such trunk, or one of another tenant (the same answer): 422.
    #[error("no [[outbound]] trunk is named `{0}`")]
    NoTrunk(String),
    /// The number cannot be dialled on the trunk: 422.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// Something else in the request is wrong (a header, the caller id, an
    /// agent target): 422.
    #[error("{0}")]
    Invalid(String),
    /// The policy refused the call: 422 with its status and reason.
    #[error("the policy refused the call ({status} {reason})")]
    Refused {
        /// The policy's status.
        status: u16,
        /// Its reason.
        reason: String,
    },
    /// The trunk has `max_concurrent` calls already: 429.
    #[error("outbound trunk `{trunk}` has its {max} calls already")]
    AtCapacity {
        /// The trunk.
        trunk: String,
        /// Its `max_concurrent`.
        max: usize,
    },
    /// Shutting down, no media ports, the trunk's name does not resolve:
    /// 503.
    #[error("{0}")]
    Unavailable(String),
}

/// Where an `[[outbound]]` trunk's URI points.
pub(crate) enum TrunkAddress {
    /// An IP address: no look-up.
    Known(SocketAddr),
    /// A name to look up (off the signalling task), and the port.
    Name(String, u16),
    /// No host at all.
    None,
}

/// Reads a trunk's `uri` (its port, or the scheme's default).
pub(crate) fn trunk_address(uri: &str) -> TrunkAddress {
    let uri = Uri::parse(uri);
    let port = uri
        .as_ref()
        .map(|u| u.port.unwrap_or(u.default_port()))
        .unwrap_or(5060);
    match uri.and_then(|u| u.host) {
        Some(Host::Ipv4(a)) => TrunkAddress::Known(SocketAddr::new(a.into(), port)),
        Some(Host::Ipv6(a)) => TrunkAddress::Known(SocketAddr::new(a.into(), port)),
        Some(Host::Domain(host)) => TrunkAddress::Name(host, port),
        None => TrunkAddress::None,
    }
}

/// A checked request waiting for its trunk's address.
#[derive(Debug)]
pub struct Pending {
    request: OriginateRequest,
    trunk: OutboundTrunk,
    kind: TransportKind,
    reply: oneshot::Sender<Result<String, OriginateError>>,
}

/// Longest header value, bytes (as the control API's attribute values).
const MAX_HEADER_VALUE: usize = 4096;
/// Most extra headers one request may add.
const MAX_HEADERS: usize = 32;

impl Gateway {
    /// `POST /v1/calls` reached the core: checks it, then places the call
    /// (after a DNS look-up off this task when the trunk is named by DNS).
    pub(crate) fn on_originate(
        &mut self,
        request: OriginateRequest,
        reply: oneshot::Sender<Result<String, OriginateError>>,
    ) {
        let checked = self.check_originate(&request);
        let (trunk, kind) = match checked {
            Ok(t) => t,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        let address = trunk_address(&trunk.uri);
        let pending = Pending {
            request,
            trunk,
            kind,
            reply,
        };
        match address {
            TrunkAddress::Known(addr) => self.place(pending, addr),
            TrunkAddress::Name(host, port) => self.look_up(host, port, move |result| {
                GatewayEvent::OriginateResolved(Box::new(pending), result)
            }),
            TrunkAddress::None => {
                let why = format!("outbound trunk `{}` has no host", pending.trunk.name);
                let _ = pending.reply.send(Err(OriginateError::Unavailable(why)));
            }
        }
    }

    /// Looks `host` up off the signalling task; the answer comes back as
    /// `event(result)`.
    pub(crate) fn look_up(
        &self,
        host: String,
        port: u16,
        event: impl FnOnce(Result<SocketAddr, String>) -> GatewayEvent + Send + 'static,
    ) {
        let events = self.events_tx.clone();
        let resolver = self.resolver.clone();
        let want_v4 = self.advertise.is_ipv4();
        tokio::spawn(async move {
            let result = resolver.lookup(&host, port, want_v4).await;
            let _ = events.send(event(result)).await;
        });
    }

    /// The trunk's name resolved (or not).
    pub(crate) fn on_originate_resolved(
        &mut self,
        pending: Pending,
        result: Result<SocketAddr, String>,
    ) {
        match result {
            Ok(addr) => self.place(pending, addr),
            Err(why) => {
                let why = format!("outbound trunk `{}`: {why}", pending.trunk.name);
                tracing::warn!(%why, "cannot place the call");
                let _ = pending.reply.send(Err(OriginateError::Unavailable(why)));
            }
        }
    }

    /// Everything that can be checked without waiting.
    fn check_originate(
        &self,
        request: &OriginateRequest,
    ) -> Result<(OutboundTrunk, TransportKind), OriginateError> {
        if self.draining {
            return Err(OriginateError::Unavailable("shutting down".into()));
        }
        let no_trunk = || OriginateError::NoTrunk(request.outbound.clone());
        let trunk = self
            .config
            .outbound(&request.outbound)
            .cloned()
            .ok_or_else(no_trunk)?;
        let Some(owner) = self.config.outbound_owner(&trunk) else {
            return Err(OriginateError::Unavailable(format!(
                "outbound trunk `{}`: the config has no [[trunk]] for the policy of calls placed on it",
                trunk.name
            )));
        };
        let owner = &self.config.trunks[owner];
        if request
            .tenant
            .as_deref()
            .is_some_and(|t| t != owner.tenant())
        {
            return Err(no_trunk());
        }
        let kind = trunk
            .transport_kind()
            .map_err(OriginateError::Unavailable)?;
        if self.local_via(kind).is_none() {
            return Err(OriginateError::Unavailable(format!(
                "outbound trunk `{}` needs a {kind:?} listener ([sip])",
                trunk.name
            )));
        }
        self.check_capacity(&trunk)?;
        trunk.dial(&request.to)?;
        if request.headers.len() > MAX_HEADERS {
            return Err(OriginateError::Invalid(format!(
                "{} headers; at most {MAX_HEADERS}",
                request.headers.len()
            )));
        }
        for h in &request.headers {
            let token = !h.name.is_empty()
                && h.name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
            if !token || !h.name.to_ascii_lowercase().starts_with("x-") {
                return Err(OriginateError::Invalid(format!(
                    "header `{}`: only X- headers may be added",
                    h.name
                )));
            }
            if h.value.len() > MAX_HEADER_VALUE || h.value.chars().any(char::is_control) {
                return Err(OriginateError::Invalid(format!(
                    "header `{}`: the value is longer than {MAX_HEADER_VALUE} bytes or has control characters",
                    h.name
                )));
            }
        }
        if let Some(user) = &request.caller_id
            && !trunkline_sip::leg::is_user_token(user)
        {
            return Err(OriginateError::Invalid(format!(
                "caller_id `{user}` is not a number or a plain SIP user"
            )));
        }
        Ok((trunk, kind))
    }

    /// `max_concurrent` of `trunk` is not reached (and we are not shutting
    /// down).
    fn check_capacity(&self, trunk: &OutboundTrunk) -> Result<(), OriginateError> {
        if self.draining {
            return Err(OriginateError::Unavailable("shutting down".into()));
        }
        // Calls not yet ended: an ended one may linger a while for its
        // transactions, and is not on the trunk any more.
        let active = self.outbound_active.get(&trunk.name).copied().unwrap_or(0);
        if active >= trunk.max_concurrent {
            return Err(OriginateError::AtCapacity {
                trunk: trunk.name.clone(),
                max: trunk.max_concurrent,
            });
        }
        Ok(())
    }

    /// Places the checked call toward `addr`, the trunk's address.
    fn place(&mut self, pending: Pending, addr: SocketAddr) {
        let Pending {
            request,
            trunk,
            kind,
            reply,
        } = pending;
        let result = self.start_placed(&request, &trunk, kind, addr);
        if let Ok(call_id) = &result {
            tracing::info!(%call_id, outbound = %trunk.name, "placing the call");
        }
        if reply.send(result.clone()).is_err()
            && let Ok(call_id) = result
        {
            // The API's client went away: the call goes on, as it would
            // after the 201 (its id is in the log and the records).
            tracing::debug!(%call_id, "originate's client left before the answer");
        }
    }

    fn start_placed(
        &mut self,
        request: &OriginateRequest,
        trunk: &OutboundTrunk,
        kind: TransportKind,
        addr: SocketAddr,
    ) -> Result<String, OriginateError> {
        // Checked again: calls may have started during the look-up.
        self.check_capacity(trunk)?;
        let now = Instant::now();
        let dialled = trunk.dial(&request.to)?;
        let key = self.new_key();
        let call_id = format_call_id(key);
        // Checked above (`check_originate`).
        let owner_index = self.config.outbound_owner(trunk).unwrap_or_default();
        let owner = self.config.trunks[owner_index].clone();
        let media = self.media.open_offer(addr.ip(), key).map_err(|f| {
            OriginateError::Unavailable(format!("media: {}", f.warning.unwrap_or_default()))
        })?;
        let host = super::dialogs::host_text(self.advertise);
        let from_user = request
            .caller_id
            .clone()
            .or_else(|| trunk.caller_id.user.clone())
            .unwrap_or_default();
        let mut headers = vec![(CALL_ID_HEADER.to_owned(), call_id.clone())];
        if trunk.caller_id.assert_identity && !from_user.is_empty() {
            headers.push((
                "P-Asserted-Identity".to_owned(),
                format!("<sip:{from_user}@{host}>"),
            ));
        }
        headers.extend(
            request
                .headers
                .iter()
                .map(|h| (h.name.clone(), h.value.clone())),
        );
        let invite = InviteRequest {
            request_uri: dialled.request_uri.clone(),
            to: dialled.request_uri.clone(),
            from_user,
            from_display: trunk.caller_id.display.clone(),
            from_host: host.clone(),
            call_id: format!("{call_id}@{host}"),
            via: self.local_via(kind).unwrap_or_default(),
            contact: self.local_contact(kind).unwrap_or_default(),
            routes: Vec::new(),
            headers,
            sdp: Some(media.caller_answer().into_bytes()),
        }
        .build()
        .map_err(|e| OriginateError::Invalid(format!("cannot build the INVITE: {e}")))?;
        let tx = client_key(&invite)
            .ok_or_else(|| OriginateError::Invalid("the INVITE has no branch".into()))?;

        // Who answers: the request's agent, or the policy's choice for the
        // INVITE we are about to send.
        let source = InviteSource {
            trunk: trunk.name.clone(),
            addr,
            transport: match kind {
                TransportKind::Udp => PolicyTransport::Udp,
                TransportKind::Tcp => PolicyTransport::Tcp,
                TransportKind::Tls => PolicyTransport::Tls,
            },
            call_id: call_id.clone(),
        };
        let mut policy_call = call_from_message(&invite, &source)
            .map_err(|e| OriginateError::Invalid(format!("the INVITE: {e}")))?;
        policy_call.direction = crate::policy::Direction::Outbound;
        // The number in E.164 whatever the trunk's prefix or `+` rules put
        // on the wire (as the contract says).
        if let Some(e164) = &dialled.e164 {
            policy_call.dialed = Some(e164.clone());
        }
        let span = tracing::info_span!("call", %call_id, shared_id = tracing::field::Empty,
            trunk = %owner.name, policy = %owner.policy, version = tracing::field::Empty);
        let _entered = span.clone().entered();
        span.record(
            "shared_id",
            crate::policy::default_shared_id(&policy_call).as_str(),
        );
        let (target, mut attributes, agent_extra, version) = match &request.agent {
            Some(agent) => {
                let version = self.registry.get(&owner.policy);
                (agent.clone(), Vec::new(), Vec::new(), version)
            }
            None => {
                let routed = self.registry.route(&owner, &policy_call);
                match routed.decision {
                    Decision::Reject(r) => {
                        return Err(OriginateError::Refused {
                            status: r.status,
                            reason: r.reason,
                        });
                    }
                    Decision::Connect(c) => (c.target, c.attributes, c.headers, routed.version),
                }
            }
        };
        if let Some(v) = &version {
            span.record("version", v.hash());
        }
        attributes.extend(request.attributes.iter().cloned());
        for (k, v) in [
            ("trunkline.direction", "outbound"),
            ("trunkline.outbound", trunk.name.as_str()),
        ] {
            attributes.retain(|a| a.key != k);
            attributes.push(Attribute {
                key: k.to_owned(),
                value: v.to_owned(),
            });
        }

        let ring = Duration::from_secs(
            request
                .ring_timeout_secs
                .unwrap_or(trunk.ring_timeout_secs)
                .max(1),
        );
        let digest = trunk
            .credentials
            .clone()
            .map(|(user, secret)| DigestClient::new(user, secret));
        let leg = OutboundLeg::new(
            now,
            invite.clone(),
            &OutboundConfig {
                ring_timeout: ring,
                timers: self.timer_config,
                reliability: kind.reliability(),
            },
            digest,
        )
        .map_err(|e| OriginateError::Invalid(format!("cannot start the leg: {e}")))?;
        let core = trunkline_call::Call::originate(
            now,
            leg,
            CallConfig {
                ring_timeout: ring,
                max_duration: Duration::from_secs(self.config.gateway.max_call_secs),
                refer_timeout: Duration::from_secs(self.config.gateway.refer_timeout_secs),
                caller_sdp: Vec::new(),
                session: None,
                agent_timeout: Duration::from_secs(self.config.gateway.ring_timeout_secs),
            },
        );
        let to = match (kind, super::inbound::uri_domain(&trunk.uri)) {
            (TransportKind::Tls, Some(name)) => Target::tls(addr, name),
            _ => Target::new(kind, addr),
        };
        let call = Call {
            key,
            trunk: owner_index,
            outbound: Some(trunk.name.clone()),
            policy_call,
            version,
            target,
            attributes,
            dtmf: String::new(),
            started: SystemTime::now(),
            answered: None,
            caller_invite: Wire::shared(to, Arc::new(invite)),
            caller_tx: tx,
            core,
            armed: None,
            caller_peer: DialogPeer::new(addr.ip(), None),
            agent_extra,
            agent_target: None,
            agent_ok_to: None,
            agent_peer: None,
            agent_bye_headers: Vec::new(),
            transfer: None,
            transfer_target: None,
            transfer_peer: None,
            media: Some(media),
            connector: None,
            fell_back: false,
            span: span.clone(),
            _secrets: crate::redact::Registered::new(Vec::new()),
            pending: Vec::new(),
            session: None,
            refresh_tx: None,
        };
        self.stats.call_started();
        self.calls.insert(key, call);
        *self.outbound_active.entry(trunk.name.clone()).or_default() += 1;
        // The INVITE goes out (through `drive`), the ring timer is armed.
        self.drive(key);
        Ok(call_id)
    }
}
