//! SDP and the RTP relay for one call, behind the one interface the B2BUA
//! uses: Five9 and the agent each talk RTP to Trunkline, never to each
//! other.
//!
//! Toward the caller (Five9) only G.711 in the caller's order is answered,
//! plus telephone-event; an offer without PCMU/PCMA gets `488` with a
//! Warning. Toward the agent the trunk's agent codecs are offered; when the
//! legs end up on different laws the relay transcodes.
//!
//! Each leg tells the relay the IP its peer's SIP comes from (the INVITE's
//! source, the agent's SIP address): with it the relay latches a leg only
//! to sources that peer vouches for (see `trunkline_relay::latch`).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use tokio::sync::mpsc;
use trunkline_media::g711::Law;
use trunkline_media::sdp::negotiate::{
    LocalMedia, Negotiated, accept_answer, answer_g711, build_offer,
};
use trunkline_media::sdp::{Codec, Direction, SessionDescription};
use trunkline_relay::{
    Leg, LegId, LegParams, MediaEvent, MediaSession, PortAllocation, PortPool, RelayConfig,
    RelayStats, RtcpMode, TapEnd, TapHandle,
};

use crate::config::MediaSettings;

/// Why media cannot be set up; carries the SIP answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {reason}")]
pub(crate) struct MediaFailure {
    /// The SIP status for the caller.
    pub(crate) status: u16,
    /// The reason phrase.
    pub(crate) reason: &'static str,
    /// A `Warning` header value, when there is one.
    pub(crate) warning: Option<String>,
}

impl MediaFailure {
    fn not_acceptable(text: &str) -> MediaFailure {
        MediaFailure {
            status: 488,
            reason: "Not Acceptable Here",
            warning: Some(format!("399 trunkline \"{text}\"")),
        }
    }
}

/// What we offer a trunk (a number we dial, a transfer target): G.711 and
/// telephone-event, whatever the agent speaks; the relay transcodes.
fn g711_offer() -> [Codec; 3] {
    [
        Codec::g711(Law::Ulaw),
        Codec::g711(Law::Alaw),
        Codec::telephone_event(101),
    ]
}

/// Our media toward a transfer target, until it replaces the agent's leg.
pub(crate) struct TransferMedia {
    /// Its ports, until the relay takes them.
    ports: Option<PortAllocation>,
    local: LocalMedia,
    offer: SessionDescription,
    /// The trunk's address: the source its RTP may latch from.
    ip: IpAddr,
    /// Which relay leg it is on: none yet, C during a warm brief, B once
    /// bridged to the caller.
    on: Option<LegId>,
}

/// The relay shared by every call.
pub(crate) struct MediaPlane {
    pool: PortPool,
    config: RelayConfig,
    stats: Arc<RelayStats>,
    ip: IpAddr,
    agent_codecs: Vec<Codec>,
}

impl MediaPlane {
    pub(crate) fn new(settings: &MediaSettings, ip: IpAddr) -> Result<MediaPlane, String> {
        let pool =
            PortPool::new(settings.port_min..=settings.port_max).map_err(|e| e.to_string())?;
        let config = RelayConfig {
            media_timeout: std::time::Duration::from_secs(settings.timeout_secs),
            ..RelayConfig::default()
        };
        let mut agent_codecs: Vec<Codec> = settings
            .agent_codecs
            .iter()
            .filter_map(|c| Law::from_encoding_name(c).map(Codec::g711))
            .collect();
        agent_codecs.push(Codec::telephone_event(101));
        Ok(MediaPlane {
            pool,
            config,
            stats: Arc::new(RelayStats::new()),
            ip,
            agent_codecs,
        })
    }

    /// The relay's counters.
    pub(crate) fn stats(&self) -> Arc<RelayStats> {
        self.stats.clone()
    }

    /// The port pool (a handle on the same pool).
    pub(crate) fn pool(&self) -> PortPool {
        self.pool.clone()
    }

