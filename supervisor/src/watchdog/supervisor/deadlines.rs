//! Deadlines: delayed starts, the end of a cool-down, SIGKILL after a stop
//! timeout.

use std::time::Instant;

use nix::sys::signal::Signal;

use crate::durations_and_sizes::format_duration;
use crate::watchdog::event::{Action, Level, Moment};

use super::phase::Phase;
use super::{Out, Supervisor};

impl Supervisor {
    /// Deadlines: delayed starts, cool-downs, SIGKILL after a stop timeout.
    pub(super) fn on_tick(&mut self, at: Moment, out: &mut Out) {
        if self.shutdown.is_none() {
            let due = self.names_where(|slot| {
                matches!(slot.phase, Phase::BackingOff { .. } | Phase::Failed { .. })
                    && slot.phase.deadline().is_some_and(|t| t <= at.now)
            });
            for name in due {
                let slot = self.slot(&name);
                if let Phase::Failed { .. } = slot.phase {
                    let message =
                        format!("{name} was marked failed: its cool-down is over, trying it again");
                    out.push(Action::log(Level::Warn, &name, None, message));
                    slot.backoff.reset();
                    self.cooldown_retries += 1;
                }
                self.start(&name, at, out);
            }
        }
        for (name, slot) in &mut self.slots {
            let Phase::Stopping { instance, stop } = &mut slot.phase else {
                continue;
            };
            if stop.killed || stop.kill_at > at.now {
                continue;
            }
            let (pid, after) = (
                instance.pid,
                format_duration(at.now.duration_since(stop.signalled_at)),
            );
            let message =
                format!("{name} (PID {pid}) did not stop within {after} of SIGTERM: SIGKILL");
            out.push(Action::log(
                Level::Warn,
                &name.to_string(),
                Some(pid),
                message,
            ));
            out.push(Action::signal(name.as_str(), pid, Signal::SIGKILL));
            stop.killed = true;
        }
        self.advance_shutdown(at, out);
    }

    /// The next moment [`Event::Tick`] has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        let shutting_down = self.shutdown.is_some();
        self.slots
            .values()
            .filter(|slot| !shutting_down || matches!(slot.phase, Phase::Stopping { .. }))
            .filter_map(|slot| slot.phase.deadline())
            .min()
    }
}
