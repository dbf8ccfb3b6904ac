//! The relay's per-call logic, free of I/O: the session task feeds it
//! datagrams and clock ticks and does what it answers.
//!
//! One packet from leg X toward leg Y, in the received buffer, in place:
//! parse → payload type known on X? → latch check → DTMF detection → hold
//! check → transcode to Y's law (or pass through) and Y's payload types →
//! Y's [`StreamRewriter`] (one SSRC and sequence space per outgoing leg) →
//! route. Nothing allocates.
//!
//! A packet dropped after the latch check (hold, a type the receiver cannot
//! take) is reported to the receiving leg's rewriters as withheld: our
//! outgoing numbering then continues at +1 with the marker bit, instead of
//! showing the peer a burst of loss.

use std::net::SocketAddr;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use trunkline_media::dtmf::DtmfDetector;
use trunkline_media::g711::{Law, transcode_in_place};
use trunkline_media::rtp::{RtpPacketMut, StreamRewriter, is_rtcp};
use trunkline_media::sdp::Direction;

use crate::config::{LegId, LegParams, RelayConfig};
use crate::latch::{Latch, Verdict};
use crate::report::{self, SenderReport};
use crate::stats::{RelayStats, bump};

/// G.711 and telephone-event clock rate.
const CLOCK_RATE: u32 = 8000;
/// A key press whose end packets never came is reported after this much
/// silence on the event payload type.
const DTMF_IDLE: Duration = Duration::from_secs(1);

/// What the relay tells the session's owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaEvent {
    /// The leg now sends to `addr` (first latch, or a re-latch).
    Latched {
        /// The leg that latched.
        leg: LegId,
        /// The peer's actual source address.
        addr: SocketAddr,
    },
    /// A key press (RFC 4733) from the leg's peer, reported once.
    Dtmf {
        /// The leg the press came from.
        leg: LegId,
        /// `0`-`9`, `*`, `#`, `A`-`D`.
        digit: char,
        /// How long the key was held, in ms: the event's duration at the
        /// 8 kHz clock telephone-event uses (as far as seen when the end
        /// packets were lost).
        duration_ms: u32,
    },
    /// No RTP from the leg for the configured media timeout (reported once
    /// per silence; re-armed when media resumes).
    Timeout {
        /// The silent leg.
        leg: LegId,
    },
}

/// Where a relayed packet goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// Out of the destination leg's RTP socket to this address.
    Udp(SocketAddr),
    /// Into the destination leg's tap.
    Tap,
}

/// A packet to send: the whole (rewritten) datagram goes by UDP; `payload`
/// is what a tap takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Forward {
    pub(crate) to: LegId,
    pub(crate) route: Route,
    pub(crate) payload: Range<usize>,
}

/// How a payload type of an incoming packet is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Payload {
    Audio(Law),
    Event,
    Unknown,
}

/// State of one leg (see field docs).
#[derive(Debug)]
struct Leg {
    params: LegParams,
    /// Tap legs have no address: no latching, no RTCP, no timeout.
    tap: bool,
    latch: Latch,
    /// Our outgoing stream toward this leg's peer.
    out: StreamRewriter,
    out_ssrc: u32,
    /// A second outgoing stream, for telephone-events that the other peer
    /// sends under an SSRC of their own beside its audio: mirrored as a
    /// stream of ours, so neither source replaces the other.
    out_events: StreamRewriter,
    /// SSRC of the peer's latest audio packet.
    audio_ssrc: Option<u32>,
    /// Key presses sent by this leg's peer.
    dtmf: DtmfDetector,
    /// Last telephone-event packet from this leg, while a press may be open.
    last_event: Option<Instant>,
    /// SSRC of the peer's current telephone-event stream (a change resets
    /// the detector).
    in_ssrc: Option<u32>,
    /// Last RTP from the peer, or when the leg was last not watched.
    last_rx: Instant,
    /// A timeout was reported and no RTP came since.
    timed_out: bool,
    /// Counts for our sender reports.
    sent_packets: u32,
    sent_octets: u32,
    /// RTP timestamp of our newest packet toward the peer, and when.
    last_sent: Option<(u32, Instant)>,
    /// Where the peer's RTCP came from on our RTCP port (non-mux).
    rtcp_source: Option<SocketAddr>,
    next_report: Instant,
    /// Key presses we generate toward the peer, while some are queued.
    digits: Option<DigitPlayer>,
}

