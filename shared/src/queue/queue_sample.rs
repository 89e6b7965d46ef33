//! The api samples the queue into the minute's activity (see
//! [`super::activity`]): how many jobs wait and how many are in flight, so
//! the dashboard can draw the queue over the last hour. Each api process
//! samples every [`INTERVAL`]; with several, the samples interleave (each is
//! a true reading of the moment it was taken).

use std::sync::LazyLock;
use std::time::Duration;

use redis::aio::ConnectionLike;
use redis::{Script, Value};

use super::{QueueError, activity, keys, reply};

pub(crate) static QUEUE_SAMPLE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/queue_sample.lua")));

/// How often an api process samples the queue.
pub const INTERVAL: Duration = Duration::from_secs(5);

/// One sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Jobs waiting for a worker.
    pub queued: u64,
    /// Jobs a worker holds.
    pub in_flight: u64,
}

/// Takes a sample and adds it to this minute's activity.
pub async fn sample<C: ConnectionLike>(conn: &mut C) -> Result<Sample, QueueError> {
    let reply: Vec<Value> = QUEUE_SAMPLE
        .key(keys::STREAM)
        .arg(keys::GROUP)
        .arg(keys::MINUTE_PREFIX)
        .arg(activity::KEPT.as_secs())
        .invoke_async(conn)
        .await?;
    let mut parts = reply::Parts::new("queue_sample", reply);
    match parts.verb()?.as_str() {
        "sampled" => Ok(Sample {
            queued: u64::try_from(parts.integer("queued")?).unwrap_or(0),
            in_flight: u64::try_from(parts.integer("in_flight")?).unwrap_or(0),
        }),
        other => Err(parts.unknown(other)),
    }
}
