//! Command-line interface. Each subcommand lives in its own file; errors
//! become one clear line on stderr and a non-zero exit.

mod policy;
mod run;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Trunkline: a WebAssembly-extensible programmable SIP call router.
#[derive(Debug, Parser)]
#[command(name = "trunkline", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway.
    Run {
        /// The TOML config file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Work with policy components offline.
    #[command(subcommand)]
    Policy(Box<policy::PolicyCommand>),
}

/// Exit status for bad input (unreadable file, invalid component...).
pub(crate) const EXIT_BAD_INPUT: u8 = 2;

pub(crate) fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run { config } => run::run(&config),
        Command::Policy(cmd) => policy::main(*cmd),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("trunkline: {e:#}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}

/// Logs to stderr; `RUST_LOG` overrides the level.
pub(crate) fn init_logging(default: &str) {
    init_logging_as(default, trunkline::config::LogFormat::Human);
}

/// Logs to stderr in `format`; `RUST_LOG` overrides the filter.
pub(crate) fn init_logging_as(default: &str, format: trunkline::config::LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    use std::io::IsTerminal;
    let _ = match format {
        trunkline::config::LogFormat::Human => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(redacting())
            .try_init(),
        trunkline::config::LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_env_filter(filter)
            .with_writer(redacting())
            .try_init(),
    };
}

fn redacting() -> trunkline::redact::RedactingWriter {
    trunkline::redact::RedactingWriter::new(trunkline::redact::Secrets::global().clone())
}
