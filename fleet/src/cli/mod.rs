//! The `fleet` subcommands, one file each (`up_safeguards` holds the flags
//! of `up` that keep jobs from being lost; `wait` the waiting for readiness
//! that `up`, `restart` and `scale` share). Each returns the process's exit
//! code; errors are printed by `main` and exit with 1.

pub mod batch;
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
