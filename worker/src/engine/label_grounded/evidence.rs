//! The quantities the rule looks at, computed from the two encoders.
//!
//! * Image: p(k | image), the class probabilities, and the image's *concept
//!   vector* v, the probability-weighted mean of its top classes' label
//!   embeddings (ConSE, Norouzi et al. 2014).
//! * Sentence: its embedding s, its cosine c_k with every label, and for each
//!   word how well that word alone names some label ("labelness").
//! * Pair: how similar the image's concept is to the sentence, absolutely and
//!   relative to the sentence's best possible label, and how much of the
//!   sentence's meaning lies in words that name nothing the classifier knows.
//!
//! Image and sentence evidence are independent of each other, so each is
//! computed once and cached: a catalogue run that checks one rule against many
//! photos embeds the rule once.

use serde::{Deserialize, Serialize};

use super::labels::{Labels, dot, top_k};
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
    /// The faces in the image (`None` when the pack has no face detector).
    pub faces: Option<Faces>,
}

impl ImageEvidence {
    pub fn new(probs: Vec<f32>, labels: &Labels, params: &EvidenceParams) -> ImageEvidence {
        let top = top_k(&probs, params.concept_top_k.max(1));
        let dim = labels.embedding(0).len();
        let mut concept = vec![0f32; dim];
        for &k in &top {
            for (c, e) in concept.iter_mut().zip(labels.embedding(k)) {
                *c += probs[k] * e;
            }
        }
        crate::engine::text_encoder::normalize(&mut concept);
        ImageEvidence {
            probs,
            top,
            concept,
            faces: None,
        }
    }
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
        let unverifiable = if total > 0.0 {
            words
                .iter()
                .filter(|w| w.labelness < params.word_labelness_threshold)
                .map(|w| w.weight)
                .sum::<f32>()
                / total
        } else {
            0.0
        };
        SentenceEvidence {
            embedding,
            mean_similarity,
            best_similarity,
            closest,
            words,
            unverifiable,
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
    /// The sentence's unverifiable share.
    pub unverifiable: f32,
    /// max_k c_k - mean_k c_k: how sharply the sentence picks out some class.
    pub label_gap: f32,
}

impl Signals {
    pub fn new(image: &ImageEvidence, sentence: &SentenceEvidence) -> Signals {
        let concept_similarity = dot(&image.concept, &sentence.embedding);
        let label_gap = sentence.best_similarity - sentence.mean_similarity;
        let relative_support =
            (concept_similarity - sentence.mean_similarity) / label_gap.max(1e-3);
        Signals {
            concept_similarity,
            relative_support,
            unverifiable: sentence.unverifiable,
            label_gap,
        }
    }
}
