//! `fleet down`: stop everything, in order, and prove it.
//!
//! With a running watchdog, it asks it to stop the fleet (SIGTERM to the api
//! and workers, which finish the job in hand; SIGKILL after `--timeout`; then
//! Redis; then the watchdog exits) and prints how each process stopped. If
//! the watchdog does not answer, it is stopped by signal. Either way, orphans
//! and stale PID files are then cleaned up, and the command fails if any PID
//! file is still locked: "stopped" means no process of the fleet is left.

use std::path::Path;
use std::process::ExitCode;
use std::thread::sleep;
use std::time::{Duration, Instant};

use verdict_shared::outln;
use verdict_supervisor::pidfile::{self, Probe};

use verdict_supervisor::control::client;
use verdict_supervisor::control::protocol::{Request, Response};
use verdict_supervisor::durations_and_sizes::{format_duration, parse_duration};
use verdict_supervisor::home::Home;
use verdict_supervisor::recovery;

#[derive(Debug, Clone, clap::Args)]
pub struct DownArgs {
    /// How long each process may take to stop after SIGTERM before SIGKILL
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Duration,
}

pub fn main(home_flag: Option<&Path>, args: DownArgs) -> anyhow::Result<ExitCode> {
    let home = Home::resolve(home_flag)?;
    if !home.exists() {
        outln!("{}", nothing_to_stop(&home));
        return Ok(ExitCode::SUCCESS);
    }
    let start = Instant::now();
    let watchdog_file = home.pid_file("watchdog");
    let probe = pidfile::probe(&watchdog_file)?;
    let was_running = matches!(probe, Probe::Running { .. });
    match probe {
        Probe::Running { pid } => {
            let pid_text = pid.map_or_else(|| "unknown".into(), |p| p.to_string());
            outln!(
                "stopping the fleet in {} (watchdog PID {pid_text}, up to {} per process)",
                home.root().display(),
                format_duration(args.timeout)
            );
            let request = Request::Down {
                timeout_ms: args.timeout.as_millis() as u64,
            };
            // Two stages (apps, then Redis), each up to the timeout, plus slack.
            let wait = args.timeout * 2 + Duration::from_secs(30);
            match client::request(&home.control_socket(), &request, wait) {
                Ok(Response::Down(report)) => {
                    for entry in &report.stopped {
                        let pid = entry.pid.map_or(String::new(), |p| format!(" (PID {p})"));
                        outln!("  {}{pid}: {}", entry.name, entry.how);
                    }
                    if !wait_for_unlock(&watchdog_file, Duration::from_secs(10)) {
                        eprintln!(
                            "fleet: the watchdog did not exit after stopping the fleet; stopping it"
                        );
                        stop_watchdog(&home, args.timeout);
                    } else {
                        outln!("  watchdog (PID {pid_text}): exited");
                    }
                }
                Ok(other) => anyhow::bail!("unexpected answer from the watchdog: {other:?}"),
                Err(err) => {
                    eprintln!(
                        "fleet: the watchdog does not answer ({err:#}); stopping it by signal"
                    );
                    stop_watchdog(&home, args.timeout);
                }
            }
        }
        // A stale file is removed and reported by the sweep below.
        Probe::Stale { .. } | Probe::Absent => {}
    }

    let sweep = recovery::sweep(&home, args.timeout)?;
    let swept = sweep.lines();
    if !was_running && swept.is_empty() {
        outln!("{}", nothing_to_stop(&home));
        return Ok(ExitCode::SUCCESS);
    }
    if !was_running {
        outln!(
            "no watchdog was running in {}; cleaned up what its fleet left:",
            home.root().display()
        );
    }
    for line in swept {
        outln!("  {line}");
    }

    let mut left = Vec::new();
    for name in home.pid_file_names()? {
        if let Probe::Running { pid } = pidfile::probe(&home.pid_file(&name))? {
            left.push(format!(
                "{name} (PID {})",
                pid.map_or_else(|| "unknown".into(), |p| p.to_string())
            ));
        }
    }
    if !left.is_empty() {
        eprintln!("fleet: still running: {}", left.join(", "));
        return Ok(ExitCode::FAILURE);
    }
    let _ = std::fs::remove_file(home.control_socket());
    outln!("fleet stopped in {}", format_duration(start.elapsed()));
    Ok(ExitCode::SUCCESS)
}

fn wait_for_unlock(path: &Path, timeout: Duration) -> bool {
    let start = Instant::now();
    loop {
        match pidfile::probe(path) {
            Ok(Probe::Running { .. }) => {}
            _ => return true,
        }
        if start.elapsed() >= timeout {
            return false;
        }
        sleep(Duration::from_millis(50));
    }
}

/// SIGTERM (an orderly stop, as for `down`) to the process holding
/// `watchdog.pid`, then SIGKILL; its children get SIGTERM from the kernel
/// when it dies, and the sweep that follows handles any that linger.
fn stop_watchdog(home: &Home, timeout: Duration) {
    let path = home.pid_file("watchdog");
    let holders = pidfile::holders(&path).unwrap_or_default();
    for pid in holders.into_iter().filter(|&p| p != std::process::id()) {
        match recovery::stop(pid, timeout * 2 + Duration::from_secs(5)) {
            Some(how) => outln!("  watchdog (PID {pid}): {how}"),
            None => eprintln!("fleet: the watchdog (PID {pid}) could not be stopped"),
        }
    }
    let _ = pidfile::remove_if_stale(&path);
}

/// The one sentence for a home with no fleet to stop.
fn nothing_to_stop(home: &Home) -> String {
    format!(
        "nothing to stop: no fleet is running in {} (a fleet in another home: \
         `fleet --home DIR down`, or set VERDICT_HOME)",
        home.root().display()
    )
}
