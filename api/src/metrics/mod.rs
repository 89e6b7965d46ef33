//! What `GET /metrics` says, read from Redis at scrape time.
//!
//! Every figure comes from Redis, so any api process answers for the whole
//! fleet and two scrapes of two api processes agree:
//!
//! - `verdict:stats` (counted by the queue scripts): submitted, done, failed,
//!   late finishes, and the counters other steps add there (`reclaimed`,
//!   `dead_lettered`, `cancelled`, callbacks delivered and failed); a counter
//!   not written yet is 0. `fleet status` reads submitted, done and failed
//!   through the same function.
//! - the jobs stream: depth (XLEN) and in flight (XPENDING), read as `fleet
//!   status` reads them;
//! - the worker heartbeat records: how many workers are alive;
//! - `verdict:metrics` (reported by the workers after each job): histograms,
//!   verdicts by label, failures by code, cache hits.

pub mod exposition;

use std::collections::BTreeMap;

use redis::aio::ConnectionLike;
use verdict_shared::queue::metrics::{WorkerMetrics, read_metrics};
use verdict_shared::queue::stats::{QueueStats, in_flight, read_all_counters, read_stats};
use verdict_shared::queue::{QueueError, heartbeat, keys};

use exposition::{Exposition, Kind};

/// Everything one scrape reads.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub stats: QueueStats,
    pub counters: BTreeMap<String, u64>,
    pub in_flight: u64,
    pub workers: usize,
    /// How long the most recently started live worker has run, in seconds
    /// (`None` with no worker): low for long means a worker keeps restarting.
    pub youngest_worker_s: Option<f64>,
    /// Jobs in the dead-letter stream now.
    pub dead_letters: u64,
    pub callbacks_pending: u64,
    pub worker_metrics: WorkerMetrics,
}

/// Reads the snapshot (a few round trips).
pub async fn read<C: ConnectionLike>(conn: &mut C) -> Result<Snapshot, QueueError> {
    let stats = read_stats(conn).await?;
    let counters = read_all_counters(conn).await?;
    let in_flight = in_flight(conn).await?;
    let live = heartbeat::live_workers(conn).await?;
    let workers = live.len();
    // Each worker's uptime as of its last heartbeat (at most one interval
    // ago), on its own monotonic clock: no clock is compared with another.
    let now_ms = verdict_shared::clock::wall_ms();
    let youngest_worker_s = live.iter().map(|w| w.uptime_s(0, now_ms)).reduce(f64::min);
    let dead_letters = verdict_shared::queue::dead_list::count(conn).await?;
    let callbacks_pending: u64 = redis::cmd("XLEN")
        .arg(keys::CALLBACKS)
        .query_async(conn)
        .await?;
    let worker_metrics = read_metrics(conn).await?;
    Ok(Snapshot {
        stats,
        counters,
        in_flight,
        workers,
        youngest_worker_s,
        dead_letters,
        callbacks_pending,
        worker_metrics,
    })
}

