//! Putting a decision into words: what the image looks like, what the sentence
//! is closest to, which evidence decided (the classifier's concept, a class
//! the sentence names, a colour, faces, the sentence probe, the classifier's
//! doubt about the image) and what the image cannot check.

use std::collections::BTreeMap;

use verdict_shared::verdict::{Explanation, Label, LabelScore};

use super::colours::Colour;
use super::evidence::{EvidenceParams, ImageEvidence, SentenceEvidence, Signals};
use super::labels::Labels;
use super::people::is_person_word;
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
    let reason = reason(
        params,
        sentence,
        image.faces.is_some(),
        image.top.first().map_or(0.0, |&k| image.probs[k]),
        decision,
        label,
    );
    let evidence = evidence(labels, image, sentence, signals, decision, label);
    let summary = format!(
        "The image looks like {looks_like}. The sentence is closest to {closest}. {evidence}{reason}"
    );

    let mut signal_map = BTreeMap::new();
    signal_map.insert("concept_similarity".to_string(), signals.concept_similarity);
    signal_map.insert("relative_support".to_string(), signals.relative_support);
    signal_map.insert("unverifiable".to_string(), signals.unverifiable);
    signal_map.insert("label_gap".to_string(), signals.label_gap);
    signal_map.insert("checkable".to_string(), decision.checkable);
    signal_map.insert("support".to_string(), decision.support);
    signal_map.insert("sentence_probe".to_string(), signals.sentence_probe);
    signal_map.insert("person_share".to_string(), signals.person_share);
    signal_map.insert("image_uncertainty".to_string(), signals.image_uncertainty);
    let optional = [
        ("named_presence", signals.named_presence),
        ("colour_match", signals.colour_match),
        ("faces", signals.faces.map(|n| n as f32)),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            signal_map.insert(name.to_string(), value);
        }
    }

    Explanation {
        summary,
        image_labels,
        sentence_labels,
        signals: signal_map,
    }
}

/// Why the label won, in one sentence: the term of the support that pushed
/// hardest toward it, or what kept the image from checking the sentence.
fn reason(
    params: &EvidenceParams,
    sentence: &SentenceEvidence,
    faces_checked: bool,
    likeliest: f32,
    decision: &Decision,
    label: Label,
) -> String {
    let parts = &decision.parts;
    match label {
        Label::Maybe if decision.checkable < 0.5 => {
            let words: Vec<String> = sentence
                .unverifiable_words(params)
                .iter()
                .filter(|w| w.weight > 0.0)
                .filter(|w| !(faces_checked && is_person_word(&w.word)))
                .take(3)
                .map(|w| format!("\"{}\"", w.word))
                .collect();
            let about = "who made or owns something, where it comes from, its worth, what happened or will happen";
            let neither = "so the image can neither confirm nor refute it.";
            match (parts.probe > 1.0, words.is_empty()) {
                (true, true) => format!(
                    "It reads like a sentence about what no photo shows ({about}), {neither}"
                ),
                (true, false) => format!(
                    "Much of it ({}) names nothing the image model can see, and it reads like a sentence about what no photo shows ({about}), {neither}",
                    words.join(", ")
                ),
                (false, true) => {
                    format!("Most of the sentence names nothing the image model can see, {neither}")
                }
                (false, false) => format!(
                    "Much of the sentence ({}) names nothing the image model can see, {neither}",
                    words.join(", ")
                ),
            }
        }
        Label::Maybe if decision.support < 0.0 && parts.doubt >= -decision.support => format!(
            "The image's content goes against the sentence, but the image model is unsure what \
             the image shows (its likeliest class has {}), so that is not taken as a \
             contradiction.",
            percent(likeliest)
        ),
        Label::Maybe => {
            "The evidence is neither clearly for the sentence nor clearly against it.".to_string()
        }
        Label::Yes | Label::No => {
            let sign = if label == Label::Yes { 1.0 } else { -1.0 };
            // What pushed hardest, named as it pushed: (the term, what it is
            // for a yes, for a no, whether that is plural).
            let terms = [
                (
                    Some(parts.concept),
                    "the image's content",
                    "the image's content",
                    false,
                ),
                (
                    parts.named,
                    "the class the sentence names",
                    "the class the sentence names",
                    false,
                ),
                (parts.colour, "the colours", "the colours", true),
                (parts.people, "the face found", "finding no face", false),
            ];
            let (what, plural) = terms
                .into_iter()
                .filter_map(|(term, yes, no, plural)| {
                    let what = if label == Label::Yes { yes } else { no };
                    term.map(|t| (t * sign, what, plural))
                })
                .filter(|(t, _, _)| *t > 0.0)
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .map_or(("the image's content", false), |(_, what, plural)| {
                    (what, plural)
                });
            let verb = match (label, plural) {
                (Label::Yes, false) => "matches",
                (Label::Yes, true) => "match",
                (_, false) => "goes against",
                (_, true) => "go against",
            };
            format!("Decided by {what}, which {verb} the sentence.")
        }
    }
}

/// The evidence beside the classifier's concept, one short sentence each:
/// the class the sentence names, its colours, the faces.
fn evidence(
    labels: &Labels,
    image: &ImageEvidence,
    sentence: &SentenceEvidence,
    signals: &Signals,
    decision: &Decision,
    label: Label,
) -> String {
    let mut out = String::new();
    let probability = |class: usize| image.probs.get(class).copied().unwrap_or(0.0);
    let named = sentence
        .named
        .iter()
        .max_by(|a, b| probability(a.class).total_cmp(&probability(b.class)));
    if let Some(named) = named {
        let p = probability(named.class);
        let name = labels.name(named.class);
        let rank = image.rank(named.class);
        if decision.parts.named.is_some() && rank > 1 && label != Label::No {
            out += &format!(
                "\"{}\": {name} is the image's {} label ({}). ",
                named.word,
                ordinal(rank),
                percent(p)
            );
        } else if label == Label::No && rank > 1 && p < 0.01 {
            out += &format!(
                "\"{}\": the image gives {name} only {}. ",
                named.word,
                percent(p)
            );
        }
    }
    if let Some(shares) = &image.colours {
        for &colour in &sentence.colours {
            let share = shares.get(colour);
            out += &match colour {
                Colour::Achromatic => format!(
                    "Clear colour covers {} of the image. ",
                    percent(shares.coloured())
                ),
                Colour::Colourful => format!(
                    "The image's colours are {} saturated on average. ",
                    percent(share)
                ),
                c => format!(
                    "\"{}\" covers {} of the middle of the image. ",
                    c.name(),
                    percent(share)
                ),
            };
        }
    }
    if let (Some(faces), true) = (&image.faces, signals.person_share > 0.0) {
        let largest = percent(faces.largest_area_fraction());
        match faces.count() {
            0 => out += "No face was found. ",
            1 => out += &format!("A face was found ({largest} of the image). "),
            n => out += &format!("{n} faces were found (the largest {largest} of the image). "),
        }
    }
    out
}

fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// A share as a percentage with as many digits as a small one needs.
fn percent(share: f32) -> String {
    let pct = share * 100.0;
    if pct >= 10.0 {
        format!("{pct:.0}%")
    } else if pct >= 1.0 {
        format!("{pct:.1}%")
    } else if pct >= 0.01 {
        format!("{pct:.2}%")
    } else {
        "under 0.01%".to_string()
    }
}

fn join_or(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}
