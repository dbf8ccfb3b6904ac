//! `cargo xtask fuzz [--secs N] [TARGET...]`: every fuzz target in
//! `tests/fuzz` (or the named ones) for N seconds each, on the pinned stable
//! toolchain, failing on the first crash.
//!
//! 1. installs cargo-fuzz (`cargo install cargo-fuzz --locked`) when missing;
//! 2. writes seed corpora from the test fixtures and the RFC 4475 messages
//!    (`seeds`), into `target/fuzz/seeds/TARGET` (regenerated every run);
//! 3. builds every target once (`cargo fuzz build --sanitizer none`: the
//!    code fuzzed has no `unsafe`, and sanitizers need nightly's `-Z`
//!    flags; coverage instrumentation alone needs only stable `-C` flags);
//! 4. runs each target with libFuzzer for N seconds, growing the corpus
//!    in `target/fuzz/corpus/TARGET` (kept between runs, never committed);
//! 5. prints executions, coverage (`cov`) and features (`ft`) per target,
//!    and for a crash the input file and the command that reproduces it.
//!
//! The fuzz crate is a workspace of its own with its own target dir
//! (`target/fuzz`), so its instrumented release build leaves the
//! workspace's debug build alone.

mod seeds;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::workspace_root;

/// Every target, in the order they run (fast protocol targets first; the
/// host ones link the whole gateway).
pub const TARGETS: &[&str] = &[
    "sip_datagram",
    "sip_stream",
    "sip_header",
    "sip_legs",
    "sdp",
    "rtp",
    "dtmf",
    "ws_json",
    "config",
    "policy_answer",
];

/// Seconds per target when `--secs` is not given: CI's smoke.
pub const DEFAULT_SECS: u64 = 20;

/// What one run of a target showed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Seconds the run took (less than asked when it crashed).
    pub secs: u64,
    /// libFuzzer's `stat::number_of_executed_units`.
    pub executions: u64,
    /// The last `cov:` (edges covered).
    pub cov: u64,
    /// The last `ft:` (features).
    pub ft: u64,
    /// The crash (or timeout, out-of-memory) input libFuzzer wrote, if any.
    pub crash: Option<PathBuf>,
}

/// Parses `[--secs N] [TARGET...]` and runs the targets.
pub fn run(args: &[String]) -> Result<()> {
    let (secs, targets) = parse_args(args)?;
    let root = workspace_root();
    let dirs = Dirs::new(&root);
    install_cargo_fuzz()?;
    let counts = seeds::write(&root, &dirs.seeds)?;
    for (target, n) in &counts {
        eprintln!("xtask: {n:>4} seeds for {target}");
    }
    let started = Instant::now();
    cargo_fuzz(&dirs, &["build"], &[])?;
    eprintln!(
        "xtask: fuzz build took {:.0} s",
        started.elapsed().as_secs_f64()
    );

    let mut results = Vec::new();
    for target in &targets {
        let report = run_target(&dirs, target, secs)?;
        results.push((target.clone(), report));
    }
    println!(
        "{:<14} {:>6} {:>12} {:>6} {:>7}  crash",
        "target", "secs", "executions", "cov", "ft"
    );
    for (target, r) in &results {
        println!(
            "{target:<14} {secs:>6} {:>12} {:>6} {:>7}  {}",
            r.executions,
            r.cov,
            r.ft,
            r.crash
                .as_ref()
                .map_or("none".into(), |p| p.display().to_string())
        );
    }
    let crashed: Vec<_> = results.iter().filter(|(_, r)| r.crash.is_some()).collect();
    if crashed.is_empty() {
        return Ok(());
    }
    for (target, r) in &crashed {
        let file = r
            .crash
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        eprintln!("xtask: {target} crashed on {file}; reproduce with:");
        eprintln!("  {}", reproduce_command(target, &file));
    }
    bail!("{} fuzz target(s) crashed", crashed.len())
}

/// `[--secs N] [TARGET...]`; no target means all of them.
pub fn parse_args(args: &[String]) -> Result<(u64, Vec<String>)> {
    let mut secs = DEFAULT_SECS;
    let mut targets = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let value = if arg == "--secs" {
            Some(args.next().context("--secs needs a number")?.as_str())
        } else {
            arg.strip_prefix("--secs=")
        };
        if let Some(value) = value {
            secs = value
                .parse()
                .ok()
                .filter(|s| *s > 0)
                .with_context(|| format!("--secs {value:?} is not a positive number"))?;
        } else if TARGETS.contains(&arg.as_str()) {
            targets.push(arg.clone());
        } else {
            bail!(
                "unknown fuzz target or option `{arg}` (targets: {})",
                TARGETS.join(", ")
            );
        }
    }
    if targets.is_empty() {
        targets = TARGETS.iter().map(|t| t.to_string()).collect();
    }
    Ok((secs, targets))
}

