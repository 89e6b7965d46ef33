//! `verdict-worker calibrate` as a developer runs it: a bad input file is
//! named with its line before any fitting starts.

mod common;

use std::path::Path;
use std::process::{Command, Output};

/// Runs `verdict-worker calibrate` on devset.jsonl with `probe_sentences`
/// and `--cross-validate folds`.
fn cross_validate(probe_sentences: &Path, folds: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_verdict-worker"))
        .args(["calibrate", "--model"])
        .arg(common::model_dir())
        .arg("--devset")
        .arg(common::fixture("devset.jsonl"))
        .arg("--photos")
        .arg(common::photos_dir())
        .arg("--probe-sentences")
        .arg(probe_sentences)
        .args(["--cross-validate", folds])
        .output()
        .expect("run verdict-worker calibrate")
}

#[test]
fn a_bad_probe_sentence_file_is_named_with_its_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("probe.jsonl");
    std::fs::write(
        &bad,
        "{\"text\": \"The cup was a gift.\", \"unknowable\": true}\n{\"text\": \"The cup is white.\"}\n",
    )
    .expect("write");
    let out = cross_validate(&bad, "5");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("probe.jsonl:2") && stderr.contains("unknowable"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "nothing was fitted");
}

#[test]
fn cross_validation_reads_the_probe_sentences_and_never_the_holdout() {
    let out = cross_validate(&common::fixture("probe-sentences.jsonl"), "2");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // devset.jsonl has 58 dev rows and 30 holdout rows; the fixture 304
    // probe sentences.
    assert!(stdout.contains("304 probe sentence(s)"), "{stdout}");
    let right: usize = stdout
        .split("): ")
        .nth(1)
        .and_then(|rest| rest.split("/58 dev rows right").next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no figure out of 58 dev rows in {stdout:?}"));
    assert!((29..=58).contains(&right), "{right}/58 right when held out");
}
