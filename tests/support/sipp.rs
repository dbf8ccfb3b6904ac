//! SIPp as a real SIP peer in the end-to-end tests: it plays Five9 and the AI
//! agent with the scenarios in `examples/sipp/` (each documents its `-set`
//! variables and what it checks).
//!
//! ```ignore
//! let agent = Sipp::new("agent_uas.xml", loopback())
//!     .set("route_reason", "escalation")
//!     .spawn();
//! agent.wait_ready(Duration::from_secs(5));
//! let five9 = Sipp::new("five9_uac_expect_route_reason.xml", loopback())
//!     .remote(gateway_addr)
//!     .set("route_reason", "escalation")
//!     .run();
//! five9.assert_passed();
//! let bye = five9.received_request("BYE").expect("a BYE");
//! assert_eq!(bye.header("X-RouteReason"), Some("escalation"));
//! ```
//!
//! Every run is bounded twice: SIPp's own `-timeout` (a run that hits it is a
//! failure, `-timeout_error`) and a kill by this helper a little later, so a
//! wedged peer fails its test instead of hanging the suite. Traces go to a
//! temporary directory that lives as long as the [`Outcome`].

#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// What to do when SIPp is missing, printed by [`sipp_binary`].
pub const INSTALL_HINT: &str = "SIPp is not installed. The end-to-end SIP tests use it to play \
     Five9 and the AI agent. Install it with `sudo apt-get install -y sip-tester` (Debian/Ubuntu, \
     binary `sipp`), or point the SIPP environment variable at a sipp binary.";

/// The sipp binary: `$SIPP` if set, else `sipp` on `PATH`. Panics with
/// [`INSTALL_HINT`] when there is none.
pub fn sipp_binary() -> &'static Path {
    static SIPP: OnceLock<PathBuf> = OnceLock::new();
    SIPP.get_or_init(|| {
        if let Some(p) = std::env::var_os("SIPP") {
            let p = PathBuf::from(p);
            assert!(
                p.is_file(),
                "SIPP={} is not a file. {INSTALL_HINT}",
                p.display()
            );
            return p;
        }
        std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .map(|dir| dir.join("sipp"))
            .find(|p| p.is_file())
            .unwrap_or_else(|| panic!("{INSTALL_HINT}"))
    })
}

/// `examples/sipp/<name>`; panics if the scenario does not exist.
pub fn scenario_path(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/sipp")
        .join(name);
    assert!(p.is_file(), "no SIPp scenario {}", p.display());
    p
}

/// A fresh loopback address for one SIPp instance: its own 127.0.0.x (SIPp
/// also binds RTP ports 6000/6002 on it, so two instances must not share an
/// address) and a UDP port that was free a moment ago.
pub fn loopback() -> SocketAddr {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    // Spread concurrent test binaries over 127.0.0.100..=249.
    let start = std::process::id() % 150;
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let host = 100 + (start + n) % 150;
    let ip = Ipv4Addr::new(127, 0, 0, host as u8);
    let port = UdpSocket::bind((ip, 0))
        .and_then(|s| s.local_addr())
        .unwrap_or_else(|e| panic!("no free UDP port on {ip}: {e}"))
        .port();
    SocketAddr::new(IpAddr::V4(ip), port)
}

/// One SIPp run, built up and then [`run`](Sipp::run) or [`spawn`](Sipp::spawn)ed.
#[derive(Clone, Debug)]
pub struct Sipp {
    scenario: PathBuf,
    local: SocketAddr,
    remote: Option<SocketAddr>,
    vars: Vec<(String, String)>,
    calls: u32,
    timeout: Duration,
    kill_after: Option<Duration>,
    args: Vec<String>,
    /// A command SIPp runs under (`ip netns exec NAME`): it must `exec`
    /// SIPp, so the child's pid is SIPp's.
    wrapper: Vec<String>,
}

