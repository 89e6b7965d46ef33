//! `verdict-worker bench` on an `ofa-ve` pack: load time, the image graph,
//! the entailment graph, a whole verdict and peak memory, for
//! `scripts/bench-ofa` (which sets PyTorch and onnxruntime beside it). Prints
//! one JSON object. One warm-up run, then `--runs` timed ones (a verdict of
//! OFA-large takes seconds).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::bench::{BenchArgs, PROFILE_NODES};
use crate::engine::ofa_ve::OfaJudge;

pub fn run(args: &BenchArgs) -> Result<(), String> {
    let text = args
        .texts
        .first()
        .cloned()
        .unwrap_or_else(|| "This is a ceramic coffee cup.".to_string());
    let started = Instant::now();
    let judge = OfaJudge::open(&args.model).map_err(|e| e.to_string())?;
    let load = started.elapsed();
    let peak_at_load = peak_rss_mb();
    let rss_after_load = crate::engine::onnx_graph::resident_mb();
    let bytes = std::fs::read(&args.image).map_err(|e| format!("{}: {e}", args.image.display()))?;
    let runs = args.runs.max(1);

    let tensor = judge.preprocess(&bytes).map_err(|e| e.to_string())?;
    let preprocess = median(runs, || judge.preprocess(&bytes).map(drop))?;
    let features = Arc::new(judge.image_features(&tensor).map_err(|e| e.to_string())?);
    let image = median(runs, || judge.image_features(&tensor).map(drop))?;
    let tokens = judge.token_ids(&text, None).map_err(|e| e.to_string())?;
    let entailment = median(runs, || {
        judge.answer_logits(&tokens.ids, &features).map(drop)
    })?;
    // A whole verdict on an image not seen before: decode, resize, both graphs.
    let verdict = median(runs, || {
        let tensor = judge.preprocess(&bytes)?;
        let features = Arc::new(judge.image_features(&tensor)?);
        judge.answer_logits(&tokens.ids, &features).map(drop)
    })?;
    if args.profile {
        let image_ops = judge.profile_image(&tensor).map_err(|e| e.to_string())?;
        image_ops.print("image graph", PROFILE_NODES);
        let ops = judge
            .profile_entailment(&tokens.ids, &features)
            .map_err(|e| e.to_string())?;
        ops.print("entailment graph", PROFILE_NODES);
    }
    let ms = |d: Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
    let report = serde_json::json!({
        "engine": "tract",
        "threads": args.threads,
        "runs": runs,
        "load_s": load.as_secs_f64(),
        "prompt_tokens": tokens.ids.len(),
        "preprocess_ms": ms(preprocess),
        "image_ms": ms(image),
        "entailment_ms": ms(entailment),
        "verdict_ms": ms(verdict),
        // Resident now, once loading's freed memory went back (the weights a
        // worker holds between jobs); the peak while loading; the peak overall.
        "rss_after_load_mb": rss_after_load,
        "peak_rss_load_mb": peak_at_load,
        "rss_mb": peak_rss_mb(),
        "rss_end_mb": crate::engine::onnx_graph::resident_mb(),
    });
    println!("{report}");
    Ok(())
}

fn median<E: std::fmt::Display>(
    runs: usize,
    mut f: impl FnMut() -> Result<(), E>,
) -> Result<Duration, String> {
    f().map_err(|e| e.to_string())?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        f().map_err(|e| e.to_string())?;
        times.push(t.elapsed());
    }
    times.sort();
    Ok(times[times.len() / 2])
}

/// The process's peak resident memory so far (`VmHWM`), in MB.
fn peak_rss_mb() -> f64 {
    verdict_decode::memory_budget::self_status_kib("VmHWM:")
        .map(|kib| (kib as f64 / 1024.0 * 10.0).round() / 10.0)
        .unwrap_or(f64::NAN)
}
