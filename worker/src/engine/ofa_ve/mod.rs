//! The `ofa-ve` model kind: OFA's visual entailment, asked directly.
//!
//! The pack (built by `scripts/build-ofa-pack`, to the contract it shares
//! with this module) holds OFA's ResNet stem as an image graph and its
//! encoder plus the decoder's first step as an entailment graph that returns
//! the logits of " yes", " no" and " maybe". A sentence (and a premise, when
//! the job has one) becomes a prompt, the prompt becomes token ids, and the
//! three logits' softmax are the verdict's scores: no rule, no calibration.
//!
//! Image features are cached by the image's key (`image_key`: a BLAKE3
//! hash of its bytes), so several sentences about one image run the ResNet
//! once; the cache is small because the large model's features are 3.7 MB
//! each.

mod explanation;
mod graphs;
pub mod prompt;
mod sections;
pub mod tokens;

use std::path::Path;
use std::sync::Arc;

use tract_onnx::prelude::Tensor;
use verdict_shared::queue::metrics::CacheCount;
use verdict_shared::verdict::{Scores, SentenceVerdict};

use super::profile::Profile;

pub use prompt::{Prompt, Prompts, Template, caption, pre_caption};
pub use sections::{ANSWERS, Sections};
pub use tokens::{PromptTokenizer, PromptTokens};

use super::bounded_cache::BoundedCache;
use super::image_encoder::softmax;
use super::image_key::image_key;
use super::image_preprocess::ImageSpec;
use super::pack::Pack;
use super::texts::{validate_premise, validate_texts};
use super::{Judge, JudgeError, LoadError};
use explanation::{Answer, explain};
use graphs::OfaGraphs;
use verdict_decode::DecodeLimits;

/// The manifest's `kind` for this model.
pub const KIND: &str = "ofa-ve";

/// Images whose features are kept (32 x 3.7 MB for the large model).
const IMAGE_CACHE: usize = 32;

/// The sentence the load-time run judges, to prove the shapes.
const PROBE_SENTENCE: &str = "a blank image.";

/// `working_bytes`' factors, fitted (2026-12-02) to what a judgement of a
/// 64x64 image needed beyond the loaded model's address space, found by
/// `prlimit --as` bisection of `verdict-worker judge`: 125 MB for the tiny
/// pack (4 heads), 316 MB for the large one (16 heads), both 480 x 480 with a
/// 1158-token sequence. About 270 bytes an image pixel (the ResNet's
/// activations) and three f32 values an attention score.
const IMAGE_BYTES_PER_PIXEL: u64 = 272;
const ATTENTION_BYTES_PER_SCORE: u64 = 12;
/// The blocking thread a worker judges on (and, with `--threads`, tract's).
const THREAD_BYTES: u64 = 32 << 20;

/// An `ofa-ve` pack, loaded and planned: what a worker runs.
#[derive(Debug)]
pub struct OfaJudge {
    name: String,
    image: ImageSpec,
    prompts: Prompts,
    tokenizer: PromptTokenizer,
    graphs: OfaGraphs,
    decode_limits: DecodeLimits,
    features: BoundedCache<[u8; 32], Tensor>,
}

