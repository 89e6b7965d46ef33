//! The supervisor: one [`Slot`] per process, by name, and every decision
//! about them.
//!
//! It is a pure state machine: [`Supervisor::handle`] takes one [`Event`]
//! (a child exited, a deadline passed, a health report, an operator's
//! request) and returns the [`Action`]s it decided on; it never starts,
//! signals or waits itself (the watchdog's [`executor`](super::executor)
//! does). Each process's [`Phase`] carries the data of where it is.
//!
//! Rules it implements:
//! - an exit nobody asked for is a crash: logged with its code or signal,
//!   restarted after [`Backoff`]'s delay, and after too many in a window the
//!   process is marked failed (tried again after a cool-down, if one is set);
//! - an api or worker exit during a Redis outage (Redis answered before and
//!   does not now) is not counted toward that limit (the outage is not the
//!   process's fault); it is still restarted with a delay;
//! - a registered worker whose heartbeat has not changed for the hung
//!   timeout (on the watchdog's monotonic clock: [`heartbeat`]), while Redis
//!   has been reachable for at least that long, is killed (SIGKILL) and
//!   restarted; the hang counts as a crash;
//! - with the embedded Redis, the api and workers start once Redis answers,
//!   and `down` stops them first and Redis last, so a worker can still
//!   deliver the job in hand.
//!
//! A start in flight (an [`Action::Spawn`] whose [`Event::Spawned`] has not
//! come back) leaves the process in a back-off that is due now, so that a
//! start that never reported would be tried again at the next tick.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::config::{FleetConfig, RedisPlan};
use crate::control::protocol::{FleetStatus, LastExit, ProcessStatus, Response, State};
use crate::durations_and_sizes::format_duration;
use crate::home::Home;
use crate::names::{self, ProcessName, Role};

mod deadlines;
mod down;
mod exits;
mod health;
pub mod heartbeat;
pub mod phase;
mod redis_health;
mod requests;
mod rolling;
pub mod slot;
#[cfg(test)]
mod tests;

use super::backoff::{self, Decision};
use super::event::{Action, Event, Level, Moment};
use super::health::Targets;
use super::reaper::ExitStatusInfo;
use super::roles;
use down::{Shutdown, Stage};
use phase::{Instance, Phase};
use redis_health::RedisHealth;
use rolling::Rolling;
use slot::Slot;

/// Most workers a fleet may be scaled to (a typo guard, not a capacity claim).
pub const MAX_WORKERS: usize = 1024;

/// The actions decided so far for one event.
type Out = Vec<Action>;

/// The watchdog's view of its fleet.
#[derive(Debug)]
pub struct Supervisor {
    config: FleetConfig,
    home: Home,
    slots: BTreeMap<ProcessName, Slot>,
    redis: RedisHealth,
    shutdown: Option<Shutdown>,
    started_ms: u64,
    /// The same moment on the monotonic clock (the watchdog's uptime).
    started: std::time::Instant,
    /// Failed processes tried again after their cool-down, since the start.
    cooldown_retries: u64,
    /// A rolling restart under way.
    rolling: Rolling,
}

impl Supervisor {
    /// The fleet of `config`, nothing started yet (see [`Event::Start`]).
    pub fn new(config: FleetConfig, home: Home, at: Moment) -> Supervisor {
        let mut supervisor = Supervisor {
            slots: BTreeMap::new(),
            redis: RedisHealth::default(),
            shutdown: None,
            started_ms: at.wall_ms,
            started: at.now,
            cooldown_retries: 0,
            rolling: Rolling::default(),
            config,
            home,
        };
        if let Some(launch) = roles::redis(&supervisor.config, &supervisor.home) {
            supervisor.add_slot("redis", Role::Redis, launch);
        }
        let api = roles::api(&supervisor.config, &supervisor.home);
        supervisor.add_slot("api", Role::Api, api);
        for index in 0..supervisor.config.workers {
            supervisor.add_worker(&names::worker_name(index));
        }
        supervisor
    }

    fn add_slot(&mut self, name: &str, role: Role, launch: super::child::Launch) {
        let slot = Slot::new(role, launch, &self.config.policy);
        self.slots.insert(ProcessName::from(name), slot);
    }

