//! The quantities the rule looks at, computed from the two encoders.
//!
//! * Image: p(k | image), the class probabilities, and the image's *concept
//!   vector* v, the probability-weighted mean of its top classes' label
//!   embeddings (ConSE, Norouzi et al. 2014).
//! * Sentence: its embedding s, its cosine c_k with every label, and for each
//!   word how well that word alone names some label ("labelness").
//! * Image, beside the classifier: the share of each colour in the image
//!   (`colours.rs`).
//! * Sentence, beside the encoder's cosines: the classes its words name
//!   outright ("cup"), the colours it asks about, and how much of it is
//!   about people (`people.rs`).
//! * Pair: how similar the image's concept is to the sentence, absolutely and
//!   relative to the sentence's best possible label, how much of the
//!   sentence's meaning lies in words that name nothing the classifier knows,
//!   what the sentence probe makes of it (`sentence_probe.rs`), what
//!   probability the image gives the classes it names, and how much of the
//!   image has its colours.
//!
//! Image and sentence evidence are independent of each other, so each is
//! computed once and cached: a catalogue run that checks one rule against many
//! photos embeds the rule once.

use serde::{Deserialize, Serialize};

use super::colours::{Colour, ColourFractions, colour_terms, is_colour_word};
use super::labels::{Labels, dot, top_k};
use super::people::is_person_word;
use super::sentence_probe::SentenceProbe;
use crate::engine::face_detector::Faces;

/// Fixed parameters of the evidence (part of the pack's `rule` section).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EvidenceParams {
    /// A word whose best label similarity is below this names nothing the
    /// classifier knows ("hungry", "tomorrow", "proud"); at or above it, it
    /// names something visible ("cup", "red", "roof").
    #[serde(default = "default_word_labelness")]
    pub word_labelness_threshold: f32,
    /// How many of the image's most probable classes make its concept vector.
    #[serde(default = "default_concept_top_k")]
    pub concept_top_k: usize,
    /// A word whose cosine with its closest label reaches this names that
    /// class outright ("cup" names *cup*, "tripod" *tripod*): the
    /// probability the image gives the class is evidence for the word.
    #[serde(default = "default_class_naming")]
    pub class_naming_threshold: f32,
}

fn default_class_naming() -> f32 {
    0.55
}

fn default_word_labelness() -> f32 {
    0.35
}

fn default_concept_top_k() -> usize {
    10
}

impl Default for EvidenceParams {
    fn default() -> Self {
        EvidenceParams {
            word_labelness_threshold: default_word_labelness(),
            concept_top_k: default_concept_top_k(),
            class_naming_threshold: default_class_naming(),
        }
    }
}

/// What the image looks like to the classifier.
#[derive(Debug, Clone)]
pub struct ImageEvidence {
    /// p(k | image), summing to 1.
    pub probs: Vec<f32>,
    /// The most probable classes, most probable first.
    pub top: Vec<usize>,
    /// The unit concept vector v.
    pub concept: Vec<f32>,
    /// The share of each colour in the image (`None` until a sentence that
    /// names a colour asks: `LabelGroundedModel::image_evidence_for`).
    pub colours: Option<ColourFractions>,
    /// The faces in the image (`None` when the pack has no face detector, or
    /// when no sentence about people has asked yet:
    /// `LabelGroundedModel::image_evidence_for`).
    pub faces: Option<Faces>,
    /// The entropy of p(k | image) over the log of the number of classes,
    /// in [0, 1]: near 0 when the classifier is sure what the image shows,
    /// near 1 when the image is like none of its classes (grass, gravel, a
    /// chessboard).
    pub uncertainty: f32,
}

impl ImageEvidence {
    pub fn new(
        probs: Vec<f32>,
        colours: Option<ColourFractions>,
        faces: Option<Faces>,
        labels: &Labels,
        params: &EvidenceParams,
    ) -> ImageEvidence {
        let top = top_k(&probs, params.concept_top_k.max(1));
        let dim = labels.embedding(0).len();
        let mut concept = vec![0f32; dim];
        for &k in &top {
            for (c, e) in concept.iter_mut().zip(labels.embedding(k)) {
                *c += probs[k] * e;
            }
        }
        crate::engine::text_encoder::normalize(&mut concept);
        let uncertainty = normalised_entropy(&probs);
        ImageEvidence {
            probs,
            top,
            concept,
            colours,
            faces,
            uncertainty,
        }
    }

    /// The class's place among the image's classes (1: the most probable).
    pub fn rank(&self, class: usize) -> usize {
        let p = self.probs.get(class).copied().unwrap_or(0.0);
        1 + self.probs.iter().filter(|&&q| q > p).count()
    }
}

/// What of an image's evidence beyond its classes the sentences at hand
/// read: the face detector and the colour shares each cost a part of an
/// image's evidence that a catalogue rule such as "This is a ceramic coffee
/// cup." never reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageNeeds {
    /// Some sentence is about people.
    pub faces: bool,
    /// Some sentence names a colour.
    pub colours: bool,
}