    /// Checks the caller's offer (its INVITE came from `caller_ip`) and
    /// reserves ports for both legs.
    pub(crate) fn open(
        &self,
        caller_offer: &[u8],
        caller_ip: IpAddr,
        session_id: u64,
    ) -> Result<CallMedia, MediaFailure> {
        if caller_offer.is_empty() {
            return Err(MediaFailure::not_acceptable(
                "an SDP offer is required in the INVITE",
            ));
        }
        let offer = std::str::from_utf8(caller_offer)
            .ok()
            .and_then(|t| SessionDescription::parse(t).ok())
            .ok_or_else(|| MediaFailure::not_acceptable("the SDP offer cannot be parsed"))?;
        for (name, value) in offer.media.iter().flat_map(|m| m.malformed_lines()) {
            tracing::debug!(%name, %value, "ignoring a malformed SDP line in the offer");
        }
        let (caller_ports, agent_ports) = self.reserve()?;
        let caller_local = LocalMedia::new(self.ip, caller_ports.rtp_port(), session_id);
        let (caller_answer, caller_neg) =
            answer_g711(&offer, &caller_local, &[Law::Ulaw, Law::Alaw]).map_err(|e| {
                MediaFailure {
                    status: e.status(),
                    reason: "Not Acceptable Here",
                    warning: Some(e.warning("trunkline")),
                }
            })?;
        let (agent_local, agent_offer) = self.agent_side(&agent_ports, session_id)?;
        let caller_remote = rtp_address(&offer, &caller_neg);
        Ok(CallMedia {
            caller_ip,
            agent_ip: None,
            caller_local,
            caller_answer,
            caller_neg: Some(caller_neg),
            caller_remote,
            agent_local,
            agent_offer,
            ports: Some((caller_ports, agent_ports)),
            tap: None,
            session: None,
            agent_applied: None,
            transfer: None,
            transfer_applied: None,
        })
    }

    /// One port pair for each leg; 503 when the pool is exhausted.
    fn reserve(&self) -> Result<(PortAllocation, PortAllocation), MediaFailure> {
        let exhausted = |_| MediaFailure {
            status: 503,
            reason: "Service Unavailable",
            warning: Some("399 trunkline \"No media ports available\"".into()),
        };
        let caller = self
            .pool
            .allocate(self.ip, RtcpMode::Separate)
            .map_err(exhausted)?;
        let agent = self
            .pool
            .allocate(self.ip, RtcpMode::Separate)
            .map_err(exhausted)?;
        Ok((caller, agent))
    }

    /// Our side of the agent leg on `ports`, and the offer the agent's
    /// INVITE carries (the trunk's agent codecs).
    fn agent_side(
        &self,
        ports: &PortAllocation,
        session_id: u64,
    ) -> Result<(LocalMedia, SessionDescription), MediaFailure> {
        let local = LocalMedia::new(self.ip, ports.rtp_port(), session_id);
        let offer = build_offer(&local, &self.agent_codecs, Direction::SendRecv)
            .map_err(|_| MediaFailure::not_acceptable("no agent codecs configured"))?;
        Ok((local, offer))
    }

    /// Reserves ports for a call we place toward `dialled_ip` (the trunk's
    /// address) and builds our offer for it: G.711 only (PCMU, PCMA) and
    /// telephone-event, whatever the agent speaks; the relay transcodes.
    pub(crate) fn open_offer(
        &self,
        dialled_ip: IpAddr,
        session_id: u64,
    ) -> Result<CallMedia, MediaFailure> {
        let (caller_ports, agent_ports) = self.reserve()?;
        let caller_local = LocalMedia::new(self.ip, caller_ports.rtp_port(), session_id);
        let offer = build_offer(&caller_local, &g711_offer(), Direction::SendRecv)
            .map_err(|_| MediaFailure::not_acceptable("no G.711 offer"))?;
        let (agent_local, agent_offer) = self.agent_side(&agent_ports, session_id)?;
        Ok(CallMedia {
            caller_ip: dialled_ip,
            agent_ip: None,
            caller_local,
            caller_answer: offer,
            caller_neg: None,
            caller_remote: None,
            agent_local,
            agent_offer,
            ports: Some((caller_ports, agent_ports)),
            tap: None,
            session: None,
            agent_applied: None,
            transfer: None,
            transfer_applied: None,
        })
    }