impl Sipp {
    /// `scenario` is a file under `examples/sipp/`; SIPp binds `local`
    /// (`-i`/`-p`, media on the same address). One call, 20 s timeout.
    pub fn new(scenario: &str, local: SocketAddr) -> Self {
        Self {
            scenario: scenario_path(scenario),
            local,
            remote: None,
            vars: Vec::new(),
            calls: 1,
            timeout: Duration::from_secs(20),
            kill_after: None,
            args: Vec::new(),
            wrapper: Vec::new(),
        }
    }

    /// Where a UAC sends its calls. A UAS answers whoever calls it.
    pub fn remote(mut self, addr: SocketAddr) -> Self {
        self.remote = Some(addr);
        self
    }

    /// `-set name value`: a scenario variable. SIPp refuses names the
    /// scenario does not declare, so a typo fails the run.
    pub fn set(mut self, name: &str, value: impl Into<String>) -> Self {
        self.vars.push((name.to_owned(), value.into()));
        self
    }

    /// `-m`: calls to complete before SIPp exits.
    pub fn calls(mut self, n: u32) -> Self {
        self.calls = n;
        self
    }

    /// SIPp's `-timeout` (reaching it is an error); the helper kills SIPp
    /// 5 s later unless [`kill_after`](Sipp::kill_after) says otherwise.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }

    /// When the helper kills a SIPp that is still running, counted from spawn.
    pub fn kill_after(mut self, d: Duration) -> Self {
        self.kill_after = Some(d);
        self
    }

    /// `-d`: the length of the scenario's `<pause/>` elements.
    pub fn pause(self, d: Duration) -> Self {
        self.arg("-d").arg(d.as_millis().to_string())
    }

    /// `-au`/`-ap`: credentials for `[authentication]` (five9_uac_auth.xml).
    pub fn credentials(self, user: &str, password: &str) -> Self {
        self.arg("-au").arg(user).arg("-ap").arg(password)
    }

    /// Runs SIPp inside the network namespace `name` (`ip netns exec`):
    /// `local` and the remote are addresses of that namespace.
    pub fn netns(mut self, name: &str) -> Self {
        self.wrapper = ["ip", "netns", "exec", name].map(String::from).to_vec();
        self
    }

    /// Any other SIPp argument, passed as is.
    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
        self
    }

    fn command_args(&self, dir: &Path) -> Vec<String> {
        let ip = self.local.ip().to_string();
        let mut a: Vec<String> = vec![
            "-sf".into(),
            self.scenario.display().to_string(),
            "-i".into(),
            ip.clone(),
            "-p".into(),
            self.local.port().to_string(),
            "-mi".into(),
            ip,
            "-m".into(),
            self.calls.to_string(),
            "-timeout".into(),
            format!("{}ms", self.timeout.as_millis()),
            "-timeout_error".into(),
            "-nostdin".into(),
            "-trace_msg".into(),
            "-message_file".into(),
            dir.join("messages.log").display().to_string(),
            "-trace_err".into(),
            "-error_file".into(),
            dir.join("errors.log").display().to_string(),
            "-trace_logs".into(),
            "-log_file".into(),
            dir.join("logs.log").display().to_string(),
            "-trace_stat".into(),
            "-stf".into(),
            dir.join("stats.csv").display().to_string(),
            "-fd".into(),
            "1".into(),
        ];
        for (name, value) in &self.vars {
            a.extend(["-set".into(), name.clone(), value.clone()]);
        }
        a.extend(self.args.iter().cloned());
        if let Some(remote) = self.remote {
            a.push(remote.to_string());
        }
        a
    }

    /// Starts SIPp in the background (a UAS waiting for the call under test).
    pub fn spawn(self) -> Running {
        let dir = tempfile::tempdir().expect("temporary directory for SIPp traces");
        let args = self.command_args(dir.path());
        let out = std::fs::File::create(dir.path().join("stdout.txt")).expect("stdout file");
        let err = std::fs::File::create(dir.path().join("stderr.txt")).expect("stderr file");
        let mut command = match self.wrapper.split_first() {
            None => Command::new(sipp_binary()),
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(sipp_binary());
                c
            }
        };
        let child = command
            .args(&args)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("starting {}: {e}. {INSTALL_HINT}", sipp_binary().display())
            });
        let kill_after = self
            .kill_after
            .unwrap_or(self.timeout + Duration::from_secs(5));
        Running {
            child: Some(child),
            dir: Some(dir),
            deadline: Instant::now() + kill_after,
            local: self.local,
            command: format!("{} sipp {}", self.wrapper.join(" "), args.join(" "))
                .trim_start()
                .to_owned(),
        }
    }

    /// Runs SIPp to the end (or the kill) and collects what it saw.
    pub fn run(self) -> Outcome {
        self.spawn().wait()
    }
}

