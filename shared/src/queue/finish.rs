//! A worker finishing a job: verdicts or an error, stored atomically.

use std::sync::LazyLock;
use std::time::Duration;

use redis::aio::ConnectionLike;
use redis::{Script, Value};
use time::OffsetDateTime;

use super::job_script::{JOB_END, JOB_ENTRY, job_script};
use super::metrics::{Amount, Increment};
use super::{QueueError, activity, keys, recent_failures, reply};
use crate::job::{JobError, JobId, JobState};
use crate::verdict::SentenceVerdict;

static FINISH: LazyLock<Script> =
    LazyLock::new(|| job_script(&[JOB_ENTRY, JOB_END], include_str!("lua/finish.lua")));

/// How long a finished job is kept when its record does not say (records
/// written by this version always say: the api stores `result_ttl`).
pub const DEFAULT_RESULT_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// How a job ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A verdict for every sentence, in sentence order.
    Done(Vec<SentenceVerdict>),
    /// No verdicts, and why.
    Failed(JobError),
}

impl Outcome {
    pub fn state(&self) -> JobState {
        match self {
            Outcome::Done(_) => JobState::Done,
            Outcome::Failed(_) => JobState::Failed,
        }
    }
}

/// What the finish script did.
#[derive(Debug, Clone, PartialEq)]
pub enum Finish {
    /// The job now has this outcome.
    Finished { finished_at: OffsetDateTime },
    /// The job had already ended (in this state) and was left as it was: a
    /// late result, e.g. from a worker whose job was claimed by another.
    Stale(JobState),
    /// The record is gone (expired or deleted).
    Missing,
}

/// Stores the outcome, sets the state, drops the image, starts the result
/// TTL, acknowledges and deletes the stream entry, adds the worker's
/// `metrics` for the job to `verdict:metrics` and to this minute's activity
/// (a failure also joins the recent failures), and publishes the job id on
/// the events channel — in one script. Safe to retry: a retry of a finish that
/// did happen answers [`Finish::Stale`] and adds nothing.
pub async fn finish<C: ConnectionLike>(
    conn: &mut C,
    job_id: JobId,
    entry_id: &str,
    worker: &str,
    outcome: &Outcome,
    metrics: &[Increment],
) -> Result<Finish, QueueError> {
    let payload = match outcome {
        Outcome::Done(results) => serde_json::to_vec(results),
        Outcome::Failed(error) => serde_json::to_vec(error),
    }
    .map_err(|err| QueueError::corrupt(format!("finish: {err}")))?;
    let mut invocation = FINISH.prepare_invoke();
    invocation
        .key(keys::job(&job_id))
        .key(keys::STREAM)
        .key(keys::STATS)
        .key(keys::CALLBACKS)
        .key(keys::METRICS)
        .key(keys::RECENT_FAILURES)
        .arg(keys::GROUP)
        .arg(entry_id)
        .arg(worker)
        .arg(outcome.state().as_str())
        .arg(payload)
        .arg(keys::EVENTS)
        .arg(job_id.to_string())
        .arg(DEFAULT_RESULT_TTL.as_secs())
        .arg(keys::MINUTE_PREFIX)
        .arg(activity::KEPT.as_secs())
        .arg(recent_failures::KEPT);
    for increment in metrics {
        match increment.by {
            Amount::Count(n) => invocation.arg("count").arg(&increment.field).arg(n),
            Amount::Seconds(s) => invocation.arg("seconds").arg(&increment.field).arg(s),
        };
    }
    let reply: Vec<Value> = invocation.invoke_async(conn).await?;
    parse_reply(reply)
}

/// What `finish.lua` answered, typed: `["finished", finished_us]`,
/// `["stale", state]` or `["missing"]`.
pub fn parse_reply(reply: Vec<Value>) -> Result<Finish, QueueError> {
    let mut parts = reply::Parts::new("finish", reply);
    match parts.verb()?.as_str() {
        "finished" => Ok(Finish::Finished {
            finished_at: parts.time("finished_us")?,
        }),
        "stale" => Ok(Finish::Stale(parts.state()?)),
        "missing" => Ok(Finish::Missing),
        other => Err(parts.unknown(other)),
    }
}
