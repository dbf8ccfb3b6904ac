//! `[builtin]`: the builtin agent's menus, as the operator writes them.
//!
//! ```toml
//! [builtin]                      # the default menu, for `builtin:`
//! prompt = "prompts/welcome.wav" # relative to the config file
//! timeout_secs = 5
//!
//! [builtin.options.1]
//! name = "sales"
//! attributes = { contained = "false", destination = "sales" }
//!
//! [builtin.menus.spanish]        # `builtin:spanish`: unset fields come
//! prompt = "prompts/es.wav"      # from [builtin]
//! ```
//!
//! Without any `[builtin]` table the default menu is [`default_options`]
//! with generated chimes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The menu name that means `[builtin]` itself: `builtin:default` is the
/// same as `builtin:`.
pub const DEFAULT_MENU: &str = "default";

/// `[builtin]`: the builtin agent. Its fields are the default menu (the
/// target `builtin:`); `menus` holds named ones (`builtin:NAME`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BuiltinSettings {
    /// Audio played when the call is answered and again on each retry: raw
    /// 8 kHz μ-law (`.ulaw`, `.pcmu`), raw A-law (`.alaw`, `.pcma`) or a mono
    /// 8 kHz WAV (16-bit PCM, μ-law or A-law). Relative to the config file.
    /// Unset: a generated chime (three rising notes and a beep).
    pub prompt: Option<PathBuf>,
    /// Audio played after a key that is not on the menu. Unset: a
    /// generated falling two-note tone.
    pub invalid_prompt: Option<PathBuf>,
    /// Audio played after the outcome is decided, before the call ends.
    /// Unset: a generated short rising pair.
    pub goodbye_prompt: Option<PathBuf>,
    /// Seconds to wait for a key once the prompt has played (1-300).
    pub timeout_secs: u32,
    /// How many more times the prompt is played to a caller who pressed
    /// nothing, before the `timeout` outcome.
    pub repeats: u32,
    /// How many keys that are not on the menu are answered with the invalid
    /// prompt and a retry; the next one gives the `invalid` outcome.
    pub invalid_retries: u32,
    /// The menu: a key (`0`-`9`, `*`, `#`, `A`-`D`) and what choosing it
    /// means. Pressing a key ends the menu at once, even during the prompt.
    pub options: BTreeMap<MenuKey, Choice>,
    /// The outcome when the caller pressed nothing.
    pub timeout: Choice,
    /// The outcome when the caller kept pressing keys not on the menu.
    pub invalid: Choice,
    /// Named menus, chosen with the target `builtin:NAME`. A field a named
    /// menu leaves out is taken from `[builtin]`.
    pub menus: BTreeMap<String, MenuSettings>,
}

/// `[builtin.menus.NAME]`: a named menu; every field is optional and
/// defaults to the same field of `[builtin]` (see [`BuiltinSettings`]).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MenuSettings {
    /// See [`BuiltinSettings::prompt`].
    pub prompt: Option<PathBuf>,
    /// See [`BuiltinSettings::invalid_prompt`].
    pub invalid_prompt: Option<PathBuf>,
    /// See [`BuiltinSettings::goodbye_prompt`].
    pub goodbye_prompt: Option<PathBuf>,
    /// See [`BuiltinSettings::timeout_secs`].
    pub timeout_secs: Option<u32>,
    /// See [`BuiltinSettings::repeats`].
    pub repeats: Option<u32>,
    /// See [`BuiltinSettings::invalid_retries`].
    pub invalid_retries: Option<u32>,
    /// See [`BuiltinSettings::options`]; replaces the default menu's
    /// options as a whole when set.
    pub options: Option<BTreeMap<MenuKey, Choice>>,
    /// See [`BuiltinSettings::timeout`].
    pub timeout: Option<Choice>,
    /// See [`BuiltinSettings::invalid`].
    pub invalid: Option<Choice>,
}