/// A SIPp process started by [`Sipp::spawn`]; dropping it kills SIPp.
#[must_use = "dropping a Running kills SIPp at once"]
pub struct Running {
    child: Option<Child>,
    dir: Option<tempfile::TempDir>,
    deadline: Instant,
    local: SocketAddr,
    command: String,
}

impl Running {
    /// The address SIPp listens on.
    pub fn addr(&self) -> SocketAddr {
        self.local
    }

    /// Blocks until SIPp has bound its UDP socket, so a call sent now is not
    /// lost. Panics (with SIPp's output) if it exits or `limit` passes first.
    pub fn wait_ready(&mut self, limit: Duration) {
        let until = Instant::now() + limit;
        while Instant::now() < until {
            let pid = self.child.as_ref().map(|c| c.id());
            if pid.is_some_and(|pid| udp_bound(pid, self.local)) {
                return;
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                let dir = self.dir.take().expect("trace directory");
                let out = Outcome::collect(dir, status.code(), false, &self.command);
                panic!(
                    "SIPp exited ({status}) before listening on {}\n{out}",
                    self.local
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "SIPp did not listen on {} within {limit:?}: {}",
            self.local, self.command
        );
    }

    /// As [`wait`](Running::wait), killing SIPp `limit` from now at the
    /// latest (a UAS still waiting for calls that will not come).
    pub fn wait_within(mut self, limit: Duration) -> Outcome {
        self.deadline = self.deadline.min(Instant::now() + limit);
        self.wait()
    }

    /// SIPp's process id (its Call-IDs are `N-PID@ADDRESS`).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Stops a SIPp that would run on (a UAS whose `-m` is never reached)
    /// the way its `q` key does: SIGUSR1, no new calls, the ones in
    /// progress finish, the final statistics are written. Killed if it is
    /// still running after `limit`.
    pub fn stop(mut self, limit: Duration) -> Outcome {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill")
                .arg("-USR1")
                .arg(pid.to_string())
                .status();
        }
        self.deadline = self.deadline.min(Instant::now() + limit);
        self.wait()
    }

    /// Waits for SIPp to exit, killing it at the deadline, and collects the
    /// traces.
    pub fn wait(mut self) -> Outcome {
        let mut child = self.child.take().expect("a running child");
        let mut killed = false;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() >= self.deadline => {
                    // SIPp ignored its own -timeout: a wedged peer.
                    let _ = child.kill();
                    killed = true;
                    break child.wait().ok();
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => panic!("waiting for SIPp: {e}"),
            }
        };
        let dir = self.dir.take().expect("trace directory");
        Outcome::collect(dir, status.and_then(|s| s.code()), killed, &self.command)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Whether something in the network namespace of process `pid` has `addr`
/// (IPv4) bound as a UDP socket, per /proc/PID/net/udp (which spells
/// 127.0.0.12:5060 as `0C00007F:13C4`).
fn udp_bound(pid: u32, addr: SocketAddr) -> bool {
    let SocketAddr::V4(v4) = addr else {
        return false;
    };
    let want = proc_net_hex(v4);
    std::fs::read_to_string(format!("/proc/{pid}/net/udp"))
        .map(|t| {
            t.lines()
                .skip(1)
                .any(|l| l.split_whitespace().nth(1) == Some(want.as_str()))
        })
        .unwrap_or(false)
}

fn proc_net_hex(a: SocketAddrV4) -> String {
    let o = a.ip().octets();
    format!(
        "{:02X}{:02X}{:02X}{:02X}:{:04X}",
        o[3],
        o[2],
        o[1],
        o[0],
        a.port()
    )
}

/// One SIP message from SIPp's `-trace_msg` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Traced {
    /// Sent by this SIPp (false: received from the peer).
    pub sent: bool,
    /// The message as on the wire, line ends normalised to `\n`.
    pub text: String,
}

impl Traced {
    /// `INVITE sip:... SIP/2.0` or `SIP/2.0 200 OK`.
    pub fn start_line(&self) -> &str {
        self.text.lines().next().unwrap_or("")
    }

