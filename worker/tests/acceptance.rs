//! The default model on the product's own examples, the dev set, and the odd
//! and bad images of `tests/fixtures/bad/`.

mod common;

use std::sync::OnceLock;

use verdict_decode::{DecodeLimits, decode};
use verdict_shared::verdict::Label;
use verdict_worker::engine::label_grounded::LabelGroundedJudge;
use verdict_worker::engine::label_grounded::calibration;
use verdict_worker::engine::{Judge, JudgeError};

fn judge() -> &'static LabelGroundedJudge {
    static JUDGE: OnceLock<LabelGroundedJudge> = OnceLock::new();
    JUDGE.get_or_init(|| {
        LabelGroundedJudge::open(&common::model_dir()).expect("load the default pack")
    })
}

fn labels(image: &[u8], texts: &[&str]) -> Vec<Label> {
    let texts: Vec<String> = texts.iter().map(|t| t.to_string()).collect();
    judge()
        .judge(image, &texts, None)
        .expect("judge")
        .into_iter()
        .map(|v| v.label)
        .collect()
}

#[test]
fn the_original_product_sentences_on_coffee_png() {
    let verdicts = judge()
        .judge(
            &common::photo("coffee.png"),
            &[
                "This is a ceramic coffee cup.".into(),
                "This is a stainless steel thermos.".into(),
                "This is an everyday item.".into(),
            ],
            None,
        )
        .expect("judge");
    let got: Vec<Label> = verdicts.iter().map(|v| v.label).collect();
    assert_eq!(got, [Label::Yes, Label::No, Label::Maybe], "{verdicts:#?}");
    for v in &verdicts {
        let s = v.scores;
        assert!((s.yes + s.no + s.maybe - 1.0).abs() < 1e-5, "{s:?}");
        assert_eq!(v.explanation.image_labels[0].label, "espresso");
        assert!(
            v.explanation.summary.contains("espresso"),
            "{}",
            v.explanation.summary
        );
        assert_eq!(v.explanation.sentence_labels.len(), 3);
    }
    // The maybe says which words the image cannot check.
    assert!(
        verdicts[2].explanation.summary.contains("\"everyday\""),
        "{}",
        verdicts[2].explanation.summary
    );
}

#[test]
fn the_cat_sentences_on_chelsea_png() {
    let got = labels(
        &common::photo("chelsea.png"),
        &[
            "A cat is looking at the camera.",
            "This is a photo of a dog.",
        ],
    );
    assert_eq!(got, [Label::Yes, Label::No]);
    let verdict = &judge()
        .judge(
            &common::photo("chelsea.png"),
            &["A cat is looking at the camera.".into()],
            None,
        )
        .expect("judge")[0];
    let top = &verdict.explanation.image_labels[0].label;
    assert!(top.contains("cat") || top == "tabby", "top label {top}");
}

/// Right answers of the built pack's rule on one dev-set file's two splits.
fn accuracy_on(file: &str) -> (calibration::SplitReport, calibration::SplitReport) {
    let rows = calibration::read_devset(&common::fixture(file)).expect("devset");
    let samples = calibration::collect(
        judge().model(),
        &rows,
        &common::photos_dir(),
        judge().rule().sentence_probe.as_ref(),
    )
    .expect("signals");
    let dev = calibration::evaluate(judge().rule(), &samples, Some("dev"));
    let holdout = calibration::evaluate(judge().rule(), &samples, Some("holdout"));
    eprintln!(
        "{file}: dev {}/{}, holdout {}/{}",
        dev.correct, dev.rows, holdout.correct, holdout.rows
    );
    (dev, holdout)
}

#[test]
fn the_dev_set_accuracy_holds_in_the_built_pack() {
    // Measured with the built pack (docs/rule.md): devset.jsonl 57/58 and
    // 27/30, devset-wide.jsonl 107/126 and 49/60, devset-fresh.jsonl 61/81
    // and 25/39 (dev rows are in-sample for the sentence probe, so their
    // figures are optimistic), devset-fresh2.jsonl 106/150 (written by a
    // labeller who never saw the rule, all held out: no fit reads it). A
    // pack built from a stale or wrong rule falls below these floors.
    // (file, dev rows, holdout rows, dev floor, holdout floor)
    let floors = [
        ("devset.jsonl", 58, 30, 0.85, 0.8),
        ("devset-wide.jsonl", 126, 60, 0.8, 0.75),
        ("devset-fresh.jsonl", 81, 39, 0.7, 0.6),
        ("devset-fresh2.jsonl", 0, 150, 0.0, 0.65),
    ];
    for (file, dev_rows, holdout_rows, dev_floor, holdout_floor) in floors {
        let (dev, holdout) = accuracy_on(file);
        assert_eq!((dev.rows, holdout.rows), (dev_rows, holdout_rows), "{file}");
        assert!(
            dev.acceptance_correct,
            "{file}: an acceptance example is wrong"
        );
        assert!(dev.accuracy >= dev_floor, "{file}: dev {}", dev.accuracy);
        assert!(
            holdout.accuracy >= holdout_floor,
            "{file}: holdout {}",
            holdout.accuracy
        );
    }
}

