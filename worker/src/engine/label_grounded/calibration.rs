//! Fitting the rule's parameters on a labelled dev set, with the engine itself.
//!
//! The rule is fitted by the same code that applies it, on signals computed by
//! the same encoders and preprocessing a worker uses, so the fitted thresholds
//! mean exactly what they say. The dev set (`tests/fixtures/devset.jsonl`) is
//! split in two: `dev` rows are fitted, `holdout` rows only measured, so the
//! reported holdout accuracy is an honest estimate. Rows marked `acceptance`
//! (the product's own examples) must come out right for a fit to be accepted.
//!
//! The search is a seeded random search followed by local refinement: seven
//! parameters, a few dozen rows, and a cost of microseconds per evaluation make
//! anything cleverer unnecessary, and the seed makes it reproducible.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use verdict_shared::verdict::Label;

use super::LabelGroundedModel;
use super::evidence::{EvidenceParams, Signals};
use super::rule::RuleParams;

/// One labelled (image, sentence) pair.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DevRow {
    /// A file name in the photos directory.
    pub image: String,
    pub text: String,
    pub expected: Label,
    /// `dev` (fitted) or `holdout` (only measured).
    pub split: String,
    /// One of the product's acceptance examples: must be judged right.
    #[serde(default)]
    pub acceptance: bool,
    /// What kind of sentence it is (`second_object`, `people`, `scene`,
    /// `attribute`, `unknowable`, `far_off`, ...), for the report's
    /// accuracy per class; rows without one are not counted there.
    #[serde(default, rename = "class", skip_serializing_if = "Option::is_none")]
    pub sentence_class: Option<String>,
}

/// A row with the signals the engine computed for it.
#[derive(Debug, Clone)]
pub struct Sample {
    pub row: DevRow,
    pub signals: Signals,
}

/// Reads a JSONL dev set.
pub fn read_devset(path: &Path) -> Result<Vec<DevRow>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line).map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))
        })
        .collect()
}

/// Computes the signals of every row.
pub fn collect(
    model: &LabelGroundedModel,
    rows: &[DevRow],
    photos: &Path,
) -> Result<Vec<Sample>, String> {
    rows.iter()
        .map(|row| {
            let path = photos.join(&row.image);
            let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let image = model
                .image_evidence(&bytes)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            let sentence = model
                .sentence_evidence(&row.text)
                .map_err(|e| format!("{:?}: {e}", row.text))?;
            Ok(Sample {
                row: row.clone(),
                signals: Signals::new(&image, &sentence),
            })
        })
        .collect()
}

/// How a rule does on one split.
#[derive(Debug, Clone, Serialize)]
pub struct SplitReport {
    pub rows: usize,
    pub correct: usize,
    pub accuracy: f32,
    /// Mean log-probability of the expected label.
    pub log_likelihood: f32,
    /// confusion[expected][predicted] = count.
    pub confusion: BTreeMap<Label, BTreeMap<Label, usize>>,
    pub acceptance_correct: bool,
}

/// Measures `rule` on the samples of `split` (`None`: all samples).
pub fn evaluate(rule: &RuleParams, samples: &[Sample], split: Option<&str>) -> SplitReport {
    let mut report = SplitReport {
        rows: 0,
        correct: 0,
        accuracy: 0.0,
        log_likelihood: 0.0,
        confusion: BTreeMap::new(),
        acceptance_correct: true,
    };
    for sample in samples
        .iter()
        .filter(|s| split.is_none_or(|name| s.row.split == name))
    {
        let scores = rule.decide(&sample.signals).scores;
        let predicted = scores.argmax();
        let right = predicted == sample.row.expected;
        report.rows += 1;
        report.correct += usize::from(right);
        report.log_likelihood += scores.get(sample.row.expected).max(1e-6).ln();
        *report
            .confusion
            .entry(sample.row.expected)
            .or_default()
            .entry(predicted)
            .or_default() += 1;
        if sample.row.acceptance && !right {
            report.acceptance_correct = false;
        }
    }
    if report.rows > 0 {
        report.accuracy = report.correct as f32 / report.rows as f32;
        report.log_likelihood /= report.rows as f32;
    }
    report
}

