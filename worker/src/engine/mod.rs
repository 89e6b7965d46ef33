//! The inference engine: turns an image and sentences into verdicts.
//!
//! A [`Judge`] is loaded once per worker process from a model pack (see
//! `docs/model-pack.md`) and then called for every job. The trait names no model
//! kind, so the queue code never changes when a pack of another kind arrives.
//!
//! - kinds: `label_grounded` (the offline default: an ImageNet classifier and
//!   a sentence encoder, docs/rule.md), `ofa_ve` (OFA visual entailment: image
//!   and sentence read together), `noop` (the queue benchmark's stand-in);
//! - packs: `pack` (manifest, verified files), `load_error`;
//! - inputs: images are decoded by the `verdict-decode` crate (limits, EXIF,
//!   alpha, the memory budget); `image_preprocess` (crop or stretch, resize,
//!   normalise), `texts` (sentence and premise checks);
//! - tract: `onnx_graph` (graphs planned for fixed or symbolic shapes),
//!   `depthwise_x86` (x86 kernels for channel-last depthwise convolutions,
//!   handed to tract through its kernel registry), `pointwise_conv` and
//!   `pointwise_kernel` (1 x 1 convolutions with their bias, clip and
//!   residual, rewritten into one op that runs the worker's own kernel),
//!   `patch_conv` (the stem's 3 x 3 convolution through the same kernel),
//!   `depthwise_conv` and `depthwise_kernel` (3 x 3 and 5 x 5 depthwise
//!   convolutions with their clip, rewritten into one op that runs the
//!   worker's own kernel; `depthwise_x86` serves the others),
//!   `conv_operands` (what those rewrites read from a convolution node),
//!   `expand_depthwise` (an expansion and the depthwise convolution after
//!   it, a few rows at a time, where the expanded image is large),
//!   `threads` (how many cores one inference uses), `profile` (where one run of a plan
//!   spends its time, node by node: `verdict-worker bench --profile`),
//!   `image_encoder` and `text_encoder` (the default kind's graphs),
//!   `face_detector` (MTCNN's faces, evidence of the default kind);
//! - `bounded_cache` (LRU caches by image key or text), `image_key` (an
//!   image's key in them: a BLAKE3 hash of its bytes), `error` (a job's
//!   failure codes).

mod bounded_cache;
mod conv_operands;
mod depthwise_conv;
mod depthwise_kernel;
#[cfg(target_arch = "x86_64")]
pub mod depthwise_x86;
mod error;
mod expand_depthwise;
pub mod face_detector;
pub mod image_encoder;
pub mod image_key;
pub mod image_preprocess;
pub mod label_grounded;
mod load_error;
mod noop;
pub mod ofa_ve;
pub mod onnx_graph;
pub mod pack;
mod patch_conv;
pub mod pointwise_conv;
mod pointwise_kernel;
pub mod profile;
pub mod text_encoder;
pub mod texts;
pub mod threads;

pub use error::JudgeError;
pub use load_error::LoadError;
pub use noop::NoopJudge;

use std::path::Path;
use std::sync::Arc;

use verdict_shared::queue::metrics::CacheCount;
use verdict_shared::verdict::SentenceVerdict;

/// Something that judges sentences against an image.
///
/// Implementations are CPU-bound and synchronous; async callers run them on a
/// blocking thread. They must be safe to share between threads.
pub trait Judge: Send + Sync {
    /// The model's name and version, for logs and the worker's record.
    fn model_name(&self) -> &str;

    /// Judges every sentence against the image, returning verdicts in the order
    /// of `texts`. `image` is the encoded file (PNG, JPEG, ...) as submitted.
    ///
    /// `premise`, when given, is a text that holds together with the image: the
    /// question becomes "do the image and the premise imply the sentence?". A
    /// kind that cannot use one refuses the job with
    /// [`JudgeError::PremiseUnsupported`] rather than ignore it.
    fn judge(
        &self,
        image: &[u8],
        texts: &[String],
        premise: Option<&str>,
    ) -> Result<Vec<SentenceVerdict>, JudgeError>;

    /// Bytes of address space a judgement needs beside the model and the
    /// decoded image (activations, scratch, the thread it runs on). Under a
    /// memory limit the decoder leaves them free, and a worker whose limit
    /// leaves less refuses to start (`memory_budget`).
    fn working_bytes(&self) -> u64 {
        0
    }

    /// Hits and misses of the judge's caches since it was loaded, for
    /// `/metrics`; none for a judge without caches.
    fn cache_counts(&self) -> Vec<CacheCount> {
        Vec::new()
    }
}

/// The model kinds this worker implements (a manifest's `kind`).
pub const KINDS: [&str; 2] = [label_grounded::KIND, ofa_ve::KIND];

/// Loads the model pack in `dir` (verifying every file) and returns the judge
/// for its kind.
pub fn load(dir: &Path) -> Result<Arc<dyn Judge>, LoadError> {
    let judge = pack::Pack::load_verified(dir, |pack| {
        let judge: Arc<dyn Judge> = match pack.manifest().kind.as_str() {
            label_grounded::KIND => Arc::new(label_grounded::LabelGroundedJudge::load(pack)?),
            ofa_ve::KIND => Arc::new(ofa_ve::OfaJudge::load(pack)?),
            other => {
                return Err(LoadError::UnknownKind {
                    path: pack.manifest_path().to_path_buf(),
                    kind: other.to_string(),
                    known: KINDS.join(", "),
                });
            }
        };
        Ok(judge)
    })?;
    verdict_shared::heap::release_freed();
    Ok(judge)
}
