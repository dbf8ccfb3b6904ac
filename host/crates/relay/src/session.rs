//! [`MediaSession`]: the B2BUA's handle on one call's media.
//!
//! ```text
//! let a = pool.allocate(ip, RtcpMode::Mux)?;        // Mux only if Five9 offered rtcp-mux
//! let b = pool.allocate(ip, RtcpMode::Separate)?;   // our offer to the agent: b.rtp_port()
//! let (session, events) = MediaSession::start(&config,
//!     Leg::udp(a, LegParams::from_negotiated(&five9)?),
//!     Leg::udp(b, LegParams::new(LegCodec::g711(Law::Ulaw))),  // agent not answered yet
//!     global_stats.clone())?;
//! session.update(LegId::B, LegParams::from_negotiated(&agent)?)?;  // 200 OK, re-INVITEs
//! // events: Latched / Dtmf / Timeout; session.stop().await at BYE.
//! ```
//! Dropping the handle also ends the task; the ports return to the pool once
//! its sockets are closed.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::RelayError;
use crate::config::{LegId, LegParams, RelayConfig};
use crate::engine::{Engine, MediaEvent};
use crate::ports::PortAllocation;
use crate::stats::{RelayStats, StatsSnapshot};
use crate::tap::TapEnd;
use crate::task::{self, LegIo};

/// How a leg reaches its peer.
#[derive(Debug)]
pub enum Transport {
    /// RTP over UDP from pool sockets.
    Udp(PortAllocation),
    /// An in-process connector (WebSocket agent, built-in agent).
    Tap(TapEnd),
}

/// One leg as the session starts: transport and negotiated parameters.
#[derive(Debug)]
pub struct Leg {
    /// How packets reach the peer.
    pub transport: Transport,
    /// Offer/answer results (see [`LegParams`]).
    pub params: LegParams,
}

impl Leg {
    /// A UDP leg on allocated ports.
    pub fn udp(ports: PortAllocation, params: LegParams) -> Leg {
        Leg {
            transport: Transport::Udp(ports),
            params,
        }
    }

    /// A tap leg (see [`crate::tap`](mod@crate::tap)).
    pub fn tap(end: TapEnd) -> Leg {
        Leg {
            params: end.params(),
            transport: Transport::Tap(end),
        }
    }
}

/// Orders from the handle to the task.
#[derive(Debug)]
pub(crate) enum Command {
    Update(LegId, LegParams),
    Replace(LegId, Box<(LegIo, LegParams, bool)>),
    Brief(Box<(LegIo, LegParams, bool)>),
    Complete,
    Unbrief,
    Digits(LegId, String),
    Stop,
}

/// The media of one call: a task relaying between two legs (see crate docs).
#[must_use = "dropping the session stops its media"]
#[derive(Debug)]
pub struct MediaSession {
    commands: mpsc::UnboundedSender<Command>,
    stats: Arc<RelayStats>,
    task: JoinHandle<()>,
    local: [Option<SocketAddr>; 3],
}