    fn add_worker(&mut self, name: &str) {
        let launch = roles::worker(&self.config, &self.home, name);
        self.add_slot(name, Role::Worker, launch);
    }

    fn slot(&mut self, name: &str) -> &mut Slot {
        self.slots
            .get_mut(&ProcessName::from(name))
            .unwrap_or_else(|| panic!("the supervisor has no process {name}"))
    }

    fn names_where(&self, keep: impl Fn(&Slot) -> bool) -> Vec<String> {
        self.slots
            .iter()
            .filter(|(_, slot)| keep(slot))
            .map(|(name, _)| name.to_string())
            .collect()
    }

    fn embedded_redis(&self) -> bool {
        matches!(self.config.redis, RedisPlan::Embedded { .. })
    }

    /// Decides what `event`, happening at `at`, calls for.
    pub fn handle(&mut self, event: Event, at: Moment) -> Vec<Action> {
        let mut out = Vec::new();
        match event {
            Event::Start => self.on_start(at, &mut out),
            Event::Spawned { name, result } => self.on_spawned(&name, result, at, &mut out),
            Event::Exited { pid, exit } => self.on_exit(pid, exit, at, &mut out),
            Event::Tick => self.on_tick(at, &mut out),
            Event::Health(report) => self.on_health(&report, at, &mut out),
            Event::Restart {
                target,
                all_at_once,
            } => {
                let reply = match self.restart(target.as_deref(), all_at_once, at, &mut out) {
                    Ok(names) => Response::Restarting { names },
                    Err(message) => Response::Error { message },
                };
                out.push(Action::Reply(reply));
            }
            Event::Scale { workers } => {
                let reply = match self.scale(workers, at, &mut out) {
                    Ok((started, stopping)) => Response::Scaled {
                        workers,
                        started,
                        stopping,
                    },
                    Err(message) => Response::Error { message },
                };
                // Answered before the new workers are forked, so that the
                // command hears back within its timeout however many there are.
                out.insert(0, Action::Reply(reply));
            }
            Event::Down { timeout } => self.begin_down(timeout, at, &mut out),
        }
        self.advance_rolling(at, &mut out);
        out
    }

    /// The embedded Redis first, everything else once it answers (or at
    /// once with an external Redis).
    fn on_start(&mut self, at: Moment, out: &mut Out) {
        let wait = self.embedded_redis();
        for name in self.names_where(|slot| !(wait && slot.role != Role::Redis)) {
            self.start(&name, at, out);
        }
    }

    /// Asks for a new instance of `name` (none is running: the previous
    /// one, if any, was reaped). A worker is told the instance of the
    /// previous process registered under its name, now known dead.
    fn start(&mut self, name: &str, at: Moment, out: &mut Out) {
        let slot = self.slot(name);
        slot.phase = Phase::BackingOff { until: at.now };
        let mut launch = slot.launch.clone();
        if let (Role::Worker, Some(instance)) = (slot.role, &slot.registered_instance) {
            launch
                .env
                .push((roles::WORKER_PREDECESSOR_ENV.into(), instance.clone()));
        }
        out.push(Action::Spawn {
            name: name.to_string(),
            launch,
        });
    }

    fn on_spawned(&mut self, name: &str, result: Result<u32, String>, at: Moment, out: &mut Out) {
        let Some(slot) = self.slots.get_mut(&ProcessName::from(name)) else {
            return;
        };
        match result {
            Ok(pid) => {
                slot.starts += 1;
                slot.phase = Phase::Starting(Instance {
                    pid,
                    started: at.now,
                    started_wall_ms: at.wall_ms,
                });
                let restarts = slot.restarts();
                let suffix = if restarts > 0 {
                    format!(", restart {restarts}")
                } else {
                    String::new()
                };
                let message = format!("started {name} (PID {pid}){suffix}");
                out.push(Action::log(Level::Info, name, Some(pid), message));
            }
            Err(err) => {
                let program = slot.launch.program.display();
                let message = format!("cannot start {name} ({program}): {err}");
                out.push(Action::log(Level::Error, name, None, message));
                slot.last_exit = Some(LastExit {
                    pid: 0,
                    status: ExitStatusInfo {
                        code: None,
                        signal: None,
                    },
                    at_ms: at.wall_ms,
                    reason: format!("could not start: {err}"),
                });
                let decision = slot.backoff.crashed(at.now, Duration::ZERO);
                self.apply_decision(name, decision, at, out);
            }
        }
    }

