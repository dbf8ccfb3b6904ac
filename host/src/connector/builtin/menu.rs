//! The menu itself, free of I/O: fed keys and 20 ms ticks, it answers with
//! the audio of each frame and, in the end, the call's attributes.
//!
//! ```text
//!  Prompt ──ends──▶ Waiting ──timeout──▶ Prompt again (`repeats` times)
//!    │ key            │ key                 └─▶ outcome `timeout`
//!    ▼                ▼
//!  menu key?  ── yes ─▶ its choice ─┐
//!    │ no                          ├─▶ Goodbye ──ends──▶ End(attributes)
//!    ▼                             │
//!  Invalid (`invalid_retries` times, then outcome `invalid`)
//!    └─ends─▶ Prompt
//! ```
//!
//! Time is counted in ticks, one per frame the driver plays, so a test
//! runs a whole call by calling [`Menu::tick`] in a loop.

use super::prompt::Audio;
use super::settings::{Choice, MenuConfig, MenuKey};

/// Samples in one 20 ms frame at 8 kHz.
pub const FRAME_SAMPLES: usize = 160;

/// Ticks per second (one tick is a 20 ms frame).
const TICKS_PER_SEC: u32 = 50;

/// A menu's settings with its audio loaded.
#[derive(Debug, Clone)]
pub struct MenuPlan {
    /// The menu's keys, timeouts and outcomes.
    pub config: MenuConfig,
    /// The main prompt.
    pub prompt: Audio,
    /// After a key not on the menu.
    pub invalid: Audio,
    /// After the outcome is decided.
    pub goodbye: Audio,
}

