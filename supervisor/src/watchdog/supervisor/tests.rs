//! The supervisor's transitions, driven directly: an event in, the actions and
//! the phases out. No process is started: the harness answers every
//! [`Action::Spawn`] with a made-up PID, as the executor would with a real one.
//! (The end-to-end tests in `tests/fleet_*.rs` run the real thing.)

use std::time::Duration;

use nix::sys::signal::Signal;
use verdict_shared::queue::WorkerRecord;

use super::*;
use crate::config::RedisPlan;
use crate::control::protocol::{ProcessStatus, Response, State};
use crate::embedded_redis::Appendfsync;
use crate::watchdog::event::{Action, Event, Moment};
use crate::watchdog::health::HealthReport;
use crate::watchdog::reaper::Exit;
use heartbeat::Heartbeat;
use phase::{Phase, StopWhy};

struct Harness {
    s: Supervisor,
    t0: Moment,
    next_pid: u32,
    /// Answer spawns with an error instead of a PID.
    fail_spawns: bool,
    _dir: tempfile::TempDir,
}

/// `workers` workers and an api against an external Redis; with `embedded`,
/// the fleet's own Redis too.
fn harness(workers: usize, crash_limit: u32, embedded: bool) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::resolve(Some(&dir.path().join("home"))).unwrap();
    let mut config = crate::config::sample(home.root());
    config.workers = workers;
    config.policy.crash_limit = crash_limit;
    config.policy.hung_after_ms = 2_000;
    config.policy.stop_timeout_ms = 2_000;
    if embedded {
        config.redis = RedisPlan::Embedded {
            program: "/bin/false".into(),
            socket: home.redis_socket(),
            data_dir: home.redis_dir(),
            appendfsync: Appendfsync::Everysec,
        };
    }
    let t0 = Moment::current();
    Harness {
        s: Supervisor::new(config, home, t0),
        t0,
        next_pid: 1000,
        fail_spawns: false,
        _dir: dir,
    }
}

impl Harness {
    fn at(&self, ms: u64) -> Moment {
        self.t0.after(Duration::from_millis(ms))
    }

    /// Hands `event` to the supervisor as the executor does, every spawn
    /// answered at once; returns every action, follow-ups included.
    fn run(&mut self, event: Event, at: Moment) -> Vec<Action> {
        let mut all = Vec::new();
        let mut queue = std::collections::VecDeque::from(self.s.handle(event, at));
        while let Some(action) = queue.pop_front() {
            if let Action::Spawn { name, .. } = &action {
                let result = if self.fail_spawns {
                    Err("No such file or directory (os error 2)".to_string())
                } else {
                    self.next_pid += 1;
                    Ok(self.next_pid)
                };
                let name = name.clone();
                for next in self
                    .s
                    .handle(Event::Spawned { name, result }, at)
                    .into_iter()
                    .rev()
                {
                    queue.push_front(next);
                }
            }
            all.push(action);
        }
        all
    }

    fn phase(&self, name: &str) -> Phase {
        self.s.phase(name).unwrap_or_else(|| panic!("no {name}"))
    }

    fn pid(&self, name: &str) -> u32 {
        self.phase(name)
            .pid()
            .unwrap_or_else(|| panic!("{name} is not running: {:?}", self.phase(name)))
    }

    fn row(&self, name: &str) -> ProcessStatus {
        self.s
            .status(self.t0)
            .processes
            .into_iter()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("no {name}"))
    }

    /// `name` dies of `signal` at `at`.
    fn crash(&mut self, name: &str, signal: Signal, at: Moment) -> Vec<Action> {
        let pid = self.pid(name);
        let exit = Exit::Signal {
            signal,
            core_dumped: false,
        };
        self.run(Event::Exited { pid, exit }, at)
    }

    /// `name` exits with code 0 at `at` (after a SIGTERM, say).
    fn exits(&mut self, name: &str, at: Moment) -> Vec<Action> {
        let pid = self.pid(name);
        self.run(
            Event::Exited {
                pid,
                exit: Exit::Code(0),
            },
            at,
        )
    }
}

/// A probe's report: Redis up or down, the api ready, and the records of
/// `workers` (name, PID, the record's `heartbeat_ms`; no beat counter).
fn report(redis_ok: bool, workers: &[(&str, u32, u64)]) -> HealthReport {
    let records = workers
        .iter()
        .map(|&(name, pid, heartbeat_ms)| record(name, pid, 0, heartbeat_ms))
        .collect();
    report_of(redis_ok, records)
}

/// A worker's record with its beat counter and wall-clock stamp.
fn record(name: &str, pid: u32, beats: u64, heartbeat_ms: u64) -> WorkerRecord {
    WorkerRecord {
        name: name.to_string(),
        host: "test".into(),
        pid,
        model: "noop".into(),
        started_ms: 0,
        heartbeat_ms,
        beats,
        uptime_ms: None,
        instance: format!("instance-{pid}"),
        jobs_done: 0,
        current_job: None,
    }
}