impl Leg {
    fn new(params: LegParams, tap: bool, config: &RelayConfig, rng: &mut Rng, now: Instant) -> Leg {
        let ssrc = rng.next() as u32;
        // RFC 3550 §8: one SSRC per stream, so the events' differs.
        let events_ssrc = match rng.next() as u32 {
            same if same == ssrc => same ^ 1,
            other => other,
        };
        let report_in = config.rtcp_interval.unwrap_or_default();
        Leg {
            latch: Latch::new(
                params.remote_rtp,
                params.signalling_ip,
                config.learning_window,
                config.relatch_after,
                now,
            ),
            out: StreamRewriter::new(ssrc, rng.next() as u16, rng.next() as u32, CLOCK_RATE),
            out_ssrc: ssrc,
            out_events: StreamRewriter::new(
                events_ssrc,
                rng.next() as u16,
                rng.next() as u32,
                CLOCK_RATE,
            ),
            audio_ssrc: None,
            params,
            tap,
            dtmf: DtmfDetector::new(),
            last_event: None,
            in_ssrc: None,
            last_rx: now,
            timed_out: false,
            sent_packets: 0,
            sent_octets: 0,
            last_sent: None,
            rtcp_source: None,
            next_report: now + rng.jitter(report_in),
            digits: None,
        }
    }

    fn payload_kind(&self, pt: u8) -> Payload {
        if Some(pt) == self.params.telephone_event {
            Payload::Event
        } else if pt == self.params.codec.payload_type {
            Payload::Audio(self.params.codec.law)
        } else if pt == Law::Ulaw.payload_type() {
            Payload::Audio(Law::Ulaw)
        } else if pt == Law::Alaw.payload_type() {
            Payload::Audio(Law::Alaw)
        } else {
            Payload::Unknown
        }
    }

    /// A packet toward this leg's peer was dropped on purpose: whichever of
    /// our streams carries its source must not show it as loss.
    fn withheld(&mut self, packet: &RtpPacketMut<'_>) {
        let (ssrc, sequence) = (packet.ssrc(), packet.sequence());
        self.out.withheld(ssrc, sequence);
        self.out_events.withheld(ssrc, sequence);
    }

    /// Where our RTCP for this leg goes, and whether from the RTCP socket.
    fn rtcp_target(&self) -> Option<(SocketAddr, bool)> {
        if self.params.rtcp_mux {
            return self.latch.target().map(|a| (a, false));
        }
        let fallback = || {
            let rtp = self.latch.target()?;
            Some(SocketAddr::new(rtp.ip(), rtp.port().checked_add(1)?))
        };
        let addr = self
            .rtcp_source
            .or(self.params.remote_rtcp)
            .or_else(fallback)?;
        Some((addr, true))
    }
}

/// Hold audio toward the caller during a warm transfer's brief: a 400 Hz
/// tone (8 periods in one 20 ms frame, so frames join seamlessly) at about
/// -18 dBFS, in the caller's law.
#[derive(Debug)]
struct Hold {
    frame: [u8; HOLD_SAMPLES],
    header: trunkline_media::rtp::RtpHeader,
}

/// One 20 ms frame at 8 kHz.
const HOLD_SAMPLES: usize = 160;

/// Generated key presses (RFC 4733) toward one leg: one packet per 20 ms,
/// each key 100 ms long (updates every 20 ms, the end packet three times),
/// then 60 ms of pause; the peer's relayed audio is withheld meanwhile, so
/// the events are the stream.
#[derive(Debug)]
struct DigitPlayer {
    /// What is left to send, one entry per 20 ms: an event packet, or
    /// `None` for a pause.
    frames: std::collections::VecDeque<Option<(bool, trunkline_media::dtmf::TelephoneEvent)>>,
    header: trunkline_media::rtp::RtpHeader,
    /// The RTP clock of the next frame (events carry their start's).
    clock: u32,
}