impl OfaJudge {
    /// Loads a verified pack of this kind. The graphs are proved to fit
    /// together by their planned shapes ([`OfaGraphs::load`]), not by a run:
    /// one verdict of OFA-large costs seconds, which every start would pay.
    pub fn load(pack: &Pack) -> Result<OfaJudge, LoadError> {
        let sections = Sections::load(pack)?;
        let tokenizer_path = pack.named_file(&sections.text.tokenizer)?;
        let role_path = pack.file("tokenizer")?;
        if role_path != tokenizer_path {
            return Err(LoadError::Manifest {
                path: pack.manifest_path().to_path_buf(),
                message: format!(
                    "text.tokenizer {:?} is not the file with role \"tokenizer\" ({})",
                    sections.text.tokenizer,
                    role_path.display()
                ),
            });
        }
        let text = &sections.text;
        let tokenizer = PromptTokenizer::load(
            &tokenizer_path,
            text.max_source_tokens,
            text.bos_id,
            text.eos_id,
        )?;
        check_tokenizer(&tokenizer, &sections, &tokenizer_path)?;
        let graphs = OfaGraphs::load(
            pack,
            &sections.image.spec,
            sections.image.features,
            &sections.entailment,
            text.max_source_tokens + 2,
        )?;
        if sections.model.random_init {
            tracing::warn!(
                pack = %pack.dir().display(),
                "this ofa-ve pack has random weights (model.random_init): its verdicts mean nothing"
            );
        }
        let working_bytes = working_bytes(&sections);
        let judge = OfaJudge {
            name: pack.display_name(),
            image: sections.image.spec,
            prompts: Prompts {
                hypothesis: sections.prompt,
                with_premise: sections.premise_prompt,
                max_words: sections.text.max_source_words,
            },
            tokenizer,
            graphs,
            decode_limits: DecodeLimits {
                model_working_bytes: working_bytes,
                ..DecodeLimits::default()
            },
            features: BoundedCache::new(IMAGE_CACHE),
        };
        judge.probe().map_err(|e| {
            LoadError::invalid(pack.dir(), format!("the prompts cannot be tokenized: {e}"))
        })?;
        Ok(judge)
    }

    /// Opens (verifies) and loads the pack in `dir`, then hands the memory
    /// that loading freed back to the system, as [`super::load`] does.
    pub fn open(dir: &Path) -> Result<OfaJudge, LoadError> {
        let judge = Pack::load_verified(dir, OfaJudge::load)?;
        verdict_shared::heap::release_freed();
        Ok(judge)
    }

