//! The queue's counters, kept in the hash `verdict:stats`.
//!
//! The scripts count as they go (`submitted` by submit, `done` and `failed` by
//! finish, `late_finishes` when a finish comes for a job that already ended),
//! so the counters never disagree with the job records they describe. The
//! reliability counters (issue 6) say how often the at-least-once machinery
//! had to act: they are what `/metrics` exports as duplicates, reclaims,
//! retries and dead letters.

use redis::aio::ConnectionLike;

use super::{QueueError, keys};

/// A snapshot of the counters and of the stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct QueueStats {
    pub submitted: u64,
    pub done: u64,
    /// Failed jobs, dead-lettered ones included.
    pub failed: u64,
    /// Finishes refused because the job had already ended: a job that ran to
    /// the end twice (a duplicate result, discarded).
    pub late_finishes: u64,
    /// Entries in the stream: jobs queued or in flight (finished entries are
    /// deleted). `depth` where it is shown (`fleet status --json`).
    #[serde(rename = "depth")]
    pub stream_len: u64,
    /// Jobs withdrawn by their submitter before they started.
    pub cancelled: u64,
    /// Starts of a job that had been started before (after a worker died,
    /// hung or lost Redis, or after a transient failure): the job ran, at
    /// least in part, more than once.
    pub reruns: u64,
    /// Entries taken over from a silent worker (XAUTOCLAIM).
    pub reclaimed: u64,
    /// Transient failures given back for another attempt.
    pub retries: u64,
    /// Jobs moved to the dead-letter stream after their last attempt (also
    /// counted in `failed`).
    pub dead_lettered: u64,
    /// Submissions refused because the queue was full (429).
    pub rejected_full: u64,
}

/// The counter fields, in [`QueueStats`] order (`stream_len` is XLEN).
const COUNTERS: [&str; 10] = [
    "submitted",
    "done",
    "failed",
    "late_finishes",
    "cancelled",
    "reruns",
    "reclaimed",
    "retries",
    "dead_lettered",
    "rejected_full",
];

/// Reads the counters and the stream length in one round trip.
pub async fn read_stats<C: ConnectionLike>(conn: &mut C) -> Result<QueueStats, QueueError> {
    let (counters, stream_len): (Vec<Option<u64>>, u64) = redis::pipe()
        .cmd("HMGET")
        .arg(keys::STATS)
        .arg(&COUNTERS[..])
        .cmd("XLEN")
        .arg(keys::STREAM)
        .query_async(conn)
        .await?;
    let get = |i: usize| counters.get(i).copied().flatten().unwrap_or(0);
    Ok(QueueStats {
        submitted: get(0),
        done: get(1),
        failed: get(2),
        late_finishes: get(3),
        stream_len,
        cancelled: get(4),
        reruns: get(5),
        reclaimed: get(6),
        retries: get(7),
        dead_lettered: get(8),
        rejected_full: get(9),
    })
}

/// Jobs delivered to a worker and not yet acknowledged (the consumer group's
/// pending count, XPENDING): the jobs in flight. 0 while the group does not
/// exist yet (no worker has started). `fleet status` and `/metrics` both
/// read it here, so they agree.
pub async fn in_flight<C: ConnectionLike>(conn: &mut C) -> Result<u64, QueueError> {
    match redis::cmd("XPENDING")
        .arg(keys::STREAM)
        .arg(keys::GROUP)
        .query_async::<redis::Value>(conn)
        .await
    {
        Ok(redis::Value::Array(items)) => Ok(match items.first() {
            Some(redis::Value::Int(n)) => u64::try_from(*n).unwrap_or(0),
            _ => 0,
        }),
        Ok(_) => Ok(0),
        Err(err) if err.code() == Some("NOGROUP") => Ok(0),
        Err(err) => Err(err.into()),
    }
}

/// Every counter in `verdict:stats`, by name (HGETALL), for `/metrics`:
/// besides the four above, whatever other steps count there (`reclaimed`,
/// `dead_lettered`, `callbacks_delivered`, ...). Values that are not
/// integers are skipped.
pub async fn read_all_counters<C: ConnectionLike>(
    conn: &mut C,
) -> Result<std::collections::BTreeMap<String, u64>, QueueError> {
    let raw: std::collections::HashMap<String, String> = redis::cmd("HGETALL")
        .arg(keys::STATS)
        .query_async(conn)
        .await?;
    Ok(raw
        .into_iter()
        .filter_map(|(name, value)| Some((name, value.parse().ok()?)))
        .collect())
}
