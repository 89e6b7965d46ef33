//! `Idempotency-Key` on `POST /v1/jobs`: the same key within the result TTL
//! returns the same job, even for requests that arrive together; the same key
//! with another request is refused; after the TTL the key is free again.

use std::time::{Duration, Instant};

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};
use verdict_e2e::fixtures::png;
use verdict_e2e::{ApiClient, Stack, StackOptions};

async fn submit(client: &ApiClient, key: &str, texts: &[&str]) -> (StatusCode, Value) {
    let body = json!({
        "image_base64": base64::engine::general_purpose::STANDARD.encode(png(8, 8)),
        "texts": texts,
    });
    let response = client
        .http()
        .post(client.url("/v1/jobs"))
        .header("Idempotency-Key", key)
        .json(&body)
        .send()
        .await
        .expect("POST /v1/jobs");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn submitted_total(client: &ApiClient) -> u64 {
    let page = client
        .http()
        .get(client.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    page.lines()
        .find_map(|l| {
            l.strip_prefix("verdict_jobs_submitted_total ")?
                .parse()
                .ok()
        })
        .expect("submitted counter")
}

#[tokio::test(flavor = "multi_thread")]
async fn one_key_one_job_within_the_result_ttl() {
    let mut stack = Stack::start(StackOptions {
        api_args: vec!["--result-ttl".into(), "2".into()],
        ..StackOptions::default()
    })
    .await;
    let client = stack.client();

    let (status, first) = submit(&client, "order-1", &["A cup."]).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    let (status, again) = submit(&client, "order-1", &["A cup."]).await;
    assert_eq!(status, StatusCode::OK, "a repeat answers 200: {again}");
    assert_eq!(again["id"], first["id"]);

    // The same key for another request: refused, nothing created.
    let (status, other) = submit(&client, "order-1", &["A thermos."]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{other}");
    assert_eq!(other["error"]["code"], "idempotency_key_reused");
    let (status, bad) = submit(&client, "has space", &["A cup."]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(bad["error"]["code"], "invalid_idempotency_key");
    assert_eq!(submitted_total(&client).await, 1);

    // Twenty requests with one new key at the same time: one job.
    let answers = futures::future::join_all(
        (0..20).map(|_| submit(&client, "order-2", &["A cup.", "A thermos."])),
    )
    .await;
    let created = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::ACCEPTED)
        .count();
    let replayed = answers.iter().filter(|(s, _)| *s == StatusCode::OK).count();
    assert_eq!((created, replayed), (1, 19), "{answers:?}");
    let id = &answers[0].1["id"];
    assert!(answers.iter().all(|(_, job)| &job["id"] == id));
    assert_eq!(submitted_total(&client).await, 2);

    // Once the job is done, the key still names it (now done) ...
    stack.start_workers(&["w1"], &["--noop"]).await;
    let done = client
        .wait_end(id.as_str().unwrap(), Duration::from_secs(30))
        .await;
    assert_eq!(done["state"], "done");
    let (status, after) = submit(&client, "order-2", &["A cup.", "A thermos."]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(&after["id"], id);
    assert_eq!(after["state"], "done");

    // ... until its result expires (--result-ttl 2): then the key is free.
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.get_job(id.as_str().unwrap(), None).await.status != StatusCode::NOT_FOUND {
        assert!(Instant::now() < deadline, "the job did not expire");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, fresh) = submit(&client, "order-2", &["A cup.", "A thermos."]).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{fresh}");
    assert_ne!(&fresh["id"], id);
}
