//! `fleet restart [ROLE|NAME]`: a graceful restart (SIGTERM, the job in hand
//! finishes, a new instance starts at once), one process at a time (the next
//! once the previous one's new instance is ready; `--all-at-once` for all
//! together), then a wait until the new instances are ready. Also how a `failed` process is given another chance:
//! its crash history is forgotten.

use std::collections::HashMap;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use verdict_shared::outln;

use verdict_supervisor::control::client;
use verdict_supervisor::control::protocol::{Request, Response};
use verdict_supervisor::durations_and_sizes::parse_duration;
use verdict_supervisor::home::Home;

use super::{fetch_status, running_watchdog, wait};

#[derive(Debug, Clone, clap::Args)]
pub struct RestartArgs {
    /// A role (api, worker, redis) or a process name (worker-1) [default: the api and every worker]
    pub target: Option<String>,
    /// Stop every chosen process together (by default one at a time: the
    /// next stops once the new instance of the previous one is ready)
    #[arg(long)]
    pub all_at_once: bool,
    /// How long to wait for the new instances to be ready
    #[arg(long, default_value = "60s", value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Duration,
}

pub fn main(home_flag: Option<&Path>, args: RestartArgs) -> anyhow::Result<ExitCode> {
    let home = Home::resolve(home_flag)?;
    running_watchdog(&home)?;
    let before: HashMap<String, u32> = fetch_status(&home)?
        .processes
        .into_iter()
        .filter_map(|p| p.pid.map(|pid| (p.name, pid)))
        .collect();
    let request = Request::Restart {
        target: args.target.clone(),
        all_at_once: args.all_at_once,
    };
    let names = match client::request(&home.control_socket(), &request, Duration::from_secs(10))? {
        Response::Restarting { names } => names,
        other => bail!("unexpected answer from the watchdog: {other:?}"),
    };
    outln!("restarting {}", names.join(", "));
    if wait::until_running(&home, &names, &before, &[], args.timeout)? {
        outln!("restarted: {} running", names.join(", "));
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("fleet: not everything restarted within the timeout (see above; `fleet status`)");
        Ok(ExitCode::FAILURE)
    }
}
