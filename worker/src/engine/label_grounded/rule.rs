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
//!
//! Evidence beside the classifier's concept adjusts both answers:
//!
//! - the sentence probe's logit m lowers g: g = σ((u₀ − U) / w − μ m), so a
//!   sentence about who owns or made a thing goes to `maybe` even when its
//!   nouns are in the picture;
//! - a class the sentence names outright, with log10 probability p in the
//!   image, can raise the support to γ (p − p₀) ("This is a cup." on an
//!   espresso whose second label is *cup*);
//! - the sentence's colours add κ (c − c₀), c the log10 share of the image
//!   the scarcest of them covers;
//! - words for people add φ · (their share of the sentence) when the face
//!   detector found a face, and subtract it when it found none;
//! - the classifier's doubt about the image, H (the entropy of its class
//!   probabilities, scaled to [0, 1]), holds back a `no` by ρ H: on a
//!   picture that is like none of its classes (grass, gravel, a
//!   chessboard), weak support is not a contradiction.
//!
//! yes = g·σ(z − δ), no = g·σ(−z − δ − ρ H), maybe = 1 − yes − no. The margin δ ≥ 0
//! leaves a band of weak support to `maybe`. The scores are non-negative and
//! sum to 1 by construction; the label is the largest. `docs/rule.md` explains
//! each parameter and how `verdict-worker calibrate` fits them. Each of the
//! added parameters defaults to 0 (no effect), so a rule without them decides
//! as before.

use serde::{Deserialize, Serialize};
use verdict_shared::verdict::Scores;

use super::evidence::{EvidenceParams, Signals};
use super::sentence_probe::SentenceProbe;

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
    /// The sentence probe and μ, how much its logit lowers g.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sentence_probe: Option<SentenceProbe>,
    #[serde(default)]
    pub probe_weight: f32,
    /// γ and p₀: how a class the sentence names raises the support.
    #[serde(default)]
    pub presence_slope: f32,
    #[serde(default)]
    pub presence_midpoint: f32,
    /// κ and c₀: how the share of the sentence's colours moves the support.
    #[serde(default)]
    pub colour_slope: f32,
    #[serde(default)]
    pub colour_midpoint: f32,
    /// φ: how faces (or their absence) move the support of words for people.
    #[serde(default)]
    pub people_slope: f32,
    /// ρ: how much a classifier unsure of the image (its uncertainty H)
    /// weakens a `no`: no = g σ(−z − δ − ρ H).
    #[serde(default)]
    pub uncertainty_weight: f32,
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
    /// What made up g and z, for the explanation.
    pub parts: Parts,
}

/// The terms of g and z. Terms whose evidence is absent are none.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Parts {
    /// min(α (a − a₀), β (r − r₀)): the classifier's concept.
    pub concept: f32,
    /// μ m: how far the probe pushed toward `maybe`.
    pub probe: f32,
    /// γ (p − p₀), when it raised the support above the concept's.
    pub named: Option<f32>,
    /// κ (c − c₀).
    pub colour: Option<f32>,
    /// ± φ · share of words for people.
    pub people: Option<f32>,
    /// ρ H: how far the classifier's doubt about the image held back a `no`.
    pub doubt: f32,
}

impl RuleParams {
    /// Rejects parameters that would make the scores meaningless.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("unverifiable_width", self.unverifiable_width),
            ("similarity_slope", self.similarity_slope),
            ("relative_slope", self.relative_slope),
        ];
        let non_negative = [
            ("probe_weight", self.probe_weight),
            ("presence_slope", self.presence_slope),
            ("colour_slope", self.colour_slope),
            ("people_slope", self.people_slope),
            ("uncertainty_weight", self.uncertainty_weight),
        ];
        for (name, value) in non_negative {
            if !(value.is_finite() && value >= 0.0) {
                return Err(format!("rule.{name} must be >= 0, not {value}"));
            }
        }
        if let Some(probe) = &self.sentence_probe {
            probe.validate()?;
        }
        for (name, value) in positive {
            if !(value.is_finite() && value > 0.0) {
                return Err(format!("rule.{name} must be positive, not {value}"));
            }
        }
        let finite = [
            ("unverifiable_midpoint", self.unverifiable_midpoint),
            ("similarity_midpoint", self.similarity_midpoint),
            ("relative_midpoint", self.relative_midpoint),
            ("presence_midpoint", self.presence_midpoint),
            ("colour_midpoint", self.colour_midpoint),
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
        let probe = self.probe_weight * signals.sentence_probe;
        let checkable = sigmoid(
            (self.unverifiable_midpoint - signals.unverifiable) / self.unverifiable_width - probe,
        );
        let absolute =
            self.similarity_slope * (signals.concept_similarity - self.similarity_midpoint);
        let relative = self.relative_slope * (signals.relative_support - self.relative_midpoint);
        let concept = absolute.min(relative);
        let named = signals
            .named_presence
            .filter(|_| self.presence_slope > 0.0)
            .map(|p| self.presence_slope * (p - self.presence_midpoint))
            .filter(|&term| term > concept);
        let colour = signals
            .colour_match
            .map(|c| self.colour_slope * (c - self.colour_midpoint));
        let people = signals
            .faces
            .filter(|_| signals.person_share > 0.0)
            .map(|faces| {
                let sign = if faces > 0 { 1.0 } else { -1.0 };
                sign * self.people_slope * signals.person_share
            });
        let support = named.unwrap_or(concept) + colour.unwrap_or(0.0) + people.unwrap_or(0.0);
        let doubt = self.uncertainty_weight * signals.image_uncertainty;
        let yes = checkable * sigmoid(support - self.margin);
        let no = checkable * sigmoid(-support - self.margin - doubt);
        Decision {
            scores: Scores::from_weights(yes, no, (1.0 - yes - no).max(0.0)),
            checkable,
            support,
            parts: Parts {
                concept,
                probe,
                named,
                colour,
                people,
                doubt,
            },
        }
    }
}

