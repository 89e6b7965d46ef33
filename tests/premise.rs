//! An optional premise on a job, end to end, through the real api, Redis and
//! workers:
//!
//! - a premise sent as JSON, as a multipart part and in a batch job is stored
//!   with the job and served back by `GET /v1/jobs/{id}` (before and after a
//!   worker ran it); a job without one has no `premise` field;
//! - an empty, blank, too long or non-UTF-8 premise, or a second premise
//!   part, is refused with 400 and its code, and nothing is enqueued;
//! - the default model (label-grounded) cannot use a premise: such a job
//!   fails at once with `premise_unsupported`, naming the model, while the
//!   same job without a premise is judged; `fleet batch` sends each row's
//!   premise (JSONL key, CSV column) and reports that code in its line;
//! - one `Idempotency-Key` with another premise is `idempotency_key_reused`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine;
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use verdict_e2e::fixtures::{model_dir, photo, png};
use verdict_e2e::fleet::bin_dir;
use verdict_e2e::{ApiClient, Stack, StackOptions};
use verdict_shared::limits::MAX_SENTENCE_CHARS;
use verdict_shared::queue::heartbeat::live_workers;

const PATIENCE: Duration = Duration::from_secs(120);
const CUP: &str = "This is a ceramic coffee cup.";
const HOT: &str = "The coffee in the cup is hot.";
const STEAM: &str = "Steam rises from the cup.";

fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// `POST /v1/jobs` as JSON: `extra` is merged into `{image_base64, texts}`.
async fn submit_json(
    client: &ApiClient,
    image: &[u8],
    texts: &[&str],
    extra: Value,
    key: Option<&str>,
) -> (StatusCode, Value) {
    let mut body = json!({"image_base64": base64(image), "texts": texts});
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    let mut request = client.http().post(client.url("/v1/jobs")).json(&body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    let response = request.send().await.expect("POST /v1/jobs");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// `POST /v1/jobs` as multipart, with one `premise` part per item of
/// `premises` (raw bytes, so that one can be invalid UTF-8).
async fn submit_multipart(
    client: &ApiClient,
    image: &[u8],
    texts: &[&str],
    premises: &[&[u8]],
) -> (StatusCode, Value) {
    let mut form = Form::new().part(
        "image",
        Part::bytes(image.to_vec())
            .file_name("image.png")
            .mime_str("image/png")
            .expect("mime"),
    );
    for text in texts {
        form = form.text("text", text.to_string());
    }
    for premise in premises {
        form = form.part("premise", Part::bytes(premise.to_vec()));
    }
    let response = client
        .http()
        .post(client.url("/v1/jobs"))
        .multipart(form)
        .send()
        .await
        .expect("POST /v1/jobs");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// `POST /v1/batches` with `jobs`; insists on 202 and returns the items.
async fn submit_batch(client: &ApiClient, jobs: Value) -> Vec<Value> {
    let response = client
        .http()
        .post(client.url("/v1/batches"))
        .json(&json!({"jobs": jobs}))
        .send()
        .await
        .expect("POST /v1/batches");
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let body: Value = response.json().await.expect("a JSON answer");
    body["jobs"].as_array().cloned().expect("items")
}

async fn submitted_total(client: &ApiClient) -> u64 {
    let page = client
        .http()
        .get(client.url("/metrics"))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics text");
    page.lines()
        .find_map(|l| {
            l.strip_prefix("verdict_jobs_submitted_total ")?
                .parse()
                .ok()
        })
        .expect("submitted counter")
}

fn expect_refused(what: &str, (status, body): &(StatusCode, Value), code: &str) {
    assert_eq!(*status, StatusCode::BAD_REQUEST, "{what}: {body}");
    assert_eq!(body["error"]["code"], code, "{what}: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{what}: no message: {body}"
    );
}

/// The job as `GET /v1/jobs/{id}` serves it now.
async fn job(client: &ApiClient, id: &str) -> Value {
    let answer = client.get_job(id, None).await;
    assert_eq!(answer.status, StatusCode::OK, "GET {id}: {}", answer.body);
    answer.body
}

async fn stack_with_model_worker(name: &str) -> Stack {
    let model = model_dir();
    let mut stack = Stack::start(StackOptions::default()).await;
    stack
        .start_workers(&[name], &["--model", model.to_str().expect("UTF-8 path")])
        .await;
    stack
}

#[tokio::test(flavor = "multi_thread")]
async fn a_premise_is_accepted_as_json_multipart_and_batch_and_served_back() {
    let mut stack = Stack::start(StackOptions::default()).await;
    let client = stack.client();
    let image = png(8, 8);
    let accented = "Du thé fume dans la tasse, très chaud.";

    let (status, json_job) =
        submit_json(&client, &image, &[HOT], json!({"premise": STEAM}), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{json_job}");
    assert_eq!(json_job["premise"], STEAM, "the 202 answer has it");
    assert_eq!(json_job["texts"], json!([HOT]));

    let (status, multipart_job) =
        submit_multipart(&client, &image, &[HOT, CUP], &[accented.as_bytes()]).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{multipart_job}");
    assert_eq!(multipart_job["premise"], accented);
    assert_eq!(multipart_job["texts"], json!([HOT, CUP]));

    // Exactly the limit is fine.
    let longest = "p".repeat(MAX_SENTENCE_CHARS);
    let (status, longest_job) =
        submit_json(&client, &image, &[HOT], json!({"premise": longest}), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{longest_job}");

    let (status, plain_job) = submit_json(&client, &image, &[HOT], json!({}), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{plain_job}");

    let items = submit_batch(
        &client,
        json!([
            {"image_base64": base64(&image), "texts": [HOT], "premise": STEAM},
            {"image_base64": base64(&image), "texts": [HOT]},
        ]),
    )
    .await;
    assert_eq!(items[0]["status"], 202, "{items:?}");
    assert_eq!(items[1]["status"], 202, "{items:?}");
    assert_eq!(items[0]["job"]["premise"], STEAM);

    let id = |job: &Value| job["id"].as_str().expect("an id").to_owned();
    let with_premise = [
        (id(&json_job), STEAM.to_owned()),
        (id(&multipart_job), accented.to_owned()),
        (id(&longest_job), longest.clone()),
        (id(&items[0]["job"]), STEAM.to_owned()),
    ];
    let without = [id(&plain_job), id(&items[1]["job"])];
    for (id, premise) in &with_premise {
        let served = job(&client, id).await;
        assert_eq!(served["state"], "queued");
        assert_eq!(served["premise"], premise.as_str(), "GET {id}: {served}");
    }
    for id in &without {
        let served = job(&client, id).await;
        assert!(
            served.get("premise").is_none(),
            "no premise, no field: {served}"
        );
    }

    // Once a worker has run them (no-op: it judges nothing), the record
    // still has each premise.
    stack.start_workers(&["noop"], &["--noop"]).await;
    for (id, premise) in &with_premise {
        let ended = client.wait_end(id, PATIENCE).await;
        assert_eq!(ended["state"], "done", "{ended}");
        assert_eq!(ended["premise"], premise.as_str(), "{ended}");
    }
    for id in &without {
        let ended = client.wait_end(id, PATIENCE).await;
        assert!(ended.get("premise").is_none(), "{ended}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_premise_is_refused_with_its_code_and_nothing_is_enqueued() {
    let stack = Stack::start(StackOptions::default()).await;
    let client = stack.client();
    let image = png(8, 8);
    let too_long = "é".repeat(MAX_SENTENCE_CHARS + 1);

    for (what, premise, code) in [
        ("JSON, empty", "", "premise_empty"),
        ("JSON, blank", " \t\n ", "premise_empty"),
        ("JSON, too long", too_long.as_str(), "premise_too_long"),
    ] {
        let answer = submit_json(&client, &image, &[HOT], json!({"premise": premise}), None).await;
        expect_refused(what, &answer, code);
    }
    let answer = submit_json(&client, &image, &[HOT], json!({"premise": 7}), None).await;
    expect_refused("JSON, not a string", &answer, "invalid_json");

    for (what, premises, code) in [
        ("multipart, empty", vec![&b""[..]], "premise_empty"),
        (
            "multipart, too long",
            vec![too_long.as_bytes()],
            "premise_too_long",
        ),
        (
            "multipart, not UTF-8",
            vec![&b"caf\xe9 au lait"[..]],
            "premise_not_utf8",
        ),
        (
            "multipart, two premises",
            vec![STEAM.as_bytes(), &b"Ice floats in it."[..]],
            "invalid_multipart",
        ),
    ] {
        let answer = submit_multipart(&client, &image, &[HOT], &premises).await;
        expect_refused(what, &answer, code);
    }
    let answer = submit_multipart(
        &client,
        &image,
        &[HOT],
        &[STEAM.as_bytes(), STEAM.as_bytes()],
    )
    .await;
    assert!(
        answer.1["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("premise"),
        "the message names the premise: {}",
        answer.1
    );
    assert_eq!(submitted_total(&client).await, 0, "nothing was enqueued");

    // In a batch, a bad premise refuses that job only.
    let items = submit_batch(
        &client,
        json!([
            {"image_base64": base64(&image), "texts": [HOT], "premise": ""},
            {"image_base64": base64(&image), "texts": [HOT], "premise": too_long},
            {"image_base64": base64(&image), "texts": [HOT], "premise": STEAM},
        ]),
    )
    .await;
    assert_eq!(items[0]["status"], 400, "{items:?}");
    assert_eq!(items[0]["error"]["code"], "premise_empty");
    assert_eq!(items[1]["status"], 400, "{items:?}");
    assert_eq!(items[1]["error"]["code"], "premise_too_long");
    assert_eq!(items[2]["status"], 202, "{items:?}");
    assert_eq!(submitted_total(&client).await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_default_model_fails_a_job_with_a_premise_and_names_itself() {
    let stack = stack_with_model_worker("m1").await;
    let client = stack.client();
    let coffee = photo("coffee.png");

    let (status, with) =
        submit_json(&client, &coffee, &[CUP], json!({"premise": STEAM}), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{with}");
    let (status, without) = submit_json(&client, &coffee, &[CUP], json!({}), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{without}");

    let failed = client
        .wait_end(with["id"].as_str().unwrap(), PATIENCE)
        .await;
    assert_eq!(failed["state"], "failed", "{failed}");
    assert_eq!(failed["error"]["code"], "premise_unsupported", "{failed}");
    assert_eq!(
        failed["attempts"], 1,
        "permanent: failed at once, not retried"
    );
    assert_eq!(failed["premise"], STEAM);
    assert_eq!(failed["results"], json!([]));

    // The message names the model the worker runs (as its record says), the
    // pack's name among it.
    let mut conn = stack.redis.connection().await;
    let workers = live_workers(&mut conn).await.expect("worker records");
    let model = &workers
        .iter()
        .find(|w| w.name == "m1")
        .expect("m1's record")
        .model;
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(model_dir().join("manifest.json")).expect("manifest"),
    )
    .expect("manifest JSON");
    let pack_name = manifest["name"].as_str().expect("the pack's name");
    assert!(model.contains(pack_name), "{model} / {pack_name}");
    let message = failed["error"]["message"].as_str().unwrap_or("");
    assert!(
        message.contains(model.as_str()),
        "the message names the model {model:?}: {message}"
    );

    // The same job without the premise is judged: the premise made it fail.
    let done = client
        .wait_end(without["id"].as_str().unwrap(), PATIENCE)
        .await;
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(done["results"][0]["label"], "yes", "{done}");
}

fn fleet_batch(args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(bin_dir().join("fleet"));
    cmd.arg("batch").args(args);
    for var in ["VERDICT_HOME", "VERDICT_API_TOKEN"] {
        cmd.env_remove(var);
    }
    cmd.stdin(Stdio::null()).output().expect("fleet batch runs")
}

fn result_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).expect("every result line is JSON"))
        .collect()
}

fn line<'a>(lines: &'a [Value], id: &str) -> &'a Value {
    lines
        .iter()
        .find(|l| l["id"] == id)
        .unwrap_or_else(|| panic!("no line for {id} in {lines:#?}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn fleet_batch_sends_each_rows_premise() {
    let stack = stack_with_model_worker("b1").await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("coffee.png"), photo("coffee.png")).unwrap();

    let jsonl = dir.path().join("rows.jsonl");
    let rows = [
        json!({"id": "plain", "image": "coffee.png", "text": CUP}),
        json!({"id": "premised", "image": "coffee.png", "text": CUP, "premise": STEAM}),
        json!({"id": "empty", "image": "coffee.png", "text": CUP, "premise": ""}),
        json!({"id": "listed", "image": "coffee.png", "text": CUP, "premise": [STEAM]}),
    ];
    std::fs::write(
        &jsonl,
        rows.iter().map(|r| format!("{r}\n")).collect::<String>(),
    )
    .unwrap();
    let out = dir.path().join("out.jsonl");
    let run = fleet_batch(&[
        jsonl.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--api",
        &stack.api_url,
        "--wait",
    ]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(
        run.status.code(),
        Some(2),
        "some rows fail: exit 2\n{stderr}"
    );
    let lines = result_lines(&out);
    assert_eq!(lines.len(), 4, "{lines:#?}");
    assert_eq!(line(&lines, "plain")["label"], "yes");
    let premised = line(&lines, "premised");
    assert_eq!(
        premised["error"]["code"], "premise_unsupported",
        "{premised}"
    );
    assert!(
        premised["job"].is_string(),
        "judged by a worker: {premised}"
    );
    assert_eq!(line(&lines, "empty")["error"]["code"], "premise_empty");
    assert_eq!(line(&lines, "listed")["error"]["code"], "invalid_row");

    // The job the row created carries the premise.
    let client = stack.client();
    let job = job(&client, premised["job"].as_str().unwrap()).await;
    assert_eq!(job["premise"], STEAM, "{job}");

    // CSV: a `premise` column; an empty cell is no premise.
    let csv = dir.path().join("rows.csv");
    std::fs::write(
        &csv,
        format!("id,image,text,premise\nc1,coffee.png,{CUP},\"{STEAM}\"\nc2,coffee.png,{CUP},\n"),
    )
    .unwrap();
    let csv_out = dir.path().join("csv.jsonl");
    let run = fleet_batch(&[
        csv.to_str().unwrap(),
        "--out",
        csv_out.to_str().unwrap(),
        "--api",
        &stack.api_url,
        "--wait",
    ]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{stderr}");
    let lines = result_lines(&csv_out);
    assert_eq!(line(&lines, "c1")["error"]["code"], "premise_unsupported");
    assert_eq!(line(&lines, "c2")["label"], "yes", "{lines:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_idempotency_key_with_another_premise_is_refused() {
    let stack = Stack::start(StackOptions::default()).await;
    let client = stack.client();
    let image = png(8, 8);
    let steam = json!({"premise": STEAM});

    let (status, first) = submit_json(&client, &image, &[HOT], steam.clone(), Some("k-1")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    let (status, again) = submit_json(&client, &image, &[HOT], steam.clone(), Some("k-1")).await;
    assert_eq!(status, StatusCode::OK, "the same request: {again}");
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["premise"], STEAM);

    for (what, extra) in [
        ("another premise", json!({"premise": "Ice floats in it."})),
        ("no premise", json!({})),
    ] {
        let (status, other) = submit_json(&client, &image, &[HOT], extra, Some("k-1")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{what}: {other}");
        assert_eq!(other["error"]["code"], "idempotency_key_reused", "{what}");
    }

    // A key first used without a premise refuses one with a premise, and a
    // batch job's key is held to the same rule.
    let (status, plain) = submit_json(&client, &image, &[HOT], json!({}), Some("k-2")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{plain}");
    let (status, other) = submit_json(&client, &image, &[HOT], steam.clone(), Some("k-2")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{other}");
    let items = submit_batch(
        &client,
        json!([
            {"image_base64": base64(&image), "texts": [HOT], "premise": "Ice floats in it.", "idempotency_key": "k-1"},
            {"image_base64": base64(&image), "texts": [HOT], "premise": STEAM, "idempotency_key": "k-1"},
        ]),
    )
    .await;
    assert_eq!(items[0]["status"], 422, "{items:?}");
    assert_eq!(items[0]["error"]["code"], "idempotency_key_reused");
    assert_eq!(items[1]["status"], 200, "{items:?}");
    assert_eq!(items[1]["job"]["id"], first["id"]);
    assert_eq!(submitted_total(&client).await, 2, "k-1 and k-2 only");
}
