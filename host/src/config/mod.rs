//! The operator's configuration: one TOML file, safe defaults, unknown keys
//! refused so that a typo is an error at start-up rather than a silently
//! ignored setting.
//!
//! ```toml
//! [policy]
//! dir = "policies"          # the watched folder, relative to this file
//! deadline_ms = 10
//! memory_mib = 16
//!
//! [policies.route-reason]   # key/values handed to the policy `route-reason`
//! default_agent = "sip:agent@127.0.0.1:5080"
//! did."+14155550100" = "sip:sales@127.0.0.1:5080"   # becomes `did.+14155550100`
//!
//! [[trunk]]
//! name = "five9"
//! policy = "route-reason"
//! fallback = { action = "reject", status = 503 }
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

mod outbound;

pub use outbound::{
    CallerId, Dialled, Numbers, OutboundAuth, OutboundTrunk, TargetError, TransferCallerId,
};

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not match the schema.
    #[error("invalid config {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the TOML parser said, with line and column (the source
        /// line is not quoted, and secrets on it are redacted).
        message: String,
    },
    /// The file parsed, but a value is not usable.
    #[error("invalid config: {0}")]
    Invalid(String),
}

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// How policies are loaded and run.
    #[serde(default)]
    pub policy: PolicySettings,
    /// Per-policy key/values, handed to the policy's `config` import. Nested
    /// tables are flattened into dotted keys; numbers and booleans become
    /// their text.
    #[serde(default)]
    pub policies: BTreeMap<String, toml::Table>,
    /// The trunks: who may call in and which policy decides for them.
    #[serde(default, rename = "trunk")]
    pub trunks: Vec<TrunkConfig>,
    /// The trunks calls are placed through (originate, transfers).
    #[serde(default, rename = "outbound")]
    pub outbound: Vec<OutboundTrunk>,
    /// SIP listeners.
    #[serde(default)]
    pub sip: crate::transport::ListenConfig,
    /// How calls are handled.
    #[serde(default)]
    pub gateway: GatewaySettings,
    /// The HTTP API (control, Handoff, metrics, status).
    #[serde(default)]
    pub http: HttpSettings,
    /// The RTP relay.
    #[serde(default)]
    pub media: MediaSettings,
    /// Where outcome records are kept for the Handoff API.
    #[serde(default)]
    pub store: crate::store::StoreSettings,
    /// WebSocket agents (`ws://`, `wss://` targets).
    #[serde(default)]
    pub websocket: crate::connector::ws::WsSettings,
    /// The builtin agent (`builtin:` targets).
    #[serde(default)]
    pub builtin: crate::connector::builtin::BuiltinSettings,
    /// Logging.
    #[serde(default)]
    pub log: LogSettings,
}

/// `[log]`: how the gateway logs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// `human` (the default) or `json` (one object per line).
    pub format: LogFormat,
    /// A `tracing` filter (`info`, `trunkline=debug,info`); `RUST_LOG`
    /// wins when set.
    pub filter: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            format: LogFormat::Human,
            filter: "info".into(),
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Text for people.
    #[default]
    Human,
    /// One JSON object per line, for log shippers.
    Json,
}

/// `[media]`: the RTP relay every call's audio goes through.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaSettings {
    /// First port of the RTP range (even ports carry RTP, odd RTCP).
    pub port_min: u16,
    /// Last port of the RTP range.
    pub port_max: u16,
    /// Seconds without RTP from a leg (not on hold) before the call ends
    /// with reason `media-timeout`.
    pub timeout_secs: u64,
    /// Codecs offered to SIP agents, in preference order (`PCMU`, `PCMA`).
    /// Five9 only ever gets G.711 in the caller's order; when the legs
    /// differ the relay transcodes.
    pub agent_codecs: Vec<String>,
}

impl Default for MediaSettings {
    fn default() -> Self {
        MediaSettings {
            port_min: 20000,
            port_max: 29999,
            timeout_secs: 30,
            agent_codecs: vec!["PCMU".into(), "PCMA".into()],
        }
    }
}

