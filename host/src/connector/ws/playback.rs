//! The agent's audio on its way to the caller: re-chunked into 20 ms
//! frames, queued behind a bound, paced at real time.
//!
//! Agents send audio in pieces of any size and usually faster than real
//! time (a text-to-speech engine renders a sentence in a burst). The relay
//! wants one 20 ms frame per 20 ms, so the queue absorbs the burst and a
//! [`Player`] hands out one frame per tick. Marks (and the agent's `end` or
//! `transfer`) ride in the same queue, so they fall due exactly when the
//! audio queued before them has played.

use std::collections::VecDeque;
use std::pin::Pin;
use std::time::Duration;

use tokio::time::{Instant, Sleep};

use super::audio::FRAME_SAMPLES;

/// One frame's duration.
pub const FRAME_TIME: Duration = Duration::from_millis(20);

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

#[derive(Debug)]
enum Item<A> {
    Audio(Frame),
    Cue(Cue<A>),
}

/// What one tick yields.
#[derive(Debug, PartialEq)]
pub struct Tick<A> {
    /// Cues that fell due, in order.
    pub due: Vec<Cue<A>>,
    /// The frame to play now, if any.
    pub frame: Option<Frame>,
}

/// The queue of agent audio and cues (no clock: see [`Player`]).
#[derive(Debug)]
pub struct Playback<A> {
    queue: VecDeque<Item<A>>,
    /// Codes not yet making a whole frame.
    partial: Vec<u8>,
    /// Audio frames in `queue`.
    frames: usize,
    max_frames: usize,
    /// The tap law's silence code, used to pad a last partial frame.
    silence: u8,
    /// Frames refused because the queue was full.
    pub dropped: u64,
}

impl<A> Playback<A> {
    /// A queue holding at most `max_frames` frames (at least one);
    /// `silence` pads partial frames.
    pub fn new(max_frames: usize, silence: u8) -> Playback<A> {
        Playback {
            queue: VecDeque::new(),
            partial: Vec::with_capacity(FRAME_SAMPLES),
            frames: 0,
            max_frames: max_frames.max(1),
            silence,
            dropped: 0,
        }
    }

    /// Queues tap codes; whole frames go in at once, a remainder waits for
    /// the next piece. Returns how many frames were refused because the
    /// queue was full: refusing the newest keeps what is playing coherent,
    /// where dropping the oldest would cut words out of the middle.
    pub fn push_audio(&mut self, mut codes: &[u8]) -> u64 {
        let before = self.dropped;
        while !codes.is_empty() {
            let take = (FRAME_SAMPLES - self.partial.len()).min(codes.len());
            self.partial.extend_from_slice(&codes[..take]);
            codes = &codes[take..];
            if self.partial.len() == FRAME_SAMPLES {
                self.flush_partial();
            }
        }
        self.dropped - before
    }

    /// Queues a cue behind the audio so far (a partial frame is padded and
    /// queued first, so the cue waits for it too).
    pub fn push_cue(&mut self, cue: Cue<A>) {
        if !self.partial.is_empty() {
            self.flush_partial();
        }
        self.queue.push_back(Item::Cue(cue));
    }

    /// Barge-in: drops all audio now; returns the cues, in order, which are
    /// all due since nothing plays before them any more.
    pub fn clear(&mut self) -> Vec<Cue<A>> {
        self.partial.clear();
        self.frames = 0;
        self.queue
            .drain(..)
            .filter_map(|item| match item {
                Item::Cue(cue) => Some(cue),
                Item::Audio(_) => None,
            })
            .collect()
    }

    /// Cues at the head of the queue (due now, nothing to play before them).
    pub fn take_due(&mut self) -> Vec<Cue<A>> {
        let mut due = Vec::new();
        while let Some(Item::Cue(_)) = self.queue.front() {
            if let Some(Item::Cue(cue)) = self.queue.pop_front() {
                due.push(cue);
            }
        }
        due
    }

    /// One tick: the cues behind the frame played last tick fall due, then
    /// the next frame plays. A lone partial frame plays padded when nothing
    /// else is queued (the end of an utterance).
    pub fn tick(&mut self) -> Tick<A> {
        let due = self.take_due();
        if self.queue.is_empty() && !self.partial.is_empty() {
            self.flush_partial();
        }
        let frame = match self.queue.front() {
            Some(Item::Audio(_)) => match self.queue.pop_front() {
                Some(Item::Audio(frame)) => {
                    self.frames -= 1;
                    Some(frame)
                }
                _ => None,
            },
            _ => None,
        };
        Tick { due, frame }
    }

