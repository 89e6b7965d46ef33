//! Waiting for a fleet to become ready, with progress lines, for `up`,
//! `restart` and `scale`.
//!
//! Readiness is the watchdog's verdict (state `running`): Redis answers PING,
//! the api answers `/readyz`, each worker has registered in Redis with its
//! PID. A process that goes `failed` ends the wait at once: it will not
//! become ready by waiting.

use std::collections::HashMap;
use std::process::{Child, ExitCode};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::log_line;
use verdict_shared::outln;
use verdict_supervisor::config::FleetConfig;
use verdict_supervisor::control::client;
use verdict_supervisor::control::protocol::{FleetStatus, ProcessStatus, Request, Response, State};
use verdict_supervisor::durations_and_sizes::format_duration;
use verdict_supervisor::home::Home;
use verdict_supervisor::names::Role;

use super::{fetch_status, up};

const POLL: Duration = Duration::from_millis(200);
/// Log lines shown for a process that is not ready.
const TAIL_LINES: usize = 15;

/// Waits for the whole fleet after `fleet up`; on failure stops it.
pub fn until_up(
    home: &Home,
    config: &FleetConfig,
    mut watchdog: Child,
    timeout: Duration,
) -> anyhow::Result<ExitCode> {
    outln!(
        "starting verdict in {} ({} worker{}); waiting up to {} for it to be ready",
        home.root().display(),
        config.workers,
        if config.workers == 1 { "" } else { "s" },
        format_duration(timeout)
    );
    let start = Instant::now();
    let mut shown: HashMap<String, (State, Option<u32>)> = HashMap::new();
    let mut last: Option<FleetStatus> = None;
    loop {
        if let Some(exit) = watchdog.try_wait()? {
            eprintln!("fleet: the watchdog exited before the fleet was ready ({exit})");
            print_tail(home, "watchdog");
            return Ok(ExitCode::FAILURE);
        }
        if let Ok(status) = fetch_status(home) {
            progress(&status, &mut shown);
            let failed: Vec<&ProcessStatus> = status
                .processes
                .iter()
                .filter(|p| p.state == State::Failed)
                .collect();
            if !failed.is_empty() {
                for p in &failed {
                    eprintln!(
                        "fleet: {} failed: {}",
                        p.name,
                        p.last_exit
                            .as_ref()
                            .map_or("no exit recorded".into(), |e| format!(
                                "{} ({})",
                                e.reason, e.status
                            ))
                    );
                    print_tail(home, &p.name);
                }
                stop_after_failure(home);
                reap(&mut watchdog);
                return Ok(ExitCode::FAILURE);
            }
            if all_running(&status) {
                outln!();
                outln!("{}", up::summary(home, config, watchdog.id()));
                return Ok(ExitCode::SUCCESS);
            }
            last = Some(status);
        }
        if start.elapsed() >= timeout {
            eprintln!("fleet: not ready after {}:", format_duration(timeout));
            match &last {
                Some(status) => {
                    for p in status
                        .processes
                        .iter()
                        .filter(|p| p.state != State::Running)
                    {
                        eprintln!(
                            "  {}: {} ({})",
                            p.name,
                            p.state.as_str(),
                            why_not_ready(p, status)
                        );
                        print_tail(home, &p.name);
                    }
                }
                None => {
                    eprintln!(
                        "  the watchdog never answered on {}",
                        home.control_socket().display()
                    );
                    print_tail(home, "watchdog");
                }
            }
            stop_after_failure(home);
            reap(&mut watchdog);
            return Ok(ExitCode::FAILURE);
        }
        sleep(POLL);
    }
}

/// Waits (briefly) for the watchdog to exit after a `down`, so that nothing
/// of the failed start is left when `up` returns.
fn reap(watchdog: &mut Child) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(15) {
        if let Ok(Some(_)) = watchdog.try_wait() {
            return;
        }
        sleep(Duration::from_millis(50));
    }
    eprintln!(
        "fleet: the watchdog (PID {}) is still running; run `fleet down`",
        watchdog.id()
    );
}

