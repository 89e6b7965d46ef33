//! `fleet scale N`: more or fewer workers in a running fleet. New workers get
//! the lowest free numbers; surplus workers (the highest-numbered) get
//! SIGTERM and finish the job in hand. Redis, the api and the other workers
//! are not touched.

use std::collections::HashMap;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;

use verdict_supervisor::control::client;
use verdict_supervisor::control::protocol::{Request, Response};
use verdict_supervisor::durations_and_sizes::parse_duration;
use verdict_supervisor::home::Home;

use super::{running_watchdog, wait};

#[derive(Debug, Clone, clap::Args)]
pub struct ScaleArgs {
    /// The number of workers to run from now on
    pub workers: usize,
    /// How long to wait for new workers to register and surplus ones to stop
    #[arg(long, default_value = "60s", value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Duration,
}

pub fn main(home_flag: Option<&Path>, args: ScaleArgs) -> anyhow::Result<ExitCode> {
    let home = Home::resolve(home_flag)?;
    running_watchdog(&home)?;
    let request = Request::Scale {
        workers: args.workers,
    };
    let (started, stopping) =
        match client::request(&home.control_socket(), &request, Duration::from_secs(10))? {
            Response::Scaled {
                started, stopping, ..
            } => (started, stopping),
            other => bail!("unexpected answer from the watchdog: {other:?}"),
        };
    if started.is_empty() && stopping.is_empty() {
        println!("already {} workers", args.workers);
        return Ok(ExitCode::SUCCESS);
    }
    if !started.is_empty() {
        println!("starting {}", started.join(", "));
    }
    if !stopping.is_empty() {
        println!("stopping {}", stopping.join(", "));
    }
    if wait::until_running(&home, &started, &HashMap::new(), &stopping, args.timeout)? {
        println!("scaled to {} workers", args.workers);
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("fleet: scaling did not finish within the timeout (see above; `fleet status`)");
        Ok(ExitCode::FAILURE)
    }
}
