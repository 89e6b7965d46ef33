//! The watchdog restarts what dies: `kill -9` of a worker gives a new worker
//! within 2 s, counted and logged, and the fleet still finishes jobs; a worker
//! that is alive but stops beating (SIGSTOP) is found hung, killed and
//! replaced; a Redis outage and a clock step of 120 s either way kill no
//! worker that beats.

use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use verdict_e2e::faketime::FakeClock;
use verdict_e2e::fleet::{Fleet, alive, process, wait_for};
use verdict_e2e::redis_server::RedisServer;
use verdict_shared::queue::{WorkerRecord, keys};

#[test]
fn kill_9_of_a_worker_is_restarted_within_two_seconds_counted_and_logged() {
    let fleet = Fleet::new();
    let up = fleet.up(2, &[]);
    assert!(up.ok(), "fleet up failed:\n{}", up.output());
    let old = fleet.pid_in_file("worker-0").expect("worker-0.pid");
    let other = fleet.pid_in_file("worker-1").expect("worker-1.pid");

    let killed_at = Instant::now();
    kill(Pid::from_raw(old as i32), Signal::SIGKILL).unwrap();
    let new = wait_for(Duration::from_secs(2), || {
        fleet
            .pid_in_file("worker-0")
            .filter(|&pid| pid != old && alive(pid) && fleet.is_locked("worker-0"))
    });
    let latency = killed_at.elapsed();
    let new = new.unwrap_or_else(|| {
        panic!(
            "no new worker-0 within 2 s; watchdog log:\n{}",
            fleet.log("watchdog")
        )
    });
    println!(
        "kill -9 -> new worker-0 PID {new} running with its PID file locked after {latency:?}"
    );
    assert!(!alive(old));

    // It registers again; the restart is counted, with the signal that ended
    // the old one; the other worker was not touched.
    let status = wait_for(Duration::from_secs(15), || {
        let (code, status) = fleet.status();
        (code == Some(0)).then_some(status)
    })
    .expect("the fleet did not get back to all running");
    let row = process(&status, "worker-0");
    assert_eq!(row["pid"].as_u64(), Some(u64::from(new)), "{row:#}");
    assert_eq!(row["restarts"], 1, "{row:#}");
    assert_eq!(row["last_exit"]["signal"], "SIGKILL", "{row:#}");
    assert_eq!(
        row["last_exit"]["pid"].as_u64(),
        Some(u64::from(old)),
        "{row:#}"
    );
    assert_eq!(row["last_exit"]["reason"], "crashed", "{row:#}");
    let row = process(&status, "worker-1");
    assert_eq!(row["pid"].as_u64(), Some(u64::from(other)));
    assert_eq!(row["restarts"], 0);
    // The new worker-0 took its name over from the dead one at once: the
    // watchdog, which reaped it, named it as the predecessor (without that,
    // the new one would have waited for the old record to go stale).
    let log = fleet.log("worker-0");
    assert!(
        log.contains("registered in place of its predecessor, which the watchdog reaped"),
        "worker-0 log:\n{log}"
    );

    // Logged with the signal, and `fleet logs --level warn` shows it.
    let log = fleet.log("watchdog");
    assert!(
        log.contains(&format!("worker-0 (PID {old}) crashed: signal SIGKILL")),
        "watchdog log:\n{log}"
    );
    assert!(
        log.contains(&format!("started worker-0 (PID {new}), restart 1")),
        "watchdog log:\n{log}"
    );
    let logs = fleet.run(&["logs", "watchdog", "--level", "warn"]);
    assert!(logs.ok(), "{}", logs.output());
    assert!(
        logs.stdout
            .contains(&format!("worker-0 (PID {old}) crashed: signal SIGKILL")),
        "{}",
        logs.output()
    );
    assert!(
        !logs.stdout.contains(" INFO "),
        "--level warn showed INFO lines:\n{}",
        logs.output()
    );

    // Jobs submitted afterwards complete.
    for _ in 0..4 {
        let id = fleet.submit();
        let job = fleet.wait_job(&id, Duration::from_secs(20));
        assert_eq!(job["state"], "done", "{job:#}");
    }
    // And status counts them: in the queue and in the workers' own records
    // (refreshed with each heartbeat, every 2 s).
    let status = wait_for(Duration::from_secs(10), || {
        let (_, status) = fleet.status();
        let jobs: u64 = ["worker-0", "worker-1"]
            .iter()
            .map(|n| process(&status, n)["jobs_done"].as_u64().unwrap_or(0))
            .sum();
        (jobs == 4).then_some(status)
    })
    .unwrap_or_else(|| {
        panic!(
            "the workers' jobs_done never added up to 4: {:#}",
            fleet.status().1
        )
    });
    let queue = &status["queue"];
    assert_eq!(queue["submitted"], 4, "{queue:#}");
    assert_eq!(queue["done"], 4, "{queue:#}");
    assert_eq!(queue["failed"], 0, "{queue:#}");
    assert_eq!(queue["depth"], 0, "{queue:#}");
    assert_eq!(queue["in_flight"], 0, "{queue:#}");
}