/// The page for a snapshot; `None` (Redis did not answer) gives a page with
/// `verdict_redis_up 0` only.
pub fn render(snapshot: Option<&Snapshot>) -> String {
    let mut page = Exposition::default();
    page.single(
        "verdict_redis_up",
        Kind::Gauge,
        "1 if this api read the figures from Redis for this scrape, 0 if Redis did not answer.",
        if snapshot.is_some() { 1.0 } else { 0.0 },
    );
    let Some(s) = snapshot else {
        return page.finish();
    };
    let counter = |name: &str| s.counters.get(name).copied().unwrap_or(0) as f64;
    page.single(
        "verdict_jobs_submitted_total",
        Kind::Counter,
        "Jobs accepted by the api.",
        s.stats.submitted as f64,
    );
    page.family(
        "verdict_jobs_finished_total",
        Kind::Counter,
        "Jobs that ended, by outcome (done, failed, cancelled).",
    )
    .sample(
        "verdict_jobs_finished_total",
        &[("outcome", "done")],
        s.stats.done as f64,
    )
    .sample(
        "verdict_jobs_finished_total",
        &[("outcome", "failed")],
        s.stats.failed as f64,
    )
    .sample(
        "verdict_jobs_finished_total",
        &[("outcome", "cancelled")],
        counter("cancelled"),
    );
    page.family(
        "verdict_jobs_failed_total",
        Kind::Counter,
        "Failed jobs by error code, as the workers reported them.",
    );
    for (code, n) in &s.worker_metrics.failed_by_code {
        page.sample("verdict_jobs_failed_total", &[("code", code)], *n as f64);
    }
    page.family(
        "verdict_verdicts_total",
        Kind::Counter,
        "Sentence verdicts given, by label.",
    );
    for (label, n) in &s.worker_metrics.verdicts {
        page.sample("verdict_verdicts_total", &[("label", label)], *n as f64);
    }
    page.single(
        "verdict_queue_depth",
        Kind::Gauge,
        "Jobs in the stream: waiting plus in flight (XLEN verdict:jobs).",
        s.stats.stream_len as f64,
    );
    page.single(
        "verdict_jobs_waiting",
        Kind::Gauge,
        "Jobs queued and not yet delivered to a worker.",
        s.stats.stream_len.saturating_sub(s.in_flight) as f64,
    );
    page.single(
        "verdict_jobs_in_flight",
        Kind::Gauge,
        "Jobs delivered to a worker and not yet finished (XPENDING).",
        s.in_flight as f64,
    );
    page.single(
        "verdict_jobs_reclaimed_total",
        Kind::Counter,
        "Jobs taken over from a worker presumed dead.",
        counter("reclaimed"),
    );
    page.single(
        "verdict_jobs_dead_lettered_total",
        Kind::Counter,
        "Jobs moved to the dead-letter stream after too many deliveries.",
        counter("dead_lettered"),
    );
    page.single(
        "verdict_late_finishes_total",
        Kind::Counter,
        "Results refused because their job had already ended (a job that ran twice).",
        s.stats.late_finishes as f64,
    );
    page.single(
        "verdict_workers",
        Kind::Gauge,
        "Workers whose heartbeat record is alive.",
        s.workers as f64,
    );
    if let Some(youngest) = s.youngest_worker_s {
        page.single(
            "verdict_worker_youngest_uptime_seconds",
            Kind::Gauge,
            "How long the most recently started live worker has run; low for long: a worker keeps restarting.",
            youngest,
        );
    }
    page.single(
        "verdict_dead_letters",
        Kind::Gauge,
        "Jobs in the dead-letter stream now (fleet dead list).",
        s.dead_letters as f64,
    );
    page.family(
        "verdict_callbacks_total",
        Kind::Counter,
        "Callbacks that ended, by outcome (delivered, failed: given up).",
    )
    .sample(
        "verdict_callbacks_total",
        &[("outcome", "delivered")],
        counter("callbacks_delivered"),
    )
    .sample(
        "verdict_callbacks_total",
        &[("outcome", "failed")],
        counter("callbacks_failed"),
    );
    page.single(
        "verdict_callbacks_pending",
        Kind::Gauge,
        "Callbacks queued or being sent.",
        s.callbacks_pending as f64,
    );
    page.family(
        "verdict_cache_hits_total",
        Kind::Counter,
        "Worker engine cache lookups answered without recomputing, by cache (image: by a BLAKE3 hash of the bytes; sentence and word: by text).",
    );
    for (cache, (hits, _)) in &s.worker_metrics.caches {
        page.sample(
            "verdict_cache_hits_total",
            &[("cache", cache)],
            *hits as f64,
        );
    }
    page.family(
        "verdict_cache_misses_total",
        Kind::Counter,
        "Worker engine cache lookups that had to compute, by cache.",
    );
    for (cache, (_, misses)) in &s.worker_metrics.caches {
        page.sample(
            "verdict_cache_misses_total",
            &[("cache", cache)],
            *misses as f64,
        );
    }
    let histograms = [
        (
            "queue_wait",
            "verdict_queue_wait_seconds",
            "From submission to the start of the job's last attempt.",
        ),
        (
            "inference",
            "verdict_inference_seconds",
            "The model's run on a worker, per job.",
        ),
        (
            "end_to_end",
            "verdict_end_to_end_seconds",
            "From submission to the end of the job.",
        ),
    ];
    for (key, name, help) in histograms {
        if let Some(histogram) = s.worker_metrics.histograms.get(key) {
            page.histogram(name, help, histogram);
        }
    }
    page.finish()
}
