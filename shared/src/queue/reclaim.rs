//! Taking over the jobs of a worker that died, hung or lost Redis.
//!
//! Every entry a worker reads stays in the consumer group's pending list,
//! under that worker's name, until the job is finished. A live worker renews
//! its entries at every heartbeat ([`super::renew`]); an entry idle for
//! longer than the reclaim time therefore belongs to a worker that is not
//! coming back for it soon. Any worker claims such entries with XAUTOCLAIM
//! and runs them like new ones: the start script counts the attempt (and
//! dead-letters a job that has had too many), and the finish script refuses
//! a late result from the presumed-dead worker if it ever comes back.
//!
//! A worker restarted under the same name does not wait for this: it re-reads
//! its own pending entries at once ([`super::claim::read_own_pending`]).

use std::time::Duration;

use redis::aio::ConnectionLike;

use super::claim::{StreamEntry, autoclaim};
use super::{QueueError, keys};

/// Claims for `consumer` up to `count` entries that have been idle for at
/// least `min_idle`, and counts them in `verdict:stats` (`reclaimed`).
/// Entries whose stream data was deleted meanwhile are dropped from the
/// pending list by Redis itself.
pub async fn reclaim<C: ConnectionLike>(
    conn: &mut C,
    consumer: &str,
    min_idle: Duration,
    count: usize,
) -> Result<Vec<StreamEntry>, QueueError> {
    let entries = autoclaim(conn, keys::STREAM, keys::GROUP, consumer, min_idle, count).await?;
    if !entries.is_empty() {
        redis::cmd("HINCRBY")
            .arg(keys::STATS)
            .arg("reclaimed")
            .arg(entries.len())
            .query_async::<i64>(conn)
            .await?;
    }
    Ok(entries)
}
