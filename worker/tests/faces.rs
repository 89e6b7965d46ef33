//! The default pack's face detector on the public photos: a face on the
//! three that show a person, none on the others; and the evidence carries it.

mod common;

use verdict_worker::engine::face_detector::FaceDetector;
use verdict_worker::engine::label_grounded::LabelGroundedModel;
use verdict_worker::engine::pack::Pack;

const FACE_PHOTOS: [&str; 3] = ["astronaut.png", "grace_hopper.jpg", "camera.png"];

const NO_FACE_PHOTOS: [&str; 18] = [
    "coffee.png",
    "chelsea.png",
    "rocket.jpg",
    "flower.jpg",
    "moon.png",
    "coins.png",
    "brick.png",
    "motorcycle_left.png",
    "china.jpg",
    "hubble_deep_field.jpg",
    "horse.png",
    "grass.png",
    "gravel.png",
    "page.png",
    "text.png",
    "color.png",
    "chessboard_RGB.png",
    "Minduka_Present_Blue_Pack.png",
];

#[test]
fn faces_on_the_people_and_none_elsewhere() {
    let pack = Pack::open(&common::model_dir()).expect("pack");
    let model = LabelGroundedModel::load(&pack).expect("model");
    for name in FACE_PHOTOS.iter().chain(&NO_FACE_PHOTOS) {
        let evidence = model
            .image_evidence(&common::photo(name))
            .expect("evidence");
        let faces = evidence
            .faces
            .as_ref()
            .expect("the default pack has a face detector");
        eprintln!("{name}: {} face(s) {:?}", faces.count(), faces.boxes);
        if FACE_PHOTOS.contains(name) {
            assert_eq!(faces.count(), 1, "{name}: {:?}", faces.boxes);
            let face = faces.boxes[0];
            assert!(face.score >= 0.9, "{name}: {face:?}");
            // A portrait's face: a few per cent of the image or more.
            let area = faces.largest_area_fraction();
            assert!((0.01..0.5).contains(&area), "{name}: area {area}");
            assert!(face.x >= 0.0 && face.y >= 0.0 && face.x + face.w <= 1.0 + 1e-6);
            assert!(face.y + face.h <= 1.0 + 1e-6, "{name}: {face:?}");
        } else {
            assert_eq!(faces.count(), 0, "{name}: {:?}", faces.boxes);
            assert_eq!(faces.largest_area_fraction(), 0.0);
        }
    }
}

#[test]
fn where_the_faces_are() {
    // The astronaut's face is in the upper middle of the photo, Grace Hopper's
    // in the upper half: centres within the boxes the build's reference found
    // (scripts/model/face_detect.py), give or take a few per cent.
    let pack = Pack::open(&common::model_dir()).expect("pack");
    let detector = FaceDetector::load(&pack)
        .expect("load")
        .expect("a faces section");
    for (name, cx, cy) in [
        ("astronaut.png", 0.43, 0.23),
        ("grace_hopper.jpg", 0.52, 0.38),
        ("camera.png", 0.44, 0.30),
    ] {
        let rgb = image::load_from_memory(&common::photo(name))
            .expect("decode")
            .to_rgb8();
        let faces = detector.detect(&rgb).expect("detect");
        let face = faces.boxes.first().expect("a face");
        let (fx, fy) = (face.x + face.w / 2.0, face.y + face.h / 2.0);
        assert!(
            (fx - cx).abs() < 0.03 && (fy - cy).abs() < 0.03,
            "{name}: face centre ({fx:.3}, {fy:.3}), expected about ({cx}, {cy})"
        );
    }
}

#[test]
fn odd_images_do_not_panic() {
    let pack = Pack::open(&common::model_dir()).expect("pack");
    let detector = FaceDetector::load(&pack)
        .expect("load")
        .expect("a faces section");
    for (w, h) in [
        (1, 1),
        (1, 3000),
        (3000, 1),
        (11, 11),
        (2000, 7),
        (161, 160),
    ] {
        let rgb =
            image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 7) as u8, (y * 13) as u8, 99]));
        let faces = detector.detect(&rgb).expect("detect");
        assert_eq!(faces.count(), 0, "{w}x{h}: {:?}", faces.boxes);
    }
}

