//! The requests and responses of the control channel.

use serde::{Deserialize, Serialize};

use crate::names::Role;
use crate::watchdog::reaper::ExitStatusInfo;

/// What a command asks the watchdog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "lowercase")]
pub enum Request {
    /// Every process's state.
    Status,
    /// Restart a role (`api`, `redis`, `worker`) or a name (`worker-1`); all of
    /// the api and the workers when `target` is `None`.
    Restart {
        target: Option<String>,
        /// Stop them all together instead of one at a time.
        #[serde(default)]
        all_at_once: bool,
    },
    /// Run `workers` workers from now on.
    Scale { workers: usize },
    /// Stop everything and exit; the response comes when all is stopped.
    Down { timeout_ms: u64 },
}

/// The watchdog's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Response {
    Status(FleetStatus),
    Restarting {
        names: Vec<String>,
    },
    Scaled {
        workers: usize,
        started: Vec<String>,
        stopping: Vec<String>,
    },
    Down(DownReport),
    Error {
        message: String,
    },
}

/// A process's lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Started (or waiting for Redis before starting), not ready yet.
    Starting,
    /// Ready: Redis answers PING, the api answers `/readyz`, a worker has
    /// registered in Redis with its PID.
    Running,
    /// Exited; waiting out its backoff before the next start.
    Restarting,
    /// Crashed too often: the watchdog stopped restarting it.
    Failed,
    /// Being stopped (SIGTERM sent) or stopped on purpose.
    Stopping,
    Stopped,
}

impl State {
    pub fn as_str(&self) -> &'static str {
        match self {
            State::Starting => "starting",
            State::Running => "running",
            State::Restarting => "restarting",
            State::Failed => "failed",
            State::Stopping => "stopping",
            State::Stopped => "stopped",
        }
    }
}

/// The last exit of a process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastExit {
    pub pid: u32,
    #[serde(flatten)]
    pub status: ExitStatusInfo,
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// Why: `crashed`, `hung`, `restart requested`, `stopped`, `redis outage`...
    pub reason: String,
}

/// One row of `fleet status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessStatus {
    pub role: Role,
    pub name: String,
    pub pid: Option<u32>,
    pub state: State,
    /// When the current instance started, ms since the epoch.
    pub started_ms: Option<u64>,
    pub restarts: u32,
    pub last_exit: Option<LastExit>,
    /// For workers: the name it registers under in Redis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registered_as: Option<String>,
    /// For a failed process: when it is tried again (ms since the epoch);
    /// none when no cool-down is set (`--failed-cooldown 0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_at_ms: Option<u64>,
    /// Times in a row it was marked failed (its cool-down doubles each time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_times: Option<u32>,
    /// How long the current instance has run, on the watchdog's monotonic
    /// clock (a clock step on the host does not change it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uptime_ms: Option<u64>,
    // The fields below are filled in by `fleet status` itself, from /proc and
    // Redis, at the moment it asks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rss_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jobs_done: Option<u64>,
    /// What the PID file says: `locked` (alive), `stale`, `absent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_file: Option<String>,
}

impl ProcessStatus {
    /// A row with nothing known yet but who it is.
    pub fn empty(role: Role, name: &str) -> ProcessStatus {
        ProcessStatus {
            role,
            name: name.to_string(),
            pid: None,
            state: State::Stopped,
            started_ms: None,
            restarts: 0,
            last_exit: None,
            registered_as: None,
            retry_at_ms: None,
            failed_times: None,
            uptime_ms: None,
            rss_bytes: None,
            cpu_ms: None,
            jobs_done: None,
            pid_file: None,
        }
    }
}

/// The watchdog's whole view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetStatus {
    pub processes: Vec<ProcessStatus>,
    /// Failed processes the watchdog tried again after their cool-down,
    /// since it started: a counter for monitoring.
    #[serde(default)]
    pub cooldown_retries: u64,
    /// Whether the watchdog's last probe reached Redis.
    pub redis_healthy: bool,
    pub redis_error: Option<String>,
    /// Whether a `down` is in progress.
    pub shutting_down: bool,
}

/// How one process was stopped by `down`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stopped {
    pub name: String,
    pub pid: Option<u32>,
    /// `exited (code 0) 1.2s after SIGTERM`, `SIGKILL after 30s`, `was not running`.
    pub how: String,
    /// Whether it had to be killed.
    pub killed: bool,
}

/// The answer to `down`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownReport {
    pub stopped: Vec<Stopped>,
}