fn report_of(redis_ok: bool, records: Vec<WorkerRecord>) -> HealthReport {
    HealthReport {
        redis_ok,
        redis_error: (!redis_ok).then(|| "connection refused".to_string()),
        api_ready: true,
        workers: records
            .into_iter()
            .map(|record| (record.name.clone(), record))
            .collect(),
    }
}

fn signals(actions: &[Action]) -> Vec<(String, Signal)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Signal { name, signal, .. } => Some((name.clone(), *signal)),
            _ => None,
        })
        .collect()
}

fn spawned(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Spawn { name, .. } => Some(name.clone()),
            _ => None,
        })
        .collect()
}

fn reply(actions: &[Action]) -> Option<Response> {
    actions.iter().find_map(|a| match a {
        Action::Reply(r) => Some(r.clone()),
        _ => None,
    })
}

fn stop_why(phase: Phase) -> Option<StopWhy> {
    phase.stop().map(|s| s.why)
}

// ---- the table: every phase a process can be in, against every event ----

/// The phases `worker-0` is put in before each event of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Before {
    WaitingForRedis,
    Starting,
    Running,
    Stopping,
    BackingOff,
    Failed,
    Stopped,
}

/// The events of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum On {
    /// Its process dies (SIGKILL).
    Exit,
    /// A deadline far in the future passes (every timer is due).
    Tick,
    /// Redis answers, the api is ready and the worker's record is fresh.
    HealthUp,
    /// Redis does not answer.
    HealthDown,
    /// `fleet restart worker-0`.
    Restart,
    /// `fleet scale 0`.
    ScaleToZero,
    Down,
}

/// A one-worker fleet (crash limit 1) with `worker-0` in `from`, at +10 s.
fn put(from: Before) -> Harness {
    let mut h = harness(1, 1, from == Before::WaitingForRedis);
    let t = h.at(10_000);
    h.run(Event::Start, t);
    match from {
        Before::WaitingForRedis | Before::Starting => {}
        Before::Running => {
            let pid = h.pid("worker-0");
            h.run(
                Event::Health(report(true, &[("worker-0", pid, t.wall_ms)])),
                t,
            );
        }
        Before::Stopping => {
            h.run(
                Event::Restart {
                    all_at_once: true,
                    target: Some("worker-0".into()),
                },
                t,
            );
        }
        Before::BackingOff => {
            // A crash an hour ago is restarted at once, the next one waits:
            // the crash window is one minute, so use a larger limit.
            h = harness(1, 5, false);
            h.run(Event::Start, t);
            h.crash("worker-0", Signal::SIGKILL, t);
            h.crash("worker-0", Signal::SIGKILL, t);
        }
        Before::Failed => {
            h.crash("worker-0", Signal::SIGKILL, t);
            h.crash("worker-0", Signal::SIGKILL, t);
        }
        Before::Stopped => {
            h.run(
                Event::Down {
                    timeout: Duration::from_secs(2),
                },
                t,
            );
            h.exits("api", t);
            h.exits("worker-0", t);
            assert!(h.s.is_down());
        }
    }
    let state = h.phase("worker-0").state();
    let expected = match from {
        Before::WaitingForRedis | Before::Starting => State::Starting,
        Before::Running => State::Running,
        Before::Stopping => State::Stopping,
        Before::BackingOff => State::Restarting,
        Before::Failed => State::Failed,
        Before::Stopped => State::Stopped,
    };
    assert_eq!(state, expected, "setting up {from:?}");
    h
}

/// What the table expects after the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Then {
    /// The event cannot happen in this phase (no process to exit).
    Impossible,
    /// Nothing changes.
    Same,
    /// A new instance started (a new PID).
    NewInstance,
    /// Running, ready.
    Running,
    /// Being stopped, for this reason.
    Stopping(StopWhy),
    /// Killed with SIGKILL, still waiting for its exit.
    Killed,
    Stopped,
    /// Forgotten (scaled away while not running).
    Gone,
    /// The request is refused with an error.
    Refused,
}

fn expected(from: Before, on: On) -> Then {
    use Before as F;
    use On as O;
    match (from, on) {
        (F::WaitingForRedis | F::BackingOff | F::Failed | F::Stopped, O::Exit) => Then::Impossible,
        (F::WaitingForRedis, O::HealthUp) => Then::NewInstance,
        (F::WaitingForRedis, O::Restart) => Then::Same,
        (F::WaitingForRedis | F::BackingOff | F::Failed, O::ScaleToZero) => Then::Gone,
        (F::WaitingForRedis | F::BackingOff | F::Failed, O::Down) => Then::Stopped,
        (F::Starting | F::Running, O::Exit) => Then::NewInstance,
        (F::Starting, O::HealthUp) => Then::Running,
        (F::Running, O::HealthUp) => Then::Killed,
        (F::Starting | F::Running, O::Restart) => Then::Stopping(StopWhy::Restart),
        (F::Starting | F::Running | F::Stopping, O::ScaleToZero) => Then::Stopping(StopWhy::Retire),
        (F::Starting | F::Running | F::Stopping, O::Down) => Then::Stopping(StopWhy::Down),
        (F::Stopping, O::Exit) => Then::NewInstance,
        (F::Stopping, O::Tick) => Then::Killed,
        (F::BackingOff | F::Failed, O::Tick | O::Restart) => Then::NewInstance,
        (F::Stopped, O::Restart | O::ScaleToZero) => Then::Refused,
        (_, O::Tick | O::HealthUp | O::HealthDown | O::Restart | O::Down) => Then::Same,
    }
}

