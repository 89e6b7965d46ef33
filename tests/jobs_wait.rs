//! `POST /v1/jobs/wait`: many jobs read in one request, in the request's
//! order, an unknown id answered `not_found` on its own; with `wait`, the
//! answer comes once every job has ended (with `until: any`, once one has),
//! or with the jobs as they are when the wait runs out; a malformed request is refused with a code naming the
//! problem.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use verdict_e2e::fixtures::png;
use verdict_e2e::{ApiClient, Stack, StackOptions};

async fn wait_jobs(client: &ApiClient, body: &Value) -> (StatusCode, Value) {
    let response = client
        .http()
        .post(client.url("/v1/jobs/wait"))
        .json(body)
        .send()
        .await
        .expect("POST /v1/jobs/wait");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn states(answer: &Value) -> Vec<String> {
    answer["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|item| {
            item["job"]["state"]
                .as_str()
                .or(item["error"]["code"].as_str())
                .unwrap_or("?")
                .to_owned()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn many_jobs_at_once_and_the_wait_ends_when_every_one_has() {
    let mut stack = Stack::start(StackOptions::default()).await;
    let client = stack.client();
    let ids: Vec<String> = futures::future::join_all((0..3).map(|n| {
        let client = client.clone();
        async move { client.submit(&png(8, 8 + n), &["judged later"]).await }
    }))
    .await;
    let unknown = "01a20fe8-5dfb-736f-98a4-004f086e0b95";

    // No worker yet: everything is queued; the unknown id is answered on
    // its own and a repeated id twice, in the request's order.
    let (status, answer) =
        wait_jobs(&client, &json!({"ids": [ids[0], ids[1], unknown, ids[0]]})).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(states(&answer), ["queued", "queued", "not_found", "queued"]);
    assert_eq!(answer["jobs"][1]["id"], ids[1].as_str(), "{answer}");
    assert_eq!(answer["jobs"][3]["job"]["id"], ids[0].as_str(), "{answer}");
    assert_eq!(answer["jobs"][2]["id"], unknown, "{answer}");
    assert_eq!(
        (&answer["ended"], &answer["pending"], &answer["missing"]),
        (&json!(0), &json!(3), &json!(1)),
        "{answer}"
    );

    // `until: any` is answered at once when one id names no job.
    let asked = Instant::now();
    let (status, answer) = wait_jobs(
        &client,
        &json!({"ids": [ids[0], unknown], "wait": 60, "until": "any"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(states(&answer), ["queued", "not_found"]);
    assert!(asked.elapsed() < Duration::from_secs(30), "it waited");

    // A wait that runs out answers with the jobs as they are.
    let asked = Instant::now();
    let (status, answer) = wait_jobs(&client, &json!({"ids": ids, "wait": 0.5})).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(asked.elapsed() >= Duration::from_millis(500));
    assert_eq!(states(&answer), ["queued", "queued", "queued"]);

    // A long wait, started before any worker: it answers once all three
    // have ended, each with its verdict, and not before.
    let waiting = {
        let (client, ids) = (client.clone(), ids.clone());
        tokio::spawn(async move { wait_jobs(&client, &json!({"ids": ids, "wait": 60})).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "answered before any job ended");
    stack
        .start_workers(&["w"], &["--noop", "--noop-delay-ms=300"])
        .await;
    let (status, answer) = waiting.await.expect("the waiting request");
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(states(&answer), ["done", "done", "done"], "{answer}");
    assert_eq!(answer["ended"], 3, "{answer}");
    for item in answer["jobs"].as_array().unwrap() {
        assert_eq!(item["job"]["results"].as_array().map(Vec::len), Some(1));
        assert!(item["job"]["finished_at"].is_string(), "{item}");
    }
    // The same, read one by one, says the same.
    for (n, id) in ids.iter().enumerate() {
        let one = client.get_job(id, None).await;
        assert_eq!(one.body, answer["jobs"][n]["job"], "job {n}");
    }
    // `until: any` answers once one of its jobs has ended, with that one
    // done.
    let more: Vec<String> = vec![
        client.submit(&png(9, 9), &["first"]).await,
        client.submit(&png(9, 10), &["second"]).await,
    ];
    let (status, answer) =
        wait_jobs(&client, &json!({"ids": more, "wait": 60, "until": "any"})).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(answer["ended"].as_u64() >= Some(1), "{answer}");
    assert!(states(&answer).iter().any(|s| s == "done"), "{answer}");

    // Nobody is left registered as waiting.
    let (_, ready) = client.get_path("/readyz").await;
    assert_eq!(ready["waiting"], 0, "{ready}");
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_waits_are_refused_with_their_reason() {
    let stack = Stack::start(StackOptions::default()).await;
    let client = stack.client();
    let id = "01a20fe8-5dfb-736f-98a4-004f086e0b95";
    let too_many: Vec<&str> = vec![id; 257];
    for (body, code) in [
        (json!({"ids": []}), "no_ids"),
        (json!({"ids": too_many}), "too_many_ids"),
        (json!({"ids": [id, "not-a-job"]}), "invalid_job_id"),
        (json!({"ids": [id], "wait": 61}), "invalid_wait"),
        (json!({"ids": [id], "wait": -1}), "invalid_wait"),
        (json!({"ids": [id], "wait": "soon"}), "invalid_json"),
        (json!({"ids": [id], "timeout": 5}), "invalid_json"),
        (json!({"ids": [id], "until": "some"}), "invalid_json"),
        (json!([id]), "invalid_json"),
    ] {
        let (status, answer) = wait_jobs(&client, &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{body}: {answer}");
    }
    let (_, answer) = wait_jobs(&client, &json!({"ids": [id, "nope"]})).await;
    let message = answer["error"]["message"].as_str().unwrap_or("");
    assert!(message.contains("ids[1]"), "names the bad id: {message}");

    let response = client
        .http()
        .post(client.url("/v1/jobs/wait"))
        .header("content-type", "text/plain")
        .body(format!("{{\"ids\": [\"{id}\"]}}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let response = client
        .http()
        .post(client.url("/v1/jobs/wait"))
        .header("content-type", "application/json")
        .body(format!("{{\"ids\": [\"{}\"]}}", "x".repeat(70_000)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "body_too_large", "{body}");
    // GET on the path is not a job id.
    let (status, _) = client.get_path("/v1/jobs/wait").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}
