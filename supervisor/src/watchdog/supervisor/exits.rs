//! A process exited: as asked (`down`, `scale`, `restart`), or on its own,
//! which is a crash unless Redis was out.

use std::time::{Duration, Instant};

use crate::control::protocol::LastExit;
use crate::durations_and_sizes::format_duration;
use crate::names::{ProcessName, Role};
use crate::watchdog::backoff::Decision;
use crate::watchdog::event::{Action, Level, Moment};
use crate::watchdog::reaper::Exit;

use super::phase::{Stop, StopWhy};
use super::{Out, Supervisor};

impl Supervisor {
    /// A child exited (from the reaper).
    pub(super) fn on_exit(&mut self, pid: u32, exit: Exit, at: Moment, out: &mut Out) {
        let found = self.slots.iter().find(|(_, s)| s.phase.pid() == Some(pid));
        let Some((name, slot)) = found else {
            let message =
                format!("reaped PID {pid} ({exit}), not a fleet member (adopted as subreaper)");
            out.push(Action::log_fleet(Level::Debug, message));
            return;
        };
        let name = name.to_string();
        let (instance, stop) = (slot.phase.instance(), slot.phase.stop());
        let uptime = instance.map_or(Duration::ZERO, |i| at.now.duration_since(i.started));
        out.push(Action::ClearPidFile {
            name: name.clone(),
            path: slot.launch.pid_file.clone(),
        });
        if slot.role == Role::Redis {
            self.redis.healthy = false;
            self.redis.since = None;
            self.redis.error = Some(format!("redis-server exited ({exit})"));
        }
        match stop {
            Some(stop) if stop.why != StopWhy::Hung => {
                self.stopped_as_asked(&name, pid, exit, stop, at, out);
            }
            _ if self.shutdown.is_some() => {
                let message = format!("{name} (PID {pid}) exited during shutdown: {exit}");
                out.push(Action::log(Level::Info, &name, Some(pid), message));
                self.slot(&name).last_exit =
                    Some(last_exit(pid, exit, at, "exited during shutdown"));
                let how = format!("exited on its own ({exit})");
                self.settle(&name, Some(pid), how, false, at, out);
            }
            _ => self.crashed(&name, pid, exit, uptime, stop.is_some(), at, out),
        }
    }

    /// The exit of a process the watchdog stopped for `down`, `scale` or
    /// `restart`.
    pub(super) fn stopped_as_asked(
        &mut self,
        name: &str,
        pid: u32,
        exit: Exit,
        stop: Stop,
        at: Moment,
        out: &mut Out,
    ) {
        let how = describe_stop(exit, stop, at.now);
        match stop.why {
            StopWhy::Down => {
                out.push(Action::log(
                    Level::Info,
                    name,
                    Some(pid),
                    format!("stopped {name} (PID {pid}): {how}"),
                ));
                self.slot(name).last_exit = Some(last_exit(pid, exit, at, "stopped by fleet down"));
                self.settle(name, Some(pid), how, stop.killed, at, out);
            }
            StopWhy::Retire => {
                out.push(Action::log(
                    Level::Info,
                    name,
                    Some(pid),
                    format!("retired {name} (PID {pid}): {how}"),
                ));
                self.slots.remove(&ProcessName::from(name));
            }
            StopWhy::Restart | StopWhy::Hung => {
                let message = format!("{name} (PID {pid}) stopped for restart: {how}");
                out.push(Action::log(Level::Info, name, Some(pid), message));
                let slot = self.slot(name);
                slot.last_exit = Some(last_exit(pid, exit, at, "restart requested"));
                slot.backoff.reset();
                self.start(name, at, out);
            }
        }
    }

    /// An exit nobody asked for (or a hung process that was killed).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn crashed(
        &mut self,
        name: &str,
        pid: u32,
        exit: Exit,
        uptime: Duration,
        hung: bool,
        at: Moment,
        out: &mut Out,
    ) {
        let hung_after = self.config.policy.hung_after();
        let excused = self.redis.outage() && !hung && self.slot(name).role != Role::Redis;
        let reason = if hung {
            format!(
                "hung: no heartbeat for over {}",
                format_duration(hung_after)
            )
        } else if excused {
            "exited while Redis was unreachable (not counted as a crash)".to_string()
        } else if exit.is_clean() {
            "exited unexpectedly".to_string()
        } else {
            "crashed".to_string()
        };
        let message = format!(
            "{name} (PID {pid}) {reason}: {exit} after {}",
            format_duration(uptime)
        );
        out.push(Action::log(Level::Warn, name, Some(pid), message));
        let slot = self.slot(name);
        slot.last_exit = Some(last_exit(pid, exit, at, &reason));
        let decision = if excused {
            Decision::RestartAfter(slot.backoff.excused(uptime))
        } else {
            slot.backoff.crashed(at.now, uptime)
        };
        self.apply_decision(name, decision, at, out);
    }
}

fn last_exit(pid: u32, exit: Exit, at: Moment, reason: &str) -> LastExit {
    LastExit {
        pid,
        status: exit.describe(),
        at_ms: at.wall_ms,
        reason: reason.to_string(),
    }
}

fn describe_stop(exit: Exit, stop: Stop, now: Instant) -> String {
    let after = format_duration(now.duration_since(stop.signalled_at));
    if stop.killed {
        format!("SIGKILL after {after} (did not stop after SIGTERM)")
    } else {
        format!("exited ({exit}) {after} after SIGTERM")
    }
}
