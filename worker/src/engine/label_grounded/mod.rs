//! The `label-grounded` model kind: zero-shot entailment through an image
//! classifier's labels (see `docs/rule.md`).
//!
//! [`LabelGroundedModel`] computes evidence (and can do so before the rule is
//! calibrated, which is how calibration gets its inputs); [`LabelGroundedJudge`]
//! adds the calibrated rule and is what a worker runs.

pub mod calibration;
mod colours;
mod evidence;
mod explanation;
mod labels;
mod people;
mod rule;
mod sentence_probe;
mod words;

use std::path::Path;
use std::sync::Arc;

use image::RgbImage;
use tract_onnx::prelude::Tensor;
use verdict_shared::queue::metrics::CacheCount;
use verdict_shared::verdict::SentenceVerdict;

pub use colours::{Colour, ColourFractions};
pub use evidence::{
    EvidenceParams, ImageEvidence, ImageNeeds, NamedClass, SentenceEvidence, Signals, WordEvidence,
};
pub use labels::{Labels, LabelsSpec};
pub use rule::{Decision, RuleParams};
pub use sentence_probe::SentenceProbe;

use super::bounded_cache::BoundedCache;
use super::face_detector::FaceDetector;
use super::image_encoder::{ImageEncoder, softmax};
use super::image_key::image_key;
use super::image_preprocess::ImageSpec;
use super::pack::Pack;
use super::text_encoder::{TextEncoder, TextSpec};
use super::texts::validate_texts;
use super::{Judge, JudgeError, LoadError};
use verdict_decode::DecodeLimits;

/// The manifest's `kind` for this model.
pub const KIND: &str = "label-grounded";

/// Cache sizes: a few thousand sentences and words are a catalogue's rules;
/// images are cached for repeats within a batch (each entry is ~8 KB).
const IMAGE_CACHE: usize = 1024;

/// Address space a judgement needs beside the model and the decoded image:
/// the thread it runs on and the encoders' scratch. Measured (2026-12-02,
/// `prlimit --as` bisection of `verdict-worker judge` on a 64x64 image): the
/// judgement fits in the 353 MB the load needs anyway, so what is left to
/// reserve is the blocking thread a worker judges on (its 2 MiB stack; a
/// malloc arena it cannot map is not fatal), with room to spare.
const WORKING_BYTES: u64 = 32 << 20;
const SENTENCE_CACHE: usize = 4096;
const WORD_CACHE: usize = 16384;

/// The encoders, the labels and the caches: everything but the rule.
#[derive(Debug)]
pub struct LabelGroundedModel {
    name: String,
    image: ImageEncoder,
    /// The pack's face detector, if it has one (section `faces`).
    faces: Option<FaceDetector>,
    text: TextEncoder,
    labels: Labels,
    evidence: EvidenceParams,
    decode_limits: DecodeLimits,
    /// Whether a large JPEG may be read at 1/8 scale (the default; see
    /// `ImageSpec::decode`).
    scaled_decode: bool,
    images: BoundedCache<[u8; 32], ImageEvidence>,
    sentences: BoundedCache<String, SentenceEvidence>,
    words: BoundedCache<String, (Vec<f32>, f32)>,
}

