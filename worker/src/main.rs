//! `verdict-worker`: runs jobs from Redis (`run`) or judges one image (`judge`).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use verdict_worker::cli;

#[derive(Debug, Parser)]
#[command(
    name = "verdict-worker",
    version,
    about = "verdict's worker: judges images against sentences"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Take jobs from Redis and post verdicts back until stopped.
    Run(cli::run::RunArgs),
    /// Judge one image against one or more sentences and print one JSON line per sentence.
    Judge(cli::judge::JudgeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => cli::run::main(args),
        Command::Judge(args) => cli::judge::main(args),
    }
}
