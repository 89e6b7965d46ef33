//! What only the workers know, kept in Redis for `/metrics`: how long jobs
//! waited and ran, verdicts by label, failures by code, cache hits.
//!
//! Workers report through Redis rather than an endpoint of their own so that
//! any api process can answer a scrape for the whole fleet, workers on other
//! hosts included, with no port to open per worker. A worker's report of a job
//! travels with the job's finish: the finish script adds it to the hash
//! `verdict:metrics` in the step that ends the job (no extra round trip, and a
//! late finish that changes nothing adds nothing); counters only grow, so Prometheus's `rate()` works across worker
//! restarts. Histograms keep one counter per bucket (not cumulative: one
//! HINCRBY per observation), plus sum and count; the reader makes them
//! cumulative.

use std::collections::{BTreeMap, HashMap};

use redis::aio::ConnectionLike;

use super::{QueueError, keys};
use crate::verdict::Label;

/// Upper bounds, in seconds, of the waiting-time buckets (queue wait and end
/// to end: milliseconds on an idle fleet, hours for an overnight catalogue).
pub const WAIT_BUCKETS: [f64; 16] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
];

/// Upper bounds, in seconds, of the inference-time buckets (tens of
/// milliseconds per job on one core for the default model).
pub const INFERENCE_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// The histograms the workers keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Histogram {
    /// Submitted to started (the job's last start).
    QueueWait,
    /// The judge's run on the worker.
    Inference,
    /// Submitted to finished.
    EndToEnd,
}

impl Histogram {
    pub const ALL: [Histogram; 3] = [
        Histogram::QueueWait,
        Histogram::Inference,
        Histogram::EndToEnd,
    ];

    /// The field prefix in the hash, and the metric's name stem.
    pub fn name(self) -> &'static str {
        match self {
            Histogram::QueueWait => "queue_wait",
            Histogram::Inference => "inference",
            Histogram::EndToEnd => "end_to_end",
        }
    }

    pub fn buckets(self) -> &'static [f64] {
        match self {
            Histogram::QueueWait | Histogram::EndToEnd => &WAIT_BUCKETS,
            Histogram::Inference => &INFERENCE_BUCKETS,
        }
    }

    /// The index of the bucket an observation falls in (`buckets().len()`
    /// for +Inf).
    fn bucket_of(self, seconds: f64) -> usize {
        self.buckets()
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(self.buckets().len())
    }
}

/// Cache counters of one engine cache, as totals since the worker started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheCount {
    /// `image`, `sentence`, `word`, ...
    pub cache: &'static str,
    pub hits: u64,
    pub misses: u64,
}

/// What a worker reports after a job it finished.
#[derive(Debug, Clone, Default)]
pub struct JobReport {
    /// Seconds from submission to the start, if known.
    pub queue_wait: Option<f64>,
    /// Seconds the judge ran.
    pub inference: f64,
    /// Seconds from submission to the finish, if known.
    pub end_to_end: Option<f64>,
    /// The verdicts' labels (a done job).
    pub labels: Vec<Label>,
    /// The error code (a failed job).
    pub failed_code: Option<String>,
    /// Cache hits and misses since the last report (not totals).
    pub cache: Vec<CacheCount>,
}

/// One addition to a field of `verdict:metrics`.
#[derive(Debug, Clone, PartialEq)]
pub struct Increment {
    pub field: String,
    pub by: Amount,
}

/// How much to add: counters take whole numbers (HINCRBY), sums of
/// seconds take fractions (HINCRBYFLOAT).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Amount {
    Count(u64),
    Seconds(f64),
}

impl JobReport {
    /// The additions to `verdict:metrics` this report makes. The finish
    /// script applies them when, and only when, it finishes the job
    /// (`finish.lua`), so a job's metrics land with its ending, in the same
    /// round trip and atomically.
    pub fn increments(&self) -> Vec<Increment> {
        let mut out = Vec::new();
        if let Some(wait) = self.queue_wait {
            observe(&mut out, Histogram::QueueWait, wait);
        }
        observe(&mut out, Histogram::Inference, self.inference);
        if let Some(total) = self.end_to_end {
            observe(&mut out, Histogram::EndToEnd, total);
        }
        for label in &self.labels {
            out.push(Increment::count(format!("verdicts:{label}"), 1));
        }
        if let Some(code) = &self.failed_code {
            out.push(Increment::count(format!("failed:{}", clean_code(code)), 1));
        }
        for count in &self.cache {
            for (what, n) in [("hits", count.hits), ("misses", count.misses)] {
                if n > 0 {
                    out.push(Increment::count(format!("cache:{}:{what}", count.cache), n));
                }
            }
        }
        out
    }
}