    /// The method of a request; `None` for a response.
    pub fn method(&self) -> Option<&str> {
        let line = self.start_line();
        (!line.starts_with("SIP/")).then(|| line.split(' ').next().unwrap_or(""))
    }

    /// The status code of a response.
    pub fn status(&self) -> Option<u16> {
        let rest = self.start_line().strip_prefix("SIP/2.0 ")?;
        rest.get(..3)?.parse().ok()
    }

    /// The value of the first header called `name` (case-insensitive), trimmed.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// All header fields in order, as (name, trimmed value).
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.text
            .lines()
            .skip(1)
            .take_while(|l| !l.trim().is_empty())
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim(), v.trim()))
    }
}

/// What a SIPp run did: exit status, call counts, traces.
pub struct Outcome {
    /// Exit code: 0 all calls passed, 1 some failed, 97 stopped by an
    /// internal command, 99 no call processed, 255 fatal (including the
    /// -timeout); `None` when killed by a signal.
    pub status: Option<i32>,
    /// The helper killed SIPp at the deadline.
    pub killed: bool,
    /// Calls that reached the end of the scenario with every check passed.
    pub successful: u64,
    /// Calls that failed (a check, an unexpected message, a timeout).
    pub failed: u64,
    /// The SIP messages, in order.
    pub messages: Vec<Traced>,
    /// The raw `-trace_msg` file.
    pub message_trace: String,
    /// `-trace_err`: why calls failed (failed checks quote the regexp).
    pub errors: String,
    /// `-trace_logs`: what the scenario's `<log>` actions wrote.
    pub logs: String,
    /// `-trace_stat`: SIPp's statistics CSV (see [`Outcome::stat`]).
    pub stats: String,
    /// SIPp's screen output (final statistics).
    pub stdout: String,
    /// The command line, for failure reports.
    pub command: String,
    /// Keeps the trace files on disk while the outcome lives.
    _dir: tempfile::TempDir,
}

impl Outcome {
    fn collect(dir: tempfile::TempDir, status: Option<i32>, killed: bool, command: &str) -> Self {
        let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap_or_default();
        // SIPp writes the files; a missing one (killed early) reads as empty.
        let message_trace = read("messages.log");
        let stdout = read("stdout.txt") + &read("stderr.txt");
        let stats = read("stats.csv");
        let (successful, failed) = stats_from_csv(&stats)
            .or_else(|| stats_from_screen(&stdout))
            .unwrap_or((0, 0));
        Self {
            status,
            killed,
            successful,
            failed,
            messages: parse_message_trace(&message_trace),
            message_trace,
            errors: read("errors.log"),
            logs: read("logs.log"),
            stats,
            stdout,
            command: command.to_owned(),
            _dir: dir,
        }
    }

    /// Exit 0, not killed, at least one call and none failed.
    pub fn passed(&self) -> bool {
        self.status == Some(0) && !self.killed && self.successful > 0 && self.failed == 0
    }

    /// A column of the last row of SIPp's statistics, e.g.
    /// `Retransmissions(C)` (cumulative retransmissions SIPp sent).
    pub fn stat(&self, column: &str) -> Option<u64> {
        csv_column(&self.stats, column)
    }

