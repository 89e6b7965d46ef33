//! The supervisor: one slot per process, and every decision about them.
//!
//! It is a plain state machine driven by the watchdog's event loop: a child
//! exited ([`Supervisor::on_exit`]), a deadline passed ([`Supervisor::on_timer`]),
//! a health report arrived ([`Supervisor::on_health`]), an operator asked for
//! something (`restart`, `scale`, `down`). It sends signals and starts
//! processes, but never waits: the loop around it does the waiting.
//!
//! Rules it implements:
//! - an exit nobody asked for is a crash: logged with its code or signal,
//!   restarted after [`Backoff`]'s delay, and after too many in a window the
//!   process is marked failed;
//! - an api or worker exit during a Redis outage (Redis answered before and
//!   does not now) is not counted toward that limit (the outage is not the
//!   process's fault); it is still restarted with a delay;
//! - a registered worker whose heartbeat is older than the hung timeout, while
//!   Redis has been reachable for at least that long, is killed (SIGKILL) and
//!   restarted; the hang counts as a crash;
//! - with the embedded Redis, the api and workers start once Redis answers,
//!   and `down` stops them first and Redis last, so a worker can still
//!   deliver the job in hand.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tracing::{debug, error, info, warn};
use verdict_shared::pidfile;

use crate::config::{FleetConfig, RedisPlan};
use crate::control::protocol::{DownReport, FleetStatus, LastExit, ProcessStatus, State, Stopped};
use crate::home::Home;
use crate::names::{self, Role};
use crate::units::format_duration;

use super::backoff::{self, Backoff, Decision};
use super::child::{self, Launch};
use super::health::{HealthReport, Targets};
use super::reaper::Exit;
use super::roles;

/// Most workers a fleet may be scaled to (a typo guard, not a capacity claim).
pub const MAX_WORKERS: usize = 1024;

/// Why the watchdog is stopping a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StopWhy {
    /// `fleet restart`: start it again at once when it is gone.
    Restart,
    /// `fleet scale` down: forget the slot when it is gone.
    Retire,
    /// `fleet down`.
    Down,
    /// Its heartbeat stopped: killed, restarted as a crash.
    Hung,
}

#[derive(Debug, Clone, Copy)]
struct Stopping {
    why: StopWhy,
    signalled_at: Instant,
    kill_at: Instant,
    killed: bool,
}

#[derive(Debug, Clone, Copy)]
struct Started {
    at: Instant,
    wall_ms: u64,
}

/// One supervised process.
#[derive(Debug)]
struct Slot {
    name: String,
    role: Role,
    launch: Launch,
    pid: Option<u32>,
    state: State,
    started: Option<Started>,
    ever_started: bool,
    restarts: u32,
    last_exit: Option<LastExit>,
    backoff: Backoff,
    /// When a delayed restart is due (`Restarting`), or when a failed
    /// process is tried again after its cool-down (`Failed`).
    restart_at: Option<Instant>,
    /// Times in a row this process was marked failed (its cool-down doubles).
    failed_times: u32,
    stopping: Option<Stopping>,
    /// Waiting for the embedded Redis before its first start.
    waiting_for_redis: bool,
    /// The newest heartbeat of the current instance (workers).
    heartbeat_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Apps,
    Redis,
    Done,
}

#[derive(Debug)]
struct Shutdown {
    timeout: Duration,
    stage: Stage,
    stopped: Vec<Stopped>,
}

/// Redis as the watchdog last saw it.
#[derive(Debug, Clone)]
struct RedisHealth {
    healthy: bool,
    /// Whether it has ever answered since the watchdog started: only then is
    /// "unreachable" an outage. A Redis that never answered is a
    /// misconfiguration, and exits under it count as crashes.
    ever_healthy: bool,
    /// Since when it has been healthy without interruption.
    since: Option<Instant>,
    error: Option<String>,
}

/// The watchdog's view of its fleet.
#[derive(Debug)]
pub struct Supervisor {
    config: FleetConfig,
    home: Home,
    slots: Vec<Slot>,
    redis: RedisHealth,
    shutdown: Option<Shutdown>,
    started_ms: u64,
    /// Failed processes tried again after their cool-down, since the start.
    cooldown_retries: u64,
}