/// What a menu key (or a timeout) means.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Choice {
    /// A short name, set as the `menu` attribute (`sales`, `timeout`).
    pub name: String,
    /// Attributes set when the call ends this way, handed to the policy's
    /// `conclude` (for example `contained`, `destination`,
    /// `five9.route_reason`).
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// "Transfer to a human": instead of ending the call, Trunkline dials
    /// this number through an `[[outbound]]` trunk and bridges the caller
    /// to it on its answer (a cold transfer). Should the transfer fail,
    /// the call ends with the option's attributes and `transfer.failure`,
    /// so the policy can hand the caller back to Five9.
    #[serde(default)]
    pub transfer: Option<TransferTo>,
}

/// Where a menu option transfers the caller.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferTo {
    /// A number (any common writing) or `sip:` URI.
    pub to: String,
    /// The `[[outbound]]` trunk to dial it through.
    pub outbound: String,
}

impl Choice {
    fn new(name: &str, attributes: &[(&str, &str)]) -> Choice {
        Choice {
            name: name.to_owned(),
            attributes: attributes
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            transfer: None,
        }
    }
}

/// A DTMF key of a menu: `0`-`9`, `*`, `#` or `A`-`D` (checked when the
/// config is read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct MenuKey(char);

impl MenuKey {
    /// The key for `c` (letters in either case), `None` when it is not DTMF.
    pub fn new(c: char) -> Option<MenuKey> {
        let c = c.to_ascii_uppercase();
        matches!(c, '0'..='9' | '*' | '#' | 'A'..='D').then_some(MenuKey(c))
    }

    /// The key.
    pub fn char(self) -> char {
        self.0
    }
}

impl<'de> Deserialize<'de> for MenuKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let mut chars = text.chars();
        match (chars.next().and_then(MenuKey::new), chars.next()) {
            (Some(key), None) => Ok(key),
            _ => Err(serde::de::Error::custom(format!(
                "menu key {text:?} is not one DTMF key (0-9, *, #, A-D)"
            ))),
        }
    }
}

/// The default menu's options, chosen so that both example policies put
/// the choice on the BYE: `route-reason` reads `five9.route_*` into
/// `X-RouteReason`/`X-RouteType`/`X-RouteValue` (a `queue` route type means
/// "not contained, send to the route value"), `multi-tenant` reads
/// `contained`/`destination` into `X-contained`/`X-destination`.
///
/// | key | `menu` | contained | destination | route reason / type / value |
/// |---|---|---|---|---|
/// | 1 | sales | false | sales | `sales_inquiry` / `queue` / `sales` |
/// | 2 | support | false | support | `support_request` / `queue` / `support` |
/// | 3 | resolved | true | | `resolved` / `end` / `self_service` |
/// | (silence) | timeout | false | operator | `no_input` / `queue` / `operator` |
/// | (bad keys) | invalid | false | operator | `invalid_input` / `queue` / `operator` |
pub fn default_options() -> BTreeMap<MenuKey, Choice> {
    [
        ('1', handoff("sales", "sales_inquiry", "sales")),
        ('2', handoff("support", "support_request", "support")),
        (
            '3',
            Choice::new(
                "resolved",
                &[
                    ("contained", "true"),
                    ("destination", ""),
                    ("five9.route_reason", "resolved"),
                    ("five9.route_type", "end"),
                    ("five9.route_value", "self_service"),
                ],
            ),
        ),
    ]
    .into_iter()
    .map(|(k, c)| (MenuKey(k), c))
    .collect()
}

/// A choice that sends the caller back to Five9 toward `queue`.
fn handoff(name: &str, reason: &str, queue: &str) -> Choice {
    Choice::new(
        name,
        &[
            ("contained", "false"),
            ("destination", queue),
            ("five9.route_reason", reason),
            ("five9.route_type", "queue"),
            ("five9.route_value", queue),
        ],
    )
}