/// Waits until every process named in `names` runs with a new instance (a
/// PID not in `old_pids`), for `restart` and `scale`.
pub fn until_running(
    home: &Home,
    names: &[String],
    old_pids: &HashMap<String, u32>,
    gone: &[String],
    timeout: Duration,
) -> anyhow::Result<bool> {
    let start = Instant::now();
    let mut shown: HashMap<String, (State, Option<u32>)> = HashMap::new();
    loop {
        let status = fetch_status(home)?;
        progress(&status, &mut shown);
        let ready = names.iter().all(|name| {
            status.processes.iter().any(|p| {
                &p.name == name
                    && p.state == State::Running
                    && p.pid.is_some()
                    && old_pids.get(name) != p.pid.as_ref()
            })
        });
        let retired = gone
            .iter()
            .all(|name| !status.processes.iter().any(|p| &p.name == name));
        if ready && retired {
            return Ok(true);
        }
        if let Some(failed) = status
            .processes
            .iter()
            .find(|p| names.contains(&p.name) && p.state == State::Failed)
        {
            eprintln!("fleet: {} failed", failed.name);
            print_tail(home, &failed.name);
            return Ok(false);
        }
        if start.elapsed() >= timeout {
            for p in status
                .processes
                .iter()
                .filter(|p| names.contains(&p.name) && p.state != State::Running)
            {
                eprintln!(
                    "  {}: {} ({})",
                    p.name,
                    p.state.as_str(),
                    why_not_ready(p, &status)
                );
                print_tail(home, &p.name);
            }
            for name in gone {
                if status.processes.iter().any(|p| &p.name == name) {
                    eprintln!("  {name}: still stopping");
                }
            }
            return Ok(false);
        }
        sleep(POLL);
    }
}

fn all_running(status: &FleetStatus) -> bool {
    status.processes.iter().all(|p| p.state == State::Running)
}

/// Prints a line for each process whose state or PID changed.
fn progress(status: &FleetStatus, shown: &mut HashMap<String, (State, Option<u32>)>) {
    for p in &status.processes {
        if p.role == Role::Watchdog && shown.contains_key(&p.name) {
            continue;
        }
        let now = (p.state, p.pid);
        if shown.get(&p.name) != Some(&now) {
            let pid = p.pid.map_or(String::new(), |pid| format!(" (PID {pid})"));
            let note = match (p.role, p.state) {
                (Role::Worker, State::Running) => " registered",
                (Role::Api, State::Running) => " ready",
                _ => "",
            };
            outln!("  {:<10} {}{pid}{note}", p.name, p.state.as_str());
            shown.insert(p.name.clone(), now);
        }
    }
}

fn why_not_ready(p: &ProcessStatus, status: &FleetStatus) -> String {
    let exit = p
        .last_exit
        .as_ref()
        .map(|e| format!("; last exit: {} ({})", e.reason, e.status))
        .unwrap_or_default();
    let what = match (p.role, p.pid) {
        (_, None) if p.state == State::Starting && !status.redis_healthy => {
            "waiting for Redis before starting".to_string()
        }
        (_, None) => "not running".to_string(),
        (Role::Redis, Some(_)) => format!(
            "does not answer PING{}",
            status
                .redis_error
                .as_ref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        ),
        (Role::Api, Some(_)) => "GET /readyz does not answer 200".to_string(),
        (Role::Worker, Some(_)) => "has not registered in Redis".to_string(),
        (Role::Watchdog, Some(_)) => "stopping".to_string(),
    };
    format!("{what}{exit}")
}

/// Prints the last lines of a process's log, rendered.
pub fn print_tail(home: &Home, name: &str) {
    let path = home.log_file(name);
    match super::logs::tail_lines(&path, TAIL_LINES) {
        Ok(lines) if !lines.is_empty() => {
            eprintln!("  --- last lines of {} ---", path.display());
            for line in lines {
                eprintln!("  | {}", log_line::parse(&line).text);
            }
        }
        Ok(_) => eprintln!("  ({} is empty)", path.display()),
        Err(err) => eprintln!("  (cannot read {}: {err})", path.display()),
    }
}

/// Stops what `up` started after it failed.
fn stop_after_failure(home: &Home) {
    eprintln!("fleet: stopping what was started");
    match client::request(
        &home.control_socket(),
        &Request::Down { timeout_ms: 10_000 },
        Duration::from_secs(40),
    ) {
        Ok(Response::Down(_)) => {}
        Ok(other) => eprintln!("fleet: unexpected answer to down: {other:?}"),
        Err(err) => eprintln!("fleet: cannot stop the fleet: {err:#}; run `fleet down`"),
    }
}