#[test]
fn a_worker_that_stops_beating_is_killed_as_hung_and_replaced() {
    let fleet = Fleet::new();
    let up = fleet.up(1, &["--hung-after", "4s"]);
    assert!(up.ok(), "fleet up failed:\n{}", up.output());
    let old = fleet.pid_in_file("worker-0").expect("worker-0.pid");
    // Alive, holding its lock, but frozen: no heartbeat.
    kill(Pid::from_raw(old as i32), Signal::SIGSTOP).unwrap();
    let stopped_at = Instant::now();
    let new = wait_for(Duration::from_secs(20), || {
        fleet
            .pid_in_file("worker-0")
            .filter(|&pid| pid != old && alive(pid))
    });
    let new = new.unwrap_or_else(|| {
        let _ = kill(Pid::from_raw(old as i32), Signal::SIGKILL);
        panic!(
            "the frozen worker was not replaced; watchdog log:\n{}",
            fleet.log("watchdog")
        )
    });
    println!(
        "SIGSTOP -> hung worker replaced by PID {new} after {:?}",
        stopped_at.elapsed()
    );
    // Not before its heartbeat was older than the limit: the last beat came
    // at most one heartbeat interval (2 s) before SIGSTOP.
    assert!(
        stopped_at.elapsed() >= Duration::from_secs(2),
        "{:?}",
        stopped_at.elapsed()
    );
    assert!(!alive(old));
    let status = wait_for(Duration::from_secs(15), || {
        let (code, status) = fleet.status();
        (code == Some(0)).then_some(status)
    })
    .expect("the fleet did not get back to all running");
    let row = process(&status, "worker-0");
    assert!(
        row["last_exit"]["reason"]
            .as_str()
            .unwrap_or("")
            .starts_with("hung"),
        "{row:#}"
    );
    assert_eq!(row["last_exit"]["signal"], "SIGKILL", "{row:#}");
    assert_eq!(row["restarts"], 1, "{row:#}");
    assert!(
        fleet
            .log("watchdog")
            .contains(&format!("worker-0 (PID {old}) is hung"))
    );
}