impl Default for BuiltinSettings {
    fn default() -> Self {
        BuiltinSettings {
            prompt: None,
            invalid_prompt: None,
            goodbye_prompt: None,
            timeout_secs: 5,
            repeats: 1,
            invalid_retries: 2,
            options: default_options(),
            timeout: handoff("timeout", "no_input", "operator"),
            invalid: handoff("invalid", "invalid_input", "operator"),
            menus: BTreeMap::new(),
        }
    }
}

/// One menu with every field settled (the default menu, or a named menu
/// over it).
#[derive(Debug, Clone, PartialEq)]
pub struct MenuConfig {
    /// See [`BuiltinSettings::prompt`].
    pub prompt: Option<PathBuf>,
    /// See [`BuiltinSettings::invalid_prompt`].
    pub invalid_prompt: Option<PathBuf>,
    /// See [`BuiltinSettings::goodbye_prompt`].
    pub goodbye_prompt: Option<PathBuf>,
    /// See [`BuiltinSettings::timeout_secs`].
    pub timeout_secs: u32,
    /// See [`BuiltinSettings::repeats`].
    pub repeats: u32,
    /// See [`BuiltinSettings::invalid_retries`].
    pub invalid_retries: u32,
    /// See [`BuiltinSettings::options`].
    pub options: BTreeMap<MenuKey, Choice>,
    /// See [`BuiltinSettings::timeout`].
    pub timeout: Choice,
    /// See [`BuiltinSettings::invalid`].
    pub invalid: Choice,
}