/// `[gateway]`: how calls are handled.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewaySettings {
    /// The address put in our Via, Contact and SDP. Default: the UDP (else
    /// TCP) listener's address; required when that is a wildcard (`0.0.0.0`).
    pub advertise: Option<std::net::IpAddr>,
    /// Longest call, in seconds, before it is ended through `conclude`
    /// with reason `max-duration` (Five9 caps calls at 12 hours).
    pub max_call_secs: u64,
    /// How long the agent may ring, in seconds, before the caller gets
    /// `480` and the agent a CANCEL.
    pub ring_timeout_secs: u64,
    /// RFC 3261 T1 in milliseconds (500); lower only on LAN test rigs.
    pub t1_ms: u64,
    /// Session-Expires we ask for and accept (RFC 4028), in seconds.
    pub session_expires_secs: u32,
    /// How long to wait for a REFER's final NOTIFY before the BYE, seconds.
    pub refer_timeout_secs: u64,
    /// On SIGTERM: how long calls in progress may go on (new calls get
    /// `503`) before the rest are ended through `conclude`, in seconds.
    pub drain_secs: u64,
    /// Server transactions open at once, in all. Past it, requests are
    /// answered statelessly (an admitted INVITE gets `503` with
    /// Retry-After) and nothing is kept.
    pub max_transactions: usize,
    /// Server transactions open at once from one source IP. A call holds
    /// two for 32 s after their answer, so a source sending N calls a
    /// second needs 64·N (the default: 600 CPS from one Five9 edge).
    pub max_transactions_per_source: usize,
    /// How long a DNS look-up (an agent named by host name) may take, in
    /// milliseconds, before the call fails with `503`.
    pub dns_timeout_ms: u64,
    /// How long a look-up's answer is reused, in seconds (a failure: a
    /// fifth of it, at least 1 s).
    pub dns_cache_secs: u64,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        GatewaySettings {
            advertise: None,
            max_call_secs: 12 * 3600,
            ring_timeout_secs: 60,
            t1_ms: 500,
            session_expires_secs: 1800,
            refer_timeout_secs: 8,
            drain_secs: 30,
            max_transactions: 100_000,
            max_transactions_per_source: 40_000,
            dns_timeout_ms: 2_000,
            dns_cache_secs: 60,
        }
    }
}

/// `[http]`: the HTTP API (control API, Handoff API, metrics, status).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// Listener of the HTTP API; `enabled = false` turns it off.
    pub listen: std::net::SocketAddr,
    /// Whether the HTTP API runs.
    pub enabled: bool,
    /// API keys: who may call the control and Handoff APIs, and which
    /// tenant's calls and records each key sees.
    pub keys: Vec<ApiKey>,
    /// Seconds a client has to send a request's head (request line and
    /// headers), from the connection's start or from the first byte of a
    /// later request; past it the connection is closed (slowloris).
    pub header_timeout_secs: u64,
    /// Seconds from the end of a request's head to its answer: the body
    /// must arrive within this, or the connection is closed.
    pub body_timeout_secs: u64,
    /// Seconds a keep-alive connection may sit between requests.
    pub idle_timeout_secs: u64,
    /// Connections served at once; further ones get `503` and are closed
    /// at once, counted in `trunkline_http_connections_refused_total`.
    pub max_connections: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            listen: ([127, 0, 0, 1], 8080).into(),
            enabled: true,
            keys: Vec::new(),
            header_timeout_secs: 10,
            body_timeout_secs: 30,
            idle_timeout_secs: 60,
            max_connections: 1024,
        }
    }
}

/// `[[http.keys]]`: one API key.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKey {
    /// A name for logs and metrics (the key itself is never logged).
    pub name: String,
    /// The secret, sent as `Authorization: Bearer <key>`.
    pub key: String,
    /// The tenant whose calls and records the key sees; `*` for all.
    pub tenant: String,
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("name", &self.name)
            .field("key", &"<redacted>")
            .field("tenant", &self.tenant)
            .finish()
    }
}