#[test]
fn a_redis_outage_longer_than_the_hung_limit_kills_no_worker() {
    let fleet = Fleet::new();
    let up = fleet.up(2, &["--hung-after", "4s"]);
    assert!(up.ok(), "fleet up failed:\n{}", up.output());
    let workers: Vec<u32> = ["worker-0", "worker-1"]
        .iter()
        .map(|n| fleet.pid_in_file(n).expect("pid"))
        .collect();
    let redis = fleet.pid_in_file("redis").expect("redis pid");
    // Redis frozen for longer than the hung limit: no worker can beat, no probe
    // gets an answer. That is an outage, not a hang.
    kill(Pid::from_raw(redis as i32), Signal::SIGSTOP).unwrap();
    std::thread::sleep(Duration::from_secs(6));
    kill(Pid::from_raw(redis as i32), Signal::SIGCONT).unwrap();
    // Time for the probe to see Redis again and for the workers to beat.
    std::thread::sleep(Duration::from_secs(5));
    let status = wait_for(Duration::from_secs(15), || {
        let (code, status) = fleet.status();
        (code == Some(0)).then_some(status)
    })
    .expect("the fleet did not get back to all running");
    for (name, pid) in ["worker-0", "worker-1"].iter().zip(&workers) {
        let row = process(&status, name);
        assert_eq!(
            row["pid"].as_u64(),
            Some(u64::from(*pid)),
            "{name} was replaced: {row:#}"
        );
        assert_eq!(row["restarts"], 0, "{row:#}");
    }
    assert_eq!(
        process(&status, "redis")["pid"].as_u64(),
        Some(u64::from(redis))
    );
    let log = fleet.log("watchdog");
    assert!(
        log.contains("Redis does not answer"),
        "the outage was not noticed:\n{log}"
    );
    assert!(
        !log.contains("is hung"),
        "a worker was judged hung during the outage:\n{log}"
    );
}

/// How far each worker's wall clock (the `heartbeat_ms` of its record) is
/// ahead of Redis's (`TIME`), in seconds, one entry per worker record.
fn worker_clock_offsets(redis: &RedisServer) -> Vec<f64> {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let mut conn = redis.connection().await;
        let (seconds, micros): (u64, u64) =
            redis::cmd("TIME").query_async(&mut conn).await.unwrap();
        let redis_ms = seconds as f64 * 1000.0 + micros as f64 / 1000.0;
        let names: Vec<String> = redis::cmd("SMEMBERS")
            .arg(keys::WORKERS)
            .query_async(&mut conn)
            .await
            .unwrap();
        let mut offsets = Vec::new();
        for name in names {
            let record: Option<String> = redis::cmd("GET")
                .arg(keys::worker(&name))
                .query_async(&mut conn)
                .await
                .unwrap();
            if let Some(record) = record {
                let record: WorkerRecord = serde_json::from_str(&record).unwrap();
                offsets.push((record.heartbeat_ms as f64 - redis_ms) / 1000.0);
            }
        }
        offsets
    })
}

/// Waits until both workers' records show their clocks `step_s` seconds
/// from Redis's (within 10 s): proof that the step reached the workers.
fn wait_for_workers_clock(redis: &RedisServer, step_s: f64) {
    let seen = wait_for(Duration::from_secs(20), || {
        let offsets = worker_clock_offsets(redis);
        (offsets.len() == 2 && offsets.iter().all(|o| (o - step_s).abs() < 10.0)).then_some(offsets)
    });
    assert!(
        seen.is_some(),
        "the workers' clocks never showed the {step_s} s step: offsets {:?}",
        worker_clock_offsets(redis)
    );
}

