//! The jobs still waiting for a worker, oldest first: what the dashboard
//! lists with a cancel button.
//!
//! A job waits while its entry in the jobs stream is after the consumer
//! group's last delivered id (entries of ended jobs are deleted, so the
//! stream holds only queued and in-flight jobs). The entry id's time is when
//! it was queued, on Redis's clock.

use redis::aio::ConnectionLike;
use redis::streams::StreamInfoGroupsReply;
use serde::{Deserialize, Serialize};

use super::{QueueError, keys};

/// One queued job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QueuedJob {
    /// The job's id.
    pub job: String,
    /// Its entry in the jobs stream.
    pub entry: String,
    /// When it was queued, in milliseconds since the epoch (Redis's clock).
    pub queued_ms: u64,
}

/// The oldest `count` jobs no worker has been given yet.
pub async fn oldest<C: ConnectionLike>(
    conn: &mut C,
    count: usize,
) -> Result<Vec<QueuedJob>, QueueError> {
    if count == 0 {
        return Ok(Vec::new());
    }
    let start = match last_delivered(conn).await? {
        Some(id) => format!("({id}"),
        None => "-".to_string(),
    };
    let raw: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg(keys::STREAM)
        .arg(start)
        .arg("+")
        .arg("COUNT")
        .arg(count)
        .query_async(conn)
        .await?;
    Ok(raw
        .into_iter()
        .filter_map(|(entry, fields)| {
            let job = fields.into_iter().find(|(f, _)| f == "job")?.1;
            let queued_ms = entry.split('-').next()?.parse().ok()?;
            Some(QueuedJob {
                job,
                entry,
                queued_ms,
            })
        })
        .collect())
}

/// The workers' group's last delivered entry id; `None` while the group or
/// the stream does not exist (no worker has started: every entry waits).
async fn last_delivered<C: ConnectionLike>(conn: &mut C) -> Result<Option<String>, QueueError> {
    let reply: Result<StreamInfoGroupsReply, redis::RedisError> = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(keys::STREAM)
        .query_async(conn)
        .await;
    match reply {
        Ok(reply) => Ok(reply
            .groups
            .into_iter()
            .find(|group| group.name == keys::GROUP)
            .map(|group| group.last_delivered_id)),
        // No stream yet: nothing is queued either.
        Err(err) if err.to_string().contains("no such key") => Ok(None),
        Err(err) => Err(err.into()),
    }
}
