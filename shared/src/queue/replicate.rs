//! Waiting until replicas hold what a connection wrote (`WAIT`), for the
//! api's `--durability replicated` (issue 19).
//!
//! Redis replicates asynchronously: a primary answers a write before any
//! replica has it, and a failover right after loses it. `WAIT N TIMEOUT`,
//! sent on the connection that wrote, blocks until N replicas have
//! acknowledged everything that connection wrote (and so everything the
//! primary had before it), or until the timeout, and answers how many did.
//! Redis asks its replicas for an acknowledgement at once, so on a healthy
//! link it answers within a round trip to the slowest of the N.
//!
//! It is not a transaction: a write that `WAIT` could not confirm is still
//! on the primary (and on any replica that got it later); it may or may not
//! survive a failover.

use std::time::Duration;

use redis::aio::ConnectionLike;

use super::QueueError;

/// The shortest timeout sent: `WAIT N 0` would block for ever.
const MIN_TIMEOUT: Duration = Duration::from_millis(1);

/// Waits up to `timeout` until `replicas` replicas hold everything written
/// on `conn` so far; how many do (fewer than `replicas` when the timeout
/// came first).
pub async fn wait_for_replicas<C: ConnectionLike>(
    conn: &mut C,
    replicas: u32,
    timeout: Duration,
) -> Result<u64, QueueError> {
    let timeout_ms = timeout.max(MIN_TIMEOUT).as_millis();
    let acknowledged: u64 = redis::cmd("WAIT")
        .arg(replicas)
        .arg(u64::try_from(timeout_ms).unwrap_or(u64::MAX))
        .query_async(conn)
        .await?;
    Ok(acknowledged)
}
