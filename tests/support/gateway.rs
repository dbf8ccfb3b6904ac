//! The real `trunkline` binary, started on a loopback address with a
//! generated config and a policy folder holding real components.

use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{built, sipp::loopback, trunkline_bin};

/// The API key every test gateway accepts (tenant `five9`, the trunk's).
pub const TEST_KEY: &str = "test-key-five9-0123456789";
/// A second key, for another tenant (`acme`).
pub const OTHER_TENANT_KEY: &str = "test-key-acme-0123456789";

/// A running gateway; killed on drop.
pub struct Gateway {
    child: Child,
    /// Where SIP listens (UDP and TCP).
    pub sip: SocketAddr,
    /// Where the HTTP API listens.
    pub http: SocketAddr,
    log: PathBuf,
    config_path: PathBuf,
    dir: tempfile::TempDir,
}

/// A gateway's config, built up and then [`start`](GatewayBuilder::start)ed.
///
/// The config has: `[policy] dir = "policies"` holding the example policy
/// `policy`; SIP UDP+TCP on a fresh loopback address; HTTP on the same
/// address, with keys [`TEST_KEY`] (tenant `five9`) and
/// [`OTHER_TENANT_KEY`] (tenant `acme`); one trunk `five9` (allow-list
/// 127.0.0.0/8 unless the trunk body says `allow`); the store in memory
/// unless a `[store]` section is given.
#[derive(Debug, Clone, Default)]
pub struct GatewayBuilder {
    policy: String,
    policy_toml: String,
    engine_toml: String,
    trunk_toml: String,
    gateway_toml: String,
    http_toml: String,
    media_toml: String,
    extra_toml: String,
    env: Vec<(String, String)>,
    wrapper: Vec<String>,
    addresses: Option<(SocketAddr, SocketAddr)>,
}

impl GatewayBuilder {
    /// `[policies.NAME]` body.
    pub fn policy_toml(mut self, body: &str) -> Self {
        self.policy_toml = body.to_owned();
        self
    }

    /// Lines added to `[policy]` (the engine: `deadline_ms`, …).
    pub fn engine_toml(mut self, body: &str) -> Self {
        self.engine_toml = body.to_owned();
        self
    }

    /// Lines added to the `[[trunk]]` table.
    pub fn trunk_toml(mut self, body: &str) -> Self {
        self.trunk_toml = body.to_owned();
        self
    }

    /// Lines added to `[gateway]`.
    pub fn gateway_toml(mut self, body: &str) -> Self {
        self.gateway_toml = body.to_owned();
        self
    }

    /// Lines added to `[http]` (timeouts, `max_connections`).
    pub fn http_toml(mut self, body: &str) -> Self {
        self.http_toml = body.to_owned();
        self
    }

    /// The `[media]` body.
    pub fn media_toml(mut self, body: &str) -> Self {
        self.media_toml = body.to_owned();
        self
    }

    /// Whole sections appended at the end (`[store]`, `[builtin]`,
    /// `[websocket]`, `[log]`, more `[[http.keys]]`…).
    pub fn extra_toml(mut self, text: &str) -> Self {
        self.extra_toml.push_str(text);
        self.extra_toml.push('\n');
        self
    }

    /// An environment variable for the process.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Runs the binary through `argv` (`argv… trunkline run --config …`),
    /// e.g. `unshare` to give it a mount namespace of its own. The wrapper
    /// must `exec` the binary so the pid stays the gateway's.
    pub fn wrapped(mut self, argv: &[&str]) -> Self {
        self.wrapper = argv.iter().map(|a| (*a).to_owned()).collect();
        self
    }

    /// SIP (UDP and TCP) on `sip` and HTTP on `http` instead of a fresh
    /// loopback address: for a gateway in a network namespace of its own
    /// ([`wrapped`](GatewayBuilder::wrapped) in `ip netns exec`).
    pub fn addresses(mut self, sip: SocketAddr, http: SocketAddr) -> Self {
        self.addresses = Some((sip, http));
        self
    }