#[test]
fn every_phase_meets_every_event() {
    use Before as F;
    use On as O;
    let froms = [
        F::WaitingForRedis,
        F::Starting,
        F::Running,
        F::Stopping,
        F::BackingOff,
        F::Failed,
        F::Stopped,
    ];
    let ons = [
        O::Exit,
        O::Tick,
        O::HealthUp,
        O::HealthDown,
        O::Restart,
        O::ScaleToZero,
        O::Down,
    ];
    for from in froms {
        for on in ons {
            let then = expected(from, on);
            if then == Then::Impossible {
                continue;
            }
            let mut h = put(from);
            let before = h.phase("worker-0");
            // Far enough for every timer and for Redis to be steady.
            let at = h.at(10_000 + 3_600_000);
            let event = match on {
                O::Exit => Event::Exited {
                    pid: before.pid().unwrap(),
                    exit: Exit::Signal {
                        signal: Signal::SIGKILL,
                        core_dumped: false,
                    },
                },
                O::Tick => Event::Tick,
                O::HealthUp => {
                    // A running worker's record is the one it registered
                    // with at +10 s, unchanged: by now it is hung, Redis
                    // having answered since +10 s.
                    let workers: Vec<_> = before
                        .pid()
                        .map(|pid| ("worker-0", pid, h.at(10_000).wall_ms))
                        .into_iter()
                        .collect();
                    if from == F::Running {
                        h.run(Event::Health(report(true, &[])), h.at(10_000));
                    }
                    Event::Health(report(true, &workers))
                }
                O::HealthDown => Event::Health(report(false, &[])),
                O::Restart => Event::Restart {
                    all_at_once: false,
                    target: Some("worker-0".into()),
                },
                O::ScaleToZero => Event::Scale { workers: 0 },
                O::Down => Event::Down {
                    timeout: Duration::from_secs(2),
                },
            };
            // A Starting worker becomes Running on HealthUp before any hang
            // check: give it a fresh record instead.
            let event = match (from, on, event) {
                (F::Starting, O::HealthUp, _) => {
                    let pid = before.pid().unwrap();
                    Event::Health(report(true, &[("worker-0", pid, at.wall_ms)]))
                }
                (_, _, event) => event,
            };
            let actions = h.run(event, at);
            let after = h.s.phase("worker-0");
            let case = format!("{from:?} + {on:?}: {before:?} -> {after:?}, actions {actions:?}");
            match then {
                Then::Impossible => unreachable!(),
                Then::Same => assert_eq!(after, Some(before), "{case}"),
                Then::NewInstance => {
                    let after = after.unwrap();
                    assert_eq!(after.state(), State::Starting, "{case}");
                    assert!(
                        after.pid().is_some() && after.pid() != before.pid(),
                        "{case}"
                    );
                    let starts = spawned(&actions)
                        .iter()
                        .filter(|n| *n == "worker-0")
                        .count();
                    assert_eq!(starts, 1, "{case}");
                }
                Then::Running => assert_eq!(after.unwrap().state(), State::Running, "{case}"),
                Then::Stopping(why) => {
                    assert_eq!(stop_why(after.unwrap()), Some(why), "{case}");
                    assert_eq!(after.unwrap().pid(), before.pid(), "{case}");
                }
                Then::Killed => {
                    assert!(after.unwrap().stop().is_some_and(|s| s.killed), "{case}");
                    assert_eq!(
                        signals(&actions),
                        [("worker-0".into(), Signal::SIGKILL)],
                        "{case}"
                    );
                }
                Then::Stopped => assert_eq!(after, Some(Phase::Stopped), "{case}"),
                Then::Gone => assert_eq!(after, None, "{case}"),
                Then::Refused => {
                    assert!(
                        matches!(reply(&actions), Some(Response::Error { .. })),
                        "{case}"
                    );
                    assert_eq!(after, Some(before), "{case}");
                }
            }
        }
    }
}

// ---- stories: several events in a row ----

