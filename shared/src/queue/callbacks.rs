//! The callbacks stream: which ended jobs are still to be POSTed to their
//! `callback_url`.
//!
//! The script that ends a job (finish.lua) adds one entry, field `job` = the
//! job id, to `verdict:callbacks` in the same step, so a job that asked for a
//! callback cannot end without one being queued, and cannot get two (a job
//! ends once). The api processes read the stream through the consumer group
//! `senders`: each entry goes to one of them, which POSTs the job, retrying
//! with backoff, then acknowledges and deletes the entry. An entry whose
//! sender died stays pending and is claimed by another sender after
//! [`CLAIM_IDLE`]. A sender that keeps retrying touches its entries so that
//! they are not claimed from under it.

use std::time::Duration;

use redis::Value;
use redis::aio::ConnectionLike;

use super::claim::{StreamEntry, autoclaim, read_group_new};
use super::{QueueError, consumer_group, keys};

/// How long an entry may sit unacknowledged and untouched before another
/// sender claims it (its sender is presumed dead).
pub const CLAIM_IDLE: Duration = Duration::from_secs(30);

/// How a callback ended, for the counters in `verdict:stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The receiver answered 2xx.
    Delivered,
    /// Every attempt failed (or the job or its URL is gone): given up.
    GaveUp,
}

impl Delivery {
    /// The counter in `verdict:stats`.
    pub fn counter(self) -> &'static str {
        match self {
            Delivery::Delivered => "callbacks_delivered",
            Delivery::GaveUp => "callbacks_failed",
        }
    }
}

/// Creates the senders' group (and the stream) if missing. Safe to repeat.
pub async fn ensure_group<C: ConnectionLike>(conn: &mut C) -> Result<(), QueueError> {
    consumer_group::ensure(conn, keys::CALLBACKS, keys::CALLBACK_GROUP).await
}

/// Up to `count` new entries for `sender`, waiting up to `block` (call it on
/// a dedicated connection).
pub async fn read_new<C: ConnectionLike>(
    conn: &mut C,
    sender: &str,
    count: usize,
    block: Duration,
) -> Result<Vec<StreamEntry>, QueueError> {
    read_group_new(
        conn,
        keys::CALLBACKS,
        keys::CALLBACK_GROUP,
        sender,
        count,
        Some(block),
    )
    .await
}

/// Claims for `sender` up to `count` entries idle for more than
/// [`CLAIM_IDLE`]: those of a sender that died.
pub async fn claim_stale<C: ConnectionLike>(
    conn: &mut C,
    sender: &str,
    count: usize,
) -> Result<Vec<StreamEntry>, QueueError> {
    autoclaim(
        conn,
        keys::CALLBACKS,
        keys::CALLBACK_GROUP,
        sender,
        CLAIM_IDLE,
        count,
    )
    .await
}

/// Resets an entry's idle time, so that a sender still retrying it keeps it.
pub async fn touch<C: ConnectionLike>(
    conn: &mut C,
    sender: &str,
    entry_id: &str,
) -> Result<(), QueueError> {
    redis::cmd("XCLAIM")
        .arg(keys::CALLBACKS)
        .arg(keys::CALLBACK_GROUP)
        .arg(sender)
        .arg(0)
        .arg(entry_id)
        .arg("JUSTID")
        .query_async::<Value>(conn)
        .await?;
    Ok(())
}

/// Acknowledges and deletes the entry, and counts how it ended.
pub async fn settle<C: ConnectionLike>(
    conn: &mut C,
    entry_id: &str,
    delivery: Delivery,
) -> Result<(), QueueError> {
    redis::pipe()
        .atomic()
        .cmd("XACK")
        .arg(keys::CALLBACKS)
        .arg(keys::CALLBACK_GROUP)
        .arg(entry_id)
        .ignore()
        .cmd("XDEL")
        .arg(keys::CALLBACKS)
        .arg(entry_id)
        .ignore()
        .cmd("HINCRBY")
        .arg(keys::STATS)
        .arg(delivery.counter())
        .arg(1)
        .ignore()
        .query_async::<()>(conn)
        .await?;
    Ok(())
}
