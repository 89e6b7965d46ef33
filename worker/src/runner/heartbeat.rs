//! The heartbeat task: keeps the worker's record alive in Redis, and the
//! stream entries of the jobs in hand from being reclaimed.
//!
//! It runs on its own task with its own stop signal, so that it keeps beating
//! while the last job finishes after a SIGTERM; the runner stops it, then
//! deregisters. A failed beat is logged and retried at the next tick: the
//! record's TTL ([`HEARTBEAT_TTL`]) outlasts several missed beats, and the
//! reclaim time (at least three beats) outlasts a missed renewal.

use std::sync::Arc;

use verdict_shared::clock::wall_ms;
use verdict_shared::queue::heartbeat::{HEARTBEAT_INTERVAL, HEARTBEAT_TTL, beat};
use verdict_shared::queue::renew::renew;
use verdict_shared::queue::{QueueError, WorkerRecord};
use verdict_shared::redis_pool::Pool;
use verdict_shared::shutdown::Shutdown;

use super::status::WorkerStatus;

/// Beats every [`HEARTBEAT_INTERVAL`] until `stop` fires. `record` is the
/// worker's record as registered; its counters are refreshed from `status`.
pub async fn run(
    pool: Pool,
    mut record: WorkerRecord,
    status: Arc<WorkerStatus>,
    mut stop: Shutdown,
) {
    let mut failing = false;
    loop {
        record.heartbeat_ms = wall_ms();
        record.jobs_done = status.jobs_done();
        record.current_job = status.current_job().map(|id| id.to_string());
        let entries = status.entries_in_hand();
        match send(&pool, &record, &entries).await {
            Ok(()) if failing => {
                tracing::info!("heartbeat restored");
                failing = false;
            }
            Ok(()) => {}
            Err(err) => {
                if !failing {
                    tracing::warn!(
                        error = %err,
                        ttl_s = HEARTBEAT_TTL.as_secs(),
                        "heartbeat failed; retrying every beat"
                    );
                }
                failing = true;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(HEARTBEAT_INTERVAL) => {}
            _ = stop.recv() => return,
        }
    }
}

async fn send(pool: &Pool, record: &WorkerRecord, entries: &[String]) -> Result<(), QueueError> {
    let mut conn = pool.get().await?;
    beat(&mut conn, record).await?;
    renew(&mut conn, &record.name, entries).await?;
    Ok(())
}
