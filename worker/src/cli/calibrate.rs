//! `verdict-worker calibrate`: fits (or re-measures) the label-grounded rule on
//! the dev set and prints a Markdown report; see `docs/rule.md`.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::engine::label_grounded::calibration::{self, FitSettings, Sample, SplitReport};
use crate::engine::label_grounded::{LabelGroundedJudge, LabelGroundedModel, RuleParams};
use crate::engine::pack::Pack;

#[derive(Debug, clap::Args)]
pub struct CalibrateArgs {
    /// The model pack directory (its rule section may be empty).
    #[arg(long, env = "VERDICT_MODEL", value_name = "DIR")]
    pub model: PathBuf,
    /// The labelled dev set (JSONL: image, text, expected, split,
    /// acceptance, class); repeat to fit or measure on several at once.
    #[arg(long, value_name = "FILE", required = true)]
    pub devset: Vec<PathBuf>,
    /// Sentences without images that the sentence probe also learns from
    /// (JSONL: text, unknowable); repeatable. Every fold of the probe's
    /// fit and of `--cross-validate` reads all of them.
    #[arg(long, value_name = "FILE", conflicts_with = "evaluate")]
    pub probe_sentences: Vec<PathBuf>,
    /// The directory holding the dev set's photos.
    #[arg(long, value_name = "DIR")]
    pub photos: PathBuf,
    /// Measure the pack's current rule instead of fitting a new one.
    #[arg(long)]
    pub evaluate: bool,
    /// Write the fitted rule into this calibration file (its `rule` object).
    #[arg(long, value_name = "FILE", conflicts_with = "evaluate")]
    pub write: Option<PathBuf>,
    /// Decode every photo at full size, never a large JPEG at 1/8 scale
    /// from its DC coefficients (the worker's way): to measure what that
    /// reading changes (`docs/rule.md`).
    #[arg(long)]
    pub full_decode: bool,
    /// Seed of the random search.
    #[arg(long, default_value_t = calibration::SEED)]
    pub seed: u64,
    /// Weight of the mean log-probability of the right label against
    /// accuracy in the search's objective.
    #[arg(long, default_value_t = calibration::LIKELIHOOD_WEIGHT)]
    pub likelihood_weight: f32,
    /// How many seeded searches the fit runs (seeds `--seed`, `--seed` + 1,
    /// ...); the rule is their parameter-wise median.
    #[arg(long, default_value_t = 1)]
    pub searches: usize,
    /// The sentence probe's L2 penalty.
    #[arg(long, default_value_t = calibration::PROBE_PENALTY, conflicts_with = "evaluate")]
    pub probe_penalty: f32,
    /// Instead of fitting the pack's rule, cross-validate the fit on the dev
    /// rows: K times, fit on all but every K-th dev row (from the n-th) and
    /// judge those; prints how many of the dev rows were right when held
    /// out. The holdout rows are not read. To choose the fit's settings
    /// (`--likelihood-weight`, `--searches`) on the dev rows alone.
    #[arg(long, value_name = "K", conflicts_with_all = ["evaluate", "write"])]
    pub cross_validate: Option<usize>,
}

impl CalibrateArgs {
    fn settings(&self) -> FitSettings {
        FitSettings {
            seed: self.seed,
            likelihood_weight: self.likelihood_weight,
            searches: self.searches,
            probe_penalty: self.probe_penalty,
        }
    }
}

pub fn main(args: CalibrateArgs) -> ExitCode {
    match run(args) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(1)
        }
    }
}