impl Increment {
    fn count(field: String, n: u64) -> Increment {
        Increment {
            field,
            by: Amount::Count(n),
        }
    }
}

/// One observation: its bucket, the count and the sum (not cumulative: the
/// reader makes the buckets cumulative).
fn observe(out: &mut Vec<Increment>, histogram: Histogram, seconds: f64) {
    if !seconds.is_finite() || seconds < 0.0 {
        return;
    }
    let name = histogram.name();
    out.push(Increment::count(
        format!("{name}:bucket:{}", histogram.bucket_of(seconds)),
        1,
    ));
    out.push(Increment::count(format!("{name}:count"), 1));
    out.push(Increment {
        field: format!("{name}:sum"),
        by: Amount::Seconds(seconds),
    });
}

/// An error code as it may appear in a field name and a metric label:
/// lowercase letters, digits and `_`, at most 64 characters.
fn clean_code(code: &str) -> String {
    code.chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// One histogram as read back: cumulative counts per upper bound (+Inf
/// last), sum and count.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    pub buckets: Vec<(f64, u64)>,
    pub sum: f64,
    pub count: u64,
}

impl HistogramSnapshot {
    /// The `q` quantile (0 to 1), interpolated linearly inside the bucket
    /// it falls in, as Prometheus's `histogram_quantile` does; in the +Inf
    /// bucket, the largest finite bound. `None` without observations.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 || !(0.0..=1.0).contains(&q) {
            return None;
        }
        let rank = q * self.count as f64;
        let (mut lower_bound, mut lower_count) = (0.0, 0u64);
        for &(bound, cumulative) in &self.buckets {
            if cumulative as f64 >= rank && cumulative > lower_count {
                if bound.is_infinite() {
                    return Some(lower_bound);
                }
                let in_bucket = (cumulative - lower_count) as f64;
                return Some(
                    lower_bound + (bound - lower_bound) * (rank - lower_count as f64) / in_bucket,
                );
            }
            lower_bound = bound;
            lower_count = cumulative;
        }
        Some(lower_bound)
    }
}

/// Everything in `verdict:metrics`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WorkerMetrics {
    pub histograms: BTreeMap<&'static str, HistogramSnapshot>,
    /// Verdicts by label (all three labels present).
    pub verdicts: BTreeMap<&'static str, u64>,
    /// Failed jobs by error code, as the workers reported them.
    pub failed_by_code: BTreeMap<String, u64>,
    /// Cache name → (hits, misses).
    pub caches: BTreeMap<String, (u64, u64)>,
}

/// Reads `verdict:metrics` (one HGETALL). Fields that do not parse are
/// skipped: a bad field must not hide the rest.
pub async fn read_metrics<C: ConnectionLike>(conn: &mut C) -> Result<WorkerMetrics, QueueError> {
    let raw: HashMap<String, String> = redis::cmd("HGETALL")
        .arg(keys::METRICS)
        .query_async(conn)
        .await?;
    Ok(WorkerMetrics::from_fields(&raw))
}

