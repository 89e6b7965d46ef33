//! A worker taking jobs it read from the stream, one or several at once.

use std::sync::LazyLock;

use redis::aio::ConnectionLike;
use redis::{Script, Value};

use super::claim::StreamEntry;
use super::job_record::{self, JobSpec};
use super::job_script::{JOB_ENTRY, job_script};
use super::{QueueError, keys, reply, transaction};
use crate::job::{Job, JobId, JobState};

pub(crate) static START: LazyLock<Script> =
    LazyLock::new(|| job_script(&[JOB_ENTRY], include_str!("lua/start.lua")));

/// What the worker should do with an entry it read.
#[derive(Debug)]
pub enum Start {
    /// Judge it: the job is now `running`, held by this worker.
    Run(Box<StartedJob>),
    /// The job already ended (cancelled, or finished by another worker); the
    /// entry was acknowledged and deleted.
    Skip(JobState),
    /// The record is gone (expired or deleted); the entry was dropped.
    Missing,
    /// The job was started as many times as allowed (`attempts`) and never
    /// finished: nothing was changed; dead-letter it
    /// ([`super::dead_letter::dead_letter`]).
    Exhausted { attempts: u32 },
}

/// A job in a worker's hands.
#[derive(Debug)]
pub struct StartedJob {
    /// The job as stored now (state `running`).
    pub job: Job,
    /// The encoded image; for a job that names its image
    /// (`job.image.reference`), that reference's JSON: the worker fetches
    /// the image itself.
    pub image: Vec<u8>,
    /// The stream entry to acknowledge when finishing.
    pub entry_id: String,
}

/// Marks the job of `entry` running for `worker` and fetches what judging it
/// needs, atomically. A job already started `max_attempts` times is not
/// started again ([`Start::Exhausted`]); 0 means no limit.
pub async fn start<C: ConnectionLike>(
    conn: &mut C,
    entry_id: &str,
    job_id: JobId,
    worker: &str,
    max_attempts: u32,
) -> Result<Start, QueueError> {
    let mut started = start_all(conn, worker, max_attempts, &[(entry_id, job_id)]).await?;
    started
        .pop()
        .unwrap_or_else(|| Err(QueueError::corrupt("start: no reply for the job")))
}

/// [`start`] for several jobs, given as their stream entry ids and job ids,
/// in one transaction: one script, then each image by a plain HGET. One
/// answer a job, in order; a job whose record is corrupt gets its own error
/// and the others start.
pub async fn start_all<C: ConnectionLike>(
    conn: &mut C,
    worker: &str,
    max_attempts: u32,
    jobs: &[(&str, JobId)],
) -> Result<Vec<Result<Start, QueueError>>, QueueError> {
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    let records: Vec<String> = jobs.iter().map(|(_, job_id)| keys::job(job_id)).collect();
    let mut invocation = START.prepare_invoke();
    invocation
        .key(keys::STREAM)
        .key(keys::STATS)
        .arg(keys::GROUP)
        .arg(worker)
        .arg(max_attempts);
    for ((entry_id, _), record) in jobs.iter().zip(&records) {
        invocation.key(record).arg(*entry_id);
    }
    // One transaction: the script, then the images by plain HGETs (never
    // through Lua, which would hash every byte; see transaction.rs).
    let reply = transaction::in_transaction(conn, &START, |pipe| {
        pipe.invoke_script(&invocation);
        for record in &records {
            pipe.hget(record, job_record::field::IMAGE);
        }
    })
    .await?;
    let mut values = reply::array(reply, "start")?.into_iter();
    // The script's error replies come back inside EXEC's reply: taken out
    // as errors, as a lone EVALSHA would give them.
    let replies = match values.next() {
        Some(reply) => reply::array(reply.extract_error()?, "start")?,
        None => return Err(QueueError::corrupt("start: an empty transaction reply")),
    };
    if replies.len() != jobs.len() || values.len() != jobs.len() {
        return Err(QueueError::corrupt(format!(
            "start: {} replies and {} images for {} jobs",
            replies.len(),
            values.len(),
            jobs.len()
        )));
    }
    Ok(replies
        .into_iter()
        .zip(values)
        .zip(jobs)
        .map(|((reply, image), (entry_id, job_id))| {
            let mut reply = reply::array(reply, "start")?;
            // The image joins the reply where the typed parser expects it.
            if reply.len() == 5 {
                let image: Option<Vec<u8>> = redis::from_redis_value(image)
                    .map_err(|err| QueueError::corrupt(format!("start: image: {err}")))?;
                if let Some(image) = image {
                    reply.insert(2, Value::BulkString(image));
                }
            }
            parse_reply(reply, *job_id, entry_id, worker)
        })
        .collect())
}

/// What `start.lua` answered for the job `job_id` of `entry_id`, taken by
/// `worker`, typed: `["run", spec, image, submitted_us, started_us,
/// attempts]` (the image read beside the script, see [`start`]), `["skip",
/// state]`, `["exhausted", attempts]`, `["missing"]`, or `["corrupt", what]`
/// (an error).
pub fn parse_reply(
    reply: Vec<Value>,
    job_id: JobId,
    entry_id: &str,
    worker: &str,
) -> Result<Start, QueueError> {
    let mut parts = reply::Parts::new("start", reply);
    match parts.verb()?.as_str() {
        "missing" => Ok(Start::Missing),
        "corrupt" => Err(QueueError::corrupt(format!(
            "start: {}",
            parts.string("what")?
        ))),
        "skip" => Ok(Start::Skip(parts.state()?)),
        "exhausted" => Ok(Start::Exhausted {
            attempts: parts.count("attempts")?,
        }),
        "run" => {
            let spec = parts.bytes("spec")?;
            let image = parts.bytes("image")?;
            let submitted_at = parts.time("submitted_us")?;
            let started_at = parts.time("started_us")?;
            let attempts = parts.count("attempts")?;
            let spec: JobSpec = serde_json::from_slice(&spec)
                .map_err(|err| QueueError::corrupt(format!("job {job_id}: spec: {err}")))?;
            let mut job = Job::new(spec.texts, spec.image);
            job.premise = spec.premise;
            job.callback_url = spec.callback_url;
            job.id = job_id;
            job.state = JobState::Running;
            job.submitted_at = submitted_at;
            job.started_at = Some(started_at);
            job.attempts = attempts;
            job.worker = Some(worker.to_owned());
            Ok(Start::Run(Box::new(StartedJob {
                job,
                image,
                entry_id: entry_id.to_owned(),
            })))
        }
        other => Err(parts.unknown(other)),
    }
}

impl StreamEntry {
    /// [`start`] for this entry; an entry that names no job is discarded and
    /// reported as [`Start::Missing`].
    pub async fn start<C: ConnectionLike>(
        &self,
        conn: &mut C,
        worker: &str,
        max_attempts: u32,
    ) -> Result<Start, QueueError> {
        match self.job {
            Some(job_id) => start(conn, &self.entry_id, job_id, worker, max_attempts).await,
            None => {
                super::claim::discard(conn, &self.entry_id).await?;
                Ok(Start::Missing)
            }
        }
    }
}
