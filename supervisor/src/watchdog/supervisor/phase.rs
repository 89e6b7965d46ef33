//! Where one supervised process is in its life, with the data each step
//! needs and nothing else.
//!
//! ```text
//!                 ┌──────────────── Spawned(Err) ─────────────────┐
//!                 v                                               │
//! WaitingForRedis ──Redis answers──> (spawn) ──Spawned(Ok)──> Starting ──ready──> Running
//!                                      ^                        │                   │
//!      BackingOff ──until──────────────┤                        └──── exit ─────────┤
//!      Failed ──retry_at / restart─────┤                                            v
//!      Stopped ──restart───────────────┘      Stopping <──SIGTERM (restart, scale, down) or SIGKILL (hung)
//!                                                │ exit
//!                                                v
//!                      BackingOff | Failed (a crash) · spawn (restart) · Stopped (down) · gone (scale)
//! ```
//!
//! The wire form that `fleet status` shows is [`State`], one word per phase.

use std::time::Instant;

use super::heartbeat::Heartbeat;
use crate::control::protocol::State;

/// One running instance of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instance {
    pub pid: u32,
    /// When it was started (for its uptime).
    pub started: Instant,
    /// The same moment, in ms since the Unix epoch (for `fleet status`).
    pub started_wall_ms: u64,
}

/// Why the watchdog is stopping a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopWhy {
    /// `fleet restart`: start it again at once when it is gone.
    Restart,
    /// `fleet scale` down: forget the process when it is gone.
    Retire,
    /// `fleet down`.
    Down,
    /// Its heartbeat stopped: killed, restarted as a crash.
    Hung,
}

/// A stop in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stop {
    pub why: StopWhy,
    pub signalled_at: Instant,
    /// When SIGKILL follows the SIGTERM.
    pub kill_at: Instant,
    /// Whether SIGKILL was sent.
    pub killed: bool,
}

/// Where a process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Not started: it waits for the embedded Redis to answer first.
    WaitingForRedis,
    /// Started, not ready yet (Redis has not answered PING, the api not
    /// `/readyz`, the worker has not registered with its PID).
    Starting(Instance),
    /// Ready. For a worker, the newest heartbeat of this instance and when
    /// it was first seen; `None` for the api and Redis.
    Running {
        instance: Instance,
        heartbeat: Option<Heartbeat>,
    },
    /// Signalled; it leaves this phase when the reaper reports its exit.
    Stopping { instance: Instance, stop: Stop },
    /// Exited on its own; started again at `until`.
    BackingOff { until: Instant },
    /// Crashed too often; tried again at `retry_at` (never, when `None`,
    /// unless an operator restarts it).
    Failed { retry_at: Option<Instant> },
    /// Stopped on purpose (`fleet down`).
    Stopped,
}

impl Phase {
    /// The running instance, if there is one.
    pub fn instance(&self) -> Option<Instance> {
        match *self {
            Phase::Starting(instance)
            | Phase::Running { instance, .. }
            | Phase::Stopping { instance, .. } => Some(instance),
            Phase::WaitingForRedis
            | Phase::BackingOff { .. }
            | Phase::Failed { .. }
            | Phase::Stopped => None,
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.instance().map(|i| i.pid)
    }

    /// The stop in progress, if any.
    pub fn stop(&self) -> Option<Stop> {
        match *self {
            Phase::Stopping { stop, .. } => Some(stop),
            _ => None,
        }
    }

    /// Whether it is being retired by `fleet scale` (it no longer counts as
    /// one of the fleet's workers).
    pub fn retiring(&self) -> bool {
        self.stop().is_some_and(|s| s.why == StopWhy::Retire)
    }

    /// The next moment this phase has something to do on its own: a delayed
    /// start, a cool-down's end, a SIGKILL after SIGTERM.
    pub fn deadline(&self) -> Option<Instant> {
        match *self {
            Phase::BackingOff { until } => Some(until),
            Phase::Failed { retry_at } => retry_at,
            Phase::Stopping { stop, .. } if !stop.killed => Some(stop.kill_at),
            _ => None,
        }
    }

    /// The one word `fleet status` shows.
    pub fn state(&self) -> State {
        match self {
            Phase::WaitingForRedis | Phase::Starting(_) => State::Starting,
            Phase::Running { .. } => State::Running,
            Phase::Stopping { .. } => State::Stopping,
            Phase::BackingOff { .. } => State::Restarting,
            Phase::Failed { .. } => State::Failed,
            Phase::Stopped => State::Stopped,
        }
    }
}
