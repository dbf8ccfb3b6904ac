//! The agent's audio on its way to the caller: a playout buffer with its
//! own 20 ms clock.
//!
//! Agents send audio in pieces of any size and at any pace. A text-to-speech
//! engine renders a sentence in a burst. A framework streaming at real time
//! sends ~100 ms chunks at uneven intervals (Pipecat: 80–120 ms). The relay
//! wants one 20 ms frame every 20 ms, whatever the caller sends, so:
//!
//! - [`Playback`] is the queue: G.711 codes, plus cues (marks, and the
//!   agent's `end` or `transfer`) pinned to a position in the audio. A
//!   cue falls due once the audio queued before it has played. A piece that
//!   ends mid-frame waits for the next piece: nothing is padded while more
//!   audio is coming.
//! - [`Player`] is the clock. It sends a frame every 20 ms for the whole
//!   stream. The frame is agent audio while there is some and silence in
//!   the tap's law otherwise, so Five9 gets a continuous RTP stream (SBCs
//!   end calls on RTP inactivity, and NAT bindings expire). A talkspurt
//!   starts playing a playout delay after its first piece arrived, so late
//!   pieces find the queue still holding audio. When the queue runs dry
//!   mid-speech (an underrun: audio arrives again soon after), the delay
//!   grows by a frame, up to [`MAX_DEPTH`]; talkspurts with room to spare
//!   shrink it again, down to [`MIN_DEPTH`]. Silence is padded into a frame
//!   only when the queue has run dry, which is where the agent stopped or
//!   fell behind by more than the delay. Such frames are counted.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

use super::audio::FRAME_SAMPLES;

/// One frame's duration.
pub const FRAME_TIME: Duration = Duration::from_millis(20);

/// The shortest playout delay: two frames of jitter.
pub const MIN_DEPTH: Duration = Duration::from_millis(40);
/// The playout delay a stream starts with.
pub const START_DEPTH: Duration = Duration::from_millis(60);
/// The longest playout delay. Beyond this, latency hurts the conversation
/// more than an occasional gap.
pub const MAX_DEPTH: Duration = Duration::from_millis(200);
/// Audio arriving within this long after the queue ran dry means the agent
/// was still talking: the dry spell was an underrun, not the end of a
/// talkspurt.
const UNDERRUN_WINDOW: Duration = Duration::from_millis(200);
/// If the clock falls further behind than this (a stalled task), it starts
/// again from now instead of sending the missed frames in a burst.
const RESYNC: Duration = Duration::from_millis(100);

/// One 20 ms frame of tap codes.
pub type Frame = [u8; FRAME_SAMPLES];

/// Something that falls due when the audio before it has played.
#[derive(Debug, Clone, PartialEq)]
pub enum Cue<A> {
    /// Echo this mark to the agent.
    Mark(String),
    /// Do this (an `end` or `transfer` waiting for its audio).
    Action(A),
}

/// What a frame holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Played {
    /// A whole frame of agent audio.
    Audio,
    /// The last agent audio of a run, padded with silence.
    Padded,
    /// Silence: the agent is quiet, or its talkspurt waits for its delay.
    Silence,
}

/// What one tick yields.
#[derive(Debug, PartialEq)]
pub struct Tick<A> {
    /// Cues that fell due, in order.
    pub due: Vec<Cue<A>>,
    /// The frame to send now.
    pub frame: Frame,
    /// What the frame holds.
    pub played: Played,
}

/// Playout counters of every stream, for the metrics.
#[derive(Debug, Default)]
pub struct PlayoutStats {
    padded: AtomicU64,
    underruns: AtomicU64,
}

impl PlayoutStats {
    /// Frames sent with silence padded into agent audio.
    pub fn padded(&self) -> u64 {
        self.padded.load(Ordering::Relaxed)
    }

    /// Times the queue ran dry while the agent was still talking.
    pub fn underruns(&self) -> u64 {
        self.underruns.load(Ordering::Relaxed)
    }
}

