//! Operating a running fleet: `scale` adds and removes workers without
//! touching the others, `restart` replaces processes gracefully, the worker
//! memory limit is applied, and a process that keeps crashing ends `failed`
//! in `status` (with `up --foreground`, which does not give up on failure).

use std::process::Stdio;
use std::time::Duration;

use verdict_e2e::fleet::{Fleet, alive, process, wait_for};

#[test]
fn scale_restart_and_memory_limit() {
    let fleet = Fleet::new();
    let up = fleet.up(1, &["--worker-memory", "3G"]);
    assert!(up.ok(), "fleet up failed:\n{}", up.output());
    let api = fleet.pid_in_file("api").unwrap();
    let redis = fleet.pid_in_file("redis").unwrap();
    let worker0 = fleet.pid_in_file("worker-0").unwrap();

    // The limit is on the worker process itself.
    let limits = std::fs::read_to_string(format!("/proc/{worker0}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max address space"))
        .unwrap();
    assert!(line.contains(&(3u64 << 30).to_string()), "{line}");
    let api_limits = std::fs::read_to_string(format!("/proc/{api}/limits")).unwrap();
    assert!(
        !api_limits.contains(&(3u64 << 30).to_string()),
        "the api got the worker limit"
    );

    // Up to 3 workers: two new ones, nothing else touched.
    let scale = fleet.run(&["scale", "3"]);
    assert!(scale.ok(), "{}", scale.output());
    let (code, status) = fleet.status();
    assert_eq!(code, Some(0), "{status:#}");
    for name in ["worker-1", "worker-2"] {
        let pid = fleet.pid_in_file(name).expect("new worker PID file");
        assert_eq!(process(&status, name)["pid"].as_u64(), Some(u64::from(pid)));
    }
    assert_eq!(fleet.pid_in_file("api"), Some(api));
    assert_eq!(fleet.pid_in_file("redis"), Some(redis));
    assert_eq!(fleet.pid_in_file("worker-0"), Some(worker0));

    // Down to 1: the highest-numbered go, gracefully, and their files with them.
    let w2 = fleet.pid_in_file("worker-2").unwrap();
    let scale = fleet.run(&["scale", "1"]);
    assert!(scale.ok(), "{}", scale.output());
    assert!(!alive(w2));
    let (code, status) = fleet.status();
    assert_eq!(code, Some(0), "{status:#}");
    let workers: Vec<&str> = status["processes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["role"] == "worker")
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(workers, ["worker-0"]);
    assert!(!fleet.home().join("run/worker-2.pid").exists());
    assert!(fleet.log("watchdog").contains("retired worker-2"));

    // Restart the workers: new PID, exit code 0 (graceful), counted.
    let restart = fleet.run(&["restart", "worker"]);
    assert!(restart.ok(), "{}", restart.output());
    let new0 = fleet.pid_in_file("worker-0").unwrap();
    assert_ne!(new0, worker0);
    let (_, status) = fleet.status();
    let row = process(&status, "worker-0");
    assert_eq!(row["last_exit"]["code"], 0, "{row:#}");
    assert_eq!(row["last_exit"]["reason"], "restart requested", "{row:#}");
    assert_eq!(row["restarts"], 1);
    assert_eq!(fleet.pid_in_file("api"), Some(api));

    // An unknown target is an error, not a no-op.
    let bad = fleet.run(&["restart", "nginx"]);
    assert!(!bad.ok());
    assert!(
        bad.stderr.contains("no process or role named \"nginx\""),
        "{}",
        bad.output()
    );

    let id = fleet.submit();
    assert_eq!(
        fleet.wait_job(&id, Duration::from_secs(20))["state"],
        "done"
    );
}

#[test]
fn a_crash_looping_worker_ends_failed_in_status() {
    let fleet = Fleet::new();
    let bind = format!("127.0.0.1:{}", fleet.port);
    // Workers that cannot start (an argument they refuse) crash at once.
    let mut foreground = fleet
        .command(&[
            "up",
            "--foreground",
            "--allow-root",
            "--noop-workers",
            "--workers",
            "1",
            "--bind",
            &bind,
            "--crash-limit",
            "3",
            "--worker-arg=--no-such-flag",
        ])
        .stdout(Stdio::null())
        // In the foreground the watchdog logs to stderr (the journal, under systemd).
        .stderr(std::fs::File::create(fleet.home().join("foreground.log")).unwrap())
        .spawn()
        .unwrap();
    let log = || std::fs::read_to_string(fleet.home().join("foreground.log")).unwrap_or_default();
    let failed = wait_for(Duration::from_secs(30), || {
        if !fleet.is_locked("watchdog") {
            return None;
        }
        let (code, status) = fleet.status();
        let row = process(&status, "worker-0").clone();
        (row["state"] == "failed").then_some((code, row, status))
    });
    let (code, row, status) = failed.unwrap_or_else(|| {
        let _ = foreground.kill();
        panic!("worker-0 never ended failed; watchdog log:\n{}", log())
    });
    assert_eq!(
        code,
        Some(1),
        "status must not exit 0 with a failed process"
    );
    assert_eq!(row["last_exit"]["code"], 2, "{row:#}");
    assert_eq!(
        row["restarts"], 3,
        "3 crashes tolerated, the 4th gives up: {row:#}"
    );
    assert!(row["pid"].is_null(), "{row:#}");
    // The rest of the fleet is unaffected.
    assert_eq!(process(&status, "redis")["state"], "running");
    let table = fleet.run(&["status"]);
    assert!(table.stdout.contains("failed"), "{}", table.output());
    assert!(log().contains("marked failed"), "{}", log());

    let down = fleet.run(&["down", "--timeout", "10s"]);
    assert!(down.ok(), "{}", down.output());
    let exit = foreground.wait().unwrap();
    assert!(exit.success(), "fleet up --foreground exited with {exit}");
}

#[test]
fn a_worker_that_hits_its_memory_limit_dies_and_is_restarted() {
    // Measure what an idle worker maps, then give the next fleet's workers
    // just 1 MiB more: enough to start and register, not enough for the
    // thread a job is judged on.
    let probe = Fleet::new();
    let up = probe.up(1, &[]);
    assert!(up.ok(), "fleet up failed:\n{}", up.output());
    let worker = probe.pid_in_file("worker-0").unwrap();
    let status = std::fs::read_to_string(format!("/proc/{worker}/status")).unwrap();
    let vm_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmSize:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmSize");
    drop(probe);

    let fleet = Fleet::new();
    let limit = format!("{}K", vm_kib + 1024);
    let up = fleet.up(1, &["--worker-memory", &limit]);
    assert!(up.ok(), "fleet up with {limit} failed:\n{}", up.output());
    let first = fleet.pid_in_file("worker-0").unwrap();
    fleet.submit();
    let row = wait_for(Duration::from_secs(20), || {
        let (_, status) = fleet.status();
        let row = process(&status, "worker-0").clone();
        (row["restarts"].as_u64().unwrap_or(0) >= 1).then_some(row)
    })
    .unwrap_or_else(|| {
        panic!(
            "the worker never died at its limit; watchdog log:\n{}",
            fleet.log("watchdog")
        )
    });
    // The last exit may already be a later incarnation's: the restarted
    // worker (first restart at once) takes the same job back as worker-0's
    // pending entry and dies of it too, sometimes before this poll sees the
    // first restart. That `first` died is checked in the watchdog's log below.
    let exit = &row["last_exit"];
    assert!(exit["pid"].as_u64().is_some(), "{row:#}");
    assert!(
        exit["code"] != 0 || exit["signal"].is_string(),
        "a clean exit: {row:#}"
    );
    assert_eq!(exit["reason"], "crashed", "{row:#}");
    println!(
        "worker with RLIMIT_AS {limit} (idle VmSize {vm_kib} KiB): {} after {} restart(s)",
        exit, row["restarts"]
    );
    assert!(
        fleet
            .log("watchdog")
            .contains(&format!("worker-0 (PID {first}) crashed"))
    );
}