/// `[trunk.auth]`: digest authentication of a trunk's peers.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrunkAuth {
    /// The realm in challenges.
    pub realm: String,
    /// Users and their passwords.
    pub users: BTreeMap<String, String>,
    /// Digest algorithms offered, strongest first: `SHA-256`, `MD5`.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
    /// `401` (`www`, the default) or `407` (`proxy`) challenges.
    #[serde(default)]
    pub proxy: bool,
    /// Seconds a nonce stays valid.
    #[serde(default = "default_nonce_secs")]
    pub nonce_secs: u64,
    /// Online guessing: failed digest answers (counted per source address
    /// across Call-IDs, and per username) within `lockout_window_secs` that
    /// block the source for `lockout_block_secs`: every INVITE from it then
    /// gets `403`, the right password included. From half this many
    /// failures on, each next attempt must wait 1 s, 2 s, 4 s... or gets
    /// `403` unchecked. A username's count only ever refuses sources that
    /// failed themselves. `0` turns the lockout off.
    #[serde(default = "default_lockout_failures")]
    pub lockout_failures: u32,
    /// The window `lockout_failures` are counted in, in seconds.
    #[serde(default = "default_lockout_window_secs")]
    pub lockout_window_secs: u64,
    /// How long a block lasts, in seconds.
    #[serde(default = "default_lockout_block_secs")]
    pub lockout_block_secs: u64,
}

/// Debug output names the users, never their passwords.
impl std::fmt::Debug for TrunkAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrunkAuth")
            .field("realm", &self.realm)
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .field("algorithms", &self.algorithms)
            .field("proxy", &self.proxy)
            .field("nonce_secs", &self.nonce_secs)
            .field("lockout_failures", &self.lockout_failures)
            .field("lockout_window_secs", &self.lockout_window_secs)
            .field("lockout_block_secs", &self.lockout_block_secs)
            .finish()
    }
}

fn default_lockout_failures() -> u32 {
    10
}

fn default_lockout_window_secs() -> u64 {
    60
}

fn default_lockout_block_secs() -> u64 {
    900
}

fn default_algorithms() -> Vec<String> {
    vec!["SHA-256".into(), "MD5".into()]
}

fn default_nonce_secs() -> u64 {
    300
}

/// How policies are loaded and run (`[policy]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicySettings {
    /// The watched folder: every `NAME.wasm` in it is the policy `NAME`.
    pub dir: PathBuf,
    /// The wall-clock budget of one `route` or `conclude` call, in
    /// milliseconds. Past it the call is interrupted and the fallback used.
    pub deadline_ms: u64,
    /// The most linear memory one decision may use, in MiB.
    pub memory_mib: u64,
    /// How many decisions may run at once; each needs a slot in the
    /// pre-allocated instance pool.
    pub max_concurrent: u32,
    /// Where compiled components are cached by content hash. Relative paths
    /// are inside `dir`; the default `.cache` is a dotfile folder, which the
    /// watcher ignores. Must be writable only by Trunkline's user: a cached
    /// artifact is native code.
    pub cache_dir: Option<PathBuf>,
    /// How long a file must be left alone before a failure to load it is
    /// reported, so a slow in-place copy is not reported as corrupt.
    pub settle_ms: u64,
}

impl Default for PolicySettings {
    fn default() -> Self {
        PolicySettings {
            dir: PathBuf::from("policies"),
            deadline_ms: 10,
            memory_mib: 16,
            max_concurrent: 128,
            cache_dir: Some(PathBuf::from(".cache")),
            settle_ms: 500,
        }
    }
}

impl PolicySettings {
    /// The decision deadline.
    pub fn deadline(&self) -> Duration {
        Duration::from_millis(self.deadline_ms)
    }

    /// The memory cap in bytes.
    pub fn memory_bytes(&self) -> usize {
        usize::try_from(self.memory_mib.saturating_mul(1 << 20)).unwrap_or(usize::MAX)
    }

    /// The cache folder, resolved against the policy folder.
    pub fn cache_path(&self) -> Option<PathBuf> {
        self.cache_dir.as_ref().map(|c| self.dir.join(c))
    }
}

/// One trunk (`[[trunk]]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrunkConfig {
    /// The trunk's name, shown to policies as `call.trunk`.
    pub name: String,
    /// The policy (file stem in the watched folder) that decides for it.
    pub policy: String,
    /// What happens to a new call when the policy fails or is missing.
    #[serde(default)]
    pub fallback: RouteFallback,
    /// What Five9 is told when `conclude` fails.
    #[serde(default)]
    pub conclude_fallback: ConcludeFallback,
    /// The most custom headers on the BYE/REFER toward the caller. Five9
    /// reads at most 10; the rest go to the handoff record.
    #[serde(default = "default_header_limit")]
    pub header_limit: usize,
    /// Source addresses (CIDR) admitted without authentication.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Digest authentication; with `allow` as well, both must pass.
    #[serde(default)]
    pub auth: Option<TrunkAuth>,
    /// The tenant the trunk's calls and outcome records belong to (API keys
    /// see only their tenant's); default: the trunk's name.
    #[serde(default)]
    pub tenant: Option<String>,
}