/// The queue of agent audio and cues (no clock: see [`Player`]).
#[derive(Debug)]
pub struct Playback<A> {
    codes: VecDeque<u8>,
    /// Cues, each at the position (in codes since the stream began) of the
    /// audio queued before it.
    cues: VecDeque<(u64, Cue<A>)>,
    /// Position just after the last code queued.
    pushed: u64,
    /// Position of the next code to play.
    played: u64,
    max_codes: usize,
    /// The tap law's silence code.
    silence: u8,
    /// Frames of audio refused because the queue was full.
    pub dropped: u64,
    /// Frames played with silence padded into them.
    pub padded: u64,
}

impl<A> Playback<A> {
    /// A queue holding at most `max_frames` frames of audio (at least
    /// one); `silence` is the tap law's silence code.
    pub fn new(max_frames: usize, silence: u8) -> Playback<A> {
        Playback {
            codes: VecDeque::new(),
            cues: VecDeque::new(),
            pushed: 0,
            played: 0,
            max_codes: max_frames.max(1) * FRAME_SAMPLES,
            silence,
            dropped: 0,
            padded: 0,
        }
    }

    /// Queues tap codes. Returns how many frames' worth were refused
    /// because the queue was full: refusing the newest keeps what is
    /// playing coherent, where dropping the oldest would cut words out of
    /// the middle.
    pub fn push_audio(&mut self, codes: &[u8]) -> u64 {
        let room = self.max_codes.saturating_sub(self.codes.len());
        let take = room.min(codes.len());
        self.codes.extend(&codes[..take]);
        self.pushed += take as u64;
        let refused = (codes.len() - take).div_ceil(FRAME_SAMPLES) as u64;
        self.dropped += refused;
        refused
    }

    /// Queues a cue behind the audio so far.
    pub fn push_cue(&mut self, cue: Cue<A>) {
        self.cues.push_back((self.pushed, cue));
    }

    /// Barge-in: drops all audio now; returns the cues, in order, which are
    /// all due since nothing plays before them any more.
    pub fn clear(&mut self) -> Vec<Cue<A>> {
        self.codes.clear();
        self.played = self.pushed;
        self.cues.drain(..).map(|(_, cue)| cue).collect()
    }

    /// Cues whose audio has played.
    pub fn take_due(&mut self) -> Vec<Cue<A>> {
        let mut due = Vec::new();
        while self.cues.front().is_some_and(|(at, _)| *at <= self.played) {
            if let Some((_, cue)) = self.cues.pop_front() {
                due.push(cue);
            }
        }
        due
    }

    /// The next whole frame, if one is queued.
    pub fn pop_frame(&mut self) -> Option<Frame> {
        if self.codes.len() < FRAME_SAMPLES {
            return None;
        }
        let mut frame = [0; FRAME_SAMPLES];
        for (slot, code) in frame.iter_mut().zip(self.codes.drain(..FRAME_SAMPLES)) {
            *slot = code;
        }
        self.played += FRAME_SAMPLES as u64;
        Some(frame)
    }

    /// What is left of the queue (less than a frame) padded with silence;
    /// `None` when nothing is left.
    pub fn pop_padded(&mut self) -> Option<Frame> {
        if self.codes.is_empty() {
            return None;
        }
        let mut frame = self.silence_frame();
        let n = self.codes.len().min(FRAME_SAMPLES);
        for (slot, code) in frame.iter_mut().zip(self.codes.drain(..n)) {
            *slot = code;
        }
        self.played += n as u64;
        self.padded += 1;
        Some(frame)
    }

    /// A frame of silence in the tap's law.
    pub fn silence_frame(&self) -> Frame {
        [self.silence; FRAME_SAMPLES]
    }

    /// Audio queued, in codes (8 per ms).
    pub fn buffered(&self) -> usize {
        self.codes.len()
    }