    /// Nothing queued at all.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty() && self.partial.is_empty()
    }

    /// Whether an action waits in the queue.
    pub fn has_action(&self) -> bool {
        self.queue
            .iter()
            .any(|i| matches!(i, Item::Cue(Cue::Action(_))))
    }

    /// Queued audio, in frames.
    pub fn frames(&self) -> usize {
        self.frames
    }

    fn flush_partial(&mut self) {
        let mut frame = [self.silence; FRAME_SAMPLES];
        frame[..self.partial.len()].copy_from_slice(&self.partial);
        self.partial.clear();
        if self.frames >= self.max_frames {
            self.dropped += 1;
            return;
        }
        self.frames += 1;
        self.queue.push_back(Item::Audio(frame));
    }
}

/// How long before its slot a caller frame may carry a frame out.
const EARLY: Duration = Duration::from_millis(5);
/// While caller frames flow, how long past its slot the clock waits for
/// one before playing the frame itself. `FRAME_TIME - EARLY` covers every
/// phase of the caller's frames against the cadence: a caller frame too
/// early for one slot is followed by the next less than this after it, so
/// the cadence locks onto the caller's frames instead of the clock.
const FALLBACK: Duration = FRAME_TIME.checked_sub(EARLY).expect("EARLY < FRAME_TIME");
/// Caller frames count as flowing while the last one is this recent.
const FLOWING: Duration = Duration::from_millis(40);

/// A [`Playback`] with its 20 ms clock.
///
/// The clock only runs while there is something to play, so an idle call
/// costs no wake-ups. While the caller's own 20 ms frames flow, they carry
/// the agent's frames out ([`Player::caller_frame`]): the task is awake for
/// the caller frame anyway, so a call streaming both ways costs no extra
/// timer wake-up; the timer is only the fallback when no caller frame came
/// (caller on hold, silence suppression). After a pause, new audio plays
/// at once if the last frame is at least 20 ms old, else when it is.
///
/// Pacing bound: a frame's slot is at least 20 ms after the previous slot
/// and at least 15 ms after the previous frame actually played, and a frame
/// plays at most 5 ms before its slot; so over any run of frames playback is
/// never more than 10 ms ahead of real time, and a late frame pushes the
/// next ones back rather than bunching them.
#[derive(Debug)]
pub struct Player<A> {
    /// The queue.
    pub playback: Playback<A>,
    /// The next frame's slot.
    next: Instant,
    running: bool,
    /// The last frame played on the running cadence (not the first after a
    /// pause, which plays at once).
    in_cadence: bool,
    /// When the last caller frame arrived.
    heard: Option<Instant>,
    /// The clock, kept across polls so a wake-up does not re-register it.
    sleep: Pin<Box<Sleep>>,
    /// What `sleep` is set to.
    deadline: Instant,
}

impl<A> Player<A> {
    /// A player over `playback`.
    pub fn new(playback: Playback<A>) -> Player<A> {
        let now = Instant::now();
        Player {
            playback,
            next: now,
            running: false,
            in_cadence: false,
            heard: None,
            sleep: Box::pin(tokio::time::sleep_until(now)),
            deadline: now,
        }
    }

    /// Call after queueing: starts the clock if it was idle.
    pub fn wake(&mut self) {
        if !self.running && !self.playback.is_empty() {
            self.running = true;
            self.next = self.next.max(Instant::now());
        }
    }

    /// A caller frame arrived at `now`: plays the next frame if its slot is
    /// (nearly) due, so the clock need not wake for it.
    pub fn caller_frame(&mut self, now: Instant) -> Option<Tick<A>> {
        self.heard = Some(now);
        (self.running && now + EARLY >= self.next).then(|| self.take(now))
    }

