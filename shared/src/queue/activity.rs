//! The fleet's activity minute by minute, for the dashboard (issue 17).
//!
//! `verdict:minute:{unix minute}` is a hash per minute of Redis's clock. The
//! scripts that end a job add to the minute they end it in: `finish.lua`
//! adds the worker's metrics for the job (the fields of `verdict:metrics`,
//! see [`super::metrics`]) and `jobs:done` or `jobs:failed`;
//! `dead_letter.lua` adds `jobs:failed`. The api samples the queue into it
//! (`queued`, `in_flight`, and the largest of each as `queued:max` and
//! `in_flight:max`; [`super::queue_sample`]). Every write renews the hash's
//! TTL of [`KEPT`], so the last hour is always whole and nothing piles up.
//!
//! Reading the last hour is one pipeline of [`MINUTES_SHOWN`] HGETALLs, on
//! Redis's clock (no host's clock is trusted for "now").

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use redis::aio::ConnectionLike;
use serde::{Deserialize, Serialize};

use super::metrics::WorkerMetrics;
use super::{QueueError, keys};

/// How long a minute's hash lives after its last write.
pub const KEPT: Duration = Duration::from_secs(2 * 60 * 60);

/// How many minutes [`last_minutes`] reads: the last hour.
pub const MINUTES_SHOWN: u64 = 60;

/// One minute of the fleet's activity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MinuteActivity {
    /// The minute's start, in milliseconds since the epoch (Redis's clock).
    pub start_ms: u64,
    /// Jobs that ended done in the minute.
    pub done: u64,
    /// Jobs that ended failed in the minute (dead-lettered ones included).
    pub failed: u64,
    /// Verdicts given in the minute, by label.
    pub verdicts: BTreeMap<String, u64>,
    /// Submission to finish, in seconds, of the jobs done in the minute:
    /// median and 95th percentile, interpolated in the histogram's buckets
    /// as Prometheus's `histogram_quantile` does (none when no job ended).
    pub end_to_end_p50_s: Option<f64>,
    pub end_to_end_p95_s: Option<f64>,
    /// Mean time the judge ran, in seconds.
    pub inference_mean_s: Option<f64>,
    /// The queue as the api last sampled it in the minute (none when no api
    /// sampled it): jobs waiting for a worker, jobs a worker holds.
    pub queued: Option<u64>,
    pub in_flight: Option<u64>,
    /// The largest samples of the minute.
    pub queued_max: Option<u64>,
    pub in_flight_max: Option<u64>,
}

impl MinuteActivity {
    /// A minute's hash, read back. Fields that do not parse are skipped.
    pub fn from_fields(start_ms: u64, raw: &HashMap<String, String>) -> MinuteActivity {
        let int = |field: &str| raw.get(field).and_then(|v| v.parse::<u64>().ok());
        let metrics = WorkerMetrics::from_fields(raw);
        let end_to_end = metrics.histograms.get("end_to_end");
        let inference = metrics.histograms.get("inference");
        MinuteActivity {
            start_ms,
            done: int("jobs:done").unwrap_or(0),
            failed: int("jobs:failed").unwrap_or(0),
            verdicts: metrics
                .verdicts
                .iter()
                .map(|(label, n)| (label.to_string(), *n))
                .collect(),
            end_to_end_p50_s: end_to_end.and_then(|h| h.quantile(0.5)),
            end_to_end_p95_s: end_to_end.and_then(|h| h.quantile(0.95)),
            inference_mean_s: inference
                .filter(|h| h.count > 0)
                .map(|h| h.sum / h.count as f64),
            queued: int("queued"),
            in_flight: int("in_flight"),
            queued_max: int("queued:max"),
            in_flight_max: int("in_flight:max"),
        }
    }
}

/// Redis's clock, in whole minutes since the epoch.
pub async fn redis_minute<C: ConnectionLike>(conn: &mut C) -> Result<u64, QueueError> {
    let (seconds, _micros): (u64, u64) = redis::cmd("TIME").query_async(conn).await?;
    Ok(seconds / 60)
}

/// The last `count` minutes, oldest first, the current (unfinished) minute
/// last.
pub async fn last_minutes<C: ConnectionLike>(
    conn: &mut C,
    count: u64,
) -> Result<Vec<MinuteActivity>, QueueError> {
    let now = redis_minute(conn).await?;
    let first = now.saturating_sub(count.saturating_sub(1));
    let mut pipe = redis::pipe();
    for minute in first..=now {
        pipe.cmd("HGETALL").arg(keys::minute(minute));
    }
    let raw: Vec<HashMap<String, String>> = pipe.query_async(conn).await?;
    Ok((first..=now)
        .zip(raw)
        .map(|(minute, fields)| MinuteActivity::from_fields(minute * 60_000, &fields))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minute_reads_its_jobs_latencies_and_queue_samples() {
        let raw: HashMap<String, String> = [
            ("jobs:done", "3"),
            ("jobs:failed", "1"),
            ("verdicts:yes", "2"),
            ("verdicts:no", "1"),
            // Three end-to-end times in the 0.05..0.1 s bucket (index 4).
            ("end_to_end:bucket:4", "3"),
            ("end_to_end:sum", "0.2"),
            ("inference:bucket:4", "3"),
            ("inference:sum", "0.06"),
            ("queued", "7"),
            ("queued:max", "12"),
            ("in_flight", "2"),
            ("garbage", "x"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let minute = MinuteActivity::from_fields(60_000, &raw);
        assert_eq!((minute.done, minute.failed), (3, 1));
        assert_eq!(minute.verdicts["yes"], 2);
        assert_eq!(minute.verdicts["maybe"], 0);
        let p50 = minute.end_to_end_p50_s.expect("a median");
        assert!((0.05..=0.1).contains(&p50), "{p50}");
        assert!(minute.end_to_end_p95_s.expect("a p95") >= p50);
        assert!((minute.inference_mean_s.expect("a mean") - 0.02).abs() < 1e-9);
        assert_eq!(minute.queued, Some(7));
        assert_eq!(minute.queued_max, Some(12));
        assert_eq!(minute.in_flight, Some(2));
        assert_eq!(minute.in_flight_max, None);
    }

    #[test]
    fn an_empty_minute_has_counts_of_zero_and_no_latency() {
        let minute = MinuteActivity::from_fields(0, &HashMap::new());
        assert_eq!((minute.done, minute.failed), (0, 0));
        assert_eq!(minute.end_to_end_p50_s, None);
        assert_eq!(minute.inference_mean_s, None);
        assert_eq!(minute.queued, None);
    }
}
