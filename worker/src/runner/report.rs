//! Reporting what only the worker knows to `verdict:metrics`, for `/metrics`:
//! queue wait, inference and end-to-end times, verdict labels, failure codes
//! and the engine's cache hits (see `shared/src/queue/metrics.rs`).
//!
//! A job's report travels with its finish (the finish script adds it), so it
//! costs no round trip of its own and is counted exactly when the job ends.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use verdict_shared::job::Job;
use verdict_shared::queue::Outcome;
use verdict_shared::queue::metrics::{CacheCount, JobReport};

use super::Context;

/// Remembers the cache totals already reported, to send only what is new.
#[derive(Debug, Default)]
pub struct Reporter {
    reported: Mutex<HashMap<&'static str, (u64, u64)>>,
}

impl Reporter {
    /// This job's figures. `since_start` is the time since the start script
    /// answered: the end-to-end time is the queue wait (both ends on Redis's
    /// clock) plus that (this host's monotonic clock), so hosts whose clocks
    /// disagree still report true times.
    pub fn job_report(
        &self,
        ctx: &Context,
        job: &Job,
        inference: Duration,
        since_start: Duration,
        outcome: &Outcome,
    ) -> JobReport {
        let queue_wait = job
            .started_at
            .map(|started| (started - job.submitted_at).as_seconds_f64());
        JobReport {
            queue_wait,
            inference: inference.as_secs_f64(),
            end_to_end: queue_wait.map(|wait| wait + since_start.as_secs_f64()),
            labels: match outcome {
                Outcome::Done(verdicts) => verdicts.iter().map(|v| v.label).collect(),
                Outcome::Failed(_) => Vec::new(),
            },
            failed_code: match outcome {
                Outcome::Failed(error) => Some(error.code.clone()),
                Outcome::Done(_) => None,
            },
            cache: self.new_cache_counts(ctx.judge.cache_counts()),
        }
    }

    /// Takes back the cache counts of a report that was not stored (the
    /// finish did not happen here), so that the next report carries them.
    pub fn not_stored(&self, report: &JobReport) {
        let mut reported = self
            .reported
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for count in &report.cache {
            if let Some((hits, misses)) = reported.get_mut(count.cache) {
                *hits = hits.saturating_sub(count.hits);
                *misses = misses.saturating_sub(count.misses);
            }
        }
    }

    /// The hits and misses since the last report, given the totals now.
    fn new_cache_counts(&self, totals: Vec<CacheCount>) -> Vec<CacheCount> {
        let mut reported = self
            .reported
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        totals
            .into_iter()
            .map(|total| {
                let before = reported.insert(total.cache, (total.hits, total.misses));
                let (hits, misses) = before.unwrap_or((0, 0));
                CacheCount {
                    cache: total.cache,
                    hits: total.hits.saturating_sub(hits),
                    misses: total.misses.saturating_sub(misses),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_new_counts_are_reported() {
        let reporter = Reporter::default();
        let total = |hits, misses| {
            vec![CacheCount {
                cache: "image",
                hits,
                misses,
            }]
        };
        assert_eq!(reporter.new_cache_counts(total(2, 3)), total(2, 3));
        assert_eq!(reporter.new_cache_counts(total(5, 3)), total(3, 0));
        // A report that was not stored gives its counts back.
        let lost = JobReport {
            cache: reporter.new_cache_counts(total(6, 4)),
            ..JobReport::default()
        };
        assert_eq!(lost.cache, total(1, 1));
        reporter.not_stored(&lost);
        assert_eq!(reporter.new_cache_counts(total(6, 4)), total(1, 1));
    }
}