/// The folders a run uses, all under `target/fuzz`.
struct Dirs {
    manifest_dir: PathBuf,
    target: PathBuf,
    seeds: PathBuf,
    corpus: PathBuf,
    artifacts: PathBuf,
    logs: PathBuf,
}

impl Dirs {
    fn new(root: &Path) -> Dirs {
        let target = root.join("target").join("fuzz");
        Dirs {
            manifest_dir: root.join("tests").join("fuzz"),
            seeds: target.join("seeds"),
            corpus: target.join("corpus"),
            artifacts: target.join("artifacts"),
            logs: target.join("logs"),
            target,
        }
    }
}

/// The line that replays one input through a target (no fuzzing).
pub fn reproduce_command(target: &str, input: &str) -> String {
    format!(
        "cargo fuzz run --fuzz-dir tests/fuzz --target-dir target/fuzz --sanitizer none {target} {input}"
    )
}

fn run_target(dirs: &Dirs, target: &str, secs: u64) -> Result<Report> {
    let corpus = dirs.corpus.join(target);
    let artifacts = dirs.artifacts.join(target);
    for dir in [&corpus, &artifacts, &dirs.logs] {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let log = dirs.logs.join(format!("{target}.log"));
    eprintln!(
        "xtask: fuzzing {target} for {secs} s (log: {})",
        log.display()
    );
    let seeds = dirs.seeds.join(target);
    let mut args = vec![target.to_string(), corpus.display().to_string()];
    if seeds.is_dir() {
        args.push(seeds.display().to_string());
    }
    let libfuzzer = [
        format!("-max_total_time={secs}"),
        // An input that takes 10 s is a hang: a peer could stall the
        // signalling task with it.
        "-timeout=10".into(),
        "-rss_limit_mb=2048".into(),
        "-max_len=8192".into(),
        "-print_final_stats=1".into(),
        format!("-artifact_prefix={}/", artifacts.display()),
    ];
    let started = Instant::now();
    let output = fuzz_binary_output(dirs, &args, &libfuzzer)?;
    std::fs::write(&log, &output.1).with_context(|| format!("writing {}", log.display()))?;
    let mut report = parse_output(&output.1);
    report.secs = started.elapsed().as_secs();
    if !output.0 && report.crash.is_none() {
        bail!(
            "fuzzing {target} failed without a crash input; see {}",
            log.display()
        );
    }
    if let Some(crash) = &report.crash {
        let text = String::from_utf8_lossy(&output.1);
        let panic = text
            .lines()
            .find(|l| l.contains("panicked at"))
            .unwrap_or("");
        eprintln!("xtask: {target}: {panic}");
        report.crash = Some(crash.clone());
    }
    Ok(report)
}

/// Reads libFuzzer's output: the last `cov:`/`ft:` status, the executions
/// from the final stats, and the artifact it wrote.
pub fn parse_output(output: &[u8]) -> Report {
    let text = String::from_utf8_lossy(output);
    let mut report = Report::default();
    let field = |line: &str, name: &str| -> Option<u64> {
        let mut words = line.split_whitespace();
        words.find(|w| *w == name)?;
        words.next()?.parse().ok()
    };
    for line in text.lines() {
        if let (Some(cov), Some(ft)) = (field(line, "cov:"), field(line, "ft:")) {
            report.cov = cov;
            report.ft = ft;
        }
        if let Some(n) = line.strip_prefix("stat::number_of_executed_units:") {
            report.executions = n.trim().parse().unwrap_or(report.executions);
        }
        if let Some(rest) = line.split("Test unit written to ").nth(1) {
            report.crash = Some(PathBuf::from(rest.trim()));
        }
    }
    report
}

/// `cargo fuzz SUBCOMMAND` with the fuzz dir, target dir and sanitizer set.
fn fuzz_command(dirs: &Dirs, subcommand: &str) -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command
        .current_dir(workspace_root())
        .env("CARGO_INCREMENTAL", "0")
        .args(["fuzz", subcommand, "--fuzz-dir"])
        .arg(&dirs.manifest_dir)
        .arg("--target-dir")
        .arg(&dirs.target)
        .args(["--sanitizer", "none"]);
    command
}

