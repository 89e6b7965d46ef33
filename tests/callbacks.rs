//! Callbacks: a job with a `callback_url` is POSTed there when it ends,
//! signed with HMAC-SHA256, retried after a failure, exactly once per success
//! even with two api processes sending; a host off the allow-list is refused
//! at submission.

use std::collections::HashMap;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use verdict_e2e::binaries::binary;
use verdict_e2e::fixtures::png;
use verdict_e2e::process::ChildGuard;
use verdict_e2e::{ApiClient, Stack, StackOptions};

const SECRET: &str = "a test secret of more than 16 bytes";

/// What the receiver saw: one entry per request.
#[derive(Debug, Clone)]
struct Received {
    job: String,
    attempt: String,
    signature: String,
    body: Bytes,
}

type Log = Arc<Mutex<Vec<Received>>>;

/// Answers 500 to the first request for each job, 200 after.
async fn receive(State(log): State<Log>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let mut log = log.lock().unwrap();
    let job = header("x-verdict-job");
    let first = !log.iter().any(|r| r.job == job);
    log.push(Received {
        job,
        attempt: header("x-verdict-attempt"),
        signature: header("x-verdict-signature"),
        body,
    });
    if first {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::NO_CONTENT
    }
}

/// Why a receiver refuses a callback.
#[derive(Debug, PartialEq, Eq)]
enum Refused {
    Malformed,
    BadSignature,
    TooOld,
    Replayed,
}

/// What docs/api.md tells a receiver to do: parse `t=..,v1=..`, recompute the
/// HMAC of `"<t>.<X-Verdict-Job>.<body>"`, refuse a `t` more than five minutes
/// from `now`, and refuse a signature it has accepted before.
fn verify(
    signature: &str,
    job: &str,
    body: &[u8],
    now: u64,
    seen: &mut Vec<String>,
) -> Result<(), Refused> {
    let mut t = None;
    let mut v1 = None;
    for part in signature.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => t = value.parse::<u64>().ok(),
            Some(("v1", value)) => v1 = hex::decode(value).ok(),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return Err(Refused::Malformed);
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.{job}.").as_bytes());
    mac.update(body);
    mac.verify_slice(&v1).map_err(|_| Refused::BadSignature)?;
    if now.abs_diff(t) > 300 {
        return Err(Refused::TooOld);
    }
    if seen.iter().any(|s| s == signature) {
        return Err(Refused::Replayed);
    }
    seen.push(signature.to_string());
    Ok(())
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A second api process on the same Redis, with the same settings.
fn second_api(stack: &Stack, args: &[String]) -> (ChildGuard, String) {
    let mut cmd = Command::new(binary("verdict-api"));
    cmd.args([
        "--redis",
        stack.redis_url(),
        "--bind",
        "127.0.0.1:0",
        "--log-format",
        "json",
    ])
    .args(args)
    .env("RUST_LOG", "info");
    let mut api = ChildGuard::spawn("verdict-api-2", cmd, &stack.dir().join("api2.log"));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        for line in api.log().lines() {
            if let Ok(event) = serde_json::from_str::<Value>(line)
                && event["message"] == "listening"
                && let Some(addr) = event["addr"].as_str()
            {
                return (api, format!("http://{addr}"));
            }
        }
        assert!(
            api.is_running() && Instant::now() < deadline,
            "second api did not start:\n{}",
            api.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

async fn submit(client: &ApiClient, callback_url: &str) -> (StatusCode, Value) {
    let body = json!({
        "image_base64": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, png(8, 8)),
        "texts": ["A cup."],
        "callback_url": callback_url,
    });
    let response = client
        .http()
        .post(client.url("/v1/jobs"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn callbacks_are_signed_retried_and_sent_once_by_two_apis() {
    let log: Log = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new()
        .route("/hook", post(receive))
        .with_state(log.clone());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let args = vec![
        "--callback-hosts".to_owned(),
        format!("127.0.0.1:{port}"),
        "--callback-secret-file".to_owned(),
        secret_file.to_str().unwrap().to_owned(),
    ];
    let mut stack = Stack::start(StackOptions {
        api_args: args.clone(),
        ..StackOptions::default()
    })
    .await;
    let (_api2, api2_url) = second_api(&stack, &args);
    stack.start_workers(&["w1"], &["--noop"]).await;
    let clients = [stack.client(), ApiClient::new(&api2_url)];
    let hook = format!("http://127.0.0.1:{port}/hook");

    // Off the allow-list: refused at submission, by either api.
    for client in &clients {
        let (status, body) = submit(client, &format!("http://127.0.0.1:{}/hook", port + 1)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error"]["code"], "callback_not_allowed");
        let (status, body) = submit(client, "http://example.com/hook").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["code"], "callback_not_allowed");
    }

    let mut ids = Vec::new();
    for i in 0..10 {
        let (status, job) = submit(&clients[i % 2], &hook).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{job}");
        assert_eq!(job["callback_url"], hook.as_str());
        ids.push(job["id"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        let job = clients[0].wait_end(id, Duration::from_secs(30)).await;
        assert_eq!(job["state"], "done");
    }
    // Each job: a first attempt answered 500, a second answered 204.
    let deadline = Instant::now() + Duration::from_secs(30);
    while log.lock().unwrap().len() < 2 * ids.len() {
        assert!(
            Instant::now() < deadline,
            "callbacks missing: {:?}",
            log.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Nothing more comes: a delivered callback is not sent again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let received = log.lock().unwrap().clone();
    let mut per_job: HashMap<&str, Vec<&Received>> = HashMap::new();
    for r in &received {
        per_job.entry(r.job.as_str()).or_default().push(r);
    }
    assert_eq!(per_job.len(), ids.len(), "{received:#?}");
    for id in &ids {
        let tries = &per_job[id.as_str()];
        let attempts: Vec<&str> = tries.iter().map(|r| r.attempt.as_str()).collect();
        assert_eq!(attempts, ["1", "2"], "job {id}");
        assert_ne!(
            tries[0].signature, tries[1].signature,
            "job {id}: a retry is signed anew"
        );
        for r in tries {
            let mut seen = Vec::new();
            assert_eq!(
                verify(&r.signature, &r.job, &r.body, unix_now(), &mut seen),
                Ok(()),
                "job {id}: {}",
                r.signature
            );
            // The same request again: a replay.
            assert_eq!(
                verify(&r.signature, &r.job, &r.body, unix_now(), &mut seen),
                Err(Refused::Replayed)
            );
            // Captured and sent again ten minutes later: too old.
            assert_eq!(
                verify(
                    &r.signature,
                    &r.job,
                    &r.body,
                    unix_now() + 600,
                    &mut Vec::new()
                ),
                Err(Refused::TooOld)
            );
            // Pointed at another job: the job id is signed.
            assert_eq!(
                verify(
                    &r.signature,
                    "another-job",
                    &r.body,
                    unix_now(),
                    &mut Vec::new()
                ),
                Err(Refused::BadSignature)
            );
            let job: Value = serde_json::from_slice(&r.body).unwrap();
            assert_eq!(job["id"], id.as_str());
            assert_eq!(job["state"], "done");
            assert_eq!(job["results"][0]["label"], "maybe");
        }
    }
    let page = clients[1]
        .http()
        .get(clients[1].url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("verdict_callbacks_total{outcome=\"delivered\"} 10"),
        "{page}"
    );
    assert!(page.contains("verdict_callbacks_pending 0"), "{page}");
    server.abort();
}
