//! Test hosts in network namespaces of their own, joined by veth pairs,
//! and a lossy link between them.
//!
//! The kernel of the development VM and of CI has no `sch_netem` (`tc
//! qdisc add … netem` answers "Specified qdisc kind is unknown"), so the
//! impairment is netem's rules applied in user space: iptables sends every
//! packet leaving a veth end to an NFQUEUE, and `nfq_netem.py` (from the
//! workspace's shared tools, `../shared/tools/`) drops, delays and reorders
//! it as netem would, logging one line per packet.
//!
//! Everything here needs root (`ip netns`, iptables, NFQUEUE). Namespaces,
//! their veths and iptables rules, and the processes started in them go
//! when the [`Netns`] and [`Netem`] guards drop, on failure too.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Panics, saying why, unless this process is root and `ip` and `iptables`
/// are installed: the lossy-network tests cannot run otherwise, and a test
/// that quietly passes without running would hide that.
pub fn require_root_and_tools() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "this test builds its network in namespaces (ip netns, veth, iptables NFQUEUE) and \
         needs root, as CI has: run it as root"
    );
    for (program, package) in [
        ("ip", "iproute2"),
        ("iptables", "iptables"),
        ("python3", "python3"),
    ] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {program}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            found,
            "{program} is missing: `apt-get install -y {package}` (cargo xtask test installs it)"
        );
    }
}

/// The netem stand-in, `nfq_netem.py` from the shared tools beside the
/// repository (`../shared/tools/`, or `$TRUNKLINE_NFQ_NETEM`).
pub fn nfq_netem_script() -> PathBuf {
    let path = std::env::var_os("TRUNKLINE_NFQ_NETEM")
        .map(PathBuf::from)
        .unwrap_or_else(|| xtask::workspace_root().join("../shared/tools/nfq_netem.py"));
    assert!(
        path.is_file(),
        "{} is missing: the lossy-network test uses the shared tools' netem stand-in \
         (set TRUNKLINE_NFQ_NETEM to its path)",
        path.display()
    );
    path
}

