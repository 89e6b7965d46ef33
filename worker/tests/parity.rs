//! tract and onnxruntime agree on the default pack: image logits and sentence
//! embeddings within 1e-4 on the public photos, computed on the engine's own
//! preprocessed tensors and token ids (so the comparison is of the two
//! runtimes on the same graphs, not of two image resizers).

mod common;

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
        if name == PHOTOS[0] {
            assert_pointwise_convs_rewritten(&model, &tensor);
        }
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

    let reference = common::run_reference(
        &common::venv_python(),
        "scripts/model/reference.py",
        &[],
        &request,
    );

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

/// Where the worker runs convolutions with its own kernels
/// (`pointwise_conv`, `depthwise_conv`), every one of the encoder's 32 1 x 1
/// convolutions, its 3 x 3 stem and its 16 depthwise convolutions (with
/// their clips) are rewritten, the first three expansions and depthwise
/// convolutions as pairs (`expand_depthwise`), so the comparison above
/// covers those kernels (and is not passed by tract's own ops alone).
fn assert_pointwise_convs_rewritten(
    model: &LabelGroundedModel,
    tensor: &tract_onnx::prelude::Tensor,
) {
    let profile = model.image_encoder().profile(tensor).expect("profile");
    let nodes = |name: &str| {
        profile
            .by_op
            .iter()
            .find(|(op, _, _)| op == name)
            .map_or(0, |(_, _, nodes)| *nodes)
    };
    let rewritten = verdict_worker::engine::pointwise_conv::best_kernel_here().is_some();
    let (pointwise, patch, depthwise) = if rewritten { (32, 1, 16) } else { (0, 0, 0) };
    // An expansion and the depthwise convolution after it may be one op.
    let pairs = nodes("ExpandDepthwise");
    assert_eq!(
        nodes("PointwiseConv") + pairs,
        pointwise,
        "1 x 1 convolutions rewritten"
    );
    assert_eq!(nodes("PatchConv"), patch, "stem convolutions rewritten");
    assert_eq!(
        nodes("DepthwiseConv") + pairs,
        depthwise,
        "depthwise convolutions rewritten"
    );
    if rewritten {
        assert_eq!(pairs, 3, "the three pairs of large expanded images fused");
        assert_eq!(nodes("DepthWiseConv"), 0, "tract's depthwise op left");
        assert_eq!(nodes("OptBinChain(Max+Min)"), 0, "clips left unfused");
    }
}

/// The face detector's three nets: tract and onnxruntime agree within 1e-4
/// on the engine's own inputs: every P-Net pyramid level of five photos, and
/// R-Net and O-Net batches of crops of their working copies (the face, boxes reaching
/// outside the image, a box of the background).
#[test]
fn face_nets_match_onnxruntime_within_1e_4() {
    use verdict_worker::engine::face_detector::boxes::Candidate;

    let pack = Pack::open(&common::model_dir()).expect("pack");
    let model = LabelGroundedModel::load(&pack).expect("model");
    let detector = model.face_detector().expect("the default pack has faces");
    let scratch = tempfile::tempdir().expect("tempdir");

    // (id, role, input, tract's prob and reg)
    let mut cases = Vec::new();
    for name in [
        "astronaut.png",
        "grace_hopper.jpg",
        "camera.png",
        "coffee.png",
        "chelsea.png",
    ] {
        let rgb = model.decode(&common::photo(name)).expect("decode");
        let copy = detector.working_copy(&rgb);
        for (index, (side, tensor)) in detector.level_tensors(&copy).into_iter().enumerate() {
            let out = detector.run_pnet(index, &tensor).expect("P-Net");
            cases.push((format!("{name}/pnet{side}"), "face_pnet", tensor, out));
        }
        let (w, h) = (copy.image.width as f32, copy.image.height as f32);
        let faces = detector.detect(&rgb).expect("detect");
        let mut boxes: Vec<Candidate> = faces
            .boxes
            .iter()
            .map(|f| Candidate {
                x1: f.x * w,
                y1: f.y * h,
                x2: (f.x + f.w) * w,
                y2: (f.y + f.h) * h,
                score: f.score,
            })
            .collect();
        for (x1, y1, side) in [
            (-10.0, -10.0, 40.0),
            (w - 20.0, h - 30.0, 50.0),
            (5.0, 5.0, 17.0),
        ] {
            boxes.push(Candidate {
                x1,
                y1,
                x2: x1 + side,
                y2: y1 + side,
                score: 0.0,
            });
        }
        // All of a photo's boxes in one batch, as the detector runs them.
        for (stage, role, side) in [(1, "face_rnet", 24), (2, "face_onet", 48)] {
            let tensor = detector.crop_tensor(&copy.image, &boxes, side);
            let out = detector.run_refiner(stage, &tensor).expect("refiner");
            cases.push((format!("{name}/{role}"), role, tensor, out));
        }
    }

    let mut request_faces = Vec::new();
    for (i, (id, role, tensor, _)) in cases.iter().enumerate() {
        let view = tensor.to_plain_array_view::<f32>().expect("f32 tensor");
        let path = scratch.path().join(format!("face{i}.f32"));
        let bytes: Vec<u8> = view.iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(&path, bytes).expect("write tensor");
        request_faces.push(serde_json::json!({
            "id": id, "role": role, "tensor": path, "shape": tensor.shape(),
        }));
    }
    let request = serde_json::json!({"pack": common::model_dir(), "faces": request_faces});
    let reference = common::run_reference(
        &common::venv_python(),
        "scripts/model/reference.py",
        &[],
        &request,
    );

    let mut worst = [0f32; 3];
    for (id, role, _, (prob, reg)) in &cases {
        let theirs = &reference["faces"][id];
        let mut diff = 0f32;
        for (ours, key) in [(prob, "prob"), (reg, "reg")] {
            let theirs: Vec<f32> = theirs[key]
                .as_array()
                .unwrap_or_else(|| panic!("{id}: no {key}"))
                .iter()
                .map(|x| x.as_f64().expect("number") as f32)
                .collect();
            assert_eq!(ours.len(), theirs.len(), "{id} {key}");
            for (a, b) in ours.iter().zip(&theirs) {
                diff = diff.max((a - b).abs());
            }
        }
        let slot = match *role {
            "face_pnet" => 0,
            "face_rnet" => 1,
            _ => 2,
        };
        worst[slot] = worst[slot].max(diff);
    }
    eprintln!(
        "{} inputs: max |difference| P-Net {:.2e}, R-Net {:.2e}, O-Net {:.2e}",
        cases.len(),
        worst[0],
        worst[1],
        worst[2]
    );
    assert!(
        worst.iter().all(|&d| d < 1e-4),
        "face nets differ by {worst:?}"
    );
}