    /// Reserves ports toward a transfer target at `target_ip` (the
    /// outbound trunk's address) and returns our offer for its INVITE:
    /// G.711 only and telephone-event, as toward any trunk. 503 when the
    /// pool is exhausted.
    pub(crate) fn open_transfer(
        &self,
        media: &mut CallMedia,
        target_ip: IpAddr,
        session_id: u64,
    ) -> Result<String, MediaFailure> {
        let ports = self
            .pool
            .allocate(self.ip, RtcpMode::Separate)
            .map_err(|_| MediaFailure {
                status: 503,
                reason: "Service Unavailable",
                warning: Some("399 trunkline \"No media ports available\"".into()),
            })?;
        let local = LocalMedia::new(self.ip, ports.rtp_port(), session_id ^ 0x7ea5);
        let offer = build_offer(&local, &g711_offer(), Direction::SendRecv)
            .map_err(|_| MediaFailure::not_acceptable("no G.711 offer"))?;
        let text = offer.to_string();
        media.transfer = Some(TransferMedia {
            ports: Some(ports),
            local,
            offer,
            ip: target_ip,
            on: None,
        });
        Ok(text)
    }

    /// Starts relaying once both legs are negotiated. Media events go to
    /// `events` tagged with the caller's key.
    pub(crate) fn start<K: Copy + Send + 'static, E: Send + 'static>(
        &self,
        media: &mut CallMedia,
        agent_answer: &[u8],
        key: K,
        events: mpsc::Sender<E>,
        wrap: fn(K, MediaEvent) -> E,
    ) -> Result<(), MediaFailure> {
        let (caller_ports, agent_ports) = media
            .ports
            .take()
            .ok_or_else(|| MediaFailure::not_acceptable("media already started"))?;
        let caller_neg = media
            .caller_neg
            .as_ref()
            .ok_or_else(|| MediaFailure::not_acceptable("the dialled side has not answered"))?;
        let a = LegParams::from_negotiated(caller_neg)
            .map_err(|_| MediaFailure::not_acceptable("caller codec is not G.711"))?
            .with_signalling_ip(media.caller_ip);
        let agent_leg = match media.tap.take() {
            // A WebSocket or builtin agent: no SDP, the tap is the leg.
            Some(end) => Leg::tap(end),
            None => match media.agent_answer_params(agent_answer) {
                Ok(b) => {
                    media.agent_applied = Some(b);
                    Leg::udp(agent_ports, b)
                }
                Err(f) => {
                    // An unusable early answer leaves the ports for the 200.
                    media.ports = Some((caller_ports, agent_ports));
                    return Err(f);
                }
            },
        };
        let (session, mut rx) = MediaSession::start(
            &self.config,
            Leg::udp(caller_ports, a),
            agent_leg,
            self.stats.clone(),
        )
        .map_err(|e| MediaFailure {
            status: 500,
            reason: "Server Internal Error",
            warning: Some(format!("399 trunkline \"relay: {e}\"")),
        })?;
        media.session = Some(session);
        tokio::spawn(async move {
            while let Some(ev) = rx.recv().await {
                if events.send(wrap(key, ev)).await.is_err() {
                    break;
                }
            }
        });
        Ok(())
    }
}

/// One call's media: the negotiated legs and, once the agent answered, the
/// running relay session.
pub(crate) struct CallMedia {
    /// Where the caller's INVITE came from.
    caller_ip: IpAddr,
    /// The SIP agent's address, once known (none for taps).
    agent_ip: Option<IpAddr>,
    caller_local: LocalMedia,
    /// Our session description toward the Five9 side: the answer to its
    /// offer, or (a leg we dialled) our offer.
    caller_answer: SessionDescription,
    /// What that side and we agreed (a leg we dialled: once it answered).
    caller_neg: Option<Negotiated>,
    /// Where the caller's accepted offers last put its RTP (a hold to
    /// `0.0.0.0` keeps the address before it): what a re-offer is
    /// compared with to tell whether it moves the media.
    caller_remote: Option<SocketAddr>,
    agent_local: LocalMedia,
    agent_offer: SessionDescription,
    ports: Option<(PortAllocation, PortAllocation)>,
    /// The agent leg's tap, for a WebSocket or builtin agent, until the
    /// relay starts.
    tap: Option<TapEnd>,
    session: Option<MediaSession>,
    /// The agent leg's parameters from the agent's SDP last applied (its
    /// 183 or its 200): a 200 repeating the 183's SDP changes nothing.
    agent_applied: Option<LegParams>,
    /// Toward a transfer target, while one is dialled or bridged.
    transfer: Option<TransferMedia>,
    /// The target's leg parameters last applied.
    transfer_applied: Option<LegParams>,
}