impl Supervisor {
    pub fn new(config: FleetConfig, home: Home) -> Supervisor {
        let mut supervisor = Supervisor {
            slots: Vec::new(),
            redis: RedisHealth {
                healthy: false,
                ever_healthy: false,
                since: None,
                error: None,
            },
            shutdown: None,
            started_ms: wall_ms(),
            cooldown_retries: 0,
            config,
            home,
        };
        if let Some(launch) = roles::redis(&supervisor.config, &supervisor.home) {
            supervisor.add_slot("redis", Role::Redis, launch);
        }
        let api = roles::api(&supervisor.config, &supervisor.home);
        supervisor.add_slot("api", Role::Api, api);
        for index in 0..supervisor.config.workers {
            supervisor.add_worker(index);
        }
        supervisor
    }

    fn add_slot(&mut self, name: &str, role: Role, launch: Launch) {
        let policy = self.config.policy;
        self.slots.push(Slot {
            name: name.to_string(),
            role,
            launch,
            pid: None,
            state: State::Starting,
            started: None,
            ever_started: false,
            restarts: 0,
            last_exit: None,
            backoff: Backoff::new(policy.crash_limit, policy.crash_window())
                .with_max_delay(policy.max_restart_delay()),
            restart_at: None,
            failed_times: 0,
            stopping: None,
            waiting_for_redis: false,
            heartbeat_ms: None,
        });
        self.slots.sort_by(|a, b| names::order(&a.name, &b.name));
    }

    fn add_worker(&mut self, index: usize) -> String {
        let name = names::worker_name(index);
        let launch = roles::worker(&self.config, &self.home, &name);
        self.add_slot(&name, Role::Worker, launch);
        name
    }

    fn embedded_redis(&self) -> bool {
        matches!(self.config.redis, RedisPlan::Embedded { .. })
    }