/// One verdict of the built pack, with its summary.
fn verdict(photo: &str, text: &str) -> (Label, String) {
    let v = judge()
        .judge(&common::photo(photo), &[text.to_string()], None)
        .expect("judge")
        .remove(0);
    (v.label, v.explanation.summary)
}

#[test]
fn colours_faces_the_probe_and_doubt_decide_and_say_so() {
    let cases = [
        (
            "coffee.png",
            "The saucer is red.",
            Label::Yes,
            "\"red\" covers",
        ),
        (
            "motorcycle_left.png",
            "The motorcycle is painted blue.",
            Label::No,
            "\"blue\" covers",
        ),
        (
            "moon.png",
            "The image is in black and white.",
            Label::Yes,
            "Clear colour covers",
        ),
        // A colour wheel on a black ground: most of its pixels have no
        // colour, yet it is not black and white.
        (
            "color.png",
            "The image is black and white.",
            Label::No,
            "Clear colour covers",
        ),
        (
            "astronaut.png",
            "There is a person in the photo.",
            Label::Yes,
            "A face was found",
        ),
        (
            "grace_hopper.jpg",
            "A portrait of an elderly woman.",
            Label::Yes,
            "A face was found",
        ),
        (
            "motorcycle_left.png",
            "A man is riding the motorcycle.",
            Label::No,
            "No face was found",
        ),
        (
            "grace_hopper.jpg",
            "She served in the navy for decades.",
            Label::Maybe,
            "what no photo shows",
        ),
        (
            "grass.png",
            "This grass is in a public park.",
            Label::Maybe,
            "the image model is unsure what the image shows",
        ),
    ];
    for (photo, text, label, evidence) in cases {
        let (got, summary) = verdict(photo, text);
        assert_eq!(got, label, "{photo}: {text}: {summary}");
        assert!(summary.contains(evidence), "{photo}: {text}: {summary}");
    }
}

#[test]
fn odd_but_valid_images_get_the_cups_verdict() {
    for name in [
        "cmyk.jpg",
        "exif-rotated.jpg",
        "gray16.png",
        "grayscale.png",
        "rgb16.png",
        "rgba.png",
        "many-frames.gif",
        "iccp-bomb.png",
    ] {
        let bytes = std::fs::read(common::fixture(&format!("bad/{name}"))).expect("fixture");
        let got = labels(
            &bytes,
            &["This is a ceramic coffee cup.", "This is a photo of a dog."],
        );
        assert_eq!(got, [Label::Yes, Label::No], "{name}");
    }
}

#[test]
fn exif_orientation_is_applied_before_the_model_sees_the_image() {
    let bytes = std::fs::read(common::fixture("bad/exif-rotated.jpg")).expect("fixture");
    let decoded = decode(&bytes, &DecodeLimits::default()).expect("decode");
    // Stored as 200x300 (a quarter turn); displayed, and judged, as 300x200.
    assert_eq!(decoded.rgb.dimensions(), (300, 200));
    assert!(decoded.reoriented);
}

/// coffee.png as a camera would send it: 4000 x 3000 (cut to 4:3 and
/// upscaled), quality 90.
fn camera_sized_coffee() -> Vec<u8> {
    let photo = image::load_from_memory(&common::photo("coffee.png"))
        .expect("coffee.png")
        .into_rgb8();
    let (w, h) = photo.dimensions();
    let cut_w = h * 4 / 3;
    let cut = image::imageops::crop_imm(&photo, (w - cut_w) / 2, 0, cut_w, h).to_image();
    let big = image::imageops::resize(&cut, 4000, 3000, image::imageops::FilterType::Triangle);
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)
        .encode_image(&big)
        .expect("encode");
    jpeg
}

#[test]
fn a_camera_sized_jpeg_is_read_at_an_eighth_and_judged_as_in_full() {
    let jpeg = camera_sized_coffee();
    // The worker's model reads it from its DC coefficients (500 x 375)...
    let input = judge().model().preprocess(&jpeg).expect("preprocess");
    let mut full = LabelGroundedJudge::open(&common::model_dir()).expect("load the default pack");
    full.model_mut().set_scaled_decode(false);
    let full_input = full.model().preprocess(&jpeg).expect("preprocess in full");
    let scaled = verdict_decode::decode_scaled(&jpeg, &DecodeLimits::default(), 256).unwrap();
    assert_eq!(
        (scaled.rgb.dimensions(), scaled.reduced_by),
        ((500, 375), 8)
    );
    // ...into nearly the tensor a full decode gives (normalised values: one
    // grey level is about 0.017)...
    let a = input.to_plain_array_view::<f32>().unwrap();
    let b = full_input.to_plain_array_view::<f32>().unwrap();
    let mean_difference = a
        .iter()
        .zip(b.iter())
        .map(|(x, y)| (x - y).abs())
        .sum::<f32>()
        / a.len() as f32;
    assert!(mean_difference < 0.05, "{mean_difference}");
    // ...and the verdicts are the same.
    let texts: Vec<String> = [
        "This is a ceramic coffee cup.",
        "This is a stainless steel thermos.",
        "This is an everyday item.",
    ]
    .map(String::from)
    .to_vec();
    let label_of = |j: &LabelGroundedJudge| -> Vec<Label> {
        j.judge(&jpeg, &texts, None)
            .expect("judge")
            .into_iter()
            .map(|v| v.label)
            .collect()
    };
    assert_eq!(label_of(judge()), [Label::Yes, Label::No, Label::Maybe]);
    assert_eq!(label_of(&full), label_of(judge()));
}