fn default_header_limit() -> usize {
    10
}

impl TrunkConfig {
    /// A trunk with the defaults (fallback 503, 10 headers) that admits
    /// nobody until `allow` or `auth` is set.
    pub fn new(name: impl Into<String>, policy: impl Into<String>) -> TrunkConfig {
        TrunkConfig {
            name: name.into(),
            policy: policy.into(),
            fallback: RouteFallback::default(),
            conclude_fallback: ConcludeFallback::default(),
            header_limit: default_header_limit(),
            allow: Vec::new(),
            auth: None,
            tenant: None,
        }
    }

    /// The tenant of the trunk's calls: `tenant`, else the trunk's name.
    pub fn tenant(&self) -> &str {
        self.tenant.as_deref().unwrap_or(&self.name)
    }
}

/// The decision used when a trunk's policy fails.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case", deny_unknown_fields)]
pub enum RouteFallback {
    /// Refuse the call with this status.
    Reject {
        /// A SIP status from 400 to 699.
        status: u16,
        /// The reason phrase; the standard one when absent.
        #[serde(default)]
        reason: Option<String>,
    },
    /// Send the call to this agent anyway.
    Connect {
        /// The agent target, as a policy would give it.
        target: String,
    },
}

impl Default for RouteFallback {
    fn default() -> Self {
        RouteFallback::Reject {
            status: 503,
            reason: None,
        }
    }
}

/// The outcome used when a trunk's `conclude` fails.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConcludeFallback {
    /// Reported as `contained`.
    #[serde(default)]
    pub contained: bool,
    /// Reported as `destination`.
    #[serde(default)]
    pub destination: String,
}

