//! `[[outbound]]`: trunks Trunkline places calls through (originate,
//! transfers into a Five9 inbound number), and what a dialled number
//! becomes on them.
//!
//! ```toml
//! [[outbound]]
//! name = "five9-out"
//! uri = "sip:sbc.five9.example:5060"   # the SBC or proxy; sips: for TLS
//! transport = "udp"                    # udp, tcp, tls; default from the URI
//! max_concurrent = 50
//! ring_timeout_secs = 45
//! [outbound.auth]
//! user = "trunkline"
//! password_env = "FIVE9_OUT_PASSWORD"  # or password_file, or password
//! [outbound.caller_id]
//! user = "+18005550100"
//! display = "Acme Support"
//! assert_identity = true               # P-Asserted-Identity as well
//! [outbound.numbers]
//! default_country_code = "1"           # 4155550100 -> +14155550100
//! prefix = ""                          # put before the number on the wire
//! strip_plus = false
//! ```
//!
//! `trunk = "five9"` names the `[[trunk]]` whose policy and tenant calls
//! placed here have (default: the first).
//!
//! A password comes from exactly one of `password`, `password_file`
//! (relative to the config file; one trailing newline dropped) or
//! `password_env`; it is read once at start-up and never printed.

use std::fmt;
use std::path::Path;

use serde::Deserialize;
use trunkline_sip::auth::Secret;
use trunkline_sip::message::{Scheme, Uri};

use crate::transport::TransportKind;

/// One outbound trunk.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboundTrunk {
    /// The name the originate and transfer APIs use (`"outbound": "five9"`).
    pub name: String,
    /// Where requests go: the SBC or proxy (`sip:host[:port]`,
    /// `sips:` for TLS, `;transport=tcp`).
    pub uri: String,
    /// `udp`, `tcp` or `tls`; default: what the URI says.
    #[serde(default)]
    pub transport: Option<String>,
    /// Digest credentials, for trunks that challenge.
    #[serde(default)]
    pub auth: Option<OutboundAuth>,
    /// Who the call is from.
    #[serde(default)]
    pub caller_id: CallerId,
    /// What a dialled number becomes.
    #[serde(default)]
    pub numbers: Numbers,
    /// Calls on this trunk at once; more are refused (originate: 429).
    #[serde(default = "default_max_concurrent")]
    pub max_concurrent: usize,
    /// How long a call may ring before it is given up (`no-answer`).
    #[serde(default = "default_ring_timeout_secs")]
    pub ring_timeout_secs: u64,
    /// The `[[trunk]]` calls placed here belong to: its policy routes (when
    /// the request names no agent) and concludes them, its tenant owns
    /// them. Default: the first trunk.
    #[serde(default)]
    pub trunk: Option<String>,
    /// The username and password, read at load ([`OutboundTrunk::secret`]).
    #[serde(skip)]
    pub credentials: Option<(String, Secret)>,
}

fn default_max_concurrent() -> usize {
    100
}

fn default_ring_timeout_secs() -> u64 {
    60
}

/// `[outbound.auth]`: the user and password a challenging trunk gets.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboundAuth {
    /// The digest username.
    pub user: String,
    /// The password itself (prefer a file or the environment).
    #[serde(default)]
    pub password: Option<String>,
    /// A file holding the password.
    #[serde(default)]
    pub password_file: Option<std::path::PathBuf>,
    /// An environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
}

impl fmt::Debug for OutboundAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboundAuth")
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("password_file", &self.password_file)
            .field("password_env", &self.password_env)
            .finish()
    }
}

/// `[outbound.caller_id]`: the From of calls on the trunk (a policy or
/// the API may name another user per call).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallerId {
    /// The From user: a number (`+18005550100`) or a name token.
    #[serde(default)]
    pub user: Option<String>,
    /// The From display name.
    #[serde(default)]
    pub display: Option<String>,
    /// Send `P-Asserted-Identity` with the same identity (RFC 3325), for
    /// trunks that take the caller id from it.
    #[serde(default)]
    pub assert_identity: bool,
    /// On a transfer, the From user is the customer's number (`caller`,
    /// the default: the human or the Five9 IVR sees who is calling), or
    /// always `user` (`trunk`: for carriers that refuse caller ids they
    /// did not assign).
    #[serde(default)]
    pub on_transfer: TransferCallerId,
}

