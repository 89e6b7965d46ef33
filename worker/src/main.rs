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
    // Boxed: the run flags outweigh the other commands' (clippy's
    // large_enum_variant); parsed once, so the allocation costs nothing.
    Run(Box<cli::run::RunArgs>),
    /// Judge one image against one or more sentences and print one JSON line per sentence.
    Judge(cli::judge_one_image::JudgeArgs),
    /// Fit the label-grounded rule on a labelled dev set (see docs/rule.md).
    #[command(hide = true)]
    Calibrate(cli::calibrate::CalibrateArgs),
    /// Time the model on one core (see scripts/bench-model).
    #[command(hide = true)]
    Bench(cli::bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => cli::run::main(*args),
        Command::Judge(args) => cli::judge_one_image::main(args),
        Command::Calibrate(args) => cli::calibrate::main(args),
        Command::Bench(args) => cli::bench::main(args),
    }
}