/// A key's length and the pause after it, in 20 ms frames' ticks.
const DIGIT_TICKS: u16 = 800;
const DIGIT_PAUSE_FRAMES: usize = 3;
/// Most keys one leg may have queued.
pub const MAX_QUEUED_DIGITS: usize = 64;
/// The generated events' own SSRC (ours; the peer sees our one stream).
const DIGITS_SSRC: u32 = 0xD7F0_D7F0;

impl DigitPlayer {
    fn new(pt: u8) -> DigitPlayer {
        DigitPlayer {
            frames: std::collections::VecDeque::new(),
            header: trunkline_media::rtp::RtpHeader {
                payload_type: pt,
                ssrc: DIGITS_SSRC,
                ..Default::default()
            },
            clock: 0,
        }
    }

    fn queue(&mut self, event: u8) {
        self.frames.extend(
            trunkline_media::dtmf::event_packets(event, 10, DIGIT_TICKS, HOLD_SAMPLES as u16)
                .map(Some),
        );
        self.frames
            .extend(std::iter::repeat_n(None, DIGIT_PAUSE_FRAMES));
    }

    fn queued_digits(&self) -> usize {
        self.frames
            .iter()
            .zip(self.frames.iter().skip(1))
            .filter(|(a, b)| a.is_some() && b.is_none())
            .count()
    }
}

/// Why key presses cannot be sent to a leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DigitError {
    /// The leg's peer did not accept telephone-event.
    NoTelephoneEvent,
    /// Not a DTMF key (`0`-`9`, `*`, `#`, `A`-`D`).
    NotAKey(char),
    /// More than [`MAX_QUEUED_DIGITS`] keys would be queued.
    TooMany,
}
/// The hold stream's own SSRC (ours; the caller sees our one stream).
const HOLD_SSRC: u32 = 0x401D_401D;

impl Hold {
    fn new(law: Law) -> Hold {
        let mut samples = [0i16; HOLD_SAMPLES];
        for (n, s) in samples.iter_mut().enumerate() {
            let phase = 2.0 * std::f64::consts::PI * 400.0 * n as f64 / f64::from(CLOCK_RATE);
            *s = (phase.sin() * 4096.0) as i16;
        }
        let mut frame = [0u8; HOLD_SAMPLES];
        law.encode(&samples, &mut frame);
        Hold {
            frame,
            header: trunkline_media::rtp::RtpHeader {
                payload_type: law.payload_type(),
                marker: true,
                ssrc: HOLD_SSRC,
                ..Default::default()
            },
        }
    }
}

/// The per-call relay state machine (see module docs).
#[derive(Debug)]
pub(crate) struct Engine {
    /// A (the caller), B (the agent, or whoever took its place), and C (a
    /// warm transfer's target; an idle tap-like leg otherwise).
    legs: [Leg; 3],
    /// Leg C is a real peer (a warm brief runs).
    side: bool,
    /// The brief's hold audio toward A, while B talks with C.
    hold: Option<Hold>,
    config: RelayConfig,
    stats: Arc<RelayStats>,
    rng: Rng,
}

impl Engine {
    pub(crate) fn new(
        config: RelayConfig,
        a: (LegParams, bool),
        b: (LegParams, bool),
        stats: Arc<RelayStats>,
        now: Instant,
    ) -> Engine {
        Engine::with_rng(config, a, b, stats, now, Rng::seeded())
    }

    /// [`Engine::new`] with a given random state: the fuzz targets need a
    /// run that repeats exactly.
    pub(crate) fn with_seed(
        config: RelayConfig,
        a: (LegParams, bool),
        b: (LegParams, bool),
        now: Instant,
        seed: u64,
    ) -> Engine {
        Engine::with_rng(config, a, b, Arc::default(), now, Rng(seed | 1))
    }

