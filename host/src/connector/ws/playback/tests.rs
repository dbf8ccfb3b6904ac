use super::*;

const SILENCE: u8 = 0xFF;

fn queue() -> Playback<&'static str> {
    Playback::new(500, SILENCE)
}

fn player() -> Player<&'static str> {
    Player::new(queue(), Arc::default())
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
    while let Some(frame) = p.pop_frame() {
        played.extend_from_slice(&frame);
    }
    assert_eq!(p.padded, 0, "whole frames are never padded");
    played.extend_from_slice(&p.pop_padded().expect("the tail"));
    assert_eq!(p.padded, 1);
    assert_eq!(&played[..500], &audio[..]);
    assert!(played[500..].iter().all(|&c| c == SILENCE));
    assert!(p.is_empty() && p.pop_padded().is_none());
}

#[test]
fn marks_fall_due_after_their_audio_has_played() {
    let mut p = queue();
    p.push_audio(&[1; 320]);
    p.push_cue(Cue::Mark("a".into()));
    p.push_audio(&[2; 80]);
    p.push_cue(Cue::Mark("b".into()));
    assert!(p.take_due().is_empty());
    assert_eq!(p.pop_frame().map(|f| f[0]), Some(1));
    assert!(p.take_due().is_empty());
    assert_eq!(p.pop_frame().map(|f| f[0]), Some(1));
    assert_eq!(p.take_due(), [Cue::Mark("a".into())]);
    assert!(p.pop_frame().is_none(), "80 codes wait for more");
    assert_eq!(p.pop_padded().map(|f| f[0]), Some(2));
    assert_eq!(p.take_due(), [Cue::Mark("b".into())]);
}

#[test]
fn a_mark_between_pieces_pads_nothing() {
    let mut p = queue();
    p.push_audio(&[1; 80]);
    p.push_cue(Cue::Mark("half".into()));
    p.push_audio(&[2; 240]);
    let first = p.pop_frame().expect("80 + 80 make a frame");
    assert_eq!((first[0], first[79], first[80]), (1, 1, 2));
    assert_eq!(p.take_due(), [Cue::Mark("half".into())]);
    assert_eq!(p.pop_frame().map(|f| f[159]), Some(2));
    assert_eq!(p.padded, 0);
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
    assert!(p.pop_frame().is_none() && p.pop_padded().is_none());
    p.push_cue(Cue::Mark("after".into()));
    assert_eq!(p.take_due(), [Cue::Mark("after".into())]);
}

#[test]
fn beyond_the_bound_new_audio_is_refused_and_counted() {
    let mut p: Playback<()> = Playback::new(10, SILENCE);
    assert_eq!(p.push_audio(&[1; 8 * FRAME_SAMPLES]), 0);
    assert_eq!(p.push_audio(&[2; 5 * FRAME_SAMPLES]), 3);
    assert_eq!(p.frames(), 10);
    assert_eq!(p.dropped, 3);
    let last = (0..10).filter_map(|_| p.pop_frame()).last().unwrap();
    assert_eq!(last[0], 2, "the oldest audio was kept, then what fit");
}

/// Something that happens to the stream at a time.
enum Event {
    /// The agent sends these codes.
    Agent(Vec<u8>),
    /// A caller frame of this many codes arrives.
    Caller(usize),
}

/// One frame sent: when (since the start), what, and whether a caller
/// frame carried it.
#[derive(Debug, Clone, Copy)]
struct Sent {
    at: Duration,
    played: Played,
    first: u8,
    carried: bool,
}

/// Runs `player` for `length` with `events` (sorted by time) and returns
/// every frame it sent.
async fn run(
    player: &mut Player<&'static str>,
    events: Vec<(Duration, Event)>,
    length: Duration,
) -> Vec<Sent> {
    let start = Instant::now();
    let mut sent = Vec::new();
    let mut events = events.into_iter().peekable();
    let record = |sent: &mut Vec<Sent>, tick: Tick<&str>, carried: bool| {
        sent.push(Sent {
            at: start.elapsed(),
            played: tick.played,
            first: tick.frame[0],
            carried,
        });
    };
    while start.elapsed() < length {
        let next_event = events.peek().map_or(start + length, |(at, _)| start + *at);
        tokio::select! {
            biased;
            () = tokio::time::sleep_until(next_event) => {
                let Some((_, event)) = events.next() else { continue };
                let now = Instant::now();
                match event {
                    Event::Agent(codes) => {
                        player.push_audio(&codes, now);
                    }
                    Event::Caller(len) => {
                        if let Some(tick) = player.caller_frame(now, len) {
                            record(&mut sent, tick, true);
                        }
                    }
                }
            }
            tick = player.tick() => record(&mut sent, tick, false),
        }
    }
    sent
}

