//! What an OFA checkpoint or pack must not get past, as an operator meets it:
//! `scripts/build-ofa-pack --checkpoint DIR` on a ModelScope-style folder with
//! a missing tensor, an unexpected one, one of the wrong shape, or a
//! vocabulary that does not match the embedding exits 2 with a message naming
//! the tensor or file; `verdict-worker judge` on a pack whose graph was
//! altered after the build refuses to load, naming the file. The folders are
//! copies of the tiny random-init checkpoint that `scripts/test-setup` made
//! (its path is in the tiny pack's manifest), edited with PyTorch.

use std::path::{Path, PathBuf};
use std::process::Command;

use verdict_e2e::binaries::workspace_root;
use verdict_e2e::fixtures::ofa_tiny_dir;
use verdict_e2e::fleet::bin_dir;

fn checkpoint_dir() -> PathBuf {
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(ofa_tiny_dir().join("manifest.json")).expect("the tiny pack's manifest"),
    )
    .expect("manifest JSON");
    PathBuf::from(
        manifest["model"]["checkpoint_dir"]
            .as_str()
            .expect("the pack records its checkpoint"),
    )
}

fn copy_checkpoint(into: &Path) {
    std::fs::create_dir_all(into).unwrap();
    for entry in std::fs::read_dir(checkpoint_dir()).expect("the tiny checkpoint folder") {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), into.join(entry.file_name())).unwrap();
    }
}

/// Runs a Python snippet with the OFA venv (torch) in `dir`.
fn edit(dir: &Path, script: &str) {
    let python = workspace_root().join(".cache/venv-ofa/bin/python");
    let status = Command::new(python)
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .status()
        .expect("the OFA venv's python (scripts/test-setup)");
    assert!(status.success(), "editing the checkpoint failed");
}

fn build(dir: &Path, out: &Path) -> (Option<i32>, String) {
    let output = Command::new(workspace_root().join("scripts/build-ofa-pack"))
        .arg("--checkpoint")
        .arg(dir)
        .arg("--out")
        .arg(out)
        .output()
        .expect("scripts/build-ofa-pack runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

const LOAD: &str = "import torch; s = torch.load('pytorch_model.bin', weights_only=True)\n";
const SAVE: &str = "torch.save(s, 'pytorch_model.bin')\n";

#[test]
fn bad_checkpoints_are_refused_at_build_time_naming_the_tensor_or_file() {
    let scratch = tempfile::tempdir().unwrap();
    let cases: [(&str, String, &str); 4] = [
        (
            "missing",
            format!("{LOAD}del s['encoder.layers.1.fc2.weight']\n{SAVE}"),
            "missing tensor 'encoder.layers.1.fc2.weight'",
        ),
        (
            "unexpected",
            format!("{LOAD}s['encoder.adapter.weight'] = torch.zeros(3)\n{SAVE}"),
            "unexpected tensor 'encoder.adapter.weight'",
        ),
        (
            "shape",
            format!("{LOAD}s['decoder.layers.0.fc1.weight'] = torch.zeros(7, 128)\n{SAVE}"),
            "tensor 'decoder.layers.0.fc1.weight' has shape (7, 128)",
        ),
        (
            "vocabulary",
            "import json; v = json.load(open('vocab.json')); v.pop(next(k for k, i in v.items() if i == 1000)); json.dump(v, open('vocab.json', 'w'))\n".to_string(),
            "vocab.json: the vocabulary has 50264 tokens",
        ),
    ];
    for (name, script, expected) in cases {
        let dir = scratch.path().join(name);
        copy_checkpoint(&dir);
        edit(&dir, &script);
        let out = scratch.path().join(format!("{name}-pack"));
        let (code, stderr) = build(&dir, &out);
        assert_eq!(code, Some(2), "{name}: exit code; stderr:\n{stderr}");
        assert!(
            stderr.contains(expected),
            "{name}: expected {expected:?} in:\n{stderr}"
        );
        assert!(
            !out.join("manifest.json").exists(),
            "{name}: no pack may be left behind"
        );
    }
}

#[test]
fn a_pack_whose_graph_changed_after_the_build_is_refused_at_load_naming_the_file() {
    let scratch = tempfile::tempdir().unwrap();
    let pack = scratch.path().join("pack");
    std::fs::create_dir(&pack).unwrap();
    for entry in std::fs::read_dir(ofa_tiny_dir()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), pack.join(entry.file_name())).unwrap();
    }
    let graph = pack.join("entailment.onnx");
    let mut bytes = std::fs::read(&graph).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&graph, bytes).unwrap();
    let output = Command::new(bin_dir().join("verdict-worker"))
        .args(["judge", "--model"])
        .arg(&pack)
        .arg("--image")
        .arg(workspace_root().join(".cache/photos/coffee.png"))
        .args(["--text", "This is a ceramic coffee cup."])
        .output()
        .expect("verdict-worker judge runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("entailment.onnx") && stderr.contains("sha256"),
        "{stderr}"
    );
}