    /// Starts the fleet: the embedded Redis first, everything else once it
    /// answers (or at once with an external Redis).
    pub fn start(&mut self, now: Instant) {
        let embedded = self.embedded_redis();
        for index in 0..self.slots.len() {
            if embedded && self.slots[index].role != Role::Redis {
                self.slots[index].waiting_for_redis = true;
            } else {
                self.spawn(index, now);
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
                .filter(|s| s.role == Role::Worker)
                .map(|s| self.config.registered_name(&s.name))
                .collect(),
            api: self
                .slots
                .iter()
                .any(|s| s.role == Role::Api && s.pid.is_some() && s.state == State::Starting),
        }
    }

    fn spawn(&mut self, index: usize, now: Instant) {
        let slot = &mut self.slots[index];
        slot.waiting_for_redis = false;
        slot.restart_at = None;
        match child::spawn(&slot.launch) {
            Ok(pid) => {
                if slot.ever_started {
                    slot.restarts += 1;
                }
                slot.ever_started = true;
                slot.pid = Some(pid);
                slot.state = State::Starting;
                slot.heartbeat_ms = None;
                slot.started = Some(Started {
                    at: now,
                    wall_ms: wall_ms(),
                });
                info!(
                    name = %slot.name,
                    pid,
                    restarts = slot.restarts,
                    "started {} (PID {pid}){}",
                    slot.name,
                    if slot.restarts > 0 {
                        format!(", restart {}", slot.restarts)
                    } else {
                        String::new()
                    }
                );
            }
            Err(err) => {
                error!(name = %slot.name, error = %err, program = %slot.launch.program.display(),
                    "cannot start {}: {err}", slot.name);
                slot.last_exit = Some(LastExit {
                    pid: 0,
                    status: crate::watchdog::reaper::ExitStatusInfo {
                        code: None,
                        signal: None,
                    },
                    at_ms: wall_ms(),
                    reason: format!("could not start: {err}"),
                });
                let decision = slot.backoff.crashed(now, Duration::ZERO);
                self.apply_decision(index, decision, now);
            }
        }
    }

    fn apply_decision(&mut self, index: usize, decision: Decision, now: Instant) {
        match decision {
            Decision::RestartAfter(delay) if delay.is_zero() => self.spawn(index, now),
            Decision::RestartAfter(delay) => {
                let slot = &mut self.slots[index];
                slot.state = State::Restarting;
                slot.restart_at = Some(now + delay);
                info!(name = %slot.name, delay_ms = delay.as_millis() as u64,
                    "restarting {} in {}", slot.name, format_duration(delay));
            }
            Decision::GiveUp { crashes, window } => {
                let cooldown = self.config.policy.failed_cooldown();
                let slot = &mut self.slots[index];
                slot.state = State::Failed;
                slot.failed_times = slot.failed_times.saturating_add(1);
                match cooldown {
                    Some(first) => {
                        let rest = backoff::failed_cooldown(first, slot.failed_times);
                        slot.restart_at = Some(now + rest);
                        error!(name = %slot.name, crashes, cooldown_ms = rest.as_millis() as u64,
                            failed_times = slot.failed_times,
                            "{} crashed {crashes} times within {}: marked failed; tried again in {} \
                             (fix the cause, then `fleet restart {}`)",
                            slot.name, format_duration(window), format_duration(rest), slot.name);
                    }
                    None => {
                        slot.restart_at = None;
                        error!(name = %slot.name, crashes,
                            "{} crashed {crashes} times within {}: marked failed, no more restarts \
                             (fix the cause, then `fleet restart {}`)",
                            slot.name, format_duration(window), slot.name);
                    }
                }
            }
        }
    }

    /// A child exited (from the reaper).
    pub fn on_exit(&mut self, pid: u32, exit: Exit, now: Instant) {
        let Some(index) = self.slots.iter().position(|s| s.pid == Some(pid)) else {
            debug!(pid, %exit, "reaped a process that is not a fleet member (adopted as subreaper)");
            return;
        };
        let hung_after = self.config.policy.hung_after();
        let redis_outage = self.redis.ever_healthy && !self.redis.healthy;
        let shutting_down = self.shutdown.is_some();
        let slot = &mut self.slots[index];
        let uptime = slot
            .started
            .map(|s| now.duration_since(s.at))
            .unwrap_or_default();
        slot.pid = None;
        slot.started = None;
        // The process is gone, so its lock is free: remove the file, unless a
        // fork of it (redis's rewrite child) still holds it.
        match pidfile::remove_if_stale(&slot.launch.pid_file) {
            Ok(pidfile::Probe::Running { .. }) => warn!(name = %slot.name,
                "{} exited but its PID file is still locked (by a child of it?)", slot.name),
            Ok(_) => {}
            Err(err) => warn!(name = %slot.name, error = %err, "cannot remove the PID file"),
        }
        let stopping = slot.stopping.take();
        let role = slot.role;
        if role == Role::Redis {
            self.redis.healthy = false;
            self.redis.since = None;
            self.redis.error = Some(format!("redis-server exited ({exit})"));
        }
        let slot = &mut self.slots[index];
        let record = |reason: String| LastExit {
            pid,
            status: exit.describe(),
            at_ms: wall_ms(),
            reason,
        };
        match stopping.map(|s| (s.why, s)) {
            Some((StopWhy::Down, stop)) => {
                let how = describe_stop(exit, stop, now);
                info!(name = %slot.name, pid, %exit, "stopped {} (PID {pid}): {how}", slot.name);
                slot.state = State::Stopped;
                slot.last_exit = Some(record("stopped by fleet down".into()));
                let entry = Stopped {
                    name: slot.name.clone(),
                    pid: Some(pid),
                    how,
                    killed: stop.killed,
                };
                if let Some(shutdown) = &mut self.shutdown {
                    shutdown.stopped.push(entry);
                }
                self.advance_shutdown(now);
            }
            Some((StopWhy::Retire, stop)) => {
                info!(name = %slot.name, pid, %exit, "retired {} (PID {pid}): {}", slot.name, describe_stop(exit, stop, now));
                self.slots.remove(index);
            }
            Some((StopWhy::Restart, stop)) => {
                info!(name = %slot.name, pid, %exit, "{} (PID {pid}) stopped for restart: {}", slot.name, describe_stop(exit, stop, now));
                slot.last_exit = Some(record("restart requested".into()));
                slot.backoff.reset();
                self.spawn(index, now);
            }
            Some((StopWhy::Hung, _)) | None => {
                let hung = stopping.is_some();
                if shutting_down {
                    info!(name = %slot.name, pid, %exit, "{} (PID {pid}) exited during shutdown: {exit}", slot.name);
                    slot.state = State::Stopped;
                    slot.last_exit = Some(record("exited during shutdown".into()));
                    let entry = Stopped {
                        name: slot.name.clone(),
                        pid: Some(pid),
                        how: format!("exited on its own ({exit})"),
                        killed: false,
                    };
                    if let Some(shutdown) = &mut self.shutdown {
                        shutdown.stopped.push(entry);
                    }
                    self.advance_shutdown(now);
                    return;
                }
                let excused = role != Role::Redis && redis_outage && !hung;
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
                warn!(name = %slot.name, pid, %exit, uptime_ms = uptime.as_millis() as u64,
                    "{} (PID {pid}) {reason}: {exit} after {}", slot.name, format_duration(uptime));
                slot.last_exit = Some(record(reason));
                if excused {
                    let delay = slot.backoff.excused(uptime);
                    self.apply_decision(index, Decision::RestartAfter(delay), now);
                } else {
                    let decision = slot.backoff.crashed(now, uptime);
                    self.apply_decision(index, decision, now);
                }
            }
        }
    }

    /// Deadlines: delayed restarts, SIGKILL after a stop timeout, shutdown
    /// stages.
    pub fn on_timer(&mut self, now: Instant) {
        if self.shutdown.is_none() {
            let due: Vec<usize> = (0..self.slots.len())
                .filter(|&i| {
                    matches!(self.slots[i].state, State::Restarting | State::Failed)
                        && self.slots[i].pid.is_none()
                        && self.slots[i].restart_at.is_some_and(|at| at <= now)
                })
                .collect();
            for index in due {
                let slot = &mut self.slots[index];
                if slot.state == State::Failed {
                    warn!(name = %slot.name, failed_times = slot.failed_times,
                        "{} was marked failed: its cool-down is over, trying it again", slot.name);
                    slot.backoff.reset();
                    self.cooldown_retries += 1;
                }
                self.spawn(index, now);
            }
        }
        for slot in &mut self.slots {
            let (Some(pid), Some(stop)) = (slot.pid, slot.stopping.as_mut()) else {
                continue;
            };
            if !stop.killed && stop.kill_at <= now {
                warn!(name = %slot.name, pid,
                    "{} (PID {pid}) did not stop within {} of SIGTERM: SIGKILL",
                    slot.name, format_duration(now.duration_since(stop.signalled_at)));
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
                stop.killed = true;
            }
        }
        self.advance_shutdown(now);
    }

    /// The next moment [`Supervisor::on_timer`] has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.slots
            .iter()
            .flat_map(|s| {
                let restart = if self.shutdown.is_none()
                    && matches!(s.state, State::Restarting | State::Failed)
                {
                    s.restart_at
                } else {
                    None
                };
                let kill = s
                    .stopping
                    .filter(|st| !st.killed && s.pid.is_some())
                    .map(|st| st.kill_at);
                [restart, kill]
            })
            .flatten()
            .min()
    }