impl Config {
    /// Reads and checks a config file. Relative paths inside it are taken
    /// relative to the file's folder, so a config works from any directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config = Config::parse_unread(&text).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.to_owned(),
                message,
            },
            other => other,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.read_outbound_secrets(base)?;
        if config.policy.dir.is_relative() {
            config.policy.dir = base.join(&config.policy.dir);
        }
        config.store.resolve_paths(base);
        config.builtin.resolve_paths(base);
        config
            .websocket
            .load_tls(base)
            .map_err(ConfigError::Invalid)?;
        if let Some(tls) = config.sip.tls.as_mut() {
            for p in [&mut tls.cert_path, &mut tls.key_path] {
                if p.is_relative() {
                    *p = base.join(&*p);
                }
            }
        }
        if let Some(ca) = config.sip.tls_client.ca_path.as_mut()
            && ca.is_relative()
        {
            *ca = base.join(&*ca);
        }
        Ok(config)
    }

    /// Parses config text; relative paths stay as written (an outbound
    /// trunk's `password_file` is relative to the working directory).
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let mut config = Config::parse_unread(text)?;
        config.read_outbound_secrets(Path::new("."))?;
        Ok(config)
    }

    /// Parses and checks, reading no file or variable.
    fn parse_unread(text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::from("<text>"),
            // Never toml's Display: it quotes the line, secrets and all.
            message: crate::redact::config_error(text, &e),
        })?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), ConfigError> {
        let p = &self.policy;
        if p.deadline_ms == 0 || p.deadline_ms > 10_000 {
            return Err(ConfigError::Invalid(format!(
                "policy.deadline_ms = {} is outside 1..=10000",
                p.deadline_ms
            )));
        }
        if p.memory_mib == 0 || p.memory_mib > 4096 {
            return Err(ConfigError::Invalid(format!(
                "policy.memory_mib = {} is outside 1..=4096",
                p.memory_mib
            )));
        }
        if p.max_concurrent == 0 {
            return Err(ConfigError::Invalid(
                "policy.max_concurrent must be at least 1".into(),
            ));
        }
        let m = &self.media;
        if m.port_min >= m.port_max || m.port_min < 1024 {
            return Err(ConfigError::Invalid(format!(
                "media ports {}-{} must be an increasing range above 1023",
                m.port_min, m.port_max
            )));
        }
        for codec in &m.agent_codecs {
            if !["PCMU", "PCMA"].contains(&codec.to_ascii_uppercase().as_str()) {
                return Err(ConfigError::Invalid(format!(
                    "media.agent_codecs: `{codec}` is not PCMU or PCMA"
                )));
            }
        }
        let mut names = std::collections::HashSet::new();
        for t in &self.trunks {
            if !names.insert(t.name.as_str()) {
                return Err(ConfigError::Invalid(format!(
                    "trunk `{}` is defined twice",
                    t.name
                )));
            }
            if let RouteFallback::Reject { status, .. } = t.fallback
                && !(400..=699).contains(&status)
            {
                return Err(ConfigError::Invalid(format!(
                    "trunk `{}`: fallback status {status} is not a SIP failure (400-699)",
                    t.name
                )));
            }
            if t.allow.is_empty() && t.auth.is_none() {
                return Err(ConfigError::Invalid(format!(
                    "trunk `{}` admits nobody: set `allow` (CIDRs) and/or `[trunk.auth]`",
                    t.name
                )));
            }
            if let Some(a) = &t.auth
                && a.lockout_failures > 0
                && (a.lockout_window_secs == 0 || a.lockout_block_secs == 0)
            {
                return Err(ConfigError::Invalid(format!(
                    "trunk `{}`: lockout_window_secs and lockout_block_secs must be at least 1 (or lockout_failures = 0)",
                    t.name
                )));
            }
            if let Err(e) =
                trunkline_sip::auth::IpAllowList::parse(t.allow.iter().map(String::as_str))
            {
                return Err(ConfigError::Invalid(format!(
                    "trunk `{}`: allow: {e}",
                    t.name
                )));
            }
            if t.header_limit == 0 {
                return Err(ConfigError::Invalid(format!(
                    "trunk `{}`: header_limit must be at least 1",
                    t.name
                )));
            }
        }
        let mut outbound = std::collections::HashSet::new();
        for o in &self.outbound {
            o.check()
                .map_err(|e| ConfigError::Invalid(format!("outbound `{}`: {e}", o.name)))?;
            if let Some(t) = &o.trunk
                && !self.trunks.iter().any(|k| &k.name == t)
            {
                return Err(ConfigError::Invalid(format!(
                    "outbound `{}`: trunk `{t}` is not a [[trunk]]",
                    o.name
                )));
            }
            if !outbound.insert(o.name.as_str()) {
                return Err(ConfigError::Invalid(format!(
                    "outbound `{}` is defined twice",
                    o.name
                )));
            }
        }
        self.builtin
            .check()
            .map_err(|e| ConfigError::Invalid(format!("builtin: {e}")))?;
        let h = &self.http;
        for (name, secs) in [
            ("header_timeout_secs", h.header_timeout_secs),
            ("body_timeout_secs", h.body_timeout_secs),
            ("idle_timeout_secs", h.idle_timeout_secs),
        ] {
            if !(1..=3600).contains(&secs) {
                return Err(ConfigError::Invalid(format!(
                    "http.{name} = {secs} is outside 1..=3600"
                )));
            }
        }
        if !(1..=1_000_000).contains(&h.max_connections) {
            return Err(ConfigError::Invalid(format!(
                "http.max_connections = {} is outside 1..=1000000",
                h.max_connections
            )));
        }
        let mut keys = std::collections::HashSet::new();
        for k in &self.http.keys {
            if k.key.len() < 16 {
                return Err(ConfigError::Invalid(format!(
                    "http.keys `{}`: a key must be at least 16 characters",
                    k.name
                )));
            }
            if !keys.insert(k.key.as_str()) {
                return Err(ConfigError::Invalid(format!(
                    "http.keys `{}`: the same key is listed twice",
                    k.name
                )));
            }
            if k.tenant.is_empty() {
                return Err(ConfigError::Invalid(format!(
                    "http.keys `{}`: tenant is empty (use `*` for every tenant)",
                    k.name
                )));
            }
        }
        Ok(())
    }

    /// Reads each outbound trunk's password (a file relative to `base`,
    /// or the environment) once, at load.
    pub fn read_outbound_secrets(&mut self, base: &Path) -> Result<(), ConfigError> {
        for o in &mut self.outbound {
            o.credentials = o
                .secret(base)
                .map_err(|e| ConfigError::Invalid(format!("outbound `{}`: {e}", o.name)))?;
        }
        Ok(())
    }

    /// The index of the `[[trunk]]` an outbound trunk's calls belong to
    /// (its `trunk`, checked at load; else the first); `None` when the
    /// config has no `[[trunk]]`.
    pub fn outbound_owner(&self, outbound: &OutboundTrunk) -> Option<usize> {
        match &outbound.trunk {
            Some(t) => self.trunks.iter().position(|k| &k.name == t),
            None => (!self.trunks.is_empty()).then_some(0),
        }
    }

    /// The outbound trunk called `name`.
    pub fn outbound(&self, name: &str) -> Option<&OutboundTrunk> {
        self.outbound.iter().find(|o| o.name == name)
    }

    /// The trunk called `name`.
    pub fn trunk(&self, name: &str) -> Option<&TrunkConfig> {
        self.trunks.iter().find(|t| t.name == name)
    }

    /// The key/values for the policy `name`, flattened and sorted by key.
    pub fn policy_values(&self, name: &str) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        if let Some(table) = self.policies.get(name) {
            flatten("", table, &mut out);
        }
        out
    }

    /// Every policy's key/values, by policy name.
    pub fn all_policy_values(&self) -> BTreeMap<String, BTreeMap<String, String>> {
        self.policies
            .keys()
            .map(|name| (name.clone(), self.policy_values(name)))
            .collect()
    }
}