impl CallMedia {
    /// Records the SIP agent's address (before [`MediaPlane::start`]).
    pub(crate) fn with_agent_ip(&mut self, ip: IpAddr) -> &mut CallMedia {
        self.agent_ip = Some(ip);
        self
    }

    /// Agent-leg parameters with the agent's signalling IP, when known.
    fn agent_params(&self, params: LegParams) -> LegParams {
        match self.agent_ip {
            Some(ip) => params.with_signalling_ip(ip),
            None => params,
        }
    }

    /// The agent leg's parameters from the agent's SDP answer (its 183 or
    /// its 200) to our offer.
    fn agent_answer_params(&self, sdp: &[u8]) -> Result<LegParams, MediaFailure> {
        let answer = std::str::from_utf8(sdp)
            .ok()
            .and_then(|t| SessionDescription::parse(t).ok())
            .ok_or_else(|| {
                MediaFailure::not_acceptable("the agent's SDP answer cannot be parsed")
            })?;
        let agent_neg = accept_answer(&self.agent_offer, &answer).map_err(|_| {
            MediaFailure::not_acceptable("the agent's SDP answer does not match the offer")
        })?;
        LegParams::from_negotiated(&agent_neg)
            .map(|b| self.agent_params(b))
            .map_err(|_| MediaFailure::not_acceptable("agent codec is not G.711"))
    }

    /// Whether the relay runs already (early media from an agent's 183).
    pub(crate) fn started(&self) -> bool {
        self.session.is_some()
    }

    /// The agent's SDP again, on a relay already running (a later 183, the
    /// 200 after early media): the agent leg is updated only when it
    /// changes what the relay does. `true` when it did.
    pub(crate) fn agent_answer_again(&mut self, sdp: &[u8]) -> Result<bool, MediaFailure> {
        let params = self.agent_answer_params(sdp)?;
        if self.agent_applied == Some(params) {
            return Ok(false);
        }
        if let Some(session) = &self.session {
            let _ = session.update(LegId::B, params);
        }
        self.agent_applied = Some(params);
        Ok(true)
    }

    /// The SDP offer for the agent's INVITE.
    pub(crate) fn agent_offer(&self) -> String {
        self.agent_offer.to_string()
    }

    /// Makes the agent leg an in-process tap carrying `law` frames (a
    /// WebSocket or builtin agent); the connector's end is returned.
    pub(crate) fn use_tap(&mut self, law: Law, capacity: usize) -> TapHandle {
        let (end, handle) = trunkline_relay::tap(law, capacity);
        self.tap = Some(end);
        handle
    }

    /// Back to an RTP agent leg (the connector failed; the trunk's fallback
    /// is a SIP agent).
    pub(crate) fn drop_tap(&mut self) {
        self.tap = None;
    }

    /// The SDP answer for the caller's 183 and 200 OK: the caller leg does
    /// not depend on the agent's SDP, so both carry the same version.
    pub(crate) fn caller_answer(&self) -> String {
        self.caller_answer.to_string()
    }

    /// A new offer from the caller (hold, resume, refresh): the answer, and
    /// the relay updated. Our address and ports do not change.
    pub(crate) fn caller_reoffer(&mut self, sdp: &[u8]) -> Result<String, MediaFailure> {
        self.caller_local.session_version += 1;
        let offer = parse(sdp)?;
        let (answer, neg) = answer_g711(&offer, &self.caller_local, &[Law::Ulaw, Law::Alaw])
            .map_err(|e| MediaFailure {
                status: e.status(),
                reason: "Not Acceptable Here",
                warning: Some(e.warning("trunkline")),
            })?;
        if let (Some(session), Ok(params)) = (&self.session, LegParams::from_negotiated(&neg)) {
            let _ = session.update(LegId::A, params.with_signalling_ip(self.caller_ip));
        }
        self.caller_answer = answer.clone();
        if let Some(addr) = rtp_address(&offer, &neg) {
            self.caller_remote = Some(addr);
        }
        self.caller_neg = Some(neg);
        Ok(answer.to_string())
    }