fn cargo_fuzz(dirs: &Dirs, args: &[&str], libfuzzer: &[String]) -> Result<()> {
    let (subcommand, rest) = args.split_first().context("no subcommand")?;
    let mut command = fuzz_command(dirs, subcommand);
    command.args(rest);
    if !libfuzzer.is_empty() {
        command.arg("--").args(libfuzzer);
    }
    let status = command.status().context("running cargo fuzz")?;
    if !status.success() {
        bail!("`cargo fuzz {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

/// Runs the built target binary on `args` with libFuzzer's options,
/// collecting its output (libFuzzer reports on stderr); returns whether it
/// exited 0, and the output. The binary is run directly rather than through
/// `cargo fuzz run`, so the seconds reported are fuzzing, never a rebuild.
fn fuzz_binary_output(
    dirs: &Dirs,
    args: &[String],
    libfuzzer: &[String],
) -> Result<(bool, Vec<u8>)> {
    let (target, inputs) = args.split_first().context("no target")?;
    let binary = built_binary(dirs, target)?;
    let output = Command::new(&binary)
        .args(inputs)
        .args(libfuzzer)
        .current_dir(workspace_root())
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {}", binary.display()))?;
    let mut text = output.stdout;
    text.extend_from_slice(&output.stderr);
    Ok((output.status.success(), text))
}

/// `target/fuzz/<host triple>/release/TARGET`, as `cargo fuzz build` left it.
fn built_binary(dirs: &Dirs, target: &str) -> Result<PathBuf> {
    let entries = std::fs::read_dir(&dirs.target)
        .with_context(|| format!("reading {}", dirs.target.display()))?;
    entries
        .filter_map(|e| e.ok().map(|e| e.path().join("release").join(target)))
        .find(|p| p.is_file())
        .with_context(|| {
            format!(
                "no built binary for {target} under {}",
                dirs.target.display()
            )
        })
}

/// Installs cargo-fuzz from crates.io when `cargo fuzz` is not there.
fn install_cargo_fuzz() -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let present = Command::new(&cargo)
        .args(["fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if present {
        return Ok(());
    }
    eprintln!("xtask: installing cargo-fuzz");
    let status = Command::new(&cargo)
        .args(["install", "cargo-fuzz", "--locked"])
        .env("CARGO_INCREMENTAL", "0")
        .status()
        .context("running cargo install")?;
    if !status.success() {
        bail!("`cargo install cargo-fuzz --locked` failed ({status})");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn options_and_targets() {
        let (secs, targets) = parse_args(&args(&[])).unwrap();
        assert_eq!((secs, targets.len()), (DEFAULT_SECS, TARGETS.len()));
        let (secs, targets) = parse_args(&args(&["--secs", "300", "sdp", "rtp"])).unwrap();
        assert_eq!((secs, targets), (300, args(&["sdp", "rtp"])));
        assert_eq!(parse_args(&args(&["--secs=5"])).unwrap().0, 5);
        assert!(parse_args(&args(&["--secs"])).is_err());
        assert!(parse_args(&args(&["--secs", "0"])).is_err());
        assert!(parse_args(&args(&["nosuch"])).is_err());
    }

    #[test]
    fn every_target_has_a_bin_in_the_fuzz_crate() {
        let manifest = std::fs::read_to_string(workspace_root().join("tests/fuzz/Cargo.toml"))
            .expect("tests/fuzz/Cargo.toml");
        let manifest: toml::Table = manifest.parse().expect("TOML");
        let bins: Vec<&str> = manifest["bin"]
            .as_array()
            .expect("[[bin]]")
            .iter()
            .filter_map(|b| b.get("name")?.as_str())
            .collect();
        assert_eq!(bins, TARGETS, "the run order lists every target");
    }

    #[test]
    fn reads_libfuzzer_output() {
        let out = b"#2\tINITED cov: 10 ft: 11 corp: 1/1b exec/s: 0 rss: 27Mb\n\
            #4096\tpulse  cov: 432 ft: 1515 corp: 60/2Kb lim: 4 exec/s: 2048 rss: 29Mb\n\
            thread '<unnamed>' panicked at fuzz_targets/sdp.rs:1:1:\n\
            artifact_prefix='x/'; Test unit written to target/fuzz/artifacts/sdp/crash-abc\n\
            stat::number_of_executed_units: 4100\n";
        let report = parse_output(out);
        assert_eq!(
            (report.executions, report.cov, report.ft),
            (4100, 432, 1515)
        );
        assert_eq!(
            report.crash,
            Some(PathBuf::from("target/fuzz/artifacts/sdp/crash-abc"))
        );
        assert_eq!(parse_output(b"#1 DONE cov: 1 ft: 2\n").crash, None);
    }
}