    /// Applies what the health probe saw.
    pub fn on_health(&mut self, report: &HealthReport, now: Instant) {
        if report.redis_ok {
            if !self.redis.healthy {
                info!("Redis answers");
                self.redis.since = Some(now);
            }
            self.redis.healthy = true;
            self.redis.ever_healthy = true;
            self.redis.error = None;
        } else {
            if self.redis.healthy {
                warn!(
                    error = report.redis_error.as_deref().unwrap_or("?"),
                    "Redis does not answer"
                );
            }
            self.redis.healthy = false;
            self.redis.since = None;
            self.redis.error = report.redis_error.clone();
        }
        let hung_after = self.config.policy.hung_after();
        let redis_steady = self
            .redis
            .since
            .is_some_and(|since| now.duration_since(since) >= hung_after);
        let shutting_down = self.shutdown.is_some();
        let mut hung = Vec::new();
        for (index, slot) in self.slots.iter_mut().enumerate() {
            let Some(pid) = slot.pid else { continue };
            match slot.role {
                Role::Redis => {
                    if report.redis_ok && slot.state == State::Starting {
                        slot.state = State::Running;
                        info!(name = "redis", pid, "redis (PID {pid}) is ready");
                    }
                }
                Role::Api => {
                    if report.api_ready && slot.state == State::Starting {
                        slot.state = State::Running;
                        info!(name = "api", pid, "api (PID {pid}) is ready");
                    }
                }
                Role::Worker => {
                    let key = format!("{}{}", self.config.worker_name_prefix, slot.name);
                    if let Some(record) = report.workers.get(&key).filter(|r| r.pid == pid) {
                        slot.heartbeat_ms =
                            Some(slot.heartbeat_ms.unwrap_or(0).max(record.heartbeat_ms));
                        if slot.state == State::Starting {
                            slot.state = State::Running;
                            info!(name = %slot.name, pid, "{} (PID {pid}) registered", slot.name);
                        }
                    }
                    if slot.state == State::Running
                        && slot.stopping.is_none()
                        && !shutting_down
                        && redis_steady
                        && let Some(beat) = slot.heartbeat_ms
                    {
                        let age = Duration::from_millis(report.wall_ms.saturating_sub(beat));
                        if age > hung_after {
                            hung.push((index, age));
                        }
                    }
                }
                Role::Watchdog => {}
            }
        }
        for (index, age) in hung {
            let slot = &mut self.slots[index];
            let Some(pid) = slot.pid else { continue };
            warn!(name = %slot.name, pid, heartbeat_age_ms = age.as_millis() as u64,
                "{} (PID {pid}) is hung: last heartbeat {} ago; SIGKILL", slot.name, format_duration(age));
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            slot.stopping = Some(Stopping {
                why: StopWhy::Hung,
                signalled_at: now,
                kill_at: now,
                killed: true,
            });
        }
        if self.redis.healthy && !shutting_down {
            let waiting: Vec<usize> = (0..self.slots.len())
                .filter(|&i| self.slots[i].waiting_for_redis)
                .collect();
            for index in waiting {
                self.spawn(index, now);
            }
        }
    }