/// Whose number a transfer's From carries (`[outbound.caller_id]
/// on_transfer`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransferCallerId {
    /// The customer's (the caller's From user), when it is a number or
    /// plain user; else the trunk's `user`.
    #[default]
    Caller,
    /// The trunk's `user`.
    Trunk,
}

/// `[outbound.numbers]`: number normalisation.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Numbers {
    /// Digits for a number dialled without `+` (`1`: `4155550100` becomes
    /// `+14155550100`). Without it such numbers are refused.
    #[serde(default)]
    pub default_country_code: Option<String>,
    /// Text put before the number on the wire (a tech prefix).
    #[serde(default)]
    pub prefix: String,
    /// Send the number without its `+` (trunks that want `1415...`).
    #[serde(default)]
    pub strip_plus: bool,
}

/// Why a target cannot be dialled; the API answers 422 with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// Not a number and not a SIP URI.
    #[error("`{0}` is neither a phone number nor a sip:/sips: URI")]
    Malformed(String),
    /// Too few digits to be anything but an extension behind someone's
    /// PBX.
    #[error("`{0}` is a bare extension, not a number that can be dialled on a trunk")]
    Extension(String),
    /// More than E.164's 15 digits.
    #[error("`{0}` has more than 15 digits (E.164)")]
    TooLong(String),
    /// No `+` and no default country code to add.
    #[error(
        "`{0}` is not in E.164 form (+ and country code) and the trunk has no default_country_code"
    )]
    NotE164(String),
}

/// A target as it goes on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialled {
    /// The Request-URI (and the To URI).
    pub request_uri: String,
    /// The number in E.164 form, when a number was dialled (for policies,
    /// records and logs).
    pub e164: Option<String>,
}

/// Fewest digits a dialled number may have: shorter is an extension.
const MIN_DIGITS: usize = 7;
/// E.164's most digits, country code included.
const MAX_DIGITS: usize = 15;

impl OutboundTrunk {
    /// The transport the trunk's URI and `transport` select.
    pub fn transport_kind(&self) -> Result<TransportKind, String> {
        let uri = Uri::parse(&self.uri)
            .filter(|u| matches!(u.scheme, Scheme::Sip | Scheme::Sips) && u.host.is_some())
            .ok_or_else(|| format!("uri `{}` is not a sip:/sips: URI with a host", self.uri))?;
        let from_uri = match uri.param("transport").flatten() {
            Some(t) => parse_transport(t)?,
            None if uri.scheme == Scheme::Sips => TransportKind::Tls,
            None => TransportKind::Udp,
        };
        let kind = match &self.transport {
            Some(t) => parse_transport(t)?,
            None => from_uri,
        };
        if uri.scheme == Scheme::Sips && kind != TransportKind::Tls {
            return Err(format!(
                "uri `{}` is sips: but transport is not tls",
                self.uri
            ));
        }
        Ok(kind)
    }

    /// The trunk's host and port as they go in a Request-URI
    /// (`sbc.example.com:5060`).
    fn host_port(&self) -> String {
        let uri = Uri::parse(&self.uri);
        match uri {
            Some(Uri {
                host: Some(host),
                port,
                ..
            }) => match port {
                Some(p) => format!("{host}:{p}"),
                None => host.to_string(),
            },
            _ => self.uri.clone(),
        }
    }

    /// What `to` (a number in any common writing, or a `sip:`/`sips:`
    /// URI) becomes on this trunk.
    pub fn dial(&self, to: &str) -> Result<Dialled, TargetError> {
        let to = to.trim();
        if to.starts_with("sip:") || to.starts_with("sips:") {
            let uri = Uri::parse(to)
                .filter(|u| u.host.is_some() && u.headers.is_none())
                .ok_or_else(|| TargetError::Malformed(to.to_owned()))?;
            if to.chars().any(|c| c.is_control() || c.is_whitespace()) {
                return Err(TargetError::Malformed(to.to_owned()));
            }
            return Ok(Dialled {
                request_uri: uri.to_string(),
                e164: None,
            });
        }
        let e164 = self.numbers.e164(to)?;
        let wire = if self.numbers.strip_plus {
            e164.trim_start_matches('+')
        } else {
            e164.as_str()
        };
        Ok(Dialled {
            request_uri: format!(
                "sip:{}{wire}@{};user=phone",
                self.numbers.prefix,
                self.host_port()
            ),
            e164: Some(e164),
        })
    }

