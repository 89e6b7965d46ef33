//! What happens to the supervisor, and what it asks for in return.
//!
//! The supervisor ([`super::supervisor`]) is a pure function of these:
//! [`Supervisor::handle`](super::supervisor::Supervisor::handle) takes one
//! [`Event`] and returns the [`Action`]s it decided on; the watchdog's
//! [`executor`](super::executor) carries them out (starting a process is the
//! one action whose result comes back, as [`Event::Spawned`]).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::child::Launch;
use super::health::HealthReport;
use super::reaper::Exit;
use crate::config::FleetConfig;
use crate::control::protocol::Response;

/// When an event happens: the monotonic clock for deadlines, the wall clock
/// for what `fleet status` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moment {
    pub now: Instant,
    /// Milliseconds since the Unix epoch.
    pub wall_ms: u64,
}

impl Moment {
    /// This moment.
    pub fn current() -> Moment {
        Moment {
            now: Instant::now(),
            wall_ms: verdict_shared::clock::wall_ms(),
        }
    }

    /// `elapsed` later.
    pub fn after(self, elapsed: Duration) -> Moment {
        Moment {
            now: self.now + elapsed,
            wall_ms: self.wall_ms + elapsed.as_millis() as u64,
        }
    }
}

/// Something the supervisor must react to.
#[derive(Debug, Clone)]
pub enum Event {
    /// The watchdog is up: start the fleet.
    Start,
    /// The result of an [`Action::Spawn`].
    Spawned {
        name: String,
        result: Result<u32, String>,
    },
    /// The reaper collected a child.
    Exited { pid: u32, exit: Exit },
    /// A deadline passed ([`Supervisor::next_deadline`](super::supervisor::Supervisor::next_deadline)).
    Tick,
    /// The health probe reported.
    Health(HealthReport),
    /// `fleet restart [TARGET]`: one process at a time (rolling) unless
    /// `all_at_once`.
    Restart {
        target: Option<String>,
        all_at_once: bool,
    },
    /// `fleet scale N`.
    Scale { workers: usize },
    /// `fleet down`, SIGTERM or SIGINT.
    Down { timeout: Duration },
}

/// How loud a log line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

/// What the supervisor asks the executor to do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Start process `name`; answer with [`Event::Spawned`].
    Spawn { name: String, launch: Launch },
    /// Send `signal` to `pid` (process `name`).
    Signal {
        name: String,
        pid: u32,
        signal: Signal,
    },
    /// The process exited: remove its PID file unless something (a fork of
    /// it) still holds the lock.
    ClearPidFile { name: String, path: PathBuf },
    /// Record the fleet's configuration (the new worker count) in `fleet.json`.
    SaveConfig {
        path: PathBuf,
        config: Box<FleetConfig>,
    },
    /// Write a line to the watchdog's log.
    Log {
        level: Level,
        /// The process it is about, if any.
        name: Option<String>,
        pid: Option<u32>,
        message: String,
    },
    /// Answer the `fleet` command that caused this event.
    Reply(Response),
}

impl Action {
    pub(crate) fn log(level: Level, name: &str, pid: Option<u32>, message: String) -> Action {
        Action::Log {
            level,
            name: Some(name.to_string()),
            pid,
            message,
        }
    }

    pub(crate) fn signal(name: &str, pid: u32, signal: Signal) -> Action {
        Action::Signal {
            name: name.to_string(),
            pid,
            signal,
        }
    }

    pub(crate) fn log_fleet(level: Level, message: impl Into<String>) -> Action {
        Action::Log {
            level,
            name: None,
            pid: None,
            message: message.into(),
        }
    }
}