    fn with_rng(
        config: RelayConfig,
        a: (LegParams, bool),
        b: (LegParams, bool),
        stats: Arc<RelayStats>,
        now: Instant,
        mut rng: Rng,
    ) -> Engine {
        let idle = LegParams::new(b.0.codec);
        let legs = [
            Leg::new(a.0, a.1, &config, &mut rng, now),
            Leg::new(b.0, b.1, &config, &mut rng, now),
            Leg::new(idle, true, &config, &mut rng, now),
        ];
        Engine {
            legs,
            side: false,
            hold: None,
            config,
            stats,
            rng,
        }
    }

    /// Applies a re-INVITE's outcome to `leg` without interrupting the
    /// stream: the other leg keeps its SSRC and continues its numbering.
    pub(crate) fn update(&mut self, id: LegId, params: LegParams, now: Instant) {
        let leg = &mut self.legs[id.index()];
        if leg.params == params {
            return; // a refresh (session timer) changes nothing
        }
        if leg
            .latch
            .set_remote(params.remote_rtp, params.signalling_ip, now)
        {
            // Another peer, or the same one restarted: nothing learnt holds.
            leg.dtmf.reset();
            leg.in_ssrc = None;
            leg.audio_ssrc = None;
            leg.rtcp_source = None;
        }
        leg.params = params;
        // The peer may restart its numbering on any change: remap from its
        // next packet, continuing our outgoing stream at +1.
        if let Some(to) = self.partner(id) {
            let other = &mut self.legs[to.index()];
            other.out.resync();
            other.out_events.resync();
        }
        // A changed call gets a full timeout period before anyone is blamed.
        for leg in &mut self.legs {
            leg.last_rx = now;
            leg.timed_out = false;
        }
    }

    /// Puts another peer on leg `id` (a transfer target in place of the
    /// agent): nothing learnt of the old one holds (latch, key presses,
    /// reports), and the other leg's peer hears our stream go on — same
    /// SSRC, numbering at +1 with the marker — now carrying the new peer.
    pub(crate) fn replace(&mut self, id: LegId, params: LegParams, tap: bool, now: Instant) {
        self.legs[id.index()] = Leg::new(params, tap, &self.config, &mut self.rng, now);
        let other = &mut self.legs[id.other().index()];
        other.out.resync();
        other.out_events.resync();
        self.rearm(now);
    }

    /// Warm transfer: the target joins on leg C and talks with B (the
    /// agent); A (the caller) hears hold audio ([`Engine::hold_packet`])
    /// and what it sends goes nowhere.
    pub(crate) fn brief(&mut self, params: LegParams, tap: bool, now: Instant) {
        self.legs[LegId::C.index()] = Leg::new(params, tap, &self.config, &mut self.rng, now);
        self.side = true;
        self.hold = Some(Hold::new(self.legs[0].params.codec.law));
        let agent = &mut self.legs[LegId::B.index()];
        agent.out.resync();
        agent.out_events.resync();
        self.rearm(now);
    }

    /// Warm transfer completed: the target takes B's place (its stream
    /// toward it goes on), A hears it; the agent's state goes.
    pub(crate) fn complete(&mut self, now: Instant) {
        if !self.side {
            return;
        }
        self.legs.swap(LegId::B.index(), LegId::C.index());
        self.end_brief(now);
    }

    /// Warm transfer given up: the target's leg goes, A and B talk again.
    pub(crate) fn unbrief(&mut self, now: Instant) {
        if self.side {
            self.end_brief(now);
        }
    }

    fn end_brief(&mut self, now: Instant) {
        let idle = LegParams::new(self.legs[LegId::B.index()].params.codec);
        self.legs[LegId::C.index()] = Leg::new(idle, true, &self.config, &mut self.rng, now);
        self.side = false;
        self.hold = None;
        for id in [LegId::A, LegId::B] {
            let leg = &mut self.legs[id.index()];
            leg.out.resync();
            leg.out_events.resync();
        }
        self.rearm(now);
    }