    fn stop(&mut self, index: usize, why: StopWhy, timeout: Duration, now: Instant) {
        let slot = &mut self.slots[index];
        let Some(pid) = slot.pid else { return };
        if slot
            .stopping
            .is_some_and(|s| s.why == StopWhy::Down || s.why == why)
        {
            return;
        }
        info!(name = %slot.name, pid, "SIGTERM to {} (PID {pid})", slot.name);
        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
        slot.state = State::Stopping;
        let killed = slot.stopping.is_some_and(|s| s.killed);
        slot.stopping = Some(Stopping {
            why,
            signalled_at: now,
            kill_at: now + timeout,
            killed,
        });
    }

    /// `fleet restart [TARGET]`: the api and every worker when `target` is
    /// `None`. A running process is stopped gracefully and started again at
    /// once; a failed or waiting one is started now. Resets crash history.
    pub fn restart(&mut self, target: Option<&str>, now: Instant) -> Result<Vec<String>, String> {
        if self.shutdown.is_some() {
            return Err("the fleet is shutting down".into());
        }
        let indices: Vec<usize> = match target {
            None => (0..self.slots.len())
                .filter(|&i| self.slots[i].role != Role::Redis)
                .collect(),
            Some(target) => {
                let by_role = target.parse::<Role>().ok();
                let found: Vec<usize> = (0..self.slots.len())
                    .filter(|&i| {
                        self.slots[i].name == target || Some(self.slots[i].role) == by_role
                    })
                    .collect();
                if found.is_empty() {
                    let known: Vec<&str> = self.slots.iter().map(|s| s.name.as_str()).collect();
                    return Err(format!(
                        "no process or role named {target:?} in this fleet (processes: {}; roles: redis, api, worker)",
                        known.join(", ")
                    ));
                }
                found
            }
        };
        let timeout = self.config.policy.stop_timeout();
        let mut names = Vec::new();
        for index in indices {
            let slot = &mut self.slots[index];
            if slot.stopping.is_some_and(|s| s.why == StopWhy::Retire) {
                continue;
            }
            slot.backoff.reset();
            // A person stepped in: the failed streak and any cool-down end.
            slot.failed_times = 0;
            if slot.pid.is_none() {
                slot.restart_at = None;
            }
            names.push(slot.name.clone());
            if slot.pid.is_some() {
                self.stop(index, StopWhy::Restart, timeout, now);
            } else if !slot.waiting_for_redis {
                info!(name = %slot.name, "starting {} on request (was {})", slot.name, slot.state.as_str());
                self.spawn(index, now);
            }
        }
        Ok(names)
    }

