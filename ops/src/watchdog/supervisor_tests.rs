//! The supervisor's decisions, driven by hand with stand-in processes
//! (`sleep` behind a shell script) instead of the real binaries.
//!
//! The tests reap their children with `waitpid(PID)` and feed the exits to the
//! supervisor themselves, as the event loop would; never `waitpid(-1)`, which
//! would steal the children of other tests running in the same process.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;
use verdict_shared::queue::WorkerRecord;

use super::*;
use crate::config::RedisPlan;
use crate::control::protocol::ProcessStatus;
use crate::embedded_redis::Appendfsync;

/// A supervisor whose children are killed and reaped when the test ends.
struct Fixture {
    supervisor: Supervisor,
    _dir: tempfile::TempDir,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        for pid in self.supervisor.live_pids() {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            let _ = waitpid(Pid::from_raw(pid as i32), None);
        }
    }
}

fn script(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// `workers` stand-in workers and a stand-in api against an external Redis;
/// with `embedded`, a stand-in redis-server too. Workers ignore SIGTERM when
/// `stubborn`.
fn fixture(workers: usize, crash_limit: u32, embedded: bool, stubborn: bool) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::resolve(Some(&dir.path().join("home"))).unwrap();
    home.create().unwrap();
    let plain = script(dir.path(), "stand-in", "exec sleep 30");
    let worker = if stubborn {
        script(dir.path(), "stubborn", "trap '' TERM\nexec sleep 30")
    } else {
        plain.clone()
    };
    let mut config = crate::config::sample(home.root());
    config.workers = workers;
    config.api_program = plain.clone();
    config.worker_program = worker;
    config.policy.crash_limit = crash_limit;
    config.policy.hung_after_ms = 2_000;
    config.policy.stop_timeout_ms = 2_000;
    if embedded {
        config.redis = RedisPlan::Embedded {
            program: plain,
            socket: home.redis_socket(),
            data_dir: home.redis_dir(),
            appendfsync: Appendfsync::Everysec,
        };
    }
    Fixture {
        supervisor: Supervisor::new(config, home),
        _dir: dir,
    }
}

fn row(supervisor: &Supervisor, name: &str) -> ProcessStatus {
    supervisor
        .status()
        .processes
        .into_iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("no {name}"))
}

fn pid(supervisor: &Supervisor, name: &str) -> u32 {
    row(supervisor, name)
        .pid
        .unwrap_or_else(|| panic!("{name} is not running"))
}

/// Waits for `pid` to exit and returns how.
fn reap(pid: u32) -> Exit {
    match waitpid(Pid::from_raw(pid as i32), None).unwrap() {
        WaitStatus::Exited(_, code) => Exit::Code(code),
        WaitStatus::Signaled(_, signal, core_dumped) => Exit::Signal {
            signal,
            core_dumped,
        },
        other => panic!("unexpected wait status {other:?}"),
    }
}

/// Sends `signal` to `name`, reaps it and tells the supervisor; returns the old PID.
fn crash(supervisor: &mut Supervisor, name: &str, signal: Signal, now: Instant) -> u32 {
    let old = pid(supervisor, name);
    kill(Pid::from_raw(old as i32), signal).unwrap();
    let exit = reap(old);
    supervisor.on_exit(old, exit, now);
    old
}

fn report(redis_ok: bool, workers: &[(&str, u32, u64)], wall_ms: u64) -> HealthReport {
    HealthReport {
        redis_ok,
        redis_error: (!redis_ok).then(|| "connection refused".to_string()),
        api_ready: true,
        workers: workers
            .iter()
            .map(|(name, pid, heartbeat_ms)| {
                (
                    name.to_string(),
                    WorkerRecord {
                        name: name.to_string(),
                        host: "test".into(),
                        pid: *pid,
                        model: "noop".into(),
                        started_ms: 0,
                        heartbeat_ms: *heartbeat_ms,
                        jobs_done: 0,
                        current_job: None,
                    },
                )
            })
            .collect(),
        wall_ms,
    }
}

