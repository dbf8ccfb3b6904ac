//! A new INVITE: admission, the policy's `route`, and the agent leg.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant, SystemTime};

use trunkline_call::{CallConfig, CallInput};
use trunkline_sip::dialog::{self, DialogPeer};
use trunkline_sip::inspect::inspect;
use trunkline_sip::leg::{
    InboundConfig, InboundLeg, InviteRequest, LegFailure, OutboundConfig, OutboundLeg,
};
use trunkline_sip::message::{Host, Scheme, Uri, new_tag};
use trunkline_sip::transaction::{Reliability, TableError, TransactionKey};

use super::admission::Verdict;
use super::call::CallKey;
use super::call::{Call, Leg, format_call_id};
use super::gateway::{Gateway, GatewayEvent};
use super::media::MediaFailure;
use super::wire::Wire;
use crate::invite::{InviteSource, call_from_message};
use crate::policy::{Decision, Transport as PolicyTransport};
use crate::transport::{Target, TransportKind};

/// Headers the agent leg's INVITE always carries, so an agent can find the
/// call in the control API.
pub(crate) const CALL_ID_HEADER: &str = "X-Trunkline-Call-ID";

impl Gateway {
    pub(crate) fn on_new_invite(
        &mut self,
        now: Instant,
        key: TransactionKey,
        wire: Wire,
        source: SocketAddr,
        reliability: Reliability,
    ) {
        let msg = wire.msg.clone();
        let reply_to = wire.target.clone();
        let secrets = crate::redact::Registered::new(crate::redact::secret_values(
            msg.headers()
                .iter()
                .map(|h| (h.name.as_str(), h.value.as_str())),
        ));
        let caller_tag = new_tag();
        // Refusals before admission are sent once, statelessly (RFC 3261
        // §26.3.2.4 allows it for requests a UAS does not process): no
        // transaction, so no retransmissions to amplify and no state to
        // fill. A retransmitted INVITE is answered again, one for one.
        let stateless = |gw: &Gateway, status: u16, warning: Option<&str>| {
            if let Ok(mut r) = msg.reply(status, None, Some(&caller_tag)) {
                if let Some(w) = warning {
                    let _ = r.push_header("Warning", w);
                }
                if status == 503 {
                    let _ = r.push_header("Retry-After", "5");
                }
                gw.send_now(Wire::new(reply_to.clone(), r));
            }
        };
        if self.draining {
            stateless(self, 503, Some("399 trunkline \"Shutting down\""));
            return;
        }
        let trunk = match self.gatekeeper.admit(&msg, source.ip(), SystemTime::now()) {
            Verdict::Trunk(i) => i,
            Verdict::Refuse(r) => {
                self.send_now(Wire::new(reply_to.clone(), *r));
                return;
            }
            Verdict::Drop => return,
        };
        let Ok(trying) = msg.reply(100, None, None) else {
            return;
        };
        match self.table.start_server_invite(
            now,
            key.clone(),
            reliability,
            Wire::new(reply_to.clone(), trying),
            source.ip(),
        ) {
            Ok(()) => {}
            Err(TableError::Overloaded(why)) => {
                self.stats.overloaded();
                tracing::warn!(%source, %why, "no room for the INVITE's transaction: 503");
                stateless(self, 503, Some("399 trunkline \"Overloaded\""));
                return;
            }
            Err(_) => return,
        }
        let refuse =
            |gw: &mut Gateway, status: u16, reason: Option<&str>, warning: Option<&str>| {
                if let Ok(mut r) = msg.reply(status, reason, Some(&caller_tag)) {
                    if let Some(w) = warning {
                        let _ = r.push_header("Warning", w);
                    }
                    let _ =
                        gw.table
                            .send_response(now, &key, status, Wire::new(reply_to.clone(), r));
                }
            };
        // RFC 3261 §8.2, for an admitted caller only: an unknown scheme
        // (416), a Require we do not support (420), a body that is not SDP
        // (415), an Accept without SDP (406). Before the policy is asked or
        // a relay port taken.
        if let Some(refusal) = inspect(&msg) {
            tracing::info!(%source, status = refusal.status(), "INVITE refused before routing");
            if let Ok(r) = refusal.reply(&msg, Some(&caller_tag)) {
                let status = refusal.status();
                let _ = self
                    .table
                    .send_response(now, &key, status, Wire::new(reply_to.clone(), r));
            }
            return;
        }
        // RFC 4028: an interval below our minimum gets 422 before anything
        // else happens, so the caller can retry with a larger one.
        if let Ok(dialog::UasTimer::TooSmall { min_se }) =
            dialog::negotiate_uas(&msg, &self.session_timer_config())
        {
            if let Ok(r) = dialog::interval_too_small(&msg, min_se, Some(&caller_tag)) {
                let _ = self
                    .table
                    .send_response(now, &key, 422, Wire::new(reply_to.clone(), r));
            }
            return;
        }
        let call_key = self.new_key();
        let call_id = format_call_id(call_key);
        let trunk_cfg = self.config.trunks[trunk].clone();
        let span = tracing::info_span!("call", %call_id, shared_id = tracing::field::Empty,
            trunk = %trunk_cfg.name, policy = %trunk_cfg.policy, version = tracing::field::Empty);
        let _entered = span.clone().entered();
        let source_info = InviteSource {
            trunk: trunk_cfg.name.clone(),
            addr: source,
            transport: match reply_to.kind {
                TransportKind::Udp => PolicyTransport::Udp,
                TransportKind::Tcp => PolicyTransport::Tcp,
                TransportKind::Tls => PolicyTransport::Tls,
            },
            call_id: call_id.clone(),
        };
        let policy_call = match call_from_message(&msg, &source_info) {
            Ok(c) => c,
            Err(e) => {
                let reason = e.to_string();
                refuse(self, e.status(), Some(&reason), None);
                return;
            }
        };
        let media = match self.media.open(msg.body(), source.ip(), call_key) {
            Ok(m) => m,
            Err(MediaFailure {
                status,
                reason,
                warning,
            }) => {
                tracing::info!(%call_id, status, ?warning, "caller's media refused");
                refuse(self, status, Some(reason), warning.as_deref());
                return;
            }
        };
        span.record(
            "shared_id",
            crate::policy::default_shared_id(&policy_call).as_str(),
        );
        let routed = self.registry.route(&trunk_cfg, &policy_call);
        if let Some(v) = &routed.version {
            span.record("version", v.hash());
        }
        let connect = match routed.decision {
            Decision::Reject(r) => {
                tracing::info!(%call_id, status = r.status, reason = %r.reason, "policy rejected the call");
                let reason = (!r.reason.is_empty()).then_some(r.reason.as_str());
                refuse(self, r.status, reason, None);
                return;
            }
            Decision::Connect(c) => c,
        };
        tracing::info!(%call_id, trunk = %trunk_cfg.name, target = %connect.target,
            policy = %trunk_cfg.policy, fallback = routed.fallback.is_some(), "routing call");

        let kind = wire.target.kind;
        let caller = InboundLeg::new(
            wire.msg.clone(),
            InboundConfig {
                timers: self.timer_config,
                reliability,
                local_via: self.local_via(kind).unwrap_or_default(),
                contact: self.local_contact(kind).unwrap_or_default(),
            },
        );
        let caller = match caller {
            Ok(leg) => leg,
            Err(e) => {
                tracing::error!(%call_id, error = %e, "caller leg could not start");
                refuse(self, 500, None, None);
                return;
            }
        };
        let session = match dialog::negotiate_uas(&msg, &self.session_timer_config()) {
            Ok(dialog::UasTimer::Run(negotiated)) => Some(negotiated),
            _ => None,
        };
        let core = trunkline_call::Call::new(
            Instant::now(),
            caller,
            CallConfig {
                ring_timeout: Duration::from_secs(self.config.gateway.ring_timeout_secs),
                max_duration: Duration::from_secs(self.config.gateway.max_call_secs),
                refer_timeout: Duration::from_secs(self.config.gateway.refer_timeout_secs),
                caller_sdp: media.caller_answer().into_bytes(),
                session,
                // (For calls we place; here `ring_timeout` covers it.)
                agent_timeout: Duration::from_secs(self.config.gateway.ring_timeout_secs),
            },
        );
        let call = Call {
            key: call_key,
            trunk,
            outbound: None,
            policy_call,
            version: routed.version,
            target: connect.target.clone(),
            attributes: connect.attributes.clone(),
            dtmf: String::new(),
            started: SystemTime::now(),
            answered: None,
            caller_invite: wire,
            caller_tx: key.clone(),
            core,
            armed: None,
            caller_peer: DialogPeer::new(source.ip(), reply_to.conn),
            agent_extra: connect.headers,
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
            _secrets: secrets,
            pending: Vec::new(),
            session: None,
            refresh_tx: None,
        };
        self.by_tx.insert(key, (call_key, Leg::Caller));
        self.stats.call_started();
        self.calls.insert(call_key, call);
        // Arms the ring timeout.
        self.drive(call_key);
        self.reach_agent(call_key);
    }