#[cfg(test)]
impl RuleParams {
    /// Parameters that leave every signal without effect, for tests.
    pub(crate) fn neutral() -> RuleParams {
        RuleParams {
            evidence: EvidenceParams::default(),
            unverifiable_midpoint: 0.5,
            unverifiable_width: 0.05,
            similarity_midpoint: 0.0,
            similarity_slope: 1.0,
            relative_midpoint: 0.0,
            relative_slope: 1.0,
            margin: 0.0,
            sentence_probe: None,
            probe_weight: 0.0,
            presence_slope: 0.0,
            presence_midpoint: 0.0,
            colour_slope: 0.0,
            colour_midpoint: 0.0,
            people_slope: 0.0,
            uncertainty_weight: 0.0,
            calibration: None,
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
            ..RuleParams::neutral()
        }
    }

    fn signals(a: f32, r: f32, u: f32) -> Signals {
        Signals {
            concept_similarity: a,
            relative_support: r,
            unverifiable: u,
            ..Signals::neutral()
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
    fn the_added_evidence_moves_the_verdict_each_its_own_way() {
        let p = RuleParams {
            probe_weight: 2.0,
            presence_slope: 3.0,
            presence_midpoint: -2.5,
            colour_slope: 4.0,
            colour_midpoint: -1.0,
            people_slope: 10.0,
            ..params()
        };
        // Weak concept support: a maybe or a no on its own.
        let weak = signals(0.3, 0.3, 0.1);
        assert_eq!(p.decide(&weak).scores.argmax(), Label::No);
        // The sentence names the image's second class (2 %).
        let named = Signals {
            named_presence: Some(0.02f32.log10()),
            ..weak
        };
        let d = p.decide(&named);
        assert_eq!(d.scores.argmax(), Label::Yes, "{d:?}");
        assert!(d.parts.named.is_some());
        // A class at 0.01 % does not lower the concept's support.
        let absent = Signals {
            named_presence: Some(-4.0),
            ..weak
        };
        assert_eq!(p.decide(&absent), p.decide(&weak));
        // Its colour covers 40 % of the image, or nothing of it.
        let red = Signals {
            colour_match: Some(0.4f32.log10()),
            ..signals(0.36, 0.46, 0.1)
        };
        assert_eq!(p.decide(&red).scores.argmax(), Label::Yes);
        let not_red = Signals {
            colour_match: Some(0.005f32.log10()),
            ..signals(0.36, 0.46, 0.1)
        };
        assert_eq!(p.decide(&not_red).scores.argmax(), Label::No);
        // A sentence about a person: a face, no face, no detector.
        let person = |faces| Signals {
            person_share: 0.5,
            faces,
            ..signals(0.34, 0.44, 0.1)
        };
        assert_eq!(p.decide(&person(Some(1))).scores.argmax(), Label::Yes);
        assert_eq!(p.decide(&person(Some(0))).scores.argmax(), Label::No);
        assert_eq!(p.decide(&person(None)).parts.people, None);
        // Strong support, but the probe says no photo can show it.
        let owned = Signals {
            sentence_probe: 5.0,
            ..signals(0.7, 1.0, 0.1)
        };
        assert_eq!(p.decide(&owned).scores.argmax(), Label::Maybe);
        // Without the added parameters, the same signals decide as before.
        for s in [named, red, person(Some(0)), owned] {
            let plain = Signals {
                named_presence: None,
                colour_match: None,
                faces: None,
                sentence_probe: 0.0,
                ..s
            };
            assert_eq!(params().decide(&s).scores, params().decide(&plain).scores);
        }
    }

    #[test]
    fn doubt_about_the_image_holds_back_a_no_only() {
        let p = RuleParams {
            uncertainty_weight: 4.0,
            ..params()
        };
        let against = signals(0.3, 0.4, 0.1);
        let sure = Signals {
            image_uncertainty: 0.05,
            ..against
        };
        let unsure = Signals {
            image_uncertainty: 0.8,
            ..against
        };
        assert_eq!(p.decide(&sure).scores.argmax(), Label::No);
        let d = p.decide(&unsure);
        assert_eq!(d.scores.argmax(), Label::Maybe, "{d:?}");
        assert!((d.parts.doubt - 3.2).abs() < 1e-6);
        // A far-off sentence stays a no however unsure the classifier is.
        let far = Signals {
            image_uncertainty: 0.8,
            ..signals(-0.2, -1.0, 0.1)
        };
        assert_eq!(p.decide(&far).scores.argmax(), Label::No);
        // Doubt never adds to a yes.
        let support = signals(0.7, 1.0, 0.1);
        let unsure_support = Signals {
            image_uncertainty: 0.8,
            ..support
        };
        assert_eq!(
            p.decide(&unsure_support).scores.yes,
            p.decide(&support).scores.yes
        );
        // Without the weight, uncertainty changes nothing.
        assert_eq!(
            params().decide(&unsure).scores,
            params().decide(&against).scores
        );
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