    /// The digest client's secret, read from wherever the config says.
    /// `base` is the config file's folder.
    pub fn secret(&self, base: &Path) -> Result<Option<(String, Secret)>, String> {
        Ok(self
            .credentials(base)?
            .map(|(user, password)| (user, Secret::password(password))))
    }

    /// The username and the password as read.
    fn credentials(&self, base: &Path) -> Result<Option<(String, String)>, String> {
        let Some(auth) = &self.auth else {
            return Ok(None);
        };
        let password = match (&auth.password, &auth.password_file, &auth.password_env) {
            (Some(p), None, None) => p.clone(),
            (None, Some(file), None) => {
                let path = if file.is_relative() {
                    base.join(file)
                } else {
                    file.clone()
                };
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("password_file {}: {e}", path.display()))?;
                let text = text.strip_suffix('\n').unwrap_or(&text);
                text.strip_suffix('\r').unwrap_or(text).to_owned()
            }
            (None, None, Some(var)) => std::env::var(var)
                .map_err(|_| format!("password_env: ${var} is not set (or not UTF-8)"))?,
            (None, None, None) => {
                return Err("auth needs one of password, password_file, password_env".into());
            }
            _ => {
                return Err("auth takes only one of password, password_file, password_env".into());
            }
        };
        if password.is_empty() {
            return Err("auth: the password is empty".into());
        }
        if auth.user.is_empty() || auth.user.chars().any(|c| c.is_control() || c == '"') {
            return Err(
                "auth: user must be non-empty, without quotes or control characters".into(),
            );
        }
        Ok(Some((auth.user.clone(), password)))
    }

    /// Checks what can be checked without the file system.
    pub fn check(&self) -> Result<(), String> {
        if self.name.is_empty()
            || !self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err("name must be letters, digits, `-`, `_` or `.`".into());
        }
        self.transport_kind()?;
        if self.max_concurrent == 0 {
            return Err("max_concurrent must be at least 1".into());
        }
        if !(1..=600).contains(&self.ring_timeout_secs) {
            return Err(format!(
                "ring_timeout_secs = {} is outside 1..=600",
                self.ring_timeout_secs
            ));
        }
        if let Some(cc) = &self.numbers.default_country_code
            && (cc.is_empty() || cc.len() > 3 || !cc.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(format!(
                "numbers.default_country_code `{cc}` is not 1 to 3 digits"
            ));
        }
        if !self
            .numbers
            .prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"*#+".contains(&b))
        {
            return Err("numbers.prefix may hold only digits, letters, `*`, `#`, `+`".into());
        }
        if let Some(user) = &self.caller_id.user
            && !trunkline_sip::leg::is_user_token(user)
        {
            return Err(format!(
                "caller_id.user `{user}` must be a number or a token (letters, digits, +-_.)"
            ));
        }
        if let Some(auth) = &self.auth {
            let sources = [
                auth.password.is_some(),
                auth.password_file.is_some(),
                auth.password_env.is_some(),
            ];
            match sources.iter().filter(|s| **s).count() {
                1 => {}
                0 => return Err("auth needs one of password, password_file, password_env".into()),
                _ => {
                    return Err(
                        "auth takes only one of password, password_file, password_env".into(),
                    );
                }
            }
        }
        Ok(())
    }
}

