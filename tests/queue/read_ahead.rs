//! Reading ahead: a worker judging a job starts the job queued behind it
//! (its image fetched, its record running) before the one in hand ends, so
//! that the judge goes from one to the next without waiting for Redis; but
//! it never waits for new jobs while it holds one, so a job submitted then
//! goes to a worker that is idle. `--read-ahead false` reads again only once
//! the jobs in hand have ended.

use std::time::{Duration, Instant};

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use verdict_e2e::client::ApiClient;
use verdict_e2e::fixtures::png;
use verdict_e2e::{Stack, StackOptions};

use crate::PATIENCE;

fn instant(job: &Value, field: &str) -> OffsetDateTime {
    let text = job[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field}: {job}"));
    OffsetDateTime::parse(text, &Rfc3339).unwrap_or_else(|e| panic!("{field} {text}: {e}"))
}

/// Three jobs queued before one worker (each judged in 400 ms) starts; their
/// records once all have ended, in submission order.
async fn three_jobs_through_one_worker(worker_args: &[&str]) -> Vec<Value> {
    let mut stack = Stack::start(StackOptions::default()).await;
    let client = stack.client();
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(client.submit(&png(4 + i, 4), &["A cup."]).await);
    }
    let mut args = vec!["--noop", "--noop-delay-ms", "400"];
    args.extend_from_slice(worker_args);
    stack.start_workers(&["only"], &args).await;
    let mut jobs = Vec::new();
    for id in &ids {
        let job = client.wait_end(id, PATIENCE).await;
        assert_eq!(job["state"], "done", "{job}");
        assert_eq!(job["attempts"], 1, "{job}");
        jobs.push(job);
    }
    jobs
}

#[tokio::test(flavor = "multi_thread")]
async fn a_busy_worker_starts_the_next_queued_job_before_it_ends_the_one_in_hand() {
    let jobs = three_jobs_through_one_worker(&[]).await;
    for pair in jobs.windows(2) {
        let (before, next) = (&pair[0], &pair[1]);
        assert!(
            instant(next, "started_at") < instant(before, "finished_at"),
            "the next job started while the one before it was judged:\n{before}\n{next}"
        );
        // Judged one after the other all the same: the next one ends at
        // least one judging time (400 ms) after the one before.
        assert!(
            instant(next, "finished_at") - instant(before, "finished_at")
                >= time::Duration::milliseconds(350),
            "one judge, one job at a time:\n{before}\n{next}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn without_read_ahead_the_next_job_starts_once_the_one_in_hand_has_ended() {
    let jobs = three_jobs_through_one_worker(&["--read-ahead", "false"]).await;
    for pair in jobs.windows(2) {
        let (before, next) = (&pair[0], &pair[1]);
        assert!(
            instant(next, "started_at") >= instant(before, "finished_at"),
            "the next job started after the one before ended:\n{before}\n{next}"
        );
    }
}

/// Polls `id` until its state is no longer `queued`; the job then.
async fn wait_taken(client: &ApiClient, id: &str) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let job = client.get_job(id, None).await.body;
        if job["state"] != "queued" {
            return job;
        }
        assert!(Instant::now() < deadline, "nobody took the job: {job}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_submitted_while_every_worker_is_busy_waits_for_the_first_idle_one() {
    let mut stack = Stack::start(StackOptions::default()).await;
    let slow = ["--noop", "--noop-delay-ms", "8000"];
    stack.start_workers(&["busy"], &slow).await;
    let client = stack.client();

    let held = client.submit(&png(8, 8), &["held"]).await;
    let job = wait_taken(&client, &held).await;
    assert_eq!(job["state"], "running", "{job}");
    assert_eq!(job["worker"], "busy");

    // Submitted while the only worker judges: it reads ahead only what was
    // queued, so this one stays queued instead of waiting behind `held`.
    let later = client.submit(&png(9, 9), &["submitted later"]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let job = client.get_job(&later, None).await.body;
    assert_eq!(job["state"], "queued", "a busy worker took it: {job}");

    // A worker that comes idle takes it at once, while `held` still runs.
    stack.start_workers(&["idle"], &slow).await;
    let job = wait_taken(&client, &later).await;
    assert_eq!(job["state"], "running", "{job}");
    assert_eq!(job["worker"], "idle", "{job}");
    let first = client.get_job(&held, None).await.body;
    assert_eq!(first["state"], "running", "{first}");
    assert_eq!(client.wait_end(&later, PATIENCE).await["state"], "done");
    assert_eq!(client.wait_end(&held, PATIENCE).await["state"], "done");
}
