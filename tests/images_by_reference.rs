//! Images by reference (issue 19): a job names its image by `image_url` or
//! `image_path` instead of carrying it, with the real model and real
//! processes: an image server in the test, a shared folder, the api and a
//! worker given `--image-hosts` and `--image-root`.
//!
//! - the same photo inline, by URL and by path: the same verdicts and
//!   scores, and the job shows the size, sha256 and format the worker
//!   fetched (those of the inline bytes);
//! - refused at once by the api (400 with a code): a host off the list, a
//!   metadata address, a scheme the entry does not allow, `file://`, a path
//!   with `..` or an absolute one, two images;
//! - failed by the worker with a code: a listed *name* that resolves to the
//!   loopback (`image_address_forbidden`), a redirect, a 404, an image over
//!   the worker's limit, a missing file, a link out of the root;
//! - a 503 is transient: the job is tried again and ends done;
//! - `fleet batch --by-reference` sends paths and gets the inline verdicts.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use verdict_e2e::fixtures::{model_dir, photo};
use verdict_e2e::fleet::bin_dir;
use verdict_e2e::{Stack, StackOptions};

const TEXTS: [&str; 2] = ["This is a ceramic coffee cup.", "This is a cat."];
/// The worker's `--max-image-bytes`: `/big` serves one byte more.
const WORKER_MAX_BYTES: usize = 3 << 20;

#[derive(Clone)]
struct Images {
    coffee: Arc<Vec<u8>>,
    flaky_calls: Arc<AtomicUsize>,
}

async fn coffee(State(images): State<Images>) -> Response {
    (
        [(header::CONTENT_TYPE, "image/png")],
        images.coffee.to_vec(),
    )
        .into_response()
}

async fn flaky(State(images): State<Images>) -> Response {
    if images.flaky_calls.fetch_add(1, Ordering::SeqCst) == 0 {
        return (StatusCode::SERVICE_UNAVAILABLE, "busy").into_response();
    }
    coffee(State(images)).await
}

async fn serve_images(coffee_png: Vec<u8>) -> (u16, Arc<AtomicUsize>) {
    let flaky_calls = Arc::new(AtomicUsize::new(0));
    let state = Images {
        coffee: Arc::new(coffee_png),
        flaky_calls: flaky_calls.clone(),
    };
    let app = Router::new()
        .route("/coffee.png", get(coffee))
        .route("/flaky.png", get(flaky))
        .route(
            "/moved.png",
            get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/coffee.png")]) }),
        )
        .route(
            "/big.png",
            get(|| async { vec![0x89u8; WORKER_MAX_BYTES + 1] }),
        )
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, flaky_calls)
}

