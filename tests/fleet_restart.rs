//! The watchdog restarts what dies: `kill -9` of a worker gives a new worker
//! within 2 s, counted and logged, and the fleet still finishes jobs; a worker
//! that is alive but stops beating (SIGSTOP) is found hung, killed and
//! replaced.

use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use verdict_e2e::fleet::{Fleet, alive, process, wait_for};

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
