//! One supervised process: how to start it, where it is ([`Phase`]), and its
//! history (starts, last exit, crash streak).

use crate::config::Policy;
use crate::control::protocol::{LastExit, ProcessStatus};
use crate::names::Role;

use super::phase::Phase;
use crate::watchdog::backoff::Backoff;
use crate::watchdog::child::Launch;
use crate::watchdog::event::Moment;

#[derive(Debug)]
pub struct Slot {
    pub role: Role,
    pub launch: Launch,
    pub phase: Phase,
    /// Instances started so far (the first start is not a restart).
    pub starts: u32,
    pub last_exit: Option<LastExit>,
    /// Crash streak and window, for the delay of the next start.
    pub backoff: Backoff,
    /// Times in a row it was marked failed (its cool-down doubles each time).
    pub failed_times: u32,
    /// For a worker: the instance token of the newest process seen
    /// registered under its name (from its record). Once that process is
    /// gone, the next one is told it was its predecessor, and takes its
    /// record (and pending jobs) over at once.
    pub registered_instance: Option<String>,
}

impl Slot {
    /// A process that has not started: it waits for the fleet's start.
    pub fn new(role: Role, launch: Launch, policy: &Policy) -> Slot {
        Slot {
            role,
            launch,
            phase: Phase::WaitingForRedis,
            starts: 0,
            last_exit: None,
            backoff: Backoff::new(policy.crash_limit, policy.crash_window())
                .with_max_delay(policy.max_restart_delay()),
            failed_times: 0,
            registered_instance: None,
        }
    }

    pub fn restarts(&self) -> u32 {
        self.starts.saturating_sub(1)
    }

    /// Its row of `fleet status`, as the watchdog knows it at `at`.
    pub fn status(&self, name: &str, registered_as: Option<String>, at: Moment) -> ProcessStatus {
        let retry_at_ms = match self.phase {
            Phase::Failed {
                retry_at: Some(retry_at),
            } => Some(at.wall_ms + retry_at.saturating_duration_since(at.now).as_millis() as u64),
            _ => None,
        };
        ProcessStatus {
            role: self.role,
            name: name.to_string(),
            pid: self.phase.pid(),
            state: self.phase.state(),
            started_ms: self.phase.instance().map(|i| i.started_wall_ms),
            restarts: self.restarts(),
            last_exit: self.last_exit.clone(),
            registered_as,
            retry_at_ms,
            failed_times: (self.failed_times > 0).then_some(self.failed_times),
            // On the watchdog's monotonic clock: a clock step on the host
            // does not change it.
            uptime_ms: self
                .phase
                .instance()
                .map(|i| at.now.saturating_duration_since(i.started).as_millis() as u64),
            rss_bytes: None,
            cpu_ms: None,
            jobs_done: None,
            pid_file: None,
        }
    }
}
