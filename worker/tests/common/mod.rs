//! Where the worker's tests find the real model, photos and build-time Python.
//!
//! `scripts/test-setup` (run by the README's test command) builds the pack,
//! fetches the photos and creates the venv; a test that finds one missing fails
//! with the command to run, never skips.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the worker crate lives in the repository")
        .to_path_buf()
}

fn required(path: PathBuf, what: &str) -> PathBuf {
    assert!(
        path.exists(),
        "{what} not found at {}: run scripts/test-setup first",
        path.display()
    );
    path
}

/// The default model pack (`VERDICT_MODEL` overrides).
pub fn model_dir() -> PathBuf {
    let dir = std::env::var_os("VERDICT_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("models/default"));
    required(dir.join("manifest.json"), "the model pack");
    dir
}

/// The public test photos (`VERDICT_PHOTOS` overrides).
pub fn photos_dir() -> PathBuf {
    let dir = std::env::var_os("VERDICT_PHOTOS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".cache/photos"));
    required(dir.join("coffee.png"), "the test photos");
    dir
}

pub fn photo(name: &str) -> Vec<u8> {
    let path = photos_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The build venv's python (onnxruntime, numpy).
pub fn venv_python() -> PathBuf {
    required(repo_root().join(".cache/venv/bin/python"), "the build venv")
}

pub fn fixture(relative: &str) -> PathBuf {
    repo_root().join("tests/fixtures").join(relative)
}

/// The OFA pack of the parity test: the tiny random-init one, built by
/// `scripts/test-setup` with `scripts/build-ofa-pack --random-init tiny`
/// (`VERDICT_OFA_PACK` overrides: `scripts/parity-ofa-large` points it at the
/// large one).
pub fn ofa_pack_dir() -> PathBuf {
    let dir = std::env::var_os("VERDICT_OFA_PACK")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("models/ofa-tiny"));
    required(dir.join("manifest.json"), "the OFA pack");
    dir
}

/// The OFA build venv's python (PyTorch, modelscope's OFA code).
pub fn ofa_venv_python() -> PathBuf {
    required(
        repo_root().join(".cache/venv-ofa/bin/python"),
        "the OFA build venv",
    )
}

/// Runs a reference script (`python script`, with `envs`) on one JSON
/// request on stdin and returns the JSON object it prints.
pub fn run_reference(
    python: &Path,
    script: &str,
    envs: &[(&str, &str)],
    request: &serde_json::Value,
) -> serde_json::Value {
    let mut child = Command::new(python)
        .arg(repo_root().join(script))
        .envs(envs.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {script}: {e}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(request.to_string().as_bytes())
        .expect("send request");
    let output = child.wait_with_output().expect("reference output");
    assert!(
        output.status.success(),
        "{script} failed: {:?}",
        output.status
    );
    serde_json::from_slice(&output.stdout).expect("reference JSON")
}