#[test]
fn a_crash_restarts_at_once_then_after_growing_delays_then_gives_up() {
    let mut h = harness(1, 3, false);
    let t = h.at(0);
    h.run(Event::Start, t);
    let first = h.pid("worker-0");
    assert_eq!(h.row("api").state, State::Starting);

    // First crash: a new process at once, its PID file cleared first.
    let actions = h.crash("worker-0", Signal::SIGKILL, t);
    assert!(matches!(&actions[0], Action::ClearPidFile { name, .. } if name == "worker-0"));
    let second = h.pid("worker-0");
    assert_ne!(second, first);
    let r = h.row("worker-0");
    assert_eq!(r.restarts, 1);
    let exit = r.last_exit.unwrap();
    assert_eq!(exit.status.signal.as_deref(), Some("SIGKILL"));
    assert_eq!(exit.pid, first);
    assert_eq!(exit.reason, "crashed");

    // Second crash: 100 ms later; third: 200 ms.
    for (delay, restarts) in [(100, 2), (200, 3)] {
        h.crash("worker-0", Signal::SIGKILL, t);
        let r = h.row("worker-0");
        assert_eq!(r.state, State::Restarting);
        assert_eq!(r.pid, None);
        assert_eq!(h.s.next_deadline(), Some(h.at(delay).now));
        h.run(Event::Tick, h.at(delay - 1));
        assert_eq!(h.row("worker-0").pid, None, "restarted before its delay");
        h.run(Event::Tick, h.at(delay));
        assert_eq!(h.row("worker-0").restarts, restarts);
        assert!(h.row("worker-0").pid.is_some());
    }

    // Fourth crash within the window: more than 3, so failed.
    h.crash("worker-0", Signal::SIGABRT, t);
    let r = h.row("worker-0");
    assert_eq!(r.state, State::Failed);
    assert_eq!(r.pid, None);
    assert_eq!(
        r.last_exit.unwrap().status.signal.as_deref(),
        Some("SIGABRT")
    );
    // It rests for the cool-down (the sample's 5 minutes), then is tried again.
    assert_eq!(h.s.next_deadline(), Some(h.at(300_000).now));
    assert!(h.row("worker-0").retry_at_ms.is_some());
    assert_eq!(h.row("worker-0").failed_times, Some(1));
    h.run(Event::Tick, h.at(299_000));
    assert_eq!(
        h.row("worker-0").pid,
        None,
        "tried again before its cool-down"
    );
    // The api was never touched.
    assert_eq!(h.row("api").restarts, 0);

    // `fleet restart worker-0` gives it another chance.
    let actions = h.run(
        Event::Restart {
            all_at_once: true,
            target: Some("worker-0".into()),
        },
        t,
    );
    assert_eq!(
        reply(&actions),
        Some(Response::Restarting {
            names: vec!["worker-0".into()]
        })
    );
    assert_eq!(h.row("worker-0").state, State::Starting);
    assert!(h.row("worker-0").pid.is_some());
    assert_eq!(
        h.row("worker-0").failed_times,
        None,
        "the failed streak ends"
    );
    let actions = h.run(
        Event::Restart {
            all_at_once: true,
            target: Some("nginx".into()),
        },
        t,
    );
    assert!(matches!(reply(&actions), Some(Response::Error { .. })));
}

#[test]
fn a_failed_process_is_tried_again_after_its_cool_down_which_doubles() {
    let mut h = harness(1, 1, false);
    let t = h.at(0);
    h.run(Event::Start, t);
    h.crash("worker-0", Signal::SIGKILL, t);
    h.crash("worker-0", Signal::SIGKILL, t);
    assert_eq!(h.row("worker-0").state, State::Failed);
    let actions = h.run(Event::Tick, h.at(300_000));
    assert_eq!(spawned(&actions), ["worker-0"]);
    assert_eq!(h.s.status(t).cooldown_retries, 1);
    // It fails again at once: the next cool-down is twice as long.
    h.crash("worker-0", Signal::SIGKILL, h.at(300_000));
    h.crash("worker-0", Signal::SIGKILL, h.at(300_000));
    assert_eq!(h.row("worker-0").failed_times, Some(2));
    assert_eq!(h.s.next_deadline(), Some(h.at(900_000).now));
}

#[test]
fn a_process_that_cannot_be_started_backs_off_like_a_crash() {
    let mut h = harness(1, 5, false);
    h.fail_spawns = true;
    let t = h.at(0);
    let actions = h.run(Event::Start, t);
    // api and worker-0: each tried at once, then again after 100 ms.
    assert_eq!(spawned(&actions), ["api", "api", "worker-0", "worker-0"]);
    let r = h.row("worker-0");
    assert_eq!(r.state, State::Restarting);
    assert!(
        r.last_exit
            .unwrap()
            .reason
            .starts_with("could not start: No such file")
    );
    h.fail_spawns = false;
    h.run(Event::Tick, h.at(100));
    assert_eq!(h.row("worker-0").state, State::Starting);
    assert_eq!(h.row("worker-0").restarts, 0, "the first start that worked");
}

