//! TEST-ONLY fault injection, so that end-to-end tests can make a real worker
//! process misbehave on a chosen job. Off unless a test sets one of these
//! environment variables; never set them in production:
//!
//! - `VERDICT_TEST_ABORT_ON_TEXT=SENTENCE`: a job with a sentence equal to
//!   SENTENCE makes the worker call `abort()` before judging it (a poison
//!   job: SIGABRT, no cleanup, the job still pending);
//! - `VERDICT_TEST_TRANSIENT_ON_TEXT=N:SENTENCE[|N:SENTENCE...]`: a job with
//!   that sentence fails with a transient error (`test_transient`) on its
//!   first N attempts, so that the retry path runs with a real worker.
//!
//! The worker logs a warning at start when any hook is armed.

/// The armed hooks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TestHooks {
    abort_on: Option<String>,
    transient_on: Vec<(u32, String)>,
}

/// What a hook decided for one attempt of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Injected {
    /// Fail this attempt transiently with this message.
    Transient(String),
}

impl TestHooks {
    pub const ABORT_ON_TEXT: &'static str = "VERDICT_TEST_ABORT_ON_TEXT";
    pub const TRANSIENT_ON_TEXT: &'static str = "VERDICT_TEST_TRANSIENT_ON_TEXT";

    /// The hooks named by the environment (none, normally).
    pub fn from_env() -> TestHooks {
        let abort_on = std::env::var(Self::ABORT_ON_TEXT)
            .ok()
            .filter(|s| !s.is_empty());
        let transient_on = std::env::var(Self::TRANSIENT_ON_TEXT)
            .map(|specs| specs.split('|').filter_map(parse_transient).collect())
            .unwrap_or_default();
        TestHooks {
            abort_on,
            transient_on,
        }
    }

    /// Whether any hook is armed.
    pub fn armed(&self) -> bool {
        self.abort_on.is_some() || !self.transient_on.is_empty()
    }

    /// Called before judging attempt `attempt` (1-based) of a job: aborts the
    /// process, injects a transient failure, or does nothing.
    pub fn before_judge(&self, texts: &[String], attempt: u32) -> Option<Injected> {
        if let Some(trigger) = &self.abort_on
            && texts.iter().any(|t| t == trigger)
        {
            tracing::error!(attempt, "TEST HOOK {}: aborting", Self::ABORT_ON_TEXT);
            std::process::abort();
        }
        self.transient_on
            .iter()
            .find(|(times, trigger)| attempt <= *times && texts.iter().any(|t| t == trigger))
            .map(|(times, _)| {
                Injected::Transient(format!(
                    "test hook {}: attempt {attempt} of the first {times} fails",
                    Self::TRANSIENT_ON_TEXT
                ))
            })
    }
}

fn parse_transient(spec: &str) -> Option<(u32, String)> {
    let (times, text) = spec.split_once(':')?;
    let times = times.trim().parse().ok()?;
    (!text.is_empty()).then(|| (times, text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_failures_stop_after_the_given_attempts() {
        let hooks = TestHooks {
            abort_on: None,
            transient_on: "2:flaky|9:broken"
                .split('|')
                .filter_map(parse_transient)
                .collect(),
        };
        let texts = vec!["a".to_string(), "flaky".to_string()];
        assert!(hooks.before_judge(&texts, 1).is_some());
        assert!(hooks.before_judge(&texts, 2).is_some());
        assert_eq!(hooks.before_judge(&texts, 3), None);
        assert_eq!(hooks.before_judge(&["a".to_string()], 1), None);
        assert!(hooks.before_judge(&["broken".to_string()], 9).is_some());
    }

    #[test]
    fn nothing_is_armed_by_default_and_bad_specs_arm_nothing() {
        assert!(!TestHooks::default().armed());
        assert_eq!(parse_transient("x:flaky"), None);
        assert_eq!(parse_transient("3:"), None);
        assert_eq!(parse_transient("flaky"), None);
    }
}
