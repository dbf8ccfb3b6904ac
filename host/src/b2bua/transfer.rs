//! Transfers the agent asks for (`POST /v1/calls/{id}/transfer` with a
//! `mode`): a third leg dialled through an `[[outbound]]` trunk, bridged
//! to the caller in the agent's place once it answers.
//!
//! The request is checked on the core task without waiting for anything
//! (the call, the trunk and its tenant, the number); a trunk named by DNS
//! is looked up off it. The rules of the leg (when the caller moves, what a
//! failure leaves) are the call core's (`trunkline_call::transfer`); this
//! module builds the leg, carries out what it reports, and keeps the
//! trunk's `max_concurrent` count: a transfer counts from the request until
//! it fails or the call ends, and a full trunk fails it at once
//! (`capacity`), leaving the caller with the agent.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use trunkline_call::{TransferFailure, TransferMode, TransferRefused};
use trunkline_sip::auth::DigestClient;
use trunkline_sip::dialog::DialogPeer;
use trunkline_sip::leg::{InviteRequest, OutboundConfig, OutboundLeg, is_user_token};
use trunkline_sip::message::Uri;

use super::call::{CallKey, TransferInfo, format_call_id};
use super::control::ControlError;
use super::gateway::{Gateway, GatewayEvent};
use super::inbound::CALL_ID_HEADER;
use super::originate::{TrunkAddress, trunk_address};
use crate::config::{OutboundTrunk, TransferCallerId};
use crate::transport::{Target, TransportKind};

/// What a transfer asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferRequest {
    /// Cold or warm.
    pub mode: TransferMode,
    /// The number (any common writing) or `sip:` URI of the target.
    pub to: String,
    /// The `[[outbound]]` trunk to dial it through.
    pub outbound: String,
}

/// A checked transfer waiting for its trunk's address.
#[derive(Debug)]
pub struct PendingTransfer {
    key: CallKey,
    trunk: OutboundTrunk,
    kind: TransportKind,
}

impl Gateway {
    /// Starts the transfer `request` on call `key`: `Err` when it cannot
    /// start (409 for the call's state, 422 for the request); `Ok` once it
    /// is on its way (a full trunk fails it at once, as the agent is told).
    pub(crate) fn start_transfer(
        &mut self,
        key: CallKey,
        request: TransferRequest,
    ) -> Result<(), ControlError> {
        let call = self.calls.get(&key).ok_or(ControlError::NoSuchCall)?;
        call.core.can_transfer().map_err(|e| match e {
            TransferRefused::Ending => ControlError::Ending,
            other => ControlError::Conflict(other.to_string()),
        })?;
        let tenant = self.config.trunks[call.trunk].tenant().to_owned();
        let no_trunk = || {
            ControlError::Invalid(format!(
                "no [[outbound]] trunk is named `{}`",
                request.outbound
            ))
        };
        let trunk = self
            .config
            .outbound(&request.outbound)
            .cloned()
            .ok_or_else(no_trunk)?;
        // Another tenant's trunk is answered as an unknown one.
        let owner = self.config.outbound_owner(&trunk).ok_or_else(no_trunk)?;
        if self.config.trunks[owner].tenant() != tenant {
            return Err(no_trunk());
        }
        trunk
            .dial(&request.to)
            .map_err(|e| ControlError::Invalid(e.to_string()))?;
        let kind = trunk.transport_kind().map_err(ControlError::Invalid)?;
        if self.local_via(kind).is_none() {
            return Err(ControlError::Invalid(format!(
                "outbound trunk `{}` needs a {kind:?} listener ([sip])",
                trunk.name
            )));
        }
        let call_id = format_call_id(key);
        let active = self.outbound_active.get(&trunk.name).copied().unwrap_or(0);
        let counted = active < trunk.max_concurrent;
        if let Some(call) = self.calls.get_mut(&key) {
            call.transfer = Some(TransferInfo {
                mode: request.mode,
                to: request.to.clone(),
                outbound: trunk.name.clone(),
                started: SystemTime::now(),
                counted,
                result: "dialling",
                failure: None,
                bridged: None,
            });
        }
        tracing::info!(%call_id, mode = request.mode.as_str(), to = %request.to,
            outbound = %trunk.name, "transfer asked for");
        if !counted {
            self.transfer_over(key, "failed", Some(("capacity".into(), None)));
            return Ok(());
        }
        *self.outbound_active.entry(trunk.name.clone()).or_default() += 1;
        let address = trunk_address(&trunk.uri);
        let pending = PendingTransfer { key, trunk, kind };
        match address {
            TrunkAddress::Known(addr) => self.dial_transfer(pending, addr),
            TrunkAddress::Name(host, port) => self.look_up(host, port, move |result| {
                GatewayEvent::TransferResolved(Box::new(pending), result)
            }),
            TrunkAddress::None => {
                self.transfer_over(key, "failed", Some(("unreachable".into(), None)))
            }
        }
        Ok(())
    }