    /// Both prompts frame and tokenize a sentence.
    fn probe(&self) -> Result<(), JudgeError> {
        self.token_ids(PROBE_SENTENCE, None)?;
        self.token_ids(PROBE_SENTENCE, Some(PROBE_SENTENCE))?;
        Ok(())
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn image_spec(&self) -> &ImageSpec {
        &self.image
    }

    pub fn prompts(&self) -> &Prompts {
        &self.prompts
    }

    pub fn tokenizer(&self) -> &PromptTokenizer {
        &self.tokenizer
    }

    /// Decodes and preprocesses an encoded image into the image graph's input.
    pub fn preprocess(&self, bytes: &[u8]) -> Result<Tensor, JudgeError> {
        let rgb = self.image.decode(bytes, &self.decode_limits, true)?;
        Ok(self.image.tensor(&rgb))
    }

    /// The image graph's features for a tensor made by [`OfaJudge::preprocess`].
    pub fn image_features(&self, tensor: &Tensor) -> Result<Tensor, JudgeError> {
        self.graphs.image_features(tensor)
    }

    /// The features of an encoded image, cached by its key ([`image_key`]).
    pub fn cached_features(&self, bytes: &[u8]) -> Result<Arc<Tensor>, JudgeError> {
        let key = image_key(bytes);
        self.features
            .get_or_try_insert(key, || self.image_features(&self.preprocess(bytes)?))
    }

    /// The prompt for `sentence` (and `premise`), before tokenizing.
    pub fn prompt(&self, sentence: &str, premise: Option<&str>) -> Prompt {
        self.prompts.build(sentence, premise)
    }

    /// The entailment graph's `input_ids` for `sentence` (and `premise`), and
    /// how many prompt tokens truncation dropped.
    pub fn token_ids(
        &self,
        sentence: &str,
        premise: Option<&str>,
    ) -> Result<PromptTokens, JudgeError> {
        self.tokenizer.encode(&self.prompt(sentence, premise).text)
    }

    /// The logits of yes, no and maybe for framed ids (from
    /// [`OfaJudge::token_ids`]) and an image's features.
    pub fn answer_logits(
        &self,
        ids: &[i64],
        features: &Arc<Tensor>,
    ) -> Result<[f32; 3], JudgeError> {
        self.graphs.answer_logits(ids, features)
    }

    /// Where one entailment run spends its time (see
    /// [`OfaGraphs::profile_entailment`]).
    pub fn profile_entailment(
        &self,
        ids: &[i64],
        features: &Arc<Tensor>,
    ) -> Result<Profile, JudgeError> {
        self.graphs.profile_entailment(ids, features)
    }

    /// The same for the image graph on a preprocessed image.
    pub fn profile_image(&self, tensor: &Tensor) -> Result<Profile, JudgeError> {
        self.graphs.profile_image(tensor)
    }

    /// The verdict on `sentence` (with `premise`) for an image's features.
    pub fn verdict(
        &self,
        sentence: &str,
        premise: Option<&str>,
        features: &Arc<Tensor>,
    ) -> Result<SentenceVerdict, JudgeError> {
        let prompt = self.prompt(sentence, premise);
        let tokens = self.tokenizer.encode(&prompt.text)?;
        let logits = self.answer_logits(&tokens.ids, features)?;
        let probs = softmax(&logits);
        let scores = Scores::from_weights(probs[0], probs[1], probs[2]);
        let label = scores.argmax();
        let explanation = explain(&Answer {
            prompt: &prompt,
            tokens: &tokens,
            max_source_tokens: self.tokenizer.max_source_tokens(),
            max_source_words: self.prompts.max_words,
            logits,
            scores,
            label,
        });
        Ok(SentenceVerdict {
            text: sentence.to_string(),
            label,
            scores,
            explanation,
        })
    }
}

/// The tokenizer must fit the model's vocabulary and spell the three answers
/// with the ids the manifest gives.
fn check_tokenizer(
    tokenizer: &PromptTokenizer,
    sections: &Sections,
    path: &Path,
) -> Result<(), LoadError> {
    let vocab = tokenizer.vocab_size();
    if vocab > sections.model.vocab_size {
        return Err(LoadError::invalid(
            path,
            format!(
                "the tokenizer has {vocab} ids, more than the model's vocabulary (model.vocab_size {})",
                sections.model.vocab_size
            ),
        ));
    }
    for (answer, &expected) in ANSWERS.iter().zip(&sections.entailment.answer_token_ids) {
        let word = format!(" {answer}");
        let ids = tokenizer
            .raw_ids(&word)
            .map_err(|e| LoadError::invalid(path, e))?;
        if ids != [expected] {
            return Err(LoadError::invalid(
                path,
                format!(
                    "the tokenizer spells {word:?} as {ids:?}, the manifest's entailment.answer_token_ids say [{expected}]: the tokenizer is not the model's"
                ),
            ));
        }
    }
    Ok(())
}

/// Address space one verdict needs beside the weights and the decoded image,
/// from the pack's dimensions: the image graph's activations grow with the
/// image's area, the encoder's attention scores and position biases with
/// heads x sequence². The factors are fitted to the tiny and the large packs
/// (see them), with a quarter more for safety.
fn working_bytes(sections: &Sections) -> u64 {
    let side = u64::from(sections.image.spec.size);
    let [_, _, rows, cols] = sections.image.features;
    let seq = (rows * cols + sections.text.max_source_tokens + 2) as u64;
    let heads = sections.model.heads as u64;
    let image = side * side * IMAGE_BYTES_PER_PIXEL;
    let attention = heads * seq * seq * ATTENTION_BYTES_PER_SCORE;
    THREAD_BYTES + (image + attention) * 5 / 4
}

impl Judge for OfaJudge {
    fn model_name(&self) -> &str {
        &self.name
    }

    fn judge(
        &self,
        image: &[u8],
        texts: &[String],
        premise: Option<&str>,
    ) -> Result<Vec<SentenceVerdict>, JudgeError> {
        validate_texts(texts)?;
        if let Some(premise) = premise {
            validate_premise(premise)?;
        }
        let features = self.cached_features(image)?;
        let verdicts = texts
            .iter()
            .map(|text| self.verdict(text, premise, &features))
            .collect();
        // A run's activations (about 0.9 GB for OFA-large) are freed by now;
        // without this glibc keeps them resident between jobs. A few ms
        // against a verdict of seconds.
        verdict_shared::heap::release_freed();
        verdicts
    }

    fn working_bytes(&self) -> u64 {
        self.decode_limits.model_working_bytes
    }

    fn cache_counts(&self) -> Vec<CacheCount> {
        let (hits, misses) = self.features.counts();
        vec![CacheCount {
            cache: "image",
            hits,
            misses,
        }]
    }
}