    /// After a crash: start again (now or later), or mark failed.
    fn apply_decision(&mut self, name: &str, decision: Decision, at: Moment, out: &mut Out) {
        let cooldown = self.config.policy.failed_cooldown();
        let slot = self.slot(name);
        match decision {
            Decision::RestartAfter(delay) if delay.is_zero() => self.start(name, at, out),
            Decision::RestartAfter(delay) => {
                slot.phase = Phase::BackingOff {
                    until: at.now + delay,
                };
                let message = format!("restarting {name} in {}", format_duration(delay));
                out.push(Action::log(Level::Info, name, None, message));
            }
            Decision::GiveUp { crashes, window } => {
                slot.failed_times = slot.failed_times.saturating_add(1);
                let rest = cooldown.map(|first| backoff::failed_cooldown(first, slot.failed_times));
                slot.phase = Phase::Failed {
                    retry_at: rest.map(|rest| at.now + rest),
                };
                let then = match rest {
                    Some(rest) => format!("tried again in {}", format_duration(rest)),
                    None => "no more restarts".to_string(),
                };
                let message = format!(
                    "{name} crashed {crashes} times within {}: marked failed; {then} \
                     (fix the cause, then `fleet restart {name}`)",
                    format_duration(window)
                );
                out.push(Action::log(Level::Error, name, None, message));
            }
        }
    }

    /// What the health probe should look at: every worker's heartbeat
    /// record, and the api's `/readyz` while the api is starting.
    pub fn probe_targets(&self) -> Targets {
        Targets {
            workers: self
                .slots
                .iter()
                .filter(|(_, slot)| slot.role == Role::Worker)
                .map(|(name, _)| self.config.registered_name(name.as_str()))
                .collect(),
            api: self
                .slots
                .values()
                .any(|slot| slot.role == Role::Api && matches!(slot.phase, Phase::Starting(_))),
        }
    }

    /// Whether `down` has finished: nothing is left running.
    pub fn is_down(&self) -> bool {
        self.shutdown
            .as_ref()
            .is_some_and(|s| s.stage == Stage::Done)
    }

    /// What `down` did, in the order processes stopped (those that were not
    /// running first).
    pub fn down_report(&self) -> crate::control::protocol::DownReport {
        self.shutdown
            .as_ref()
            .map(Shutdown::report)
            .unwrap_or_default()
    }

    /// The PIDs that are still running (for a last-resort cleanup).
    pub fn live_pids(&self) -> Vec<u32> {
        self.slots.values().filter_map(|s| s.phase.pid()).collect()
    }

    /// Every process's state, the watchdog's own first.
    pub fn status(&self, at: Moment) -> FleetStatus {
        let watchdog = ProcessStatus {
            state: if self.shutdown.is_some() {
                State::Stopping
            } else {
                State::Running
            },
            pid: Some(std::process::id()),
            started_ms: Some(self.started_ms),
            uptime_ms: Some(at.now.saturating_duration_since(self.started).as_millis() as u64),
            ..ProcessStatus::empty(Role::Watchdog, "watchdog")
        };
        let rows = self.slots.iter().map(|(name, slot)| {
            let registered =
                (slot.role == Role::Worker).then(|| self.config.registered_name(name.as_str()));
            slot.status(name.as_str(), registered, at)
        });
        FleetStatus {
            processes: std::iter::once(watchdog).chain(rows).collect(),
            cooldown_retries: self.cooldown_retries,
            redis_healthy: self.redis.healthy,
            redis_error: self.redis.error.clone(),
            shutting_down: self.shutdown.is_some(),
        }
    }

    /// Where process `name` is, if the fleet has it.
    pub fn phase(&self, name: &str) -> Option<Phase> {
        self.slots
            .get(&ProcessName::from(name))
            .map(|slot| slot.phase)
    }
}
