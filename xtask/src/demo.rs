//! `cargo xtask demo` and `cargo xtask demo-call`: the whole loop in two
//! commands, with nothing else running.
//!
//! `demo` builds the example policies, copies `route-reason` into the
//! policy folder of `examples/builtin.toml` and runs Trunkline with that
//! file: every call goes to the builtin agent's DTMF menu.
//!
//! `demo-call` plays Five9 with SIPp (`examples/sipp/five9_uac_builtin.xml`):
//! it calls, listens to the prompt, presses a key, and prints the X-
//! headers of the BYE that comes back, then the outcome record the Handoff
//! API serves for the call's `X-CallSessionID`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};

use crate::{build_policies, default_policies_out, workspace_root};

/// The config both commands use.
pub const CONFIG: &str = "examples/builtin.toml";

/// The policy `examples/builtin.toml` serves its trunk with.
const POLICY: &str = "route-reason";

/// Where SIPp plays Five9 (SIPp also binds RTP on this address).
const FIVE9: &str = "127.0.0.10:5070";

/// Where the demo keeps its files (policy folder, store, SIPp traces).
pub fn demo_dir() -> PathBuf {
    workspace_root().join("target").join("demo")
}

/// `cargo xtask demo [--release]`: build, populate, run until Ctrl-C.
pub fn start(args: &[String]) -> Result<()> {
    let release = match args {
        [] => false,
        [flag] if flag == "--release" => true,
        _ => bail!("usage: cargo xtask demo [--release]"),
    };
    let root = workspace_root();
    eprintln!("xtask demo: building the example policies");
    let built = build_policies(&default_policies_out())?;
    let component = built
        .iter()
        .find(|p| p.file_stem().is_some_and(|s| s == POLICY))
        .with_context(|| format!("`cargo xtask policies` built no {POLICY}.wasm"))?;
    let policies = demo_dir().join("policies");
    std::fs::create_dir_all(&policies)
        .with_context(|| format!("creating {}", policies.display()))?;
    let target = policies.join(format!("{POLICY}.wasm"));
    std::fs::copy(component, &target).with_context(|| format!("writing {}", target.display()))?;

    let config = load_config()?;
    eprintln!(
        "\nxtask demo: starting Trunkline with {CONFIG}\n\
         \x20 SIP   {sip} (UDP and TCP), every call to the builtin agent's menu\n\
         \x20 HTTP  http://{http} (API key {key:?})\n\
         \x20 In another terminal:  cargo xtask demo-call      (Ctrl-C here stops Trunkline)\n",
        sip = config.sip,
        http = config.http,
        key = config.api_key,
    );
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(&cargo);
    cmd.args(["run", "--quiet", "-p", "trunkline"]);
    if release {
        cmd.arg("--release");
    }
    let status = cmd
        .args(["--", "run", "--config", CONFIG])
        .current_dir(&root)
        .status()
        .with_context(|| format!("running {cargo}"))?;
    if !status.success() {
        bail!("trunkline exited with {status}");
    }
    Ok(())
}

/// What `demo-call` reads from `examples/builtin.toml`.
struct DemoConfig {
    sip: SocketAddr,
    http: SocketAddr,
    api_key: String,
}

fn load_config() -> Result<DemoConfig> {
    let path = workspace_root().join(CONFIG);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let doc: toml::Table = text.parse().with_context(|| format!("parsing {CONFIG}"))?;
    let get = |table: &str, key: &str| {
        doc.get(table)
            .and_then(|t| t.get(key))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
            .with_context(|| format!("{CONFIG}: no [{table}] {key}"))
    };
    let api_key = doc
        .get("http")
        .and_then(|h| h.get("keys"))
        .and_then(|k| k.as_array())
        .and_then(|k| k.first())
        .and_then(|k| k.get("key"))
        .and_then(|k| k.as_str())
        .with_context(|| format!("{CONFIG}: no [[http.keys]] key"))?
        .to_owned();
    Ok(DemoConfig {
        sip: get("sip", "udp")?.parse().context("[sip] udp")?,
        http: get("http", "listen")?.parse().context("[http] listen")?,
        api_key,
    })
}

