//! Enqueueing a job (the api's half of the protocol).

use std::sync::LazyLock;
use std::time::Duration;

use redis::Script;
use redis::aio::ConnectionLike;

use super::job_record::{self, JobSpec};
use super::{QueueError, keys, reply, transaction};
use crate::job::{ImageInfo, Job, JobId};

pub(crate) static SUBMIT: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/submit.lua")));

/// How long an image written for a submission outlives it if the script
/// never ran (the transaction cannot half-apply, so this is only a net).
const UNSUBMITTED_IMAGE_TTL_S: i64 = 600;

/// A validated submission, ready to be stored.
#[derive(Debug, Clone, Copy)]
pub struct NewJob<'a> {
    pub id: JobId,
    pub texts: &'a [String],
    /// The text that holds with the image, if the submission gave one.
    pub premise: Option<&'a str>,
    pub image_info: &'a ImageInfo,
    /// The encoded image, exactly as submitted; empty for a job that names
    /// its image (`image_info.reference`), whose reference is stored in the
    /// image's place.
    pub image: &'a [u8],
    /// How long the record is kept once the job has finished.
    pub result_ttl: Duration,
    /// Most jobs the queue may hold (queued and running); 0: no limit. A
    /// submission beyond it fails with [`QueueError::QueueFull`].
    pub max_queue_depth: u64,
}

/// What a submission may ask for beyond the job itself (issue 7).
#[derive(Debug, Clone, Copy, Default)]
pub struct SubmitOptions<'a> {
    /// Where to POST the job when it ends (already checked against the
    /// allow-list).
    pub callback_url: Option<&'a str>,
    /// The client's `Idempotency-Key`, if it sent one.
    pub idempotency: Option<&'a Idempotency>,
}

/// An `Idempotency-Key` as the queue stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idempotency {
    /// Hex sha256 of the client's key: names the Redis key.
    pub key_sha256: String,
    /// Hex sha256 of what the request asked for (image, sentences, premise,
    /// callback), so that a key reused for another request can be told apart.
    pub fingerprint: String,
}

/// What [`submit`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Submitted {
    /// A new job, as now stored (state `queued`, `submitted_at` from Redis's
    /// clock).
    New(Box<Job>),
    /// The `Idempotency-Key` already names this job (it still exists); nothing
    /// was written. `fingerprint` is that of the request that created it.
    Existing { id: JobId, fingerprint: String },
}

/// Stores the job and appends it to the stream in one atomic script; returns
/// the job as now stored (state `queued`, `submitted_at` from Redis's clock).
pub async fn submit<C: ConnectionLike>(conn: &mut C, new: NewJob<'_>) -> Result<Job, QueueError> {
    match submit_with(conn, new, SubmitOptions::default()).await? {
        Submitted::New(job) => Ok(*job),
        Submitted::Existing { .. } => Err(QueueError::corrupt(
            "submit: an existing job was returned for a request without an idempotency key",
        )),
    }
}

/// [`submit`] with a callback URL and an `Idempotency-Key`: with a key that
/// already names a job that still exists, nothing is written and that job's
/// id is returned.
pub async fn submit_with<C: ConnectionLike>(
    conn: &mut C,
    new: NewJob<'_>,
    options: SubmitOptions<'_>,
) -> Result<Submitted, QueueError> {
    let [one]: [Result<Submitted, QueueError>; 1] = submit_many(conn, &[(new, options)])
        .await?
        .try_into()
        .map_err(|_| QueueError::corrupt("submit: not one outcome for one job"))?;
    one
}