    /// Panics with the whole story unless [`passed`](Outcome::passed).
    pub fn assert_passed(&self) {
        assert!(self.passed(), "SIPp run did not pass\n{self}");
    }

    /// Panics unless at least one call failed (a check that must not pass).
    pub fn assert_failed(&self) {
        assert!(
            self.failed > 0 && self.status != Some(0),
            "SIPp run should have failed a call\n{self}"
        );
    }

    /// Messages received from the peer, in order.
    pub fn received(&self) -> impl Iterator<Item = &Traced> {
        self.messages.iter().filter(|m| !m.sent)
    }

    /// The first request with `method` received from the peer.
    pub fn received_request(&self, method: &str) -> Option<&Traced> {
        self.received().find(|m| m.method() == Some(method))
    }

    /// The last request with `method` received from the peer (after a
    /// digest challenge: the one with credentials).
    pub fn last_received_request(&self, method: &str) -> Option<&Traced> {
        self.received()
            .filter(|m| m.method() == Some(method))
            .last()
    }

    /// The first response with `code` received from the peer.
    pub fn received_response(&self, code: u16) -> Option<&Traced> {
        self.received().find(|m| m.status() == Some(code))
    }

    /// The first request with `method` this SIPp sent.
    pub fn sent_request(&self, method: &str) -> Option<&Traced> {
        self.messages
            .iter()
            .find(|m| m.sent && m.method() == Some(method))
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "command: {}", self.command)?;
        writeln!(
            f,
            "exit: {:?}{}, successful calls: {}, failed calls: {}",
            self.status,
            if self.killed {
                " (killed at the deadline)"
            } else {
                ""
            },
            self.successful,
            self.failed
        )?;
        writeln!(f, "--- errors\n{}", tail(&self.errors, 3000))?;
        writeln!(f, "--- logs\n{}", tail(&self.logs, 3000))?;
        writeln!(f, "--- messages\n{}", tail(&self.message_trace, 6000))?;
        write!(f, "--- output\n{}", tail(&self.stdout, 1500))
    }
}

fn tail(s: &str, max: usize) -> &str {
    let mut start = s.len().saturating_sub(max);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// Splits a `-trace_msg` file into messages. Each entry is a dashed line with
/// a timestamp, a line "UDP message sent (N bytes):" or "UDP message received
/// [N] bytes :", a blank line, then the message.
pub fn parse_message_trace(trace: &str) -> Vec<Traced> {
    fn finish(out: &mut Vec<Traced>, entry: Option<(bool, Vec<&str>)>) {
        if let Some((sent, lines)) = entry {
            let text = lines.join("\n");
            let text = text.trim_matches(|c| c == '\n' || c == '\r' || c == ' ');
            if !text.is_empty() {
                out.push(Traced {
                    sent,
                    text: format!("{text}\n"),
                });
            }
        }
    }
    let mut out = Vec::new();
    // (sent, lines) of the message being read; None between entries.
    let mut entry: Option<(bool, Vec<&str>)> = None;
    for line in trace.lines() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.starts_with("-----------------------------------------------") {
            finish(&mut out, entry.take());
        } else if entry.is_none() && line.contains(" message sent") {
            entry = Some((true, Vec::new()));
        } else if entry.is_none() && line.contains(" message received") {
            entry = Some((false, Vec::new()));
        } else if let Some((_, lines)) = entry.as_mut() {
            lines.push(line);
        }
    }
    finish(&mut out, entry);
    out
}

/// (successful, failed) from the last row of a `-trace_stat` CSV.
pub fn stats_from_csv(csv: &str) -> Option<(u64, u64)> {
    Some((
        csv_column(csv, "SuccessfulCall(C)")?,
        csv_column(csv, "FailedCall(C)")?,
    ))
}

