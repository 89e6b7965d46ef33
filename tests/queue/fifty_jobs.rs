//! 50 jobs through two worker processes: every job ends done, with one
//! verdict per sentence in order, and the queue is left clean.

use std::collections::HashSet;

use redis::AsyncCommands;
use reqwest::StatusCode;
use verdict_e2e::fixtures::png;
use verdict_e2e::{Stack, StackOptions};

use crate::PATIENCE;

#[tokio::test(flavor = "multi_thread")]
async fn fifty_jobs_through_two_workers_all_end_done_with_every_verdict() {
    let mut stack = Stack::start(StackOptions {
        api_args: vec!["--result-ttl".into(), "3600".into()],
        ..Default::default()
    })
    .await;
    // A 20 ms service time, so that both workers get jobs.
    stack
        .start_workers(&["w1", "w2"], &["--noop", "--noop-delay-ms", "20"])
        .await;
    let client = stack.client();

    let mut submitted = Vec::new();
    for i in 0..50usize {
        let image = png(4 + i as u32, 3);
        let texts: Vec<String> = match i {
            0 => vec![
                "This is a ceramic coffee cup.".into(),
                "This is a stainless steel thermos.".into(),
                "This is an everyday item.".into(),
            ],
            49 => (0..64).map(|k| format!("sentence number {k}")).collect(),
            _ => (0..=(i % 4))
                .map(|k| format!("job {i} sentence {k} — ünïcode ok"))
                .collect(),
        };
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let answer = if i % 2 == 0 {
            client.submit_json(&image, &refs).await
        } else {
            client.submit_multipart(&image, "image/png", &refs).await
        };
        assert_eq!(
            answer.status,
            StatusCode::ACCEPTED,
            "job {i}: {}",
            answer.body
        );
        let id = answer.body["id"].as_str().expect("id").to_owned();
        assert_eq!(answer.location, Some(format!("/v1/jobs/{id}")));
        submitted.push((id, texts, image.len()));
    }

    let mut workers_used = HashSet::new();
    for (id, texts, image_bytes) in &submitted {
        let job = client.wait_end(id, PATIENCE).await;
        assert_eq!(job["state"], "done", "{job}");
        assert_eq!(job["id"], id.as_str());
        assert_eq!(job["attempts"], 1, "{job}");
        assert_eq!(job["image"]["bytes"], *image_bytes);
        assert!(job["error"].is_null(), "{job}");
        let results = job["results"].as_array().expect("results");
        assert_eq!(
            results.len(),
            texts.len(),
            "one verdict per sentence: {job}"
        );
        for (result, text) in results.iter().zip(texts) {
            assert_eq!(result["text"], text.as_str(), "verdicts in sentence order");
            // The no-op judge answers maybe with equal scores.
            assert_eq!(result["label"], "maybe");
            let scores = &result["scores"];
            let sum: f64 = ["yes", "no", "maybe"]
                .iter()
                .map(|k| scores[k].as_f64().unwrap_or(-1.0))
                .sum();
            assert!((sum - 1.0).abs() < 1e-5, "scores sum to 1: {scores}");
        }
        let worker = job["worker"].as_str().expect("worker").to_owned();
        assert!(worker == "w1" || worker == "w2", "{job}");
        workers_used.insert(worker);
        for stamp in ["submitted_at", "started_at", "finished_at"] {
            assert!(job[stamp].is_string(), "{stamp} missing: {job}");
        }
        assert!(job["started_at"].as_str() <= job["finished_at"].as_str());
    }
    assert_eq!(
        workers_used.len(),
        2,
        "both workers ran jobs: {workers_used:?}"
    );

    // The queue is clean: no entries left, counters agree, images dropped,
    // results kept with the configured TTL.
    let mut redis = stack.redis.connection().await;
    let stream_len: u64 = redis.xlen("verdict:jobs").await.unwrap();
    assert_eq!(
        stream_len, 0,
        "finished entries are deleted from the stream"
    );
    let (submitted_count, done, failed): (Option<u64>, Option<u64>, Option<u64>) =
        redis::cmd("HMGET")
            .arg("verdict:stats")
            .arg(&["submitted", "done", "failed"])
            .query_async(&mut redis)
            .await
            .unwrap();
    assert_eq!((submitted_count, done, failed), (Some(50), Some(50), None));
    for (id, _, _) in &submitted {
        let key = format!("verdict:job:{id}");
        let has_image: bool = redis.hexists(&key, "image").await.unwrap();
        assert!(!has_image, "{key} still holds its image");
        let ttl: i64 = redis.ttl(&key).await.unwrap();
        assert!((3000..=3600).contains(&ttl), "{key} ttl {ttl}");
    }
    let pending: redis::Value = redis::cmd("XPENDING")
        .arg("verdict:jobs")
        .arg("workers")
        .query_async(&mut redis)
        .await
        .unwrap();
    let redis::Value::Array(summary) = pending else {
        panic!("XPENDING: {pending:?}")
    };
    assert_eq!(
        summary.first(),
        Some(&redis::Value::Int(0)),
        "nothing left pending"
    );

    // Each worker's heartbeat record counts its jobs (heartbeats come every
    // 2 s: wait for the next ones so the counts are current).
    tokio::time::sleep(verdict_shared::queue::heartbeat::HEARTBEAT_INTERVAL * 2).await;
    let mut total = 0;
    for name in ["w1", "w2"] {
        let raw: String = redis.get(format!("verdict:worker:{name}")).await.unwrap();
        let record: verdict_shared::queue::WorkerRecord = serde_json::from_str(&raw).unwrap();
        assert_eq!(record.name, name);
        assert_eq!(record.pid, stack.worker(name).pid());
        assert_eq!(record.current_job, None);
        total += record.jobs_done;
    }
    assert_eq!(total, 50, "jobs_done in the worker records add up");
}