#[test]
fn exits_during_a_redis_outage_are_not_counted_but_exits_without_redis_ever_are() {
    let mut h = harness(1, 1, false);
    let t = h.at(0);
    h.run(Event::Start, t);
    h.run(Event::Health(report(true, &[])), t);
    h.run(Event::Health(report(false, &[])), t);
    let mut now = t;
    for _ in 0..5 {
        h.crash("worker-0", Signal::SIGKILL, now);
        let r = h.row("worker-0");
        assert_ne!(r.state, State::Failed, "an outage made it fail");
        assert!(
            r.last_exit
                .unwrap()
                .reason
                .contains("Redis was unreachable")
        );
        let due = h.s.next_deadline().expect("a delayed restart");
        now = h.t0.after(due - h.t0.now);
        h.run(Event::Tick, now);
        assert!(h.row("worker-0").pid.is_some());
    }

    // A Redis that never answered: crashes count (limit 1: the second fails).
    let mut g = harness(1, 1, false);
    g.run(Event::Start, t);
    g.run(Event::Health(report(false, &[])), t);
    g.crash("worker-0", Signal::SIGKILL, t);
    assert_eq!(g.row("worker-0").last_exit.unwrap().reason, "crashed");
    g.crash("worker-0", Signal::SIGKILL, t);
    assert_eq!(g.row("worker-0").state, State::Failed);
}

#[test]
fn a_registered_worker_whose_heartbeat_stops_changing_is_hung_unless_redis_just_came_back() {
    let mut h = harness(1, 5, false);
    let t = h.at(0);
    let wall = 1_000_000;
    h.run(Event::Start, t);
    let worker = h.pid("worker-0");
    h.run(
        Event::Health(report(true, &[("worker-0", worker, wall)])),
        t,
    );
    assert_eq!(h.row("worker-0").state, State::Running, "registered");
    let api = h.pid("api");
    assert_eq!(h.row("api").state, State::Running);
    // Another worker's record with a different PID is not this one's.
    let other = report(true, &[("worker-0", worker + 1, wall + 900)]);
    h.run(Event::Health(other), t);
    assert_eq!(
        h.phase("worker-0"),
        Phase::Running {
            instance: h.phase("worker-0").instance().unwrap(),
            heartbeat: Some(Heartbeat {
                beats: 0,
                heartbeat_ms: wall,
                seen: t.now,
            }),
        }
    );

    // Redis blinked: back since t+2s. At t+3s the heartbeat has not changed
    // for 3 s, but Redis has only been back 1 s: not hung.
    h.run(Event::Health(report(false, &[])), h.at(1000));
    h.run(
        Event::Health(report(true, &[("worker-0", worker, wall)])),
        h.at(2000),
    );
    let actions = h.run(
        Event::Health(report(true, &[("worker-0", worker, wall)])),
        h.at(3000),
    );
    assert!(signals(&actions).is_empty(), "killed right after an outage");

    // At t+5s Redis has answered for 3 s (> 2 s) and the heartbeat has not
    // changed for 5 s.
    let actions = h.run(
        Event::Health(report(true, &[("worker-0", worker, wall)])),
        h.at(5000),
    );
    assert_eq!(signals(&actions), [("worker-0".into(), Signal::SIGKILL)]);
    assert_eq!(h.row("worker-0").state, State::Stopping);
    h.crash("worker-0", Signal::SIGKILL, h.at(5000));
    let r = h.row("worker-0");
    assert!(
        r.last_exit.as_ref().unwrap().reason.starts_with("hung"),
        "{r:?}"
    );
    assert_ne!(h.pid("worker-0"), worker, "not restarted");
    assert_eq!(h.pid("api"), api);
}

/// Whose wall clock steps in [`clock_steps_kill_no_worker_that_beats_and_hide_no_hang`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stepped {
    /// The worker's host: its records' `heartbeat_ms` jump.
    Worker,
    /// The watchdog's host: the wall clock of its moments jumps.
    Watchdog,
}

#[test]
fn clock_steps_kill_no_worker_that_beats_and_hide_no_hang() {
    // The hang limit is 2 s (the harness's). A worker beats every 2 s and is
    // probed every 500 ms; at +10 s a wall clock steps by 120 s, forward or
    // back. The watchdog's monotonic clock (`Moment::now`) never steps.
    let cases = [
        (Stepped::Worker, 120_000),
        (Stepped::Worker, -120_000),
        (Stepped::Watchdog, 120_000),
        (Stepped::Watchdog, -120_000),
    ];
    for (stepped, step_ms) in cases {
        let case = format!("{stepped:?} clock stepped by {step_ms} ms");
        let mut h = harness(1, 5, false);
        h.run(Event::Start, h.at(0));
        let pid = h.pid("worker-0");
        let moment = |h: &Harness, ms: u64| {
            let mut at = h.at(ms);
            if stepped == Stepped::Watchdog && ms >= 10_000 {
                at.wall_ms = at.wall_ms.saturating_add_signed(step_ms);
            }
            at
        };
        let worker_wall = |h: &Harness, ms: u64| {
            let wall = h.at(ms).wall_ms;
            if stepped == Stepped::Worker && ms >= 10_000 {
                wall.saturating_add_signed(step_ms)
            } else {
                wall
            }
        };
        let mut beats = 0;
        let mut stamp = 0;
        for ms in (0..=30_000).step_by(500) {
            if ms % 2_000 == 0 {
                beats += 1;
                stamp = worker_wall(&h, ms);
            }
            let probe = report_of(true, vec![record("worker-0", pid, beats, stamp)]);
            let actions = h.run(Event::Health(probe), moment(&h, ms));
            assert!(signals(&actions).is_empty(), "{case}: killed at +{ms} ms");
        }
        assert_eq!(h.row("worker-0").state, State::Running, "{case}");
        assert_eq!(h.pid("worker-0"), pid, "{case}");

        // Then it freezes: its record stays as written at +30 s, whatever its
        // stamp says (120 s ahead, or behind). Hung once unchanged for more
        // than 2 s on the monotonic clock: not at +32 s, at +32.5 s.
        let frozen = || report_of(true, vec![record("worker-0", pid, beats, stamp)]);
        let actions = h.run(Event::Health(frozen()), moment(&h, 32_000));
        assert!(signals(&actions).is_empty(), "{case}: killed at the limit");
        let actions = h.run(Event::Health(frozen()), moment(&h, 32_500));
        assert_eq!(
            signals(&actions),
            [("worker-0".into(), Signal::SIGKILL)],
            "{case}: a frozen worker was not killed"
        );
    }
}

