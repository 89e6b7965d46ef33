//! The queue figures `fleet status` shows, read straight from Redis.
//!
//! Kept in one small module on purpose: it mirrors the queue protocol
//! (`docs/protocol.md`): the stream `verdict:jobs` holds queued and in-flight
//! jobs (finished entries are deleted), the consumer group `workers` holds
//! the in-flight ones as pending entries, and the hash `verdict:stats` counts
//! submitted, done, failed, cancelled, dead-lettered, reclaimed and run-twice
//! jobs and refused submissions (read through the queue code's own
//! `read_stats`). If the protocol changes, this is the file to fix.
//! `/metrics` reads the same keys through the same functions, so the two agree.

use std::time::Duration;

use redis::AsyncConnectionConfig;
use serde::Serialize;
use verdict_shared::queue::{WorkerRecord, keys};

/// One snapshot of the queue.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct QueueStats {
    /// Entries in the stream: waiting plus in flight (XLEN).
    pub depth: u64,
    /// Delivered to a worker and not yet acknowledged (XPENDING).
    pub in_flight: u64,
    /// Counters from `verdict:stats`.
    pub submitted: u64,
    pub done: u64,
    pub failed: u64,
    /// Withdrawn by their submitters before a worker started them.
    pub cancelled: u64,
    /// Failed after their last allowed attempt, into `verdict:dead`.
    pub dead_lettered: u64,
    /// Entries taken over from a worker that went silent.
    pub reclaimed: u64,
    /// Results refused because the job had already ended (a job run twice).
    pub late_finishes: u64,
    /// Submissions refused because the queue was full.
    pub rejected_full: u64,
}

/// Reads the figures, and the heartbeat records of the named workers.
pub async fn read(
    url: &str,
    workers: &[String],
    timeout: Duration,
) -> Result<(QueueStats, Vec<Option<WorkerRecord>>), String> {
    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout));
    let mut conn = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(|e| e.to_string())?;
    // The counters and the stream length as the queue code itself reads
    // them, so that a change of the protocol changes both.
    let counters = verdict_shared::queue::stats::read_stats(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    // The same XPENDING reading as `/metrics` (0 before the group exists).
    let in_flight = verdict_shared::queue::stats::in_flight(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    let records = if workers.is_empty() {
        Vec::new()
    } else {
        let keys: Vec<String> = workers.iter().map(|w| keys::worker(w)).collect();
        let raw: Vec<Option<String>> = redis::cmd("MGET")
            .arg(&keys)
            .query_async(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        raw.into_iter()
            .map(|r| r.and_then(|text| serde_json::from_str(&text).ok()))
            .collect()
    };
    Ok((
        QueueStats {
            depth: counters.stream_len,
            in_flight,
            submitted: counters.submitted,
            done: counters.done,
            failed: counters.failed,
            cancelled: counters.cancelled,
            dead_lettered: counters.dead_lettered,
            reclaimed: counters.reclaimed,
            late_finishes: counters.late_finishes,
            rejected_full: counters.rejected_full,
        },
        records,
    ))
}
