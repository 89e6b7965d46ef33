//! `fleet batch` end to end: real files, the real model, real processes.
//!
//! - a JSONL catalogue whose rows repeat images and sentences, with a missing
//!   image: right verdicts, the missing image reported in its line, exit code
//!   2, and the worker's caches prove that nothing repeated was recomputed;
//! - the same catalogue again with the same `--out`: nothing resubmitted;
//! - a CSV catalogue;
//! - a run interrupted by Ctrl-C (SIGINT) and resumed: every row answered
//!   once, and no job created twice (the idempotency keys find them);
//! - waiting is the default, `--submit-only` leaves rows `queued` and says so;
//! - no fleet in the home and no `--api`: refused, never a guessed port; an
//!   api that does not answer: exit 1 after `--give-up-after`, with the cause;
//! - `POST /v1/batches` stores a batch's jobs several at a time and still
//!   answers each in the request's order, with its own outcome.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;
use verdict_e2e::fixtures::{model_dir, photo};
use verdict_e2e::fleet::bin_dir;
use verdict_e2e::{ApiClient, Stack, StackOptions};
use verdict_shared::queue::stats::read_stats;

fn fleet_batch(args: &[&str]) -> Command {
    let mut cmd = Command::new(bin_dir().join("fleet"));
    cmd.arg("batch").args(args);
    for var in ["VERDICT_HOME", "VERDICT_API_TOKEN"] {
        cmd.env_remove(var);
    }
    cmd.stdin(Stdio::null());
    cmd
}

fn run(args: &[&str]) -> Output {
    fleet_batch(args).output().expect("fleet batch runs")
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).expect("every result line is JSON"))
        .collect()
}

fn find<'a>(lines: &'a [Value], id: &str, text: &str) -> &'a Value {
    lines
        .iter()
        .find(|l| l["id"] == id && l["text"] == text)
        .unwrap_or_else(|| panic!("no line for {id} {text:?} in {lines:#?}"))
}

