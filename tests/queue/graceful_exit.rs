//! SIGTERM: the worker stops taking jobs, finishes the one in hand,
//! deregisters and exits 0; nothing it did not take is touched.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use redis::AsyncCommands;
use verdict_e2e::fixtures::png;
use verdict_e2e::{Stack, StackOptions};

use crate::PATIENCE;

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_finishes_the_job_in_hand_deregisters_and_exits_zero() {
    let mut stack = Stack::start(StackOptions::default()).await;
    stack
        .start_workers(&["leaving"], &["--noop", "--noop-delay-ms", "3000"])
        .await;
    let client = stack.client();

    let held = client
        .submit(&png(8, 8), &["held when SIGTERM comes"])
        .await;
    // Wait until the worker holds it.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let job = client.get_job(&held, None).await.body;
        if job["state"] == "running" {
            break;
        }
        assert_eq!(job["state"], "queued", "{job}");
        assert!(Instant::now() < deadline, "the worker never took the job");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let waiting = client
        .submit(&png(8, 8), &["still queued at SIGTERM"])
        .await;

    stack.worker("leaving").signal(Signal::SIGTERM);
    let status = stack
        .worker("leaving")
        .wait_exit(PATIENCE)
        .expect("the worker exits after SIGTERM");
    assert_eq!(status.code(), Some(0), "graceful exit is exit 0");

    // The job in hand was finished by this worker.
    let job = client.get_job(&held, None).await.body;
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(job["worker"], "leaving");
    // The one it had not taken is untouched: queued, never started, not
    // pending for the departed worker.
    let job = client.get_job(&waiting, None).await.body;
    assert_eq!(job["state"], "queued", "{job}");
    assert_eq!(job["attempts"], 0);
    let mut redis = stack.redis.connection().await;
    let pending: redis::Value = redis::cmd("XPENDING")
        .arg("verdict:jobs")
        .arg("workers")
        .query_async(&mut redis)
        .await
        .unwrap();
    let redis::Value::Array(summary) = pending else {
        panic!("XPENDING: {pending:?}")
    };
    assert_eq!(
        summary.first(),
        Some(&redis::Value::Int(0)),
        "nothing pending: {summary:?}"
    );
    // It deregistered.
    let record: Option<String> = redis.get("verdict:worker:leaving").await.unwrap();
    assert_eq!(record, None, "the worker record is gone");
    let registered: bool = redis.sismember("verdict:workers", "leaving").await.unwrap();
    assert!(!registered, "the worker left the set");
    let log = stack.worker("leaving").log();
    assert!(log.contains("SIGTERM"), "the worker logged the signal");
    assert!(log.contains("deregistered"), "the worker logged its exit");

    // Nothing is lost: a new worker takes the queued job.
    stack.start_workers(&["next"], &["--noop"]).await;
    let job = client.wait_end(&waiting, PATIENCE).await;
    assert_eq!(job["state"], "done");
    assert_eq!(job["worker"], "next");
}