async fn post(stack: &Stack, body: Value) -> (StatusCode, Value) {
    let response = stack
        .client()
        .http()
        .post(stack.client().url("/v1/jobs"))
        .json(&body)
        .send()
        .await
        .expect("POST /v1/jobs");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn submit(stack: &Stack, image: (&str, &str)) -> String {
    let (status, body) = post(stack, json!({image.0: image.1, "texts": TEXTS})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{image:?} refused: {body}");
    assert_eq!(
        body["image"]["reference"][image.0.trim_start_matches("image_")],
        image.1
    );
    assert_eq!(body["image"]["bytes"], 0, "nobody has read it yet: {body}");
    body["id"].as_str().unwrap().to_owned()
}

async fn refused(stack: &Stack, body: Value) -> String {
    let (status, answer) = post(stack, body.clone()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body} got {answer}");
    answer["error"]["code"].as_str().unwrap().to_owned()
}

async fn ended(stack: &Stack, id: &str) -> Value {
    stack.client().wait_end(id, Duration::from_secs(90)).await
}

fn scores(job: &Value) -> Vec<(String, Value)> {
    job["results"]
        .as_array()
        .unwrap_or_else(|| panic!("no results: {job}"))
        .iter()
        .map(|r| (r["label"].as_str().unwrap().to_owned(), r["scores"].clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn images_named_by_url_or_path_are_judged_like_inline_ones() {
    let coffee_png = photo("coffee.png");
    let (port, flaky_calls) = serve_images(coffee_png.clone()).await;
    let root_dir = tempfile::tempdir().unwrap();
    let root = root_dir.path().join("catalogue");
    std::fs::create_dir_all(root.join("shop")).unwrap();
    std::fs::write(root.join("shop/coffee.png"), &coffee_png).unwrap();
    std::fs::write(root_dir.path().join("secret.png"), &coffee_png).unwrap();
    std::os::unix::fs::symlink(root_dir.path().join("secret.png"), root.join("leak.png")).unwrap();

    // By address, over plain HTTP: allowed as listed. By name (localhost):
    // listed too, but it resolves to the loopback, which a name may not lead to.
    let hosts = format!("http://127.0.0.1:{port},http://localhost:{port}");
    let root_arg = root.to_str().unwrap().to_owned();
    let mut stack = Stack::start(StackOptions {
        api_args: vec![
            "--image-hosts".into(),
            hosts.clone(),
            "--image-root".into(),
            root_arg.clone(),
        ],
        ..StackOptions::default()
    })
    .await;
    let model = model_dir();
    let max_bytes = WORKER_MAX_BYTES.to_string();
    stack
        .start_workers(
            &["w1"],
            &[
                "--model",
                model.to_str().unwrap(),
                "--image-hosts",
                &hosts,
                "--image-root",
                &root_arg,
                "--max-image-bytes",
                &max_bytes,
            ],
        )
        .await;

    // The same photo three ways: the same verdicts, the same bytes judged.
    let url = format!("http://127.0.0.1:{port}/coffee.png");
    let inline = stack.client().submit(&coffee_png, &TEXTS).await;
    let by_url = submit(&stack, ("image_url", &url)).await;
    let by_path = submit(&stack, ("image_path", "shop/coffee.png")).await;
    let inline = ended(&stack, &inline).await;
    assert_eq!(inline["state"], "done", "{inline}");
    for id in [&by_url, &by_path] {
        let job = ended(&stack, id).await;
        assert_eq!(job["state"], "done", "{job}");
        assert_eq!(scores(&job), scores(&inline), "{job}\n{inline}");
        for field in ["bytes", "sha256", "format"] {
            assert_eq!(
                job["image"][field], inline["image"][field],
                "{field}: {job}"
            );
        }
        assert!(job["image"]["reference"].is_object(), "{job}");
    }
    assert_eq!(inline["image"]["format"], "png");

    // Multipart names an image the same way.
    let form = reqwest::multipart::Form::new()
        .text("image_path", "shop/coffee.png")
        .text("text", TEXTS[0]);
    let answer = stack
        .client()
        .http()
        .post(stack.client().url("/v1/jobs"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::ACCEPTED);

    // Refused by the api, before anything is stored.
    let texts = json!(TEXTS);
    for (body, code) in [
        (
            json!({"image_url": "https://images.example.com/a.png", "texts": texts}),
            "image_url_not_allowed",
        ),
        (
            json!({"image_url": "http://169.254.169.254/latest/meta-data/", "texts": texts}),
            "image_url_not_allowed",
        ),
        (
            json!({"image_url": format!("https://127.0.0.1:{port}/coffee.png"), "texts": texts}),
            "image_url_not_allowed",
        ),
        (
            json!({"image_url": "file:///etc/passwd", "texts": texts}),
            "invalid_image_url",
        ),
        (
            json!({"image_url": format!("http://user:pw@127.0.0.1:{port}/coffee.png"), "texts": texts}),
            "invalid_image_url",
        ),
        (
            json!({"image_path": "../secret.png", "texts": texts}),
            "invalid_image_path",
        ),
        (
            json!({"image_path": "/etc/passwd", "texts": texts}),
            "invalid_image_path",
        ),
        (
            json!({"image_path": "shop/coffee.png", "image_url": url, "texts": texts}),
            "multiple_images",
        ),
        (json!({"texts": texts}), "missing_image"),
    ] {
        assert_eq!(refused(&stack, body.clone()).await, code, "{body}");
    }

    // Failed by the worker, with a code and without a second attempt.
    for (image, code) in [
        (
            ("image_url", format!("http://localhost:{port}/coffee.png")),
            "image_address_forbidden",
        ),
        (
            ("image_url", format!("http://127.0.0.1:{port}/moved.png")),
            "image_fetch_failed",
        ),
        (
            ("image_url", format!("http://127.0.0.1:{port}/none.png")),
            "image_fetch_failed",
        ),
        (
            ("image_url", format!("http://127.0.0.1:{port}/big.png")),
            "image_too_large",
        ),
        (
            ("image_path", "shop/none.png".to_owned()),
            "image_not_found",
        ),
        (
            ("image_path", "leak.png".to_owned()),
            "image_path_outside_root",
        ),
    ] {
        let id = submit(&stack, (image.0, &image.1)).await;
        let job = ended(&stack, &id).await;
        assert_eq!(job["state"], "failed", "{image:?}: {job}");
        assert_eq!(job["error"]["code"], code, "{image:?}: {job}");
        assert_eq!(job["attempts"], 1, "{image:?}: {job}");
    }

    // A 503 is worth another attempt: the second one gets the photo.
    let id = submit(
        &stack,
        ("image_url", &format!("http://127.0.0.1:{port}/flaky.png")),
    )
    .await;
    let job = ended(&stack, &id).await;
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(job["attempts"], 2, "{job}");
    assert_eq!(flaky_calls.load(Ordering::SeqCst), 2);

    // fleet batch --by-reference: paths under the root, inline verdicts.
    let catalogue = root.join("catalogue.jsonl");
    std::fs::write(
        &catalogue,
        format!(
            "{}\n{}\n",
            json!({"id": "cup", "image": "shop/coffee.png", "texts": TEXTS}),
            json!({"id": "outside", "image": "../secret.png", "texts": TEXTS}),
        ),
    )
    .unwrap();
    let out = root_dir.path().join("out.jsonl");
    let batch = Command::new(bin_dir().join("fleet"))
        .args([
            "batch",
            "--api",
            &stack.api_url,
            "--by-reference",
            "--image-root",
            &root_arg,
        ])
        .arg(&catalogue)
        .arg("--out")
        .arg(&out)
        .env_remove("VERDICT_HOME")
        .env_remove("VERDICT_API_TOKEN")
        .stdin(Stdio::null())
        .output()
        .expect("fleet batch runs");
    let lines = read_lines(&out);
    let line = |id: &str, text: &str| {
        lines
            .iter()
            .find(|l| l["id"] == id && l["text"] == text)
            .unwrap_or_else(|| {
                panic!(
                    "no line for {id} {text:?}: {lines:#?}\n{}",
                    String::from_utf8_lossy(&batch.stderr)
                )
            })
            .clone()
    };
    for (text, (label, _)) in TEXTS.iter().zip(scores(&inline)) {
        assert_eq!(line("cup", text)["label"], label.as_str(), "{lines:#?}");
    }
    assert_eq!(
        line("outside", TEXTS[0])["error"]["code"],
        "image_outside_root",
        "{lines:#?}"
    );
    assert_eq!(batch.status.code(), Some(2), "a failed row: exit 2");
}

fn read_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).expect("JSON line"))
        .collect()
}
