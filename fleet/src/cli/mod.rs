//! The `fleet` subcommands, one file each (`up_safeguards` holds the flags
//! of `up` that keep jobs from being lost; `wait` the waiting for readiness
//! that `up`, `restart` and `scale` share). Each returns the process's exit
//! code; errors are printed by `main` and exit with 1.

pub mod batch;
pub mod dead;
pub mod down;
pub mod logs;
pub mod restart;
pub mod scale;
pub mod status;
pub mod unit;
pub mod up;
pub mod up_safeguards;
pub mod wait;
pub mod watchdog;

use anyhow::bail;
use verdict_supervisor::pidfile::{self, Probe};

use verdict_supervisor::control::client;
use verdict_supervisor::control::protocol::{FleetStatus, Request, Response};
use verdict_supervisor::home::Home;

/// The running watchdog's PID, or a clear error when there is none.
pub fn running_watchdog(home: &Home) -> anyhow::Result<u32> {
    match pidfile::probe(&home.pid_file("watchdog"))? {
        Probe::Running { pid } => Ok(pid.unwrap_or(0)),
        _ => bail!(
            "no fleet is running in {} (start one with `fleet up`)",
            home.root().display()
        ),
    }
}

/// Asks the watchdog for its status.
pub fn fetch_status(home: &Home) -> anyhow::Result<FleetStatus> {
    match client::request(
        &home.control_socket(),
        &Request::Status,
        std::time::Duration::from_secs(5),
    )? {
        Response::Status(status) => Ok(status),
        other => bail!("unexpected answer from the watchdog: {other:?}"),
    }
}

/// The api a client command talks to, and where that came from: `--api`,
/// else the api of the fleet in the home (its `run/fleet.json`); an error
/// naming both ways out when the home has no fleet (never a guessed port).
pub fn api_of(
    home_flag: Option<&std::path::Path>,
    api_flag: Option<&str>,
) -> anyhow::Result<(String, String)> {
    if let Some(api) = api_flag {
        return Ok((api.to_string(), "--api".to_string()));
    }
    let home = Home::resolve(home_flag)?;
    let file = home.config_file();
    if !file.exists() {
        bail!(
            "no fleet in {} (no {}): start one with `fleet up`, point --home at the home of \
             the fleet to use, or name its api with --api URL",
            home.root().display(),
            file.display()
        );
    }
    let config = verdict_supervisor::config::FleetConfig::load(&file)?;
    Ok((config.api_url(), file.display().to_string()))
}