/// The search ranges: (low, high) of each fitted parameter, wide enough to
/// hold every sensible value and narrow enough to keep the search cheap.
const RANGES: [(f32, f32); 7] = [
    (0.2, 0.7),   // unverifiable_midpoint
    (0.02, 0.15), // unverifiable_width
    (0.2, 0.6),   // similarity_midpoint
    (5.0, 60.0),  // similarity_slope
    (0.1, 0.9),   // relative_midpoint
    (2.0, 25.0),  // relative_slope
    (0.0, 3.0),   // margin
];

fn params_from(v: &[f32; 7], evidence: EvidenceParams) -> RuleParams {
    RuleParams {
        evidence,
        unverifiable_midpoint: v[0],
        unverifiable_width: v[1],
        similarity_midpoint: v[2],
        similarity_slope: v[3],
        relative_midpoint: v[4],
        relative_slope: v[5],
        margin: v[6],
        calibration: None,
    }
}

/// Accuracy first, then confidence in the right answers; a fit that gets an
/// acceptance example wrong is worse than any that does not.
fn objective(rule: &RuleParams, samples: &[Sample]) -> f32 {
    let report = evaluate(rule, samples, Some("dev"));
    let penalty = if report.acceptance_correct { 0.0 } else { 1.0 };
    report.accuracy + 0.2 * report.log_likelihood - penalty
}

/// Fits the rule on the `dev` samples. Deterministic for a given `seed`.
pub fn fit(samples: &[Sample], evidence: EvidenceParams, seed: u64) -> RuleParams {
    let mut rng = SplitMix64(seed);
    let mut best = [0f32; 7];
    let mut best_score = f32::NEG_INFINITY;
    for _ in 0..60_000 {
        let mut v = [0f32; 7];
        for (x, (lo, hi)) in v.iter_mut().zip(RANGES) {
            *x = lo + (hi - lo) * rng.unit();
        }
        let score = objective(&params_from(&v, evidence), samples);
        if score > best_score {
            best_score = score;
            best = v;
        }
    }
    // Local refinement: perturb the best point with a shrinking step.
    for round in 0..40_000 {
        let step = 0.1 * (1.0 - round as f32 / 40_000.0) + 0.005;
        let mut v = best;
        for (x, (lo, hi)) in v.iter_mut().zip(RANGES) {
            *x = (*x + (hi - lo) * step * (2.0 * rng.unit() - 1.0)).clamp(lo, hi);
        }
        let score = objective(&params_from(&v, evidence), samples);
        if score > best_score {
            best_score = score;
            best = v;
        }
    }
    // Round to 4 significant digits so the manifest stays readable.
    let rounded = best.map(|x| {
        let scale = 10f32.powi(3 - x.abs().log10().floor() as i32);
        if x == 0.0 {
            0.0
        } else {
            (x * scale).round() / scale
        }
    });
    params_from(&rounded, evidence)
}

/// A tiny deterministic PRNG (SplitMix64): the fit must be reproducible and
/// needs no statistical finesse.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(a: f32, r: f32, u: f32, expected: Label, split: &str) -> Sample {
        Sample {
            row: DevRow {
                image: "x.png".into(),
                text: "t".into(),
                expected,
                split: split.into(),
                acceptance: false,
                sentence_class: None,
            },
            signals: Signals {
                concept_similarity: a,
                relative_support: r,
                unverifiable: u,
                label_gap: 0.4,
            },
        }
    }

    #[test]
    fn fit_separates_separable_data_and_is_reproducible() {
        let mut samples = Vec::new();
        for i in 0..6 {
            let d = i as f32 * 0.02;
            samples.push(sample(0.6 + d, 0.9, 0.1, Label::Yes, "dev"));
            samples.push(sample(0.1 + d, 0.1, 0.1, Label::No, "dev"));
            samples.push(sample(0.6 + d, 0.9, 0.8, Label::Maybe, "dev"));
        }
        let a = fit(&samples, EvidenceParams::default(), 7);
        let b = fit(&samples, EvidenceParams::default(), 7);
        assert_eq!(a, b);
        let report = evaluate(&a, &samples, Some("dev"));
        assert_eq!(report.accuracy, 1.0);
        assert!(a.validate().is_ok());
    }
}