    /// The dialled side's SDP answer to our offer (a call we place): the
    /// codec and address toward it, before the relay starts.
    pub(crate) fn accept_dialled_answer(&mut self, sdp: &[u8]) -> Result<(), MediaFailure> {
        let answer = parse(sdp).map_err(|_| {
            MediaFailure::not_acceptable("the dialled side's SDP answer cannot be parsed")
        })?;
        let neg = accept_answer(&self.caller_answer, &answer).map_err(|_| {
            MediaFailure::not_acceptable("the dialled side's SDP answer does not match our offer")
        })?;
        self.caller_remote = rtp_address(&answer, &neg);
        self.caller_neg = Some(neg);
        Ok(())
    }

    /// The caller's RTP address from its accepted offers.
    pub(crate) fn caller_remote(&self) -> Option<SocketAddr> {
        self.caller_remote
    }

    /// Where a new offer from the caller would put its RTP, changing
    /// nothing; `None` when it has no usable address or will be refused.
    pub(crate) fn caller_offer_address(&self, sdp: &[u8]) -> Option<SocketAddr> {
        let offer = parse(sdp).ok()?;
        let (_, neg) = answer_g711(&offer, &self.caller_local, &[Law::Ulaw, Law::Alaw]).ok()?;
        rtp_address(&offer, &neg)
    }

    /// A new offer from the agent: answered with our agent-leg codecs.
    pub(crate) fn agent_reoffer(&mut self, sdp: &[u8]) -> Result<String, MediaFailure> {
        self.agent_local.session_version += 1;
        let offer = parse(sdp)?;
        let laws = [Law::Ulaw, Law::Alaw];
        let (answer, neg) =
            answer_g711(&offer, &self.agent_local, &laws).map_err(|e| MediaFailure {
                status: e.status(),
                reason: "Not Acceptable Here",
                warning: Some(e.warning("trunkline")),
            })?;
        if let (Some(session), Ok(params)) = (&self.session, LegParams::from_negotiated(&neg)) {
            let params = self.agent_params(params);
            let _ = session.update(LegId::B, params);
            self.agent_applied = Some(params);
        }
        Ok(answer.to_string())
    }

    /// Cold transfer: the target's SDP answer to our offer; the relay puts
    /// the target on the agent's leg (the agent's media ends, the caller
    /// hears one stream go on). 488 when the answer cannot be used.
    pub(crate) fn bridge_transfer(&mut self, sdp: &[u8]) -> Result<(), MediaFailure> {
        let (ports, params) = self.transfer_answer(sdp)?;
        let session = self.running()?;
        session
            .replace(LegId::B, Leg::udp(ports, params))
            .map_err(relay_failure)?;
        self.bridged(params);
        Ok(())
    }

    /// Warm transfer: the target's SDP answer; the relay puts it on a leg
    /// of its own with the agent, the caller hears hold audio.
    pub(crate) fn brief_transfer(&mut self, sdp: &[u8]) -> Result<(), MediaFailure> {
        let (ports, params) = self.transfer_answer(sdp)?;
        let session = self.running()?;
        session
            .brief(Leg::udp(ports, params))
            .map_err(relay_failure)?;
        if let Some(t) = self.transfer.as_mut() {
            t.on = Some(LegId::C);
        }
        self.transfer_applied = Some(params);
        Ok(())
    }

    /// Warm transfer completed: the target takes the agent's place.
    pub(crate) fn complete_transfer(&mut self) -> Result<(), MediaFailure> {
        let params = self
            .transfer_applied
            .filter(|_| self.transfer.as_ref().and_then(|t| t.on) == Some(LegId::C))
            .ok_or_else(|| MediaFailure::not_acceptable("no warm transfer is briefing"))?;
        let session = self.running()?;
        session.complete().map_err(relay_failure)?;
        self.bridged(params);
        Ok(())
    }

    /// Warm transfer given up: the target's media goes, caller and agent
    /// talk again.
    pub(crate) fn unbrief_transfer(&mut self) -> Result<(), MediaFailure> {
        if let Some(session) = self.session.as_mut()
            && self.transfer.as_ref().and_then(|t| t.on) == Some(LegId::C)
        {
            session.unbrief().map_err(relay_failure)?;
        }
        self.transfer = None;
        self.transfer_applied = None;
        Ok(())
    }

