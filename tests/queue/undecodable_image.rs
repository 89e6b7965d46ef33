//! A job whose image does not decode ends `failed` with the judge's code and
//! message at once, and is not retried.
//!
//! The no-op judge never looks at pixels, so this test runs the real run
//! loop (`verdict_worker::runner::run`) in this process with a small judge
//! that really decodes the image (with the `image` crate), against the real
//! api and Redis. The same path, with the real engine, is checked in
//! `queue_model.rs`.

use std::sync::Arc;

use redis::AsyncCommands;
use verdict_e2e::fixtures::{png, truncated_png};
use verdict_e2e::{Stack, StackOptions};
use verdict_shared::redis_url::RedisUrl;
use verdict_shared::shutdown;
use verdict_shared::verdict::{Explanation, Label, Scores, SentenceVerdict};
use verdict_worker::engine::{Judge, JudgeError};
use verdict_worker::runner::{self, RunnerConfig};

use crate::PATIENCE;

/// Decodes the image; answers `yes` when it does.
struct DecodingJudge;

impl Judge for DecodingJudge {
    fn model_name(&self) -> &str {
        "decoding test judge"
    }

    fn judge(
        &self,
        image: &[u8],
        texts: &[String],
        _premise: Option<&str>,
    ) -> Result<Vec<SentenceVerdict>, JudgeError> {
        image::load_from_memory(image).map_err(|err| {
            JudgeError::Image(verdict_decode::DecodeError::Invalid(err.to_string()))
        })?;
        Ok(texts
            .iter()
            .map(|text| SentenceVerdict {
                text: text.clone(),
                label: Label::Yes,
                scores: Scores::from_weights(1.0, 0.0, 0.0),
                explanation: Explanation::default(),
            })
            .collect())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_undecodable_image_fails_at_once_with_a_reason() {
    let stack = Stack::start(StackOptions::default()).await;
    let url: RedisUrl = stack.redis_url().parse().unwrap();
    let (stop, shutdown) = shutdown::channel();
    let config = RunnerConfig {
        name: "in-process".into(),
        predecessor: None,
        batch_size: 4,
        read_ahead: true,
        block: RunnerConfig::DEFAULT_BLOCK,
        max_attempts: verdict_shared::queue::policy::DEFAULT_MAX_ATTEMPTS,
        reclaim_after: verdict_shared::queue::policy::DEFAULT_RECLAIM_AFTER,
        images: verdict_worker::image_fetch::FetchConfig::default(),
    };
    let worker = tokio::spawn(runner::run(url, config, Arc::new(DecodingJudge), shutdown));
    let client = stack.client();

    let broken = client
        .submit(&truncated_png(), &["A cup.", "A thermos."])
        .await;
    let fine = client.submit(&png(10, 10), &["A cup."]).await;

    let job = client.wait_end(&broken, PATIENCE).await;
    assert_eq!(job["state"], "failed", "{job}");
    assert_eq!(job["error"]["code"], "image_decode", "{job}");
    let message = job["error"]["message"].as_str().unwrap_or("");
    assert!(
        message.contains("could not be decoded"),
        "the reason is given: {message}"
    );
    assert_eq!(job["attempts"], 1, "failed at once, not retried");
    assert_eq!(job["results"], serde_json::json!([]));

    // The failure cost nothing else: the next job is judged.
    let job = client.wait_end(&fine, PATIENCE).await;
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(job["results"][0]["label"], "yes");

    let mut redis = stack.redis.connection().await;
    let failed: Option<u64> = redis.hget("verdict:stats", "failed").await.unwrap();
    assert_eq!(failed, Some(1));
    let stream_len: u64 = redis.xlen("verdict:jobs").await.unwrap();
    assert_eq!(
        stream_len, 0,
        "the failed job's entry is gone: it will not be redelivered"
    );
    let has_image: bool = redis
        .hexists(format!("verdict:job:{broken}"), "image")
        .await
        .unwrap();
    assert!(!has_image);

    stop.fire();
    tokio::time::timeout(PATIENCE, worker)
        .await
        .expect("the runner stops when told")
        .expect("the runner task did not panic")
        .expect("the runner ends cleanly");
    let registered: bool = redis
        .sismember("verdict:workers", "in-process")
        .await
        .unwrap();
    assert!(!registered);
}