    /// `fleet scale N`: adds workers with the lowest free numbers, or stops
    /// the highest-numbered ones gracefully. Other processes are untouched.
    pub fn scale(
        &mut self,
        workers: usize,
        now: Instant,
    ) -> Result<(Vec<String>, Vec<String>), String> {
        if self.shutdown.is_some() {
            return Err("the fleet is shutting down".into());
        }
        if workers > MAX_WORKERS {
            return Err(format!(
                "{workers} workers is more than the maximum of {MAX_WORKERS}"
            ));
        }
        let active: Vec<usize> = (0..self.slots.len())
            .filter(|&i| {
                self.slots[i].role == Role::Worker
                    && !self.slots[i]
                        .stopping
                        .is_some_and(|s| s.why == StopWhy::Retire)
            })
            .collect();
        let mut started = Vec::new();
        let mut stopping = Vec::new();
        if workers > active.len() {
            let mut index = 0;
            while started.len() < workers - active.len() {
                let name = names::worker_name(index);
                index += 1;
                if self.slots.iter().any(|s| s.name == name) {
                    continue;
                }
                self.add_worker(index - 1);
                let slot_index = self
                    .slots
                    .iter()
                    .position(|s| s.name == name)
                    .expect("just added");
                if self.embedded_redis() && !self.redis.healthy {
                    self.slots[slot_index].waiting_for_redis = true;
                } else {
                    self.spawn(slot_index, now);
                }
                started.push(name);
            }
        } else {
            let mut doomed: Vec<(usize, String)> = active
                .iter()
                .map(|&i| {
                    (
                        names::worker_index(&self.slots[i].name).unwrap_or(0),
                        self.slots[i].name.clone(),
                    )
                })
                .collect();
            doomed.sort();
            let timeout = self.config.policy.stop_timeout();
            for (_, name) in doomed.into_iter().skip(workers).rev() {
                let index = self
                    .slots
                    .iter()
                    .position(|s| s.name == name)
                    .expect("present");
                if self.slots[index].pid.is_some() {
                    self.stop(index, StopWhy::Retire, timeout, now);
                } else {
                    info!(name = %name, "removed {name} (it was not running)");
                    self.slots.remove(index);
                }
                stopping.push(name);
            }
        }
        self.config.workers = workers;
        if let Err(err) = self.config.save(&self.home.config_file()) {
            warn!(error = %err, "cannot record the new worker count in fleet.json");
        }
        info!(workers, ?started, ?stopping, "scaled to {workers} workers");
        Ok((started, stopping))
    }

    /// Starts `fleet down`: SIGTERM to the api and workers now, Redis once
    /// they are gone, SIGKILL to whatever outlives `timeout`.
    pub fn begin_down(&mut self, timeout: Duration, now: Instant) {
        if self.shutdown.is_some() {
            return;
        }
        info!(timeout_ms = timeout.as_millis() as u64, "shutting down");
        self.shutdown = Some(Shutdown {
            timeout,
            stage: Stage::Apps,
            stopped: Vec::new(),
        });
        let mut not_running = Vec::new();
        for index in 0..self.slots.len() {
            if self.slots[index].role == Role::Redis {
                continue;
            }
            let slot = &mut self.slots[index];
            slot.waiting_for_redis = false;
            slot.restart_at = None;
            if slot.pid.is_some() {
                // A retiring or restarting process is now simply stopping.
                if let Some(stop) = &mut slot.stopping {
                    stop.why = StopWhy::Down;
                } else {
                    self.stop(index, StopWhy::Down, timeout, now);
                }
            } else {
                not_running.push(Stopped {
                    name: slot.name.clone(),
                    pid: None,
                    how: format!("was not running ({})", slot.state.as_str()),
                    killed: false,
                });
                slot.state = State::Stopped;
            }
        }
        if let Some(shutdown) = &mut self.shutdown {
            shutdown.stopped.extend(not_running);
        }
        self.advance_shutdown(now);
    }