impl MediaSession {
    /// Starts relaying between `a` and `b` on the current tokio runtime.
    /// Events come on the returned channel; `global` receives this session's
    /// counts too (lagging by at most a housekeeping tick).
    pub fn start(
        config: &RelayConfig,
        a: Leg,
        b: Leg,
        global: Arc<RelayStats>,
    ) -> Result<(MediaSession, mpsc::Receiver<MediaEvent>), RelayError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| RelayError::NoRuntime)?;
        let _guard = runtime.enter();
        let now = std::time::Instant::now();
        let stats = Arc::new(RelayStats::new());
        let engine = Engine::new(
            config.clone(),
            (a.params, matches!(a.transport, Transport::Tap(_))),
            (b.params, matches!(b.transport, Transport::Tap(_))),
            Arc::clone(&stats),
            now,
        );
        let io_a = LegIo::new(a.transport, a.params)?;
        let io_b = LegIo::new(b.transport, b.params)?;
        let local = [io_a.local_rtp(), io_b.local_rtp(), None];
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (events, event_rx) = mpsc::channel(config.event_capacity.max(1));
        let tick = task::tick_period(config.media_timeout);
        let task = runtime.spawn(task::run(
            engine,
            [io_a, io_b, LegIo::idle()],
            command_rx,
            events,
            global,
            tick,
        ));
        let session = MediaSession {
            commands,
            stats,
            task,
            local,
        };
        Ok((session, event_rx))
    }

    /// Applies a re-INVITE's result to `leg`: new remote address, codec,
    /// telephone-event type or direction (hold/resume). The stream toward
    /// each peer continues with the same SSRC and sequence space.
    pub fn update(&self, leg: LegId, params: LegParams) -> Result<(), RelayError> {
        self.commands
            .send(Command::Update(leg, params))
            .map_err(|_| RelayError::Stopped)
    }

    /// Puts `with` on `leg` in place of its peer (a transfer target in
    /// place of the agent): the old transport is closed (its ports return
    /// to the pool), and the other leg's peer hears our stream go on with
    /// the same SSRC. Must run on the session's runtime.
    pub fn replace(&mut self, leg: LegId, with: Leg) -> Result<(), RelayError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| RelayError::NoRuntime)?;
        let _guard = runtime.enter();
        let tap = matches!(with.transport, Transport::Tap(_));
        let io = LegIo::new(with.transport, with.params)?;
        self.local[leg.index()] = io.local_rtp();
        self.commands
            .send(Command::Replace(leg, Box::new((io, with.params, tap))))
            .map_err(|_| RelayError::Stopped)
    }

    /// Warm transfer: `target` joins on leg C and talks with B (the
    /// agent); A (the caller) hears hold audio, RTP every 20 ms with our
    /// stream's SSRC. Must run on the session's runtime.
    pub fn brief(&mut self, target: Leg) -> Result<(), RelayError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| RelayError::NoRuntime)?;
        let _guard = runtime.enter();
        let tap = matches!(target.transport, Transport::Tap(_));
        let io = LegIo::new(target.transport, target.params)?;
        self.local[LegId::C.index()] = io.local_rtp();
        self.commands
            .send(Command::Brief(Box::new((io, target.params, tap))))
            .map_err(|_| RelayError::Stopped)
    }

    /// Warm transfer completed: the target (leg C) takes the agent's place
    /// on B and talks with A; the agent's transport closes.
    pub fn complete(&mut self) -> Result<(), RelayError> {
        self.local.swap(LegId::B.index(), LegId::C.index());
        self.local[LegId::C.index()] = None;
        self.commands
            .send(Command::Complete)
            .map_err(|_| RelayError::Stopped)
    }

    /// Warm transfer given up: leg C's transport closes, A and B talk
    /// again.
    pub fn unbrief(&mut self) -> Result<(), RelayError> {
        self.local[LegId::C.index()] = None;
        self.commands
            .send(Command::Unbrief)
            .map_err(|_| RelayError::Stopped)
    }

    /// Sends key presses (RFC 4733) toward `leg`'s peer: 100 ms each, a
    /// 60 ms pause between, the peer's relayed audio withheld meanwhile.
    /// Keys the leg cannot take (no telephone-event, not a key, too many
    /// queued) are dropped whole and counted; check first with
    /// [`crate::engine`]'s rules (the host does).
    pub fn send_digits(&self, leg: LegId, keys: &str) -> Result<(), RelayError> {
        self.commands
            .send(Command::Digits(leg, keys.to_owned()))
            .map_err(|_| RelayError::Stopped)
    }

    /// This session's counters so far.
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// The local RTP address of a UDP leg.
    pub fn local_rtp(&self, leg: LegId) -> Option<SocketAddr> {
        self.local[leg.index()]
    }

    /// Stops relaying and waits until the sockets are closed and the ports
    /// are back in the pool; returns the final counters.
    pub async fn stop(self) -> StatsSnapshot {
        // An error means the task already ended: nothing left to stop.
        let _ = self.commands.send(Command::Stop);
        let _ = self.task.await;
        self.stats.snapshot()
    }
}
