//! A worker finishing jobs: verdicts or an error, stored atomically, one job
//! or several in one script.

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

/// A job to finish: its id, its stream entry, how it ended and the worker's
/// metrics for it.
#[derive(Debug, Clone, Copy)]
pub struct Finishing<'a> {
    pub job_id: JobId,
    pub entry_id: &'a str,
    pub outcome: &'a Outcome,
    pub metrics: &'a [Increment],
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
    let job = Finishing {
        job_id,
        entry_id,
        outcome,
        metrics,
    };
    let mut finished = finish_all(conn, worker, &[job]).await?;
    finished
        .pop()
        .ok_or_else(|| QueueError::corrupt("finish: no reply for the job"))
}

/// [`finish`] for several jobs in one script: what each job's finish does,
/// with the stream entries dropped by one `XACK` and one `XDEL`, and the
/// counters and metrics of the jobs it finishes added up and written once.
/// One answer a job, in the order of `jobs`. Atomic: either every job's
/// ending (and its figures) is stored or none is.
pub async fn finish_all<C: ConnectionLike>(
    conn: &mut C,
    worker: &str,
    jobs: &[Finishing<'_>],
) -> Result<Vec<Finish>, QueueError> {
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    let mut invocation = FINISH.prepare_invoke();
    invocation
        .key(keys::STREAM)
        .key(keys::STATS)
        .key(keys::CALLBACKS)
        .key(keys::METRICS)
        .key(keys::RECENT_FAILURES)
        .arg(keys::GROUP)
        .arg(worker)
        .arg(keys::EVENTS)
        .arg(DEFAULT_RESULT_TTL.as_secs())
        .arg(keys::MINUTE_PREFIX)
        .arg(activity::KEPT.as_secs())
        .arg(recent_failures::KEPT);
    for job in jobs {
        let payload = match job.outcome {
            Outcome::Done(results) => serde_json::to_vec(results),
            Outcome::Failed(error) => serde_json::to_vec(error),
        }
        .map_err(|err| QueueError::corrupt(format!("finish: {err}")))?;
        invocation
            .key(keys::job(&job.job_id))
            .arg(job.entry_id)
            .arg(job.job_id.to_string())
            .arg(job.outcome.state().as_str())
            .arg(payload)
            .arg(job.metrics.len());
        for increment in job.metrics {
            match increment.by {
                Amount::Count(n) => invocation.arg("count").arg(&increment.field).arg(n),
                Amount::Seconds(s) => invocation.arg("seconds").arg(&increment.field).arg(s),
            };
        }
    }
    let reply: Vec<Value> = invocation.invoke_async(conn).await?;
    if reply.len() != jobs.len() {
        return Err(QueueError::corrupt(format!(
            "finish: {} replies for {} jobs",
            reply.len(),
            jobs.len()
        )));
    }
    reply
        .into_iter()
        .map(|one| parse_reply(reply::array(one, "finish")?))
        .collect()
}

/// What `finish.lua` answered for one job, typed: `["finished", finished_us]`,
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