    /// The transfer trunk's name resolved (or not).
    pub(crate) fn on_transfer_resolved(
        &mut self,
        pending: PendingTransfer,
        result: Result<SocketAddr, String>,
    ) {
        match result {
            Ok(addr) => self.dial_transfer(pending, addr),
            Err(why) => {
                tracing::warn!(call_id = %format_call_id(pending.key), outbound = %pending.trunk.name,
                    %why, "cannot reach the transfer trunk");
                self.transfer_over(pending.key, "failed", Some(("unreachable".into(), None)));
            }
        }
    }

    /// Builds the target's leg toward `addr` and hands it to the call.
    fn dial_transfer(&mut self, pending: PendingTransfer, addr: SocketAddr) {
        let PendingTransfer { key, trunk, kind } = pending;
        let now = Instant::now();
        let host = super::dialogs::host_text(self.advertise);
        let via = self.local_via(kind).unwrap_or_default();
        let contact = self.local_contact(kind).unwrap_or_default();
        let timers = self.timer_config;
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let Some(info) = call.transfer.clone() else {
            return;
        };
        let fail = |why: &str| Some((why.to_owned(), None));
        // The call may have moved on during the look-up.
        if call.core.can_transfer().is_err() {
            self.transfer_over(key, "failed", fail("unreachable"));
            return;
        }
        let Ok(dialled) = trunk.dial(&info.to) else {
            self.transfer_over(key, "failed", fail("rejected"));
            return;
        };
        let offer = match (call.media.as_mut(), &self.media) {
            (Some(media), plane) => plane.open_transfer(media, addr.ip(), key),
            (None, _) => {
                self.transfer_over(key, "failed", fail("media"));
                return;
            }
        };
        let offer = match offer {
            Ok(o) => o,
            Err(f) => {
                tracing::warn!(call_id = %call.id(), failure = %f, "no media for the transfer");
                self.transfer_over(key, "failed", Some(("media".into(), Some(f.status))));
                return;
            }
        };
        // The target (a Five9 inbound number, a human) sees the customer's
        // number when it is one (unless the trunk says `on_transfer =
        // "trunk"`), else the trunk's caller id.
        // The customer: who called in, or on a call we placed, the number
        // we dialled.
        let customer = match &call.outbound {
            Some(_) => call.policy_call.dialed.clone(),
            None => Uri::parse(&call.policy_call.from_uri).and_then(|u| u.user),
        };
        let caller = customer
            .filter(|u| is_user_token(u))
            .filter(|_| trunk.caller_id.on_transfer == TransferCallerId::Caller);
        let from_user = caller
            .or_else(|| trunk.caller_id.user.clone())
            .unwrap_or_default();
        let call_id = call.id();
        let mut headers = vec![(CALL_ID_HEADER.to_owned(), call_id.clone())];
        if trunk.caller_id.assert_identity
            && let Some(id) = &trunk.caller_id.user
        {
            headers.push((
                "P-Asserted-Identity".to_owned(),
                format!("<sip:{id}@{host}>"),
            ));
        }
        let invite = InviteRequest {
            request_uri: dialled.request_uri.clone(),
            to: dialled.request_uri.clone(),
            from_user,
            from_display: trunk.caller_id.display.clone(),
            from_host: host.clone(),
            call_id: format!(
                "{call_id}-xfer-{:08x}@{host}",
                super::call::random_key() as u32
            ),
            via,
            contact,
            routes: Vec::new(),
            headers,
            sdp: Some(offer.into_bytes()),
        }
        .build();
        let digest = trunk
            .credentials
            .clone()
            .map(|(user, secret)| DigestClient::new(user, secret));
        let leg = invite.map_err(|e| e.to_string()).and_then(|invite| {
            OutboundLeg::new(
                now,
                invite,
                &OutboundConfig {
                    ring_timeout: Duration::from_secs(trunk.ring_timeout_secs.max(1)),
                    timers,
                    reliability: kind.reliability(),
                },
                digest,
            )
            .map_err(|e| e.to_string())
        });
        let leg = match leg {
            Ok(leg) => leg,
            Err(why) => {
                tracing::error!(%call_id, %why, "cannot build the transfer INVITE");
                self.transfer_over(key, "failed", fail("rejected"));
                return;
            }
        };
        call.transfer_target = Some(match (kind, super::inbound::uri_domain(&trunk.uri)) {
            (TransportKind::Tls, Some(name)) => Target::tls(addr, name),
            _ => Target::new(kind, addr),
        });
        call.transfer_peer = Some(DialogPeer::new(addr.ip(), None));
        if call.core.transfer(now, leg, info.mode).is_err() {
            self.transfer_over(key, "failed", fail("rejected"));
            return;
        }
        tracing::info!(%call_id, to = %dialled.request_uri, "dialling the transfer target");
        self.drive(key);
    }