    /// No audio queued.
    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }

    /// Whether an action waits in the queue.
    pub fn has_action(&self) -> bool {
        self.cues.iter().any(|(_, c)| matches!(c, Cue::Action(_)))
    }

    /// Queued audio, in whole frames.
    pub fn frames(&self) -> usize {
        self.codes.len() / FRAME_SAMPLES
    }
}

/// How long `codes` tap codes play.
fn duration_of(codes: usize) -> Duration {
    Duration::from_micros(codes as u64 * 125)
}

/// Where the talkspurt stands.
#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    /// No agent audio: silence goes out.
    Idle,
    /// Audio is queued; it starts playing at `until`.
    Buffering { until: Instant },
    /// Audio plays.
    Playing,
}

/// How long before its slot a caller frame may carry a frame out.
const EARLY: Duration = Duration::from_millis(5);
/// While the caller's 20 ms frames flow, how long past its slot the clock
/// waits for one before sending the frame itself. `FRAME_TIME - EARLY`
/// covers every phase of the caller's frames against the cadence, so the
/// cadence locks onto the caller's frames instead of the clock.
const FALLBACK: Duration = FRAME_TIME.checked_sub(EARLY).expect("EARLY < FRAME_TIME");
/// Caller frames count as flowing while the last one is this recent.
const FLOWING: Duration = Duration::from_millis(40);

/// A [`Playback`] with its 20 ms clock and playout delay.
///
/// The clock sends a frame every 20 ms from the start of the stream: the
/// slots are fixed (`start + k × 20 ms`), so playback never drifts from
/// real time whatever the caller's packet time, and a frame sent late is
/// followed by the next on time rather than 20 ms later.
///
/// While the caller's own 20 ms frames flow, they carry the agent's frames
/// out ([`Player::caller_frame`]): the task is awake for the caller frame
/// anyway, so a call streaming both ways costs no extra timer wake-up. The
/// timer is the fallback when no caller frame came in time (caller on
/// hold, silence suppression, or packets of another length: a caller
/// sending 30 ms packets never carries, since one frame per packet would
/// play the agent at 2/3 speed).
#[derive(Debug)]
pub struct Player<A> {
    /// The queue.
    pub playback: Playback<A>,
    /// The next frame's slot.
    next: Instant,
    state: State,
    /// The playout delay for the next talkspurt.
    depth: Duration,
    /// When the queue last ran dry while playing.
    dry_at: Option<Instant>,
    /// The smallest backlog found when audio arrived in this talkspurt.
    min_slack: Option<Duration>,
    /// This talkspurt began with an underrun.
    after_underrun: bool,
    /// The last talkspurt had room to spare (see [`Player::play`]).
    spare: bool,
    /// When the last 20 ms caller frame arrived.
    heard: Option<Instant>,
    stats: Arc<PlayoutStats>,
    /// The clock, kept across polls so a wake-up does not re-register it.
    sleep: Pin<Box<Sleep>>,
    /// What `sleep` is set to.
    deadline: Instant,
    /// Times the queue ran dry while the agent was still talking.
    pub underruns: u64,
}

impl<A> Player<A> {
    /// A player over `playback` whose first slot is now; counts into
    /// `stats`.
    pub fn new(playback: Playback<A>, stats: Arc<PlayoutStats>) -> Player<A> {
        let now = Instant::now();
        Player {
            playback,
            next: now,
            state: State::Idle,
            depth: START_DEPTH,
            dry_at: None,
            min_slack: None,
            after_underrun: false,
            spare: false,
            heard: None,
            stats,
            sleep: Box::pin(tokio::time::sleep_until(now)),
            deadline: now,
            underruns: 0,
        }
    }

    /// The playout delay the next talkspurt gets.
    pub fn depth(&self) -> Duration {
        self.depth
    }