    /// Waits for the next clock tick (forever while idle) and takes it.
    /// When the queue is left empty the clock stops until [`Player::wake`].
    pub async fn tick(&mut self) -> Tick<A> {
        if !self.running {
            std::future::pending::<()>().await;
        }
        let flowing = self
            .heard
            .is_some_and(|at| at.elapsed() < FLOWING && self.in_cadence);
        let deadline = if flowing {
            self.next + FALLBACK
        } else {
            self.next
        };
        // Due already (audio arriving after the last frame's 20 ms, the
        // usual case for an agent streaming at real time): play without a
        // round trip through the timer wheel.
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

    fn take(&mut self, now: Instant) -> Tick<A> {
        let tick = self.playback.tick();
        if tick.frame.is_some() {
            self.next = (self.next + FRAME_TIME).max(now + FRAME_TIME - EARLY);
            self.in_cadence = true;
        }
        if self.playback.is_empty() {
            self.running = false;
            self.in_cadence = false;
        }
        tick
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SILENCE: u8 = 0xFF;

    fn queue() -> Playback<&'static str> {
        Playback::new(50, SILENCE)
    }

    #[test]
    fn pieces_of_any_size_become_whole_frames() {
        let mut p = queue();
        let audio: Vec<u8> = (0..500u32).map(|i| (i % 251) as u8).collect();
        for piece in [&audio[..7], &audio[7..300], &audio[300..]] {
            p.push_audio(piece);
        }
        assert_eq!(p.frames(), 3, "480 bytes make 3 frames, 20 wait");
        let mut played = Vec::new();
        while let Some(frame) = p.tick().frame {
            played.extend_from_slice(&frame);
        }
        assert_eq!(played.len(), 4 * FRAME_SAMPLES, "the tail plays padded");
        assert_eq!(&played[..500], &audio[..]);
        assert!(played[500..].iter().all(|&c| c == SILENCE));
        assert!(p.is_empty());
    }

    #[test]
    fn marks_fall_due_after_their_audio_has_played() {
        let mut p = queue();
        p.push_audio(&[1; 320]);
        p.push_cue(Cue::Mark("a".into()));
        p.push_audio(&[2; 80]);
        p.push_cue(Cue::Mark("b".into()));
        assert!(p.take_due().is_empty());
        let ticks: Vec<_> = (0..5).map(|_| p.tick()).collect();
        let frames: Vec<_> = ticks.iter().map(|t| t.frame.map(|f| f[0])).collect();
        let due: Vec<_> = ticks.iter().map(|t| t.due.clone()).collect();
        assert_eq!(frames, [Some(1), Some(1), Some(2), None, None]);
        assert_eq!(
            due,
            [
                vec![],
                vec![],
                vec![Cue::Mark("a".into())],
                vec![Cue::Mark("b".into())],
                vec![]
            ]
        );
    }

    #[test]
    fn a_mark_on_an_empty_queue_is_due_at_once() {
        let mut p = queue();
        p.push_cue(Cue::Mark("now".into()));
        assert_eq!(p.take_due(), [Cue::Mark("now".into())]);
    }

    #[test]
    fn clear_drops_audio_and_hands_back_every_cue() {
        let mut p = queue();
        p.push_audio(&[1; 400]);
        p.push_cue(Cue::Mark("a".into()));
        p.push_audio(&[1; 400]);
        p.push_cue(Cue::Action("end"));
        p.push_audio(&[1; 30]);
        assert_eq!(p.clear(), [Cue::Mark("a".into()), Cue::Action("end")]);
        assert!(p.is_empty());
        assert_eq!(p.frames(), 0);
        assert_eq!(
            p.tick(),
            Tick {
                due: vec![],
                frame: None
            }
        );
    }

    #[test]
    fn beyond_the_bound_new_audio_is_refused_and_counted() {
        let mut p: Playback<()> = Playback::new(10, SILENCE);
        assert_eq!(p.push_audio(&[1; 8 * FRAME_SAMPLES]), 0);
        assert_eq!(p.push_audio(&[2; 5 * FRAME_SAMPLES]), 3);
        assert_eq!(p.frames(), 10);
        assert_eq!(p.dropped, 3);
        let last = (0..10).filter_map(|_| p.tick().frame).last().unwrap();
        assert_eq!(last[0], 2, "the oldest audio was kept, then what fit");
    }

    #[tokio::test(start_paused = true)]
    async fn frames_leave_one_per_20_ms_whatever_the_burst() {
        let mut player: Player<()> = Player::new(Playback::new(500, SILENCE));
        player.playback.push_audio(&[1; 50 * FRAME_SAMPLES]);
        player.wake();
        let start = Instant::now();
        let mut at = Vec::new();
        while at.len() < 50 {
            if player.tick().await.frame.is_some() {
                at.push(start.elapsed());
            }
        }
        for (i, t) in at.iter().enumerate() {
            assert_eq!(*t, FRAME_TIME * i as u32, "frame {i}");
        }
        // Audio arriving right after the last frame waits out its 20 ms ...
        player.playback.push_audio(&[3; FRAME_SAMPLES]);
        player.wake();
        tokio::time::advance(Duration::from_millis(5)).await;
        let early = Instant::now();
        assert!(player.tick().await.frame.is_some());
        assert_eq!(early.elapsed(), Duration::from_millis(15));
        // ... drained, the clock stops (no wake-ups while idle) ...
        let idle = tokio::time::timeout(Duration::from_secs(1), player.tick()).await;
        assert!(idle.is_err(), "an idle player does not tick");
        // ... and after a pause, new audio plays at once, then at 20 ms.
        tokio::time::advance(Duration::from_secs(1)).await;
        player.playback.push_audio(&[2; 2 * FRAME_SAMPLES]);
        player.wake();
        let resumed = Instant::now();
        assert_eq!(player.tick().await.frame.map(|f| f[0]), Some(2));
        assert_eq!(resumed.elapsed(), Duration::ZERO);
        assert!(player.tick().await.frame.is_some());
        assert_eq!(resumed.elapsed(), FRAME_TIME);
    }

    /// Plays `frames` queued frames while caller frames arrive every 20 ms
    /// at `phase` past the first frame's 20 ms grid, until `caller_stops`;
    /// returns when each frame played and whether a caller frame carried it.
    async fn play_along(phase: u64, frames: usize, caller_stops: usize) -> Vec<(Duration, bool)> {
        let mut player: Player<()> = Player::new(Playback::new(500, SILENCE));
        player
            .playback
            .push_audio(&[1; 500 * FRAME_SAMPLES][..frames * FRAME_SAMPLES]);
        player.wake();
        let start = Instant::now();
        let mut played = Vec::new();
        for k in 0u32..1000 {
            let caller = start + FRAME_TIME * k + Duration::from_millis(phase);
            while let Ok(tick) = tokio::time::timeout_at(caller, player.tick()).await {
                if tick.frame.is_some() {
                    played.push((start.elapsed(), false));
                }
                if played.len() == frames {
                    return played;
                }
            }
            if (k as usize) < caller_stops
                && player
                    .caller_frame(Instant::now())
                    .is_some_and(|t| t.frame.is_some())
            {
                played.push((start.elapsed(), true));
                if played.len() == frames {
                    return played;
                }
            }
        }
        panic!("only {} of {frames} frames played", played.len())
    }

    #[tokio::test(start_paused = true)]
    async fn caller_frames_carry_playback_out_without_running_ahead() {
        for phase in [1, 4, 6, 10, 14, 16, 19] {
            let played = play_along(phase, 60, 40).await;
            // Never ahead of real time by more than 10 ms over any run.
            for (i, (a, _)) in played.iter().enumerate() {
                for (j, (b, _)) in played.iter().enumerate().skip(i + 1) {
                    let min = FRAME_TIME * (j - i) as u32 - Duration::from_millis(10);
                    assert!(
                        *b - *a >= min,
                        "phase {phase}: frames {i}..{j} in {:?}",
                        *b - *a
                    );
                }
            }
            // Within three frames the caller's frames carry every frame out
            // (no clock wake-up), at the caller's 20 ms cadence ...
            let carried: Vec<_> = played[3..38]
                .iter()
                .map(|&(_, by_caller)| by_caller)
                .collect();
            assert!(carried.iter().all(|&c| c), "phase {phase}: {played:?}");
            // ... and when the caller goes quiet the clock takes over at 20 ms.
            let tail: Vec<_> = played[45..].windows(2).map(|w| w[1].0 - w[0].0).collect();
            assert!(
                tail.iter().all(|&gap| gap == FRAME_TIME),
                "phase {phase}: {tail:?}"
            );
            assert!(played[45..].iter().all(|&(_, by_caller)| !by_caller));
        }
    }
}