    /// The agent cannot be reached (no address, a bad target): the caller
    /// gets 503.
    pub(crate) fn agent_unreachable(&mut self, call_key: CallKey) {
        let input = CallInput::AgentUnreachable {
            failure: LegFailure::unreachable(),
            status: 503,
        };
        self.tell_call(call_key, input);
    }

    /// Starts reaching the call's agent target: a connector (WebSocket,
    /// builtin), or a SIP INVITE (after a DNS look-up when needed).
    pub(crate) fn reach_agent(&mut self, call_key: CallKey) {
        let Some(call) = self.calls.get_mut(&call_key) else {
            return;
        };
        let (call_id, target) = (call.id(), call.target.clone());
        if let Some(connector) = crate::connector::ConnectorTarget::parse(&target) {
            self.start_connector(call_key, connector);
            return;
        }
        if let Some(media) = call.media.as_mut() {
            media.drop_tap(); // A connector that failed before: RTP again.
        }
        match agent_address(&target) {
            Ok(AgentAddress::Ready(addr, kind)) => self.start_agent_leg(call_key, addr, kind),
            Ok(AgentAddress::Resolve { host, port, kind }) => {
                // Resolved off the core task; the call waits in Calling (the
                // ring timeout still applies).
                let events = self.events_tx.clone();
                // Our sockets speak one address family: prefer its records.
                let want_v4 = self.advertise.is_ipv4();
                let resolver = self.resolver.clone();
                tokio::spawn(async move {
                    let result = resolver.lookup(&host, port, want_v4).await;
                    let _ = events
                        .send(GatewayEvent::AgentResolved(
                            call_key,
                            result.map(|a| (a, kind)),
                        ))
                        .await;
                });
            }
            Err(why) => {
                tracing::warn!(%call_id, %target, %why, "cannot reach the agent");
                self.agent_unreachable(call_key);
            }
        }
    }

