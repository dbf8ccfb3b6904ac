//! The real `trunkline` binary, started on a loopback address with a
//! generated config and a policy folder holding real components.

use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{built, sipp::loopback, trunkline_bin};

/// A running gateway; killed on drop.
pub struct Gateway {
    child: Child,
    /// Where SIP listens (UDP and TCP).
    pub sip: SocketAddr,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Gateway {
    /// Starts a gateway with policy `policy` (an example from
    /// `policies/`, by name), `policy_toml` as its `[policies.NAME]` body,
    /// and `trunk_toml` appended to the trunk (allow-list 127.0.0.0/8 is
    /// set unless `trunk_toml` says otherwise).
    pub fn start(policy: &str, policy_toml: &str, trunk_toml: &str) -> Gateway {
        Gateway::start_with(policy, policy_toml, trunk_toml, "")
    }

    /// As [`Gateway::start`], with `gateway_toml` added to `[gateway]`.
    pub fn start_with(
        policy: &str,
        policy_toml: &str,
        trunk_toml: &str,
        gateway_toml: &str,
    ) -> Gateway {
        Gateway::start_with_media(policy, policy_toml, trunk_toml, gateway_toml, "")
    }

    /// As [`Gateway::start_with`], with `media_toml` as the `[media]` body
    /// (none when empty: the relay's defaults).
    pub fn start_with_media(
        policy: &str,
        policy_toml: &str,
        trunk_toml: &str,
        gateway_toml: &str,
        media_toml: &str,
    ) -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        let policies = dir.path().join("policies");
        std::fs::create_dir(&policies).unwrap();
        std::fs::copy(
            built().policies.join(format!("{policy}.wasm")),
            policies.join(format!("{policy}.wasm")),
        )
        .unwrap();
        let sip = loopback();
        let allow = if trunk_toml.contains("allow") {
            ""
        } else {
            "allow = [\"127.0.0.0/8\"]\n"
        };
        let media = if media_toml.is_empty() {
            String::new()
        } else {
            format!("\n[media]\n{media_toml}\n")
        };
        let config = format!(
            "[policy]\ndir = \"policies\"\n\n[sip]\nudp = \"{sip}\"\ntcp = \"{sip}\"\n\n\
             [gateway]\nring_timeout_secs = 10\n{gateway_toml}\n\n[policies.{policy}]\n{policy_toml}\n\n\
             [[trunk]]\nname = \"five9\"\npolicy = \"{policy}\"\n{allow}{trunk_toml}\n{media}"
        );
        let config_path = dir.path().join("trunkline.toml");
        std::fs::write(&config_path, config).unwrap();
        let log = dir.path().join("trunkline.log");
        let child = Command::new(trunkline_bin())
            .args(["run", "--config"])
            .arg(&config_path)
            .env("RUST_LOG", "info,trunkline=debug")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("starting trunkline");
        let gw = Gateway {
            child,
            sip,
            log,
            _dir: dir,
        };
        gw.wait_for_log("SIP listening", Duration::from_secs(20));
        gw.wait_for_log("policy serving", Duration::from_secs(20));
        gw
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