impl WorkerMetrics {
    pub fn from_fields(raw: &HashMap<String, String>) -> WorkerMetrics {
        let int = |field: &str| {
            raw.get(field)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let mut metrics = WorkerMetrics::default();
        for histogram in Histogram::ALL {
            let name = histogram.name();
            let mut cumulative = 0;
            let mut buckets = Vec::new();
            for (i, bound) in histogram
                .buckets()
                .iter()
                .copied()
                .chain([f64::INFINITY])
                .enumerate()
            {
                cumulative += int(&format!("{name}:bucket:{i}"));
                buckets.push((bound, cumulative));
            }
            let sum = raw
                .get(&format!("{name}:sum"))
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0);
            metrics.histograms.insert(
                name,
                HistogramSnapshot {
                    buckets,
                    sum,
                    // The +Inf bucket is the count, whatever `count` says.
                    count: cumulative,
                },
            );
        }
        for label in Label::ALL {
            metrics
                .verdicts
                .insert(label.as_str(), int(&format!("verdicts:{label}")));
        }
        for (field, value) in raw {
            let Ok(value) = value.parse::<u64>() else {
                continue;
            };
            if let Some(code) = field.strip_prefix("failed:") {
                metrics.failed_by_code.insert(clean_code(code), value);
            } else if let Some(rest) = field.strip_prefix("cache:") {
                let Some((cache, what)) = rest.rsplit_once(':') else {
                    continue;
                };
                let entry = metrics.caches.entry(clean_code(cache)).or_default();
                match what {
                    "hits" => entry.0 = value,
                    "misses" => entry.1 = value,
                    _ => {}
                }
            }
        }
        metrics
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_fall_in_the_first_bucket_that_holds_them() {
        assert_eq!(Histogram::Inference.bucket_of(0.0), 0);
        assert_eq!(Histogram::Inference.bucket_of(0.001), 0);
        assert_eq!(Histogram::Inference.bucket_of(0.03), 5);
        assert_eq!(
            Histogram::Inference.bucket_of(99.0),
            INFERENCE_BUCKETS.len()
        );
    }

    #[test]
    fn a_report_becomes_one_increment_per_field() {
        let report = JobReport {
            queue_wait: Some(0.002),
            inference: f64::NAN,
            end_to_end: Some(0.03),
            labels: vec![Label::Yes, Label::Yes],
            failed_code: None,
            cache: vec![CacheCount {
                cache: "image",
                hits: 0,
                misses: 1,
            }],
        };
        let fields: Vec<(String, Amount)> = report
            .increments()
            .into_iter()
            .map(|i| (i.field, i.by))
            .collect();
        let expected: Vec<(String, Amount)> = [
            ("queue_wait:bucket:0", Amount::Count(1)),
            ("queue_wait:count", Amount::Count(1)),
            ("queue_wait:sum", Amount::Seconds(0.002)),
            ("end_to_end:bucket:3", Amount::Count(1)),
            ("end_to_end:count", Amount::Count(1)),
            ("end_to_end:sum", Amount::Seconds(0.03)),
            ("verdicts:yes", Amount::Count(1)),
            ("verdicts:yes", Amount::Count(1)),
            ("cache:image:misses", Amount::Count(1)),
        ]
        .into_iter()
        .map(|(f, a)| (f.to_owned(), a))
        .collect();
        // The NaN inference time is not observed at all.
        assert_eq!(fields, expected);
    }

    #[test]
    fn quantiles_interpolate_inside_their_bucket() {
        let h = HistogramSnapshot {
            buckets: vec![(0.1, 0), (0.2, 4), (1.0, 4), (f64::INFINITY, 5)],
            sum: 1.0,
            count: 5,
        };
        // Rank 2.5 of 5 falls in (0.1, 0.2], 2.5 of its 4 observations in.
        assert!((h.quantile(0.5).unwrap() - 0.1625).abs() < 1e-9);
        // The last observation is above every finite bound.
        assert_eq!(h.quantile(1.0), Some(1.0));
        assert_eq!(h.quantile(1.5), None);
        let empty = HistogramSnapshot {
            buckets: vec![(0.1, 0), (f64::INFINITY, 0)],
            sum: 0.0,
            count: 0,
        };
        assert_eq!(empty.quantile(0.5), None);
    }

    #[test]
    fn fields_read_back_cumulative_and_garbage_is_skipped() {
        let raw: HashMap<String, String> = [
            ("inference:bucket:0", "2"),
            ("inference:bucket:5", "3"),
            ("inference:bucket:12", "1"),
            ("inference:sum", "0.5"),
            ("verdicts:yes", "4"),
            ("failed:image_decode", "2"),
            ("cache:image:hits", "6"),
            ("cache:image:misses", "3"),
            ("cache:word:hits", "not a number"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let m = WorkerMetrics::from_fields(&raw);
        let inference = &m.histograms["inference"];
        assert_eq!(inference.buckets[0], (0.001, 2));
        assert_eq!(inference.buckets[5], (0.05, 5));
        assert_eq!(inference.buckets.last(), Some(&(f64::INFINITY, 6)));
        assert_eq!(inference.count, 6);
        assert_eq!(m.verdicts["yes"], 4);
        assert_eq!(m.verdicts["no"], 0);
        assert_eq!(m.failed_by_code["image_decode"], 2);
        assert_eq!(m.caches["image"], (6, 3));
        assert!(!m.caches.contains_key("word"));
    }
}