fn flatten(prefix: &str, table: &toml::Table, out: &mut BTreeMap<String, String>) {
    for (key, value) in table {
        let key = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            toml::Value::Table(t) => flatten(&key, t, out),
            toml::Value::String(s) => {
                out.insert(key, s.clone());
            }
            toml::Value::Array(items) => {
                // Lists become comma-separated text, the simplest form for a
                // policy to split without a parser.
                let joined: Vec<String> = items.iter().map(scalar_text).collect();
                out.insert(key, joined.join(","));
            }
            other => {
                out.insert(key, scalar_text(other));
            }
        }
    }
}

fn scalar_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_ca_files_resolve_against_the_config_and_a_bad_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let pair = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
        std::fs::write(dir.path().join("agents.pem"), pair.cert.pem()).unwrap();
        let path = dir.path().join("trunkline.toml");
        std::fs::write(
            &path,
            "[sip.tls_client]\nca_path = \"agents.pem\"\n\n[websocket]\nca_path = \"agents.pem\"\n",
        )
        .unwrap();
        let c = Config::load(&path).unwrap();
        assert_eq!(
            c.sip.tls_client.ca_path.as_deref(),
            Some(dir.path().join("agents.pem").as_path())
        );
        assert!(c.websocket.tls.is_some(), "read once at start-up");

        std::fs::write(&path, "[websocket]\nca_path = \"nowhere.pem\"\n").unwrap();
        let error = Config::load(&path).unwrap_err().to_string();
        assert!(
            error.contains("[websocket] ca_path") && error.contains("nowhere.pem"),
            "{error}"
        );
    }

    #[test]
    fn defaults_are_safe() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.policy.deadline_ms, 10);
        assert_eq!(c.policy.memory_mib, 16);
        assert!(c.trunks.is_empty());
    }

    #[test]
    fn nested_policy_tables_flatten_to_dotted_keys() {
        let c = Config::parse(
            r#"
            [policies.route-reason]
            default_agent = "sip:agent@127.0.0.1:5080"
            did."+14155550100" = "sip:sales@127.0.0.1"
            max = 3
            on = true
            list = ["a", "b"]
            "#,
        )
        .unwrap();
        let v = c.policy_values("route-reason");
        assert_eq!(v["default_agent"], "sip:agent@127.0.0.1:5080");
        assert_eq!(v["did.+14155550100"], "sip:sales@127.0.0.1");
        assert_eq!(v["max"], "3");
        assert_eq!(v["on"], "true");
        assert_eq!(v["list"], "a,b");
        assert!(c.policy_values("absent").is_empty());
    }

    #[test]
    fn trunk_fallbacks_parse_and_are_checked() {
        let c = Config::parse(
            r#"
            [[trunk]]
            name = "a"
            policy = "p"
            allow = ["127.0.0.0/8"]
            fallback = { action = "connect", target = "sip:x@127.0.0.1" }
            [[trunk]]
            name = "b"
            policy = "p"
            allow = ["::1"]
            "#,
        )
        .unwrap();
        assert_eq!(
            c.trunk("a").unwrap().fallback,
            RouteFallback::Connect {
                target: "sip:x@127.0.0.1".into()
            }
        );
        assert_eq!(c.trunk("b").unwrap().fallback, RouteFallback::default());
        assert_eq!(c.trunk("b").unwrap().header_limit, 10);

        let bad = Config::parse(
            "[[trunk]]\nname='a'\npolicy='p'\nallow=['127.0.0.1']\nfallback={action='reject', status=200}\n",
        );
        assert!(matches!(bad, Err(ConfigError::Invalid(m)) if m.contains("200")));
    }

    #[test]
    fn typos_and_bad_values_are_errors() {
        assert!(matches!(
            Config::parse("[policy]\ndeadline = 5\n"),
            Err(ConfigError::Parse { message, .. }) if message.contains("deadline")
        ));
        assert!(Config::parse("[policy]\ndeadline_ms = 0\n").is_err());
        let twice = Config::parse(
            "[[trunk]]\nname='a'\npolicy='p'\nallow=['127.0.0.1']\n[[trunk]]\nname='a'\npolicy='q'\nallow=['127.0.0.1']\n",
        );
        assert!(matches!(twice, Err(ConfigError::Invalid(m)) if m.contains("twice")));
        let nobody = Config::parse("[[trunk]]\nname='a'\npolicy='p'\n");
        assert!(matches!(nobody, Err(ConfigError::Invalid(m)) if m.contains("admits nobody")));
        let bad_cidr = Config::parse("[[trunk]]\nname='a'\npolicy='p'\nallow=['10.0.0.1/8']\n");
        assert!(matches!(bad_cidr, Err(ConfigError::Invalid(m)) if m.contains("allow")));
        let bad_ports = Config::parse("[media]\nport_min = 3000\nport_max = 2000\n");
        assert!(matches!(bad_ports, Err(ConfigError::Invalid(m)) if m.contains("media ports")));
        let opus = Config::parse("[media]\nagent_codecs = ['opus']\n");
        assert!(matches!(opus, Err(ConfigError::Invalid(m)) if m.contains("opus")));
    }

    #[test]
    fn lockout_keys_default_and_are_checked() {
        let trunk = |auth: &str| {
            Config::parse(&format!(
                "[[trunk]]\nname='a'\npolicy='p'\n[trunk.auth]\nrealm='r'\nusers={{ u = 'p' }}\n{auth}"
            ))
        };
        let auth = trunk("").unwrap().trunks[0].auth.clone().unwrap();
        assert_eq!(
            (
                auth.lockout_failures,
                auth.lockout_window_secs,
                auth.lockout_block_secs
            ),
            (10, 60, 900)
        );
        let zero = trunk("lockout_block_secs = 0\n");
        assert!(matches!(zero, Err(ConfigError::Invalid(m)) if m.contains("lockout")));
        assert!(trunk("lockout_failures = 0\nlockout_block_secs = 0\n").is_ok());
    }

    #[test]
    fn debug_output_of_a_config_shows_no_password() {
        let c = Config::parse(
            "[[trunk]]\nname='a'\npolicy='p'\n[trunk.auth]\nrealm='r'\nusers={ five9 = 'pa55-w0rd-x' }\n",
        )
        .unwrap();
        let text = format!("{c:?}");
        assert!(text.contains("five9"), "{text}");
        assert!(!text.contains("pa55-w0rd-x"), "{text}");
    }

    #[test]
    fn outbound_trunks_load_with_their_secret_and_mistakes_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trunkline.toml");
        std::fs::write(dir.path().join("five9.pw"), "file-secret-123\n").unwrap();
        std::fs::write(
            &path,
            "[[outbound]]\nname='five9-out'\nuri='sip:127.0.0.1:5090'\n\
             [outbound.auth]\nuser='trunkline'\npassword_file='five9.pw'\n",
        )
        .unwrap();
        let c = Config::load(&path).expect("loads, the file relative to the config");
        let trunk = c.outbound("five9-out").expect("the trunk");
        assert_eq!(trunk.ring_timeout_secs, 60);
        assert_eq!(trunk.max_concurrent, 100);
        let (user, _) = trunk.credentials.as_ref().expect("read at load");
        assert_eq!(user, "trunkline");
        let text = format!("{c:?}");
        assert!(!text.contains("file-secret-123"), "{text}");

        let twice = "[[outbound]]\nname='a'\nuri='sip:h'\n[[outbound]]\nname='a'\nuri='sip:h'\n";
        assert!(
            matches!(Config::parse(twice), Err(ConfigError::Invalid(m)) if m.contains("twice"))
        );
        let env = "[[outbound]]\nname='a'\nuri='sip:h'\n[outbound.auth]\nuser='u'\n\
                   password_env='TRUNKLINE_TEST_NO_SUCH_VARIABLE'\n";
        assert!(matches!(
            Config::parse(env),
            Err(ConfigError::Invalid(m)) if m.contains("TRUNKLINE_TEST_NO_SUCH_VARIABLE") && m.contains("`a`")
        ));
        let typo = "[[outbound]]\nname='a'\nuri='sip:h'\nring_timeout=5\n";
        assert!(Config::parse(typo).is_err(), "unknown keys are refused");
        let inline = "[[outbound]]\nname='a'\nuri='sip:h'\n[outbound.auth]\nuser='u'\npassword='inline-pw-456'\n";
        let c = Config::parse(inline).unwrap();
        assert!(!format!("{c:?}").contains("inline-pw-456"));
        assert_eq!(
            c.outbound_owner(c.outbound("a").unwrap()),
            None,
            "no [[trunk]]"
        );

        // Calls placed on a trunk belong to a [[trunk]]: the named one (it
        // must exist), else the first.
        let owned = "[[trunk]]\nname='in'\npolicy='p'\nallow=['10.0.0.0/8']\n\
                     [[trunk]]\nname='five9'\npolicy='q'\nallow=['10.0.0.0/8']\n\
                     [[outbound]]\nname='a'\nuri='sip:h'\ntrunk='five9'\n\
                     [[outbound]]\nname='b'\nuri='sip:h'\n";
        let c = Config::parse(owned).unwrap();
        assert_eq!(c.outbound_owner(c.outbound("a").unwrap()), Some(1));
        assert_eq!(c.outbound_owner(c.outbound("b").unwrap()), Some(0));
        let stray = "[[trunk]]\nname='in'\npolicy='p'\nallow=['10.0.0.0/8']\n[[outbound]]\nname='a'\nuri='sip:h'\ntrunk='nope'\n";
        assert!(matches!(
            Config::parse(stray),
            Err(ConfigError::Invalid(m)) if m.contains("`nope` is not a [[trunk]]")
        ));
    }

    #[test]
    fn http_limits_default_and_are_checked() {
        let h = Config::parse("").unwrap().http;
        assert_eq!(
            (
                h.header_timeout_secs,
                h.body_timeout_secs,
                h.idle_timeout_secs
            ),
            (10, 30, 60)
        );
        assert_eq!(h.max_connections, 1024);
        for bad in [
            "header_timeout_secs = 0",
            "idle_timeout_secs = 3601",
            "max_connections = 0",
        ] {
            let e = Config::parse(&format!("[http]\n{bad}\n"));
            let key = bad.split(' ').next().unwrap();
            assert!(
                matches!(e, Err(ConfigError::Invalid(m)) if m.contains(key)),
                "{bad}"
            );
        }
    }

    #[test]
    fn parse_errors_never_quote_a_secret() {
        let text = "[[trunk]]\nname = 'a'\npolicy = 'p'\n[trunk.auth]\nrealm = 'r'\n\
                    [trunk.auth.users]\nfive9 = \"pa55-w0rd-secret\n";
        let Err(ConfigError::Parse { message, .. }) = Config::parse(text) else {
            panic!("a parse error");
        };
        assert!(message.starts_with("line 7"), "{message}");
        assert!(!message.contains("pa55"), "{message}");
    }
}