#[test]
fn bad_images_are_refused_with_a_reason() {
    let cases = [
        ("empty.png", "image_empty"),
        ("truncated.png", "image_truncated"),
        ("truncated.jpg", "image_truncated"),
        ("lying-header.jpg", "image_truncated"),
        ("cut-reended.jpg", "image_truncated"),
        ("wrong-magic.png", "image_format"),
        ("huge-header.png", "image_too_large"),
        ("gigabyte.bmp", "image_too_large"),
    ];
    for (name, code) in cases {
        let bytes = std::fs::read(common::fixture(&format!("bad/{name}"))).expect("fixture");
        let err: JudgeError = judge()
            .judge(&bytes, &["This is a ceramic coffee cup.".into()], None)
            .expect_err(name);
        assert_eq!(err.code(), code, "{name}: {err}");
        assert!(err.is_permanent());
    }
}

#[test]
fn bad_sentences_are_refused_before_the_model_runs() {
    let image = common::photo("coffee.png");
    let cases: [(Vec<String>, &str); 4] = [
        (vec![], "no_texts"),
        (vec!["  ".into()], "text_empty"),
        (vec!["x".repeat(1001)], "text_too_long"),
        (vec!["A cup.".into(); 65], "too_many_texts"),
    ];
    for (texts, code) in cases {
        let err = judge().judge(&image, &texts, None).expect_err(code);
        assert_eq!(err.code(), code, "{err}");
    }
}

#[test]
fn repeated_inputs_give_identical_verdicts() {
    // The second call is served from the caches; it must not differ.
    let image = common::photo("rocket.jpg");
    let texts = vec!["A rocket on the launch pad.".to_string()];
    let first = judge().judge(&image, &texts, None).expect("judge");
    let second = judge().judge(&image, &texts, None).expect("judge");
    assert_eq!(first, second);
}

#[test]
fn colours_are_measured_only_when_a_sentence_names_one() {
    use verdict_worker::engine::label_grounded::ImageNeeds;

    let nothing = ImageNeeds {
        faces: false,
        colours: false,
    };
    let coffee = common::photo("coffee.png");
    let rule = vec!["This is a ceramic coffee cup.".to_string()];
    let red = vec!["The saucer is red.".to_string()];
    let later = LabelGroundedJudge::open(&common::model_dir()).expect("pack");
    // A catalogue rule names no colour: the image's evidence is cached
    // without its colour shares.
    let cup = later.judge(&coffee, &rule, None).expect("judge").remove(0);
    let cached = |judge: &LabelGroundedJudge| {
        judge
            .model()
            .image_evidence_for(&coffee, nothing)
            .expect("evidence")
            .colours
    };
    assert!(cached(&later).is_none());
    // A sentence that names a colour, later, on the same image: the cached
    // evidence gains the shares, and the verdict is the one a judge that
    // measured them first gives.
    let red_later = later.judge(&coffee, &red, None).expect("judge").remove(0);
    let saucer = cached(&later).expect("the colours are measured now");
    assert!(saucer.get(verdict_worker::engine::label_grounded::Colour::Red) > 0.0);
    let first = LabelGroundedJudge::open(&common::model_dir()).expect("pack");
    let red_first = first.judge(&coffee, &red, None).expect("judge").remove(0);
    assert_eq!(red_later, red_first);
    assert_eq!(red_later.label, Label::Yes, "{red_later:?}");
    assert!(
        red_later.explanation.summary.contains("\"red\" covers"),
        "{}",
        red_later.explanation.summary
    );
    // The colours do not move a sentence that names none.
    let cup_again = later.judge(&coffee, &rule, None).expect("judge").remove(0);
    assert_eq!(cup_again, cup);
    // One sentence with a colour is enough for the whole job.
    let chelsea = common::photo("chelsea.png");
    let both = first
        .judge(
            &chelsea,
            &["A cat is lying down.".into(), "The cat is orange.".into()],
            None,
        )
        .expect("judge");
    assert!(
        both[1].explanation.summary.contains("\"orange\" covers"),
        "{}",
        both[1].explanation.summary
    );
}
