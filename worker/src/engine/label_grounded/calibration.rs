//! Fitting the rule's parameters on a labelled dev set, with the engine itself.
//!
//! The rule is fitted by the same code that applies it, on signals computed by
//! the same encoders and preprocessing a worker uses, so the fitted thresholds
//! mean exactly what they say. The dev set (`tests/fixtures/devset.jsonl`) is
//! split in two: `dev` rows are fitted, `holdout` rows only measured, so the
//! reported holdout accuracy is an honest estimate. Rows marked `acceptance`
//! (the product's own examples) must come out right for a fit to be accepted.
//!
//! First the sentence probe is fitted on the dev rows' embeddings (target:
//! `maybe`). The rule's parameters are then fitted on the probe's
//! *out-of-fold* logits for the dev rows (five folds: each row's logit comes
//! from a probe that never saw it), so the rule learns how far the probe can
//! be trusted on sentences it has not seen, not how well it remembers its own
//! training rows. Holdout rows get the final probe's logits.
//!
//! The search is a seeded random search followed by local refinement:
//! thirteen parameters, a few hundred rows, and a cost of microseconds per
//! evaluation make anything cleverer unnecessary, and the seed makes it
//! reproducible.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use verdict_shared::verdict::Label;

use super::LabelGroundedModel;
use super::evidence::{EvidenceParams, Signals};
use super::rule::RuleParams;
use super::sentence_probe::SentenceProbe;

/// One labelled (image, sentence) pair.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DevRow {
    /// A file name in the photos directory.
    pub image: String,
    pub text: String,
    pub expected: Label,
    /// `dev` (fitted) or `holdout` (only measured).
    pub split: String,
    /// One of the product's acceptance examples: must be judged right, its
    /// score ahead of the others by `ACCEPTANCE_MARGIN`.
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
    /// The sentence's embedding, which the probe reads.
    pub embedding: Vec<f32>,
}

/// A sentence that teaches the probe without an image: `unknowable` when no
/// photo could settle it (who owns or made a thing, where it comes from,
/// its price, past or future, what someone feels), false when a photo
/// could (`tests/fixtures/probe-sentences.jsonl`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProbeSentence {
    pub text: String,
    pub unknowable: bool,
}

/// A probe sentence with its embedding, as the probe's fit reads it.
#[derive(Debug, Clone)]
pub struct ProbeExample {
    pub embedding: Vec<f32>,
    pub unknowable: bool,
}

/// Reads a JSONL file of [`ProbeSentence`]s.
pub fn read_probe_sentences(path: &Path) -> Result<Vec<ProbeSentence>, String> {
    read_jsonl(path)
}

/// Embeds probe sentences with the model's sentence encoder.
pub fn embed_probe_sentences(
    model: &LabelGroundedModel,
    sentences: &[ProbeSentence],
) -> Result<Vec<ProbeExample>, String> {
    sentences
        .iter()
        .map(|s| {
            let evidence = model
                .sentence_evidence(&s.text)
                .map_err(|e| format!("{:?}: {e}", s.text))?;
            Ok(ProbeExample {
                embedding: evidence.embedding.clone(),
                unknowable: s.unknowable,
            })
        })
        .collect()
}

/// Reads a JSONL dev set.
pub fn read_devset(path: &Path) -> Result<Vec<DevRow>, String> {
    read_jsonl(path)
}

fn read_jsonl<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Vec<T>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line).map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))
        })
        .collect()
}

/// Computes the signals of every row (the probe's logit with `probe`, 0
/// without).
pub fn collect(
    model: &LabelGroundedModel,
    rows: &[DevRow],
    photos: &Path,
    probe: Option<&SentenceProbe>,
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
                signals: Signals::new(&image, &sentence, probe),
                embedding: sentence.embedding.clone(),
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
        if sample.row.acceptance && !clearly_right(&scores, sample.row.expected) {
            report.acceptance_correct = false;
        }
    }
    if report.rows > 0 {
        report.accuracy = report.correct as f32 / report.rows as f32;
        report.log_likelihood /= report.rows as f32;
    }
    report
}

