//! Putting a decision into words: what the image looks like, what the sentence
//! is closest to, and which of the rule's two questions decided.

use std::collections::BTreeMap;

use verdict_shared::verdict::{Explanation, Label, LabelScore};

use super::evidence::{EvidenceParams, ImageEvidence, SentenceEvidence, Signals};
use super::labels::Labels;
use super::rule::Decision;

/// Image classes shown in an explanation.
const IMAGE_LABELS: usize = 5;
/// Sentence neighbours shown in an explanation.
const SENTENCE_LABELS: usize = 3;

pub fn explain(
    labels: &Labels,
    params: &EvidenceParams,
    image: &ImageEvidence,
    sentence: &SentenceEvidence,
    signals: &Signals,
    decision: &Decision,
    label: Label,
) -> Explanation {
    let image_labels: Vec<LabelScore> = image
        .top
        .iter()
        .take(IMAGE_LABELS)
        .map(|&k| LabelScore {
            label: labels.name(k).to_string(),
            score: image.probs[k],
        })
        .collect();
    let sentence_labels: Vec<LabelScore> = sentence
        .closest
        .iter()
        .take(SENTENCE_LABELS)
        .map(|&(k, sim)| LabelScore {
            label: labels.name(k).to_string(),
            score: sim,
        })
        .collect();

    let looks_like = image_labels
        .iter()
        .take(3)
        .filter(|l| l.score >= 0.01)
        .map(|l| format!("{} ({:.0}%)", l.label, l.score * 100.0))
        .collect::<Vec<_>>();
    let looks_like = if looks_like.is_empty() {
        "nothing the model knows well".to_string()
    } else {
        join_or(&looks_like)
    };
    let closest = sentence_labels
        .iter()
        .map(|l| l.label.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let reason = match label {
        Label::Maybe if decision.checkable < 0.5 => {
            let words: Vec<String> = sentence
                .unverifiable_words(params)
                .iter()
                .filter(|w| w.weight > 0.0)
                .take(3)
                .map(|w| format!("\"{}\"", w.word))
                .collect();
            if words.is_empty() {
                "Most of the sentence names nothing the image model can see, so the image can neither confirm nor refute it.".to_string()
            } else {
                format!(
                    "Much of the sentence ({}) names nothing the image model can see, so the image can neither confirm nor refute it.",
                    words.join(", ")
                )
            }
        }
        Label::Maybe => {
            "The image's content is neither clearly the sentence's nor clearly something else."
                .to_string()
        }
        Label::Yes => "The image's content matches what the sentence describes.".to_string(),
        Label::No => "The image's content is not what the sentence describes.".to_string(),
    };
    let summary = format!(
        "The image looks like {looks_like}. The sentence is closest to {closest}. {reason}"
    );

    let mut signal_map = BTreeMap::new();
    signal_map.insert("concept_similarity".to_string(), signals.concept_similarity);
    signal_map.insert("relative_support".to_string(), signals.relative_support);
    signal_map.insert("unverifiable".to_string(), signals.unverifiable);
    signal_map.insert("label_gap".to_string(), signals.label_gap);
    signal_map.insert("checkable".to_string(), decision.checkable);
    signal_map.insert("support".to_string(), decision.support);

    Explanation {
        summary,
        image_labels,
        sentence_labels,
        signals: signal_map,
    }
}

fn join_or(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}
