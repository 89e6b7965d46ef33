//! Bad input through the real api and real-model workers under the fleet.
//!
//! Every file of `tests/fixtures/bad/` (expected outcomes in its README.md)
//! is submitted as multipart and as JSON with two sentences; each gets its
//! documented outcome: a 4xx with a JSON error, a job `failed` at once
//! (one attempt: permanent failures are never retried) with a reason, or the
//! right verdict for a valid odd image. Then the API abuse: wrong content
//! types, missing parts, 100 MiB bodies (announced and really sent),
//! invalid UTF-8, 10,000 sentences, a 1 MB sentence, unknown JSON fields,
//! bad ids. Throughout, no process crashes or restarts: the same PIDs, no
//! restarts in `fleet status`, and nothing enqueued but the accepted jobs.

use std::time::{Duration, Instant};

use base64::Engine;
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use verdict_e2e::ApiClient;
use verdict_e2e::client::{parse_raw_answer, raw_post};
use verdict_e2e::fleet::{Fleet, process};
use verdict_e2e::reliability::{model_args, redis, stats, up};

const CUP: &str = "This is a ceramic coffee cup.";
const DOG: &str = "This is a photo of a dog.";
const PATIENCE: Duration = Duration::from_secs(120);

/// What a fixture must come to.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Refused by the api with this status and code.
    Refused(u16, &'static str),
    /// Accepted, then failed by the worker with this code.
    Failed(&'static str),
    /// Accepted and judged: the cup is a cup, not a dog.
    CupNotDog,
}

const CORPUS: [(&str, &str, Expect); 16] = [
    (
        "empty.png",
        "image/png",
        Expect::Refused(400, "image_empty"),
    ),
    (
        "wrong-magic.png",
        "image/png",
        Expect::Refused(415, "image_format"),
    ),
    (
        "truncated.png",
        "image/png",
        Expect::Failed("image_truncated"),
    ),
    (
        "truncated.jpg",
        "image/jpeg",
        Expect::Failed("image_truncated"),
    ),
    (
        "lying-header.jpg",
        "image/jpeg",
        Expect::Failed("image_truncated"),
    ),
    (
        "cut-reended.jpg",
        "image/jpeg",
        Expect::Failed("image_truncated"),
    ),
    ("iccp-bomb.png", "image/png", Expect::CupNotDog),
    (
        "huge-header.png",
        "image/png",
        Expect::Failed("image_too_large"),
    ),
    (
        "gigabyte.bmp",
        "image/bmp",
        Expect::Failed("image_too_large"),
    ),
    ("many-frames.gif", "image/gif", Expect::CupNotDog),
    ("cmyk.jpg", "image/jpeg", Expect::CupNotDog),
    ("gray16.png", "image/png", Expect::CupNotDog),
    ("rgb16.png", "image/png", Expect::CupNotDog),
    ("exif-rotated.jpg", "image/jpeg", Expect::CupNotDog),
    ("grayscale.png", "image/png", Expect::CupNotDog),
    ("rgba.png", "image/png", Expect::CupNotDog),
];

fn fixture(name: &str) -> Vec<u8> {
    let path = verdict_e2e::binaries::workspace_root()
        .join("tests/fixtures/bad")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// The labels of a done job, `yes,no`.
fn labels_of(job: &Value) -> String {
    job["results"]
        .as_array()
        .map(|results| {
            results
                .iter()
                .map(|r| r["label"].as_str().unwrap_or("?"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// Sends `request`; the status and JSON body. A connection that breaks
/// instead of answering comes back as status 0 with the transport error, so
/// the failing case's assertion names it.
async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            (status, response.json().await.unwrap_or(Value::Null))
        }
        Err(err) => (
            0,
            serde_json::json!({"transport_error": format!("{err:?}")}),
        ),
    }
}

fn expect_error(what: &str, (status, body): (u16, Value), want: u16, code: &str) {
    assert_eq!(status, want, "{what}: {body}");
    assert_eq!(body["error"]["code"], code, "{what}: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{what}: no message: {body}"
    );
}

/// Sends `POST /v1/jobs` by hand: `head` (the request line and headers),
/// then `frames` one after the other, while reading the answer, so that an
/// api that answers before the body is over (and closes) is still heard.
/// The status and the JSON body of the answer.
async fn exchange(
    api_url: &str,
    head: String,
    frames: impl Iterator<Item = Vec<u8>>,
) -> (u16, Value) {
    let stream = tokio::net::TcpStream::connect(api_url.trim_start_matches("http://"))
        .await
        .expect("connect");
    let (mut read, mut write) = stream.into_split();
    let reader = tokio::spawn(async move {
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = read.read(&mut buf).await {
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
        }
        answer
    });
    if write.write_all(head.as_bytes()).await.is_ok() {
        for frame in frames {
            if reader.is_finished() || write.write_all(&frame).await.is_err() {
                break;
            }
        }
    }
    let _ = write.shutdown().await;
    let answer = tokio::time::timeout(Duration::from_secs(30), reader)
        .await
        .expect("an answer within 30 s")
        .expect("reader task");
    parse_raw_answer(&answer)
}

/// Streams `total` bytes of `A` as a chunked body: no length announced, so
/// the api can only stop reading at its limit.
async fn stream_body(api_url: &str, content_type: &str, total: usize) -> (u16, Value) {
    let host = api_url.trim_start_matches("http://");
    let head = format!(
        "POST /v1/jobs HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n\
         Transfer-Encoding: chunked\r\n\r\n"
    );
    const CHUNK: usize = 1 << 20;
    let frames = (0..total / CHUNK).map(|_| {
        [
            format!("{CHUNK:x}\r\n").as_bytes(),
            &[b'A'; CHUNK][..],
            b"\r\n",
        ]
        .concat()
    });
    exchange(api_url, head, frames).await
}

/// Sends a multipart body built by hand (one image part, then `texts`).
async fn post_multipart(api_url: &str, image: &[u8], texts: &[String]) -> (u16, Value) {
    let mut body = Vec::new();
    body.extend_from_slice(
        b"--XYZ\r\nContent-Disposition: form-data; name=\"image\"; filename=\"x.png\"\r\n\
          Content-Type: image/png\r\n\r\n",
    );
    body.extend_from_slice(image);
    for text in texts {
        body.extend_from_slice(
            b"\r\n--XYZ\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\n",
        );
        body.extend_from_slice(text.as_bytes());
    }
    body.extend_from_slice(b"\r\n--XYZ--\r\n");
    let host = api_url.trim_start_matches("http://");
    let head = format!(
        "POST /v1/jobs HTTP/1.1\r\nHost: {host}\r\n\
         Content-Type: multipart/form-data; boundary=XYZ\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let frames: Vec<Vec<u8>> = body.chunks(64 * 1024).map(<[u8]>::to_vec).collect();
    exchange(api_url, head, frames.into_iter()).await
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_images_and_api_abuse_get_their_documented_outcomes_and_crash_nothing() {
    let started = Instant::now();
    let fleet = Fleet::new();
    let args = model_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    up(&fleet, 2, &args, &[]);
    let names = ["redis", "api", "worker-0", "worker-1"];
    let pids: Vec<Option<u32>> = names.iter().map(|n| fleet.pid_in_file(n)).collect();
    let client = ApiClient::new(&fleet.api_url());
    let http = client.http().clone();
    let jobs_url = client.url("/v1/jobs");
    let mut accepted = 0u64;

    // The corpus, as multipart and as JSON.
    let mut pending = Vec::new();
    for (name, mime, expect) in CORPUS {
        let bytes = fixture(name);
        for via in ["multipart", "json"] {
            let answer = if via == "multipart" {
                client.submit_multipart(&bytes, mime, &[CUP, DOG]).await
            } else {
                client.submit_json(&bytes, &[CUP, DOG]).await
            };
            let what = format!("{name} ({via})");
            match expect {
                Expect::Refused(status, code) => {
                    expect_error(&what, (answer.status.as_u16(), answer.body), status, code)
                }
                Expect::Failed(_) | Expect::CupNotDog => {
                    assert_eq!(
                        answer.status,
                        StatusCode::ACCEPTED,
                        "{what}: {}",
                        answer.body
                    );
                    accepted += 1;
                    let id = answer.body["id"].as_str().expect("id").to_owned();
                    pending.push((what, id, expect));
                }
            }
        }
    }
    for (what, id, expect) in &pending {
        let job = client.wait_end(id, PATIENCE).await;
        match expect {
            Expect::Failed(code) => {
                assert_eq!(job["state"], "failed", "{what}: {job}");
                assert_eq!(job["error"]["code"], *code, "{what}: {job}");
                assert!(
                    job["error"]["message"]
                        .as_str()
                        .is_some_and(|m| m.len() > 10),
                    "{what}: no reason: {job}"
                );
                assert_eq!(
                    job["attempts"], 1,
                    "{what}: a permanent failure was retried: {job}"
                );
            }
            Expect::CupNotDog => {
                assert_eq!(job["state"], "done", "{what}: {job}");
                assert_eq!(labels_of(&job), "yes,no", "{what}: {job}");
            }
            Expect::Refused(..) => unreachable!(),
        }
        let outcome = match job["state"].as_str() {
            Some("failed") => job["error"]["code"].to_string(),
            _ => labels_of(&job),
        };
        println!("  {what}: {} {outcome}", job["state"]);
    }

    // API abuse.
    let png = fixture("grayscale.png");
    let b64 = base64::engine::general_purpose::STANDARD.encode(&png);
    let image_part = || {
        Part::bytes(png.clone())
            .file_name("cup.png")
            .mime_str("image/png")
            .expect("mime")
    };
    expect_error(
        "text/plain body",
        send(
            http.post(&jobs_url)
                .header("content-type", "text/plain")
                .body("a cup"),
        )
        .await,
        415,
        "unsupported_content_type",
    );
    expect_error(
        "no content type",
        send(http.post(&jobs_url).body(png.clone())).await,
        415,
        "unsupported_content_type",
    );
    expect_error(
        "multipart without an image",
        send(
            http.post(&jobs_url)
                .multipart(Form::new().text("text", CUP)),
        )
        .await,
        400,
        "missing_image",
    );
    expect_error(
        "multipart without a sentence",
        send(
            http.post(&jobs_url)
                .multipart(Form::new().part("image", image_part())),
        )
        .await,
        400,
        "missing_text",
    );
    expect_error(
        "an image part declared text/plain",
        send(
            http.post(&jobs_url).multipart(
                Form::new()
                    .part(
                        "image",
                        Part::bytes(png.clone()).mime_str("text/plain").unwrap(),
                    )
                    .text("text", CUP),
            ),
        )
        .await,
        415,
        "unsupported_content_type",
    );
    expect_error(
        "a malformed multipart body",
        send(
            http.post(&jobs_url)
                .header("content-type", "multipart/form-data; boundary=XYZ")
                .body("--XYZ\r\nthis is not a part header\r\n\r\n--nope"),
        )
        .await,
        400,
        "invalid_multipart",
    );
    expect_error(
        "JSON without texts",
        send(http.post(&jobs_url).json(&json!({"image_base64": b64}))).await,
        400,
        "invalid_json",
    );
    expect_error(
        "JSON with no sentence",
        send(
            http.post(&jobs_url)
                .json(&json!({"image_base64": b64, "texts": []})),
        )
        .await,
        400,
        "missing_text",
    );
    expect_error(
        "JSON with an unknown field",
        send(
            http.post(&jobs_url)
                .json(&json!({"image_base64": b64, "texts": [CUP], "priority": 9})),
        )
        .await,
        400,
        "invalid_json",
    );
    expect_error(
        "not JSON",
        send(
            http.post(&jobs_url)
                .header("content-type", "application/json")
                .body("{\"image_base64\": "),
        )
        .await,
        400,
        "invalid_json",
    );
    expect_error(
        "JSON that is not UTF-8",
        send(
            http.post(&jobs_url)
                .header("content-type", "application/json")
                .body(b"{\"image_base64\": \"\xff\xfe\", \"texts\": [\"a\"]}".to_vec()),
        )
        .await,
        400,
        "invalid_json",
    );
    expect_error(
        "a sentence that is not UTF-8",
        send(
            http.post(&jobs_url).multipart(
                Form::new()
                    .part("image", image_part())
                    .part("text", Part::bytes(b"a cup \xff\xfe\xfd".to_vec())),
            ),
        )
        .await,
        400,
        "text_not_utf8",
    );
    expect_error(
        "image_base64 that is not base64",
        send(
            http.post(&jobs_url)
                .json(&json!({"image_base64": "not base64!", "texts": [CUP]})),
        )
        .await,
        400,
        "invalid_base64",
    );
    let many: Vec<String> = (0..10_000).map(|i| format!("sentence {i}")).collect();
    expect_error(
        "10,000 sentences (JSON)",
        send(
            http.post(&jobs_url)
                .json(&json!({"image_base64": b64, "texts": many})),
        )
        .await,
        400,
        "too_many_texts",
    );
    expect_error(
        "10,000 sentences (multipart)",
        post_multipart(&fleet.api_url(), &png, &many).await,
        400,
        "too_many_texts",
    );
    // Sentences with nothing to judge (issue 14: they were answered a
    // confident `no`): refused, by JSON and by multipart.
    for (what, contentless) in [
        ("zero-width spaces", "\u{200b}\u{200b}\u{200b}"),
        ("control characters and NUL", "\u{1}\u{0}\u{7f}"),
        ("a full stop", "."),
        ("a question mark", "?"),
        ("one letter", "a"),
        ("emoji", "🐱☕"),
    ] {
        expect_error(
            &format!("a sentence of {what} (JSON)"),
            send(
                http.post(&jobs_url)
                    .json(&json!({"image_base64": b64, "texts": [CUP, contentless]})),
            )
            .await,
            400,
            "text_empty",
        );
        expect_error(
            &format!("a sentence of {what} (multipart)"),
            send(
                http.post(&jobs_url).multipart(
                    Form::new()
                        .part("image", image_part())
                        .text("text", CUP)
                        .text("text", contentless),
                ),
            )
            .await,
            400,
            "text_empty",
        );
    }
    let megabyte = "a".repeat(1 << 20);
    expect_error(
        "a 1 MB sentence (JSON)",
        send(
            http.post(&jobs_url)
                .json(&json!({"image_base64": b64, "texts": [megabyte]})),
        )
        .await,
        400,
        "text_too_long",
    );
    expect_error(
        "a 1 MB sentence (multipart)",
        send(
            http.post(&jobs_url).multipart(
                Form::new()
                    .part("image", image_part())
                    .text("text", megabyte.clone()),
            ),
        )
        .await,
        400,
        "text_too_long",
    );

    // 100 MiB: announced (refused before it is read) and really sent.
    let (status, body) = raw_post(
        &fleet.api_url(),
        "/v1/jobs",
        "application/json",
        100 << 20,
        b"{",
    )
    .await;
    expect_error("100 MiB announced", (status, body), 413, "body_too_large");
    for content_type in ["application/json", "multipart/form-data; boundary=XYZ"] {
        expect_error(
            &format!("100 MiB streamed as {content_type}"),
            stream_body(&fleet.api_url(), content_type, 100 << 20).await,
            413,
            "body_too_large",
        );
    }

    // Bad ids, on every route that takes one.
    let unknown = verdict_shared::job::JobId::new().to_string();
    let long = "f".repeat(10_000);
    for bad in [
        "not-a-uuid",
        "..%2F..%2Fetc%2Fpasswd",
        "%00",
        "0193a6d27c1e7cc39f5e1a2b3c4d5e6f",
        "{0193a6d2-7c1e-7cc3-9f5e-1a2b3c4d5e6f}",
        long.as_str(),
    ] {
        let path = format!("/v1/jobs/{bad}");
        expect_error(
            &format!("GET {path:.60}"),
            send(http.get(client.url(&path))).await,
            400,
            "invalid_job_id",
        );
        expect_error(
            &format!("POST {path:.60}/cancel"),
            send(http.post(client.url(&format!("{path}/cancel")))).await,
            400,
            "invalid_job_id",
        );
    }
    expect_error(
        "an unknown id",
        send(http.get(client.url(&format!("/v1/jobs/{unknown}")))).await,
        404,
        "not_found",
    );
    expect_error(
        "a bad wait",
        send(http.get(client.url(&format!("/v1/jobs/{unknown}?wait=forever")))).await,
        400,
        "invalid_wait",
    );

    // Nothing but the accepted jobs reached Redis, and nothing crashed.
    let mut conn = redis(&fleet).await;
    let counters = stats(&mut conn).await;
    assert_eq!(counters.submitted, accepted, "{counters:?}");
    assert_eq!(counters.done + counters.failed, accepted, "{counters:?}");
    assert_eq!(counters.retries + counters.reruns, 0, "{counters:?}");
    let (code, status) = fleet.status();
    assert_eq!(code, Some(0), "{status:#}");
    for (name, pid) in names.iter().zip(&pids) {
        let row = process(&status, name);
        assert_eq!(row["restarts"], 0, "{name}: {row:#}");
        assert_eq!(
            row["pid"].as_u64(),
            pid.map(u64::from),
            "{name} was replaced: {row:#}"
        );
    }
    println!(
        "bad input: {} corpus submissions ({accepted} accepted), abuse cases refused; \
         0 restarts; test took {:.1}s",
        CORPUS.len() * 2,
        started.elapsed().as_secs_f64()
    );
}
