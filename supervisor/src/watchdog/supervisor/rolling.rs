//! A rolling restart (`fleet restart`, the default): one running process at
//! a time is stopped and started again, and the next only once the new
//! instance is ready, so that a fleet of workers keeps judging throughout
//! (`--all-at-once` stops them all together).

use std::collections::VecDeque;

use crate::names::ProcessName;
use crate::watchdog::event::{Action, Level, Moment};

use super::phase::{Phase, StopWhy};
use super::{Out, Supervisor};

/// The processes still to restart, in order, and the one restarting now.
#[derive(Debug, Default)]
pub(super) struct Rolling {
    waiting: VecDeque<String>,
    current: Option<String>,
}

impl Rolling {
    /// Adds `name` to the end of the line (once).
    pub(super) fn push(&mut self, name: String) {
        if self.current.as_ref() != Some(&name) && !self.waiting.contains(&name) {
            self.waiting.push_back(name);
        }
    }

    pub(super) fn clear(&mut self) {
        self.waiting.clear();
        self.current = None;
    }
}

/// Whether a process being restarted is through: ready again, or out of
/// the running (failed, stopped, scaled away). A crash of the new instance
/// that will be retried (backing off) is not through yet.
fn through(phase: Option<Phase>) -> bool {
    match phase {
        None => true,
        Some(phase) => matches!(
            phase,
            Phase::Running { .. } | Phase::Failed { .. } | Phase::Stopped
        ),
    }
}

impl Supervisor {
    /// Moves the rolling restart on: once the current process is through,
    /// stops the next one that is still running.
    pub(super) fn advance_rolling(&mut self, at: Moment, out: &mut Out) {
        if self.shutdown.is_some() {
            self.rolling.clear();
            return;
        }
        if let Some(current) = &self.rolling.current {
            if !through(self.phase(current)) {
                return;
            }
            self.rolling.current = None;
        }
        while let Some(name) = self.rolling.waiting.pop_front() {
            let running = self
                .slots
                .get(&ProcessName::from(name.as_str()))
                .is_some_and(|slot| {
                    matches!(slot.phase, Phase::Starting(_) | Phase::Running { .. })
                });
            if !running {
                continue;
            }
            let left = self.rolling.waiting.len();
            let message = format!("rolling restart: {name} now ({left} after it)");
            out.push(Action::log(Level::Info, &name, None, message));
            let timeout = self.config.policy.stop_timeout();
            self.stop(&name, StopWhy::Restart, timeout, at, out);
            self.rolling.current = Some(name);
            return;
        }
    }
}