impl BuiltinSettings {
    /// Makes relative paths (prompt files) relative to the config's folder.
    pub fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut Option<PathBuf>| {
            if let Some(p) = p.as_mut().filter(|p| p.is_relative()) {
                *p = base.join(&*p);
            }
        };
        fix(&mut self.prompt);
        fix(&mut self.invalid_prompt);
        fix(&mut self.goodbye_prompt);
        for menu in self.menus.values_mut() {
            fix(&mut menu.prompt);
            fix(&mut menu.invalid_prompt);
            fix(&mut menu.goodbye_prompt);
        }
    }

    /// Checks values the types cannot: timeouts in 1..=300 s, menus with
    /// at least one option, names usable in a target. The message names
    /// the field.
    pub fn check(&self) -> Result<(), String> {
        let menus = std::iter::once(String::new())
            .chain(self.menus.keys().cloned())
            .collect::<Vec<_>>();
        for name in menus {
            let menu = self.menu(&name)?;
            let table = if name.is_empty() {
                "builtin".to_owned()
            } else {
                format!("builtin.menus.{name}")
            };
            if !(1..=300).contains(&menu.timeout_secs) {
                return Err(format!(
                    "{table}.timeout_secs = {} is outside 1..=300",
                    menu.timeout_secs
                ));
            }
            if menu.options.is_empty() {
                return Err(format!("{table}.options is empty: the menu needs a key"));
            }
            if name.trim() != name || name.contains(char::is_whitespace) {
                return Err(format!("{table}: a menu name may not contain spaces"));
            }
        }
        Ok(())
    }

    /// The menu a target names: `[builtin.menus.NAME]` over `[builtin]`;
    /// `""` and [`DEFAULT_MENU`] (unless a menu has that name) are
    /// `[builtin]` itself.
    pub fn menu(&self, name: &str) -> Result<MenuConfig, String> {
        let top = MenuSettings::default();
        let named = match self.menus.get(name) {
            Some(menu) => menu,
            None if name.is_empty() || name == DEFAULT_MENU => &top,
            None => {
                return Err(format!(
                    "builtin menu {name:?} is not configured ([builtin.menus.{name}])"
                ));
            }
        };
        let or = |own: &Option<PathBuf>, base: &Option<PathBuf>| own.clone().or(base.clone());
        Ok(MenuConfig {
            prompt: or(&named.prompt, &self.prompt),
            invalid_prompt: or(&named.invalid_prompt, &self.invalid_prompt),
            goodbye_prompt: or(&named.goodbye_prompt, &self.goodbye_prompt),
            timeout_secs: named.timeout_secs.unwrap_or(self.timeout_secs),
            repeats: named.repeats.unwrap_or(self.repeats),
            invalid_retries: named.invalid_retries.unwrap_or(self.invalid_retries),
            options: named.options.clone().unwrap_or(self.options.clone()),
            timeout: named.timeout.clone().unwrap_or(self.timeout.clone()),
            invalid: named.invalid.clone().unwrap_or(self.invalid.clone()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<BuiltinSettings, String> {
        #[derive(Deserialize)]
        struct Doc {
            #[serde(default)]
            builtin: BuiltinSettings,
        }
        toml::from_str::<Doc>(text)
            .map(|d| d.builtin)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn no_table_is_the_documented_default_menu() {
        let s = parse("").unwrap();
        assert_eq!(s, BuiltinSettings::default());
        s.check().unwrap();
        let menu = s.menu("").unwrap();
        let sales = &menu.options[&MenuKey::new('1').unwrap()];
        assert_eq!(sales.name, "sales");
        assert_eq!(sales.attributes["five9.route_type"], "queue");
        assert_eq!(sales.attributes["destination"], "sales");
        assert_eq!(menu.timeout.name, "timeout");
        assert_eq!(menu.timeout_secs, 5);
    }

    #[test]
    fn named_menus_inherit_and_override() {
        let s = parse(
            r##"
            [builtin]
            prompt = "p/welcome.wav"
            timeout_secs = 7
            [builtin.options.9]
            name = "nine"
            [builtin.menus.es]
            prompt = "/abs/es.ulaw"
            repeats = 0
            [builtin.menus.es.options."#"]
            name = "hash"
            attributes = { "five9.route_reason" = "x" }
            "##,
        )
        .unwrap();
        let mut resolved = s.clone();
        resolved.resolve_paths(Path::new("/etc/tl"));
        assert_eq!(
            resolved.prompt,
            Some(PathBuf::from("/etc/tl/p/welcome.wav"))
        );
        assert_eq!(
            resolved.menus["es"].prompt,
            Some(PathBuf::from("/abs/es.ulaw"))
        );

        let es = s.menu("es").unwrap();
        assert_eq!(es.timeout_secs, 7);
        assert_eq!(es.repeats, 0);
        assert_eq!(es.options.len(), 1);
        assert_eq!(es.options[&MenuKey::new('#').unwrap()].name, "hash");
        let default = s.menu("").unwrap();
        assert_eq!(default.options[&MenuKey::new('9').unwrap()].name, "nine");
        assert_eq!(default.repeats, 1);
        assert!(s.menu("fr").unwrap_err().contains("builtin.menus.fr"));
        assert_eq!(s.menu("default").unwrap(), default);
    }

    #[test]
    fn mistakes_are_errors() {
        let cases = [
            ("[builtin]\ntimout_secs = 3", "unknown field"),
            ("[builtin.options.12]\nname = \"x\"", "not one DTMF key"),
            ("[builtin.options.x]\nname = \"x\"", "not one DTMF key"),
            ("[builtin.options.1]\nnom = \"x\"", "unknown field"),
            ("[builtin.menus.a]\ncolor = 1", "unknown field"),
        ];
        for (text, needle) in cases {
            let err = parse(text).unwrap_err();
            assert!(err.contains(needle), "{text}: {err}");
        }
        let checks = [
            ("[builtin]\ntimeout_secs = 0", "builtin.timeout_secs"),
            (
                "[builtin.menus.a]\ntimeout_secs = 301",
                "builtin.menus.a.timeout_secs",
            ),
            (
                "[builtin.menus.b]\noptions = {}",
                "builtin.menus.b.options is empty",
            ),
        ];
        for (text, needle) in checks {
            let err = parse(text).unwrap().check().unwrap_err();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }

    #[test]
    fn keys_accept_lowercase_letters() {
        assert_eq!(MenuKey::new('a').map(MenuKey::char), Some('A'));
        assert_eq!(MenuKey::new('E'), None);
        assert_eq!(MenuKey::new('5').map(MenuKey::char), Some('5'));
    }
}