#[test]
fn uptimes_in_the_status_follow_the_monotonic_clock_not_the_wall_clock() {
    let mut h = harness(1, 5, false);
    h.run(Event::Start, h.at(0));
    // 5 s later on the monotonic clock; the wall clock stepped back 120 s,
    // then forward 120 s.
    for step_ms in [-120_000_i64, 120_000] {
        let mut at = h.at(5_000);
        at.wall_ms = at.wall_ms.saturating_add_signed(step_ms);
        let status = h.s.status(at);
        for name in ["watchdog", "api", "worker-0"] {
            let row = status
                .processes
                .iter()
                .find(|p| p.name == name)
                .unwrap_or_else(|| panic!("no {name}"));
            assert_eq!(row.uptime_ms, Some(5_000), "{name}, step {step_ms} ms");
        }
    }
}

#[test]
fn a_heartbeat_that_changes_only_its_counter_or_only_its_stamp_is_a_beat() {
    // The counter is what new workers change; records written before it
    // existed change only their stamp. Either is a beat; only a record
    // that changes in neither is silent.
    let mut h = harness(1, 5, false);
    h.run(Event::Start, h.at(0));
    let pid = h.pid("worker-0");
    let probes = [
        (0, record("worker-0", pid, 1, 500)),
        // The counter moves, the stamp does not (a clock stopped, or stepped
        // back to the same millisecond).
        (1_500, record("worker-0", pid, 2, 500)),
        (3_000, record("worker-0", pid, 3, 500)),
        // The stamp moves, the counter does not (an older worker).
        (4_500, record("worker-0", pid, 3, 400)),
        (6_000, record("worker-0", pid, 3, 900)),
    ];
    for (ms, beat) in probes {
        let actions = h.run(Event::Health(report_of(true, vec![beat])), h.at(ms));
        assert!(signals(&actions).is_empty(), "killed at +{ms} ms");
    }
    // Nothing moves from +6 s: hung after 2 s.
    let silent = || report_of(true, vec![record("worker-0", pid, 3, 900)]);
    assert!(signals(&h.run(Event::Health(silent()), h.at(8_000))).is_empty());
    assert_eq!(
        signals(&h.run(Event::Health(silent()), h.at(8_001))),
        [("worker-0".into(), Signal::SIGKILL)]
    );
}

/// The predecessor a spawn of `name` among `actions` names, if any.
fn predecessor(actions: &[Action], name: &str) -> Option<String> {
    actions.iter().find_map(|a| match a {
        Action::Spawn { name: n, launch } if n == name => Some(
            launch
                .env
                .iter()
                .find(|(key, _)| key == crate::watchdog::roles::WORKER_PREDECESSOR_ENV)
                .map(|(_, value)| value.clone()),
        ),
        _ => None,
    })?
}

#[test]
fn a_restarted_worker_is_told_the_instance_last_registered_under_its_name() {
    let mut h = harness(1, 5, false);
    let actions = h.run(Event::Start, h.at(0));
    assert_eq!(spawned(&actions), ["api", "worker-0"]);
    assert_eq!(
        predecessor(&actions, "worker-0"),
        None,
        "none registered yet"
    );
    let first = h.pid("worker-0");
    let registered = report_of(true, vec![record("worker-0", first, 1, 1)]);
    h.run(Event::Health(registered), h.at(100));

    // It dies: its successor may take its record over at once.
    let actions = h.crash("worker-0", Signal::SIGKILL, h.at(200));
    assert_eq!(
        predecessor(&actions, "worker-0"),
        Some(format!("instance-{first}"))
    );
    // The successor dies before it registers: the record under the name is
    // still the first one's, and so is the next successor's predecessor.
    h.crash("worker-0", Signal::SIGKILL, h.at(300));
    let actions = h.run(Event::Tick, h.at(10_000));
    assert_eq!(spawned(&actions), ["worker-0"]);
    assert_eq!(
        predecessor(&actions, "worker-0"),
        Some(format!("instance-{first}"))
    );
    // The api is never told one.
    let actions = h.crash("api", Signal::SIGKILL, h.at(10_000));
    assert_eq!(spawned(&actions), ["api"]);
    assert_eq!(predecessor(&actions, "api"), None);
}