/// How far an acceptance example's right score must lead the next one: a
/// product example right by a hair flips on a resized or recompressed copy
/// of its photo.
const ACCEPTANCE_MARGIN: f32 = 0.15;

fn clearly_right(scores: &verdict_shared::verdict::Scores, expected: Label) -> bool {
    let right = scores.get(expected);
    [Label::Yes, Label::No, Label::Maybe]
        .into_iter()
        .filter(|&l| l != expected)
        .all(|l| right - scores.get(l) >= ACCEPTANCE_MARGIN)
}

/// The search ranges: (low, high) of each fitted parameter, wide enough to
/// hold every sensible value and narrow enough to keep the search cheap.
const RANGES: [(f32, f32); PARAMS] = [
    (0.0, 0.9),  // unverifiable_midpoint
    (0.02, 0.3), // unverifiable_width
    (0.0, 0.6),  // similarity_midpoint
    (5.0, 60.0), // similarity_slope
    (0.1, 0.9),  // relative_midpoint
    (2.0, 25.0), // relative_slope
    (0.0, 3.0),  // margin
    (0.0, 6.0),  // probe_weight
    (0.0, 10.0), // presence_slope
    (-4.0, 0.0), // presence_midpoint
    (0.0, 10.0), // colour_slope
    (-2.5, 0.0), // colour_midpoint
    (0.0, 30.0), // people_slope
    (0.0, 6.0),  // uncertainty_weight
];

/// The fitted parameters.
const PARAMS: usize = 14;

fn params_from(v: &[f32; PARAMS], evidence: EvidenceParams) -> RuleParams {
    RuleParams {
        evidence,
        unverifiable_midpoint: v[0],
        unverifiable_width: v[1],
        similarity_midpoint: v[2],
        similarity_slope: v[3],
        relative_midpoint: v[4],
        relative_slope: v[5],
        margin: v[6],
        sentence_probe: None,
        probe_weight: v[7],
        presence_slope: v[8],
        presence_midpoint: v[9],
        colour_slope: v[10],
        colour_midpoint: v[11],
        people_slope: v[12],
        uncertainty_weight: v[13],
        calibration: None,
    }
}

/// The weight of the mean log-probability of the right label against
/// accuracy in the search's objective (`calibrate --likelihood-weight`).
pub const LIKELIHOOD_WEIGHT: f32 = 0.2;

/// Accuracy, plus `likelihood_weight` times the confidence in the right
/// answers; a fit that gets an acceptance example wrong is worse than any
/// that does not.
fn objective(rule: &RuleParams, samples: &[Sample], likelihood_weight: f32) -> f32 {
    let report = evaluate(rule, samples, Some("dev"));
    let penalty = if report.acceptance_correct { 0.0 } else { 1.0 };
    report.accuracy + likelihood_weight * report.log_likelihood - penalty
}

/// Folds of the probe's cross-fitting.
const FOLDS: usize = 5;

/// Fits the sentence probe on the dev samples and the `extra` sentences
/// (which every fold reads), and writes its logit into every sample:
/// out-of-fold for dev rows, the final probe's for the others.
pub fn fit_probe(samples: &mut [Sample], extra: &[ProbeExample], penalty: f32) -> SentenceProbe {
    let dev: Vec<usize> = (0..samples.len())
        .filter(|&i| samples[i].row.split == "dev")
        .collect();
    let fit_on = |rows: &[usize], samples: &[Sample]| {
        let x: Vec<&[f32]> = rows
            .iter()
            .map(|&i| samples[i].embedding.as_slice())
            .chain(extra.iter().map(|e| e.embedding.as_slice()))
            .collect();
        let y: Vec<bool> = rows
            .iter()
            .map(|&i| samples[i].row.expected == Label::Maybe)
            .chain(extra.iter().map(|e| e.unknowable))
            .collect();
        SentenceProbe::fit(&x, &y, penalty)
    };
    let mut out_of_fold = vec![0f32; samples.len()];
    for fold in 0..FOLDS {
        let in_fold = |n: &usize| n % FOLDS == fold;
        let held: Vec<usize> = (0..dev.len()).filter(in_fold).map(|n| dev[n]).collect();
        let train: Vec<usize> = (0..dev.len())
            .filter(|n| !in_fold(n))
            .map(|n| dev[n])
            .collect();
        let probe = fit_on(&train, samples);
        for i in held {
            out_of_fold[i] = probe.logit(&samples[i].embedding);
        }
    }
    let probe = fit_on(&dev, samples);
    for (i, sample) in samples.iter_mut().enumerate() {
        sample.signals.sentence_probe = if sample.row.split == "dev" {
            out_of_fold[i]
        } else {
            probe.logit(&sample.embedding)
        };
    }
    probe
}

