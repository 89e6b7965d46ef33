//! tract and onnxruntime agree on the default pack: image logits and sentence
//! embeddings within 1e-4 on the public photos, computed on the engine's own
//! preprocessed tensors and token ids (so the comparison is of the two
//! runtimes on the same graphs, not of two image resizers).

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use verdict_worker::engine::label_grounded::LabelGroundedModel;
use verdict_worker::engine::pack::Pack;

const PHOTOS: [&str; 8] = [
    "coffee.png",
    "chelsea.png",
    "rocket.jpg",
    "astronaut.png",
    "motorcycle_left.png",
    "camera.png",
    "china.jpg",
    "flower.jpg",
];

const SENTENCES: [&str; 6] = [
    "This is a ceramic coffee cup.",
    "This is a stainless steel thermos.",
    "This is an everyday item.",
    "A cat is looking at the camera.",
    "cat",
    "A long sentence that goes on and on about a red motorcycle parked in a dusty garage full of shelves, boxes, tools and an old wooden bench, so that it needs more than one length bucket of the text encoder to hold all of its many tokens.",
];

#[test]
fn tract_matches_onnxruntime_within_1e_4() {
    let pack = Pack::open(&common::model_dir()).expect("pack");
    let model = LabelGroundedModel::load(&pack).expect("model");
    let scratch = tempfile::tempdir().expect("tempdir");

    let mut images = Vec::new();
    let mut tract_logits = Vec::new();
    for name in PHOTOS {
        let tensor = model.preprocess(&common::photo(name)).expect("preprocess");
        let view = tensor.to_plain_array_view::<f32>().expect("f32 tensor");
        let values: Vec<f32> = view.iter().copied().collect();
        let path = scratch.path().join(format!("{name}.f32"));
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(&path, bytes).expect("write tensor");
        images.push(serde_json::json!({"id": name, "tensor": path}));
        tract_logits.push(model.image_encoder().logits(&tensor).expect("logits"));
    }
    let mut texts = Vec::new();
    let mut tract_embeddings = Vec::new();
    for (i, text) in SENTENCES.iter().enumerate() {
        let ids = model.text_encoder().token_ids(text).expect("tokens");
        tract_embeddings.push(model.text_encoder().embed_ids(&ids).expect("embedding"));
        texts.push(serde_json::json!({"id": format!("t{i}"), "input_ids": ids}));
    }
    let request =
        serde_json::json!({"pack": common::model_dir(), "images": images, "texts": texts});

    let mut child = Command::new(common::venv_python())
        .arg(common::repo_root().join("scripts/model/reference.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run scripts/model/reference.py");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(request.to_string().as_bytes())
        .expect("send request");
    let output = child.wait_with_output().expect("reference output");
    assert!(
        output.status.success(),
        "reference.py failed: {:?}",
        output.status
    );
    let reference: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("reference JSON");

    let floats = |v: &serde_json::Value| -> Vec<f32> {
        v.as_array()
            .expect("array")
            .iter()
            .map(|x| x.as_f64().expect("number") as f32)
            .collect()
    };
    let max_diff = |a: &[f32], b: &[f32]| {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max)
    };

    let mut worst_image = 0f32;
    for (name, logits) in PHOTOS.iter().zip(&tract_logits) {
        let theirs = floats(&reference["images"][name]["logits"]);
        let diff = max_diff(logits, &theirs);
        eprintln!("{name}: max |logit difference| {diff:.2e}");
        worst_image = worst_image.max(diff);
    }
    let mut worst_text = 0f32;
    for (i, embedding) in tract_embeddings.iter().enumerate() {
        let theirs = floats(&reference["texts"][format!("t{i}")]["embedding"]);
        let diff = max_diff(embedding, &theirs);
        eprintln!("{:?}: max |embedding difference| {diff:.2e}", SENTENCES[i]);
        worst_text = worst_text.max(diff);
    }
    assert!(worst_image < 1e-4, "image logits differ by {worst_image}");
    assert!(
        worst_text < 1e-4,
        "sentence embeddings differ by {worst_text}"
    );
}
