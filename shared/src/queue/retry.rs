//! Giving a job back after a transient failure, to be started again after a
//! backoff.
//!
//! The worker records the error and puts the job back to `queued`
//! (`lua/retry.lua`); its stream entry stays pending in the worker's hands,
//! the worker waits [`super::policy::retry_delay`] and starts it again, which
//! counts an attempt. When the attempts run out the job is dead-lettered with
//! this error as its last one. Permanent failures (an undecodable image, an
//! empty sentence) never come here: they fail at once.

use std::sync::LazyLock;

use redis::aio::ConnectionLike;
use redis::{Script, Value};

use super::{QueueError, keys, reply};
use crate::job::{JobError, JobId};

pub(crate) static RETRY: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/retry.lua")));

/// What the retry script did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retry {
    /// The job is queued again after `attempts` starts; start it again after
    /// the backoff.
    Scheduled { attempts: u32 },
    /// The job is no longer running in this worker's hands (it ended, or
    /// another worker reclaimed it): nothing was changed; let it go.
    Lost,
}

/// Records `error` as the job's last error and queues it again.
pub async fn retry<C: ConnectionLike>(
    conn: &mut C,
    job_id: JobId,
    worker: &str,
    error: &JobError,
) -> Result<Retry, QueueError> {
    let error =
        serde_json::to_vec(error).map_err(|err| QueueError::corrupt(format!("retry: {err}")))?;
    let reply: Vec<Value> = RETRY
        .key(keys::job(&job_id))
        .key(keys::STATS)
        .arg(worker)
        .arg(error)
        .invoke_async(conn)
        .await?;
    parse_reply(reply)
}

/// What `retry.lua` answered, typed: `["retry", attempts]` or `["lost"]`.
pub fn parse_reply(reply: Vec<Value>) -> Result<Retry, QueueError> {
    let mut parts = reply::Parts::new("retry", reply);
    match parts.verb()?.as_str() {
        "retry" => Ok(Retry::Scheduled {
            attempts: parts.count("attempts")?,
        }),
        "lost" => Ok(Retry::Lost),
        other => Err(parts.unknown(other)),
    }
}
