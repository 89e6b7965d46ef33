//! An `ofa-ve` pack through the whole product, as a user runs it: the tiny
//! random-init pack (`scripts/build-ofa-pack --random-init tiny`, built by
//! `scripts/test-setup`), `fleet up --model THAT_PACK` with a real worker,
//! jobs over HTTP (multipart and JSON, with and without a premise), `fleet
//! batch` on a catalogue, then `fleet down`. The weights are random, so the
//! test asserts what must hold whatever the weights: one verdict per sentence,
//! a label among yes / no / maybe that is the argmax of three scores summing
//! to 1, an explanation naming OFA's prompt, the premise prompt when a
//! premise is given, and truncation said when a sentence is longer than the
//! model reads. The labels themselves are checked against PyTorch in
//! worker/tests/ofa_parity.rs.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use verdict_e2e::fixtures::{ofa_tiny_dir, photo};
use verdict_e2e::fleet::{Fleet, bin_dir, http};

fn check_verdict(verdict: &Value, text: &str) {
    assert_eq!(verdict["text"], text, "{verdict}");
    let scores = &verdict["scores"];
    let (yes, no, maybe) = (
        scores["yes"].as_f64().expect("yes score"),
        scores["no"].as_f64().expect("no score"),
        scores["maybe"].as_f64().expect("maybe score"),
    );
    assert!(
        (yes + no + maybe - 1.0).abs() < 1e-5,
        "scores sum to 1: {scores}"
    );
    let label = verdict["label"].as_str().expect("label");
    let best = if maybe >= yes && maybe >= no {
        "maybe"
    } else if no >= yes {
        "no"
    } else {
        "yes"
    };
    assert_eq!(label, best, "the label is the argmax: {verdict}");
    let summary = verdict["explanation"]["summary"].as_str().expect("summary");
    assert!(summary.contains("OFA"), "{summary}");
    for signal in ["logit_yes", "logit_no", "logit_maybe", "prompt_tokens"] {
        assert!(
            verdict["explanation"]["signals"][signal].is_number(),
            "signal {signal} in {verdict}"
        );
    }
}

fn post_json(fleet: &Fleet, body: Value) -> Value {
    let url = format!("{}/v1/jobs", fleet.api_url());
    let (status, job) = http(move |client| client.post(url).json(&body));
    assert_eq!(status, 202, "submission refused: {job}");
    job
}

