//! What the health probe saw: Redis up or down, readiness, heartbeats and
//! hangs, and the starts that waited for Redis.

use std::time::Duration;

use nix::sys::signal::Signal;

use crate::durations_and_sizes::format_duration;
use crate::names::Role;
use crate::watchdog::event::{Action, Level, Moment};
use crate::watchdog::health::HealthReport;

use super::heartbeat::Heartbeat;
use super::phase::{Phase, Stop, StopWhy};
use super::slot::Slot;
use super::{Out, Supervisor};

impl Supervisor {
    /// Applies what the health probe saw: Redis up or down, readiness,
    /// heartbeats (and hangs), and the starts that waited for Redis.
    pub(super) fn on_health(&mut self, report: &HealthReport, at: Moment, out: &mut Out) {
        self.observe_redis(report, at, out);
        let hung_after = self.config.policy.hung_after();
        let watch_hangs = self.shutdown.is_none() && self.redis.steady_for(hung_after, at.now);
        let prefix = self.config.worker_name_prefix.clone();
        let mut hung = Vec::new();
        for (name, slot) in &mut self.slots {
            let name = name.to_string();
            if let Some(pid) = mark_ready(&name, slot, report, &prefix, at) {
                let message = match slot.role {
                    Role::Worker => format!("{name} (PID {pid}) registered"),
                    _ => format!("{name} (PID {pid}) is ready"),
                };
                out.push(Action::log(Level::Info, &name, Some(pid), message));
            }
            if let Phase::Running {
                heartbeat: Some(beat),
                ..
            } = slot.phase
            {
                let unchanged = beat.unchanged_for(at.now);
                if watch_hangs && unchanged > hung_after {
                    hung.push((name, unchanged));
                }
            }
        }
        for (name, unchanged) in hung {
            self.kill_hung(&name, unchanged, at, out);
        }
        if self.redis.healthy && self.shutdown.is_none() {
            for name in self.names_where(|slot| slot.phase == Phase::WaitingForRedis) {
                self.start(&name, at, out);
            }
        }
    }

    pub(super) fn observe_redis(&mut self, report: &HealthReport, at: Moment, out: &mut Out) {
        let redis = &mut self.redis;
        if report.redis_ok {
            if !redis.healthy {
                out.push(Action::log_fleet(Level::Info, "Redis answers"));
                redis.since = Some(at.now);
            }
            redis.healthy = true;
            redis.ever_healthy = true;
            redis.error = None;
        } else {
            if redis.healthy {
                let error = report.redis_error.as_deref().unwrap_or("?");
                out.push(Action::log_fleet(
                    Level::Warn,
                    format!("Redis does not answer: {error}"),
                ));
            }
            redis.healthy = false;
            redis.since = None;
            redis.error = report.redis_error.clone();
        }
    }

    /// Kills a worker whose heartbeat has not changed for `unchanged`.
    pub(super) fn kill_hung(&mut self, name: &str, unchanged: Duration, at: Moment, out: &mut Out) {
        let slot = self.slot(name);
        let Some(instance) = slot.phase.instance() else {
            return;
        };
        let pid = instance.pid;
        let message = format!(
            "{name} (PID {pid}) is hung: its heartbeat has not changed for {}; SIGKILL",
            format_duration(unchanged)
        );
        out.push(Action::log(Level::Warn, name, Some(pid), message));
        out.push(Action::signal(name, pid, Signal::SIGKILL));
        slot.phase = Phase::Stopping {
            instance,
            stop: Stop {
                why: StopWhy::Hung,
                signalled_at: at.now,
                kill_at: at.now,
                killed: true,
            },
        };
    }
}

/// Moves a starting process that the report shows ready to `Running` and
/// returns its PID; keeps a worker's newest heartbeat, and when it was first
/// seen (a record that did not change keeps its first sighting).
fn mark_ready(
    name: &str,
    slot: &mut Slot,
    report: &HealthReport,
    prefix: &str,
    at: Moment,
) -> Option<u32> {
    let (instance, heartbeat) = match slot.phase {
        Phase::Starting(instance) => (instance, None),
        Phase::Running {
            instance,
            heartbeat,
        } => (instance, heartbeat),
        _ => return None,
    };
    let ready = match slot.role {
        Role::Redis => report.redis_ok,
        Role::Api => report.api_ready,
        Role::Worker => {
            let record = report
                .workers
                .get(&format!("{prefix}{name}"))
                .filter(|record| record.pid == instance.pid);
            let record = record?;
            if !record.instance.is_empty() {
                slot.registered_instance = Some(record.instance.clone());
            }
            let was_starting = matches!(slot.phase, Phase::Starting(_));
            slot.phase = Phase::Running {
                instance,
                heartbeat: Some(Heartbeat::observe(heartbeat, record, at.now)),
            };
            return was_starting.then_some(instance.pid);
        }
        Role::Watchdog => false,
    };
    if ready && matches!(slot.phase, Phase::Starting(_)) {
        slot.phase = Phase::Running {
            instance,
            heartbeat: None,
        };
        return Some(instance.pid);
    }
    None
}