/// Issue 19: a clock step of +120 s, then one of -120 s, on the fleet's
/// host (the watchdog, the api and the workers, through libfaketime's
/// preload; Redis runs on "another host", on the real clock): real steps,
/// every process of the fleet reading its wall clock from a file the test
/// rewrites, their monotonic clocks untouched, as in a real step.
///
/// - +120 s while worker-1 is paused for 2 s (a healthy worker between two
///   beats, made to stay there long enough for the watchdog's probe, every
///   0.5 s, to look): it is not killed. A watchdog that compared the
///   record's stamp with its own clock would see a heartbeat 120 s old.
/// - -120 s just after worker-0 froze (SIGSTOP): it is found hung within
///   the limit (8 s), not 120 s later; worker-1 and the api live on.
#[test]
fn a_clock_step_of_120_s_either_way_kills_no_healthy_worker_and_hides_no_hang() {
    let dir = tempfile::tempdir().unwrap();
    let redis = RedisServer::start_tcp(dir.path());
    let clock = FakeClock::new(dir.path().join("clock"), "+0s");
    let fleet = Fleet::new();
    let bind = fleet.bind();
    let redis_url = redis.tcp_url();
    let mut up = fleet.command(&[
        "up",
        "--allow-root",
        "--noop-workers",
        "--workers",
        "2",
        "--bind",
        &bind,
        "--redis",
        &redis_url,
        "--hung-after",
        "8s",
        "--timeout",
        "60s",
    ]);
    up.envs(clock.env());
    let up = fleet.run_command(up, Duration::from_secs(120));
    assert!(up.ok(), "fleet up failed:\n{}", up.output());
    let api = fleet.pid_in_file("api").expect("api pid");
    let frozen = fleet.pid_in_file("worker-0").expect("worker-0 pid");
    let healthy = fleet.pid_in_file("worker-1").expect("worker-1 pid");
    wait_for_workers_clock(&redis, 0.0);
    // The watchdog looks for hangs only once Redis has answered for the
    // hung limit (8 s) without a break.
    std::thread::sleep(Duration::from_secs(9));

    // +120 s, worker-1 paused across the step.
    kill(Pid::from_raw(healthy as i32), Signal::SIGSTOP).unwrap();
    clock.set("+120s");
    std::thread::sleep(Duration::from_secs(2));
    // (Fails only if the watchdog killed it meanwhile: asserted below.)
    let _ = kill(Pid::from_raw(healthy as i32), Signal::SIGCONT);
    wait_for_workers_clock(&redis, 120.0);
    // Longer than the hung limit on the monotonic clock after the step.
    std::thread::sleep(Duration::from_secs(10));
    let (code, status) = fleet.status();
    assert_eq!(code, Some(0), "after a +120 s step: {status:#}");
    for (name, pid) in [("api", api), ("worker-0", frozen), ("worker-1", healthy)] {
        let row = process(&status, name);
        assert_eq!(
            row["pid"].as_u64(),
            Some(u64::from(pid)),
            "{name} was replaced after a +120 s clock step: {row:#}\nwatchdog log:\n{}",
            fleet.log("watchdog")
        );
        assert_eq!(row["restarts"], 0, "{row:#}");
    }
    let id = fleet.submit();
    assert_eq!(
        fleet.wait_job(&id, Duration::from_secs(30))["state"],
        "done",
        "after a +120 s clock step"
    );

    // -120 s (back to the real time) just after worker-0 froze.
    kill(Pid::from_raw(frozen as i32), Signal::SIGSTOP).unwrap();
    let stopped_at = Instant::now();
    clock.set("+0s");
    let replaced = wait_for(Duration::from_secs(20), || {
        fleet
            .pid_in_file("worker-0")
            .filter(|&pid| pid != frozen && alive(pid))
    });
    if replaced.is_none() {
        let _ = kill(Pid::from_raw(frozen as i32), Signal::SIGKILL);
        panic!(
            "the frozen worker was not replaced within 20 s of a -120 s step; watchdog log:\n{}",
            fleet.log("watchdog")
        );
    }
    println!(
        "clock step: after -120 s, a frozen worker was replaced {:?} after SIGSTOP",
        stopped_at.elapsed()
    );
    let log = fleet.log("watchdog");
    assert!(
        log.contains(&format!("worker-0 (PID {frozen}) is hung")),
        "{log}"
    );
    assert!(!log.contains(&format!("(PID {healthy}) is hung")), "{log}");
    wait_for_workers_clock(&redis, 0.0);
    let (_, status) = fleet.status();
    for (name, pid) in [("api", api), ("worker-1", healthy)] {
        let row = process(&status, name);
        assert_eq!(row["pid"].as_u64(), Some(u64::from(pid)), "{row:#}");
        assert_eq!(row["restarts"], 0, "{row:#}");
    }
    let id = fleet.submit();
    assert_eq!(
        fleet.wait_job(&id, Duration::from_secs(30))["state"],
        "done",
        "after a -120 s clock step"
    );
}
