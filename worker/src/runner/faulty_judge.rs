//! TEST-ONLY fault injection, so that end-to-end tests can make a real worker
//! process misbehave on a chosen job. Compiled only with the `test-hooks`
//! feature of `verdict-worker` (the end-to-end tests enable it through their
//! dev-dependency; release builds never do) and for this crate's unit tests.
//! Even then off unless a test sets one of these environment variables:
//!
//! - `VERDICT_TEST_ABORT_ON_TEXT=SENTENCE`: a job with a sentence equal to
//!   SENTENCE makes the worker call `abort()` instead of judging it (a poison
//!   job: SIGABRT, no cleanup, the job still pending);
//! - `VERDICT_TEST_TRANSIENT_ON_TEXT=N:SENTENCE[|N:SENTENCE...]`: a job with
//!   that sentence fails with a transient error (`test_transient`) on its
//!   first N attempts, so that the retry path runs with a real worker.
//!
//! The faults act through [`FaultyJudge`], a [`Judge`] that wraps the loaded
//! one. The `Judge` trait does not see a job's attempt number, so the run
//! loop wraps the judge per attempt, where it knows it
//! (`Context::judge_for`). The worker logs a warning at start when a fault
//! is armed.

use std::sync::Arc;

use verdict_shared::queue::metrics::CacheCount;
use verdict_shared::verdict::SentenceVerdict;

use crate::engine::{Judge, JudgeError};

/// The faults armed by the environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    abort_on: Option<String>,
    transient_on: Vec<(u32, String)>,
}

/// What the faults decide for one attempt of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Fault {
    /// Judge as usual.
    None,
    /// Abort the process.
    Abort,
    /// Fail this attempt transiently, one of the first `times`.
    Transient { times: u32 },
}

impl Faults {
    pub const ABORT_ON_TEXT: &'static str = "VERDICT_TEST_ABORT_ON_TEXT";
    pub const TRANSIENT_ON_TEXT: &'static str = "VERDICT_TEST_TRANSIENT_ON_TEXT";

    /// The faults named by the environment, logged with a warning; `None`
    /// (normally) when none is armed.
    pub fn armed_from_env() -> Option<Arc<Faults>> {
        let faults = Faults::parse(
            std::env::var(Self::ABORT_ON_TEXT).ok().as_deref(),
            std::env::var(Self::TRANSIENT_ON_TEXT).ok().as_deref(),
        );
        let armed = faults.abort_on.is_some() || !faults.transient_on.is_empty();
        armed.then(|| {
            tracing::warn!(
                ?faults,
                "TEST HOOKS ARMED: this worker will misbehave on purpose (never in production)"
            );
            Arc::new(faults)
        })
    }

    fn parse(abort_on: Option<&str>, transient_on: Option<&str>) -> Faults {
        Faults {
            abort_on: abort_on.filter(|s| !s.is_empty()).map(str::to_owned),
            transient_on: transient_on
                .map(|specs| specs.split('|').filter_map(parse_transient).collect())
                .unwrap_or_default(),
        }
    }

    /// The fault for attempt `attempt` (1-based) of a job with these sentences.
    fn decide(&self, texts: &[String], attempt: u32) -> Fault {
        let has = |trigger: &str| texts.iter().any(|t| t == trigger);
        if self.abort_on.as_deref().is_some_and(has) {
            return Fault::Abort;
        }
        self.transient_on
            .iter()
            .find(|(times, trigger)| attempt <= *times && has(trigger))
            .map_or(Fault::None, |(times, _)| Fault::Transient { times: *times })
    }
}

fn parse_transient(spec: &str) -> Option<(u32, String)> {
    let (times, text) = spec.split_once(':')?;
    let times = times.trim().parse().ok()?;
    (!text.is_empty()).then(|| (times, text.to_owned()))
}