/// The sent frames holding agent audio.
fn audio(sent: &[Sent]) -> Vec<Sent> {
    sent.iter()
        .copied()
        .filter(|s| s.played != Played::Silence)
        .collect()
}

/// Asserts the audio went out in consecutive slots, 20 ms apart, unpadded.
fn assert_one_run(sent: &[Sent], frames: usize) {
    let first = sent
        .iter()
        .position(|s| s.played != Played::Silence)
        .expect("some audio");
    let run = &sent[first..first + frames];
    assert!(
        run.iter().all(|s| s.played == Played::Audio),
        "{frames} frames of audio in a row, none padded: {:?}",
        &sent[first..(first + frames + 2).min(sent.len())]
    );
    assert_eq!(audio(sent).len(), frames, "no audio outside the run");
    // Real time, no stretch: each frame leaves within its slot's window
    // (5 ms early when a caller frame carries it, up to 15 ms late while
    // the clock waits for one), so the run is 20 ms a frame within that.
    let took = run[frames - 1].at - run[0].at;
    let exact = FRAME_TIME * (frames as u32 - 1);
    assert!(
        took + FALLBACK + EARLY >= exact && took <= exact + FALLBACK + EARLY,
        "{frames} frames in {took:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn silence_goes_out_every_20_ms_while_the_agent_is_quiet() {
    let mut p = player();
    let sent = run(&mut p, Vec::new(), Duration::from_secs(1)).await;
    assert_eq!(sent.len(), 50);
    for (i, s) in sent.iter().enumerate() {
        assert_eq!(s.at, FRAME_TIME * i as u32, "slot {i}");
        assert_eq!((s.played, s.first), (Played::Silence, SILENCE));
    }
}

#[tokio::test(start_paused = true)]
async fn a_burst_plays_at_real_time_after_the_playout_delay() {
    let mut p = player();
    let burst = vec![1; 50 * FRAME_SAMPLES];
    let at = Duration::from_millis(105);
    let sent = run(
        &mut p,
        vec![(at, Event::Agent(burst))],
        Duration::from_secs(2),
    )
    .await;
    assert_one_run(&sent, 50);
    let first = audio(&sent)[0].at;
    assert!(
        first >= at + START_DEPTH - EARLY && first <= at + START_DEPTH + FRAME_TIME,
        "starts one playout delay after it came: {first:?}"
    );
    assert_eq!(sent.len(), 100, "one frame per 20 ms all along");
    assert_eq!(p.playback.padded, 0);
}

/// Caller frames of `codes` codes every `ptime`, for `length`, at `phase`.
fn caller(ptime: u64, codes: usize, phase: u64, length: Duration) -> Vec<(Duration, Event)> {
    (0..)
        .map(|k| Duration::from_millis(phase + k * ptime))
        .take_while(|at| *at < length)
        .map(|at| (at, Event::Caller(codes)))
        .collect()
}

fn merge(mut a: Vec<(Duration, Event)>, b: Vec<(Duration, Event)>) -> Vec<(Duration, Event)> {
    a.extend(b);
    a.sort_by_key(|(at, _)| *at);
    a
}

#[tokio::test(start_paused = true)]
async fn a_caller_sending_30_ms_packets_does_not_slow_the_agent_down() {
    let mut p = player();
    let length = Duration::from_secs(3);
    let speech = vec![(
        Duration::from_millis(10),
        Event::Agent(vec![1; 100 * FRAME_SAMPLES]),
    )];
    let sent = run(&mut p, merge(speech, caller(30, 240, 3, length)), length).await;
    // 2 s of speech takes 2 s (the bug: one frame per caller packet, 3 s).
    assert_one_run(&sent, 100);
    assert!(sent.iter().all(|s| !s.carried), "30 ms packets never carry");
    for w in sent.windows(2) {
        assert_eq!(w[1].at - w[0].at, FRAME_TIME);
    }
}

#[tokio::test(start_paused = true)]
async fn caller_frames_carry_playback_out_without_running_ahead() {
    for phase in [1, 4, 6, 10, 14, 16, 19] {
        let mut p = player();
        let length = Duration::from_secs(2);
        let speech = vec![(Duration::ZERO, Event::Agent(vec![1; 60 * FRAME_SAMPLES]))];
        // The caller talks for the first second, then goes quiet.
        let sent = run(
            &mut p,
            merge(speech, caller(20, 160, phase, Duration::from_secs(1))),
            length,
        )
        .await;
        assert_one_run(&sent, 60);
        // Every frame leaves in its slot: at most 5 ms early (carried by a
        // caller frame), at most 15 ms late (the clock waiting for one).
        for (i, sent) in sent.iter().enumerate() {
            let slot = FRAME_TIME * i as u32;
            assert!(
                sent.at + EARLY >= slot && sent.at <= slot + FALLBACK,
                "phase {phase}: frame {i} at {:?}",
                sent.at
            );
        }
        // Within a few frames the caller's frames carry every frame out ...
        let talking: Vec<_> = sent
            .iter()
            .filter(|s| s.at > Duration::from_millis(100) && s.at < Duration::from_millis(950))
            .collect();
        assert!(
            talking.iter().all(|s| s.carried),
            "phase {phase}: {talking:?}"
        );
        // ... and when the caller goes quiet the clock takes over at 20 ms.
        let quiet: Vec<_> = sent
            .iter()
            .filter(|s| s.at > Duration::from_millis(1100))
            .collect();
        assert!(quiet.iter().all(|s| !s.carried));
        assert!(
            quiet.windows(2).all(|w| w[1].at - w[0].at == FRAME_TIME),
            "phase {phase}"
        );
    }
}

/// A framework streaming at real time: 95 ms chunks (760 codes) sent at
/// uneven intervals, `lateness[k]` ms off the real-time schedule.
fn chunks(start: u64, lateness: &[i64], total: usize) -> Vec<(Duration, Event)> {
    let audio: Vec<u8> = (0..total)
        .map(|i| 1 + (i / FRAME_SAMPLES % 200) as u8)
        .collect();
    audio
        .chunks(760)
        .zip(lateness.iter().cycle())
        .enumerate()
        .map(|(k, (chunk, late))| {
            let at = (start as i64 + 95 * k as i64 + late).max(0) as u64;
            (Duration::from_millis(at), Event::Agent(chunk.to_vec()))
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn uneven_real_time_chunks_play_without_gaps() {
    let mut p = player();
    // Intervals between 70 and 120 ms, up to 35 ms late or early.
    let lateness = [0, 25, -15, 10, 35, 0, -20, 15, 30, -10, 5, 20];
    let events = chunks(40, &lateness, 16_000);
    let sent = run(&mut p, events, Duration::from_secs(3)).await;
    assert_one_run(&sent, 100);
    assert_eq!(p.playback.padded, 0, "no silence inside the speech");
    assert_eq!(p.underruns, 0);
    // The frames come out in the order they went in.
    let firsts: Vec<u8> = audio(&sent).iter().map(|s| s.first).collect();
    assert!(firsts.windows(2).all(|w| w[0] <= w[1]), "{firsts:?}");
}

#[tokio::test(start_paused = true)]
async fn an_underrun_is_counted_and_deepens_the_playout_delay() {
    let stats = Arc::new(PlayoutStats::default());
    let mut p: Player<&str> = Player::new(queue(), stats.clone());
    // One chunk is 150 ms late: more than the 60 ms delay can hide.
    let lateness = [0, 0, 150, 150, 150, 150, 150, 150];
    let sent = run(
        &mut p,
        chunks(0, &lateness, 6 * 760),
        Duration::from_secs(2),
    )
    .await;
    assert_eq!(p.underruns, 1);
    assert_eq!(stats.underruns(), 1);
    assert_eq!(p.playback.padded, 1, "the frame where it ran dry");
    assert_eq!(stats.padded(), 1);
    assert_eq!(p.depth(), START_DEPTH + FRAME_TIME);
    // Every code still played, in order.
    let played = audio(&sent).len();
    assert_eq!(played, (6 * 760usize).div_ceil(FRAME_SAMPLES));
}

#[tokio::test(start_paused = true)]
async fn talkspurts_with_room_to_spare_shrink_the_delay_to_its_floor() {
    let mut p = player();
    // Ten utterances of 0.5 s, each rendered in bursts well ahead of time.
    let mut events = Vec::new();
    for u in 0..10u64 {
        let begin = u * 1000;
        for piece in 0..5u64 {
            events.push((
                Duration::from_millis(begin + piece * 10),
                Event::Agent(vec![1; 5 * FRAME_SAMPLES]),
            ));
        }
    }
    run(&mut p, events, Duration::from_secs(10)).await;
    assert_eq!(p.depth(), MIN_DEPTH);
    assert_eq!(p.underruns, 0);
}

#[tokio::test(start_paused = true)]
async fn a_stalled_clock_starts_again_instead_of_bursting() {
    let mut p = player();
    p.tick().await;
    tokio::time::advance(Duration::from_millis(500)).await;
    let stalled = Instant::now();
    let mut at = Vec::new();
    for _ in 0..5 {
        p.tick().await;
        at.push(stalled.elapsed());
    }
    assert_eq!(at[0], Duration::ZERO, "the overdue slot goes at once");
    for w in at.windows(2) {
        assert_eq!(w[1] - w[0], FRAME_TIME, "then 20 ms apart: {at:?}");
    }
}
