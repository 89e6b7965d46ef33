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
use verdict_shared::queue::stats::QueueStats;
use verdict_shared::queue::{WorkerRecord, heartbeat};
use verdict_shared::redis_url::RedisUrl;

/// One snapshot of the queue: the queue code's own counters and stream
/// length (`depth` in `fleet status --json`), and the jobs in flight.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct QueueFigures {
    /// Delivered to a worker and not yet acknowledged (XPENDING).
    pub in_flight: u64,
    /// In the dead-letter stream now (XLEN `verdict:dead`): `fleet dead list`.
    pub dead: u64,
    #[serde(flatten)]
    pub counters: QueueStats,
}

/// Reads the figures, and the heartbeat records of the named workers.
pub async fn read(
    redis: Result<RedisUrl, String>,
    workers: &[String],
    timeout: Duration,
) -> Result<(QueueFigures, Vec<Option<WorkerRecord>>), String> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout));
    let mut conn = redis?.connect(&config).await.map_err(|e| e.to_string())?;
    // The counters and the stream length as the queue code itself reads
    // them, so that a change of the protocol changes both.
    let counters = verdict_shared::queue::stats::read_stats(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    // The same XPENDING reading as `/metrics` (0 before the group exists).
    let in_flight = verdict_shared::queue::stats::in_flight(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    let records = heartbeat::worker_records(&mut conn, workers)
        .await
        .map_err(|e| e.to_string())?;
    let dead = verdict_shared::queue::dead_list::count(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    Ok((
        QueueFigures {
            in_flight,
            dead,
            counters,
        },
        records,
    ))
}
