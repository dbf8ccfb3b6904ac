//! `cargo xtask`: build policy components.
//!
//! ```text
//! cargo xtask policies [--out DIR]   # policies/*        -> target/policies
//! cargo xtask fixtures [--out DIR]   # tests/policies/*  -> target/test-policies
//! cargo xtask test                   # tools, fmt, clippy, every test, fuzz smoke (what CI runs)
//! cargo xtask peers                  # the tests' Python peers (Pipecat), in target/peers/venv
//! cargo xtask fuzz [--secs N] [T...] # every fuzz target (or T) for N s each (default 20)
//! cargo xtask demo [--release]       # build, then run Trunkline with examples/builtin.toml
//! cargo xtask demo-call [--key K]    # SIPp as Five9 presses K; prints the BYE and the handoff
//! ```

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <command> [--out DIR]

commands:
  policies   build policies/* into components (default out: target/policies)
  fixtures   build tests/policies/* test fixtures (default out: target/test-policies)
  test       install test tools, then fmt --check, clippy -D warnings, test --workspace,
             then the fuzz smoke (every target for 20 s)
  peers      install the tests' Python peers (Pipecat) into target/peers/venv
  fuzz       run the fuzz targets in tests/fuzz [--secs N] [TARGET...] (default: all, 20 s
             each); fails on a crash and prints the input and the command to reproduce it
  demo       build the policies, then run Trunkline with examples/builtin.toml
             (every call to the builtin agent's DTMF menu) [--release]
  demo-call  call the demo as Five9 with SIPp, press a key [--key 2], print the
             BYE headers and the Handoff record
";

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Vec<String>) -> Result<()> {
    let Some((command, rest)) = args.split_first() else {
        eprint!("{USAGE}");
        bail!("no command given");
    };
    if command == "test" {
        return xtask::test::run();
    }
    if command == "peers" {
        return xtask::peers::install();
    }
    if command == "fuzz" {
        return xtask::fuzz::run(rest);
    }
    if command == "demo" {
        return xtask::demo::start(rest);
    }
    if command == "demo-call" {
        return xtask::demo::call(rest);
    }
    let out = parse_out(rest)?;
    let written = match command.as_str() {
        "policies" => {
            let out = out.unwrap_or_else(xtask::default_policies_out);
            xtask::build_policies(&out)?
        }
        "fixtures" => {
            let out = out.unwrap_or_else(xtask::default_fixtures_out);
            xtask::build_fixtures(&out)?
        }
        "help" | "-h" | "--help" => {
            print!("{USAGE}");
            return Ok(());
        }
        other => {
            eprint!("{USAGE}");
            bail!("unknown command `{other}`");
        }
    };
    report(&written)
}

/// Reads `--out DIR` / `--out=DIR`, the only option.
fn parse_out(args: &[String]) -> Result<Option<PathBuf>> {
    let mut out = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if arg == "--out" {
            let dir = args.next().context("--out needs a directory")?;
            out = Some(PathBuf::from(dir));
        } else if let Some(dir) = arg.strip_prefix("--out=") {
            out = Some(PathBuf::from(dir));
        } else {
            bail!("unexpected argument `{arg}`\n{USAGE}");
        }
    }
    Ok(out)
}

/// Prints one line per component: name, size and what it imports.
fn report(written: &[PathBuf]) -> Result<()> {
    for path in written {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("?");
        let imports = xtask::interface(&bytes)?.imports;
        println!(
            "{name:<16} {:>8} bytes  {}  imports: {}",
            bytes.len(),
            display(path),
            imports.join(", ")
        );
    }
    Ok(())
}

/// The path relative to the current directory when it is inside it.
fn display(path: &Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| path.to_path_buf())
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn out_option() {
        assert_eq!(parse_out(&args(&[])).unwrap(), None);
        assert_eq!(
            parse_out(&args(&["--out", "x"])).unwrap(),
            Some(PathBuf::from("x"))
        );
        assert_eq!(
            parse_out(&args(&["--out=y"])).unwrap(),
            Some(PathBuf::from("y"))
        );
        assert!(parse_out(&args(&["--out"])).is_err());
        assert!(parse_out(&args(&["--verbose"])).is_err());
    }

    #[test]
    fn unknown_command_fails() {
        assert!(run(args(&["frobnicate"])).is_err());
        assert!(run(args(&[])).is_err());
    }
}