    /// The agent's address is known: send our INVITE.
    pub(crate) fn start_agent_leg(
        &mut self,
        call_key: CallKey,
        addr: SocketAddr,
        kind: TransportKind,
    ) {
        let now = Instant::now();
        let Some(call) = self.calls.get(&call_key) else {
            return;
        };
        if !call.state().is_calling() {
            return; // The caller left while the agent's name was resolved.
        }
        let call_id = call.id();
        let wire = match self.agent_invite(call, addr, kind) {
            Ok(wire) => wire,
            Err(why) => {
                tracing::warn!(%call_id, %why, "cannot build the agent's INVITE");
                self.agent_unreachable(call_key);
                return;
            }
        };
        let config = OutboundConfig {
            // The call's own ring timer (armed when it arrived) covers
            // DNS and connectors too; the leg's is a backstop.
            ring_timeout: Duration::from_secs(self.config.gateway.ring_timeout_secs),
            timers: self.timer_config,
            reliability: kind.reliability(),
        };
        let leg = match OutboundLeg::new(now, wire.msg.clone(), &config, None) {
            Ok(leg) => leg,
            Err(e) => {
                tracing::error!(%call_id, error = %e, "agent leg could not start");
                let input = CallInput::AgentUnreachable {
                    failure: LegFailure::unreachable(),
                    status: 500,
                };
                self.tell_call(call_key, input);
                return;
            }
        };
        if let Some(call) = self.calls.get_mut(&call_key) {
            call.agent_peer = Some(DialogPeer::new(addr.ip(), None));
            call.agent_target = Some(wire.target.clone());
            if !call.core.dial_agent(now, leg) {
                tracing::info!(%call_id, "the call ended before its agent was dialled");
            }
        }
        self.drive(call_key);
    }

    /// Our INVITE to the agent: the policy's headers, our SDP offer, and the
    /// Trunkline call id for the control API.
    fn agent_invite(
        &self,
        call: &Call,
        addr: SocketAddr,
        kind: TransportKind,
    ) -> Result<Wire, String> {
        let target = &call.target;
        let extra = &call.agent_extra;
        let via = self
            .local_via(kind)
            .ok_or_else(|| format!("no {kind:?} listener for the agent leg"))?;
        let contact = self.local_contact(kind).unwrap_or_default();
        let host = super::dialogs::host_text(self.advertise);
        let call_id = call.id();
        let mut headers = vec![(CALL_ID_HEADER.to_owned(), call_id.clone())];
        headers.extend(extra.iter().map(|h| (h.name.clone(), h.value.clone())));
        let offer = call
            .media
            .as_ref()
            .map(|m| m.agent_offer())
            .unwrap_or_default();
        let invite = InviteRequest {
            request_uri: target.clone(),
            to: target.clone(),
            // The caller's number as our From user, so the agent sees who
            // calls (a user that is not a plain token becomes `trunkline`);
            // on a call we placed, the number we dialled: who the agent
            // talks to.
            from_user: match call.policy_call.direction {
                crate::policy::Direction::Outbound => {
                    call.policy_call.dialed.clone().unwrap_or_default()
                }
                crate::policy::Direction::Inbound => call
                    .policy_call
                    .from_uri
                    .split_once(':')
                    .and_then(|(_, rest)| rest.split('@').next())
                    .unwrap_or_default()
                    .to_owned(),
            },
            from_display: match call.policy_call.direction {
                crate::policy::Direction::Outbound => None,
                crate::policy::Direction::Inbound => call.policy_call.from_display.clone(),
            },
            from_host: host.clone(),
            call_id: format!("{call_id}@{host}"),
            via,
            contact,
            routes: Vec::new(),
            headers,
            sdp: Some(offer.into_bytes()),
        }
        .build()
        .map_err(|e| e.to_string())?;
        // A TLS agent's certificate must name the URI's host: its DNS name,
        // or (for an IP address, tls_name None) that address.
        let to = match (kind, uri_domain(target)) {
            (TransportKind::Tls, Some(name)) => Target::tls(addr, name),
            _ => Target::new(kind, addr),
        };
        Ok(Wire::new(to, invite))
    }
}