/// How a fit searches (`verdict-worker calibrate`'s flags).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FitSettings {
    /// Seed of the first random search.
    pub seed: u64,
    /// See [`LIKELIHOOD_WEIGHT`].
    pub likelihood_weight: f32,
    /// Seeded searches (seeds `seed`, `seed` + 1, ...) whose parameter-wise
    /// median is the rule.
    pub searches: usize,
    /// The sentence probe's L2 penalty.
    pub probe_penalty: f32,
}

/// The sentence probe's L2 penalty unless told otherwise.
pub use super::sentence_probe::PENALTY as PROBE_PENALTY;

/// The seed of the pack's fit, fixed when `calibrate` was written.
pub const SEED: u64 = 20261124;

impl Default for FitSettings {
    fn default() -> Self {
        FitSettings {
            seed: SEED,
            likelihood_weight: LIKELIHOOD_WEIGHT,
            searches: 1,
            probe_penalty: PROBE_PENALTY,
        }
    }
}

/// Fits the probe (on the `dev` samples and `probe_sentences`) and the rule
/// (on the `dev` samples, whose probe logits it rewrites, see
/// [`fit_probe`]). Deterministic for given settings.
pub fn fit(
    samples: &mut [Sample],
    probe_sentences: &[ProbeExample],
    evidence: EvidenceParams,
    settings: &FitSettings,
) -> RuleParams {
    let probe = fit_probe(samples, probe_sentences, settings.probe_penalty);
    let found: Vec<[f32; PARAMS]> = (0..settings.searches.max(1) as u64)
        .map(|n| {
            let seed = settings.seed.wrapping_add(n);
            search(samples, evidence, seed, settings.likelihood_weight)
        })
        .collect();
    let best = median_of(&found);
    // Round to 4 significant digits so the manifest stays readable.
    let rounded = best.map(|x| {
        if x == 0.0 {
            0.0
        } else {
            let scale = 10f32.powi(3 - x.abs().log10().floor() as i32);
            (x * scale).round() / scale
        }
    });
    RuleParams {
        sentence_probe: Some(probe),
        ..params_from(&rounded, evidence)
    }
}

/// One seeded random search and its local refinement: the best point found.
fn search(
    samples: &[Sample],
    evidence: EvidenceParams,
    seed: u64,
    likelihood_weight: f32,
) -> [f32; PARAMS] {
    let mut rng = SplitMix64(seed);
    let mut best = [0f32; PARAMS];
    let mut best_score = f32::NEG_INFINITY;
    for _ in 0..150_000 {
        let mut v = [0f32; PARAMS];
        for (x, (lo, hi)) in v.iter_mut().zip(RANGES) {
            *x = lo + (hi - lo) * rng.unit();
        }
        let score = objective(&params_from(&v, evidence), samples, likelihood_weight);
        if score > best_score {
            best_score = score;
            best = v;
        }
    }
    // Local refinement: perturb the best point with a shrinking step.
    for round in 0..100_000 {
        let step = 0.1 * (1.0 - round as f32 / 100_000.0) + 0.005;
        let mut v = best;
        for (x, (lo, hi)) in v.iter_mut().zip(RANGES) {
            *x = (*x + (hi - lo) * step * (2.0 * rng.unit() - 1.0)).clamp(lo, hi);
        }
        let score = objective(&params_from(&v, evidence), samples, likelihood_weight);
        if score > best_score {
            best_score = score;
            best = v;
        }
    }
    best
}