/// Column `name` of the last row of a `-trace_stat` CSV, as a number.
pub fn csv_column(csv: &str, name: &str) -> Option<u64> {
    let mut rows = csv.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = rows.next()?.split(';').collect();
    let last: Vec<&str> = rows.next_back()?.split(';').collect();
    let i = header.iter().position(|h| *h == name)?;
    last.get(i)?.trim().parse().ok()
}

/// (successful, failed) from SIPp's final screen: the cumulative column is
/// the last number on the "Successful call" and "Failed call" lines.
pub fn stats_from_screen(screen: &str) -> Option<(u64, u64)> {
    let last_number = |label: &str| -> Option<u64> {
        let line = screen
            .lines()
            .rev()
            .find(|l| l.trim_start().starts_with(label))?;
        line.split('|').next_back()?.trim().parse().ok()
    };
    Some((last_number("Successful call")?, last_number("Failed call")?))
}

#[cfg(test)]
mod tests {
    // The policy bench includes this file with `harness = false`, which drops
    // `#[test]` functions and leaves the import unused there.
    #[allow(unused_imports)]
    use super::*;

    const TRACE: &str = "\
----------------------------------------------- 2026-11-23 04:57:05.825249
UDP message received [240] bytes :

BYE sip:five9@127.0.0.10:5070 SIP/2.0\r
Via: SIP/2.0/UDP 127.0.0.20:5080;branch=z9hG4bK-1\r
X-RouteReason: escalation\r
x-metadata:  {\"a\":1} \r
Content-Length: 0\r
\r

----------------------------------------------- 2026-11-23 04:57:05.826234
UDP message sent (200 bytes):

SIP/2.0 200 OK\r
Via: SIP/2.0/UDP 127.0.0.20:5080;branch=z9hG4bK-1\r
Content-Length: 0\r
\r

";

    #[test]
    fn message_trace_splits_into_directed_messages() {
        let msgs = parse_message_trace(TRACE);
        assert_eq!(msgs.len(), 2);
        assert!(!msgs[0].sent);
        assert_eq!(msgs[0].method(), Some("BYE"));
        assert_eq!(msgs[0].status(), None);
        assert!(msgs[1].sent);
        assert_eq!(msgs[1].status(), Some(200));
        assert_eq!(msgs[1].method(), None);
    }

    #[test]
    fn header_lookup_is_case_insensitive_and_trimmed() {
        let bye = &parse_message_trace(TRACE)[0];
        assert_eq!(bye.header("x-routereason"), Some("escalation"));
        assert_eq!(bye.header("X-MetaData"), Some("{\"a\":1}"));
        assert_eq!(bye.header("X-Missing"), None);
        let x: Vec<_> = bye
            .headers()
            .filter(|(n, _)| n.starts_with(['X', 'x']))
            .collect();
        assert_eq!(x.len(), 2);
    }

    #[test]
    fn stats_come_from_the_last_csv_row() {
        let csv = "StartTime;SuccessfulCall(P);SuccessfulCall(C);FailedCall(P);FailedCall(C)\n\
                   a;0;0;0;0\n\
                   b;3;7;1;2\n";
        assert_eq!(stats_from_csv(csv), Some((7, 2)));
        assert_eq!(stats_from_csv("StartTime\n"), None);
    }

    #[test]
    fn stats_fall_back_to_the_screen() {
        let screen = "  Successful call        |        0                  |        1                 \n\
                      \x20 Failed call            |        0                  |        4                 \n";
        assert_eq!(stats_from_screen(screen), Some((1, 4)));
        assert_eq!(stats_from_screen("nothing"), None);
    }

    #[test]
    fn proc_net_udp_spelling() {
        let a = SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 12), 5060);
        assert_eq!(proc_net_hex(a), "0C00007F:13C4");
    }

    #[test]
    fn loopback_addresses_differ() {
        let a = loopback();
        let b = loopback();
        assert_ne!(a.ip(), b.ip());
        assert!(a.ip().is_loopback() && b.ip().is_loopback());
    }
}
