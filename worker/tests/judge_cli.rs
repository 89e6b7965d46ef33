//! `verdict-worker judge` as a user runs it: JSON lines out, clear errors and
//! distinct exit codes for a bad model (1) and bad input (2).

mod common;

use std::path::Path;
use std::process::{Command, Output};

fn judge_cmd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_verdict-worker"))
}

/// Runs `verdict-worker judge --model MODEL --image IMAGE --text TEXT...`.
fn run_judge(model: &Path, image: &Path, texts: &[&str]) -> Output {
    let mut cmd = judge_cmd();
    cmd.args(["judge", "--model"])
        .arg(model)
        .arg("--image")
        .arg(image);
    for text in texts {
        cmd.args(["--text", text]);
    }
    cmd.output().expect("run verdict-worker")
}

#[test]
fn prints_one_json_line_per_sentence() {
    let out = run_judge(
        &common::model_dir(),
        &common::photos_dir().join("coffee.png"),
        &[
            "This is a ceramic coffee cup.",
            "This is a stainless steel thermos.",
            "This is an everyday item.",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    let labels: Vec<&str> = lines
        .iter()
        .map(|l| l["label"].as_str().expect("label"))
        .collect();
    assert_eq!(labels, ["yes", "no", "maybe"]);
    assert_eq!(lines[0]["text"], "This is a ceramic coffee cup.");
    for l in &lines {
        let sum: f64 = ["yes", "no", "maybe"]
            .iter()
            .map(|k| l["scores"][k].as_f64().expect("score"))
            .sum();
        assert!((sum - 1.0).abs() < 1e-5);
        assert!(
            l["explanation"]["summary"]
                .as_str()
                .is_some_and(|s| !s.is_empty())
        );
    }
}

#[test]
fn bad_image_exits_2_naming_the_problem() {
    let image = common::fixture("bad/huge-header.png");
    let out = run_judge(&common::model_dir(), &image, &["A cup."]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("huge-header.png"), "{stderr}");
    assert!(
        stderr.contains("image_too_large") && stderr.contains("30000x30000"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn missing_or_broken_pack_exits_1_naming_the_file() {
    let empty = tempfile::tempdir().expect("tempdir");
    let coffee = common::photos_dir().join("coffee.png");
    let out = run_judge(empty.path(), &coffee, &["A cup."]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no manifest.json"));

    // A copy of the pack with one byte of the tokenizer changed.
    let broken = tempfile::tempdir().expect("tempdir");
    for entry in std::fs::read_dir(common::model_dir()).expect("pack") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), broken.path().join(entry.file_name())).expect("copy");
    }
    let tokenizer = broken.path().join("tokenizer.json");
    let mut bytes = std::fs::read(&tokenizer).expect("read");
    let last = bytes.len() - 2;
    bytes[last] ^= 1;
    std::fs::write(&tokenizer, bytes).expect("write");
    let out = run_judge(broken.path(), &coffee, &["A cup."]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("tokenizer.json") && stderr.contains("sha256"),
        "{stderr}"
    );
}
