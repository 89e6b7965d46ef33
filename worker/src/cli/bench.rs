//! `verdict-worker bench`: the model's latencies on one core, for
//! `scripts/bench-model` (which adds onnxruntime's on the same files and writes
//! `docs/benchmarks.md`). Prints one JSON object. An `ofa-ve` pack is timed by
//! `bench_ofa.rs` instead, for `scripts/bench-ofa`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use crate::engine::image_key::image_key;
use crate::engine::label_grounded::{ColourFractions, LabelGroundedJudge};

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// The model pack directory.
    #[arg(long, env = "VERDICT_MODEL", value_name = "DIR")]
    pub model: PathBuf,
    /// The image to time.
    #[arg(long, value_name = "PATH")]
    pub image: PathBuf,
    /// Sentences to time (default: the coffee.png acceptance sentences).
    #[arg(long = "text", value_name = "SENTENCE")]
    pub texts: Vec<String>,
    /// Timed runs of each measurement (after 3 warm-up runs).
    #[arg(long, default_value_t = 50)]
    pub runs: usize,
    /// More images to time from bytes to the input tensor (decode, crop,
    /// resize, normalise), each reported with its size: a 12-megapixel JPEG
    /// costs far more than `--image`.
    #[arg(long = "preprocess-image", value_name = "PATH")]
    pub preprocess_images: Vec<PathBuf>,
    /// More images to time the face detector on (from the decoded image to
    /// the faces), each reported with what it found; `--image` is always timed.
    #[arg(long = "faces-image", value_name = "PATH")]
    pub faces_images: Vec<PathBuf>,
    /// Also write the preprocessed image tensor here (raw little-endian f32),
    /// so onnxruntime can be timed on exactly the same input.
    #[arg(long, value_name = "PATH")]
    pub dump_tensor: Option<PathBuf>,
    /// Also print, on stderr, where one run of each graph spends its time:
    /// per kind of tract op and the slowest nodes (the image encoder of a
    /// label-grounded pack; both graphs of an ofa-ve pack).
    #[arg(long)]
    pub profile: bool,

    /// Plan every graph channel-first, as its ONNX file lays it out, instead
    /// of running depthwise convolutions channel-last as the worker does: to
    /// measure what that rewrite gains on this CPU (scripts/bench-model).
    #[arg(long)]
    pub channel_first: bool,

    /// Run every 1 x 1 convolution on this kernel instead of the one the
    /// worker picks for this CPU: `tract` (tract's matrix product, no
    /// `pointwise_conv` rewrite), `avx2` or `avx512` (the worker's own): to
    /// measure what each gains on this CPU (scripts/bench-model).
    #[arg(long, value_name = "tract|avx2|avx512")]
    pub pointwise_kernel: Option<String>,

    /// Threads one inference may use (tract's matrix products are split across
    /// them). 1 suits one worker per core; more suits a pack whose verdict
    /// takes seconds (OFA-large), served by fewer workers with one copy of the
    /// weights each.
    #[arg(long, default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: u16,
}

/// How many of the slowest nodes `--profile` lists per graph.
pub const PROFILE_NODES: usize = 40;

pub fn main(args: BenchArgs) -> ExitCode {
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(1)
        }
    }
}

/// The `kind` in a pack's manifest, read without verifying the pack (the
/// judge's own load verifies it).
fn pack_kind(args: &BenchArgs) -> Result<String, String> {
    let path = args.model.join("manifest.json");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let manifest: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(manifest["kind"].as_str().unwrap_or_default().to_string())
}