    /// Warm: `complete` (bridge caller and target, let the agent go) or
    /// `cancel` (drop the target; the caller stays with, or returns to, the
    /// agent). 409 when there is nothing to complete or cancel.
    pub(crate) fn finish_transfer(
        &mut self,
        key: CallKey,
        complete: bool,
    ) -> Result<(), ControlError> {
        let now = Instant::now();
        let call = self.calls.get_mut(&key).ok_or(ControlError::NoSuchCall)?;
        let done = if complete {
            call.core.complete_transfer(now)
        } else {
            call.core.cancel_transfer(now)
        };
        done.map_err(|e| ControlError::Conflict(e.to_string()))?;
        tracing::info!(call_id = %call.id(), order = if complete { "complete" } else { "cancel" },
            "agent finished the transfer");
        self.drive(key);
        Ok(())
    }

    /// The core's `TransferFailed`: the caller stays with the agent; the
    /// agent and the record are told.
    pub(crate) fn transfer_failed(
        &mut self,
        key: CallKey,
        why: TransferFailure,
        detail: Option<String>,
    ) {
        tracing::info!(call_id = %format_call_id(key), %why, detail = detail.as_deref().unwrap_or(""),
            "transfer failed; the caller stays with the agent");
        let result = if why == TransferFailure::Cancelled {
            "cancelled"
        } else {
            "failed"
        };
        self.transfer_over(key, result, Some((why.kind().to_owned(), why.status())));
    }

    /// The core's `Transferred`: the caller talks to the target, the agent
    /// is let go (a SIP agent had its BYE from the core).
    pub(crate) fn transferred(&mut self, key: CallKey) {
        if let Some(info) = self.calls.get_mut(&key).and_then(|c| c.transfer.as_mut()) {
            info.result = "bridged";
            info.bridged = Some(SystemTime::now());
        }
        tracing::info!(call_id = %format_call_id(key), "caller bridged to the transfer target; agent released");
        self.stop_connector(key, "transferred");
    }

    /// A transfer is over without a bridge: the trunk's count, the ports,
    /// the record, and the agent (a connector hears `transfer_failed`).
    fn transfer_over(
        &mut self,
        key: CallKey,
        result: &'static str,
        failure: Option<(String, Option<u16>)>,
    ) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if let Some(media) = call.media.as_mut() {
            media.drop_transfer();
        }
        let Some(info) = call.transfer.as_mut() else {
            return;
        };
        info.result = result;
        info.failure = failure.clone();
        if std::mem::take(&mut info.counted)
            && let Some(active) = self.outbound_active.get_mut(&info.outbound)
        {
            *active = active.saturating_sub(1);
        }
        if let Some((kind, status)) = failure {
            self.connector_transfer_failed(key, &kind, status, None);
        }
    }

    /// The call ended: a transfer still counted leaves the trunk's count.
    pub(crate) fn release_transfer(&mut self, key: CallKey) {
        let Some(info) = self.calls.get_mut(&key).and_then(|c| c.transfer.as_mut()) else {
            return;
        };
        if std::mem::take(&mut info.counted)
            && let Some(active) = self.outbound_active.get_mut(&info.outbound)
        {
            *active = active.saturating_sub(1);
        }
    }
}