    /// Queues key presses toward `to`'s peer (RFC 4733, on its
    /// telephone-event payload type); they go out one packet per 20 ms
    /// ([`Engine::digit_packet`]).
    pub(crate) fn send_digits(&mut self, to: LegId, keys: &str) -> Result<(), DigitError> {
        let leg = &mut self.legs[to.index()];
        let pt = leg
            .params
            .telephone_event
            .ok_or(DigitError::NoTelephoneEvent)?;
        let events = keys
            .chars()
            .map(|c| trunkline_media::dtmf::char_to_event(c).ok_or(DigitError::NotAKey(c)))
            .collect::<Result<Vec<u8>, _>>()?;
        let player = leg.digits.get_or_insert_with(|| DigitPlayer::new(pt));
        if player.queued_digits() + events.len() > MAX_QUEUED_DIGITS {
            if player.frames.is_empty() {
                leg.digits = None;
            }
            return Err(DigitError::TooMany);
        }
        player.header.payload_type = pt;
        for e in events {
            player.queue(e);
        }
        Ok(())
    }

    /// Whether the 20 ms clock is needed: hold audio or key presses due.
    pub(crate) fn needs_clock(&self) -> bool {
        self.hold.is_some() || self.legs.iter().any(|l| l.digits.is_some())
    }

    /// The next 20 ms of generated key presses toward `to`, written into
    /// `buf`; `None` in a pause or when nothing is queued (the player is
    /// dropped once empty, and the peer's audio flows again).
    pub(crate) fn digit_packet(
        &mut self,
        to: LegId,
        now: Instant,
        buf: &mut [u8],
    ) -> Option<(Forward, usize)> {
        let leg = &mut self.legs[to.index()];
        let player = leg.digits.as_mut()?;
        let Some(frame) = player.frames.pop_front() else {
            leg.digits = None;
            leg.out.resync();
            return None;
        };
        let clock = player.clock;
        player.clock = clock.wrapping_add(HOLD_SAMPLES as u32);
        let (first, event) = frame?;
        // An event's packets all carry its start's timestamp.
        if first {
            player.header.timestamp = clock;
        }
        player.header.marker = first;
        let mut payload = [0u8; trunkline_media::dtmf::EVENT_LEN];
        event.write(&mut payload).ok()?;
        let len = player.header.write_packet(&payload, buf).ok()?;
        player.header.sequence = player.header.sequence.wrapping_add(1);
        let route = if leg.tap {
            Route::Tap
        } else {
            Route::Udp(leg.latch.target()?)
        };
        let mut packet = RtpPacketMut::parse(&mut buf[..len]).ok()?;
        if !leg.out.rewrite(&mut packet, now) {
            return None;
        }
        let start = packet.header_len();
        Some((
            Forward {
                to,
                route,
                payload: start..start + payload.len(),
            },
            len,
        ))
    }

    /// Whether hold audio is due toward A (a brief runs).
    #[cfg(test)]
    pub(crate) fn holding(&self) -> bool {
        self.hold.is_some()
    }

    /// The next 20 ms of hold audio toward A, written into `buf`: where it
    /// goes and its length. Our stream toward A goes on (same SSRC).
    pub(crate) fn hold_packet(&mut self, now: Instant, buf: &mut [u8]) -> Option<(Forward, usize)> {
        let hold = self.hold.as_mut()?;
        let len = hold.header.write_packet(&hold.frame, buf).ok()?;
        hold.header.marker = false;
        hold.header.sequence = hold.header.sequence.wrapping_add(1);
        hold.header.timestamp = hold.header.timestamp.wrapping_add(HOLD_SAMPLES as u32);
        let caller = &mut self.legs[LegId::A.index()];
        if !caller.params.direction.receives() {
            return None;
        }
        let route = if caller.tap {
            Route::Tap
        } else {
            Route::Udp(caller.latch.target()?)
        };
        let mut packet = RtpPacketMut::parse(&mut buf[..len]).ok()?;
        packet.set_payload_type(caller.params.codec.payload_type);
        if !caller.out.rewrite(&mut packet, now) {
            return None;
        }
        let start = packet.header_len();
        let payload_len = packet.payload().len();
        caller.sent_packets = caller.sent_packets.wrapping_add(1);
        caller.sent_octets = caller.sent_octets.wrapping_add(payload_len as u32);
        caller.last_sent = Some((packet.timestamp(), now));
        Some((
            Forward {
                to: LegId::A,
                route,
                payload: start..start + payload_len,
            },
            len,
        ))
    }