#[test]
fn fleet_up_with_the_tiny_ofa_pack_answers_http_jobs_and_batches() {
    let pack = ofa_tiny_dir();
    let fleet = Fleet::new();
    let up = fleet.up_with_model(&pack, 1, Duration::from_secs(180), &[]);
    assert!(
        up.ok(),
        "fleet up --model {}:\n{}",
        pack.display(),
        up.output()
    );

    // Multipart, three sentences about one image.
    let coffee = photo("coffee.png");
    let texts = [
        "This is a ceramic coffee cup.",
        "This is a stainless steel thermos.",
        "This is an everyday item.",
    ];
    let mut form = reqwest::multipart::Form::new().part(
        "image",
        reqwest::multipart::Part::bytes(coffee.clone())
            .file_name("coffee.png")
            .mime_str("image/png")
            .unwrap(),
    );
    for text in texts {
        form = form.text("text", text);
    }
    let url = format!("{}/v1/jobs", fleet.api_url());
    let (status, job) = http(move |client| client.post(url).multipart(form));
    assert_eq!(status, 202, "multipart submission refused: {job}");
    let done = fleet.wait_job(job["id"].as_str().unwrap(), Duration::from_secs(120));
    assert_eq!(done["state"], "done", "{done}");
    let results = done["results"].as_array().expect("results");
    assert_eq!(results.len(), 3);
    for (verdict, text) in results.iter().zip(texts) {
        check_verdict(verdict, text);
        let summary = verdict["explanation"]["summary"].as_str().unwrap();
        assert!(summary.contains("does the image describe"), "{summary}");
        assert_eq!(verdict["explanation"]["signals"]["truncated_tokens"], 0.0);
    }

    // JSON with a premise: the second prompt.
    use base64::Engine as _;
    let image_base64 = base64::engine::general_purpose::STANDARD.encode(photo("chelsea.png"));
    let job = post_json(
        &fleet,
        json!({"image_base64": image_base64, "texts": ["The cat is hungry."],
               "premise": "The cat has not eaten since morning."}),
    );
    let done = fleet.wait_job(job["id"].as_str().unwrap(), Duration::from_secs(120));
    assert_eq!(done["state"], "done", "{done}");
    check_verdict(&done["results"][0], "The cat is hungry.");
    let summary = done["results"][0]["explanation"]["summary"]
        .as_str()
        .unwrap();
    assert!(summary.contains("imply"), "the premise prompt: {summary}");
    assert!(
        summary.contains("not eaten"),
        "the premise in it: {summary}"
    );

    // A sentence longer than the model reads (256 words, then 256 prompt
    // tokens) but within the api's 1000 characters: truncated, and said.
    let long = vec!["a"; 400].join(" ");
    let long = format!("{long}.");
    assert!(long.chars().count() <= verdict_shared::limits::MAX_SENTENCE_CHARS);
    let job = post_json(
        &fleet,
        json!({"image_base64": image_base64, "texts": [long.clone()]}),
    );
    let done = fleet.wait_job(job["id"].as_str().unwrap(), Duration::from_secs(120));
    assert_eq!(done["state"], "done", "{done}");
    check_verdict(&done["results"][0], &long);
    let summary = done["results"][0]["explanation"]["summary"]
        .as_str()
        .unwrap();
    assert!(summary.contains("truncated"), "{summary}");

    // fleet batch: a catalogue with a premise row, answered into a file.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("photos")).unwrap();
    std::fs::write(dir.path().join("photos/coffee.png"), &coffee).unwrap();
    std::fs::write(
        dir.path().join("catalogue.jsonl"),
        [
            json!({"id": "sku-1", "image": "photos/coffee.png", "text": "This is a ceramic coffee cup."}),
            json!({"id": "sku-2", "image": "photos/coffee.png",
                   "texts": ["This is a stainless steel thermos.", "This is an everyday item."]}),
            json!({"id": "sku-3", "image": "photos/coffee.png", "text": "The drink is hot.",
                   "premise": "Steam rises from the cup."}),
        ]
        .iter()
        .map(|row| format!("{row}\n"))
        .collect::<String>(),
    )
    .unwrap();
    let out = dir.path().join("verdicts.jsonl");
    let batch = batch(&fleet, &dir.path().join("catalogue.jsonl"), &out);
    assert!(batch.status.success(), "fleet batch: {batch:?}");
    let lines: Vec<Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4, "{lines:#?}");
    for line in &lines {
        assert!(line["error"].is_null(), "{line}");
        let text = line["text"].as_str().unwrap();
        assert!(
            ["yes", "no", "maybe"].contains(&line["label"].as_str().unwrap()),
            "{line}"
        );
        let sum: f64 = ["yes", "no", "maybe"]
            .iter()
            .map(|k| line["scores"][k].as_f64().unwrap())
            .sum();
        assert!((sum - 1.0).abs() < 1e-5, "{text}: {sum}");
    }

    let down = fleet.run(&["down"]);
    assert!(down.ok(), "fleet down:\n{}", down.output());
}

fn batch(fleet: &Fleet, catalogue: &Path, out: &Path) -> std::process::Output {
    Command::new(bin_dir().join("fleet"))
        .arg("--home")
        .arg(fleet.home())
        .arg("batch")
        .arg(catalogue)
        .arg("--out")
        .arg(out)
        .arg("--wait")
        .arg("--api")
        .arg(fleet.api_url())
        .env_remove("VERDICT_API_TOKEN")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("fleet batch runs")
}