#[test]
fn a_crash_restarts_at_once_then_after_growing_delays_then_gives_up() {
    let mut f = fixture(1, 3, false, false);
    let s = &mut f.supervisor;
    let t = Instant::now();
    s.start(t);
    let first = pid(s, "worker-0");
    assert_eq!(row(s, "api").state, State::Starting);

    // First crash: a new process at once.
    let old = crash(s, "worker-0", Signal::SIGKILL, t);
    assert_eq!(old, first);
    let second = pid(s, "worker-0");
    assert_ne!(second, first);
    let r = row(s, "worker-0");
    assert_eq!(r.restarts, 1);
    let exit = r.last_exit.unwrap();
    assert_eq!(exit.status.signal.as_deref(), Some("SIGKILL"));
    assert_eq!(exit.pid, first);
    assert_eq!(exit.reason, "crashed");
    // The stale PID file was removed and the new process took its own.
    let file = fs::read_to_string(s.home.pid_file("worker-0")).unwrap();
    assert_eq!(file.trim(), second.to_string());

    // Second crash: 100 ms later; third: 200 ms.
    for (delay, restarts) in [(100, 2), (200, 3)] {
        crash(s, "worker-0", Signal::SIGKILL, t);
        let r = row(s, "worker-0");
        assert_eq!(r.state, State::Restarting);
        assert_eq!(r.pid, None);
        assert_eq!(s.next_deadline(), Some(t + Duration::from_millis(delay)));
        s.on_timer(t + Duration::from_millis(delay - 1));
        assert_eq!(row(s, "worker-0").pid, None, "restarted before its delay");
        s.on_timer(t + Duration::from_millis(delay));
        assert_eq!(row(s, "worker-0").restarts, restarts);
        assert!(row(s, "worker-0").pid.is_some());
    }

    // Fourth crash within the window: more than 3, so failed.
    crash(s, "worker-0", Signal::SIGABRT, t);
    let r = row(s, "worker-0");
    assert_eq!(r.state, State::Failed);
    assert_eq!(r.pid, None);
    assert_eq!(
        r.last_exit.unwrap().status.signal.as_deref(),
        Some("SIGABRT")
    );
    // It rests for the cool-down (the sample's 5 minutes), then is tried again.
    assert_eq!(s.next_deadline(), Some(t + Duration::from_secs(300)));
    assert!(row(s, "worker-0").retry_at_ms.is_some());
    assert_eq!(row(s, "worker-0").failed_times, Some(1));
    s.on_timer(t + Duration::from_secs(299));
    assert_eq!(
        row(s, "worker-0").pid,
        None,
        "tried again before its cool-down"
    );
    // The api was never touched.
    assert_eq!(row(s, "api").restarts, 0);

    // `fleet restart worker-0` gives it another chance.
    assert_eq!(s.restart(Some("worker-0"), t).unwrap(), ["worker-0"]);
    assert_eq!(row(s, "worker-0").state, State::Starting);
    assert!(row(s, "worker-0").pid.is_some());
    assert_eq!(
        row(s, "worker-0").failed_times,
        None,
        "the failed streak ends"
    );
    assert!(s.restart(Some("nginx"), t).is_err());
}

#[test]
fn exits_during_a_redis_outage_are_not_counted_but_exits_without_redis_ever_are() {
    let mut f = fixture(1, 1, false, false);
    let s = &mut f.supervisor;
    let t = Instant::now();
    s.start(t);
    s.on_health(&report(true, &[], 0), t);
    s.on_health(&report(false, &[], 0), t);
    let mut now = t;
    for _ in 0..5 {
        crash(s, "worker-0", Signal::SIGKILL, now);
        let r = row(s, "worker-0");
        assert_ne!(r.state, State::Failed, "an outage made it fail");
        assert!(
            r.last_exit
                .unwrap()
                .reason
                .contains("Redis was unreachable")
        );
        now = s.next_deadline().expect("a delayed restart");
        s.on_timer(now);
        assert!(row(s, "worker-0").pid.is_some());
    }

    // A Redis that never answered: crashes count (limit 1: the second fails).
    let mut g = fixture(1, 1, false, false);
    let s = &mut g.supervisor;
    s.start(t);
    s.on_health(&report(false, &[], 0), t);
    crash(s, "worker-0", Signal::SIGKILL, t);
    assert_eq!(row(s, "worker-0").last_exit.unwrap().reason, "crashed");
    crash(s, "worker-0", Signal::SIGKILL, t);
    assert_eq!(row(s, "worker-0").state, State::Failed);
}

#[test]
fn a_registered_worker_with_an_old_heartbeat_is_hung_unless_redis_just_came_back() {
    let mut f = fixture(1, 5, false, false);
    let s = &mut f.supervisor;
    let t = Instant::now();
    let wall = 1_000_000;
    s.start(t);
    let worker = pid(s, "worker-0");
    s.on_health(&report(true, &[("worker-0", worker, wall)], wall), t);
    assert_eq!(row(s, "worker-0").state, State::Running, "registered");
    // Another worker's record with a different PID is not this one's.
    let api = pid(s, "api");
    assert_eq!(row(s, "api").state, State::Running);

    // Redis blinked: back since t+2s. At t+3s the heartbeat is 3 s old, but
    // Redis has only been back 1 s: not hung.
    s.on_health(&report(false, &[], wall + 1000), t + Duration::from_secs(1));
    s.on_health(
        &report(true, &[("worker-0", worker, wall)], wall + 2000),
        t + Duration::from_secs(2),
    );
    s.on_health(
        &report(true, &[("worker-0", worker, wall)], wall + 3000),
        t + Duration::from_secs(3),
    );
    assert_eq!(pid(s, "worker-0"), worker, "killed right after an outage");

    // At t+5s Redis has answered for 3 s (> 2 s) and the heartbeat is 5 s old.
    s.on_health(
        &report(true, &[("worker-0", worker, wall)], wall + 5000),
        t + Duration::from_secs(5),
    );
    let exit = reap(worker);
    assert_eq!(
        exit,
        Exit::Signal {
            signal: Signal::SIGKILL,
            core_dumped: false
        }
    );
    s.on_exit(worker, exit, t + Duration::from_secs(5));
    let r = row(s, "worker-0");
    assert!(
        r.last_exit.as_ref().unwrap().reason.starts_with("hung"),
        "{r:?}"
    );
    assert_ne!(pid(s, "worker-0"), worker, "not restarted");
    assert_eq!(pid(s, "api"), api);
}