/// Where an agent target points.
#[derive(Debug, PartialEq, Eq)]
enum AgentAddress {
    /// An IP address: ready to send.
    Ready(SocketAddr, TransportKind),
    /// A DNS name to resolve first (A/AAAA; SRV is not consulted, so the
    /// port is the URI's or the scheme's default).
    Resolve {
        host: String,
        port: u16,
        kind: TransportKind,
    },
}

/// The DNS name in a SIP URI's host (an agent target, a trunk), if it has one: what a TLS peer's certificate must name.
pub(crate) fn uri_domain(target: &str) -> Option<String> {
    match Uri::parse(target)?.host? {
        Host::Domain(d) => Some(d),
        _ => None,
    }
}

/// Reads a `sip:`/`sips:` agent target.
fn agent_address(target: &str) -> Result<AgentAddress, String> {
    let uri = Uri::parse(target)
        .ok_or_else(|| format!("`{target}` is not a SIP, WebSocket or builtin agent target"))?;
    if uri.scheme == Scheme::Tel {
        return Err(format!("`{target}`: a tel: URI names no host to call"));
    }
    let kind = match (uri.scheme, uri.param("transport").flatten()) {
        (Scheme::Sips, _) => TransportKind::Tls,
        (_, Some(t)) if t.eq_ignore_ascii_case("tcp") => TransportKind::Tcp,
        (_, Some(t)) if t.eq_ignore_ascii_case("tls") => TransportKind::Tls,
        _ => TransportKind::Udp,
    };
    let port = uri.port.unwrap_or(uri.default_port());
    match &uri.host {
        Some(Host::Ipv4(a)) => Ok(AgentAddress::Ready(
            SocketAddr::new(IpAddr::V4(*a), port),
            kind,
        )),
        Some(Host::Ipv6(a)) => Ok(AgentAddress::Ready(
            SocketAddr::new(IpAddr::V6(*a), port),
            kind,
        )),
        Some(Host::Domain(d)) => Ok(AgentAddress::Resolve {
            host: d.clone(),
            port,
            kind,
        }),
        None => Err(format!("`{target}` has no host")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_targets() {
        let ip = |s: &str| s.parse::<SocketAddr>().unwrap();
        let cases: Vec<(&str, Result<AgentAddress, &str>)> = vec![
            (
                "sip:agent@127.0.0.1:5080",
                Ok(AgentAddress::Ready(
                    ip("127.0.0.1:5080"),
                    TransportKind::Udp,
                )),
            ),
            (
                "sip:agent@127.0.0.1",
                Ok(AgentAddress::Ready(
                    ip("127.0.0.1:5060"),
                    TransportKind::Udp,
                )),
            ),
            (
                "sip:a@[::1]:5090;transport=tcp",
                Ok(AgentAddress::Ready(ip("[::1]:5090"), TransportKind::Tcp)),
            ),
            (
                "sips:a@10.0.0.1",
                Ok(AgentAddress::Ready(ip("10.0.0.1:5061"), TransportKind::Tls)),
            ),
            (
                "sip:bot@agents.example.com",
                Ok(AgentAddress::Resolve {
                    host: "agents.example.com".into(),
                    port: 5060,
                    kind: TransportKind::Udp,
                }),
            ),
            ("http://agents.example.com/stream", Err("not a SIP")),
            ("tel:+14155550100", Err("names no host")),
        ];
        for (target, want) in cases {
            match (agent_address(target), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{target}"),
                (Err(e), Err(needle)) => assert!(e.contains(needle), "{target}: {e}"),
                (got, want) => panic!("{target}: got {got:?}, want {want:?}"),
            }
        }
    }
}
