//! The heartbeat task: keeps the worker's record alive in Redis, and the
//! stream entries of the jobs in hand from being reclaimed.
//!
//! It runs on its own task with its own stop signal, so that it keeps beating
//! while the last job finishes after a SIGTERM; the runner stops it, then
//! deregisters. A failed beat is logged and retried at the next tick: the
//! record's TTL ([`HEARTBEAT_TTL`]) outlasts several missed beats, and the
//! reclaim time (at least three beats) outlasts a missed renewal.
//!
//! Every beat also checks that the name is still this process's: one that
//! did not beat for `STALE_AFTER` (cut off from Redis, or frozen) may have
//! had it taken over by a new process. Then two processes would share one
//! consumer; this one stops instead, loudly ([`Ended::NameTaken`]).

use std::sync::Arc;
use std::time::Instant;

use verdict_shared::clock::wall_ms;
use verdict_shared::queue::heartbeat::{Beat, HEARTBEAT_INTERVAL, HEARTBEAT_TTL, beat};
use verdict_shared::queue::renew::renew;
use verdict_shared::queue::{Holder, QueueError, WorkerRecord};
use verdict_shared::redis_pool::Pool;
use verdict_shared::shutdown::{Shutdown, ShutdownTrigger};

use super::status::WorkerStatus;

/// Why the heartbeat ended.
#[derive(Debug)]
pub(super) enum Ended {
    /// The runner stopped it.
    Stopped,
    /// Another process holds the worker's name now; the worker was told to
    /// stop (`name_taken` fired).
    NameTaken(Holder),
}

/// Beats every [`HEARTBEAT_INTERVAL`] until `stop` fires, or until the name
/// is found taken (then it fires `name_taken`). `record` is the worker's
/// record as registered; its counters are refreshed from `status`.
pub(super) async fn run(
    pool: Pool,
    mut record: WorkerRecord,
    status: Arc<WorkerStatus>,
    mut stop: Shutdown,
    name_taken: ShutdownTrigger,
) -> Ended {
    let mut failing = false;
    let started = Instant::now();
    loop {
        record.beats += 1;
        record.heartbeat_ms = wall_ms();
        record.uptime_ms = Some(u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX));
        record.jobs_done = status.jobs_done();
        record.current_job = status.current_job().map(|id| id.to_string());
        let entries = status.entries_in_hand();
        match send(&pool, &record, &entries).await {
            Ok(Beat::Beaten) if failing => {
                tracing::info!("heartbeat restored");
                failing = false;
            }
            Ok(Beat::Beaten) => {}
            Ok(Beat::Taken { holder }) => {
                tracing::error!(
                    worker = %record.name,
                    holder = %holder,
                    "another process has taken this worker's name (this one had not beaten \
                     for a while); stopping, so that the two do not share one consumer"
                );
                name_taken.fire();
                return Ended::NameTaken(holder);
            }
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
            _ = stop.recv() => return Ended::Stopped,
        }
    }
}

/// One beat, and (while the name is this process's) the renewal of the
/// entries in hand.
async fn send(pool: &Pool, record: &WorkerRecord, entries: &[String]) -> Result<Beat, QueueError> {
    let mut conn = pool.get().await?;
    let beat = beat(&mut conn, record).await?;
    if beat == Beat::Beaten {
        renew(&mut conn, &record.name, entries).await?;
    }
    Ok(beat)
}
