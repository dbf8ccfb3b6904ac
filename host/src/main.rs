//! The `trunkline` command: the gateway and its policy tools.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
