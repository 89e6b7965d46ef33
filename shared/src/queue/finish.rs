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

pub(crate) static FINISH: LazyLock<Script> =
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
/// counters and metrics of the jobs added up (here, [`summed`]) and written
/// once. One answer a job, in the order of `jobs`.
///
/// A call finishes all its jobs or none of them, because their metrics go
/// as one sum: when one is refused ([`Finish::Stale`], [`Finish::Missing`]),
/// the script finishes no other and answers them "again", and they are sent
/// once more, with their own sum, in another call (each such call drops at
/// least one job, so there are at most as many calls as jobs; in practice a
/// refusal is a rare late finish and the first call is the only one).
pub async fn finish_all<C: ConnectionLike>(
    conn: &mut C,
    worker: &str,
    jobs: &[Finishing<'_>],
) -> Result<Vec<Finish>, QueueError> {
    let mut answers: Vec<Option<Finish>> = vec![None; jobs.len()];
    let mut pending: Vec<usize> = (0..jobs.len()).collect();
    while !pending.is_empty() {
        let call: Vec<Finishing<'_>> = pending.iter().map(|&i| jobs[i]).collect();
        let replies = finish_call(conn, worker, &call).await?;
        let mut again = Vec::new();
        for (i, reply) in pending.iter().zip(replies) {
            match reply {
                Some(answer) => answers[*i] = Some(answer),
                None => again.push(*i),
            }
        }
        if again.len() == pending.len() {
            return Err(QueueError::corrupt(
                "finish: every job of the call was answered \"again\" and none refused",
            ));
        }
        pending = again;
    }
    answers
        .into_iter()
        .map(|answer| answer.ok_or_else(|| QueueError::corrupt("finish: a job without an answer")))
        .collect()
}

/// One call of `finish.lua` on `jobs`: each job's answer, or `None` for a
/// job to send again ("again": another job of the call was refused).
async fn finish_call<C: ConnectionLike>(
    conn: &mut C,
    worker: &str,
    jobs: &[Finishing<'_>],
) -> Result<Vec<Option<Finish>>, QueueError> {
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
    let metrics = summed(jobs.iter().flat_map(|job| job.metrics));
    invocation.arg(metrics.len());
    for increment in &metrics {
        match increment.by {
            Amount::Count(n) => invocation.arg("count").arg(&increment.field).arg(n),
            Amount::Seconds(s) => invocation.arg("seconds").arg(&increment.field).arg(s),
        };
    }
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
            .arg(payload);
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

/// The increments added up by field, in the order each field first comes:
/// counts to one count, seconds to one sum (a field is either, never both:
/// see [`super::metrics`]; were it both, each kind keeps its own sum).
fn summed<'a>(increments: impl IntoIterator<Item = &'a Increment>) -> Vec<Increment> {
    let mut out: Vec<Increment> = Vec::new();
    'next: for increment in increments {
        for sum in out.iter_mut().filter(|sum| sum.field == increment.field) {
            let added = match (sum.by, increment.by) {
                (Amount::Count(a), Amount::Count(b)) => Amount::Count(a.saturating_add(b)),
                (Amount::Seconds(a), Amount::Seconds(b)) => Amount::Seconds(a + b),
                _ => continue,
            };
            sum.by = added;
            continue 'next;
        }
        out.push(increment.clone());
    }
    out
}

/// What `finish.lua` answered for one job, typed: `["finished", finished_us]`,
/// `["stale", state]` or `["missing"]`; `None` for `["again"]` (not finished
/// because another job of the call was refused: to be sent again).
pub fn parse_reply(reply: Vec<Value>) -> Result<Option<Finish>, QueueError> {
    let mut parts = reply::Parts::new("finish", reply);
    match parts.verb()?.as_str() {
        "finished" => Ok(Some(Finish::Finished {
            finished_at: parts.time("finished_us")?,
        })),
        "stale" => Ok(Some(Finish::Stale(parts.state()?))),
        "missing" => Ok(Some(Finish::Missing)),
        "again" => Ok(None),
        other => Err(parts.unknown(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(field: &str, n: u64) -> Increment {
        Increment {
            field: field.into(),
            by: Amount::Count(n),
        }
    }

    fn seconds(field: &str, s: f64) -> Increment {
        Increment {
            field: field.into(),
            by: Amount::Seconds(s),
        }
    }

    #[test]
    fn increments_are_summed_by_field_in_the_order_fields_first_come() {
        let jobs = [
            vec![count("verdicts:yes", 1), seconds("inference:sum", 0.25)],
            vec![count("verdicts:no", 2), seconds("inference:sum", 0.5)],
            vec![count("verdicts:yes", 3)],
        ];
        let sum = summed(jobs.iter().flatten());
        assert_eq!(
            sum,
            vec![
                count("verdicts:yes", 4),
                seconds("inference:sum", 0.75),
                count("verdicts:no", 2),
            ]
        );
    }

    #[test]
    fn a_field_given_as_both_kinds_keeps_a_sum_of_each() {
        let given = [
            count("x", 1),
            seconds("x", 0.5),
            count("x", 2),
            seconds("x", 1.0),
        ];
        assert_eq!(summed(&given), vec![count("x", 3), seconds("x", 1.5)]);
    }

    #[test]
    fn a_count_that_would_overflow_stays_at_the_largest() {
        let given = [count("x", u64::MAX), count("x", 5)];
        assert_eq!(summed(&given), vec![count("x", u64::MAX)]);
    }

    #[test]
    fn nothing_sums_to_nothing() {
        assert!(summed(&[]).is_empty());
    }
}