impl Numbers {
    /// `to` in E.164 form: `+` and 7 to 15 digits. Spaces, dashes, dots
    /// and parentheses are dropped; a leading `00` counts as `+`.
    pub fn e164(&self, to: &str) -> Result<String, TargetError> {
        let malformed = || TargetError::Malformed(to.to_owned());
        let mut digits = String::with_capacity(to.len());
        let mut plus = false;
        for (i, c) in to.chars().enumerate() {
            match c {
                '+' if i == 0 => plus = true,
                '0'..='9' => digits.push(c),
                ' ' | '-' | '.' | '(' | ')' => {}
                _ => return Err(malformed()),
            }
        }
        if digits.is_empty() {
            return Err(malformed());
        }
        if !plus && let Some(rest) = digits.strip_prefix("00") {
            plus = true;
            digits = rest.to_owned();
        }
        if digits.len() < MIN_DIGITS {
            return Err(TargetError::Extension(to.to_owned()));
        }
        if !plus {
            let cc = self
                .default_country_code
                .as_deref()
                .ok_or_else(|| TargetError::NotE164(to.to_owned()))?;
            // A national number that already starts with the country code
            // and is as long as an international one keeps it (North
            // America's 1 + 10 digits).
            if !(digits.starts_with(cc) && digits.len() == cc.len() + 10) {
                digits.insert_str(0, cc);
            }
        }
        if digits.len() > MAX_DIGITS {
            return Err(TargetError::TooLong(to.to_owned()));
        }
        Ok(format!("+{digits}"))
    }
}