impl ImageNeeds {
    /// Everything (calibration, benchmarks, tests).
    pub const ALL: ImageNeeds = ImageNeeds {
        faces: true,
        colours: true,
    };

    /// What `sentences` read.
    pub fn of<'a>(sentences: impl IntoIterator<Item = &'a SentenceEvidence>) -> ImageNeeds {
        sentences.into_iter().fold(
            ImageNeeds {
                faces: false,
                colours: false,
            },
            |needs, s| ImageNeeds {
                faces: needs.faces || s.person_share > 0.0,
                colours: needs.colours || !s.colours.is_empty(),
            },
        )
    }
}

/// The entropy of a distribution over the log of its size, in [0, 1].
fn normalised_entropy(probs: &[f32]) -> f32 {
    if probs.len() < 2 {
        return 0.0;
    }
    let entropy: f32 = probs
        .iter()
        .filter(|&&p| p > 0.0)
        .map(|&p| -p * p.ln())
        .sum();
    (entropy / (probs.len() as f32).ln()).clamp(0.0, 1.0)
}

/// How far above its mean label cosine a word's best one must be for the
/// word to name that class (cup: 0.57, motorcycle 0.38; photo 0.19, picture
/// 0.15: measured with the default pack's encoder).
const NAMING_GAP: f32 = 0.25;

/// A word that names a class outright.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedClass {
    pub word: String,
    pub class: usize,
    pub similarity: f32,
}

/// One word of a sentence.
#[derive(Debug, Clone, PartialEq)]
pub struct WordEvidence {
    pub word: String,
    /// The word's best cosine with any label: does it name something visible?
    pub labelness: f32,
    /// The word's cosine with the whole sentence (floored at 0): how much of the
    /// sentence's meaning it carries. Function words carry little.
    pub weight: f32,
}

/// What a sentence says, in the classifier's vocabulary.
#[derive(Debug, Clone)]
pub struct SentenceEvidence {
    /// The unit sentence embedding s.
    pub embedding: Vec<f32>,
    /// Mean and maximum of c_k over all labels.
    pub mean_similarity: f32,
    pub best_similarity: f32,
    /// The closest labels and their cosines, closest first.
    pub closest: Vec<(usize, f32)>,
    pub words: Vec<WordEvidence>,
    /// The share of the words' weight carried by words below the labelness
    /// threshold, in [0, 1]: the part of the sentence the image cannot check.
    pub unverifiable: f32,
    /// The words that name a class outright, in order.
    pub named: Vec<NamedClass>,
    /// The colours the sentence asks about.
    pub colours: Vec<Colour>,
    /// The share of the words' weight carried by words for people, in [0, 1].
    pub person_share: f32,
    /// The part of `unverifiable` carried by words for people: a face
    /// detector can check those.
    pub unverifiable_people: f32,
}

impl SentenceEvidence {
    /// `word_vectors` are the embeddings of each of `words` alone, in order.
    pub fn new(
        embedding: Vec<f32>,
        words: &[String],
        word_vectors: &[(Vec<f32>, f32)],
        labels: &Labels,
        params: &EvidenceParams,
    ) -> SentenceEvidence {
        let sims = labels.similarities(&embedding);
        let mean_similarity = sims.iter().sum::<f32>() / sims.len() as f32;
        let closest: Vec<(usize, f32)> =
            top_k(&sims, 5).into_iter().map(|k| (k, sims[k])).collect();
        let best_similarity = closest.first().map_or(0.0, |c| c.1);
        let words: Vec<WordEvidence> = words
            .iter()
            .zip(word_vectors)
            .map(|(word, (vector, labelness))| WordEvidence {
                word: word.clone(),
                labelness: *labelness,
                weight: dot(vector, &embedding).max(0.0),
            })
            .collect();
        let total: f32 = words.iter().map(|w| w.weight).sum();
        let share = |keep: &dyn Fn(&WordEvidence) -> bool| {
            if total > 0.0 {
                words
                    .iter()
                    .filter(|w| keep(w))
                    .map(|w| w.weight)
                    .sum::<f32>()
                    / total
            } else {
                0.0
            }
        };
        let person_share = share(&|w| is_person_word(&w.word));
        let unverifiable_people =
            share(&|w| is_person_word(&w.word) && w.labelness < params.word_labelness_threshold);
        let named = words
            .iter()
            .zip(word_vectors)
            .filter(|(w, _)| w.labelness >= params.class_naming_threshold)
            // Colours and people are checked by their own evidence.
            .filter(|(w, _)| !is_colour_word(&w.word) && !is_person_word(&w.word))
            .filter_map(|(w, (vector, _))| {
                let sims = labels.similarities(vector);
                let class = top_k(&sims, 1).into_iter().next()?;
                let mean = sims.iter().sum::<f32>() / sims.len() as f32;
                // "photo", "picture": close to every label ("a photo of a
                // {name}."), so they name none of them.
                if sims[class] - mean < NAMING_GAP {
                    return None;
                }
                Some(NamedClass {
                    word: w.word.clone(),
                    class,
                    similarity: sims[class],
                })
            })
            .collect();
        let word_list: Vec<String> = words.iter().map(|w| w.word.clone()).collect();
        let unverifiable = share(&|w| w.labelness < params.word_labelness_threshold);
        SentenceEvidence {
            embedding,
            mean_similarity,
            best_similarity,
            closest,
            words,
            unverifiable,
            named,
            colours: colour_terms(&word_list),
            person_share,
            unverifiable_people,
        }
    }

