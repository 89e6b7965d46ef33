//! Turning what the judge said into how the job ends.
//!
//! - verdicts, one per sentence: `done`;
//! - a permanent [`JudgeError`] (the image does not decode, a sentence is
//!   empty, ...): `failed` at once with the error's stable code and message —
//!   judging the same input again would fail again;
//! - a transient error: no ending; the job is given back (`retry.lua`) and
//!   started again after a backoff, until its attempts run out and it is
//!   dead-lettered;
//! - a panic in the judge, or a wrong number of verdicts: `failed`, so that a
//!   job that trips a bug cannot loop.

use verdict_shared::job::JobError;
use verdict_shared::queue::Outcome;
use verdict_shared::verdict::SentenceVerdict;

use crate::engine::JudgeError;

/// What to do with a judged job.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Store this ending.
    Finish(Outcome),
    /// Give the job back for another attempt after a backoff, for this reason.
    Retry(JobError),
}

/// Decides how a job ends from the judge's answer.
pub fn decide(result: Result<Vec<SentenceVerdict>, JudgeError>, texts: &[String]) -> Decision {
    match result {
        Ok(verdicts) if verdicts.len() == texts.len() => Decision::Finish(Outcome::Done(verdicts)),
        Ok(verdicts) => Decision::Finish(Outcome::Failed(JobError::new(
            "model_error",
            format!(
                "the model returned {} verdicts for {} sentences",
                verdicts.len(),
                texts.len()
            ),
        ))),
        Err(err) if err.is_permanent() => {
            Decision::Finish(Outcome::Failed(JobError::new(err.code(), err.to_string())))
        }
        Err(err) => Decision::Retry(JobError::new(err.code(), err.to_string())),
    }
}

/// The ending of a job whose judge panicked.
pub fn panicked(message: &str) -> Outcome {
    Outcome::Failed(JobError::new(
        "judge_panicked",
        format!("the judge crashed on this job: {message}"),
    ))
}

#[cfg(test)]
mod tests {
    use verdict_shared::verdict::{Explanation, Label, Scores};

    use super::*;
    use crate::engine::Judge;

    /// A judge that refuses every image as undecodable, like the real engine
    /// does for a truncated file.
    struct UndecodableJudge;

    impl Judge for UndecodableJudge {
        fn model_name(&self) -> &str {
            "undecodable"
        }
        fn judge(
            &self,
            _: &[u8],
            _: &[String],
            _: Option<&str>,
        ) -> Result<Vec<SentenceVerdict>, JudgeError> {
            Err(JudgeError::Image(verdict_decode::DecodeError::Invalid(
                "unexpected end of file".into(),
            )))
        }
    }

    /// A judge that forgets the last sentence.
    struct ShortJudge;

    impl Judge for ShortJudge {
        fn model_name(&self) -> &str {
            "short"
        }
        fn judge(
            &self,
            _: &[u8],
            texts: &[String],
            _: Option<&str>,
        ) -> Result<Vec<SentenceVerdict>, JudgeError> {
            Ok(texts
                .iter()
                .skip(1)
                .map(|text| SentenceVerdict {
                    text: text.clone(),
                    label: Label::Yes,
                    scores: Scores::from_weights(1.0, 0.0, 0.0),
                    explanation: Explanation::default(),
                })
                .collect())
        }
    }

    fn texts() -> Vec<String> {
        vec![
            "This is a ceramic coffee cup.".into(),
            "This is a stainless steel thermos.".into(),
        ]
    }

    #[test]
    fn an_undecodable_image_fails_at_once_with_its_code() {
        let decision = decide(
            UndecodableJudge.judge(b"\x89PNG\r\n\x1a\n", &texts(), None),
            &texts(),
        );
        let Decision::Finish(Outcome::Failed(error)) = decision else {
            panic!("expected a failed ending, got {decision:?}");
        };
        assert_eq!(error.code, "image_decode");
        assert!(
            error.message.contains("unexpected end of file"),
            "{}",
            error.message
        );
    }

    #[test]
    fn verdicts_for_every_sentence_are_done() {
        let decision = decide(
            crate::engine::NoopJudge.judge(b"img", &texts(), None),
            &texts(),
        );
        let Decision::Finish(Outcome::Done(verdicts)) = decision else {
            panic!("expected done, got {decision:?}");
        };
        assert_eq!(verdicts.len(), 2);
        assert_eq!(verdicts[1].text, texts()[1]);
    }

    #[test]
    fn a_wrong_number_of_verdicts_fails_instead_of_storing_a_misaligned_result() {
        let decision = decide(ShortJudge.judge(b"img", &texts(), None), &texts());
        let Decision::Finish(Outcome::Failed(error)) = decision else {
            panic!("expected failed, got {decision:?}");
        };
        assert_eq!(error.code, "model_error");
    }

    #[test]
    fn a_panic_fails_the_job() {
        let Outcome::Failed(error) = panicked("index out of bounds") else {
            panic!("expected failed");
        };
        assert_eq!(error.code, "judge_panicked");
    }
}