/// A number from a Prometheus page: the sample `name{labels}` or `name`.
fn metric(page: &str, sample: &str) -> f64 {
    page.lines()
        .find_map(|line| line.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no sample {sample} in\n{page}"))
}

async fn metrics_page(client: &ApiClient) -> String {
    client
        .http()
        .get(client.url("/metrics"))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics text")
}

const CUP: &str = "This is a ceramic coffee cup.";
const THERMOS: &str = "This is a stainless steel thermos.";
const EVERYDAY: &str = "This is an everyday item.";
const CAT: &str = "A cat is looking at the camera.";
const DOG: &str = "This is a photo of a dog.";

fn catalogue(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir.join("photos")).unwrap();
    std::fs::write(dir.join("photos/coffee.png"), photo("coffee.png")).unwrap();
    std::fs::write(dir.join("photos/chelsea.png"), photo("chelsea.png")).unwrap();
    let rows = [
        serde_json::json!({"id": "r1", "image": "photos/coffee.png", "text": CUP}),
        serde_json::json!({"id": "r2", "image": "photos/coffee.png", "text": THERMOS}),
        serde_json::json!({"id": "r3", "image": "photos/chelsea.png", "text": CAT}),
        serde_json::json!({"id": "r4", "image": "photos/chelsea.png", "text": CUP}),
        serde_json::json!({"id": "r5", "image": "photos/missing.png", "text": CUP}),
        serde_json::json!({"id": 6, "image": "photos/coffee.png", "texts": [EVERYDAY, CUP]}),
        serde_json::json!({"id": "r7", "image": "photos/chelsea.png", "text": DOG}),
    ];
    let path = dir.join("catalogue.jsonl");
    let text: String = rows.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn a_catalogue_is_judged_resumed_and_nothing_repeated_is_recomputed() {
    let model = model_dir();
    let mut stack = Stack::start(StackOptions::default()).await;
    // One worker: its caches see every job, so the counts are exact.
    stack
        .start_workers(&["b1"], &["--model", model.to_str().expect("UTF-8 path")])
        .await;
    let client = stack.client();
    let dir = tempfile::tempdir().unwrap();
    let input = catalogue(dir.path());
    let out = dir.path().join("out.jsonl");
    let (input_s, out_s) = (input.to_str().unwrap(), out.to_str().unwrap());

    let started = Instant::now();
    let first = run(&[input_s, "--out", out_s, "--api", &stack.api_url, "--wait"]);
    let stderr = String::from_utf8_lossy(&first.stderr);
    println!("first run ({:?}):\n{stderr}", started.elapsed());
    assert_eq!(
        first.status.code(),
        Some(2),
        "a failed row: exit 2\n{stderr}"
    );
    assert!(
        stderr.contains("batch: 7/7 rows"),
        "plain progress lines off a terminal:\n{stderr}"
    );
    assert!(stderr.contains("verdicts: yes"), "{stderr}");

    let results = lines(&out);
    assert_eq!(results.len(), 8, "one line per sentence: {results:#?}");
    for (id, text, label) in [
        ("r1", CUP, "yes"),
        ("r2", THERMOS, "no"),
        ("r3", CAT, "yes"),
        ("6", EVERYDAY, "maybe"),
        ("6", CUP, "yes"),
        ("r7", DOG, "no"),
    ] {
        let line = find(&results, id, text);
        assert_eq!(line["label"], label, "{line}");
        let scores = &line["scores"];
        let sum: f64 = ["yes", "no", "maybe"]
            .iter()
            .map(|k| scores[k].as_f64().unwrap())
            .sum();
        assert!((sum - 1.0).abs() < 1e-3, "{line}");
        assert!(line["job"].is_string() && line["error"].is_null(), "{line}");
    }
    assert_ne!(
        find(&results, "r4", CUP)["label"],
        "yes",
        "a cat is not a coffee cup"
    );
    let missing = find(&results, "r5", CUP);
    assert_eq!(missing["error"]["code"], "image_unreadable", "{missing}");
    assert!(
        missing["error"]["message"]
            .as_str()
            .unwrap()
            .contains("missing.png")
    );
    assert!(missing["label"].is_null());

    // The caches: 6 jobs on 2 distinct images, 7 sentence lookups of 5
    // distinct sentences. Everything else was a hit.
    let page = metrics_page(&client).await;
    assert_eq!(
        metric(&page, "verdict_cache_misses_total{cache=\"image\"}"),
        2.0,
        "{page}"
    );
    assert_eq!(
        metric(&page, "verdict_cache_hits_total{cache=\"image\"}"),
        4.0
    );
    assert_eq!(
        metric(&page, "verdict_cache_misses_total{cache=\"sentence\"}"),
        5.0
    );
    assert_eq!(
        metric(&page, "verdict_cache_hits_total{cache=\"sentence\"}"),
        2.0
    );
    assert_eq!(metric(&page, "verdict_jobs_submitted_total"), 6.0);
    assert_eq!(metric(&page, "verdict_verdicts_total{label=\"yes\"}"), 3.0);

    // Again with the same --out, keeping failures: every row is answered,
    // nothing is sent, and the file still has its failed row (exit 2).
    let kept = run(&[
        input_s,
        "--out",
        out_s,
        "--api",
        &stack.api_url,
        "--no-retry-failed",
    ]);
    let stderr = String::from_utf8_lossy(&kept.stderr);
    assert_eq!(kept.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("0 answered now, 7 already answered"),
        "{stderr}"
    );
    assert!(stderr.contains("failed rows: 1;"), "{stderr}");

    // Again, by default: the failed row is tried again (its image is still
    // missing), the others are not sent.
    let again = run(&[input_s, "--out", out_s, "--api", &stack.api_url]);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert_eq!(again.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("1 answered now, 6 already answered"),
        "{stderr}"
    );
    assert_eq!(lines(&out).len(), 8, "the old error line was replaced");
    let page = metrics_page(&client).await;
    assert_eq!(metric(&page, "verdict_jobs_submitted_total"), 6.0);

    // The image is fixed: the rerun judges the row, the file has no error
    // left, and the summary and exit code describe the whole file.
    std::fs::copy(
        dir.path().join("photos/coffee.png"),
        dir.path().join("photos/missing.png"),
    )
    .unwrap();
    let report = dir.path().join("report.html");
    let fixed = run(&[
        input_s,
        "--out",
        out_s,
        "--api",
        &stack.api_url,
        "--report",
        report.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&fixed.stderr);
    assert_eq!(fixed.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("1 answered now, 6 already answered"),
        "{stderr}"
    );
    assert!(
        stderr.contains(": yes 4, no ") && stderr.contains("failed rows: 0;"),
        "the whole file: {stderr}"
    );
    let results = lines(&out);
    assert_eq!(results.len(), 8, "one line per sentence: {results:#?}");
    assert_eq!(find(&results, "r5", CUP)["label"], "yes");
    assert!(results.iter().all(|l| l["error"].is_null()), "{results:#?}");
    // The report: the whole file's counts, each sentence, no failure, timings.
    let html = std::fs::read_to_string(&report).expect("the report was written");
    assert!(html.contains("<h2>Failed (0)</h2>"), "{html}");
    // r1, r5 and 6 are cups; r4 is a cat.
    assert!(
        html.contains(&format!("<tr><td>{CUP}</td><td>3</td><td>1</td>")),
        "{html}"
    );
    assert!(html.contains("<h2>Slowest rows</h2>\n<table>"), "{html}");
    assert!(
        results
            .iter()
            .all(|l| l["seconds"].as_f64().is_some_and(|s| s >= 0.0)),
        "{results:#?}"
    );

    // CSV, to stdout.
    let csv = dir.path().join("rules.csv");
    std::fs::write(
        &csv,
        format!("id,image,text\nc1,photos/coffee.png,{CUP}\nc2,photos/chelsea.png,\"{DOG}\"\n"),
    )
    .unwrap();
    // Without --wait: waiting is the default.
    let from_csv = run(&[csv.to_str().unwrap(), "--api", &stack.api_url]);
    let stderr = String::from_utf8_lossy(&from_csv.stderr);
    assert_eq!(from_csv.status.code(), Some(0), "{stderr}");
    assert_eq!(
        stderr.lines().next(),
        Some(format!("fleet batch: api {} (from --api)", stack.api_url).as_str()),
        "the first line names the api: {stderr}"
    );
    let csv_lines: Vec<Value> = String::from_utf8_lossy(&from_csv.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(find(&csv_lines, "c1", CUP)["label"], "yes");
    assert_eq!(find(&csv_lines, "c2", DOG)["label"], "no");

    // --out FILE.csv writes CSV (a header, the scores in three columns), and
    // a rerun resumes from it.
    let csv_out = dir.path().join("verdicts.csv");
    let csv_out_s = csv_out.to_str().unwrap();
    let to_csv = run(&[
        csv.to_str().unwrap(),
        "--api",
        &stack.api_url,
        "--out",
        csv_out_s,
    ]);
    assert_eq!(
        to_csv.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&to_csv.stderr)
    );
    let text = std::fs::read_to_string(&csv_out).unwrap();
    let mut rows = text.lines();
    assert_eq!(
        rows.next(),
        Some(
            "id,image,text,label,yes,no,maybe,explanation,error_code,error_message,job,state,seconds"
        )
    );
    let c1 = rows.find(|r| r.starts_with("c1,")).expect("c1 in the CSV");
    assert!(c1.contains(&format!(",{CUP},yes,")), "{c1}");
    let again = run(&[
        csv.to_str().unwrap(),
        "--api",
        &stack.api_url,
        "--out",
        csv_out_s,
    ]);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        stderr.contains("0 answered now, 2 already answered"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(&csv_out).unwrap(),
        text,
        "nothing rewritten"
    );

    // --submit-only: submitted, left to the fleet, and never called answered.
    let only = dir.path().join("only.csv");
    std::fs::write(
        &only,
        "id,image,text\ns1,photos/coffee.png,This is a mug.\n",
    )
    .unwrap();
    let submitted = run(&[
        only.to_str().unwrap(),
        "--api",
        &stack.api_url,
        "--submit-only",
    ]);
    let stderr = String::from_utf8_lossy(&submitted.stderr);
    assert_eq!(submitted.status.code(), Some(0), "{stderr}");
    let only_lines: Vec<Value> = String::from_utf8_lossy(&submitted.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let line = find(&only_lines, "s1", "This is a mug.");
    assert_eq!(line["state"], "queued", "{line}");
    assert!(line["label"].is_null() && line["job"].is_string(), "{line}");
    assert!(
        stderr.contains("(0 answered now, 1 submitted without waiting, 0 already answered)"),
        "{stderr}"
    );
}

#[test]
fn without_a_fleet_or_an_api_it_refuses_and_an_unreachable_api_ends_with_its_cause() {
    let dir = tempfile::tempdir().unwrap();
    let input = catalogue(dir.path());
    let input_s = input.to_str().unwrap();
    let out = dir.path().join("verdicts.jsonl");
    let out_s = out.to_str().unwrap();

    // A home with no fleet, and no --api: refused before anything is sent.
    let home = dir.path().join("no-fleet-here");
    let home_s = home.to_str().unwrap();
    let refused = run(&["--home", home_s, input_s, "--out", out_s]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("no fleet in") && stderr.contains("fleet up") && stderr.contains("--api"),
        "{stderr}"
    );
    assert!(lines(&out).is_empty(), "nothing was run");

    // An api nobody answers on: exit 1 once --give-up-after has passed,
    // with the address and the cause.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let api = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    let dead = run(&[
        input_s,
        "--out",
        out_s,
        "--api",
        &api,
        "--give-up-after",
        "2s",
    ]);
    let stderr = String::from_utf8_lossy(&dead.stderr);
    assert_eq!(dead.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot reach the api at {api}")),
        "{stderr}"
    );
    assert!(
        stderr.to_lowercase().contains("connection refused"),
        "{stderr}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "it gave up after {:?}, not about 2 s",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_run_resumes_without_creating_a_job_twice() {
    let mut stack = Stack::start(StackOptions::default()).await;
    // Jobs that take 150 ms each, so that Ctrl-C comes in the middle.
    stack
        .start_workers(&["slow"], &["--noop", "--noop-delay-ms", "150"])
        .await;
    let client = stack.client();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.png"), verdict_e2e::fixtures::png(4, 4)).unwrap();
    let input = dir.path().join("many.jsonl");
    let rows: String = (0..40)
        .map(|i| {
            format!(
                "{{\"id\": \"n{i}\", \"image\": \"a.png\", \"text\": \"rule {}\"}}\n",
                i % 5
            )
        })
        .collect();
    std::fs::write(&input, rows).unwrap();
    let out = dir.path().join("out.jsonl");
    let (input_s, out_s) = (input.to_str().unwrap(), out.to_str().unwrap());

    let child = fleet_batch(&[
        input_s,
        "--out",
        out_s,
        "--api",
        &stack.api_url,
        "--wait",
        "--concurrency",
        "4",
        "--batch-size",
        "4",
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .expect("fleet batch starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    while lines(&out).len() < 8 {
        assert!(Instant::now() < deadline, "no progress within 60 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let interrupted = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&interrupted.stderr);
    assert_eq!(interrupted.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("batch interrupted"), "{stderr}");
    let written = lines(&out).len();
    assert!(
        (8..40).contains(&written),
        "stopped in the middle: {written} lines"
    );

    let resumed = run(&[input_s, "--out", out_s, "--api", &stack.api_url, "--wait"]);
    let stderr = String::from_utf8_lossy(&resumed.stderr);
    assert_eq!(resumed.status.code(), Some(0), "{stderr}");
    let results = lines(&out);
    assert_eq!(results.len(), 40, "each row answered once: {stderr}");
    let mut ids: Vec<&str> = results.iter().map(|l| l["id"].as_str().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 40);
    assert!(results.iter().all(|l| l["label"] == "maybe"));
    // Rows in flight at Ctrl-C were sent again with the same idempotency
    // key: the api found their jobs instead of making new ones.
    let page = metrics_page(&client).await;
    assert_eq!(
        metric(&page, "verdict_jobs_submitted_total"),
        40.0,
        "{page}"
    );
}

/// Past the api's queue limit a batch run is told 429 for some of its jobs.
/// It sends those again later, and every row still gets exactly one verdict
/// and one job. With a limit of 4 and 30 rows, up to 12 in flight, the limit
/// is certain to be reached.
#[tokio::test(flavor = "multi_thread")]
async fn past_the_queue_limit_a_batch_sends_again_and_loses_nothing() {
    let mut stack = Stack::start(StackOptions {
        api_args: vec!["--max-queue-depth".into(), "4".into()],
        ..Default::default()
    })
    .await;
    stack
        .start_workers(&["slow"], &["--noop", "--noop-delay-ms", "40"])
        .await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.png"), verdict_e2e::fixtures::png(4, 4)).unwrap();
    let input = dir.path().join("rows.jsonl");
    let rows: String = (0..30)
        .map(|i| format!("{{\"id\": \"q{i}\", \"image\": \"a.png\", \"text\": \"rule {i}\"}}\n"))
        .collect();
    std::fs::write(&input, rows).unwrap();
    let out = dir.path().join("out.jsonl");

    let output = run(&[
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--api",
        &stack.api_url,
        "--wait",
        "--concurrency",
        "12",
        "--batch-size",
        "6",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");

    let results = lines(&out);
    let mut ids: Vec<&str> = results.iter().map(|l| l["id"].as_str().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(
        (results.len(), ids.len()),
        (30, 30),
        "each row answered once: {results:#?}"
    );
    for line in &results {
        assert_eq!(line["label"], "maybe", "{line}");
        assert!(line["error"].is_null(), "{line}");
    }

    let mut redis = stack.redis.connection().await;
    let counters = read_stats(&mut redis).await.unwrap();
    assert!(
        counters.rejected_full > 0,
        "the queue limit was never reached, so nothing was sent again: {counters:?}"
    );
    assert_eq!(counters.submitted, 30, "one job per row: {counters:?}");
    assert_eq!(counters.done, 30, "{counters:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_is_answered_in_its_own_order_each_job_with_its_own_outcome() {
    use base64::Engine;
    let stack = Stack::start(StackOptions::default()).await;
    let client = stack.client();
    let image = base64::engine::general_purpose::STANDARD.encode(verdict_e2e::fixtures::png(4, 4));
    // More jobs than the api stores at once (16), with refusals and a pair
    // sharing an idempotency key among them.
    let jobs: Vec<Value> = (0..60)
        .map(|i| match i {
            7 | 33 => {
                serde_json::json!({"image_base64": "not base64!", "texts": [format!("rule {i}")]})
            }
            20 => serde_json::json!({"image_base64": image, "texts": []}),
            41 | 42 => serde_json::json!({
                "image_base64": image, "texts": ["the same rule"], "idempotency_key": "pair-41"
            }),
            _ => serde_json::json!({"image_base64": image, "texts": [format!("rule {i}")]}),
        })
        .collect();
    let response = client
        .http()
        .post(client.url("/v1/batches"))
        .json(&serde_json::json!({ "jobs": jobs }))
        .send()
        .await
        .expect("POST /v1/batches");
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.expect("a JSON answer");
    let items = body["jobs"].as_array().expect("items");
    assert_eq!(items.len(), 60, "{body}");
    assert_eq!(
        (body["accepted"].as_u64(), body["refused"].as_u64()),
        (Some(57), Some(3)),
        "{body}"
    );
    for (i, item) in items.iter().enumerate() {
        assert_eq!(item["index"], i, "item {i} out of place: {item}");
        match i {
            7 | 33 | 20 => {
                assert_eq!(item["status"], 400, "{item}");
                assert!(item["job"].is_null(), "{item}");
                let code = item["error"]["code"].as_str().unwrap_or_default();
                assert!(!code.is_empty(), "a refusal names its problem: {item}");
            }
            41 | 42 => assert_eq!(item["job"]["texts"], serde_json::json!(["the same rule"])),
            _ => {
                assert_eq!(item["status"], 202, "{item}");
                assert_eq!(
                    item["job"]["texts"],
                    serde_json::json!([format!("rule {i}")]),
                    "{item}"
                );
            }
        }
    }
    // The pair is one job: created once, found once.
    let mut pair = [items[41]["status"].as_u64(), items[42]["status"].as_u64()];
    pair.sort();
    assert_eq!(
        pair,
        [Some(200), Some(202)],
        "{:?} {:?}",
        items[41],
        items[42]
    );
    assert_eq!(items[41]["job"]["id"], items[42]["job"]["id"]);
    let ids: std::collections::HashSet<&str> = items
        .iter()
        .filter_map(|item| item["job"]["id"].as_str())
        .collect();
    assert_eq!(
        ids.len(),
        56,
        "every other accepted job is a job of its own"
    );
}

/// A batch may be larger than one job's body limit: it is taken, and its
/// connection kept alive; only a body announced over every limit closes it.
#[tokio::test(flavor = "multi_thread")]
async fn a_batch_larger_than_a_job_s_body_limit_is_taken_on_a_kept_alive_connection() {
    use base64::Engine;
    let stack = Stack::start(StackOptions {
        api_args: vec![
            "--max-body-bytes".into(),
            "100000".into(),
            "--max-batch-bytes".into(),
            "1000000".into(),
        ],
        ..Default::default()
    })
    .await;
    let client = stack.client();
    let image = base64::engine::general_purpose::STANDARD.encode(verdict_e2e::fixtures::png(4, 4));
    let padding = "x".repeat(900);
    let jobs: Vec<Value> = (0..200)
        .map(|i| serde_json::json!({"image_base64": image, "texts": [format!("rule {i} {padding}")]}))
        .collect();
    let body = serde_json::to_vec(&serde_json::json!({ "jobs": jobs })).unwrap();
    assert!((100_000..1_000_000).contains(&body.len()), "{}", body.len());
    let response = client
        .http()
        .post(client.url("/v1/batches"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("POST /v1/batches");
    assert_eq!(response.status(), 202);
    assert_eq!(
        response.headers().get("connection"),
        None,
        "the connection is kept alive"
    );
    let answer: Value = response.json().await.expect("a JSON answer");
    assert_eq!(answer["accepted"], 200, "{answer}");

    // Over the batch limit too: refused at once, and the connection closed.
    let (status, refused) = verdict_e2e::client::raw_post(
        &stack.api_url,
        "/v1/batches",
        "application/json",
        2_000_000,
        b"{",
    )
    .await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (413, Some("body_too_large")),
        "{refused}"
    );
}