    /// The unverifiable words, heaviest first.
    pub fn unverifiable_words(&self, params: &EvidenceParams) -> Vec<&WordEvidence> {
        let mut out: Vec<&WordEvidence> = self
            .words
            .iter()
            .filter(|w| w.labelness < params.word_labelness_threshold)
            .collect();
        out.sort_by(|a, b| b.weight.total_cmp(&a.weight));
        out
    }
}

/// The numbers the rule decides on, for one (image, sentence) pair.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Signals {
    /// cos(v, s): how close the image's concept is to the sentence.
    pub concept_similarity: f32,
    /// (cos(v, s) - mean_k c_k) / (max_k c_k - mean_k c_k): where the image's
    /// concept sits between an average class (0) and the sentence's best class
    /// (1).
    pub relative_support: f32,
    /// The sentence's unverifiable share (less its words for people when the
    /// pack has a face detector).
    pub unverifiable: f32,
    /// max_k c_k - mean_k c_k: how sharply the sentence picks out some class.
    pub label_gap: f32,
    /// The sentence probe's logit (0 without a probe): positive when the
    /// sentence is about what no photo shows.
    #[serde(default)]
    pub sentence_probe: f32,
    /// log10 of the largest probability the image gives a class the sentence
    /// names outright (floored at 1e-6); none when it names none.
    #[serde(default)]
    pub named_presence: Option<f32>,
    /// log10 of (the smallest share of the image any of the sentence's
    /// colours covers + 0.005); none when it names no colour.
    #[serde(default)]
    pub colour_match: Option<f32>,
    /// The sentence's share of words for people.
    #[serde(default)]
    pub person_share: f32,
    /// Faces the detector found; none when the pack has no detector.
    #[serde(default)]
    pub faces: Option<u32>,
    /// The image's [`ImageEvidence::uncertainty`].
    #[serde(default)]
    pub image_uncertainty: f32,
}

/// The floor of a named class's probability (log10: -6).
const PRESENCE_FLOOR: f32 = 1e-6;
/// Added to a colour's share before its log, so that a colour the image
/// lacks entirely is not infinitely far from one it has a trace of.
const COLOUR_FLOOR: f32 = 0.005;

impl Signals {
    pub fn new(
        image: &ImageEvidence,
        sentence: &SentenceEvidence,
        probe: Option<&SentenceProbe>,
    ) -> Signals {
        let concept_similarity = dot(&image.concept, &sentence.embedding);
        let label_gap = sentence.best_similarity - sentence.mean_similarity;
        let relative_support =
            (concept_similarity - sentence.mean_similarity) / label_gap.max(1e-3);
        let named_presence = sentence
            .named
            .iter()
            .map(|n| presence(image.probs.get(n.class).copied().unwrap_or(0.0)))
            .reduce(f32::max);
        debug_assert!(
            sentence.colours.is_empty() || image.colours.is_some(),
            "a sentence names a colour and the image's colours were not measured"
        );
        let colour_match = image.colours.as_ref().and_then(|shares| {
            sentence
                .colours
                .iter()
                .map(|&c| (shares.get(c) + COLOUR_FLOOR).log10())
                .reduce(f32::min)
        });
        Signals {
            concept_similarity,
            relative_support,
            // With a face detector, words for people can be checked.
            unverifiable: if image.faces.is_some() {
                (sentence.unverifiable - sentence.unverifiable_people).max(0.0)
            } else {
                sentence.unverifiable
            },
            label_gap,
            sentence_probe: probe.map_or(0.0, |p| p.logit(&sentence.embedding)),
            named_presence,
            colour_match,
            person_share: sentence.person_share,
            faces: image.faces.as_ref().map(|f| f.count() as u32),
            image_uncertainty: image.uncertainty,
        }
    }
}

#[cfg(test)]
impl Signals {
    /// Signals with no evidence beyond the concept, for tests.
    pub(crate) fn neutral() -> Signals {
        Signals {
            concept_similarity: 0.0,
            relative_support: 0.0,
            unverifiable: 0.0,
            label_gap: 0.4,
            sentence_probe: 0.0,
            named_presence: None,
            colour_match: None,
            person_share: 0.0,
            faces: None,
            image_uncertainty: 0.0,
        }
    }
}

/// log10 of a class probability, floored.
pub fn presence(p: f32) -> f32 {
    p.max(PRESENCE_FLOOR).log10()
}
