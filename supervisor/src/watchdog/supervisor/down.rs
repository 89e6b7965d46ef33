//! `fleet down`: the api and workers stop first, Redis once they
//! are gone (so a worker can still deliver the job in hand), and a record of
//! how each process ended.

use std::time::Duration;

use crate::control::protocol::{DownReport, Stopped};

use super::phase::{Phase, StopWhy};
use super::{Out, Supervisor};
use crate::durations_and_sizes::format_duration;
use crate::names::Role;
use crate::watchdog::event::{Action, Level, Moment};

/// Which processes are being stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The api and the workers.
    Apps,
    /// Redis, once nothing else runs.
    Redis,
    /// Nothing runs.
    Done,
}

#[derive(Debug)]
pub struct Shutdown {
    /// SIGKILL follows SIGTERM after this long.
    pub timeout: Duration,
    pub stage: Stage,
    /// How each process ended, in the order they did.
    stopped: Vec<Stopped>,
}

impl Shutdown {
    pub fn new(timeout: Duration) -> Shutdown {
        Shutdown {
            timeout,
            stage: Stage::Apps,
            stopped: Vec::new(),
        }
    }

    /// Records how one process ended.
    pub fn record(&mut self, entry: Stopped) {
        self.stopped.push(entry);
    }

    pub fn report(&self) -> DownReport {
        DownReport {
            stopped: self.stopped.clone(),
        }
    }
}

impl Supervisor {
    /// `fleet down`: SIGTERM to the api and workers now, Redis once they are
    /// gone, SIGKILL to whatever outlives `timeout`.
    pub(super) fn begin_down(&mut self, timeout: Duration, at: Moment, out: &mut Out) {
        if self.shutdown.is_some() {
            return;
        }
        let message = format!("shutting down (SIGKILL after {})", format_duration(timeout));
        out.push(Action::log_fleet(Level::Info, message));
        self.shutdown = Some(Shutdown::new(timeout));
        for name in self.names_where(|slot| slot.role != Role::Redis) {
            self.stop_for_down(&name, at, out);
        }
        self.advance_shutdown(at, out);
    }

    /// One process's part in `down`: a running one is stopped (a stop under
    /// way becomes a stop for `down`), any other is stopped at once.
    pub(super) fn stop_for_down(&mut self, name: &str, at: Moment, out: &mut Out) {
        let timeout = self.shutdown.as_ref().map_or(Duration::ZERO, |s| s.timeout);
        let slot = self.slot(name);
        match &mut slot.phase {
            Phase::Stopping { stop, .. } => stop.why = StopWhy::Down,
            Phase::Starting(_) | Phase::Running { .. } => {
                self.stop(name, StopWhy::Down, timeout, at, out);
            }
            phase => {
                let how = format!("was not running ({})", phase.state().as_str());
                self.settle(name, None, how, false, at, out);
            }
        }
    }

    /// `name` is stopped for good: recorded in `down`'s report.
    pub(super) fn settle(
        &mut self,
        name: &str,
        pid: Option<u32>,
        how: String,
        killed: bool,
        at: Moment,
        out: &mut Out,
    ) {
        self.slot(name).phase = Phase::Stopped;
        if let Some(shutdown) = &mut self.shutdown {
            shutdown.record(Stopped {
                name: name.to_string(),
                pid,
                how,
                killed,
            });
        }
        if pid.is_some() {
            self.advance_shutdown(at, out);
        }
    }

    /// Moves `down` on: Redis once the apps are gone, done once all are.
    pub(super) fn advance_shutdown(&mut self, at: Moment, out: &mut Out) {
        let Some(stage) = self.shutdown.as_ref().map(|s| s.stage) else {
            return;
        };
        let running = |redis: bool| {
            self.slots
                .values()
                .any(|slot| (redis || slot.role != Role::Redis) && slot.phase.instance().is_some())
        };
        if stage == Stage::Apps && !running(false) {
            self.set_stage(Stage::Redis);
            for name in self.names_where(|slot| slot.role == Role::Redis) {
                self.stop_for_down(&name, at, out);
            }
        }
        let stage = self.shutdown.as_ref().map(|s| s.stage);
        let running = self
            .slots
            .values()
            .any(|slot| slot.phase.instance().is_some());
        if stage == Some(Stage::Redis) && !running {
            self.set_stage(Stage::Done);
            out.push(Action::log_fleet(Level::Info, "every process has stopped"));
        }
    }

    pub(super) fn set_stage(&mut self, stage: Stage) {
        if let Some(shutdown) = &mut self.shutdown {
            shutdown.stage = stage;
        }
    }
}