    /// Queues agent audio that arrived at `now`; returns the frames refused
    /// (see [`Playback::push_audio`]).
    pub fn push_audio(&mut self, codes: &[u8], now: Instant) -> u64 {
        if codes.is_empty() {
            return 0;
        }
        match self.state {
            State::Idle => {
                let underrun = self
                    .dry_at
                    .take()
                    .is_some_and(|at| now.saturating_duration_since(at) < UNDERRUN_WINDOW);
                if underrun {
                    self.underruns += 1;
                    self.stats.underruns.fetch_add(1, Ordering::Relaxed);
                    self.depth = (self.depth + FRAME_TIME).min(MAX_DEPTH);
                } else if self.spare {
                    self.depth = self.depth.saturating_sub(FRAME_TIME / 2).max(MIN_DEPTH);
                }
                self.spare = false;
                self.after_underrun = underrun;
                self.min_slack = None;
                self.state = State::Buffering {
                    until: now + self.depth,
                };
            }
            State::Playing => {
                let slack = duration_of(self.playback.buffered());
                self.min_slack = Some(self.min_slack.map_or(slack, |s| s.min(slack)));
            }
            State::Buffering { .. } => {}
        }
        self.playback.push_audio(codes)
    }

    /// Barge-in: drops the queued audio (see [`Playback::clear`]).
    pub fn clear(&mut self) -> Vec<Cue<A>> {
        self.state = State::Idle;
        self.dry_at = None;
        self.playback.clear()
    }

    /// A caller frame of `len` codes arrived at `now`: when it is a 20 ms
    /// frame and the next slot is (nearly) due, sends that slot's frame so
    /// the clock need not wake for it.
    pub fn caller_frame(&mut self, now: Instant, len: usize) -> Option<Tick<A>> {
        if len != FRAME_SAMPLES {
            return None;
        }
        self.heard = Some(now);
        (now + EARLY >= self.next).then(|| self.take(now))
    }

    /// Waits for the next slot and takes it.
    pub async fn tick(&mut self) -> Tick<A> {
        let flowing = self.heard.is_some_and(|at| at.elapsed() < FLOWING);
        let deadline = if flowing {
            self.next + FALLBACK
        } else {
            self.next
        };
        let now = Instant::now();
        if deadline <= now {
            return self.take(now);
        }
        if deadline != self.deadline {
            self.deadline = deadline;
            self.sleep.as_mut().reset(deadline);
        }
        self.sleep.as_mut().await;
        self.take(Instant::now())
    }

    /// The frame for the current slot; the clock moves on a slot.
    fn take(&mut self, now: Instant) -> Tick<A> {
        let due = self.playback.take_due();
        if let State::Buffering { until } = self.state
            && now + EARLY >= until
        {
            self.state = State::Playing;
        }
        let (frame, played) = match self.state {
            State::Playing => self.play(now),
            State::Idle | State::Buffering { .. } => {
                (self.playback.silence_frame(), Played::Silence)
            }
        };
        self.next += FRAME_TIME;
        if self.next + RESYNC < now {
            self.next = now + FRAME_TIME;
        }
        Tick { due, frame, played }
    }

    fn play(&mut self, now: Instant) -> (Frame, Played) {
        if let Some(frame) = self.playback.pop_frame() {
            return (frame, Played::Audio);
        }
        // Dry: the agent stopped, or is later than the playout delay.
        self.state = State::Idle;
        self.dry_at = Some(now);
        // Whether the delay could have been shorter: decided when the next
        // audio shows that this was the end of a talkspurt, not an underrun.
        // A talkspurt all queued before it started playing was far ahead.
        self.spare = !self.after_underrun
            && self
                .min_slack
                .is_none_or(|slack| slack >= self.depth / 2 + FRAME_TIME);
        match self.playback.pop_padded() {
            Some(frame) => {
                self.stats.padded.fetch_add(1, Ordering::Relaxed);
                (frame, Played::Padded)
            }
            None => (self.playback.silence_frame(), Played::Silence),
        }
    }
}

#[cfg(test)]
mod tests;