/// The parameter-wise median of several searches' points (the mean of the
/// middle two for an even count).
fn median_of(points: &[[f32; PARAMS]]) -> [f32; PARAMS] {
    std::array::from_fn(|k| {
        let mut values: Vec<f32> = points.iter().map(|p| p[k]).collect();
        values.sort_by(f32::total_cmp);
        let n = values.len();
        if n % 2 == 1 {
            values[n / 2]
        } else {
            (values[n / 2 - 1] + values[n / 2]) / 2.0
        }
    })
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
                ..Signals::neutral()
            },
            embedding: vec![u, 1.0 - u],
        }
    }

    #[test]
    fn the_median_of_searches_is_taken_parameter_by_parameter() {
        let point = |x: f32| std::array::from_fn::<f32, PARAMS, _>(|k| x + k as f32);
        assert_eq!(median_of(&[point(3.0), point(1.0), point(2.0)]), point(2.0));
        assert_eq!(median_of(&[point(4.0), point(1.0)]), point(2.5));
        let mut mixed = point(0.0);
        mixed[0] = 10.0;
        assert_eq!(median_of(&[mixed, point(1.0), point(2.0)])[0], 2.0);
        assert_eq!(median_of(&[mixed, point(1.0), point(2.0)])[1], 2.0);
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
        let settings = FitSettings {
            seed: 7,
            ..FitSettings::default()
        };
        let a = fit(&mut samples, &[], EvidenceParams::default(), &settings);
        let b = fit(&mut samples, &[], EvidenceParams::default(), &settings);
        assert_eq!(a, b);
        let report = evaluate(&a, &samples, Some("dev"));
        assert_eq!(report.accuracy, 1.0);
        assert!(a.validate().is_ok());
    }

    #[test]
    fn probe_sentences_teach_the_probe_what_the_dev_rows_do_not_show() {
        // Two dev rows, both `yes`, cannot teach a direction for `maybe`;
        // probe sentences along the first axis can, and every fold reads
        // them, so the dev rows' out-of-fold logits follow them too.
        let mut samples = vec![
            sample(0.5, 0.5, 0.0, Label::Yes, "dev"),
            sample(0.5, 0.5, 1.0, Label::Yes, "dev"),
            sample(0.5, 0.5, 0.0, Label::Maybe, "holdout"),
        ];
        samples[0].embedding = vec![1.0, 0.0];
        samples[1].embedding = vec![0.0, 1.0];
        samples[2].embedding = vec![1.0, 0.0];
        let extra: Vec<ProbeExample> = (0..10)
            .map(|i| ProbeExample {
                embedding: if i % 2 == 0 {
                    vec![1.0, 0.0]
                } else {
                    vec![0.0, 1.0]
                },
                unknowable: i % 2 == 0,
            })
            .collect();
        let without = fit_probe(&mut samples.clone(), &[], PROBE_PENALTY);
        assert!(without.logit(&[1.0, 0.0]) < 0.0);
        let with = fit_probe(&mut samples, &extra, PROBE_PENALTY);
        assert!(with.logit(&[1.0, 0.0]) > 0.0);
        assert!(with.logit(&[0.0, 1.0]) < 0.0);
        assert!(samples[0].signals.sentence_probe > samples[1].signals.sentence_probe);
        assert!(samples[2].signals.sentence_probe > 0.0);
    }

    #[test]
    fn the_probe_sentences_fixture_is_balanced_and_none_is_a_dev_set_row() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let sentences =
            read_probe_sentences(&root.join("tests/fixtures/probe-sentences.jsonl")).expect("read");
        let unknowable = sentences.iter().filter(|s| s.unknowable).count();
        assert!(unknowable >= 100 && sentences.len() - unknowable >= 100);
        // Every dev set of the fixtures, so that a new one is covered too.
        let mut rows = Vec::new();
        let mut files = 0;
        for entry in std::fs::read_dir(root.join("tests/fixtures")).expect("fixtures") {
            let path = entry.expect("fixture").path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.starts_with("devset") && name.ends_with(".jsonl") {
                rows.extend(read_devset(&path).expect("devset"));
                files += 1;
            }
        }
        assert!(files >= 4, "{files} dev sets found");
        let normal = |t: &str| t.trim().to_lowercase();
        for s in &sentences {
            assert!(
                rows.iter().all(|r| normal(&r.text) != normal(&s.text)),
                "{:?} is a dev set row",
                s.text
            );
        }
    }
}
