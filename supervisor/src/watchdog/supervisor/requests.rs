//! The operator's requests: `fleet restart` and `fleet scale`, and the
//! graceful stop both use.

use std::time::Duration;

use nix::sys::signal::Signal;

use crate::names::{self, ProcessName, Role};
use crate::watchdog::event::{Action, Level, Moment};

use super::phase::{Phase, Stop, StopWhy};
use super::{MAX_WORKERS, Out, Supervisor};

impl Supervisor {
    /// SIGTERM to `name` (SIGKILL after `timeout`), unless a stop for the
    /// same reason, or for `down`, is already under way.
    pub(super) fn stop(
        &mut self,
        name: &str,
        why: StopWhy,
        timeout: Duration,
        at: Moment,
        out: &mut Out,
    ) {
        let slot = self.slot(name);
        let Some(instance) = slot.phase.instance() else {
            return;
        };
        let previous = slot.phase.stop();
        if previous.is_some_and(|s| s.why == StopWhy::Down || s.why == why) {
            return;
        }
        let pid = instance.pid;
        out.push(Action::log(
            Level::Info,
            name,
            Some(pid),
            format!("SIGTERM to {name} (PID {pid})"),
        ));
        out.push(Action::signal(name, pid, Signal::SIGTERM));
        slot.phase = Phase::Stopping {
            instance,
            stop: Stop {
                why,
                signalled_at: at.now,
                kill_at: at.now + timeout,
                killed: previous.is_some_and(|s| s.killed),
            },
        };
    }

    /// `fleet restart [TARGET]`: the api and every worker when `target` is
    /// `None`. A running process is stopped gracefully and started again at
    /// once; a failed or backing-off one is started now. Resets crash history.
    pub(super) fn restart(
        &mut self,
        target: Option<&str>,
        all_at_once: bool,
        at: Moment,
        out: &mut Out,
    ) -> Result<Vec<String>, String> {
        if self.shutdown.is_some() {
            return Err("the fleet is shutting down".into());
        }
        let chosen = match target {
            None => self.names_where(|slot| slot.role != Role::Redis),
            Some(target) => self.named(target)?,
        };
        let timeout = self.config.policy.stop_timeout();
        let mut names = Vec::new();
        for name in chosen {
            let slot = self.slot(&name);
            if slot.phase.retiring() {
                continue;
            }
            slot.backoff.reset();
            // A person stepped in: the failed streak and any cool-down end.
            slot.failed_times = 0;
            names.push(name.clone());
            match slot.phase {
                Phase::Starting(_) | Phase::Running { .. } if !all_at_once => {
                    self.rolling.push(name.clone());
                }
                Phase::Starting(_) | Phase::Running { .. } | Phase::Stopping { .. } => {
                    self.stop(&name, StopWhy::Restart, timeout, at, out);
                }
                Phase::WaitingForRedis => {}
                Phase::BackingOff { .. } | Phase::Failed { .. } | Phase::Stopped => {
                    let was = slot.phase.state().as_str();
                    out.push(Action::log(
                        Level::Info,
                        &name,
                        None,
                        format!("starting {name} on request (was {was})"),
                    ));
                    self.start(&name, at, out);
                }
            }
        }
        Ok(names)
    }

    /// The processes `target` names: a process name or a role.
    pub(super) fn named(&self, target: &str) -> Result<Vec<String>, String> {
        let role = target.parse::<Role>().ok();
        let found = self
            .slots
            .iter()
            .filter(|(name, slot)| name.as_str() == target || Some(slot.role) == role)
            .map(|(name, _)| name.to_string())
            .collect::<Vec<_>>();
        if found.is_empty() {
            let known = self.names_where(|_| true).join(", ");
            return Err(format!(
                "no process or role named {target:?} in this fleet (processes: {known}; roles: redis, api, worker)"
            ));
        }
        Ok(found)
    }

    /// `fleet scale N`: adds workers with the lowest free numbers, or stops
    /// the highest-numbered ones gracefully. Other processes are untouched.
    pub(super) fn scale(
        &mut self,
        workers: usize,
        at: Moment,
        out: &mut Out,
    ) -> Result<(Vec<String>, Vec<String>), String> {
        if self.shutdown.is_some() {
            return Err("the fleet is shutting down".into());
        }
        if workers > MAX_WORKERS {
            return Err(format!(
                "{workers} workers is more than the maximum of {MAX_WORKERS}"
            ));
        }
        // In name order, which is worker number order.
        let active = self.names_where(|slot| slot.role == Role::Worker && !slot.phase.retiring());
        let (started, stopping) = if workers > active.len() {
            (
                self.add_workers(workers - active.len(), at, out),
                Vec::new(),
            )
        } else {
            (Vec::new(), self.retire_workers(&active[workers..], at, out))
        };
        self.config.workers = workers;
        out.push(Action::SaveConfig {
            path: self.home.config_file(),
            config: Box::new(self.config.clone()),
        });
        let message =
            format!("scaled to {workers} workers (started {started:?}, stopping {stopping:?})");
        out.push(Action::log_fleet(Level::Info, message));
        Ok((started, stopping))
    }

    pub(super) fn add_workers(&mut self, count: usize, at: Moment, out: &mut Out) -> Vec<String> {
        let free = (0..)
            .map(names::worker_name)
            .filter(|name| !self.slots.contains_key(&ProcessName::from(name.as_str())));
        let added: Vec<String> = free.take(count).collect();
        let wait = self.embedded_redis() && !self.redis.healthy;
        for name in &added {
            self.add_worker(name);
            if !wait {
                self.start(name, at, out);
            }
        }
        added
    }

    /// Stops `doomed` (highest number first); forgets those not running.
    pub(super) fn retire_workers(
        &mut self,
        doomed: &[String],
        at: Moment,
        out: &mut Out,
    ) -> Vec<String> {
        let timeout = self.config.policy.stop_timeout();
        for name in doomed.iter().rev() {
            if self.slot(name).phase.instance().is_some() {
                self.stop(name, StopWhy::Retire, timeout, at, out);
            } else {
                out.push(Action::log(
                    Level::Info,
                    name,
                    None,
                    format!("removed {name} (it was not running)"),
                ));
                self.slots.remove(&ProcessName::from(name.as_str()));
            }
        }
        doomed.iter().rev().cloned().collect()
    }
}