fn run(args: BenchArgs) -> Result<(), String> {
    // Logs (RUST_LOG=debug: how long each graph took to parse and plan) go to
    // stderr; the report is stdout.
    verdict_shared::telemetry::init(verdict_shared::telemetry::LogFormat::Pretty);
    crate::engine::threads::use_threads(usize::from(args.threads));
    if let Some(name) = &args.pointwise_kernel {
        crate::engine::onnx_graph::plan_pointwise_kernel(name)?;
    }
    if args.channel_first {
        crate::engine::onnx_graph::plan_channel_first();
    }
    if pack_kind(&args)? == crate::engine::ofa_ve::KIND {
        return super::bench_ofa::run(&args);
    }
    let texts = if args.texts.is_empty() {
        // The same five sentences as scripts/model/bench_onnxruntime.py.
        [
            "This is a ceramic coffee cup.",
            "This is a stainless steel thermos.",
            "This is an everyday item.",
            "A cat is looking at the camera.",
            "This is a photo of a dog.",
        ]
        .map(String::from)
        .to_vec()
    } else {
        args.texts.clone()
    };
    let started = Instant::now();
    let judge = LabelGroundedJudge::open(&args.model).map_err(|e| e.to_string())?;
    let load = started.elapsed();
    let bytes = std::fs::read(&args.image).map_err(|e| format!("{}: {e}", args.image.display()))?;
    let model = judge.model();
    let runs = args.runs.max(1);

    let input = model.preprocess(&bytes).map_err(|e| e.to_string())?;
    if let Some(path) = &args.dump_tensor {
        let view = input
            .to_plain_array_view::<f32>()
            .map_err(|e| e.to_string())?;
        let raw: Vec<u8> = view.iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(path, raw).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let preprocess = median(runs, || {
        model
            .preprocess(&bytes)
            .map(drop)
            .map_err(|e| e.to_string())
    })?;
    // The colour shares the rule reads, measured on the square the encoder
    // sees (issue 18's colour evidence).
    let rgb = model.decode(&bytes).map_err(|e| e.to_string())?;
    let square = model.image_encoder().spec().square(&rgb);
    let colours = median(runs, || {
        std::hint::black_box(ColourFractions::measure(&square));
        Ok(())
    })?;
    let mut more_preprocess = Vec::new();
    for path in &args.preprocess_images {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let (width, height) = image::ImageReader::new(std::io::Cursor::new(&bytes))
            .with_guessed_format()
            .map_err(|e| e.to_string())?
            .into_dimensions()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let d = median(runs, || {
            model
                .preprocess(&bytes)
                .map(drop)
                .map_err(|e| e.to_string())
        })?;
        // What a job pays beside: the image's key in the judge's cache.
        let key = median(runs, || {
            std::hint::black_box(image_key(std::hint::black_box(&bytes)));
            Ok(())
        })?;
        more_preprocess.push(serde_json::json!({
            "image": path.file_name().map(|n| n.to_string_lossy().to_string()),
            "width": width,
            "height": height,
            "bytes": bytes.len(),
            "ms_median": (d.as_secs_f64() * 1e6).round() / 1e3,
            "cache_key_ms_median": (key.as_secs_f64() * 1e6).round() / 1e3,
        }));
    }
    let image = median(runs, || {
        model
            .image_encoder()
            .logits(&input)
            .map(drop)
            .map_err(|e| e.to_string())
    })?;
    if args.profile {
        let profile = model
            .image_encoder()
            .profile(&input)
            .map_err(|e| e.to_string())?;
        profile.print("image encoder", PROFILE_NODES);
    }
    // The face detector, from the decoded image (the same pixels the image
    // encoder gets) to the faces.
    let mut faces = Vec::new();
    if let Some(detector) = model.face_detector() {
        for path in std::iter::once(&args.image).chain(&args.faces_images) {
            let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let rgb = model.decode(&bytes).map_err(|e| e.to_string())?;
            let found = detector.detect(&rgb).map_err(|e| e.to_string())?;
            let d = median(runs, || {
                detector.detect(&rgb).map(drop).map_err(|e| e.to_string())
            })?;
            if args.profile && path == &args.image {
                let copy = detector.working_copy(&rgb);
                if let Some((side, input)) = detector.level_tensors(&copy).into_iter().next() {
                    let profile = detector
                        .profile_pnet(0, &input)
                        .map_err(|e| e.to_string())?;
                    profile.print(&format!("face P-Net ({side} px)"), PROFILE_NODES);
                }
            }
            faces.push(serde_json::json!({
                "image": path.file_name().map(|n| n.to_string_lossy().to_string()),
                "width": rgb.width(),
                "height": rgb.height(),
                "faces": found.count(),
                "ms_median": (d.as_secs_f64() * 1e6).round() / 1e3,
            }));
        }
    }
    let mut sentence_runs = Vec::new();
    for text in &texts {
        let ids = model
            .text_encoder()
            .token_ids(text)
            .map_err(|e| e.to_string())?;
        let d = median(runs, || {
            model
                .text_encoder()
                .embed(text)
                .map(drop)
                .map_err(|e| e.to_string())
        })?;
        sentence_runs.push((text.clone(), ids.len(), d));
    }
    let sentence_median = {
        let mut all: Vec<Duration> = sentence_runs.iter().map(|s| s.2).collect();
        all.sort();
        all[all.len() / 2]
    };
    // A sentence's whole evidence (embedding and word analysis) with a cold
    // word cache: the first time a rule sentence is seen.
    let fresh = LabelGroundedJudge::open(&args.model).map_err(|e| e.to_string())?;
    let started = Instant::now();
    for text in &texts {
        fresh
            .model()
            .sentence_evidence(text)
            .map_err(|e| e.to_string())?;
    }
    let cold_sentence_evidence = started.elapsed() / texts.len() as u32;
    // A whole verdict with warm caches: what a catalogue run pays per photo and rule.
    let image_evidence = model.image_evidence(&bytes).map_err(|e| e.to_string())?;
    let sentence_evidence = model
        .sentence_evidence(&texts[0])
        .map_err(|e| e.to_string())?;
    let rule_only = median(runs, || {
        std::hint::black_box(judge.verdict(&texts[0], &image_evidence, &sentence_evidence));
        Ok(())
    })?;

    let ms = |d: Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
    let report = serde_json::json!({
        "engine": "tract",
        "threads": args.threads,
        "depthwise_kernel": crate::engine::onnx_graph::depthwise_kernel(),
        "pointwise_kernel": crate::engine::onnx_graph::pointwise_kernel(),
        "runs": runs,
        "load_ms": ms(load),
        "image": args.image.file_name().map(|n| n.to_string_lossy().to_string()),
        "image_preprocess_ms_median": ms(preprocess),
        "colour_shares_ms_median": ms(colours),
        "more_preprocess": more_preprocess,
        "image_ms_median": ms(image),
        "faces": faces,
        "sentence_ms_median": ms(sentence_median),
        "sentences": sentence_runs.iter().map(|(t, n, d)| serde_json::json!({
            "text": t, "tokens": n, "ms_median": ms(*d)
        })).collect::<Vec<_>>(),
        "sentence_evidence_cold_ms_mean": ms(cold_sentence_evidence),
        "rule_with_cached_evidence_ms_median": ms(rule_only),
    });
    println!("{report}");
    Ok(())
}

fn median(runs: usize, mut f: impl FnMut() -> Result<(), String>) -> Result<Duration, String> {
    for _ in 0..3 {
        f()?;
    }
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        f()?;
        times.push(t.elapsed());
    }
    times.sort();
    Ok(times[times.len() / 2])
}
