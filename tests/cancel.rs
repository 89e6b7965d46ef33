//! `POST /v1/jobs/{id}/cancel`: a queued job is cancelled (and never runs), a
//! waiting long-poll answers at once, cancelling twice is harmless; a running
//! job gets 409 `job_running` and still finishes, a finished one 409
//! `job_finished`; unknown and malformed ids get 404 and 400.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use verdict_e2e::fixtures::png;
use verdict_e2e::{ApiClient, Stack, StackOptions};
use verdict_shared::queue::stats::read_stats;

const PATIENCE: Duration = Duration::from_secs(60);

async fn cancel(client: &ApiClient, id: &str) -> (StatusCode, Value) {
    let response = client
        .http()
        .post(client.url(&format!("/v1/jobs/{id}/cancel")))
        .send()
        .await
        .expect("POST cancel");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn queued_jobs_cancel_running_and_finished_ones_refuse() {
    let mut stack = Stack::start(StackOptions::default()).await;
    let client = stack.client();
    let mut redis = stack.redis.connection().await;

    // No worker yet: the job waits in the queue. A long-poll on it is
    // answered as soon as it is cancelled.
    let queued = client.submit(&png(8, 8), &["never judged"]).await;
    let poll = {
        let client = client.clone();
        let queued = queued.clone();
        tokio::spawn(async move {
            let asked = Instant::now();
            let answer = client.get_job(&queued, Some(30.0)).await;
            (answer, asked.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, job) = cancel(&client, &queued).await;
    assert_eq!(status, StatusCode::OK, "{job}");
    assert_eq!(job["state"], "cancelled", "{job}");
    assert_eq!(job["error"]["code"], "cancelled", "{job}");
    assert!(job["finished_at"].is_string(), "{job}");
    let (answer, waited) = poll.await.expect("long-poll task");
    assert_eq!(answer.body["state"], "cancelled", "{}", answer.body);
    assert!(
        waited < Duration::from_secs(10),
        "the long-poll waited {waited:?}"
    );
    let (status, again) = cancel(&client, &queued).await;
    assert_eq!(status, StatusCode::OK, "cancelling twice: {again}");
    assert_eq!(again["state"], "cancelled");
    let counters = read_stats(&mut redis).await.unwrap();
    assert_eq!(counters.cancelled, 1, "{counters:?}");
    assert_eq!(
        counters.stream_len, 0,
        "the entry left the queue: {counters:?}"
    );

    // A worker that takes 2 s per job: one job runs, the next waits behind it.
    stack
        .start_workers(&["w"], &["--noop", "--noop-delay-ms=2000"])
        .await;
    let running = client.submit(&png(8, 8), &["judged slowly"]).await;
    let deadline = Instant::now() + PATIENCE;
    while client.get_job(&running, None).await.body["state"] != "running" {
        assert!(Instant::now() < deadline, "never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let behind = client
        .submit(&png(8, 8), &["cancelled while waiting"])
        .await;
    let (status, body) = cancel(&client, &running).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "job_running", "{body}");
    let (status, body) = cancel(&client, &behind).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let job = client.wait_end(&running, PATIENCE).await;
    assert_eq!(
        job["state"], "done",
        "a refused cancel changes nothing: {job}"
    );
    let (status, body) = cancel(&client, &running).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "job_finished", "{body}");
    assert_eq!(client.get_job(&running, None).await.body["state"], "done");

    // The cancelled jobs were never started, even with a worker free.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for id in [&queued, &behind] {
        let job = client.get_job(id, None).await.body;
        assert_eq!(job["state"], "cancelled", "{job}");
        assert_eq!(job["attempts"], 0, "{job}");
        assert!(job["worker"].is_null(), "{job}");
    }

    // Unknown and malformed ids.
    let (status, body) = cancel(&client, &verdict_shared::job::JobId::new().to_string()).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"]["code"], "not_found");
    for bad in ["not-a-job", "..%2F..%2Fetc%2Fpasswd", &"7".repeat(5000)] {
        let (status, body) = cancel(&client, bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["error"]["code"], "invalid_job_id", "{body}");
    }
    // DELETE is not how: the job stays readable after a cancel.
    let response = client
        .http()
        .delete(client.url(&format!("/v1/jobs/{}", verdict_shared::job::JobId::new())))
        .send()
        .await
        .expect("DELETE");
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let counters = read_stats(&mut redis).await.unwrap();
    assert_eq!(counters.cancelled, 2, "{counters:?}");
    assert_eq!(counters.done, 1, "{counters:?}");
    assert_eq!(counters.stream_len, 0, "{counters:?}");
}
