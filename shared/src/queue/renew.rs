//! A live worker keeping the jobs it holds from being reclaimed.
//!
//! Reclaim ([`super::reclaim`]) takes over entries that have sat idle in a
//! worker's hands for longer than the reclaim time. A job can legitimately
//! take long (a slow model, a retry's backoff), so a live worker resets the
//! idle time of every entry it holds at each heartbeat (`lua/renew.lua`):
//! only a worker that is dead, hung or cut off from Redis stops renewing,
//! and only its jobs are taken over. This is what keeps a slow job from
//! running twice (the "lost lock" trap).

use std::sync::LazyLock;

use redis::Script;
use redis::aio::ConnectionLike;

use super::{QueueError, keys};

pub(crate) static RENEW: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/renew.lua")));

/// Renews the entries `entry_ids` that are still pending for `worker`;
/// returns how many were.
pub async fn renew<C: ConnectionLike>(
    conn: &mut C,
    worker: &str,
    entry_ids: &[String],
) -> Result<u64, QueueError> {
    if entry_ids.is_empty() {
        return Ok(0);
    }
    let mut invocation = RENEW.prepare_invoke();
    invocation.key(keys::STREAM).arg(keys::GROUP).arg(worker);
    for id in entry_ids {
        invocation.arg(id);
    }
    Ok(invocation.invoke_async(conn).await?)
}