fn run(argv: &[&str]) {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", argv.join(" ")));
    assert!(
        out.status.success(),
        "`{}` failed ({}): {}",
        argv.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A network namespace this test made; deleted (after killing whatever
/// still runs in it) on drop.
#[must_use = "dropping a Netns deletes the namespace"]
pub struct Netns {
    name: String,
}

impl Netns {
    /// `ip netns add name`, with its loopback up.
    pub fn add(name: &str) -> Netns {
        // A namespace of the same name left by a killed run of this pid:
        // ours, since the name carries our pid.
        let _ = Command::new("ip")
            .args(["netns", "del", name])
            .stderr(Stdio::null())
            .status();
        run(&["ip", "netns", "add", name]);
        let ns = Netns {
            name: name.to_owned(),
        };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip -n NAME args…`, which must succeed.
    pub fn ip(&self, args: &[&str]) {
        let mut argv = vec!["ip", "-n", self.name.as_str()];
        argv.extend_from_slice(args);
        run(&argv);
    }

    /// `argv` run inside the namespace (`ip netns exec`), which must succeed.
    pub fn exec(&self, argv: &[&str]) {
        let mut all = vec!["ip", "netns", "exec", self.name.as_str()];
        all.extend_from_slice(argv);
        run(&all);
    }

    /// A command that runs `program` inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Runs `f` on a thread that has joined this namespace, so the sockets
    /// it opens (an HTTP client to the gateway's API, say) live there.
    pub fn enter<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let file = std::fs::File::open(format!("/run/netns/{}", self.name))
            .unwrap_or_else(|e| panic!("opening namespace {}: {e}", self.name));
        std::thread::scope(|s| {
            s.spawn(|| {
                // SAFETY: a valid namespace fd; setns changes only this
                // thread's network namespace, and the thread ends after `f`.
                let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(
                    rc,
                    0,
                    "setns into {}: {}",
                    self.name,
                    std::io::Error::last_os_error()
                );
                f()
            })
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Whatever still runs in the namespace was started by this test.
        if let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
        {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                if let Ok(pid) = pid.parse::<i32>() {
                    // SAFETY: plain kill(2) of a process in our namespace.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Joins `a` and `b` with a veth pair: `a_if` in `a` with `a_addr`
/// (CIDR), `b_if` in `b` with `b_addr`. Both ends come up.
pub fn veth(a: &Netns, a_if: &str, a_addr: &str, b: &Netns, b_if: &str, b_addr: &str) {
    run(&[
        "ip",
        "link",
        "add",
        "name",
        a_if,
        "netns",
        a.name(),
        "type",
        "veth",
        "peer",
        "name",
        b_if,
        "netns",
        b.name(),
    ]);
    a.ip(&["addr", "add", a_addr, "dev", a_if]);
    b.ip(&["addr", "add", b_addr, "dev", b_if]);
    a.ip(&["link", "set", a_if, "up"]);
    b.ip(&["link", "set", b_if, "up"]);
}

/// netem's loss, delay, jitter and reorder, for packets leaving one end.
#[derive(Debug, Clone, Copy)]
pub struct Impairment {
    /// Probability a packet is dropped (netem `loss 5%` is 0.05).
    pub loss: f64,
    /// netem `delay D J`: D in milliseconds…
    pub delay_ms: f64,
    /// …and J, uniform.
    pub jitter_ms: f64,
    /// netem `reorder P`: probability a packet skips the delay queue.
    pub reorder: f64,
}

/// One end of a link impaired: every packet leaving `dev` in the namespace
/// goes through an NFQUEUE to `nfq_netem.py`. Stopping it (drop) removes
/// the rule first, so no packet is left waiting for a dead queue.
#[must_use = "dropping a Netem stops the impairment"]
pub struct Netem {
    child: Option<Child>,
    ns: String,
    rule: Vec<String>,
    log: PathBuf,
}

/// The NFQUEUE number: queues are per namespace, so one number serves all.
const QUEUE: &str = "7";

impl Netem {
    /// Starts the impairment on `dev` in `ns`, logging every decision to
    /// `log`. `side` names this end in the log; `seed` makes the run's
    /// drops repeatable for the same packet order.
    pub fn start(
        ns: &Netns,
        dev: &str,
        side: &str,
        imp: Impairment,
        seed: u64,
        log: &Path,
    ) -> Netem {
        let mut cmd = ns.command("python3");
        cmd.arg(nfq_netem_script())
            .args(["--queue", QUEUE, "--side", side])
            .args(["--loss", &imp.loss.to_string()])
            .args(["--seed", &seed.to_string()])
            .arg("--log")
            .arg(log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if imp.delay_ms > 0.0 {
            cmd.args(["--delay-ms", &imp.delay_ms.to_string()])
                .args(["--jitter-ms", &imp.jitter_ms.to_string()])
                .args(["--reorder", &imp.reorder.to_string()]);
        }
        let mut child = cmd.spawn().expect("starting nfq_netem.py");
        // The log's first line is written once the queue is bound.
        let until = Instant::now() + Duration::from_secs(10);
        while !std::fs::read_to_string(log).is_ok_and(|t| t.starts_with("# side=")) {
            if let Ok(Some(status)) = child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                panic!("nfq_netem.py in {} exited ({status}): {err}", ns.name());
            }
            assert!(
                Instant::now() < until,
                "nfq_netem.py in {} did not bind its queue",
                ns.name()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let rule: Vec<String> = ["OUTPUT", "-o", dev, "-j", "NFQUEUE", "--queue-num", QUEUE]
            .map(String::from)
            .to_vec();
        let mut add = vec!["iptables", "-w", "-I"];
        add.extend(rule.iter().map(String::as_str));
        ns.exec(&add);
        Netem {
            child: Some(child),
            ns: ns.name().to_owned(),
            rule,
            log: log.to_owned(),
        }
    }

    /// The per-packet log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Netem {
    fn drop(&mut self) {
        let mut del = vec!["netns", "exec", &self.ns, "iptables", "-w", "-D"];
        del.extend(self.rule.iter().map(String::as_str));
        let _ = Command::new("ip").args(&del).stderr(Stdio::null()).status();
        if let Some(mut child) = self.child.take() {
            // SIGTERM: it releases the packets it holds and unbinds.
            // SAFETY: plain kill(2) of our own child.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let until = Instant::now() + Duration::from_secs(3);
            while Instant::now() < until {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
