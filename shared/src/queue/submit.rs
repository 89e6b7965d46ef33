//! Enqueueing a job (the api's half of the protocol).

use std::sync::LazyLock;
use std::time::Duration;

use redis::Script;
use redis::aio::ConnectionLike;

use super::job_record::{self, JobSpec};
use super::{QueueError, keys, reply};
use crate::job::{ImageInfo, Job, JobId};

static SUBMIT: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/submit.lua")));

/// A validated submission, ready to be stored.
#[derive(Debug, Clone, Copy)]
pub struct NewJob<'a> {
    pub id: JobId,
    pub texts: &'a [String],
    pub image_info: &'a ImageInfo,
    /// The encoded image, exactly as submitted.
    pub image: &'a [u8],
    /// How long the record is kept once the job has finished.
    pub result_ttl: Duration,
    /// Most jobs the queue may hold (queued and running); 0: no limit. A
    /// submission beyond it fails with [`QueueError::QueueFull`].
    pub max_queue_depth: u64,
}

/// Stores the job and appends it to the stream in one atomic script; returns
/// the job as now stored (state `queued`, `submitted_at` from Redis's clock).
pub async fn submit<C: ConnectionLike>(conn: &mut C, new: NewJob<'_>) -> Result<Job, QueueError> {
    let spec = JobSpec {
        texts: new.texts.to_vec(),
        image: new.image_info.clone(),
    };
    let spec_json =
        serde_json::to_vec(&spec).map_err(|err| QueueError::corrupt(format!("spec: {err}")))?;
    let reply: Vec<redis::Value> = SUBMIT
        .key(keys::job(&new.id))
        .key(keys::STREAM)
        .key(keys::STATS)
        .arg(new.id.to_string())
        .arg(spec_json)
        .arg(new.image)
        .arg(new.result_ttl.as_secs().max(1))
        .arg(new.max_queue_depth)
        .invoke_async(conn)
        .await
        .map_err(queue_full)?;
    let [_entry, submitted_us]: [redis::Value; 2] = reply
        .try_into()
        .map_err(|_| QueueError::corrupt("submit: expected {entry, submitted_us}"))?;
    let submitted_us = reply::integer(submitted_us, "submit: submitted_us")?;
    let submitted_at = job_record::micros_to_datetime(submitted_us)
        .ok_or_else(|| QueueError::corrupt("submit: submitted_us out of range"))?;
    let mut job = Job::new(spec.texts, spec.image);
    job.id = new.id;
    job.submitted_at = submitted_at;
    Ok(job)
}

/// The script's `FULL depth limit` error reply as [`QueueError::QueueFull`].
fn queue_full(err: redis::RedisError) -> QueueError {
    if err.code() == Some("FULL") {
        let mut numbers = err
            .detail()
            .unwrap_or("")
            .split_whitespace()
            .map(|n| n.parse::<u64>().unwrap_or(0));
        let depth = numbers.next().unwrap_or(0);
        let limit = numbers.next().unwrap_or(0);
        return QueueError::QueueFull { depth, limit };
    }
    err.into()
}
