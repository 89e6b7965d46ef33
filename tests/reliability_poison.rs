//! Poison jobs and transient failures, with real worker processes under the
//! real watchdog, default limits (`--max-attempts 3`, `--crash-limit 5`).
//!
//! - A job that makes its worker abort (the test-only hook
//!   `VERDICT_TEST_ABORT_ON_TEXT`) is started three times, crashing a worker
//!   each time, then moved to the dead-letter stream and failed with its last
//!   error; no worker is marked failed, and the other jobs keep flowing.
//! - A job that fails transiently once (`VERDICT_TEST_TRANSIENT_ON_TEXT`) is
//!   retried after a backoff and ends done; one that always fails
//!   transiently is dead-lettered after three attempts with that error.
//!
//! - The worker reads ahead (`--read-ahead`, on by default): when the
//!   poison job first crashes it, the job it had read ahead dies with it and
//!   runs again with one more attempt; after that the poison job runs alone
//!   (a restarted worker runs its own pending jobs with nothing read ahead),
//!   so at most one other job is started twice, and it ends done.
//!
//! No-op workers (with a 20 ms simulated judgement): what is under test is
//! the queue and the watchdog, not the model.

use std::time::{Duration, Instant};

use verdict_e2e::ApiClient;
use verdict_e2e::fixtures::png;
use verdict_e2e::fleet::{Fleet, process, wait_for};
use verdict_e2e::reliability::{dead_letters, redis, stats, up};

const POISON: &str = "this sentence kills the worker";
const FLAKY: &str = "fails once, then works";
const BROKEN: &str = "fails transiently every time";
const OTHERS: usize = 120;
const PATIENCE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread")]
async fn a_poison_job_is_dead_lettered_after_three_attempts_while_others_flow() {
    let started = Instant::now();
    let fleet = Fleet::new();
    let transient = format!("1:{FLAKY}|99:{BROKEN}");
    up(
        &fleet,
        2,
        &["--noop-workers", "--worker-arg=--noop-delay-ms=20"],
        &[
            ("VERDICT_TEST_ABORT_ON_TEXT", POISON),
            ("VERDICT_TEST_TRANSIENT_ON_TEXT", &transient),
        ],
    );
    let client = ApiClient::new(&fleet.api_url());
    let image = png(8, 8);

    // Ordinary jobs before, around and after the poison one.
    let mut others = Vec::new();
    for i in 0..OTHERS / 2 {
        others.push(client.submit(&image, &[&format!("ordinary job {i}")]).await);
    }
    let poison = client
        .submit(&image, &["an ordinary sentence", POISON])
        .await;
    // The jobs queued right behind the poison one: what a worker holding
    // it reads ahead.
    for i in 0..3 {
        others.push(
            client
                .submit(&image, &[&format!("behind the poison job {i}")])
                .await,
        );
    }
    let flaky = client.submit(&image, &[FLAKY]).await;
    let broken = client.submit(&image, &[BROKEN]).await;
    for i in OTHERS / 2..OTHERS {
        others.push(client.submit(&image, &[&format!("ordinary job {i}")]).await);
    }

    let mut started_twice = Vec::new();
    for id in &others {
        let job = client.wait_end(id, PATIENCE).await;
        assert_eq!(job["state"], "done", "{job}");
        match job["attempts"].as_u64() {
            Some(1) => {}
            // Read ahead by the worker the poison job first crashed.
            Some(2) => started_twice.push(job),
            _ => panic!("an ordinary job started more than twice: {job}"),
        }
    }
    assert!(
        started_twice.len() <= 1,
        "one crash in the read-ahead phase, so at most one ordinary job started twice: {started_twice:?}"
    );

    // The poison job: failed, three attempts, the reason names the lost worker.
    let job = client.wait_end(&poison, PATIENCE).await;
    assert_eq!(job["state"], "failed", "{job}");
    assert_eq!(job["attempts"], 3, "{job}");
    assert_eq!(job["error"]["code"], "attempts_exhausted", "{job}");
    let message = job["error"]["message"].as_str().unwrap_or("");
    assert!(message.contains("worker_lost"), "{message}");
    assert!(message.contains("started 3 times"), "{message}");

    // The flaky job got its retry; the broken one ran out of attempts.
    let job = client.wait_end(&flaky, PATIENCE).await;
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(job["attempts"], 2, "{job}");
    let job = client.wait_end(&broken, PATIENCE).await;
    assert_eq!(job["state"], "failed", "{job}");
    assert_eq!(job["attempts"], 3, "{job}");
    assert_eq!(job["error"]["code"], "attempts_exhausted", "{job}");
    assert!(
        job["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("test_transient"),
        "{job}"
    );

    // Both are in the dead-letter stream with their last error.
    let mut conn = redis(&fleet).await;
    let dead = dead_letters(&mut conn).await;
    assert_eq!(dead.len(), 2, "{dead:?}");
    let entry = |id: &str| {
        dead.iter()
            .find(|e| e.get("job") == Some(id))
            .unwrap_or_else(|| panic!("job {id} is not in verdict:dead: {dead:?}"))
    };
    let poisoned = entry(&poison);
    assert_eq!(poisoned.get("attempts"), Some("3"));
    let last: serde_json::Value =
        serde_json::from_str(poisoned.get("last_error").unwrap_or("{}")).expect("JSON");
    assert_eq!(last["code"], "worker_lost", "{last}");
    let last: serde_json::Value =
        serde_json::from_str(entry(&broken).get("last_error").unwrap_or("{}")).expect("JSON");
    assert_eq!(last["code"], "test_transient", "{last}");

    let counters = stats(&mut conn).await;
    assert_eq!(counters.dead_lettered, 2, "{counters:?}");
    assert_eq!(counters.retries, 1 + 3, "{counters:?}");
    assert_eq!(counters.done, others.len() as u64 + 1, "{counters:?}");
    assert_eq!(counters.stream_len, 0, "{counters:?}");

    // Three crashes in all (one per start of the poison job), all SIGABRT,
    // and every worker is back and running: nothing was marked failed.
    let status = wait_for(Duration::from_secs(20), || {
        let (code, status) = fleet.status();
        (code == Some(0)).then_some(status)
    })
    .unwrap_or_else(|| {
        panic!(
            "the fleet did not get back to running:\n{:#}",
            fleet.status().1
        )
    });
    let mut crashes = 0;
    for name in ["worker-0", "worker-1"] {
        let row = process(&status, name);
        assert_eq!(row["state"], "running", "{row:#}");
        let restarts = row["restarts"].as_u64().unwrap_or(0);
        if restarts > 0 {
            assert_eq!(row["last_exit"]["signal"], "SIGABRT", "{row:#}");
        }
        crashes += restarts;
    }
    assert_eq!(crashes, 3, "{status:#}");
    for name in ["redis", "api"] {
        assert_eq!(process(&status, name)["restarts"], 0, "{status:#}");
    }
    println!(
        "poison: {crashes} worker crashes, dead-lettered after 3 attempts; {} other jobs done; \
         {} of them started twice; counters {counters:?}; test took {:.1}s",
        others.len(),
        started_twice.len(),
        started.elapsed().as_secs_f64()
    );
}
