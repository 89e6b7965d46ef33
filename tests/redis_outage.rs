//! Redis outages: while Redis is stopped, or frozen by SIGSTOP (the nastier
//! case: connections stay open and nothing answers), every api request that
//! needs Redis gets `503 redis_unavailable` with an error body and a
//! Retry-After within a second (the api's deadline is 800 ms; the tests
//! allow 1.5 s for a loaded machine and print what they measured). Workers
//! ride it out without exiting, the watchdog counts nothing as a crash, and
//! jobs flow again once Redis is back.

use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use reqwest::StatusCode;
use verdict_e2e::fixtures::png;
use verdict_e2e::fleet::{Fleet, process, wait_for};
use verdict_e2e::reliability::{redis, stats, up};
use verdict_e2e::{ApiClient, Stack, StackOptions};

/// The bound the issue names (a second), with slack for a loaded machine.
const ANSWER_WITHIN: Duration = Duration::from_millis(1500);
const PATIENCE: Duration = Duration::from_secs(60);

/// Sends every kind of request that touches Redis and checks that each is
/// answered 503 with the error body and Retry-After in time. Returns the
/// slowest answer and how many submissions were nonetheless accepted (202).
async fn every_request_gets_a_quick_503(client: &ApiClient, known_job: &str) -> (Duration, u64) {
    let http = client.http();
    let body = serde_json::json!({"image_base64": "iVBORw0KGgo=", "texts": ["during the outage"]});
    let requests = [
        (
            "POST /v1/jobs",
            http.post(client.url("/v1/jobs")).json(&body),
        ),
        (
            "GET /v1/jobs/{id}",
            http.get(client.url(&format!("/v1/jobs/{known_job}"))),
        ),
        (
            "GET /v1/jobs/{id}?wait=5",
            http.get(client.url(&format!("/v1/jobs/{known_job}?wait=5"))),
        ),
        (
            "POST /v1/jobs/{id}/cancel",
            http.post(client.url(&format!("/v1/jobs/{known_job}/cancel"))),
        ),
        ("GET /readyz", http.get(client.url("/readyz"))),
    ];
    let mut slowest = Duration::ZERO;
    let mut accepted = 0;
    for (what, request) in requests {
        let asked = Instant::now();
        let response = request.send().await.expect("the api answers");
        let took = asked.elapsed();
        let status = response.status();
        let retry_after = response.headers().get("retry-after").cloned();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        if status == StatusCode::ACCEPTED {
            accepted += 1;
            continue;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{what}: {body}");
        assert_eq!(body["error"]["code"], "redis_unavailable", "{what}: {body}");
        assert!(retry_after.is_some(), "{what}: no Retry-After");
        assert!(took < ANSWER_WITHIN, "{what} took {took:?} to answer 503");
        println!("  {what}: 503 after {:.0} ms", took.as_secs_f64() * 1000.0);
        slowest = slowest.max(took);
    }
    (slowest, accepted)
}

#[tokio::test(flavor = "multi_thread")]
async fn with_redis_stopped_the_api_answers_503_at_once_and_the_worker_waits() {
    let mut stack = Stack::start(StackOptions::default()).await;
    stack.start_workers(&["w"], &["--noop"]).await;
    let client = stack.client();
    let before = client.submit(&png(8, 8), &["before"]).await;
    assert_eq!(client.wait_end(&before, PATIENCE).await["state"], "done");

    stack.redis.stop();
    println!("Redis stopped:");
    let (slowest, accepted) = every_request_gets_a_quick_503(&client, &before).await;
    assert_eq!(accepted, 0);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(stack.worker("w").is_running(), "the worker exited");
    assert!(stack.api().is_running(), "the api exited");

    stack.redis.restart();
    stack.wait_ready(&["w"]).await;
    let after = client.submit(&png(8, 8), &["after"]).await;
    assert_eq!(client.wait_end(&after, PATIENCE).await["state"], "done");
    println!(
        "Redis stopped: slowest 503 {:.0} ms",
        slowest.as_secs_f64() * 1000.0
    );
}

#[test]
fn with_redis_frozen_the_fleet_answers_503_in_time_and_nothing_restarts() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let fleet = Fleet::new();
    up(&fleet, 2, &["--noop-workers"], &[]);
    let pids: Vec<Option<u32>> = ["api", "worker-0", "worker-1", "redis"]
        .iter()
        .map(|name| fleet.pid_in_file(name))
        .collect();
    let client = ApiClient::new(&fleet.api_url());
    let known = runtime.block_on(async {
        let id = client.submit(&png(8, 8), &["before"]).await;
        assert_eq!(client.wait_end(&id, PATIENCE).await["state"], "done");
        id
    });

    let redis_pid = Pid::from_raw(fleet.pid_in_file("redis").expect("redis.pid") as i32);
    kill(redis_pid, Signal::SIGSTOP).expect("SIGSTOP");
    let frozen_at = Instant::now();
    println!("Redis frozen (SIGSTOP):");
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let first = runtime.block_on(every_request_gets_a_quick_503(&client, &known));
        // Long enough for the workers' blocking reads to time out (3 s) and
        // for them to back off and retry.
        std::thread::sleep(Duration::from_secs(6).saturating_sub(frozen_at.elapsed()));
        let second = runtime.block_on(every_request_gets_a_quick_503(&client, &known));
        (first.0.max(second.0), first.1 + second.1)
    }));
    kill(redis_pid, Signal::SIGCONT).expect("SIGCONT");
    let (slowest, accepted_while_frozen) =
        outcome.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    let frozen_for = frozen_at.elapsed();

    // Back: jobs flow, and no process was restarted or replaced.
    runtime.block_on(async {
        let deadline = Instant::now() + PATIENCE;
        while client.get_path("/readyz").await.0 != StatusCode::OK {
            assert!(
                Instant::now() < deadline,
                "not ready again after the freeze"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut ids = Vec::new();
        for i in 0..20 {
            ids.push(client.submit(&png(8, 8), &[&format!("after {i}")]).await);
        }
        for id in ids {
            assert_eq!(client.wait_end(&id, PATIENCE).await["state"], "done");
        }
    });
    let status = wait_for(Duration::from_secs(20), || {
        let (code, status) = fleet.status();
        (code == Some(0)).then_some(status)
    })
    .expect("the fleet is all running again");
    for (name, pid) in ["api", "worker-0", "worker-1", "redis"].iter().zip(&pids) {
        let row = process(&status, name);
        assert_eq!(row["restarts"], 0, "{name}: {row:#}");
        assert_eq!(
            row["pid"].as_u64(),
            pid.map(u64::from),
            "{name} was replaced"
        );
    }
    let stored = runtime.block_on(async {
        let mut conn = redis(&fleet).await;
        stats(&mut conn).await
    });
    // Submissions answered 503 while frozen may still have been stored:
    // Redis runs the queued command when it wakes (docs/reliability.md).
    let stored_although_refused = stored.submitted - 1 - 20 - accepted_while_frozen;
    println!(
        "Redis frozen {:.1}s: slowest 503 {:.0} ms; 0 restarts; submissions answered 503 \
         but stored once Redis woke: {stored_although_refused} of 2",
        frozen_for.as_secs_f64(),
        slowest.as_secs_f64() * 1000.0
    );
}
