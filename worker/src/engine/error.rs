//! Why a judgement failed, with a stable code for the job's error.

use verdict_decode::DecodeError;

/// A judgement that could not be made.
///
/// Every variant caused by the input is *permanent*: judging the same input again
/// would fail again, so the job is marked failed at once instead of retried.
#[derive(Debug, thiserror::Error)]
pub enum JudgeError {
    #[error(transparent)]
    Image(#[from] DecodeError),
    #[error("no sentence to judge")]
    NoTexts,
    #[error("{count} sentences, more than the limit of {max}")]
    TooManyTexts { count: usize, max: usize },
    #[error("sentence {index} is empty or has nothing to judge (fewer than two letters or digits)")]
    TextEmpty { index: usize },
    #[error("sentence {index} has {chars} characters, more than the limit of {max}")]
    TextTooLong {
        index: usize,
        chars: usize,
        max: usize,
    },
    #[error("the premise is empty or has nothing in it (fewer than two letters or digits)")]
    PremiseEmpty,
    #[error("the premise has {chars} characters, more than the limit of {max}")]
    PremiseTooLong { chars: usize, max: usize },
    #[error(
        "this model ({model}) judges sentences against the image alone and cannot use a premise"
    )]
    PremiseUnsupported { model: String },
    #[error("the model failed: {0}")]
    Model(String),
}

impl JudgeError {
    /// The stable code stored in a failed job's `error.code`.
    pub fn code(&self) -> &'static str {
        match self {
            JudgeError::Image(err) => err.code(),
            JudgeError::NoTexts => "no_texts",
            JudgeError::TooManyTexts { .. } => "too_many_texts",
            JudgeError::TextEmpty { .. } => "text_empty",
            JudgeError::TextTooLong { .. } => "text_too_long",
            JudgeError::PremiseEmpty => "premise_empty",
            JudgeError::PremiseTooLong { .. } => "premise_too_long",
            JudgeError::PremiseUnsupported { .. } => "premise_unsupported",
            JudgeError::Model(_) => "model_error",
        }
    }

    /// Whether retrying the same input can only fail again.
    pub fn is_permanent(&self) -> bool {
        // The model is deterministic, so even its own failures repeat.
        true
    }
}