#[test]
fn a_pack_without_faces_still_loads() {
    // The default pack less its `faces` section and the three nets' files.
    let dir = tempfile::tempdir().expect("tempdir");
    let source = common::model_dir();
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(source.join("manifest.json")).expect("manifest"))
            .expect("JSON");
    manifest
        .as_object_mut()
        .expect("object")
        .remove("faces")
        .expect("the default pack has a faces section");
    let files = manifest["files"].as_array_mut().expect("files");
    files.retain(|f| !f["role"].as_str().unwrap_or_default().starts_with("face_"));
    for f in files.iter() {
        let name = f["path"].as_str().expect("path");
        std::fs::copy(source.join(name), dir.path().join(name)).expect("copy");
    }
    std::fs::write(
        dir.path().join("manifest.json"),
        serde_json::to_vec(&manifest).expect("JSON"),
    )
    .expect("write manifest");
    let pack = Pack::open(dir.path()).expect("pack");
    let model = LabelGroundedModel::load(&pack).expect("model");
    assert!(model.face_detector().is_none());
    let evidence = model
        .image_evidence(&common::photo("astronaut.png"))
        .expect("evidence");
    assert!(evidence.faces.is_none());
}

#[test]
fn faces_are_looked_for_only_when_a_sentence_is_about_people() {
    use verdict_shared::verdict::Label;
    use verdict_worker::engine::Judge;
    use verdict_worker::engine::label_grounded::LabelGroundedJudge;

    let judge = LabelGroundedJudge::open(&common::model_dir()).expect("pack");
    let image_cache = |judge: &LabelGroundedJudge| {
        let counts = judge.cache_counts();
        let image = counts.iter().find(|c| c.cache == "image").expect("image");
        (image.hits, image.misses)
    };
    let astronaut = common::photo("astronaut.png");
    // A catalogue rule: no word for a person, so the detector does not run
    // and the verdict carries no face count.
    let cup = judge
        .judge(&astronaut, &["This is a ceramic coffee cup.".into()], None)
        .expect("judge")
        .remove(0);
    assert!(!cup.explanation.signals.contains_key("faces"), "{cup:?}");
    assert!(
        judge
            .model()
            .image_evidence_for(
                &astronaut,
                verdict_worker::engine::label_grounded::ImageNeeds {
                    faces: false,
                    colours: false,
                }
            )
            .expect("evidence")
            .faces
            .is_none()
    );
    assert_eq!(image_cache(&judge), (1, 1));
    // A sentence about a person on the same image: its faces are found then
    // (the cached evidence gains them; the encoder is not run again).
    let person = judge
        .judge(
            &astronaut,
            &["There is a person in the photo.".into()],
            None,
        )
        .expect("judge")
        .remove(0);
    assert_eq!(person.label, Label::Yes, "{person:?}");
    assert_eq!(person.explanation.signals.get("faces"), Some(&1.0));
    assert!(
        person.explanation.summary.contains("A face was found (")
            && person
                .explanation
                .summary
                .ends_with("Decided by the face found, which matches the sentence."),
        "{}",
        person.explanation.summary
    );
    assert_eq!(image_cache(&judge), (2, 1));
    // From then on the faces come with the image's evidence, for any sentence.
    let again = judge
        .judge(&astronaut, &["This is a ceramic coffee cup.".into()], None)
        .expect("judge")
        .remove(0);
    assert_eq!(again.explanation.signals.get("faces"), Some(&1.0));
    assert_eq!(
        again.scores, cup.scores,
        "faces do not move a sentence without people"
    );
    // One sentence about people in a job is enough for the whole job.
    let coffee = common::photo("coffee.png");
    let both = judge
        .judge(
            &coffee,
            &[
                "This is a ceramic coffee cup.".into(),
                "A man is drinking it.".into(),
            ],
            None,
        )
        .expect("judge");
    assert!(
        both.iter()
            .all(|v| v.explanation.signals.get("faces") == Some(&0.0))
    );
}
