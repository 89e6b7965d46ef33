//! Turning what the judge said into how the job ends.
//!
//! - verdicts, one per sentence: `done`;
//! - a permanent [`JudgeError`] (the image does not decode, a sentence is
//!   empty, ...): `failed` at once with the error's stable code and message —
//!   judging the same input again would fail again;
//! - a transient error: no ending; the job is given back (`retry.lua`) and
//!   started again after a backoff, until its attempts run out and it is
//!   dead-lettered. Besides the judge's own transient errors, the blocking
//!   task that ran it may have been cancelled (`judge_interrupted`) or
//!   panicked because tract could not allocate a tensor (`out_of_memory`);
//! - any other panic in the judge, or a wrong number of verdicts: `failed`,
//!   so that a job that trips a bug cannot loop.

use verdict_shared::job::JobError;
use verdict_shared::queue::Outcome;
use verdict_shared::verdict::SentenceVerdict;

use super::judge_thread::Unjudged;
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
        Err(err) => retry(err),
    }
}

/// Decides how a job ends whose named image could not be fetched: failed at
/// once when fetching again cannot help (a host off the list, a 404, a
/// missing file), given back for another attempt when it may (a timeout, a
/// 5xx, a read error).
pub fn fetch_failed(failure: crate::image_fetch::FetchFailure) -> Decision {
    if failure.transient {
        Decision::Retry(failure.error)
    } else {
        Decision::Finish(Outcome::Failed(failure.error))
    }
}

/// Decides how a job ends when the judge thread gave no answer: the judge
/// panicked, or the thread is gone.
pub fn unjudged(unjudged: Unjudged) -> Decision {
    let payload = match unjudged {
        Unjudged::Gone => {
            return retry(JudgeError::Interrupted(
                "the judge thread is gone".to_owned(),
            ));
        }
        Unjudged::Panicked(payload) => payload,
    };
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic with a non-text payload".to_owned());
    panicked(&message)
}

/// Decides how a job ends whose judge panicked with `message`: tract's
/// failure to allocate a tensor is transient (what is spare under a memory
/// limit depends on what the process holds at that moment), any other panic
/// is a bug that would trip again.
pub fn panicked(message: &str) -> Decision {
    if is_allocation_failure(message) {
        return retry(JudgeError::OutOfMemory(message.to_owned()));
    }
    Decision::Finish(Outcome::Failed(JobError::new(
        "judge_panicked",
        format!("the judge crashed on this job: {message}"),
    )))
}

/// The panics of tract-data's `Blob` when `alloc` returns null (tract
/// 0.23: `for_layout` and `ensure_size_and_align`).
fn is_allocation_failure(message: &str) -> bool {
    message.starts_with("failed to allocate") || message == "assertion failed: !self.data.is_null()"
}

fn retry(err: JudgeError) -> Decision {
    Decision::Retry(JobError::new(err.code(), err.to_string()))
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
    fn a_panic_fails_the_job_unless_tract_could_not_allocate() {
        let cases = [
            ("index out of bounds", Some("judge_panicked"), None),
            ("attempt to divide by zero", Some("judge_panicked"), None),
            (
                "failed to allocate Layout { size: 1073741824, align: 128 (1 << 7) }",
                None,
                Some("out_of_memory"),
            ),
            (
                "assertion failed: !self.data.is_null()",
                None,
                Some("out_of_memory"),
            ),
        ];
        for (message, failed, retried) in cases {
            match panicked(message) {
                Decision::Finish(Outcome::Failed(error)) => {
                    assert_eq!(Some(error.code.as_str()), failed, "{message}");
                    assert!(error.message.contains(message), "{}", error.message);
                }
                Decision::Retry(error) => {
                    assert_eq!(Some(error.code.as_str()), retried, "{message}");
                    assert!(error.message.contains(message), "{}", error.message);
                }
                other => panic!("{message}: unexpected {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn a_judge_that_panics_on_the_judge_thread_is_classified_by_its_message() {
        let thread = super::super::judge_thread::JudgeThread::start().unwrap();
        let judged = |message: &'static str| {
            let run = thread.run(move || -> () { std::panic::panic_any(message) });
            async move { unjudged(run.await.answer.expect_err("it panicked")) }
        };
        let Decision::Finish(Outcome::Failed(error)) = judged("boom").await else {
            panic!("a panic fails the job");
        };
        assert_eq!(error.code, "judge_panicked");
        assert!(error.message.contains("boom"), "{}", error.message);
        let Decision::Retry(error) = judged("failed to allocate Layout { size: 8 }").await else {
            panic!("an allocation failure is retried");
        };
        assert_eq!(error.code, "out_of_memory");
        let Decision::Retry(error) = unjudged(Unjudged::Gone) else {
            panic!("a lost judge thread gives the job back");
        };
        assert_eq!(error.code, "judge_interrupted");
    }

    #[test]
    fn transient_judge_errors_give_the_job_back() {
        let cases = [
            (JudgeError::OutOfMemory("a tensor".into()), "out_of_memory"),
            (
                JudgeError::Interrupted("cancelled".into()),
                "judge_interrupted",
            ),
            (JudgeError::Injected("attempt 1".into()), "test_transient"),
        ];
        for (err, code) in cases {
            let Decision::Retry(error) = decide(Err(err), &texts()) else {
                panic!("{code}: expected a retry");
            };
            assert_eq!(error.code, code);
        }
    }
}
