//! `fleet up` → `status` → a second `up` → SIGHUP → `down`, with real
//! processes: the fleet comes up with the PIDs its PID files name, refuses a
//! second watchdog, survives SIGHUP, and `down` lets the job in hand finish
//! before it leaves no process and no live lock.

use std::time::{Duration, Instant, SystemTime};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use verdict_e2e::fleet::{Fleet, alive, process, wait_for};
use verdict_shared::job::Job;

#[test]
fn up_status_refusal_sighup_and_an_orderly_down() {
    let fleet = Fleet::new();
    // Each job takes 3 s, so that one is still in hand when `down` comes.
    let up = fleet.up(2, &["--worker-arg=--noop-delay-ms=3000"]);
    assert!(up.ok(), "fleet up failed:\n{}", up.output());
    // The summary says where the web page, PID files and logs are.
    assert!(
        up.stdout.contains(&format!("{}/", fleet.api_url())),
        "{}",
        up.output()
    );
    let run_dir = fleet.home().join("run");
    let logs_dir = fleet.home().join("logs");
    assert!(
        up.stdout.contains(&run_dir.display().to_string()),
        "{}",
        up.output()
    );
    assert!(
        up.stdout.contains(&logs_dir.display().to_string()),
        "{}",
        up.output()
    );

    // status: everything running, each with the PID its locked PID file names.
    let (code, status) = fleet.status();
    assert_eq!(code, Some(0), "status exit code; status: {status:#}");
    let mut pids = Vec::new();
    for (name, role) in [
        ("watchdog", "watchdog"),
        ("redis", "redis"),
        ("api", "api"),
        ("worker-0", "worker"),
        ("worker-1", "worker"),
    ] {
        let row = process(&status, name);
        assert_eq!(row["role"], role, "{row:#}");
        assert_eq!(row["state"], "running", "{row:#}");
        let pid = row["pid"].as_u64().expect("pid") as u32;
        assert_eq!(
            fleet.pid_in_file(name),
            Some(pid),
            "{name}: PID file and status disagree"
        );
        assert!(fleet.is_locked(name), "{name}'s PID file is not locked");
        assert!(alive(pid), "{name} (PID {pid}) is not alive");
        pids.push((name, pid));
    }
    assert_eq!(
        status["processes"].as_array().unwrap().len(),
        5,
        "{status:#}"
    );
    assert!(status["queue"]["redis_ok"].as_bool().unwrap(), "{status:#}");
    let watchdog_pid = pids[0].1;

    // A second fleet on the same home is refused with the running watchdog's PID.
    let second = fleet.up(2, &[]);
    assert!(
        !second.ok(),
        "a second fleet up succeeded:\n{}",
        second.output()
    );
    assert!(
        second
            .stderr
            .contains(&format!("already running, watchdog PID {watchdog_pid}")),
        "{}",
        second.output()
    );

    // SIGHUP (a closed terminal) does not stop the fleet.
    kill(Pid::from_raw(watchdog_pid as i32), Signal::SIGHUP).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let (code, status) = fleet.status();
    assert_eq!(code, Some(0), "after SIGHUP: {status:#}");
    for (name, pid) in &pids {
        assert_eq!(
            process(&status, name)["pid"].as_u64(),
            Some(u64::from(*pid)),
            "{name} changed after SIGHUP"
        );
        assert!(alive(*pid));
    }
    assert!(fleet.log("watchdog").contains("SIGHUP ignored"));

    // A job in hand when `down` is called finishes first.
    let id = fleet.submit();
    let running = wait_for(Duration::from_secs(10), || {
        let job = fleet.job(&id);
        (job["state"] == "running").then_some(job)
    });
    assert!(running.is_some(), "the job never started");
    let down_started = Instant::now();
    let down = fleet.run(&["down", "--timeout", "20s"]);
    let down_returned = SystemTime::now();
    assert!(down.ok(), "fleet down failed:\n{}", down.output());
    // The workers needed the rest of the 3 s job: down waited for it.
    assert!(
        down_started.elapsed() >= Duration::from_millis(1500),
        "{}",
        down.output()
    );
    for name in ["api", "worker-0", "worker-1", "redis"] {
        assert!(
            down.stdout.contains(&format!("  {name} (PID")),
            "{name} not in the report:\n{}",
            down.output()
        );
    }
    assert!(
        !down.stdout.contains("SIGKILL"),
        "something had to be killed:\n{}",
        down.output()
    );

    // Nothing of the fleet is left: no process, no live lock, no socket.
    for (name, pid) in &pids {
        assert!(!alive(*pid), "{name} (PID {pid}) is still alive after down");
    }
    assert!(
        fleet.live_locks().is_empty(),
        "live locks: {:?}",
        fleet.live_locks()
    );
    assert!(!fleet.home().join("run/watchdog.sock").exists());
    let (code, _) = fleet.status();
    assert_eq!(code, Some(3), "status of a stopped fleet");

    // The job ended `done` before down returned, in one attempt: start the
    // fleet again (Redis keeps its data) and read it.
    let again = fleet.up(1, &[]);
    assert!(again.ok(), "second start failed:\n{}", again.output());
    let job = fleet.job(&id);
    assert_eq!(job["state"], "done", "{job:#}");
    assert_eq!(job["attempts"], 1, "{job:#}");
    let job: Job = serde_json::from_value(job).expect("a job");
    let finished = job.finished_at.expect("finished_at");
    assert!(
        finished <= down_returned,
        "finished at {finished}, after down returned"
    );
    let down = fleet.run(&["down"]);
    assert!(down.ok(), "{}", down.output());
}

/// With no fleet in the home, `down` and `status` each say so in one
/// sentence that names the home and how to reach a fleet in another one.
#[test]
fn down_and_status_without_a_fleet_say_so_and_name_the_home() {
    let fleet = Fleet::new();
    let home = fleet.home().display().to_string();
    let down = fleet.command(&["down"]).output().unwrap();
    let said = String::from_utf8_lossy(&down.stdout);
    assert_eq!(down.status.code(), Some(0), "{said}");
    assert_eq!(
        said.trim(),
        format!(
            "nothing to stop: no fleet is running in {home} (a fleet in another home: \
             `fleet --home DIR down`, or set VERDICT_HOME)"
        )
    );
    let status = fleet.command(&["status"]).output().unwrap();
    let said = String::from_utf8_lossy(&status.stdout);
    assert_eq!(status.status.code(), Some(3), "{said}");
    assert!(
        said.starts_with(&format!(
            "no fleet is running in {home} (start one with `fleet up`"
        )) && said.contains("--home DIR"),
        "{said}"
    );
}
