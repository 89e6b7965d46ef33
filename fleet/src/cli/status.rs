//! `fleet status`: one row per process, then the queue.
//!
//! The watchdog says what it knows (state, PID, restarts, last exit); this
//! command adds, at the moment it runs, what `/proc` says (memory, CPU), what
//! each PID file's lock says (so a row never shows a PID that does not hold
//! its file), and what Redis says (jobs done per worker, the queue).
//!
//! Exit code: 0 when every process is running and Redis answers; 1 when
//! something is not; 3 when no fleet is running at all (as LSB init scripts
//! do for "not running").

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use serde::Serialize;
use verdict_shared::{out, outln};
use verdict_supervisor::pidfile::{self, Probe};

use crate::queue_stats::{self, QueueFigures};
use verdict_shared::clock::wall_ms;
use verdict_supervisor::config::FleetConfig;
use verdict_supervisor::control::protocol::{ProcessStatus, State};
use verdict_supervisor::durations_and_sizes::{format_duration, format_size};
use verdict_supervisor::home::Home;
use verdict_supervisor::names::Role;
use verdict_supervisor::procfs;

use super::fetch_status;

#[derive(Debug, Clone, clap::Args)]
pub struct StatusArgs {
    /// Print JSON for scripts: {"processes": [...], "queue": {...}}
    #[arg(long)]
    pub json: bool,
}

/// The queue part of the status.
#[derive(Debug, Clone, Serialize)]
pub struct QueueSection {
    /// Whether Redis answered this command.
    pub redis_ok: bool,
    pub redis_error: Option<String>,
    /// Where Redis is (password hidden).
    pub redis: String,
    #[serde(flatten)]
    pub stats: Option<QueueFigures>,
}

/// The whole of `status --json`.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub home: String,
    pub running: bool,
    pub processes: Vec<ProcessStatus>,
    pub queue: Option<QueueSection>,
    /// Failed processes the watchdog tried again after their cool-down.
    pub cooldown_retries: u64,
    /// Problems found while cross-checking (PID file disagreements).
    pub warnings: Vec<String>,
}

pub fn main(home_flag: Option<&Path>, args: StatusArgs) -> anyhow::Result<ExitCode> {
    let home = Home::resolve(home_flag)?;
    let report = collect(&home)?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        out!("{}", render(&report));
    }
    Ok(ExitCode::from(exit_code(&report)))
}

/// 0 all running, 1 something not, 3 no fleet.
pub fn exit_code(report: &StatusReport) -> u8 {
    if !report.running {
        return 3;
    }
    let all_running = report.processes.iter().all(|p| p.state == State::Running);
    let redis_ok = report.queue.as_ref().is_some_and(|q| q.redis_ok);
    if all_running && redis_ok && report.warnings.is_empty() {
        0
    } else {
        1
    }
}

/// Gathers the report.
pub fn collect(home: &Home) -> anyhow::Result<StatusReport> {
    let mut report = StatusReport {
        home: home.root().display().to_string(),
        running: false,
        processes: Vec::new(),
        queue: None,
        cooldown_retries: 0,
        warnings: Vec::new(),
    };
    let watchdog_running = matches!(
        pidfile::probe(&home.pid_file("watchdog"))?,
        Probe::Running { .. }
    );
    if !watchdog_running {
        // No watchdog: report any PID file that is still locked (orphans).
        for name in home.pid_file_names()? {
            if let Probe::Running { pid } = pidfile::probe(&home.pid_file(&name))? {
                report.warnings.push(format!(
                    "{name} (PID {}) is running without a watchdog: `fleet down` stops it, `fleet up` replaces it",
                    pid.map_or_else(|| "unknown".into(), |p| p.to_string())
                ));
            }
        }
        return Ok(report);
    }
    let status = fetch_status(home)?;
    report.running = true;
    report.cooldown_retries = status.cooldown_retries;
    let now_ms = wall_ms();
    let mut processes = status.processes;
    for p in &mut processes {
        let probe = pidfile::probe(&home.pid_file(&p.name))?;
        p.pid_file = Some(
            match probe {
                Probe::Running { .. } => "locked",
                Probe::Stale { .. } => "stale",
                Probe::Absent => "absent",
            }
            .into(),
        );
        if let (Some(pid), Probe::Running { pid: file_pid }) = (p.pid, probe)
            && file_pid != Some(pid)
        {
            report.warnings.push(format!(
                "{}: the watchdog says PID {pid}, its PID file says {file_pid:?}",
                p.name
            ));
        }
        if let Some(pid) = p.pid {
            if p.state != State::Stopping && !matches!(probe, Probe::Running { .. }) {
                report.warnings.push(format!(
                    "{}: PID {pid} does not hold run/{}.pid",
                    p.name, p.name
                ));
            }
            if let Some(usage) = procfs::usage(pid) {
                p.rss_bytes = Some(usage.rss_bytes);
                p.cpu_ms = Some(usage.cpu.as_millis() as u64);
            }
            // The watchdog's monotonic figure; this clock against the start
            // time only from a watchdog older than that field.
            if p.uptime_ms.is_none() {
                p.uptime_ms = p.started_ms.map(|s| now_ms.saturating_sub(s));
            }
        }
    }
    let config = FleetConfig::load(&home.config_file())?;
    let worker_keys: Vec<String> = processes
        .iter()
        .filter_map(|p| p.registered_as.clone())
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let queue = runtime.block_on(queue_stats::read(
        config.redis(),
        &worker_keys,
        Duration::from_secs(2),
    ));
    // The watchdog stops asking the api once it is ready; ask now.
    if processes
        .iter()
        .any(|p| p.role == Role::Api && p.state == State::Running)
        && let Err(why) = runtime.block_on(api_ready(&config.api_url()))
    {
        report.warnings.push(format!("api: {why}"));
    }
    let redis_name = config.redis_url_redacted();
    report.queue = Some(match queue {
        Ok((stats, records)) => {
            for (key, record) in worker_keys.iter().zip(records) {
                if let (Some(p), Some(record)) = (
                    processes
                        .iter_mut()
                        .find(|p| p.registered_as.as_ref() == Some(key)),
                    record,
                ) && p.pid == Some(record.pid)
                {
                    p.jobs_done = Some(record.jobs_done);
                }
            }
            QueueSection {
                redis_ok: true,
                redis_error: None,
                redis: redis_name,
                stats: Some(stats),
            }
        }
        Err(err) => QueueSection {
            redis_ok: false,
            redis_error: Some(err),
            redis: redis_name,
            stats: None,
        },
    });
    report.processes = processes;
    Ok(report)
}

