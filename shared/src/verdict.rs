//! What a model says about one sentence: a label, three scores and an explanation.
//!
//! These types are the model's output and also the `results` of a finished job, so
//! the worker, the api, the batch CLI and the web page all read the same shape.
//! They name no model kind: a label-grounded model fills the label lists of the
//! explanation, a model that outputs yes/no/maybe logits directly may leave them
//! empty and say what it can in `summary` and `signals`.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The answer for one sentence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Label {
    /// The image supports the sentence.
    Yes,
    /// The image contradicts the sentence.
    No,
    /// The image neither supports nor contradicts it, or the model cannot tell.
    Maybe,
}

impl Label {
    pub const ALL: [Label; 3] = [Label::Yes, Label::No, Label::Maybe];

    pub fn as_str(self) -> &'static str {
        match self {
            Label::Yes => "yes",
            Label::No => "no",
            Label::Maybe => "maybe",
        }
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Label {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "yes" => Ok(Label::Yes),
            "no" => Ok(Label::No),
            "maybe" => Ok(Label::Maybe),
            other => Err(format!(
                "unknown label {other:?}: expected yes, no or maybe"
            )),
        }
    }
}

/// The three scores of a verdict. They are non-negative and sum to 1.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Scores {
    pub yes: f32,
    pub no: f32,
    pub maybe: f32,
}

impl Scores {
    /// Normalises three non-negative weights so that they sum to 1.
    ///
    /// Non-finite or negative weights count as 0; if nothing is left, all mass
    /// goes to `maybe` (the honest answer when a model has no opinion).
    pub fn from_weights(yes: f32, no: f32, maybe: f32) -> Scores {
        let clean = |x: f32| if x.is_finite() && x > 0.0 { x } else { 0.0 };
        let (yes, no, maybe) = (clean(yes), clean(no), clean(maybe));
        let sum = yes + no + maybe;
        if sum <= 0.0 {
            return Scores {
                yes: 0.0,
                no: 0.0,
                maybe: 1.0,
            };
        }
        Scores {
            yes: yes / sum,
            no: no / sum,
            maybe: maybe / sum,
        }
    }

    pub fn get(&self, label: Label) -> f32 {
        match label {
            Label::Yes => self.yes,
            Label::No => self.no,
            Label::Maybe => self.maybe,
        }
    }

    /// The label with the highest score (ties go to `maybe`, then `no`).
    pub fn argmax(&self) -> Label {
        if self.maybe >= self.yes && self.maybe >= self.no {
            Label::Maybe
        } else if self.no >= self.yes {
            Label::No
        } else {
            Label::Yes
        }
    }
}

/// A named score: a class the image looks like, or a class a sentence is close to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LabelScore {
    pub label: String,
    pub score: f32,
}

/// Why the model answered as it did, short enough to show next to the answer.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Explanation {
    /// One or two plain sentences, e.g. "The image looks like espresso (62%) or
    /// a cup (21%); the sentence is closest to coffee mug, cup.".
    pub summary: String,
    /// What the image looks like to the model, most probable first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_labels: Vec<LabelScore>,
    /// The classes the sentence is closest to, closest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sentence_labels: Vec<LabelScore>,
    /// The rule's intermediate quantities, by name, for whoever wants to audit it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub signals: BTreeMap<String, f32>,
}

/// The verdict on one sentence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SentenceVerdict {
    pub text: String,
    pub label: Label,
    pub scores: Scores,
    pub explanation: Explanation,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_sum_to_one_and_survive_garbage() {
        let s = Scores::from_weights(2.0, 1.0, 1.0);
        assert!((s.yes + s.no + s.maybe - 1.0).abs() < 1e-6);
        assert_eq!(s.argmax(), Label::Yes);
        let s = Scores::from_weights(f32::NAN, -1.0, 0.0);
        assert_eq!((s.yes, s.no, s.maybe), (0.0, 0.0, 1.0));
    }

    #[test]
    fn labels_serialise_lowercase() {
        assert_eq!(serde_json::to_string(&Label::Maybe).unwrap(), "\"maybe\"");
        assert_eq!("no".parse::<Label>().unwrap(), Label::No);
        assert!("No".parse::<Label>().is_err());
    }
}
