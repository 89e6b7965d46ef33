//! `fleet`: runs verdict on one machine — Redis, the api and the workers under
//! one watchdog — and answers the operator's questions about it.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use verdict_fleet::cli;

#[derive(Debug, Parser)]
#[command(
    name = "fleet",
    version,
    about = "Runs verdict on this machine: Redis, the api and workers under one watchdog",
    after_help = "The fleet's files live in its home: run/ (PID files, sockets), logs/, redis/. \
                  See docs/fleet.md."
)]
struct Cli {
    /// The fleet's home directory [default: $XDG_DATA_HOME/verdict or ~/.local/share/verdict]
    #[arg(long, env = "VERDICT_HOME", global = true, value_name = "DIR")]
    home: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the fleet (Redis, the api, N workers) under a detached watchdog and wait until it is ready.
    Up(Box<cli::up::UpArgs>),
    /// Stop every process of the fleet: the api and workers first, Redis and the watchdog last.
    Down(cli::down::DownArgs),
    /// One row per process, then the queue. Exit code 0 only when everything runs.
    Status(cli::status::StatusArgs),
    /// Restart a role (api, worker, redis) or one process (worker-1); the api and all workers by default.
    Restart(cli::restart::RestartArgs),
    /// Change the number of workers of a running fleet without touching the other processes.
    Scale(cli::scale::ScaleArgs),
    /// Show (or follow) the processes' logs.
    Logs(cli::logs::LogsArgs),
    /// Run a catalogue of (image, sentence) rows through the api: JSONL or CSV in, one verdict line per sentence out.
    Batch(cli::batch::BatchArgs),
    /// The jobs the workers gave up on: list, show, retry (by id or --all), purge.
    Dead(cli::dead::DeadArgs),
    /// Print a systemd unit that runs the fleet in the foreground.
    Unit(cli::unit::UnitArgs),
    /// The watchdog itself (started by `fleet up`).
    #[command(hide = true)]
    Watchdog,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let home = cli.home.as_deref();
    let result = match cli.command {
        Command::Up(args) => cli::up::main(home, *args),
        Command::Down(args) => cli::down::main(home, args),
        Command::Status(args) => cli::status::main(home, args),
        Command::Restart(args) => cli::restart::main(home, args),
        Command::Scale(args) => cli::scale::main(home, args),
        Command::Logs(args) => cli::logs::main(home, args),
        Command::Unit(args) => cli::unit::main(home, args),
        Command::Batch(args) => cli::batch::main(home, args),
        Command::Dead(args) => cli::dead::main(home, args),
        Command::Watchdog => cli::watchdog::main(home),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("fleet: {err:#}");
            ExitCode::FAILURE
        }
    }
}