    /// Where packets from `from` go now: none for the caller during a
    /// brief, nor for an idle leg C.
    fn partner(&self, from: LegId) -> Option<LegId> {
        match (from, self.side) {
            (LegId::A, true) => None,
            (LegId::A, false) => Some(LegId::B),
            (LegId::B, true) => Some(LegId::C),
            (LegId::B, false) => Some(LegId::A),
            (LegId::C, true) => Some(LegId::B),
            (LegId::C, false) => None,
        }
    }

    /// A changed call gets a full timeout period before anyone is blamed.
    fn rearm(&mut self, now: Instant) {
        for leg in &mut self.legs {
            leg.last_rx = now;
            leg.timed_out = false;
        }
    }

    /// Handles an RTP packet from `from`'s peer, rewriting `buf` in place.
    pub(crate) fn on_rtp(
        &mut self,
        from: LegId,
        source: SocketAddr,
        buf: &mut [u8],
        now: Instant,
        events: &mut impl FnMut(MediaEvent),
    ) -> Option<Forward> {
        let stats = &*self.stats;
        let Ok(mut packet) = RtpPacketMut::parse(buf) else {
            bump(&stats.dropped_malformed, 1);
            return None;
        };
        let len = packet.header_len() + packet.payload().len();
        let Some(to) = self.partner(from) else {
            // The caller during a brief (it hears hold audio), an idle leg.
            bump(&stats.dropped_hold, 1);
            return None;
        };
        let [src, dst] = self
            .legs
            .get_disjoint_mut([from.index(), to.index()])
            .ok()?;
        if dst.digits.is_some() {
            // Our key presses are the stream toward that peer for now.
            src.last_rx = now;
            src.timed_out = false;
            bump(&stats.dropped_hold, 1);
            return None;
        }
        let kind = src.payload_kind(packet.payload_type());

        // Latching: only packets of a negotiated type may move the latch.
        let verdict = if src.tap {
            Verdict::Accept
        } else if kind == Payload::Unknown {
            if src.latch.latched() == Some(source) {
                Verdict::Accept
            } else {
                Verdict::Reject
            }
        } else {
            src.latch.check(source, now)
        };
        match verdict {
            Verdict::Reject => {
                bump(&stats.dropped_source, 1);
                return None;
            }
            Verdict::Latched => {
                bump(&stats.latches, 1);
                events(MediaEvent::Latched {
                    leg: from,
                    addr: source,
                });
            }
            Verdict::Accept => {}
        }
        // Any packet from the peer (comfort noise included) shows it is alive.
        src.last_rx = now;
        src.timed_out = false;

        let out_pt = match kind {
            Payload::Unknown => {
                dst.withheld(&packet);
                bump(&stats.dropped_malformed, 1);
                return None;
            }
            Payload::Event => {
                // Only telephone-event packets of another stream reset the
                // detector: some peers send audio and events with different
                // SSRCs, and audio in between must not make a press count
                // again.
                if src.in_ssrc != Some(packet.ssrc()) {
                    if src.in_ssrc.is_some() {
                        src.dtmf.flush();
                        report_digits(from, &mut src.dtmf, stats, events);
                        src.dtmf.reset();
                    }
                    src.in_ssrc = Some(packet.ssrc());
                }
                if src
                    .dtmf
                    .handle(packet.timestamp(), packet.payload())
                    .is_err()
                {
                    dst.withheld(&packet);
                    bump(&stats.dropped_malformed, 1);
                    return None;
                }
                src.last_event = Some(now);
                report_digits(from, &mut src.dtmf, stats, events);
                dst.params.telephone_event
            }
            Payload::Audio(_) => Some(dst.params.codec.payload_type),
        };

        if !src.params.direction.sends() || !dst.params.direction.receives() {
            dst.withheld(&packet);
            bump(&stats.dropped_hold, 1);
            return None;
        }
        let route = if dst.tap {
            Route::Tap
        } else if let Some(addr) = dst.latch.target() {
            Route::Udp(addr)
        } else {
            dst.withheld(&packet);
            bump(&stats.dropped_unroutable, 1);
            return None;
        };
        let Some(out_pt) = out_pt else {
            // No telephone-event on the receiving leg (the owner still got
            // the digit as an event).
            dst.withheld(&packet);
            bump(&stats.dropped_unroutable, 1);
            return None;
        };

        if let Payload::Audio(law) = kind
            && law != dst.params.codec.law
        {
            transcode_in_place(law, dst.params.codec.law, packet.payload_mut());
            bump(&stats.transcoded, 1);
        }
        packet.set_payload_type(out_pt);
        // Events under an SSRC other than the audio's are a stream of their
        // own (see `Leg::out_events`); everything else is the main stream.
        let in_ssrc = packet.ssrc();
        let own_stream = kind == Payload::Event && src.audio_ssrc.is_some_and(|a| a != in_ssrc);
        if kind != Payload::Event {
            src.audio_ssrc = Some(in_ssrc);
        }
        let rewriter = if own_stream {
            &mut dst.out_events
        } else {
            &mut dst.out
        };
        if !rewriter.rewrite(&mut packet, now) {
            bump(&stats.dropped_unroutable, 1);
            return None;
        }
        let payload_len = packet.payload().len();
        if !own_stream {
            // Our sender reports describe the main stream only.
            dst.sent_packets = dst.sent_packets.wrapping_add(1);
            dst.sent_octets = dst.sent_octets.wrapping_add(payload_len as u32);
            dst.last_sent = Some((packet.timestamp(), now));
        }

        let (packets, bytes) = match from {
            LegId::A => (&stats.packets_a_to_b, &stats.bytes_a_to_b),
            LegId::B | LegId::C => (&stats.packets_b_to_a, &stats.bytes_b_to_a),
        };
        bump(packets, 1);
        bump(bytes, len as u64);
        let start = packet.header_len();
        Some(Forward {
            to,
            route,
            payload: start..start + payload_len,
        })
    }

