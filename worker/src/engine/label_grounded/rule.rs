//! The rule: from the evidence to yes / no / maybe with three scores.
//!
//! Two questions, each answered softly (a logistic curve rather than a cliff):
//!
//! 1. **Can the image check this sentence?** g = σ((u₀ − U) / w), where U is
//!    the sentence's unverifiable share. "The cat is hungry" puts much of its
//!    meaning on "hungry", a word that names nothing an image classifier sees,
//!    so g is low and the mass goes to `maybe`.
//! 2. **Does the image support it?** z = min(α (a − a₀), β (r − r₀)), where a
//!    is the concept similarity and r the relative support. Support needs both:
//!    the image's concept must be close to the sentence in absolute terms (a
//!    sentence about a thermos is only vaguely close to anything, espresso
//!    included) and close relative to the sentence's best class (a dog sentence
//!    is close to a cat, but far closer to dogs).
//!
//! yes = g·σ(z − δ), no = g·σ(−z − δ), maybe = 1 − yes − no. The margin δ ≥ 0
//! leaves a band of weak support to `maybe`. The scores are non-negative and
//! sum to 1 by construction; the label is the largest. `docs/rule.md` explains
//! each parameter and how `verdict-worker calibrate` fits them.

use serde::{Deserialize, Serialize};
use verdict_shared::verdict::Scores;

use super::evidence::{EvidenceParams, Signals};

/// The pack's `rule` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleParams {
    #[serde(flatten)]
    pub evidence: EvidenceParams,
    /// u₀: the unverifiable share at which checkable and uncheckable weigh the same.
    pub unverifiable_midpoint: f32,
    /// w: how quickly g falls from 1 to 0 around u₀.
    pub unverifiable_width: f32,
    /// a₀ and α: the concept similarity at which support is neutral, and its slope.
    pub similarity_midpoint: f32,
    pub similarity_slope: f32,
    /// r₀ and β: the relative support at which support is neutral, and its slope.
    pub relative_midpoint: f32,
    pub relative_slope: f32,
    /// δ: how much support a `yes` (or its absence a `no`) needs beyond neutral.
    pub margin: f32,
    /// What calibration measured when it fitted these values (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<serde_json::Value>,
}

/// A decision and the two intermediate quantities behind it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    pub scores: Scores,
    /// g: how far the image can check the sentence, in [0, 1].
    pub checkable: f32,
    /// z: the support logit (positive supports, negative contradicts).
    pub support: f32,
}

impl RuleParams {
    /// Rejects parameters that would make the scores meaningless.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("unverifiable_width", self.unverifiable_width),
            ("similarity_slope", self.similarity_slope),
            ("relative_slope", self.relative_slope),
        ];
        for (name, value) in positive {
            if !(value.is_finite() && value > 0.0) {
                return Err(format!("rule.{name} must be positive, not {value}"));
            }
        }
        let finite = [
            ("unverifiable_midpoint", self.unverifiable_midpoint),
            ("similarity_midpoint", self.similarity_midpoint),
            ("relative_midpoint", self.relative_midpoint),
            (
                "word_labelness_threshold",
                self.evidence.word_labelness_threshold,
            ),
        ];
        for (name, value) in finite {
            if !value.is_finite() {
                return Err(format!("rule.{name} must be finite"));
            }
        }
        if !(self.margin.is_finite() && self.margin >= 0.0) {
            return Err(format!("rule.margin must be >= 0, not {}", self.margin));
        }
        if self.evidence.concept_top_k == 0 {
            return Err("rule.concept_top_k must be at least 1".into());
        }
        Ok(())
    }

    pub fn decide(&self, signals: &Signals) -> Decision {
        let checkable =
            sigmoid((self.unverifiable_midpoint - signals.unverifiable) / self.unverifiable_width);
        let absolute =
            self.similarity_slope * (signals.concept_similarity - self.similarity_midpoint);
        let relative = self.relative_slope * (signals.relative_support - self.relative_midpoint);
        let support = absolute.min(relative);
        let yes = checkable * sigmoid(support - self.margin);
        let no = checkable * sigmoid(-support - self.margin);
        Decision {
            scores: Scores::from_weights(yes, no, (1.0 - yes - no).max(0.0)),
            checkable,
            support,
        }
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

#[cfg(test)]
mod tests {
    use super::*;
    use verdict_shared::verdict::Label;

    fn params() -> RuleParams {
        RuleParams {
            evidence: EvidenceParams::default(),
            unverifiable_midpoint: 0.4,
            unverifiable_width: 0.05,
            similarity_midpoint: 0.35,
            similarity_slope: 30.0,
            relative_midpoint: 0.45,
            relative_slope: 15.0,
            margin: 0.4,
            calibration: None,
        }
    }

    fn signals(a: f32, r: f32, u: f32) -> Signals {
        Signals {
            concept_similarity: a,
            relative_support: r,
            unverifiable: u,
            label_gap: 0.4,
        }
    }

    #[test]
    fn each_region_gets_its_label() {
        let p = params();
        assert_eq!(
            p.decide(&signals(0.7, 1.0, 0.1)).scores.argmax(),
            Label::Yes
        );
        assert_eq!(p.decide(&signals(0.1, 0.0, 0.1)).scores.argmax(), Label::No);
        // Strong support, but the sentence is mostly about things no image shows.
        assert_eq!(
            p.decide(&signals(0.7, 1.0, 0.9)).scores.argmax(),
            Label::Maybe
        );
        // Close in relative terms, far in absolute terms: not support.
        assert_eq!(p.decide(&signals(0.2, 0.9, 0.1)).scores.argmax(), Label::No);
    }

    #[test]
    fn scores_always_sum_to_one() {
        let p = params();
        for a in [-1.0, 0.0, 0.35, 0.5, 1.0] {
            for r in [-2.0, 0.0, 0.45, 1.0, 3.0] {
                for u in [0.0, 0.4, 1.0] {
                    let s = p.decide(&signals(a, r, u)).scores;
                    assert!((s.yes + s.no + s.maybe - 1.0).abs() < 1e-5);
                    assert!(s.yes >= 0.0 && s.no >= 0.0 && s.maybe >= 0.0);
                }
            }
        }
    }

    #[test]
    fn rejects_bad_parameters() {
        let mut p = params();
        p.similarity_slope = 0.0;
        assert!(p.validate().is_err());
        let mut p = params();
        p.margin = f32::NAN;
        assert!(p.validate().is_err());
        assert!(params().validate().is_ok());
    }

    #[test]
    fn parses_the_manifest_section() {
        let json = serde_json::json!({
            "word_labelness_threshold": 0.35, "concept_top_k": 10,
            "unverifiable_midpoint": 0.4, "unverifiable_width": 0.05,
            "similarity_midpoint": 0.35, "similarity_slope": 30.0,
            "relative_midpoint": 0.45, "relative_slope": 15.0, "margin": 0.4
        });
        let p: RuleParams = serde_json::from_value(json).unwrap();
        assert_eq!(p.evidence.concept_top_k, 10);
        assert!(p.validate().is_ok());
    }
}