    /// The relay session, which a transfer's media orders need.
    fn running(&mut self) -> Result<&mut MediaSession, MediaFailure> {
        self.session
            .as_mut()
            .ok_or_else(|| MediaFailure::not_acceptable("no media runs"))
    }

    /// The target's answer to our offer: its ports (taken for the relay)
    /// and parameters.
    fn transfer_answer(&mut self, sdp: &[u8]) -> Result<(PortAllocation, LegParams), MediaFailure> {
        let transfer = self
            .transfer
            .as_mut()
            .ok_or_else(|| MediaFailure::not_acceptable("no transfer target"))?;
        let answer = parse(sdp).map_err(|_| {
            MediaFailure::not_acceptable("the transfer target's SDP answer cannot be parsed")
        })?;
        let neg = accept_answer(&transfer.offer, &answer).map_err(|_| {
            MediaFailure::not_acceptable(
                "the transfer target's SDP answer does not match our offer",
            )
        })?;
        let params = LegParams::from_negotiated(&neg)
            .map_err(|_| MediaFailure::not_acceptable("the target's codec is not G.711"))?
            .with_signalling_ip(transfer.ip);
        let ports = transfer
            .ports
            .take()
            .ok_or_else(|| MediaFailure::not_acceptable("the transfer's media runs already"))?;
        Ok((ports, params))
    }

    /// The target is on leg B now: the agent's SDP no longer describes it.
    fn bridged(&mut self, params: LegParams) {
        if let Some(t) = self.transfer.as_mut() {
            t.on = Some(LegId::B);
            self.agent_ip = Some(t.ip);
        }
        self.agent_applied = Some(params);
        self.transfer_applied = Some(params);
    }

    /// Key presses toward the caller (leg A) or the transfer target (on C
    /// during a brief, B once bridged); `Err` says why they cannot go.
    pub(crate) fn send_digits(&mut self, digits: &str, to_target: bool) -> Result<(), String> {
        let session = self
            .session
            .as_ref()
            .ok_or("the call's media is not running yet")?;
        if digits.is_empty() || digits.len() > trunkline_relay::MAX_QUEUED_DIGITS {
            return Err(format!(
                "give 1 to {} keys",
                trunkline_relay::MAX_QUEUED_DIGITS
            ));
        }
        if let Some(c) = digits
            .chars()
            .find(|c| trunkline_media::dtmf::char_to_event(*c).is_none())
        {
            return Err(format!("{c:?} is not a DTMF key (0-9, *, #, A-D)"));
        }
        let (leg, event) = if to_target {
            let on = self
                .transfer
                .as_ref()
                .and_then(|t| t.on)
                .ok_or("no transfer target is on the call")?;
            (on, self.transfer_applied.and_then(|p| p.telephone_event))
        } else {
            (
                LegId::A,
                self.caller_neg
                    .as_ref()
                    .and_then(|n| LegParams::from_negotiated(n).ok())
                    .and_then(|p| p.telephone_event),
            )
        };
        if event.is_none() {
            return Err("that side did not accept telephone-event (RFC 4733)".into());
        }
        session
            .send_digits(leg, digits)
            .map_err(|e| format!("relay: {e}"))
    }

    /// A transfer that failed or ended unbridged: its ports go back.
    pub(crate) fn drop_transfer(&mut self) {
        if self.transfer.as_ref().is_some_and(|t| t.ports.is_some()) {
            self.transfer = None;
            self.transfer_applied = None;
        }
    }

    /// Our offer toward the transfer target (a re-INVITE without SDP from
    /// it asks for it).
    pub(crate) fn transfer_offer(&self) -> Option<String> {
        self.transfer.as_ref().map(|t| t.offer.to_string())
    }