    /// Takes an RTCP datagram from `from`'s peer (terminated, see
    /// [`crate::report`]); `on_rtcp_port` when it came to the RTCP socket.
    /// Any well-formed RTCP counts, not only RFC 3550's SR/RR-led compounds:
    /// a peer's lone APP or feedback packet is not malformed.
    pub(crate) fn on_rtcp(
        &mut self,
        from: LegId,
        source: SocketAddr,
        buf: &[u8],
        on_rtcp_port: bool,
    ) {
        let leg = &mut self.legs[from.index()];
        if !is_rtcp(buf) {
            bump(&self.stats.dropped_malformed, 1);
            return;
        }
        if leg.latch.target().is_none_or(|t| t.ip() != source.ip()) {
            bump(&self.stats.dropped_source, 1);
            return;
        }
        if on_rtcp_port {
            leg.rtcp_source = Some(source);
        }
        bump(&self.stats.rtcp_received, 1);
    }

    /// Housekeeping: media timeouts and key presses whose end never came.
    pub(crate) fn on_tick(&mut self, now: Instant, events: &mut impl FnMut(MediaEvent)) {
        // Only a connected call in full flow is watched: before the agent
        // answers, Five9 may send nothing; on hold, one side stops by design.
        // During a brief the caller is on hold by design: only agent and
        // target are watched then.
        let watched_legs: &[LegId] = if self.side {
            &[LegId::B, LegId::C]
        } else {
            &[LegId::A, LegId::B]
        };
        let flowing = watched_legs.iter().all(|id| {
            let l = &self.legs[id.index()];
            l.params.direction == Direction::SendRecv && (l.tap || l.latch.target().is_some())
        });
        for (leg, id) in self.legs.iter_mut().zip([LegId::A, LegId::B, LegId::C]) {
            let flowing = flowing && watched_legs.contains(&id);
            let watched = flowing && !leg.tap;
            if !watched {
                // The countdown starts when the leg becomes watched.
                leg.last_rx = now;
            } else if !leg.timed_out
                && now.saturating_duration_since(leg.last_rx) >= self.config.media_timeout
            {
                leg.timed_out = true;
                bump(&self.stats.timeouts, 1);
                events(MediaEvent::Timeout { leg: id });
            }
            if leg
                .last_event
                .is_some_and(|t| now.saturating_duration_since(t) >= DTMF_IDLE)
            {
                leg.last_event = None;
                leg.dtmf.flush();
                report_digits(id, &mut leg.dtmf, &self.stats, events);
            }
        }
    }

