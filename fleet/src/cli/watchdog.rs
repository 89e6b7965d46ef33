//! `fleet watchdog` (hidden): the detached watchdog that `fleet up` starts.
//!
//! It reads the configuration `fleet up` resolved (`run/fleet.json`), logs
//! JSON to its stderr (which `fleet up` pointed at `logs/watchdog.log`) and
//! runs until the fleet is down.

use std::path::Path;
use std::process::ExitCode;

use verdict_shared::telemetry::{self, LogFormat};

use verdict_supervisor::config::FleetConfig;
use verdict_supervisor::home::Home;
use verdict_supervisor::watchdog::{self, WatchdogError};

pub fn main(home_flag: Option<&Path>) -> anyhow::Result<ExitCode> {
    telemetry::init(LogFormat::Json);
    let home = Home::resolve(home_flag)?;
    let config = FleetConfig::load(&home.config_file())?;
    match watchdog::run(home, config) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(err @ WatchdogError::AlreadyRunning { .. }) => {
            tracing::error!("{err}");
            eprintln!("fleet: {err}");
            Ok(ExitCode::from(2))
        }
        Err(WatchdogError::Other(err)) => {
            tracing::error!("watchdog failed: {err:#}");
            Err(err)
        }
    }
}
