//! End-to-end with the real model: verdicts on real photos through the whole
//! path (HTTP, Redis, two worker processes running the default model pack).
//!
//! Needs the model pack (`scripts/build-default-model`, into `models/default`
//! or `VERDICT_MODEL`) and the test photos (`scripts/fetch-test-photos`, into
//! `.cache/photos/`); without them these tests fail and say what is missing.

use std::collections::HashSet;
use std::time::Duration;

use verdict_e2e::fixtures::{model_dir, photo};
use verdict_e2e::{Stack, StackOptions};

const PATIENCE: Duration = Duration::from_secs(300);

/// The coffee.png sentences and the verdicts the default model must give.
const COFFEE: [(&str, &str); 3] = [
    ("This is a ceramic coffee cup.", "yes"),
    ("This is a stainless steel thermos.", "no"),
    ("This is an everyday item.", "maybe"),
];

async fn stack_with_model_workers() -> Stack {
    let model = model_dir();
    let model = model.to_str().expect("model path is UTF-8").to_owned();
    let mut stack = Stack::start(StackOptions::default()).await;
    stack
        .start_workers(&["m1", "m2"], &["--model", &model])
        .await;
    stack
}

#[tokio::test(flavor = "multi_thread")]
async fn fifty_coffee_jobs_through_two_model_workers_get_the_right_verdicts() {
    let coffee = photo("coffee.png");
    let stack = stack_with_model_workers().await;
    let client = stack.client();

    // 50 jobs: the three sentences in every rotation, one to three at a time.
    let mut submitted = Vec::new();
    for i in 0..50usize {
        let count = 1 + i % 3;
        let chosen: Vec<(&str, &str)> = (0..count).map(|k| COFFEE[(i + k) % 3]).collect();
        let texts: Vec<&str> = chosen.iter().map(|(text, _)| *text).collect();
        let answer = if i % 2 == 0 {
            client.submit_multipart(&coffee, "image/png", &texts).await
        } else {
            client.submit_json(&coffee, &texts).await
        };
        assert_eq!(answer.status, 202, "{}", answer.body);
        submitted.push((answer.body["id"].as_str().expect("id").to_owned(), chosen));
    }

    let mut workers = HashSet::new();
    for (id, chosen) in &submitted {
        let job = client.wait_end(id, PATIENCE).await;
        assert_eq!(job["state"], "done", "{job}");
        let results = job["results"].as_array().expect("results");
        assert_eq!(results.len(), chosen.len());
        for (result, (text, label)) in results.iter().zip(chosen) {
            assert_eq!(result["text"], *text);
            assert_eq!(result["label"], *label, "{text:?} on coffee.png: {result}");
            assert!(
                result["explanation"]["summary"]
                    .as_str()
                    .is_some_and(|s| !s.is_empty()),
                "every verdict is explained: {result}"
            );
        }
        workers.insert(job["worker"].as_str().unwrap_or("").to_owned());
    }
    assert!(workers.is_subset(&HashSet::from(["m1".to_owned(), "m2".to_owned()])));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_undecodable_image_fails_with_the_engines_reason() {
    let mut truncated = photo("coffee.png");
    truncated.truncate(truncated.len() / 3);
    let stack = stack_with_model_workers().await;
    let client = stack.client();
    let id = client
        .submit(&truncated, &["This is a ceramic coffee cup."])
        .await;
    let job = client.wait_end(&id, PATIENCE).await;
    assert_eq!(job["state"], "failed", "{job}");
    assert_eq!(job["error"]["code"], "image_truncated", "{job}");
    assert_eq!(job["attempts"], 1, "failed at once, not retried");
}
