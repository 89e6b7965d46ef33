//! Reclaim, renewal and late results, with real worker processes.
//!
//! - A live worker whose job takes longer than the reclaim time keeps it: it
//!   renews its entry at every heartbeat, so an idle worker next to it never
//!   takes it over (no duplicate run: attempts stays 1).
//! - A worker frozen (SIGSTOP) in the middle of a job stops renewing: after
//!   the reclaim time another worker claims the job and finishes it. When the
//!   frozen worker is thawed and delivers its own result, that late result is
//!   refused and counted; the job keeps the first ending.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use verdict_e2e::fixtures::png;
use verdict_e2e::stack::log_events;
use verdict_e2e::{Stack, StackOptions};
use verdict_shared::queue::stats::read_stats;

/// The shortest reclaim time the worker accepts (three heartbeats).
const RECLAIM_AFTER: &str = "6";
/// Longer than the reclaim time.
const SLOW_JOB_MS: &str = "--noop-delay-ms=8000";
const PATIENCE: Duration = Duration::from_secs(60);

/// Waits until the job is running and returns its worker.
async fn running_on(stack: &Stack, id: &str) -> String {
    let client = stack.client();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let answer = client.get_job(id, None).await;
        if answer.body["state"] == "running" {
            return answer.body["worker"].as_str().unwrap_or("").to_owned();
        }
        assert!(Instant::now() < deadline, "never running: {}", answer.body);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_jobs_are_kept_and_frozen_workers_jobs_are_taken_over_once() {
    let started = Instant::now();
    let mut stack = Stack::start(StackOptions::default()).await;
    let client = stack.client();
    let mut redis = stack.redis.connection().await;
    let worker_args = |delay: &'static str| ["--noop", delay, "--reclaim-after", RECLAIM_AFTER];

    // 1. A slow job on a live worker is not reclaimed by an idle one.
    stack
        .start_workers(&["slow"], &worker_args(SLOW_JOB_MS))
        .await;
    let slow_job = client.submit(&png(8, 8), &["a slow job"]).await;
    assert_eq!(running_on(&stack, &slow_job).await, "slow");
    stack
        .start_workers(&["idle"], &worker_args("--noop-delay-ms=0"))
        .await;
    let job = client.wait_end(&slow_job, PATIENCE).await;
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(job["worker"], "slow", "{job}");
    assert_eq!(
        job["attempts"], 1,
        "taken over although its worker lived: {job}"
    );
    let counters = read_stats(&mut redis).await.unwrap();
    assert_eq!(counters.reclaimed, 0, "{counters:?}");
    assert_eq!(counters.reruns, 0, "{counters:?}");

    // 2. Only `slow` reads now; it takes the next job and is frozen with it.
    let idle = stack.worker("idle");
    idle.signal(Signal::SIGTERM);
    assert!(idle.wait_exit(Duration::from_secs(20)).is_some());
    let frozen_job = client
        .submit(&png(8, 8), &["a job whose worker freezes"])
        .await;
    assert_eq!(running_on(&stack, &frozen_job).await, "slow");
    stack.worker("slow").signal(Signal::SIGSTOP);
    let frozen_at = Instant::now();
    stack
        .start_workers(&["rescuer"], &worker_args("--noop-delay-ms=0"))
        .await;

    let job = client.wait_end(&frozen_job, PATIENCE).await;
    let taken_over_after = frozen_at.elapsed();
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(job["worker"], "rescuer", "{job}");
    assert_eq!(job["attempts"], 2, "{job}");
    assert!(
        taken_over_after >= Duration::from_secs(4),
        "claimed after {taken_over_after:?}, before the reclaim time"
    );

    // 3. Thawed, the frozen worker finishes its judgement and delivers a
    //    result nobody wants: refused, counted, and the job is unchanged.
    stack.worker("slow").signal(Signal::SIGCONT);
    let log = stack.worker("slow").log_path().to_owned();
    let deadline = Instant::now() + PATIENCE;
    while !log_events(&log)
        .iter()
        .any(|e| e["message"] == "job already ended elsewhere: result discarded")
    {
        assert!(
            Instant::now() < deadline,
            "the thawed worker never finished"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after = client.get_job(&frozen_job, None).await.body;
    assert_eq!(after, job, "a late result moved the job");
    let counters = read_stats(&mut redis).await.unwrap();
    assert_eq!(counters.reclaimed, 1, "{counters:?}");
    assert_eq!(counters.late_finishes, 1, "{counters:?}");
    assert_eq!(counters.reruns, 1, "{counters:?}");
    assert_eq!(counters.done, 2, "{counters:?}");
    assert_eq!(counters.stream_len, 0, "{counters:?}");
    assert!(stack.worker("slow").is_running());
    assert!(stack.worker("rescuer").is_running());
    println!(
        "reclaim: a frozen worker's job was finished by another {:.1}s after the freeze \
         (reclaim time {RECLAIM_AFTER}s); its late result was refused; test took {:.1}s",
        taken_over_after.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}
