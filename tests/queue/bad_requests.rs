//! Every bad request gets its 4xx and stable code, and nothing is enqueued.

use redis::AsyncCommands;
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::json;
use verdict_e2e::client::raw_post;
use verdict_e2e::fixtures::png;
use verdict_e2e::{Stack, StackOptions};

/// Sends `request`, expects `status` and `code` in the error body.
async fn expect_error(request: reqwest::RequestBuilder, status: u16, code: &str) {
    let response = request.send().await.expect("request sent");
    let got = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    assert_eq!(
        got.as_u16(),
        status,
        "expected {status} {code}, got {got} {body}"
    );
    assert_eq!(body["error"]["code"], code, "body: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "no message: {body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_get_4xx_with_stable_codes_and_enqueue_nothing() {
    let stack = Stack::start(StackOptions {
        api_args: vec![
            "--max-body-bytes".into(),
            "200000".into(),
            "--max-image-bytes".into(),
            "100000".into(),
        ],
        ..Default::default()
    })
    .await;
    let client = stack.client();
    let http = client.http();
    let jobs = client.url("/v1/jobs");
    let image = png(8, 8);
    let b64 = |bytes: &[u8]| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(bytes)
    };
    let form = |image: Option<(&[u8], &str)>, texts: &[&str]| {
        let mut form = Form::new();
        if let Some((bytes, mime)) = image {
            form = form.part(
                "image",
                Part::bytes(bytes.to_vec())
                    .file_name("x")
                    .mime_str(mime)
                    .unwrap(),
            );
        }
        for text in texts {
            form = form.text("text", text.to_string());
        }
        form
    };

    // Content types.
    expect_error(
        http.post(&jobs)
            .header("content-type", "text/plain")
            .body("hello"),
        415,
        "unsupported_content_type",
    )
    .await;
    expect_error(
        http.post(&jobs).body("no content type"),
        415,
        "unsupported_content_type",
    )
    .await;
    expect_error(
        http.post(&jobs)
            .multipart(form(Some((&image, "text/html")), &["a cup"])),
        415,
        "unsupported_content_type",
    )
    .await;

    // Missing or extra parts.
    expect_error(
        http.post(&jobs).multipart(form(None, &["a cup"])),
        400,
        "missing_image",
    )
    .await;
    expect_error(
        http.post(&jobs)
            .multipart(form(Some((&image, "image/png")), &[])),
        400,
        "missing_text",
    )
    .await;
    expect_error(
        http.post(&jobs).multipart(
            form(Some((&image, "image/png")), &["a cup"]).part("image", Part::bytes(image.clone())),
        ),
        400,
        "multiple_images",
    )
    .await;
    expect_error(
        http.post(&jobs)
            .multipart(form(Some((&image, "image/png")), &["a cup"]).text("colour", "red")),
        400,
        "invalid_multipart",
    )
    .await;
    expect_error(
        http.post(&jobs)
            .header("content-type", "multipart/form-data; boundary=xyz")
            .body("garbage"),
        400,
        "invalid_multipart",
    )
    .await;

    // Sentences.
    let sixty_five: Vec<String> = (0..65).map(|i| format!("sentence {i}")).collect();
    let refs: Vec<&str> = sixty_five.iter().map(String::as_str).collect();
    expect_error(
        http.post(&jobs)
            .multipart(form(Some((&image, "image/png")), &refs)),
        400,
        "too_many_texts",
    )
    .await;
    expect_error(
        http.post(&jobs)
            .json(&json!({"image_base64": b64(&image), "texts": refs})),
        400,
        "too_many_texts",
    )
    .await;
    let long = "x".repeat(1001);
    expect_error(
        http.post(&jobs)
            .json(&json!({"image_base64": b64(&image), "texts": [long]})),
        400,
        "text_too_long",
    )
    .await;
    expect_error(
        http.post(&jobs)
            .json(&json!({"image_base64": b64(&image), "texts": ["ok", "   "]})),
        400,
        "text_empty",
    )
    .await;
    let bad_utf8 = Form::new()
        .part(
            "image",
            Part::bytes(image.clone())
                .file_name("x")
                .mime_str("image/png")
                .unwrap(),
        )
        .part("text", Part::bytes(vec![0x41, 0xff, 0xfe]));
    expect_error(http.post(&jobs).multipart(bad_utf8), 400, "text_not_utf8").await;

    // Images.
    expect_error(
        http.post(&jobs)
            .multipart(form(Some((b"", "image/png")), &["a cup"])),
        400,
        "image_empty",
    )
    .await;
    expect_error(
        http.post(&jobs).multipart(form(
            Some((b"%PDF-1.7 not an image", "image/png")),
            &["a cup"],
        )),
        415,
        "image_format",
    )
    .await;
    let big = vec![0x89u8; 150_000];
    expect_error(
        http.post(&jobs)
            .multipart(form(Some((&big, "image/png")), &["a cup"])),
        413,
        "image_too_large",
    )
    .await;
    // A body announced over the limit is refused before it is sent.
    for content_type in ["application/json", "multipart/form-data; boundary=x"] {
        let (status, body) =
            raw_post(&stack.api_url, "/v1/jobs", content_type, 100_000_000, b"{").await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (413, Some("body_too_large")),
            "{body}"
        );
    }
    // JSON.
    expect_error(
        http.post(&jobs)
            .header("content-type", "application/json")
            .body("{\"texts\": ["),
        400,
        "invalid_json",
    )
    .await;
    expect_error(
        http.post(&jobs)
            .json(&json!({"image_base64": b64(&image), "texts": ["a cup"], "callback": "x"})),
        400,
        "invalid_json",
    )
    .await;
    expect_error(
        http.post(&jobs)
            .json(&json!({"image_base64": "***", "texts": ["a cup"]})),
        400,
        "invalid_base64",
    )
    .await;

    // Reading jobs.
    expect_error(
        http.get(client.url("/v1/jobs/not-a-job")),
        400,
        "invalid_job_id",
    )
    .await;
    expect_error(
        http.get(client.url("/v1/jobs/0193a6d2-7c1e-7cc3-9f5e-1a2b3c4d5e6f")),
        404,
        "not_found",
    )
    .await;
    expect_error(
        http.get(client.url("/v1/jobs/0193a6d2-7c1e-7cc3-9f5e-1a2b3c4d5e6f?wait=5")),
        404,
        "not_found",
    )
    .await;
    expect_error(
        http.get(client.url("/v1/jobs/0193a6d2-7c1e-7cc3-9f5e-1a2b3c4d5e6f?wait=600")),
        400,
        "invalid_wait",
    )
    .await;
    expect_error(http.get(client.url("/nowhere")), 404, "not_found").await;
    expect_error(
        http.delete(client.url("/v1/jobs")),
        405,
        "method_not_allowed",
    )
    .await;

    // Nothing was enqueued, and the api still serves.
    let mut redis = stack.redis.connection().await;
    let stream_len: u64 = redis.xlen("verdict:jobs").await.unwrap_or(0);
    let submitted: Option<u64> = redis.hget("verdict:stats", "submitted").await.unwrap();
    assert_eq!(
        (stream_len, submitted),
        (0, None),
        "a refused request was enqueued"
    );
    let (status, _) = client.get_path("/healthz").await;
    assert_eq!(status, StatusCode::OK);

    // And a good request right after is accepted.
    let answer = client
        .submit_multipart(&image, "image/png", &["A cup."])
        .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.body);
    let id = answer.body["id"].as_str().unwrap();
    assert_eq!(
        answer.location.as_deref(),
        Some(format!("/v1/jobs/{id}").as_str())
    );
    assert_eq!(answer.body["state"], "queued");
    assert_eq!(answer.body["image"]["format"], "png");
    assert_eq!(answer.body["image"]["bytes"], image.len());
}

/// A request refused before its body is read still gets its JSON answer: the
/// api reads and discards the rest of the body (within the body limit)
/// instead of closing the connection under a client that is still sending,
/// which made such clients see a broken pipe instead of the 4xx.
#[tokio::test(flavor = "multi_thread")]
async fn early_refusals_of_large_bodies_reach_the_client() {
    let stack = Stack::start(StackOptions::default()).await;
    let client = stack.client();
    let http = client.http();
    let jobs = client.url("/v1/jobs");
    // Larger than a socket's buffers, under the 10 MiB body limit.
    let big = vec![b'x'; 3 << 20];
    for _ in 0..20 {
        expect_error(
            http.post(&jobs)
                .header("content-type", "text/plain")
                .body(big.clone()),
            415,
            "unsupported_content_type",
        )
        .await;
        let form = Form::new()
            .part(
                "image",
                Part::bytes(big.clone())
                    .file_name("x")
                    .mime_str("text/plain")
                    .unwrap(),
            )
            .text("text", "A cup.");
        expect_error(
            http.post(&jobs).multipart(form),
            415,
            "unsupported_content_type",
        )
        .await;
    }
}
