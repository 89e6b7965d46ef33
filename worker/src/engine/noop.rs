//! A judge that skips inference, for measuring the queue itself.
//!
//! `verdict-worker run --noop` uses it: every sentence gets `maybe` with equal
//! scores and an explanation that says inference was skipped, so nobody can
//! mistake its output for a verdict.

use verdict_shared::verdict::{Explanation, Label, Scores, SentenceVerdict};

use super::{Judge, JudgeError};

/// Answers `maybe` to everything without looking at the image.
#[derive(Debug, Default)]
pub struct NoopJudge;

impl Judge for NoopJudge {
    fn model_name(&self) -> &str {
        "noop (inference skipped)"
    }

    fn judge(
        &self,
        image: &[u8],
        texts: &[String],
        _premise: Option<&str>,
    ) -> Result<Vec<SentenceVerdict>, JudgeError> {
        if image.is_empty() {
            return Err(JudgeError::Image(verdict_decode::DecodeError::Empty));
        }
        if texts.is_empty() {
            return Err(JudgeError::NoTexts);
        }
        Ok(texts
            .iter()
            .map(|text| SentenceVerdict {
                text: text.clone(),
                label: Label::Maybe,
                scores: Scores::from_weights(1.0, 1.0, 1.0),
                explanation: Explanation {
                    summary: "no-op judge: inference was skipped (queue benchmark mode)".into(),
                    ..Explanation::default()
                },
            })
            .collect())
    }
}