/// Several submissions in one MULTI/EXEC transaction, one round trip: each
/// job is stored exactly as [`submit_with`] stores it (its image by HSET,
/// a grace EXPIRE, then `submit.lua`), one after the other, with nothing of
/// another client's between them. Redis spends about half the time a job
/// that it spends on one transaction a job (the round trip's own cost is
/// shared; docs/benchmarks.md).
///
/// The outer error is the transaction's (Redis unreachable, the connection
/// lost: no job, or every job, may have been stored); each job's own
/// outcome is in its place, in order: a queue that fills up part way
/// refuses only the jobs past its limit.
pub async fn submit_many<C: ConnectionLike>(
    conn: &mut C,
    jobs: &[(NewJob<'_>, SubmitOptions<'_>)],
) -> Result<Vec<Result<Submitted, QueueError>>, QueueError> {
    let prepared = jobs
        .iter()
        .map(|(new, options)| Prepared::new(*new, *options))
        .collect::<Result<Vec<_>, _>>()?;
    if prepared.is_empty() {
        return Ok(Vec::new());
    }
    // One transaction: each image by a plain HSET (never through Lua, which
    // would hash every byte), a grace TTL in case the script never runs,
    // then the script (see transaction.rs).
    let reply = transaction::in_transaction(conn, &SUBMIT, |pipe| {
        for job in &prepared {
            pipe.hset(&job.record, job_record::field::IMAGE, &job.image[..])
                .ignore()
                .expire(&job.record, UNSUBMITTED_IMAGE_TTL_S)
                .ignore()
                .invoke_script(&job.invocation);
        }
    })
    .await?;
    let replies = match reply {
        redis::Value::Array(replies) => replies,
        // A transaction Redis refused whole (EXECABORT: a command was
        // refused while queued, as while Redis loads its data after a
        // restart, or is out of memory) is Redis's error, not corrupt data.
        other => {
            return Err(match other.extract_error() {
                Err(err) => queue_full(err),
                Ok(other) => QueueError::corrupt(format!("submit: EXEC answered {other:?}")),
            });
        }
    };
    if replies.len() != prepared.len() {
        return Err(QueueError::corrupt(format!(
            "submit: {} replies for {} jobs",
            replies.len(),
            prepared.len()
        )));
    }
    Ok(replies
        .into_iter()
        .zip(prepared)
        .map(|(reply, job)| {
            // The script's error replies (FULL, EXISTS) come back inside
            // EXEC's reply: taken out as errors, as a lone EVALSHA would
            // give them.
            let redis::Value::Array(reply) = reply.extract_error().map_err(queue_full)? else {
                return Err(QueueError::corrupt(
                    "submit: the script's reply is not an array",
                ));
            };
            parse_reply(reply, job.id, job.spec)
        })
        .collect())
}

/// A submission as the transaction sends it.
struct Prepared<'a> {
    id: JobId,
    spec: JobSpec,
    record: String,
    /// The image's bytes, or the JSON of the reference it names.
    image: std::borrow::Cow<'a, [u8]>,
    invocation: redis::ScriptInvocation<'static>,
}

impl<'a> Prepared<'a> {
    fn new(new: NewJob<'a>, options: SubmitOptions<'_>) -> Result<Prepared<'a>, QueueError> {
        let spec = JobSpec {
            texts: new.texts.to_vec(),
            premise: new.premise.map(str::to_owned),
            image: new.image_info.clone(),
            callback_url: options.callback_url.map(str::to_owned),
        };
        let spec_json =
            serde_json::to_vec(&spec).map_err(|err| QueueError::corrupt(format!("spec: {err}")))?;
        let image = match &new.image_info.reference {
            None => std::borrow::Cow::Borrowed(new.image),
            Some(_) if !new.image.is_empty() => {
                return Err(QueueError::corrupt(
                    "submit: a job that names its image carries no image bytes",
                ));
            }
            Some(reference) => std::borrow::Cow::Owned(
                serde_json::to_vec(reference)
                    .map_err(|err| QueueError::corrupt(format!("reference: {err}")))?,
            ),
        };
        let record = keys::job(&new.id);
        let mut invocation = SUBMIT.prepare_invoke();
        invocation
            .key(&record)
            .key(keys::STREAM)
            .key(keys::STATS)
            .arg(new.id.to_string())
            .arg(spec_json)
            .arg(new.result_ttl.as_secs().max(1))
            .arg(new.max_queue_depth);
        if let Some(idempotency) = options.idempotency {
            invocation
                .key(keys::idempotency(&idempotency.key_sha256))
                .arg(keys::JOB_PREFIX)
                .arg(&idempotency.fingerprint);
        }
        Ok(Prepared {
            id: new.id,
            spec,
            record,
            image,
            invocation,
        })
    }
}

/// What `submit.lua` answered for the new job `id` of `spec`, typed:
/// `[entry, submitted_us]` for a new job, `["existing", id, fingerprint]`
/// when the `Idempotency-Key` already names one.
pub fn parse_reply(
    reply: Vec<redis::Value>,
    id: JobId,
    spec: JobSpec,
) -> Result<Submitted, QueueError> {
    if reply.len() == 3 {
        let mut parts = reply::Parts::new("submit", reply);
        let verb = parts.verb()?;
        if verb != "existing" {
            return Err(parts.unknown(&verb));
        }
        let id = parts
            .string("id")?
            .parse()
            .map_err(|err| QueueError::corrupt(format!("submit: {err}")))?;
        let fingerprint = parts.string("fingerprint")?;
        return Ok(Submitted::Existing { id, fingerprint });
    }
    let [_entry, submitted_us]: [redis::Value; 2] = reply
        .try_into()
        .map_err(|_| QueueError::corrupt("submit: expected {entry, submitted_us}"))?;
    let submitted_us = reply::integer(submitted_us, "submit: submitted_us")?;
    let submitted_at = job_record::micros_to_datetime(submitted_us)
        .ok_or_else(|| QueueError::corrupt("submit: submitted_us out of range"))?;
    let mut job = Job::new(spec.texts, spec.image);
    job.id = id;
    job.submitted_at = submitted_at;
    job.premise = spec.premise;
    job.callback_url = spec.callback_url;
    Ok(Submitted::New(Box::new(job)))
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