    /// A new offer from the transfer target (hold, resume, refresh): the
    /// answer, and the relay updated once it is bridged.
    pub(crate) fn transfer_reoffer(&mut self, sdp: &[u8]) -> Result<String, MediaFailure> {
        let offer = parse(sdp)?;
        let transfer = self
            .transfer
            .as_mut()
            .ok_or_else(|| MediaFailure::not_acceptable("no transfer target"))?;
        transfer.local.session_version += 1;
        let (answer, neg) =
            answer_g711(&offer, &transfer.local, &[Law::Ulaw, Law::Alaw]).map_err(|e| {
                MediaFailure {
                    status: e.status(),
                    reason: "Not Acceptable Here",
                    warning: Some(e.warning("trunkline")),
                }
            })?;
        let (on, ip) = (transfer.on, transfer.ip);
        if let (Some(leg), Some(session), Ok(params)) =
            (on, &self.session, LegParams::from_negotiated(&neg))
        {
            let params = params.with_signalling_ip(ip);
            let _ = session.update(leg, params);
            self.transfer_applied = Some(params);
            if leg == LegId::B {
                self.agent_applied = Some(params);
            }
        }
        Ok(answer.to_string())
    }

    /// Stops the relay (in the background) and returns the ports.
    pub(crate) fn stop(self) {
        if let Some(session) = self.session {
            tokio::spawn(async move {
                session.stop().await;
            });
        }
    }
}

/// The relay refused an order (it stopped, no runtime, a socket).
fn relay_failure(e: trunkline_relay::RelayError) -> MediaFailure {
    MediaFailure {
        status: 500,
        reason: "Server Internal Error",
        warning: Some(format!("399 trunkline \"relay: {e}\"")),
    }
}

/// The RTP address of the negotiated section of `sdp` (`None` for
/// `0.0.0.0` or port 0), whatever its direction.
fn rtp_address(sdp: &SessionDescription, neg: &Negotiated) -> Option<SocketAddr> {
    sdp.media
        .get(neg.media_index)
        .and_then(|m| sdp.rtp_address(m))
}

fn parse(sdp: &[u8]) -> Result<SessionDescription, MediaFailure> {
    std::str::from_utf8(sdp)
        .ok()
        .and_then(|t| SessionDescription::parse(t).ok())
        .ok_or_else(|| MediaFailure::not_acceptable("the SDP offer cannot be parsed"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plane() -> MediaPlane {
        let settings = MediaSettings {
            port_min: 41000,
            port_max: 41999,
            ..MediaSettings::default()
        };
        MediaPlane::new(&settings, "127.0.0.1".parse().unwrap()).expect("a media plane")
    }

    fn answer(pt: u8, name: &str, port: u16) -> String {
        format!(
            "v=0\r\no=five9 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n\
             m=audio {port} RTP/AVP {pt} 101\r\na=rtpmap:{pt} {name}/8000\r\n\
             a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
        )
    }

    #[test]
    fn a_call_we_place_offers_g711_only_and_takes_the_answers_codec_and_address() {
        let plane = plane();
        let mut media = plane
            .open_offer("198.51.100.7".parse().unwrap(), 7)
            .expect("ports");
        let offer = SessionDescription::parse(&media.caller_answer()).expect("our offer parses");
        let names: Vec<String> = offer.media[0]
            .codecs()
            .into_iter()
            .map(|c| c.name)
            .collect();
        assert_eq!(names, ["PCMU", "PCMA", "telephone-event"], "{offer}");
        assert!(
            media.caller_neg.is_none(),
            "nothing agreed before the dialled side answers"
        );

        media
            .accept_dialled_answer(answer(8, "PCMA", 30000).as_bytes())
            .expect("a PCMA answer to our offer");
        assert_eq!(
            media.caller_remote(),
            Some("198.51.100.7:30000".parse().unwrap())
        );
        let agreed = media.caller_neg.as_ref().expect("agreed");
        assert_eq!(agreed.send.name, "PCMA", "the answer's codec is sent");
    }

    #[test]
    fn an_answer_that_does_not_match_our_offer_is_refused_with_488() {
        let plane = plane();
        let mut media = plane
            .open_offer("198.51.100.7".parse().unwrap(), 8)
            .expect("ports");
        for bad in [
            answer(18, "G729", 30000),
            "not sdp".to_owned(),
            String::new(),
        ] {
            let e = media
                .accept_dialled_answer(bad.as_bytes())
                .expect_err("refused");
            assert_eq!(e.status, 488, "{bad:?}");
        }
    }
}