/// The loaded judge, misbehaving on the jobs the faults name, for one attempt.
pub struct FaultyJudge {
    inner: Arc<dyn Judge>,
    faults: Arc<Faults>,
    attempt: u32,
}

impl FaultyJudge {
    pub fn new(inner: Arc<dyn Judge>, faults: Arc<Faults>, attempt: u32) -> FaultyJudge {
        FaultyJudge {
            inner,
            faults,
            attempt,
        }
    }
}

impl Judge for FaultyJudge {
    fn model_name(&self) -> &str {
        self.inner.model_name()
    }

    fn judge(
        &self,
        image: &[u8],
        texts: &[String],
        premise: Option<&str>,
    ) -> Result<Vec<SentenceVerdict>, JudgeError> {
        let attempt = self.attempt;
        match self.faults.decide(texts, attempt) {
            Fault::None => self.inner.judge(image, texts, premise),
            Fault::Abort => {
                tracing::error!(attempt, "TEST HOOK {}: aborting", Faults::ABORT_ON_TEXT);
                std::process::abort();
            }
            Fault::Transient { times } => Err(JudgeError::Injected(format!(
                "test hook {}: attempt {attempt} of the first {times} fails",
                Faults::TRANSIENT_ON_TEXT
            ))),
        }
    }

    fn working_bytes(&self) -> u64 {
        self.inner.working_bytes()
    }

    fn cache_counts(&self) -> Vec<CacheCount> {
        self.inner.cache_counts()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::NoopJudge;

    fn texts(texts: &[&str]) -> Vec<String> {
        texts.iter().map(|t| (*t).to_owned()).collect()
    }

    #[test]
    fn the_faults_are_decided_by_sentence_and_attempt() {
        let faults = Faults::parse(Some("poison"), Some("2:flaky|9:broken"));
        let cases: [(&[&str], u32, Fault); 8] = [
            (&["a"], 1, Fault::None),
            (&["a", "flaky"], 1, Fault::Transient { times: 2 }),
            (&["a", "flaky"], 2, Fault::Transient { times: 2 }),
            (&["a", "flaky"], 3, Fault::None),
            (&["broken"], 9, Fault::Transient { times: 9 }),
            (&["broken"], 10, Fault::None),
            (&["poison"], 1, Fault::Abort),
            // The abort wins over a transient failure, at any attempt.
            (&["flaky", "poison"], 7, Fault::Abort),
        ];
        for (sentences, attempt, fault) in cases {
            assert_eq!(
                faults.decide(&texts(sentences), attempt),
                fault,
                "{sentences:?} at attempt {attempt}"
            );
        }
    }

    #[test]
    fn bad_specs_arm_nothing() {
        let cases = [
            (None, None),
            (Some(""), Some("")),
            (None, Some("x:flaky")),
            (None, Some("3:")),
            (None, Some("flaky")),
        ];
        for (abort_on, transient_on) in cases {
            assert_eq!(
                Faults::parse(abort_on, transient_on),
                Faults::default(),
                "{abort_on:?} {transient_on:?}"
            );
        }
    }

    #[test]
    fn the_wrapper_fails_transiently_then_judges_with_the_inner_judge() {
        let faults = Arc::new(Faults::parse(None, Some("1:flaky")));
        let judge_at = |attempt| FaultyJudge::new(Arc::new(NoopJudge), faults.clone(), attempt);
        let flaky = texts(&["flaky"]);

        let err = judge_at(1)
            .judge(b"img", &flaky, None)
            .expect_err("the first attempt fails");
        assert_eq!(err.code(), "test_transient");
        assert!(!err.is_permanent());
        assert!(
            err.to_string().contains("attempt 1 of the first 1"),
            "{err}"
        );

        let verdicts = judge_at(2).judge(b"img", &flaky, None).expect("judged");
        assert_eq!(
            verdicts,
            NoopJudge.judge(b"img", &flaky, None).expect("noop")
        );
        assert_eq!(judge_at(1).model_name(), NoopJudge.model_name());
    }
}