#[test]
fn down_stops_the_apps_before_redis_and_kills_what_ignores_sigterm() {
    let mut h = harness(2, 5, true);
    let t = h.at(0);
    let actions = h.run(Event::Start, t);
    // Only Redis starts; the others wait for it to answer.
    assert_eq!(spawned(&actions), ["redis"]);
    assert_eq!(h.row("api").pid, None);
    let actions = h.run(Event::Health(report(true, &[])), t);
    assert_eq!(spawned(&actions), ["api", "worker-0", "worker-1"]);
    assert_eq!(h.row("redis").state, State::Running);

    let actions = h.run(
        Event::Down {
            timeout: Duration::from_secs(2),
        },
        t,
    );
    let sigterm = |name: &str| (name.to_string(), Signal::SIGTERM);
    assert_eq!(
        signals(&actions),
        [sigterm("api"), sigterm("worker-0"), sigterm("worker-1")]
    );
    assert!(!h.s.is_down());
    // The api stops on SIGTERM; Redis has not been signalled yet.
    let actions = h.exits("api", h.at(500));
    assert!(signals(&actions).is_empty());
    assert_eq!(h.row("redis").state, State::Running);
    // The workers ignore SIGTERM; at the deadline they get SIGKILL.
    assert_eq!(h.s.next_deadline(), Some(h.at(2000).now));
    let actions = h.run(Event::Tick, h.at(2000));
    let sigkill = |name: &str| (name.to_string(), Signal::SIGKILL);
    assert_eq!(
        signals(&actions),
        [sigkill("worker-0"), sigkill("worker-1")]
    );
    h.crash("worker-0", Signal::SIGKILL, h.at(2000));
    let actions = h.crash("worker-1", Signal::SIGKILL, h.at(2000));
    // Now Redis gets its SIGTERM.
    assert_eq!(signals(&actions), [sigterm("redis")]);
    assert_eq!(h.row("redis").state, State::Stopping);
    h.exits("redis", h.at(2100));
    assert!(h.s.is_down());
    let report = h.s.down_report();
    let names: Vec<&str> = report.stopped.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["api", "worker-0", "worker-1", "redis"]);
    let worker = &report.stopped[1];
    assert!(
        worker.killed && worker.how.starts_with("SIGKILL"),
        "{worker:?}"
    );
    let api = &report.stopped[0];
    assert!(!api.killed && api.how.contains("after SIGTERM"), "{api:?}");
    assert!(h.s.live_pids().is_empty());
    // Nothing restarts after down.
    assert_eq!(h.s.next_deadline(), None);
}

#[test]
fn down_records_what_was_not_running_and_what_exited_on_its_own() {
    let mut h = harness(2, 1, false);
    let t = h.at(0);
    h.run(Event::Start, t);
    h.crash("worker-1", Signal::SIGKILL, t);
    h.crash("worker-1", Signal::SIGKILL, t);
    assert_eq!(h.row("worker-1").state, State::Failed);
    h.run(
        Event::Down {
            timeout: Duration::from_secs(2),
        },
        t,
    );
    h.crash("worker-0", Signal::SIGSEGV, t);
    h.exits("api", t);
    assert!(h.s.is_down());
    let stopped = h.s.down_report().stopped;
    let how: Vec<(&str, &str)> = stopped
        .iter()
        .map(|e| (e.name.as_str(), e.how.as_str()))
        .collect();
    assert_eq!(
        how,
        [
            ("worker-1", "was not running (failed)"),
            ("worker-0", "exited (signal SIGSEGV) 0ms after SIGTERM"),
            ("api", "exited (exit code 0) 0ms after SIGTERM"),
        ]
    );
    let actions = h.run(
        Event::Restart {
            target: None,
            all_at_once: true,
        },
        t,
    );
    assert_eq!(
        reply(&actions),
        Some(Response::Error {
            message: "the fleet is shutting down".into()
        })
    );
}

