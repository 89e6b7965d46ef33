//! Reporting what only the worker knows to `verdict:metrics`, for `/metrics`:
//! queue wait, inference and end-to-end times, verdict labels, failure codes
//! and the engine's cache hits (see `shared/src/queue/metrics.rs`).
//!
//! Reported after each job this worker finished; a report that cannot be
//! written is logged and dropped (metrics must never hold a job up).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use time::OffsetDateTime;
use verdict_shared::job::Job;
use verdict_shared::queue::Outcome;
use verdict_shared::queue::metrics::{CacheCount, JobReport, record};

use super::Context;

/// Remembers the cache totals already reported, to send only what is new.
#[derive(Debug, Default)]
pub struct Reporter {
    reported: Mutex<HashMap<&'static str, (u64, u64)>>,
}

impl Reporter {
    /// Adds this job's figures to the fleet's metrics.
    pub async fn job_finished(
        &self,
        ctx: &Context,
        job: &Job,
        finished_at: OffsetDateTime,
        inference: Duration,
        outcome: &Outcome,
    ) {
        let report = JobReport {
            queue_wait: job
                .started_at
                .map(|started| (started - job.submitted_at).as_seconds_f64()),
            inference: inference.as_secs_f64(),
            end_to_end: Some((finished_at - job.submitted_at).as_seconds_f64()),
            labels: match outcome {
                Outcome::Done(verdicts) => verdicts.iter().map(|v| v.label).collect(),
                Outcome::Failed(_) => Vec::new(),
            },
            failed_code: match outcome {
                Outcome::Failed(error) => Some(error.code.clone()),
                Outcome::Done(_) => None,
            },
            cache: self.new_cache_counts(ctx.judge.cache_counts()),
        };
        let written = async {
            let mut conn = ctx.pool.get().await?;
            record(&mut conn, &report).await
        }
        .await;
        if let Err(err) = written {
            tracing::warn!(job_id = %job.id, error = %err, "metrics not recorded for this job");
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
    }
}