    /// Writes the config into a fresh folder and starts the binary; waits
    /// until SIP listens and the policy serves.
    pub fn start(self) -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        let policies = dir.path().join("policies");
        std::fs::create_dir(&policies).unwrap();
        let policy = &self.policy;
        std::fs::copy(
            built().policies.join(format!("{policy}.wasm")),
            policies.join(format!("{policy}.wasm")),
        )
        .unwrap();
        let (sip, http) = self.addresses.unwrap_or_else(|| {
            let sip = loopback();
            let http = std::net::TcpListener::bind((sip.ip(), 0))
                .and_then(|l| l.local_addr())
                .expect("a free TCP port for HTTP");
            (sip, http)
        });
        let allow = if self.trunk_toml.contains("allow") {
            ""
        } else {
            "allow = [\"127.0.0.0/8\"]\n"
        };
        let media = if self.media_toml.is_empty() {
            String::new()
        } else {
            format!("\n[media]\n{}\n", self.media_toml)
        };
        let store = if self.extra_toml.contains("[store]") {
            ""
        } else {
            "\n[store]\nbackend = \"memory\"\n"
        };
        let config = format!(
            "[policy]\ndir = \"policies\"\n{et}\n\n[sip]\nudp = \"{sip}\"\ntcp = \"{sip}\"\n\n\
             [http]\nlisten = \"{http}\"\n{ht}\n\n\
             [[http.keys]]\nname = \"five9\"\nkey = \"{TEST_KEY}\"\ntenant = \"five9\"\n\n\
             [[http.keys]]\nname = \"acme\"\nkey = \"{OTHER_TENANT_KEY}\"\ntenant = \"acme\"\n\n\
             [gateway]\nring_timeout_secs = 10\n{gw}\n\n[policies.{policy}]\n{pt}\n\n\
             [[trunk]]\nname = \"five9\"\npolicy = \"{policy}\"\n{allow}{tt}\n{media}{store}\n{extra}",
            et = self.engine_toml,
            gw = self.gateway_toml,
            ht = self.http_toml,
            pt = self.policy_toml,
            tt = self.trunk_toml,
            extra = self.extra_toml,
        );
        let config_path = dir.path().join("trunkline.toml");
        std::fs::write(&config_path, config).unwrap();
        let log = dir.path().join("trunkline.log");
        let child = spawn(&config_path, &log, &self.env, &self.wrapper);
        let gw = Gateway {
            child,
            sip,
            http,
            log,
            config_path,
            dir,
        };
        gw.wait_for_log("SIP listening", Duration::from_secs(20));
        gw.wait_for_log("policy serving", Duration::from_secs(20));
        // The API binds just after SIP: a test that connects at once must
        // not find it closed (seen on a loaded machine).
        gw.wait_for_log("HTTP listening", Duration::from_secs(20));
        gw
    }
}

fn spawn(
    config: &std::path::Path,
    log: &std::path::Path,
    env: &[(String, String)],
    wrapper: &[String],
) -> Child {
    let mut cmd = match wrapper.split_first() {
        None => Command::new(trunkline_bin()),
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args).arg(trunkline_bin());
            c
        }
    };
    cmd.args(["run", "--config"])
        .arg(config)
        .env("RUST_LOG", "info,trunkline=debug")
        .stdout(Stdio::null())
        .stderr(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .unwrap(),
        );
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("starting trunkline")
}

impl Gateway {
    /// A config for policy `policy` (an example from `policies/`, by name).
    pub fn builder(policy: &str) -> GatewayBuilder {
        GatewayBuilder {
            policy: policy.to_owned(),
            ..GatewayBuilder::default()
        }
    }

    /// Starts a gateway with policy `policy`, `policy_toml` as its
    /// `[policies.NAME]` body, and `trunk_toml` appended to the trunk.
    pub fn start(policy: &str, policy_toml: &str, trunk_toml: &str) -> Gateway {
        Gateway::builder(policy)
            .policy_toml(policy_toml)
            .trunk_toml(trunk_toml)
            .start()
    }

    /// As [`Gateway::start`], with `gateway_toml` added to `[gateway]`.
    pub fn start_with(
        policy: &str,
        policy_toml: &str,
        trunk_toml: &str,
        gateway_toml: &str,
    ) -> Gateway {
        Gateway::builder(policy)
            .policy_toml(policy_toml)
            .trunk_toml(trunk_toml)
            .gateway_toml(gateway_toml)
            .start()
    }

    /// As [`Gateway::start_with`], with `media_toml` as the `[media]` body.
    pub fn start_with_media(
        policy: &str,
        policy_toml: &str,
        trunk_toml: &str,
        gateway_toml: &str,
        media_toml: &str,
    ) -> Gateway {
        Gateway::builder(policy)
            .policy_toml(policy_toml)
            .trunk_toml(trunk_toml)
            .gateway_toml(gateway_toml)
            .media_toml(media_toml)
            .start()
    }

    /// `http://ADDR` of the HTTP API.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.http)
    }

    /// The gateway's folder (config, policies, log, store files).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (e.g. `"TERM"`, `"KILL"`) to the process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Waits up to `limit` for the process to exit; its status if it did.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// `kill -9`, then starts the binary again with the same folder and
    /// config (same addresses); the log continues in the same file. Waits
    /// until SIP listens again.
    pub fn crash_and_restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let before = self.log().matches("HTTP listening").count();
        self.child = spawn(&self.config_path, &self.log, &[], &[]);
        let start = Instant::now();
        // (HTTP binds after SIP: both are up once it is.)
        while self.log().matches("HTTP listening").count() <= before {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "gateway did not restart:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The gateway's log so far.
    pub fn log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    /// Waits until the log contains `needle`; panics with the log if not.
    pub fn wait_for_log(&self, needle: &str, limit: Duration) {
        let start = Instant::now();
        while start.elapsed() < limit {
            if self.log().contains(needle) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("gateway log never said {needle:?}:\n{}", self.log());
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- trunkline log\n{}", self.log());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Gateway {
    /// The value of one `/metrics` series (`name{labels}` exactly as
    /// exported); 0 when absent.
    pub fn metric(&self, series: &str) -> f64 {
        let r = super::http::get(self.http, "/metrics", None);
        assert_eq!(r.status, 200, "{r}");
        r.body
            .lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .and_then(|v| v.split(' ').next()?.parse().ok())
            .unwrap_or(0.0)
    }
}