impl LabelGroundedModel {
    /// Loads the encoders and labels of a verified pack of this kind.
    pub fn load(pack: &Pack) -> Result<LabelGroundedModel, LoadError> {
        let text_spec: TextSpec = pack.section("text")?;
        let image_spec: ImageSpec = pack.section("image")?;
        let labels_spec: LabelsSpec = pack.section("labels")?;
        // The evidence parameters live in the rule section, which may still be
        // empty before calibration: their documented defaults apply then.
        let evidence: EvidenceParams = match pack.manifest().sections.get("rule") {
            Some(rule) => {
                serde_json::from_value(rule.clone()).map_err(|e| LoadError::Manifest {
                    path: pack.manifest_path().to_path_buf(),
                    message: format!("section \"rule\": {e}"),
                })?
            }
            None => EvidenceParams::default(),
        };
        let dim = text_spec.dim;
        let labels = Labels::load(pack, labels_spec, dim)?;
        let text = TextEncoder::load(pack, text_spec)?;
        let image = ImageEncoder::load(pack, image_spec, labels.len())?;
        let faces = FaceDetector::load(pack)?;
        Ok(LabelGroundedModel {
            name: pack.display_name(),
            image,
            faces,
            text,
            labels,
            evidence,
            decode_limits: DecodeLimits {
                model_working_bytes: WORKING_BYTES,
                ..DecodeLimits::default()
            },
            scaled_decode: true,
            images: BoundedCache::new(IMAGE_CACHE),
            sentences: BoundedCache::new(SENTENCE_CACHE),
            words: BoundedCache::new(WORD_CACHE),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn labels(&self) -> &Labels {
        &self.labels
    }

    pub fn text_encoder(&self) -> &TextEncoder {
        &self.text
    }

    pub fn image_encoder(&self) -> &ImageEncoder {
        &self.image
    }

    pub fn face_detector(&self) -> Option<&FaceDetector> {
        self.faces.as_ref()
    }

    pub fn evidence_params(&self) -> &EvidenceParams {
        &self.evidence
    }

    /// Whether a large JPEG may be read at 1/8 scale (true unless changed):
    /// `verdict-worker calibrate --full-decode` turns it off to measure what
    /// that reading changes.
    pub fn set_scaled_decode(&mut self, scaled: bool) {
        self.scaled_decode = scaled;
    }

    /// What a judgement needs beside the model and the image.
    pub fn working_bytes(&self) -> u64 {
        self.decode_limits.model_working_bytes
    }

    /// Hits and misses of the image, sentence and word caches.
    pub fn cache_counts(&self) -> Vec<CacheCount> {
        [
            ("image", self.images.counts()),
            ("sentence", self.sentences.counts()),
            ("word", self.words.counts()),
        ]
        .into_iter()
        .map(|(cache, (hits, misses))| CacheCount {
            cache,
            hits,
            misses,
        })
        .collect()
    }

    /// Decodes an encoded image as the image encoder needs it (the face
    /// detector reads the same pixels).
    pub fn decode(&self, bytes: &[u8]) -> Result<RgbImage, JudgeError> {
        Ok(self
            .image
            .spec()
            .decode(bytes, &self.decode_limits, self.scaled_decode)?)
    }

    /// Decodes and preprocesses an encoded image into the encoder's input.
    pub fn preprocess(&self, bytes: &[u8]) -> Result<Tensor, JudgeError> {
        Ok(self.image.spec().tensor(&self.decode(bytes)?))
    }

    /// Everything the image's evidence can hold, faces (when the pack has a
    /// detector) and colours included; cached by its key ([`image_key`]).
    pub fn image_evidence(&self, bytes: &[u8]) -> Result<Arc<ImageEvidence>, JudgeError> {
        self.image_evidence_for(bytes, ImageNeeds::ALL)
    }

    /// What the image looks like; its faces and its colours only if `needs`
    /// them (or if an earlier call measured them). Only a sentence about
    /// people reads the face detector's answer
    /// (`SentenceEvidence::person_share`), which costs about a sixth of an
    /// image's evidence, and only a sentence that names a colour reads the
    /// colour shares (`ColourFractions`, a pass over the model's square of
    /// 224 x 224 pixels; 4 % of a PNG job's judging time in a bench-peer
    /// run): a catalogue rule such as "This is a ceramic coffee cup." pays
    /// for neither. Cached by the image's key ([`image_key`]); an entry
    /// cached without them gains them when a later sentence needs them (the
    /// image is decoded again, the encoder is not run again).
    pub fn image_evidence_for(
        &self,
        bytes: &[u8],
        needs: ImageNeeds,
    ) -> Result<Arc<ImageEvidence>, JudgeError> {
        let key = image_key(bytes);
        let detector = self.faces.as_ref().filter(|_| needs.faces);
        let evidence = self
            .images
            .get_or_try_insert(key, || -> Result<_, JudgeError> {
                let rgb = self.decode(bytes)?;
                let spec = self.image.spec();
                let square = spec.square(&rgb);
                let probs = softmax(&self.image.logits(&spec.tensor_of_square(&square))?);
                let colours = needs.colours.then(|| ColourFractions::measure(&square));
                let faces = detector.map(|d| d.detect(&rgb)).transpose()?;
                Ok(ImageEvidence::new(
                    probs,
                    colours,
                    faces,
                    &self.labels,
                    &self.evidence,
                ))
            })?;
        let lacks_faces = detector.filter(|_| evidence.faces.is_none());
        let lacks_colours = needs.colours && evidence.colours.is_none();
        if lacks_faces.is_none() && !lacks_colours {
            return Ok(evidence);
        }
        let rgb = self.decode(bytes)?;
        let mut fuller = (*evidence).clone();
        if lacks_colours {
            fuller.colours = Some(ColourFractions::measure(&self.image.spec().square(&rgb)));
        }
        if let Some(detector) = lacks_faces {
            fuller.faces = Some(detector.detect(&rgb)?);
        }
        let fuller = Arc::new(fuller);
        self.images.insert(key, Arc::clone(&fuller));
        Ok(fuller)
    }

    /// What a sentence says; cached by its text.
    pub fn sentence_evidence(&self, text: &str) -> Result<Arc<SentenceEvidence>, JudgeError> {
        self.sentences.get_or_try_insert(text.to_string(), || {
            let embedding = self.text.embed(text)?;
            let words = words::words(text);
            let vectors = words
                .iter()
                .map(|w| self.word(w).map(|v| (*v).clone()))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(SentenceEvidence::new(
                embedding,
                &words,
                &vectors,
                &self.labels,
                &self.evidence,
            ))
        })
    }

    /// A word's embedding and labelness; cached by the word.
    fn word(&self, word: &str) -> Result<Arc<(Vec<f32>, f32)>, JudgeError> {
        self.words.get_or_try_insert(word.to_string(), || {
            let vector = self.text.embed(word)?;
            let labelness = self
                .labels
                .similarities(&vector)
                .into_iter()
                .fold(f32::NEG_INFINITY, f32::max);
            Ok((vector, labelness))
        })
    }
}

/// A label-grounded model with its calibrated rule: what a worker runs.
#[derive(Debug)]
pub struct LabelGroundedJudge {
    model: LabelGroundedModel,
    rule: RuleParams,
}

impl LabelGroundedJudge {
    pub fn load(pack: &Pack) -> Result<LabelGroundedJudge, LoadError> {
        let rule: RuleParams = pack.section("rule").map_err(|e| match e {
            LoadError::Manifest { path, message } => LoadError::Manifest {
                path,
                message: format!(
                    "{message} (the rule is not calibrated: run scripts/calibrate-rule, then rebuild the pack)"
                ),
            },
            other => other,
        })?;
        rule.validate()
            .map_err(|message| LoadError::invalid(pack.manifest_path(), message))?;
        let model = LabelGroundedModel::load(pack)?;
        Ok(LabelGroundedJudge { model, rule })
    }

    pub fn open(dir: &Path) -> Result<LabelGroundedJudge, LoadError> {
        LabelGroundedJudge::load(&Pack::open(dir)?)
    }

    pub fn model(&self) -> &LabelGroundedModel {
        &self.model
    }

    pub fn model_mut(&mut self) -> &mut LabelGroundedModel {
        &mut self.model
    }

    pub fn rule(&self) -> &RuleParams {
        &self.rule
    }

    /// The verdict on one (image, sentence) pair of evidence.
    pub fn verdict(
        &self,
        text: &str,
        image: &ImageEvidence,
        sentence: &SentenceEvidence,
    ) -> SentenceVerdict {
        let signals = Signals::new(image, sentence, self.rule.sentence_probe.as_ref());
        let decision = self.rule.decide(&signals);
        let label = decision.scores.argmax();
        SentenceVerdict {
            text: text.to_string(),
            label,
            scores: decision.scores,
            explanation: explanation::explain(
                &self.model.labels,
                &self.model.evidence,
                image,
                sentence,
                &signals,
                &decision,
                label,
            ),
        }
    }
}

impl Judge for LabelGroundedJudge {
    fn model_name(&self) -> &str {
        self.model.name()
    }

    fn judge(
        &self,
        image: &[u8],
        texts: &[String],
        premise: Option<&str>,
    ) -> Result<Vec<SentenceVerdict>, JudgeError> {
        validate_texts(texts)?;
        if premise.is_some() {
            return Err(JudgeError::PremiseUnsupported {
                model: self.model.name().to_string(),
            });
        }
        let sentences = texts
            .iter()
            .map(|text| self.model.sentence_evidence(text))
            .collect::<Result<Vec<_>, _>>()?;
        // Faces and colours are measured only when a sentence reads them.
        let needs = ImageNeeds::of(sentences.iter().map(|s| &**s));
        let image_evidence = self.model.image_evidence_for(image, needs)?;
        Ok(texts
            .iter()
            .zip(&sentences)
            .map(|(text, sentence)| self.verdict(text, &image_evidence, sentence))
            .collect())
    }

    fn working_bytes(&self) -> u64 {
        self.model.working_bytes()
    }

    fn cache_counts(&self) -> Vec<CacheCount> {
        self.model.cache_counts()
    }
}
