//! Why a judgement failed, with a stable code for the job's error, and
//! whether trying again can help.

use verdict_decode::DecodeError;

/// A judgement that could not be made.
///
/// Most variants are *permanent*: they are caused by the input, or by the
/// model, which is deterministic (the same input and pack give the same
/// answer, its failures included), so judging the same job again would fail
/// again and the job is failed at once. Two are *transient*, because they
/// come from the state of the process, not from the job:
///
/// - [`JudgeError::OutOfMemory`]: tract could not allocate a tensor. Under a
///   memory limit (`--worker-memory`) what is spare depends on what else the
///   process holds at that moment (the other jobs of a read, the caches), so
///   another attempt, here or on another worker, can succeed.
/// - [`JudgeError::Interrupted`]: the blocking task that runs the judgement
///   was cancelled before it ended (the runtime shutting down): the job was
///   never judged.
///
/// The others that are not the job's fault leave no error to classify: an
/// allocation that fails outside tract aborts the process (Rust's
/// `handle_alloc_error`), and the job is retried as `worker_lost` by the
/// attempt count; the worker has no time limit per inference (a hung worker
/// is killed by the watchdog and its job reclaimed the same way).
#[derive(Debug, thiserror::Error)]
pub enum JudgeError {
    #[error(transparent)]
    Image(#[from] DecodeError),
    #[error("no sentence to judge")]
    NoTexts,
    #[error("{count} sentences, more than the limit of {max}")]
    TooManyTexts { count: usize, max: usize },
    /// `index` counts from 0; the message counts from 1, as people do.
    #[error("sentence {} is empty or has nothing to judge (fewer than two letters or digits)", .index + 1)]
    TextEmpty { index: usize },
    #[error("sentence {} has {chars} characters, more than the limit of {max}", .index + 1)]
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
    /// Transient: the model could not allocate what one inference needs.
    #[error("out of memory while judging: {0}")]
    OutOfMemory(String),
    /// Transient: the judgement did not run to its end.
    #[error("the judgement was interrupted: {0}")]
    Interrupted(String),
    /// Transient, and only in a worker built with the `test-hooks` feature:
    /// a failure injected by the test-only `FaultyJudge`.
    #[cfg(any(test, feature = "test-hooks"))]
    #[error("{0}")]
    Injected(String),
}

impl JudgeError {
    /// The stable code stored in a failed job's `error.code` (for a transient
    /// error: in its `last_error`).
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
            JudgeError::OutOfMemory(_) => "out_of_memory",
            JudgeError::Interrupted(_) => "judge_interrupted",
            #[cfg(any(test, feature = "test-hooks"))]
            JudgeError::Injected(_) => "test_transient",
        }
    }

    /// Whether retrying the same input can only fail again (see the type's
    /// documentation for which errors are transient and why).
    pub fn is_permanent(&self) -> bool {
        match self {
            JudgeError::OutOfMemory(_) | JudgeError::Interrupted(_) => false,
            #[cfg(any(test, feature = "test-hooks"))]
            JudgeError::Injected(_) => false,
            JudgeError::Image(_)
            | JudgeError::NoTexts
            | JudgeError::TooManyTexts { .. }
            | JudgeError::TextEmpty { .. }
            | JudgeError::TextTooLong { .. }
            | JudgeError::PremiseEmpty
            | JudgeError::PremiseTooLong { .. }
            | JudgeError::PremiseUnsupported { .. }
            | JudgeError::Model(_) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_failures_of_the_process_are_transient() {
        let cases: Vec<(JudgeError, &str, bool)> = vec![
            (
                JudgeError::Image(DecodeError::Invalid("bad".into())),
                "image_decode",
                true,
            ),
            (JudgeError::NoTexts, "no_texts", true),
            (
                JudgeError::TooManyTexts { count: 65, max: 64 },
                "too_many_texts",
                true,
            ),
            (JudgeError::TextEmpty { index: 0 }, "text_empty", true),
            (
                JudgeError::TextTooLong {
                    index: 0,
                    chars: 1001,
                    max: 1000,
                },
                "text_too_long",
                true,
            ),
            (JudgeError::PremiseEmpty, "premise_empty", true),
            (
                JudgeError::PremiseTooLong {
                    chars: 1001,
                    max: 1000,
                },
                "premise_too_long",
                true,
            ),
            (
                JudgeError::PremiseUnsupported { model: "m".into() },
                "premise_unsupported",
                true,
            ),
            (JudgeError::Model("shape".into()), "model_error", true),
            (
                JudgeError::OutOfMemory("a tensor".into()),
                "out_of_memory",
                false,
            ),
            (
                JudgeError::Interrupted("cancelled".into()),
                "judge_interrupted",
                false,
            ),
            (
                JudgeError::Injected("attempt 1".into()),
                "test_transient",
                false,
            ),
        ];
        for (error, code, permanent) in cases {
            assert_eq!(error.code(), code, "{error:?}");
            assert_eq!(error.is_permanent(), permanent, "{error:?}");
        }
    }
}