    /// Our sender report for `id`, when one is due: (destination, length,
    /// send from the RTCP socket rather than the RTP one).
    pub(crate) fn rtcp_report(
        &mut self,
        id: LegId,
        now: Instant,
        wallclock: SystemTime,
        buf: &mut [u8],
    ) -> Option<(SocketAddr, usize, bool)> {
        let interval = self.config.rtcp_interval?;
        let leg = &mut self.legs[id.index()];
        if leg.tap || now < leg.next_report {
            return None;
        }
        leg.next_report = now + self.rng.jitter(interval);
        let (last_ts, last_at) = leg.last_sent?;
        let (addr, via_rtcp) = leg.rtcp_target()?;
        let elapsed = now.saturating_duration_since(last_at);
        let ticks = (elapsed.as_micros() * u128::from(CLOCK_RATE) / 1_000_000) as u32;
        let sr = SenderReport {
            ssrc: leg.out_ssrc,
            ntp: report::ntp_time(wallclock),
            rtp_timestamp: last_ts.wrapping_add(ticks),
            packets: leg.sent_packets,
            octets: leg.sent_octets,
        };
        let len = report::write(&sr, buf)?;
        Some((addr, len, via_rtcp))
    }

    /// The session's counters.
    pub(crate) fn stats(&self) -> &Arc<RelayStats> {
        &self.stats
    }

    /// A random point within `period`: sessions started together would
    /// otherwise run their housekeeping in the same millisecond, delaying
    /// every packet due then.
    pub(crate) fn random_phase(&mut self, period: Duration) -> Duration {
        period.mul_f64((self.rng.next() % 1000) as f64 / 1000.0)
    }
}

fn report_digits(
    leg: LegId,
    dtmf: &mut DtmfDetector,
    stats: &RelayStats,
    events: &mut impl FnMut(MediaEvent),
) {
    while let Some(digit) = dtmf.poll() {
        // Non-key events (flash, tones) are forwarded but not reported.
        if let Some(key) = digit.key {
            bump(&stats.dtmf_digits, 1);
            events(MediaEvent::Dtmf {
                leg,
                digit: key,
                duration_ms: u32::from(digit.duration) / 8,
            });
        }
    }
}

/// xorshift64*: SSRCs, initial sequence numbers and report jitter need to be
/// unpredictable across calls, not cryptographic (RFC 3550 §5.1 asks for
/// random initial values against plaintext attacks on SRTP-less streams).
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn seeded() -> Rng {
        use std::hash::BuildHasher;
        use std::sync::atomic::{AtomicU64, Ordering};
        static CALLS: AtomicU64 = AtomicU64::new(0);
        // RandomState is keyed from OS randomness once per process.
        let seed = std::collections::hash_map::RandomState::new()
            .hash_one((Instant::now(), CALLS.fetch_add(1, Ordering::Relaxed)));
        Rng(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 16
    }

    /// `interval` scaled by a random factor in [0.5, 1.5) (RFC 3550 §6.3.1).
    fn jitter(&mut self, interval: Duration) -> Duration {
        interval.mul_f64(0.5 + (self.next() % 1000) as f64 / 1000.0)
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