fn parse_transport(text: &str) -> Result<TransportKind, String> {
    match text.to_ascii_lowercase().as_str() {
        "udp" => Ok(TransportKind::Udp),
        "tcp" => Ok(TransportKind::Tcp),
        "tls" => Ok(TransportKind::Tls),
        other => Err(format!("transport `{other}` is not udp, tcp or tls")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trunk(toml: &str) -> OutboundTrunk {
        toml::from_str(toml).expect("parses")
    }

    fn five9() -> OutboundTrunk {
        trunk(
            r#"
            name = "five9-out"
            uri = "sip:127.0.0.1:5090"
            [auth]
            user = "trunkline"
            password = "change-me-outbound"
            [numbers]
            default_country_code = "1"
            "#,
        )
    }

    #[test]
    fn numbers_in_common_writings_become_e164() {
        let t = five9();
        for (to, e164) in [
            ("+1 (415) 555-0100", "+14155550100"),
            ("4155550100", "+14155550100"),
            ("14155550100", "+14155550100"),
            ("415.555.0100", "+14155550100"),
            ("0044 20 7946 0958", "+442079460958"),
            ("+442079460958", "+442079460958"),
        ] {
            let dialled = t.dial(to).unwrap_or_else(|e| panic!("{to}: {e}"));
            assert_eq!(dialled.e164.as_deref(), Some(e164), "{to}");
            assert_eq!(
                dialled.request_uri,
                format!("sip:{e164}@127.0.0.1:5090;user=phone"),
                "{to}"
            );
        }
    }

    #[test]
    fn bad_targets_are_refused_with_the_reason() {
        let t = five9();
        assert!(matches!(t.dial("1234"), Err(TargetError::Extension(_))));
        assert!(matches!(t.dial("+1234"), Err(TargetError::Extension(_))));
        assert!(matches!(
            t.dial("+1234567890123456"),
            Err(TargetError::TooLong(_))
        ));
        for bad in [
            "",
            "+",
            "abc",
            "415-555-01OO",
            "+1 415 555 0100;x=1",
            "1+4155550100",
        ] {
            assert!(
                matches!(t.dial(bad), Err(TargetError::Malformed(_))),
                "{bad:?}: {:?}",
                t.dial(bad)
            );
        }
        for bad in [
            "sip:",
            "sip:@",
            "sip:a@b?Route=x",
            "sip:a b@c",
            "sip:x@h\r\nVia: y",
        ] {
            assert!(t.dial(bad).is_err(), "{bad:?}");
        }
        let mut no_cc = five9();
        no_cc.numbers.default_country_code = None;
        assert!(matches!(
            no_cc.dial("4155550100"),
            Err(TargetError::NotE164(_))
        ));
        assert!(no_cc.dial("+14155550100").is_ok());
        let message = t.dial("1234").unwrap_err().to_string();
        assert!(message.contains("extension"), "{message}");
    }

    #[test]
    fn a_sip_uri_is_dialled_as_it_is() {
        let t = five9();
        let d = t.dial("sip:skill-sales@192.0.2.50:5060").unwrap();
        assert_eq!(d.request_uri, "sip:skill-sales@192.0.2.50:5060");
        assert_eq!(d.e164, None);
    }

    #[test]
    fn prefix_and_strip_plus_shape_the_wire_form() {
        let mut t = five9();
        t.numbers.prefix = "9".into();
        t.numbers.strip_plus = true;
        let d = t.dial("+14155550100").unwrap();
        assert_eq!(d.request_uri, "sip:914155550100@127.0.0.1:5090;user=phone");
        assert_eq!(d.e164.as_deref(), Some("+14155550100"));
    }

    #[test]
    fn transport_comes_from_the_uri_or_the_key_and_must_agree_with_sips() {
        let kind = |uri: &str, transport: Option<&str>| {
            let mut t = five9();
            t.uri = uri.into();
            t.transport = transport.map(Into::into);
            t.transport_kind()
        };
        assert_eq!(kind("sip:sbc.example", None), Ok(TransportKind::Udp));
        assert_eq!(
            kind("sip:sbc.example;transport=tcp", None),
            Ok(TransportKind::Tcp)
        );
        assert_eq!(kind("sips:sbc.example", None), Ok(TransportKind::Tls));
        assert_eq!(kind("sip:sbc.example", Some("TLS")), Ok(TransportKind::Tls));
        assert!(kind("sips:sbc.example", Some("udp")).is_err());
        assert!(kind("sip:sbc.example", Some("sctp")).is_err());
        assert!(kind("http://sbc.example", None).is_err());
        assert!(kind("tel:+14155550100", None).is_err());
    }

    #[test]
    fn the_password_comes_from_one_source_and_is_never_printed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pw"), "from-a-file\n").unwrap();
        let mut t = five9();
        let (user, secret) = t.secret(dir.path()).unwrap().unwrap();
        assert_eq!(user, "trunkline");
        let printed = format!("{t:?} {secret:?}");
        assert!(!printed.contains("change-me-outbound"), "{printed}");

        let auth = t.auth.as_mut().unwrap();
        auth.password = None;
        auth.password_file = Some("pw".into());
        assert!(t.check().is_ok());
        let (_, password) = t.credentials(dir.path()).unwrap().unwrap();
        assert_eq!(password, "from-a-file", "one trailing newline dropped");
        // SAFETY: no other thread of this test binary reads this variable.
        unsafe { std::env::set_var("TRUNKLINE_TEST_OUTBOUND_PW", "from-the-env") };
        let auth = t.auth.as_mut().unwrap();
        auth.password_file = None;
        auth.password_env = Some("TRUNKLINE_TEST_OUTBOUND_PW".into());
        let (_, password) = t.credentials(dir.path()).unwrap().unwrap();
        assert_eq!(password, "from-the-env");
        let auth = t.auth.as_mut().unwrap();
        auth.password_env = None;
        auth.password_file = Some("pw".into());

        let auth = t.auth.as_mut().unwrap();
        auth.password_file = Some("missing".into());
        let err = t.secret(dir.path()).unwrap_err();
        assert!(err.contains("missing"), "{err}");

        let auth = t.auth.as_mut().unwrap();
        auth.password_file = None;
        auth.password_env = Some("TRUNKLINE_TEST_SURELY_UNSET_VAR".into());
        let err = t.secret(dir.path()).unwrap_err();
        assert!(err.contains("TRUNKLINE_TEST_SURELY_UNSET_VAR"), "{err}");

        let auth = t.auth.as_mut().unwrap();
        auth.password = Some("x".into());
        assert!(t.check().unwrap_err().contains("only one"));
        let auth = t.auth.as_mut().unwrap();
        auth.password = None;
        auth.password_env = None;
        assert!(t.check().unwrap_err().contains("needs one"));
    }

    #[test]
    fn limits_and_names_are_checked() {
        let mut t = five9();
        assert!(t.check().is_ok());
        t.max_concurrent = 0;
        assert!(t.check().is_err());
        t = five9();
        t.ring_timeout_secs = 0;
        assert!(t.check().is_err());
        t = five9();
        t.name = "has space".into();
        assert!(t.check().is_err());
        t = five9();
        t.numbers.default_country_code = Some("1x".into());
        assert!(t.check().is_err());
        t = five9();
        t.caller_id.user = Some("a@b".into());
        assert!(t.check().is_err());
        t = five9();
        t.numbers.prefix = "9;x".into();
        assert!(t.check().is_err());
    }
}
