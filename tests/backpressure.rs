//! Backpressure: with `--max-queue-depth 20` and no worker, the first 20
//! submissions are accepted and the rest get 429 `queue_full` with a
//! Retry-After, JSON or multipart alike, and leave nothing in Redis. Once
//! workers drain the queue every accepted job is done and submissions are
//! accepted again: nothing accepted was dropped.

use std::time::Duration;

use reqwest::StatusCode;
use verdict_e2e::fixtures::png;
use verdict_e2e::{Stack, StackOptions};
use verdict_shared::queue::stats::read_stats;

const LIMIT: usize = 20;
const PATIENCE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread")]
async fn past_the_limit_submissions_get_429_and_every_accepted_job_completes() {
    let mut stack = Stack::start(StackOptions {
        api_args: vec!["--max-queue-depth".into(), LIMIT.to_string()],
        ..Default::default()
    })
    .await;
    let client = stack.client();
    let image = png(8, 8);

    let mut accepted = Vec::new();
    let mut refused = 0;
    for i in 0..LIMIT + 10 {
        let text = format!("job {i}");
        let answer = if i % 2 == 0 {
            client.submit_json(&image, &[&text]).await
        } else {
            client.submit_multipart(&image, "image/png", &[&text]).await
        };
        if i < LIMIT {
            assert_eq!(answer.status, StatusCode::ACCEPTED, "{i}: {}", answer.body);
            accepted.push(answer.body["id"].as_str().expect("id").to_owned());
        } else {
            assert_eq!(
                answer.status,
                StatusCode::TOO_MANY_REQUESTS,
                "{i}: {}",
                answer.body
            );
            assert_eq!(
                answer.body["error"]["code"], "queue_full",
                "{}",
                answer.body
            );
            refused += 1;
        }
    }
    // The Retry-After header, read on one more refusal.
    let response = client
        .http()
        .post(client.url("/v1/jobs"))
        .json(&serde_json::json!({"image_base64": "iVBORw0KGgo=", "texts": ["one more"]}))
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After in seconds");
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
    refused += 1;

    let mut redis = stack.redis.connection().await;
    let counters = read_stats(&mut redis).await.unwrap();
    assert_eq!(counters.stream_len, LIMIT as u64, "{counters:?}");
    assert_eq!(counters.submitted, LIMIT as u64, "{counters:?}");
    assert_eq!(counters.rejected_full, refused, "{counters:?}");
    // A refused job leaves nothing behind: its image, written beside the
    // script in the same transaction, is deleted by the script's refusal.
    let records: Vec<String> = redis::cmd("KEYS")
        .arg("verdict:job:*")
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(records.len(), LIMIT, "{records:?}");

    // Workers drain the queue: every accepted job ends done.
    stack.start_workers(&["a", "b"], &["--noop"]).await;
    for id in &accepted {
        let job = client.wait_end(id, PATIENCE).await;
        assert_eq!(job["state"], "done", "{job}");
    }
    let after = client.submit(&image, &["accepted again"]).await;
    assert_eq!(client.wait_end(&after, PATIENCE).await["state"], "done");
    let counters = read_stats(&mut redis).await.unwrap();
    assert_eq!(counters.done, LIMIT as u64 + 1, "{counters:?}");
    assert_eq!(counters.stream_len, 0, "{counters:?}");
    println!(
        "backpressure: limit {LIMIT}: {LIMIT} accepted, {refused} refused with 429 \
         (Retry-After {retry_after}s); all {} accepted jobs done",
        LIMIT + 1
    );
}