/// What to do with the next 20 ms.
#[derive(Debug, Clone, PartialEq)]
pub enum Tick<'a> {
    /// Play these samples (a short last frame is padded with silence).
    Play(&'a [i16]),
    /// Play silence, keeping the caller's media flowing.
    Silence,
    /// The menu is over: end the call with these attributes. Returned once;
    /// later ticks are [`Tick::Idle`].
    End(Vec<(String, String)>),
    /// Nothing more to do.
    Idle,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Clip {
    Prompt,
    Invalid,
    Goodbye,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Playing a clip from sample `at`.
    Playing(Clip, usize),
    /// The prompt has played; `ticks` have passed without a key.
    Waiting(u32),
    /// The goodbye has played; the end is due.
    Ending,
    /// The end was returned.
    Over,
}

/// One call's pass through a menu.
#[derive(Debug)]
pub struct Menu {
    plan: MenuPlan,
    phase: Phase,
    /// Prompts replayed to a silent caller so far.
    repeated: u32,
    /// Keys pressed that are not on the menu.
    invalid: u32,
    /// The decided outcome and the key that chose it.
    outcome: Option<(Choice, Option<char>)>,
}

impl Menu {
    /// A menu that starts by playing its prompt.
    pub fn new(plan: MenuPlan) -> Menu {
        Menu {
            plan,
            phase: Phase::Playing(Clip::Prompt, 0),
            repeated: 0,
            invalid: 0,
            outcome: None,
        }
    }

    /// The name of the decided outcome, once there is one.
    pub fn outcome(&self) -> Option<&str> {
        self.outcome.as_ref().map(|(c, _)| c.name.as_str())
    }

    /// The decided option's transfer, if it is a "transfer to a human".
    pub fn transfer(&self) -> Option<&super::settings::TransferTo> {
        self.outcome.as_ref().and_then(|(c, _)| c.transfer.as_ref())
    }

    /// The caller pressed `digit`. A menu key decides at once (cutting the
    /// prompt short); another key plays the invalid prompt and the menu
    /// again, or gives the `invalid` outcome when retries are used up.
    /// Keys after the outcome is decided are ignored.
    pub fn key(&mut self, digit: char) {
        if self.outcome.is_some() {
            return;
        }
        let chosen = MenuKey::new(digit).and_then(|k| self.plan.config.options.get(&k));
        if let Some(choice) = chosen {
            let choice = choice.clone();
            self.decide(choice, Some(digit.to_ascii_uppercase()));
            return;
        }
        self.invalid += 1;
        // A caller who presses keys is not silent: the silence budget
        // starts over.
        self.repeated = 0;
        if self.invalid > self.plan.config.invalid_retries {
            let choice = self.plan.config.invalid.clone();
            self.decide(choice, Some(digit));
        } else {
            self.phase = Phase::Playing(Clip::Invalid, 0);
        }
    }

    fn decide(&mut self, choice: Choice, digit: Option<char>) {
        self.outcome = Some((choice, digit));
        self.phase = Phase::Playing(Clip::Goodbye, 0);
    }

    /// Advances 20 ms.
    pub fn tick(&mut self) -> Tick<'_> {
        // A clip that has ended moves the menu on before this tick is
        // spent, so no silent frame is inserted between clips.
        loop {
            match self.phase {
                Phase::Playing(clip, at) => {
                    let len = self.clip(clip).samples().len();
                    if at < len {
                        let end = (at + FRAME_SAMPLES).min(len);
                        self.phase = Phase::Playing(clip, end);
                        return Tick::Play(&self.clip(clip).samples()[at..end]);
                    }
                    self.phase = match clip {
                        Clip::Prompt => Phase::Waiting(0),
                        Clip::Invalid => Phase::Playing(Clip::Prompt, 0),
                        Clip::Goodbye => Phase::Ending,
                    };
                }
                Phase::Waiting(ticks) => {
                    let limit = self.plan.config.timeout_secs.saturating_mul(TICKS_PER_SEC);
                    if ticks + 1 < limit {
                        self.phase = Phase::Waiting(ticks + 1);
                        return Tick::Silence;
                    }
                    if self.repeated < self.plan.config.repeats {
                        self.repeated += 1;
                        self.phase = Phase::Playing(Clip::Prompt, 0);
                    } else {
                        let choice = self.plan.config.timeout.clone();
                        self.decide(choice, None);
                    }
                    return Tick::Silence;
                }
                Phase::Ending => {
                    self.phase = Phase::Over;
                    return Tick::End(self.attributes());
                }
                Phase::Over => return Tick::Idle,
            }
        }
    }

    fn clip(&self, clip: Clip) -> &Audio {
        match clip {
            Clip::Prompt => &self.plan.prompt,
            Clip::Invalid => &self.plan.invalid,
            Clip::Goodbye => &self.plan.goodbye,
        }
    }

    /// The outcome's attributes, then `menu` (its name) and `menu.digit`
    /// (the key that decided it, when one did).
    fn attributes(&self) -> Vec<(String, String)> {
        let Some((choice, digit)) = &self.outcome else {
            return Vec::new();
        };
        let mut out: Vec<(String, String)> = choice
            .attributes
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        out.push(("menu".into(), choice.name.clone()));
        if let Some(d) = digit {
            out.push(("menu.digit".into(), d.to_string()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connector::builtin::settings::BuiltinSettings;

    /// Prompt 3 frames, invalid 2, goodbye 1; 1 s timeout, 1 repeat.
    fn menu() -> Menu {
        let mut config = BuiltinSettings::default().menu("").unwrap();
        config.timeout_secs = 1;
        config.repeats = 1;
        config.invalid_retries = 1;
        Menu::new(MenuPlan {
            config,
            prompt: Audio::new(vec![100; FRAME_SAMPLES * 2 + 10]),
            invalid: Audio::new(vec![200; FRAME_SAMPLES * 2]),
            goodbye: Audio::new(vec![300; FRAME_SAMPLES]),
        })
    }

    /// Runs `menu`, pressing `keys[i]` just before tick `i`, until it ends
    /// (or 1000 ticks): what each tick played (first sample, `0` for
    /// silence) and the attributes.
    fn run(mut menu: Menu, keys: &[(usize, char)]) -> (Vec<i16>, Vec<(String, String)>) {
        let mut played = Vec::new();
        for i in 0..1000 {
            for (_, k) in keys.iter().filter(|(at, _)| *at == i) {
                menu.key(*k);
            }
            match menu.tick() {
                Tick::Play(s) => {
                    assert!(!s.is_empty() && s.len() <= FRAME_SAMPLES);
                    played.push(s[0]);
                }
                Tick::Silence => played.push(0),
                Tick::End(attrs) => {
                    assert_eq!(menu.tick(), Tick::Idle);
                    return (played, attrs);
                }
                Tick::Idle => panic!("idle before the end"),
            }
        }
        panic!("menu never ended");
    }

    fn attr<'a>(attrs: &'a [(String, String)], key: &str) -> Option<&'a str> {
        attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn keys_choose_outcomes() {
        let cases = [
            // key, at tick, menu, contained, route value
            ('1', 3, "sales", "false", "sales"),
            ('2', 10, "support", "false", "support"),
            ('3', 0, "resolved", "true", "self_service"),
        ];
        for (key, at, name, contained, value) in cases {
            let (played, attrs) = run(menu(), &[(at, key)]);
            assert_eq!(attr(&attrs, "menu"), Some(name));
            assert_eq!(attr(&attrs, "menu.digit"), Some(key.to_string().as_str()));
            assert_eq!(attr(&attrs, "contained"), Some(contained));
            assert_eq!(attr(&attrs, "five9.route_value"), Some(value));
            // The goodbye (one frame) is the last thing played.
            assert_eq!(played.last(), Some(&300), "{key}");
            assert_eq!(played.len(), at + 1, "{key}");
        }
    }

    #[test]
    fn a_key_cuts_the_prompt_short() {
        let (played, _) = run(menu(), &[(1, '2')]);
        assert_eq!(played, [100, 300]);
    }

    #[test]
    fn silence_replays_the_prompt_then_times_out() {
        let (played, attrs) = run(menu(), &[]);
        // prompt (3) + 1 s wait (50) + prompt (3) + 1 s wait (50) + goodbye.
        let prompt = [100, 100, 100];
        let mut expected = prompt.to_vec();
        expected.extend([0; 50]);
        expected.extend(prompt);
        expected.extend([0; 50]);
        expected.push(300);
        assert_eq!(played, expected);
        assert_eq!(attr(&attrs, "menu"), Some("timeout"));
        assert_eq!(attr(&attrs, "menu.digit"), None);
        assert_eq!(attr(&attrs, "five9.route_reason"), Some("no_input"));
        assert_eq!(attr(&attrs, "contained"), Some("false"));
    }

    #[test]
    fn invalid_keys_retry_then_give_the_invalid_outcome() {
        // 9 during the prompt: invalid tone, prompt again, then 2 chooses.
        let (played, attrs) = run(menu(), &[(1, '9'), (6, '2')]);
        assert_eq!(played, [100, 200, 200, 100, 100, 100, 300]);
        assert_eq!(attr(&attrs, "menu"), Some("support"));

        // Two bad keys with one retry: the invalid outcome.
        let (played, attrs) = run(menu(), &[(0, '*'), (2, '#')]);
        assert_eq!(played, [200, 200, 300]);
        assert_eq!(attr(&attrs, "menu"), Some("invalid"));
        assert_eq!(attr(&attrs, "menu.digit"), Some("#"));
        assert_eq!(attr(&attrs, "five9.route_reason"), Some("invalid_input"));
    }

    #[test]
    fn keys_after_the_choice_are_ignored() {
        let (played, attrs) = run(menu(), &[(0, '1'), (1, '2')]);
        assert_eq!(played, [300]);
        assert_eq!(attr(&attrs, "menu"), Some("sales"));
    }

    #[test]
    fn a_key_resets_the_silence_budget() {
        // Wait out one timeout (prompt replayed), press a bad key, then stay
        // silent: the prompt is replayed once more before the timeout.
        let (played, attrs) = run(menu(), &[(60, '7')]);
        assert_eq!(attr(&attrs, "menu"), Some("timeout"));
        let prompts = played.windows(2).filter(|w| w == &[0, 100]).count();
        assert_eq!(prompts, 2, "{played:?}");
    }
}