/// `cargo xtask demo-call [--key K]`: one call as Five9, then the outcome.
pub fn call(args: &[String]) -> Result<()> {
    let key = match args {
        [] => "2".to_owned(),
        [flag, key] if flag == "--key" => key.clone(),
        _ => bail!("usage: cargo xtask demo-call [--key 0-9|star|pound|none]"),
    };
    let config = load_config()?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let session_id = format!("demo-{}", now.as_millis());
    let traces = demo_dir().join("sipp");
    std::fs::create_dir_all(&traces).with_context(|| format!("creating {}", traces.display()))?;
    let log = traces.join("logs.log");
    let _ = std::fs::remove_file(&log);

    eprintln!(
        "xtask demo-call: SIPp plays Five9 from {FIVE9}, calls {sip}, listens 1.5 s, \
         presses {key} (X-CallSessionID {session_id})",
        sip = config.sip
    );
    let (ip, port) = FIVE9.split_once(':').unwrap_or((FIVE9, "5070"));
    let scenario = workspace_root().join("examples/sipp/five9_uac_builtin.xml");
    let status = Command::new("sipp")
        .arg("-sf")
        .arg(&scenario)
        .args(["-i", ip, "-p", port, "-mi", ip, "-m", "1"])
        .args(["-timeout", "40s", "-timeout_error", "-nostdin"])
        .args(["-trace_msg", "-trace_err", "-trace_logs"])
        .arg("-message_file")
        .arg(traces.join("messages.log"))
        .arg("-error_file")
        .arg(traces.join("errors.log"))
        .arg("-log_file")
        .arg(&log)
        .args(["-set", "key", &key, "-set", "session_id", &session_id])
        .arg(config.sip.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        // SIPp lists every pcap it loads on stderr: noise here.
        .stderr(
            std::fs::File::create(traces.join("stderr.txt"))
                .map(Stdio::from)
                .unwrap_or_else(|_| Stdio::null()),
        )
        .status();
    let status = match status {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("SIPp is not installed: `sudo apt-get install sip-tester` (Debian/Ubuntu)")
        }
        Err(e) => return Err(e).context("running sipp"),
    };
    let bye = read_bye(&log).with_context(|| {
        format!(
            "no BYE came back ({status}): is Trunkline running (`cargo xtask demo`)? See {}",
            traces.join("errors.log").display()
        )
    })?;
    if !status.success() {
        eprintln!(
            "xtask demo-call: SIPp reports a failed check ({status}); see {}",
            traces.display()
        );
    }
    println!("\nThe BYE Five9 received:");
    for line in bye
        .lines()
        .filter(|l| l.to_ascii_lowercase().starts_with("x-"))
    {
        println!("  {}", line.trim_end());
    }

    println!(
        "\nPOST http://{}/handoff {{\"shared_id\": \"{session_id}\"}}:",
        config.http
    );
    let body = format!("{{\"shared_id\":\"{session_id}\"}}");
    let mut answer = String::new();
    for _ in 0..20 {
        answer = post(config.http, "/handoff", &config.api_key, &body)?;
        if !answer.starts_with("HTTP/1.1 404") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let (head, json) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    println!("  {}", head.lines().next().unwrap_or_default());
    println!("  {json}");
    println!("\n(SIPp traces: {})", traces.display());
    Ok(())
}

/// The BYE SIPp logged as "five9 received BYE: <message>".
fn read_bye(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    let (_, message) = text.split_once("five9 received BYE:")?;
    Some(message.trim().to_owned())
}

/// A minimal HTTP/1.1 POST of JSON; returns the whole response.
fn post(addr: SocketAddr, path: &str, key: &str, body: &str) -> Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .with_context(|| format!("connecting to the HTTP API at {addr}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .context("reading the HTTP answer")?;
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_config_names_what_demo_call_needs() {
        let config = load_config().unwrap();
        assert_eq!(config.sip, "127.0.0.1:5060".parse().unwrap());
        assert_eq!(config.http, "127.0.0.1:8080".parse().unwrap());
        assert!(config.api_key.starts_with("change-me-loopback"));
    }
}
