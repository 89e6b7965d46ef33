//! The inference engine: turns an image and sentences into verdicts.
//!
//! A [`Judge`] is loaded once per worker process from a model pack (see
//! `docs/model-pack.md`) and then called for every job. The trait names no model
//! kind, so the queue code never changes when a pack of another kind arrives.

mod error;
mod noop;

pub use error::JudgeError;
pub use noop::NoopJudge;

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
    fn judge(&self, image: &[u8], texts: &[String]) -> Result<Vec<SentenceVerdict>, JudgeError>;
}
