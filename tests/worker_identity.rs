//! Worker identities are unique by construction (issue 19), with real
//! processes against one test redis-server:
//!
//! - workers started by hand without `--name` get distinct names, with the
//!   host name as a readable label in their records;
//! - two fleets on one host (so with the same host name, as two network
//!   namespaces, cloned VMs or containers have) sharing one Redis register
//!   distinct workers, and a fleet restarted in the same home keeps its
//!   workers' names;
//! - a second process started under the name of a live one is refused with
//!   a message naming the other, and exits non-zero, while the first keeps
//!   working;
//! - a process started under the name of one that was killed takes the name
//!   over, and with it the job the dead one held.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use verdict_e2e::fixtures::png;
use verdict_e2e::fleet::{Fleet, process, wait_for};
use verdict_e2e::{RedisServer, Stack, StackOptions};
use verdict_shared::queue::WorkerRecord;
use verdict_shared::queue::heartbeat::live_workers;

/// Generous bound for what takes seconds (a takeover waits out the dead
/// holder's last beat by STALE_AFTER, 6 s).
const PATIENCE: Duration = Duration::from_secs(60);

/// The live worker records, polled until `done` accepts them.
async fn records_until(
    redis: &RedisServer,
    what: &str,
    done: impl Fn(&[WorkerRecord]) -> bool,
) -> Vec<WorkerRecord> {
    let mut conn = redis.connection().await;
    let deadline = Instant::now() + PATIENCE;
    loop {
        let records = live_workers(&mut conn).await.expect("worker records");
        if done(&records) {
            return records;
        }
        assert!(Instant::now() < deadline, "{what}: {records:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn workers_started_without_a_name_get_distinct_ones() {
    let mut stack = Stack::start(StackOptions::default()).await;
    stack.spawn_worker_as("first", None, &["--noop"]);
    stack.spawn_worker_as("second", None, &["--noop"]);
    let records = records_until(&stack.redis, "two workers never registered", |r| {
        r.len() == 2
    })
    .await;
    let pids: BTreeSet<u32> = records.iter().map(|r| r.pid).collect();
    let expected: BTreeSet<u32> = [stack.worker("first").pid(), stack.worker("second").pid()]
        .into_iter()
        .collect();
    assert_eq!(pids, expected);
    assert_ne!(records[0].name, records[1].name);
    assert_ne!(records[0].instance, records[1].instance);
    let prefix = format!("{}-", verdict_shared::host::name_for_ids());
    for record in &records {
        // HOST-RANDOM: the host for people, 12 random hex digits (not the
        // PID, which another machine's process may share) for uniqueness.
        let random = record.name.strip_prefix(&prefix).unwrap_or("");
        assert_eq!(random.len(), 12, "{record:?}");
        assert!(random.bytes().all(|b| b.is_ascii_hexdigit()), "{record:?}");
        assert_eq!(record.host, verdict_shared::host::name(), "{record:?}");
    }
    // /readyz counts both.
    let (status, body) = stack.client().get_path("/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["workers"].as_array().map(Vec::len), Some(2), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_process_under_a_live_name_is_refused_and_the_first_keeps_working() {
    let mut stack = Stack::start(StackOptions::default()).await;
    stack.start_workers(&["solo"], &["--noop"]).await;
    let first = stack.worker("solo").pid();

    stack.spawn_worker_as("impostor", Some("solo"), &["--noop"]);
    let status = stack
        .worker("impostor")
        .wait_exit(PATIENCE)
        .expect("the second process under a live name kept running");
    let log = stack.worker("impostor").log();
    assert!(!status.success(), "{status:?}:\n{log}");
    assert!(log.contains("is in use by a live process"), "{log}");
    assert!(log.contains(&format!("PID {first} on ")), "{log}");
    assert!(!log.contains("panicked"), "{log}");

    // The first still holds its name, still beats, and runs a job.
    let beats = records_until(&stack.redis, "solo lost its record", |r| {
        r.len() == 1 && r[0].pid == first
    })
    .await[0]
        .beats;
    records_until(&stack.redis, "solo stopped beating", |r| {
        r.len() == 1 && r[0].pid == first && r[0].beats > beats
    })
    .await;
    let client = stack.client();
    let id = client.submit(&png(8, 8), &["A test."]).await;
    let job = client.wait_end(&id, PATIENCE).await;
    assert_eq!(job["state"], "done", "{job:#}");
    assert!(stack.worker("solo").is_running());
    assert!(
        !stack
            .worker("solo")
            .log()
            .contains("another process has taken this worker's name"),
        "{}",
        stack.worker("solo").log()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_worker_s_name_and_job_go_to_the_next_process_under_it() {
    let mut stack = Stack::start(StackOptions::default()).await;
    let slow = ["--noop", "--noop-delay-ms=4000"];
    stack.start_workers(&["phoenix"], &slow).await;
    let client = stack.client();
    let id = client.submit(&png(8, 8), &["A test."]).await;
    let deadline = Instant::now() + PATIENCE;
    while client.get_job(&id, None).await.body["state"] != "running" {
        assert!(Instant::now() < deadline, "the job never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stack.worker("phoenix").signal(Signal::SIGKILL);
    assert!(stack.worker("phoenix").wait_exit(PATIENCE).is_some());

    // Its record outlives it; the next process under the name waits until
    // the record has gone unwritten for STALE_AFTER, then takes it over and
    // runs the job its predecessor held (no other worker could: none
    // reclaims before 30 s, and there is none).
    stack.spawn_worker_as("phoenix-2", Some("phoenix"), &slow);
    let next = stack.worker("phoenix-2").pid();
    records_until(&stack.redis, "the name was not taken over", |r| {
        r.len() == 1 && r[0].pid == next
    })
    .await;
    let job = client.wait_end(&id, PATIENCE).await;
    assert_eq!(job["state"], "done", "{job:#}");
    assert_eq!(job["attempts"], 2, "{job:#}");
    let log = stack.worker("phoenix-2").log();
    assert!(
        log.contains("registered in place of a process that had stopped beating"),
        "{log}"
    );
    assert!(
        log.contains("running again jobs this worker held before"),
        "{log}"
    );
}

#[test]
fn two_fleets_on_one_host_sharing_a_redis_have_distinct_workers_and_keep_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let redis = RedisServer::start_unix(dir.path());
    let url = redis.unix_url();
    let (a, b) = (Fleet::new(), Fleet::new());
    for fleet in [&a, &b] {
        let up = fleet.up(1, &["--redis", &url]);
        assert!(up.ok(), "fleet up failed:\n{}", up.output());
    }
    let registered = |fleet: &Fleet| -> String {
        let (code, status) = fleet.status();
        assert_eq!(code, Some(0), "{status:#}");
        process(&status, "worker-0")["registered_as"]
            .as_str()
            .unwrap_or_else(|| panic!("no registered name: {status:#}"))
            .to_string()
    };
    let (name_a, name_b) = (registered(&a), registered(&b));
    assert_ne!(name_a, name_b);
    let host = verdict_shared::host::name_for_ids();
    for (fleet, name) in [(&a, &name_a), (&b, &name_b)] {
        let id = std::fs::read_to_string(fleet.home().join("fleet-id")).expect("fleet-id");
        assert_eq!(*name, format!("{host}-{}-worker-0", id.trim()));
    }
    // Both are alive in the one Redis: either api's /readyz lists both.
    let listed = wait_for(PATIENCE, || {
        let url = format!("{}/readyz", a.api_url());
        let (status, body) = verdict_e2e::fleet::http(move |c| c.get(url));
        let names: BTreeSet<String> = body["workers"]
            .as_array()?
            .iter()
            .filter_map(|n| n.as_str().map(str::to_string))
            .collect();
        (status == 200 && names.len() == 2).then_some(names)
    })
    .expect("/readyz never listed both fleets' workers");
    assert_eq!(
        listed,
        [name_a.clone(), name_b.clone()].into_iter().collect()
    );

    // Fleet a restarted in its home: the same name again.
    let down = a.run(&["down"]);
    assert!(down.ok(), "{}", down.output());
    let up = a.up(1, &["--redis", &url]);
    assert!(up.ok(), "fleet up failed:\n{}", up.output());
    assert_eq!(registered(&a), name_a);
    for fleet in [&a, &b] {
        let id = fleet.submit();
        assert_eq!(fleet.wait_job(&id, PATIENCE)["state"], "done");
    }
}
