//! A judge that takes a set time, for tests and benchmarks without a model.
//!
//! `verdict-worker run --noop --noop-delay-ms N` wraps the no-op judge in it:
//! each job then holds the worker for N ms, like inference would, which lets a
//! test catch a worker with a job in hand (graceful shutdown) and a benchmark
//! measure the queue under a realistic service time.

use std::time::Duration;

use verdict_shared::verdict::SentenceVerdict;

use crate::engine::{Judge, JudgeError};

/// Sleeps, then asks the inner judge.
pub struct DelayedJudge<J> {
    inner: J,
    delay: Duration,
    name: String,
}

impl<J: Judge> DelayedJudge<J> {
    pub fn new(inner: J, delay: Duration) -> DelayedJudge<J> {
        let name = format!(
            "{} + {} ms simulated delay",
            inner.model_name(),
            delay.as_millis()
        );
        DelayedJudge { inner, delay, name }
    }
}

impl<J: Judge> Judge for DelayedJudge<J> {
    fn model_name(&self) -> &str {
        &self.name
    }

    fn judge(
        &self,
        image: &[u8],
        texts: &[String],
        premise: Option<&str>,
    ) -> Result<Vec<SentenceVerdict>, JudgeError> {
        std::thread::sleep(self.delay);
        self.inner.judge(image, texts, premise)
    }
}