#[test]
fn scale_adds_the_lowest_free_numbers_and_retires_the_highest() {
    let mut h = harness(1, 5, false);
    let t = h.at(0);
    h.run(Event::Start, t);
    let api = h.pid("api");
    let w0 = h.pid("worker-0");
    let actions = h.run(Event::Scale { workers: 3 }, t);
    assert_eq!(
        reply(&actions),
        Some(Response::Scaled {
            workers: 3,
            started: vec!["worker-1".into(), "worker-2".into()],
            stopping: vec![],
        })
    );
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::SaveConfig { config, .. } if config.workers == 3))
    );
    let actions = h.run(Event::Scale { workers: 1 }, t);
    assert_eq!(
        reply(&actions),
        Some(Response::Scaled {
            workers: 1,
            started: vec![],
            stopping: vec!["worker-2".into(), "worker-1".into()],
        })
    );
    // A retiring worker is not restarted by `fleet restart`.
    let actions = h.run(
        Event::Restart {
            all_at_once: true,
            target: Some("worker".into()),
        },
        t,
    );
    assert_eq!(
        reply(&actions),
        Some(Response::Restarting {
            names: vec!["worker-0".into()]
        })
    );
    h.exits("worker-2", t);
    h.exits("worker-1", t);
    let names: Vec<String> =
        h.s.status(t)
            .processes
            .into_iter()
            .map(|p| p.name)
            .collect();
    assert_eq!(names, ["watchdog", "api", "worker-0"]);
    assert_eq!(h.pid("api"), api);
    assert_eq!(h.pid("worker-0"), w0);
    let actions = h.run(
        Event::Scale {
            workers: MAX_WORKERS + 1,
        },
        t,
    );
    assert!(matches!(reply(&actions), Some(Response::Error { .. })));
    // Scaling up again reuses the lowest free number; order is by number.
    h.run(Event::Scale { workers: 12 }, t);
    let names: Vec<String> =
        h.s.status(t)
            .processes
            .into_iter()
            .map(|p| p.name)
            .collect();
    assert_eq!(
        names[3..5],
        ["worker-1".to_string(), "worker-2".to_string()]
    );
    assert_eq!(names.last().map(String::as_str), Some("worker-11"));
}

#[test]
fn a_rolling_restart_stops_the_next_worker_once_the_previous_one_is_back() {
    let mut h = harness(3, 5, false);
    let t = h.at(0);
    h.run(Event::Start, t);
    let register = |h: &mut Harness, at: Moment| {
        let workers: Vec<(&str, u32, u64)> = ["worker-0", "worker-1", "worker-2"]
            .into_iter()
            .filter_map(|name| h.phase(name).pid().map(|pid| (name, pid, at.wall_ms)))
            .collect();
        h.run(Event::Health(report(true, &workers)), at)
    };
    register(&mut h, t);
    let old: Vec<u32> = ["worker-0", "worker-1", "worker-2"]
        .map(|n| h.pid(n))
        .to_vec();

    let actions = h.run(
        Event::Restart {
            target: Some("worker".into()),
            all_at_once: false,
        },
        t,
    );
    let sigterm = |name: &str| (name.to_string(), Signal::SIGTERM);
    assert_eq!(signals(&actions), [sigterm("worker-0")], "one at a time");
    assert_eq!(
        reply(&actions),
        Some(Response::Restarting {
            names: vec!["worker-0".into(), "worker-1".into(), "worker-2".into()]
        })
    );
    // worker-0 goes and comes back: worker-1 waits until it is registered.
    let actions = h.exits("worker-0", h.at(100));
    assert!(signals(&actions).is_empty(), "{actions:?}");
    assert_eq!(h.phase("worker-0").state(), State::Starting);
    let actions = {
        let at = h.at(200);
        register(&mut h, at)
    };
    assert_eq!(signals(&actions), [sigterm("worker-1")]);
    assert_eq!(h.phase("worker-2").pid(), Some(old[2]), "still judging");
    // worker-1's new instance crashes (twice: the second waits): the line
    // waits for it.
    h.exits("worker-1", h.at(300));
    h.crash("worker-1", Signal::SIGKILL, h.at(300));
    h.crash("worker-1", Signal::SIGKILL, h.at(300));
    assert_eq!(h.phase("worker-1").state(), State::Restarting);
    let actions = {
        let at = h.at(350);
        register(&mut h, at)
    };
    assert!(signals(&actions).is_empty(), "{actions:?}");
    h.run(Event::Tick, h.at(400));
    let actions = {
        let at = h.at(500);
        register(&mut h, at)
    };
    assert_eq!(signals(&actions), [sigterm("worker-2")]);
    h.exits("worker-2", h.at(600));
    {
        let at = h.at(700);
        register(&mut h, at)
    };
    for (name, old) in ["worker-0", "worker-1", "worker-2"].iter().zip(old) {
        assert_eq!(h.phase(name).state(), State::Running, "{name}");
        assert_ne!(h.pid(name), old, "{name} was restarted");
    }

    // --all-at-once: every worker at once.
    let actions = h.run(
        Event::Restart {
            target: Some("worker".into()),
            all_at_once: true,
        },
        h.at(800),
    );
    assert_eq!(
        signals(&actions),
        [
            sigterm("worker-0"),
            sigterm("worker-1"),
            sigterm("worker-2")
        ]
    );
}

#[test]
fn down_ends_a_rolling_restart() {
    let mut h = harness(2, 5, false);
    let t = h.at(0);
    h.run(Event::Start, t);
    let restart = Event::Restart {
        target: None,
        all_at_once: false,
    };
    let actions = h.run(restart, t);
    assert_eq!(signals(&actions).len(), 1, "the api first: {actions:?}");
    h.run(
        Event::Down {
            timeout: Duration::from_secs(2),
        },
        t,
    );
    h.exits("api", t);
    h.exits("worker-0", t);
    let actions = h.exits("worker-1", t);
    assert!(spawned(&actions).is_empty(), "nothing restarts after down");
    assert!(h.s.is_down());
}
