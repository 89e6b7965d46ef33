//! Redis goes away and comes back (empty): the worker and the api reconnect
//! by themselves and jobs flow again, with no process restarted.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use verdict_e2e::fixtures::png;
use verdict_e2e::stack::log_events;
use verdict_e2e::{Stack, StackOptions};

use crate::PATIENCE;

#[tokio::test(flavor = "multi_thread")]
async fn workers_and_api_reconnect_after_redis_restarts() {
    let mut stack = Stack::start(StackOptions::default()).await;
    stack.start_workers(&["steady"], &["--noop"]).await;
    let client = stack.client();
    let id = client.submit(&png(8, 8), &["before"]).await;
    assert_eq!(client.wait_end(&id, PATIENCE).await["state"], "done");

    stack.redis.stop();
    // While Redis is down the api answers 503 with an error body, quickly.
    let asked = Instant::now();
    let answer = client.submit_json(&png(8, 8), &["during"]).await;
    assert_eq!(
        answer.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        answer.body
    );
    // Not sent (redis_unavailable), or sent on a pooled connection that
    // failed before any answer (outcome_unknown: the api cannot tell whether
    // Redis took it; docs/reliability.md).
    let code = answer.body["error"]["code"].as_str().unwrap_or("");
    assert!(
        ["redis_unavailable", "outcome_unknown"].contains(&code),
        "{}",
        answer.body
    );
    assert!(asked.elapsed() < Duration::from_secs(10));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        stack.worker("steady").is_running(),
        "the worker survived the outage"
    );
    stack.redis.restart();

    // The worker re-registers (heartbeat) and the api re-subscribes.
    stack.wait_ready(&["steady"]).await;
    let id = client.submit(&png(8, 8), &["after"]).await;
    let job = client.wait_end(&id, PATIENCE).await;
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(job["worker"], "steady");
    assert!(stack.worker("steady").is_running());
    assert!(stack.api().is_running());

    let worker_log = log_events(stack.worker("steady").log_path());
    assert!(
        worker_log
            .iter()
            .any(|e| e["message"] == "reconnected to Redis"),
        "the worker logged its reconnection"
    );
    let api_log = log_events(stack.api().log_path());
    let subscriptions = api_log
        .iter()
        .filter(|e| e["message"] == "subscribed to job events")
        .count();
    assert!(subscriptions >= 2, "the api re-subscribed to job events");
}
