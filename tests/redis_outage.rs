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

/// What the requests of [`every_request_gets_a_quick_503`] were answered.
#[derive(Default)]
struct Answers {
    /// The slowest 503.
    slowest: Duration,
    /// Submissions accepted (202) nonetheless.
    accepted: u64,
    /// Submissions answered `503 outcome_unknown`: the job id the answer
    /// named, and the Idempotency-Key the submission carried.
    unknown: Vec<(String, String)>,
}

const OUTAGE_BODY: &str = r#"{"image_base64": "iVBORw0KGgo=", "texts": ["during the outage"]}"#;

/// Sends every kind of request that touches Redis and checks that each is
/// answered 503 with the error body and Retry-After in time: a submission
/// `redis_unavailable` (not stored) or `outcome_unknown` (it reached Redis,
/// which did not answer: stored or not, the answer names the job id).
async fn every_request_gets_a_quick_503(client: &ApiClient, known_job: &str) -> Answers {
    let http = client.http();
    let key = format!("outage-{}", verdict_shared::job::JobId::new());
    let requests = [
        (
            "POST /v1/jobs",
            http.post(client.url("/v1/jobs"))
                .header("content-type", "application/json")
                .header("idempotency-key", &key)
                .body(OUTAGE_BODY),
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
    let mut answers = Answers::default();
    for (what, request) in requests {
        let asked = Instant::now();
        let response = request.send().await.expect("the api answers");
        let took = asked.elapsed();
        let status = response.status();
        let retry_after = response.headers().get("retry-after").cloned();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        if status == StatusCode::ACCEPTED {
            answers.accepted += 1;
            continue;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{what}: {body}");
        let code = body["error"]["code"].as_str().unwrap_or("");
        if what == "POST /v1/jobs" && code == "outcome_unknown" {
            let message = body["error"]["message"].as_str().unwrap_or("");
            let id = message
                .split("GET /v1/jobs/")
                .nth(1)
                .and_then(|rest| rest.split(' ').next())
                .unwrap_or_else(|| panic!("no job id in {message:?}"));
            assert!(message.contains("Idempotency-Key is safe"), "{message}");
            answers.unknown.push((id.to_owned(), key.clone()));
        } else {
            assert_eq!(code, "redis_unavailable", "{what}: {body}");
        }
        assert!(retry_after.is_some(), "{what}: no Retry-After");
        assert!(took < ANSWER_WITHIN, "{what} took {took:?} to answer 503");
        println!(
            "  {what}: 503 {code} after {:.0} ms",
            took.as_secs_f64() * 1000.0
        );
        answers.slowest = answers.slowest.max(took);
    }
    answers
}

/// Once Redis answers again: each `outcome_unknown` job is found or not
/// found (both are what the answer said could be), and resending its
/// submission with the same key gives that very job if it was stored, and
/// one job either way. Returns how many had been stored.
async fn unknown_outcomes_resolve(client: &ApiClient, unknown: &[(String, String)]) -> usize {
    let mut stored = 0;
    for (id, key) in unknown {
        let (code, job) = client.get_path(&format!("/v1/jobs/{id}")).await;
        assert!(
            code == StatusCode::OK || code == StatusCode::NOT_FOUND,
            "{id}: {code} {job}"
        );
        let response = client
            .http()
            .post(client.url("/v1/jobs"))
            .header("content-type", "application/json")
            .header("idempotency-key", key)
            .body(OUTAGE_BODY)
            .send()
            .await
            .expect("the api answers");
        assert!(
            response.status().is_success(),
            "resend: {}",
            response.status()
        );
        let resent: serde_json::Value = response.json().await.expect("JSON");
        if code == StatusCode::OK {
            stored += 1;
            assert_eq!(resent["id"], id.as_str(), "the resend found the stored job");
        }
        let (again, _) = client
            .get_path(&format!("/v1/jobs/{}", resent["id"].as_str().unwrap_or("")))
            .await;
        assert_eq!(again, StatusCode::OK);
    }
    stored
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
    let answers = every_request_gets_a_quick_503(&client, &before).await;
    assert_eq!(answers.accepted, 0);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(stack.worker("w").is_running(), "the worker exited");
    assert!(stack.api().is_running(), "the api exited");

    stack.redis.restart();
    stack.wait_ready(&["w"]).await;
    let after = client.submit(&png(8, 8), &["after"]).await;
    assert_eq!(client.wait_end(&after, PATIENCE).await["state"], "done");
    unknown_outcomes_resolve(&client, &answers.unknown).await;
    println!(
        "Redis stopped: slowest 503 {:.0} ms",
        answers.slowest.as_secs_f64() * 1000.0
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
        let mut unknown = first.unknown;
        unknown.extend(second.unknown);
        (
            first.slowest.max(second.slowest),
            first.accepted + second.accepted,
            unknown,
        )
    }));
    kill(redis_pid, Signal::SIGCONT).expect("SIGCONT");
    let (slowest, accepted_while_frozen, unknown) =
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
    let stats_before_resends = runtime.block_on(async {
        let mut conn = redis(&fleet).await;
        stats(&mut conn).await
    });
    // Submissions answered 503 while frozen: only an `outcome_unknown` one
    // may have been stored (Redis runs the queued command when it wakes).
    let stored_although_refused = stats_before_resends.submitted - 1 - 20 - accepted_while_frozen;
    assert!(
        stored_although_refused <= unknown.len() as u64,
        "{stored_although_refused} stored, but only {} answers said the outcome was unknown",
        unknown.len()
    );
    let found = runtime.block_on(unknown_outcomes_resolve(&client, &unknown));
    assert_eq!(found as u64, stored_although_refused);
    println!(
        "Redis frozen {:.1}s: slowest 503 {:.0} ms; 0 restarts; submissions answered 503: 2, \
         of which outcome_unknown {} and stored once Redis woke {stored_although_refused}",
        frozen_for.as_secs_f64(),
        slowest.as_secs_f64() * 1000.0,
        unknown.len()
    );
}