fn run(args: CalibrateArgs) -> Result<ExitCode, String> {
    let pack = Pack::open(&args.model).map_err(|e| e.to_string())?;
    let mut rows = Vec::new();
    for path in &args.devset {
        rows.extend(calibration::read_devset(path)?);
    }
    let mut probe_sentences = Vec::new();
    for path in &args.probe_sentences {
        probe_sentences.extend(calibration::read_probe_sentences(path)?);
    }
    if let Some(folds) = args.cross_validate {
        return cross_validate(&pack, &rows, &probe_sentences, &args, folds);
    }
    let (rule, samples) = if args.evaluate {
        let mut judge = LabelGroundedJudge::load(&pack).map_err(|e| e.to_string())?;
        judge.model_mut().set_scaled_decode(!args.full_decode);
        let probe = judge.rule().sentence_probe.as_ref();
        let samples = calibration::collect(judge.model(), &rows, &args.photos, probe)?;
        (judge.rule().clone(), samples)
    } else {
        let model = model_to_fit(&pack, &args)?;
        let mut samples = calibration::collect(&model, &rows, &args.photos, None)?;
        let extra = calibration::embed_probe_sentences(&model, &probe_sentences)?;
        let mut rule = calibration::fit(
            &mut samples,
            &extra,
            *model.evidence_params(),
            &args.settings(),
        );
        rule.calibration = Some(summary(&rule, &samples, &args));
        (rule, samples)
    };
    print_report(&rule, &samples);
    if let Some(path) = &args.write {
        write_rule(path, &rule)?;
        eprintln!(
            "wrote the rule into {}; rebuild the pack to use it",
            path.display()
        );
    }
    let all = calibration::evaluate(&rule, &samples, None);
    Ok(if all.acceptance_correct {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

/// The pack's model, reading large JPEGs as a worker does unless
/// `--full-decode`, for a fit.
fn model_to_fit(pack: &Pack, args: &CalibrateArgs) -> Result<LabelGroundedModel, String> {
    let mut model = LabelGroundedModel::load(pack).map_err(|e| e.to_string())?;
    model.set_scaled_decode(!args.full_decode);
    Ok(model)
}

/// `--cross-validate K`: the dev rows' accuracy when each is held out of
/// the fit (fold n: every K-th dev row from the n-th), the holdout rows
/// left out altogether.
fn cross_validate(
    pack: &Pack,
    rows: &[calibration::DevRow],
    probe_sentences: &[calibration::ProbeSentence],
    args: &CalibrateArgs,
    folds: usize,
) -> Result<ExitCode, String> {
    if folds < 2 {
        return Err("--cross-validate needs at least 2 folds".into());
    }
    let model = model_to_fit(pack, args)?;
    let dev: Vec<calibration::DevRow> = rows.iter().filter(|r| r.split == "dev").cloned().collect();
    let samples = calibration::collect(&model, &dev, &args.photos, None)?;
    let extra = calibration::embed_probe_sentences(&model, probe_sentences)?;
    let (mut right, mut log_likelihood) = (0, 0.0);
    for fold in 0..folds {
        let mut fold_samples = samples.clone();
        for (n, sample) in fold_samples.iter_mut().enumerate() {
            if n % folds == fold {
                sample.row.split = "held".into();
            }
        }
        let rule = calibration::fit(
            &mut fold_samples,
            &extra,
            *model.evidence_params(),
            &args.settings(),
        );
        let held = calibration::evaluate(&rule, &fold_samples, Some("held"));
        right += held.correct;
        log_likelihood += held.log_likelihood * held.rows as f32;
        eprintln!(
            "fold {fold}: {}/{} held-out dev rows right",
            held.correct, held.rows
        );
    }
    println!(
        "cross-validated ({folds} folds, seed {}, {} search(es), likelihood weight {}, probe penalty {}, {} probe sentence(s)): {right}/{} dev rows right when held out ({:.1} %), mean log-likelihood {:.3}",
        args.seed,
        args.searches,
        args.likelihood_weight,
        args.probe_penalty,
        extra.len(),
        dev.len(),
        100.0 * right as f32 / dev.len() as f32,
        log_likelihood / dev.len() as f32,
    );
    Ok(ExitCode::SUCCESS)
}

fn summary(rule: &RuleParams, samples: &[Sample], args: &CalibrateArgs) -> serde_json::Value {
    let dev = calibration::evaluate(rule, samples, Some("dev"));
    let holdout = calibration::evaluate(rule, samples, Some("holdout"));
    serde_json::json!({
        "devset": file_names(&args.devset),
        "seed": args.seed,
        "likelihood_weight": args.likelihood_weight,
        "searches": args.searches,
        "probe_penalty": args.probe_penalty,
        "probe_sentences": file_names(&args.probe_sentences),
        "dev": {"rows": dev.rows, "accuracy": dev.accuracy},
        "holdout": {"rows": holdout.rows, "accuracy": holdout.accuracy},
    })
}

/// The files' names without their directories.
fn file_names(paths: &[PathBuf]) -> Vec<String> {
    paths
        .iter()
        .filter_map(|p| p.file_name())
        .map(|n| n.to_string_lossy().to_string())
        .collect()
}

fn write_rule(path: &PathBuf, rule: &RuleParams) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut doc: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let object = doc
        .as_object_mut()
        .ok_or_else(|| format!("{}: not a JSON object", path.display()))?;
    let mut value = serde_json::to_value(rule).map_err(|e| e.to_string())?;
    shortest_floats(&mut value);
    object.insert("rule".into(), value);
    let pretty = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
    std::fs::write(path, pretty + "\n").map_err(|e| format!("{}: {e}", path.display()))
}

/// Rewrites every number that came from an f32 in its shortest decimal form,
/// so that the file says 0.6926, not 0.6926000118255615.
fn shortest_floats(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Number(n) if n.is_f64() => {
            let short = n.as_f64().map(|x| (x as f32).to_string().parse::<f64>());
            if let Some(Ok(x)) = short
                && let Some(num) = serde_json::Number::from_f64(x)
            {
                *n = num;
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(shortest_floats),
        serde_json::Value::Object(map) => map.values_mut().for_each(shortest_floats),
        _ => {}
    }
}

fn print_report(rule: &RuleParams, samples: &[Sample]) {
    println!("## Rule parameters\n");
    println!(
        "```json\n{}\n```\n",
        serde_json::to_string_pretty(rule).unwrap_or_default()
    );
    for split in ["dev", "holdout"] {
        let report = calibration::evaluate(rule, samples, Some(split));
        print_split(split, &report);
    }
    print_classes(rule, samples);
    println!("## Every row\n");
    println!("| split | image | sentence | expected | verdict | yes | no | maybe | a | r | U |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for s in samples {
        let scores = rule.decide(&s.signals).scores;
        let predicted = scores.argmax();
        let mark = if predicted == s.row.expected {
            ""
        } else {
            " ✗"
        };
        println!(
            "| {} | {} | {}{} | {} | {}{} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            s.row.split,
            s.row.image,
            s.row.text,
            if s.row.acceptance {
                " (acceptance)"
            } else {
                ""
            },
            s.row.expected,
            predicted,
            mark,
            scores.yes,
            scores.no,
            scores.maybe,
            s.signals.concept_similarity,
            s.signals.relative_support,
            s.signals.unverifiable,
        );
    }
}

/// Right answers per sentence class and split, for dev sets whose rows
/// name a class (`tests/fixtures/devset-wide.jsonl`).
fn print_classes(rule: &RuleParams, samples: &[Sample]) {
    let mut counts: std::collections::BTreeMap<&str, [(usize, usize); 2]> = Default::default();
    for s in samples {
        let Some(class) = s.row.sentence_class.as_deref() else {
            continue;
        };
        let right = rule.decide(&s.signals).scores.argmax() == s.row.expected;
        let split = usize::from(s.row.split != "dev");
        let cell = &mut counts.entry(class).or_default()[split];
        cell.0 += usize::from(right);
        cell.1 += 1;
    }
    if counts.is_empty() {
        return;
    }
    println!("## By sentence class\n");
    println!("| class | dev | holdout |");
    println!("|---|---|---|");
    for (class, [dev, holdout]) in counts {
        println!(
            "| {class} | {}/{} | {}/{} |",
            dev.0, dev.1, holdout.0, holdout.1
        );
    }
    println!();
}

fn print_split(name: &str, report: &SplitReport) {
    println!(
        "## {name}: {}/{} right ({:.0}%), mean log-likelihood {:.3}{}\n",
        report.correct,
        report.rows,
        report.accuracy * 100.0,
        report.log_likelihood,
        if report.acceptance_correct {
            ""
        } else {
            ", ACCEPTANCE EXAMPLE WRONG"
        }
    );
    println!("| expected \\ verdict | yes | no | maybe |");
    println!("|---|---|---|---|");
    for (expected, row) in &report.confusion {
        let get = |l| row.get(&l).copied().unwrap_or(0);
        println!(
            "| {expected} | {} | {} | {} |",
            get(verdict_shared::verdict::Label::Yes),
            get(verdict_shared::verdict::Label::No),
            get(verdict_shared::verdict::Label::Maybe)
        );
    }
    println!();
}