/// The table.
pub fn render(report: &StatusReport) -> String {
    let mut out = String::new();
    if !report.running {
        out.push_str(&format!(
            "no fleet is running in {} (start one with `fleet up`; a fleet in another home: \
             `fleet --home DIR status`, or set VERDICT_HOME)\n",
            report.home
        ));
        for warning in &report.warnings {
            out.push_str(&format!("warning: {warning}\n"));
        }
        return out;
    }
    let now = wall_ms();
    let header = [
        "ROLE",
        "NAME",
        "PID",
        "STATE",
        "UPTIME",
        "RSS",
        "CPU",
        "RESTARTS",
        "LAST EXIT",
        "JOBS",
    ];
    let mut rows: Vec<[String; 10]> = vec![header.map(str::to_string)];
    for p in &report.processes {
        let dash = || "-".to_string();
        let last_exit = p.last_exit.as_ref().map_or_else(dash, |e| {
            format!(
                "{} {} ago ({})",
                e.status,
                format_duration(Duration::from_millis(now.saturating_sub(e.at_ms))),
                e.reason
            )
        });
        rows.push([
            p.role.to_string(),
            p.name.clone(),
            p.pid.map_or_else(dash, |pid| pid.to_string()),
            match p.retry_at_ms {
                Some(at) => format!(
                    "{} (retry in {})",
                    p.state.as_str(),
                    format_duration(Duration::from_millis(at.saturating_sub(now)))
                ),
                None => p.state.as_str().to_string(),
            },
            p.uptime_ms
                .map_or_else(dash, |ms| format_duration(Duration::from_millis(ms))),
            p.rss_bytes.map_or_else(dash, format_size),
            p.cpu_ms
                .map_or_else(dash, |ms| format_duration(Duration::from_millis(ms))),
            p.restarts.to_string(),
            last_exit,
            p.jobs_done.map_or_else(dash, |n| n.to_string()),
        ]);
    }
    let mut widths = [0usize; 10];
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    for row in &rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out.push('\n');
    match &report.queue {
        Some(QueueSection {
            redis_ok: true,
            stats: Some(s),
            redis,
            ..
        }) => {
            out.push_str(&format!(
                "queue: {} waiting, {} in flight, {} done, {} failed ({} submitted)\n",
                s.counters.stream_len.saturating_sub(s.in_flight),
                s.in_flight,
                s.counters.done,
                s.counters.failed,
                s.counters.submitted
            ));
            // The rarer events, only when they happened.
            let extra: Vec<String> = [
                (s.counters.cancelled, "cancelled"),
                (s.counters.dead_lettered, "dead-lettered"),
                (s.dead, "in the dead-letter stream now (`fleet dead list`)"),
                (s.counters.reclaimed, "reclaimed from silent workers"),
                (s.counters.late_finishes, "ran twice (late results refused)"),
                (s.counters.rejected_full, "refused: queue full"),
            ]
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, what)| format!("{n} {what}"))
            .collect();
            if !extra.is_empty() {
                out.push_str(&format!("       {}\n", extra.join(", ")));
            }
            out.push_str(&format!("redis: ok ({redis})\n"));
        }
        Some(q) => out.push_str(&format!(
            "queue: unknown\nredis: NOT ANSWERING ({}): {}\n",
            q.redis,
            q.redis_error.as_deref().unwrap_or("?")
        )),
        None => {}
    }
    for warning in &report.warnings {
        out.push_str(&format!("warning: {warning}\n"));
    }
    out
}

/// `GET /readyz`, with a short timeout.
async fn api_ready(api_url: &str) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())?;
    verdict_supervisor::watchdog::health::api_ready(&client, api_url).await
}
