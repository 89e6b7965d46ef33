//! Cancelling a job that no worker has started (`DELETE /v1/jobs/{id}`).
//!
//! Only a `queued` job can be cancelled: it becomes `cancelled` (terminal),
//! its stream entry is removed, and long-polls waiting for it are woken
//! (`lua/cancel.lua`). A running job is not interrupted — a worker is already
//! judging it and it ends in moments — and a finished job keeps its ending.

use std::sync::LazyLock;

use redis::aio::ConnectionLike;
use redis::{Script, Value};

use super::finish::DEFAULT_RESULT_TTL;
use super::job_script::{JOB_END, job_script};
use super::{QueueError, keys, reply};
use crate::job::{JobError, JobId, JobState};

pub(crate) static CANCEL: LazyLock<Script> =
    LazyLock::new(|| job_script(&[JOB_END], include_str!("lua/cancel.lua")));

/// What the cancel script did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancel {
    /// The job was queued and is now cancelled.
    Cancelled,
    /// The job is in this state and was left as it is.
    Refused(JobState),
    /// No such job (never submitted, or expired).
    Missing,
}

/// The error a cancelled job carries.
pub fn cancelled_error() -> JobError {
    JobError::new(
        "cancelled",
        "cancelled by its submitter before a worker started it",
    )
}

/// Cancels the job if it is still queued.
pub async fn cancel<C: ConnectionLike>(conn: &mut C, job_id: JobId) -> Result<Cancel, QueueError> {
    let error = serde_json::to_vec(&cancelled_error())
        .map_err(|err| QueueError::corrupt(format!("cancel: {err}")))?;
    let reply: Vec<Value> = CANCEL
        .key(keys::job(&job_id))
        .key(keys::STREAM)
        .key(keys::STATS)
        .key(keys::CALLBACKS)
        .arg(keys::GROUP)
        .arg(keys::EVENTS)
        .arg(job_id.to_string())
        .arg(DEFAULT_RESULT_TTL.as_secs())
        .arg(error)
        .invoke_async(conn)
        .await?;
    parse_reply(reply)
}

/// What `cancel.lua` answered, typed: `["cancelled"]`, `["refused", state]`
/// or `["missing"]`. Anything else is a [`QueueError::Corrupt`].
pub fn parse_reply(reply: Vec<Value>) -> Result<Cancel, QueueError> {
    let mut parts = reply::Parts::new("cancel", reply);
    match parts.verb()?.as_str() {
        "cancelled" => Ok(Cancel::Cancelled),
        "refused" => Ok(Cancel::Refused(parts.state()?)),
        "missing" => Ok(Cancel::Missing),
        other => Err(parts.unknown(other)),
    }
}