#[test]
fn down_stops_the_apps_before_redis_and_kills_what_ignores_sigterm() {
    let mut f = fixture(2, 5, true, true);
    let s = &mut f.supervisor;
    let t = Instant::now();
    s.start(t);
    // Only Redis starts; the others wait for it to answer.
    let redis = pid(s, "redis");
    assert_eq!(row(s, "api").pid, None);
    s.on_health(&report(true, &[], 0), t);
    let api = pid(s, "api");
    let workers = [pid(s, "worker-0"), pid(s, "worker-1")];
    // Let the stubborn shells install their trap (they exec sleep after it).
    for worker in workers {
        let execed = (0..200).any(|_| {
            std::thread::sleep(Duration::from_millis(10));
            crate::procfs::command_name(worker).as_deref() == Some("sleep")
        });
        assert!(execed, "the stand-in worker did not start");
    }

    s.begin_down(Duration::from_secs(2), t);
    assert!(!s.is_down());
    // The api stops on SIGTERM; Redis has not been signalled yet.
    s.on_exit(api, reap(api), t);
    assert_eq!(row(s, "redis").state, State::Running);
    // The stubborn workers ignore SIGTERM; at the deadline they get SIGKILL.
    assert_eq!(s.next_deadline(), Some(t + Duration::from_secs(2)));
    s.on_timer(t + Duration::from_secs(2));
    for worker in workers {
        let exit = reap(worker);
        assert_eq!(
            exit,
            Exit::Signal {
                signal: Signal::SIGKILL,
                core_dumped: false
            }
        );
        s.on_exit(worker, exit, t + Duration::from_secs(2));
    }
    // Now Redis gets its SIGTERM.
    assert_eq!(row(s, "redis").state, State::Stopping);
    s.on_exit(redis, reap(redis), t + Duration::from_secs(2));
    assert!(s.is_down());
    let report = s.down_report();
    let names: Vec<&str> = report.stopped.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names.last(), Some(&"redis"), "{report:?}");
    let worker_entry = report
        .stopped
        .iter()
        .find(|e| e.name == "worker-0")
        .unwrap();
    assert!(
        worker_entry.killed && worker_entry.how.starts_with("SIGKILL"),
        "{worker_entry:?}"
    );
    let api_entry = report.stopped.iter().find(|e| e.name == "api").unwrap();
    assert!(
        !api_entry.killed && api_entry.how.contains("after SIGTERM"),
        "{api_entry:?}"
    );
    assert!(s.live_pids().is_empty());
    // Nothing restarts after down.
    assert_eq!(s.next_deadline(), None);
}

#[test]
fn scale_adds_the_lowest_free_numbers_and_retires_the_highest() {
    let mut f = fixture(1, 5, false, false);
    let s = &mut f.supervisor;
    let t = Instant::now();
    s.start(t);
    let api = pid(s, "api");
    let w0 = pid(s, "worker-0");
    let (started, stopping) = s.scale(3, t).unwrap();
    assert_eq!(started, ["worker-1", "worker-2"]);
    assert!(stopping.is_empty());
    let w1 = pid(s, "worker-1");
    let w2 = pid(s, "worker-2");
    let (started, stopping) = s.scale(1, t).unwrap();
    assert!(started.is_empty());
    assert_eq!(stopping, ["worker-2", "worker-1"]);
    for old in [w2, w1] {
        s.on_exit(old, reap(old), t);
    }
    let names: Vec<String> = s.status().processes.into_iter().map(|p| p.name).collect();
    assert_eq!(names, ["watchdog", "api", "worker-0"]);
    assert_eq!(pid(s, "api"), api);
    assert_eq!(pid(s, "worker-0"), w0);
    assert!(s.scale(MAX_WORKERS + 1, t).is_err());
    assert_eq!(
        FleetConfig::load(&s.home.config_file()).unwrap().workers,
        1,
        "the new count is recorded"
    );
}