    fn advance_shutdown(&mut self, now: Instant) {
        let Some(shutdown) = &self.shutdown else {
            return;
        };
        let timeout = shutdown.timeout;
        if shutdown.stage == Stage::Apps
            && self
                .slots
                .iter()
                .all(|s| s.role == Role::Redis || s.pid.is_none())
        {
            if let Some(shutdown) = &mut self.shutdown {
                shutdown.stage = Stage::Redis;
            }
            for index in 0..self.slots.len() {
                if self.slots[index].role != Role::Redis {
                    continue;
                }
                if self.slots[index].pid.is_some() {
                    self.stop(index, StopWhy::Down, timeout, now);
                } else {
                    let slot = &mut self.slots[index];
                    slot.restart_at = None;
                    let entry = Stopped {
                        name: slot.name.clone(),
                        pid: None,
                        how: format!("was not running ({})", slot.state.as_str()),
                        killed: false,
                    };
                    slot.state = State::Stopped;
                    if let Some(shutdown) = &mut self.shutdown {
                        shutdown.stopped.push(entry);
                    }
                }
            }
        }
        if self
            .shutdown
            .as_ref()
            .is_some_and(|s| s.stage == Stage::Redis)
            && self.slots.iter().all(|s| s.pid.is_none())
            && let Some(shutdown) = &mut self.shutdown
        {
            shutdown.stage = Stage::Done;
            info!("every process has stopped");
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
    pub fn down_report(&self) -> DownReport {
        let stopped = self
            .shutdown
            .as_ref()
            .map(|s| s.stopped.clone())
            .unwrap_or_default();
        DownReport { stopped }
    }

    /// The PIDs that are still running (for a last-resort cleanup).
    pub fn live_pids(&self) -> Vec<u32> {
        self.slots.iter().filter_map(|s| s.pid).collect()
    }

    /// Every process's state, the watchdog's own first.
    pub fn status(&self) -> FleetStatus {
        let mut processes = vec![ProcessStatus {
            role: Role::Watchdog,
            name: "watchdog".into(),
            pid: Some(std::process::id()),
            state: if self.shutdown.is_some() {
                State::Stopping
            } else {
                State::Running
            },
            started_ms: Some(self.started_ms),
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
        }];
        processes.extend(self.slots.iter().map(|slot| {
            ProcessStatus {
                role: slot.role,
                name: slot.name.clone(),
                pid: slot.pid,
                state: slot.state,
                started_ms: slot.started.map(|s| s.wall_ms),
                restarts: slot.restarts,
                last_exit: slot.last_exit.clone(),
                registered_as: (slot.role == Role::Worker)
                    .then(|| self.config.registered_name(&slot.name)),
                retry_at_ms: (slot.state == State::Failed)
                    .then_some(slot.restart_at)
                    .flatten()
                    .map(|at| {
                        wall_ms() + at.saturating_duration_since(Instant::now()).as_millis() as u64
                    }),
                failed_times: (slot.failed_times > 0).then_some(slot.failed_times),
                uptime_ms: None,
                rss_bytes: None,
                cpu_ms: None,
                jobs_done: None,
                pid_file: None,
            }
        }));
        FleetStatus {
            processes,
            cooldown_retries: self.cooldown_retries,
            redis_healthy: self.redis.healthy,
            redis_error: self.redis.error.clone(),
            shutting_down: self.shutdown.is_some(),
        }
    }
}

fn describe_stop(exit: Exit, stop: Stopping, now: Instant) -> String {
    let after = format_duration(now.duration_since(stop.signalled_at));
    if stop.killed {
        format!("SIGKILL after {after} (did not stop after SIGTERM)")
    } else {
        format!("exited ({exit}) {after} after SIGTERM")
    }
}

/// Milliseconds since the Unix epoch.
pub fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
#[path = "supervisor_tests.rs"]
mod tests;
