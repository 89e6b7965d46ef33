//! `fleet scale N`: more or fewer workers in a running fleet. New workers get
//! the lowest free numbers; surplus workers (the highest-numbered) get
//! SIGTERM and finish the job in hand. Redis, the api and the other workers
//! are not touched.
//!
//! Before asking, it weighs the count against the machine: N times the
//! memory of the largest running worker (its RSS) above the machine's memory
//! is refused unless `--force`; more workers than cores is allowed with a
//! warning (each worker judges on one core); 0 says that jobs will wait.

use std::collections::HashMap;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use verdict_shared::outln;

use verdict_supervisor::control::client;
use verdict_supervisor::control::protocol::{Request, Response};
use verdict_supervisor::durations_and_sizes::{format_size, parse_duration};
use verdict_supervisor::home::Home;
use verdict_supervisor::names::Role;
use verdict_supervisor::procfs;

use super::{running_watchdog, wait};

#[derive(Debug, Clone, clap::Args)]
pub struct ScaleArgs {
    /// The number of workers to run from now on
    pub workers: usize,
    /// Scale even when N workers would not fit in this machine's memory
    #[arg(long)]
    pub force: bool,
    /// How long to wait for new workers to register and surplus ones to stop
    #[arg(long, default_value = "60s", value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Duration,
}

pub fn main(home_flag: Option<&Path>, args: ScaleArgs) -> anyhow::Result<ExitCode> {
    let home = Home::resolve(home_flag)?;
    running_watchdog(&home)?;
    for warning in weigh(&home, args.workers, args.force)? {
        eprintln!("fleet: {warning}");
    }
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
        outln!("already {} workers", args.workers);
        return Ok(ExitCode::SUCCESS);
    }
    if !started.is_empty() {
        outln!("starting {}", started.join(", "));
    }
    if !stopping.is_empty() {
        outln!("stopping {}", stopping.join(", "));
    }
    if wait::until_running(&home, &started, &HashMap::new(), &stopping, args.timeout)? {
        outln!("scaled to {} workers", args.workers);
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("fleet: scaling did not finish within the timeout (see above; `fleet status`)");
        Ok(ExitCode::FAILURE)
    }
}

/// What one worker holds and what the machine has, for [`capacity`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Machine {
    /// The RSS of the largest running worker, if one runs.
    worker_rss: Option<u64>,
    memory: Option<u64>,
    cores: usize,
}

/// Reads the running workers' memory and the machine's, then judges `workers`.
fn weigh(home: &Home, workers: usize, force: bool) -> anyhow::Result<Vec<String>> {
    let status = super::fetch_status(home)?;
    let worker_rss = status
        .processes
        .iter()
        .filter(|p| p.role == Role::Worker)
        .filter_map(|p| procfs::usage(p.pid?))
        .map(|usage| usage.rss_bytes)
        .max();
    let machine = Machine {
        worker_rss,
        memory: procfs::memory_total(),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    capacity(workers, machine, force).map_err(anyhow::Error::msg)
}

/// The warnings for running `workers` workers on `machine`, or why not.
fn capacity(workers: usize, machine: Machine, force: bool) -> Result<Vec<String>, String> {
    let mut warnings = Vec::new();
    if workers == 0 {
        warnings.push(
            "no worker will run: queued jobs wait (and new ones queue) until `fleet scale N` \
             with N above 0"
                .to_string(),
        );
    }
    if let (Some(rss), Some(memory)) = (machine.worker_rss, machine.memory) {
        let needed = rss.saturating_mul(workers as u64);
        if needed > memory {
            let message = format!(
                "{workers} workers would need about {} (a running worker holds {}) and this \
                 machine has {}",
                format_size(needed),
                format_size(rss),
                format_size(memory)
            );
            if !force {
                return Err(format!(
                    "{message}: refused (choose fewer, or --force if you know better)"
                ));
            }
            warnings.push(format!("{message}: going ahead (--force)"));
        }
    }
    if workers > machine.cores {
        warnings.push(format!(
            "{workers} workers on {} cores: each judges on one core, so more than the cores \
             adds memory, not speed",
            machine.cores
        ));
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    #[test]
    fn weighs_memory_cores_and_zero() {
        let machine = Machine {
            worker_rss: Some(GIB / 4),
            memory: Some(24 * GIB),
            cores: 2,
        };
        assert_eq!(capacity(2, machine, false), Ok(vec![]));
        let warned = capacity(8, machine, false).unwrap();
        assert!(warned[0].contains("8 workers on 2 cores"), "{warned:?}");
        let refused = capacity(100, machine, false).unwrap_err();
        assert!(
            refused.contains("100 workers would need about 25G"),
            "{refused}"
        );
        assert!(refused.contains("--force"), "{refused}");
        let forced = capacity(100, machine, true).unwrap();
        assert!(forced[0].contains("going ahead"), "{forced:?}");
        assert!(capacity(0, machine, false).unwrap()[0].contains("queued jobs wait"));
        // No worker running to measure: only the core count can be judged.
        let unknown = Machine {
            worker_rss: None,
            ..machine
        };
        assert_eq!(capacity(100, unknown, false).unwrap().len(), 1);
    }
}
