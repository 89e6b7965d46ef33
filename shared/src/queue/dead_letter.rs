//! Giving up on a job: the dead-letter stream.
//!
//! A job that was started as often as the worker's `--max-attempts` allows and
//! never finished — it kills every worker that runs it (a poison job), or it
//! keeps failing transiently — is not run again. The worker that finds it so
//! ([`super::Start::Exhausted`]) moves it to `verdict:dead` with its last
//! error and marks it `failed` (code `attempts_exhausted`), in one script
//! (`lua/dead_letter.lua`). So a poison job costs at most `max_attempts`
//! worker crashes and never loops.

use std::sync::LazyLock;

use redis::aio::ConnectionLike;
use redis::{Script, Value};
use time::OffsetDateTime;

use super::finish::DEFAULT_RESULT_TTL;
use super::job_script::{JOB_END, JOB_ENTRY, job_script};
use super::policy::DEAD_LETTER_MAXLEN;
use super::{QueueError, activity, keys, recent_failures, reply};
use crate::job::{JobError, JobId, JobState};

pub(crate) static DEAD_LETTER: LazyLock<Script> =
    LazyLock::new(|| job_script(&[JOB_ENTRY, JOB_END], include_str!("lua/dead_letter.lua")));

/// What the dead-letter script did.
#[derive(Debug, Clone, PartialEq)]
pub enum DeadLetter {
    /// The job is now failed with `error` and has an entry in the
    /// dead-letter stream.
    DeadLettered {
        finished_at: OffsetDateTime,
        error: JobError,
        dead_letter_entry: String,
    },
    /// The job had already ended (in this state): nothing was changed.
    Stale(JobState),
    /// The record is gone.
    Missing,
}

/// Dead-letters the job of `entry_id`; `max_attempts` is the limit it
/// reached (for the error message).
pub async fn dead_letter<C: ConnectionLike>(
    conn: &mut C,
    job_id: JobId,
    entry_id: &str,
    worker: &str,
    max_attempts: u32,
) -> Result<DeadLetter, QueueError> {
    let reply: Vec<Value> = DEAD_LETTER
        .key(keys::job(&job_id))
        .key(keys::STREAM)
        .key(keys::STATS)
        .key(keys::DEAD_LETTER)
        .key(keys::CALLBACKS)
        .key(keys::RECENT_FAILURES)
        .arg(keys::GROUP)
        .arg(entry_id)
        .arg(worker)
        .arg(max_attempts)
        .arg(keys::EVENTS)
        .arg(job_id.to_string())
        .arg(DEFAULT_RESULT_TTL.as_secs())
        .arg(DEAD_LETTER_MAXLEN)
        .arg(keys::MINUTE_PREFIX)
        .arg(activity::KEPT.as_secs())
        .arg(recent_failures::KEPT)
        .invoke_async(conn)
        .await?;
    parse_reply(reply)
}

/// What `dead_letter.lua` answered, typed: `["dead_lettered", finished_us,
/// error, entry]`, `["stale", state]` or `["missing"]`.
pub fn parse_reply(reply: Vec<Value>) -> Result<DeadLetter, QueueError> {
    let mut parts = reply::Parts::new("dead_letter", reply);
    match parts.verb()?.as_str() {
        "dead_lettered" => {
            let finished_at = parts.time("finished_us")?;
            let error: JobError = serde_json::from_slice(&parts.bytes("error")?)
                .map_err(|err| QueueError::corrupt(format!("dead_letter: error: {err}")))?;
            Ok(DeadLetter::DeadLettered {
                finished_at,
                error,
                dead_letter_entry: parts.string("entry")?,
            })
        }
        "stale" => Ok(DeadLetter::Stale(parts.state()?)),
        "missing" => Ok(DeadLetter::Missing),
        other => Err(parts.unknown(other)),
    }
}

/// One entry of the dead-letter stream, as an operator (or a test) reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterEntry {
    /// The entry's id in `verdict:dead`.
    pub id: String,
    /// Field name and value pairs: `job`, `attempts`, `error`, `last_error`,
    /// `worker`, `entry`, `at_us`.
    pub fields: Vec<(String, String)>,
}

impl DeadLetterEntry {
    /// The value of `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, value)| value.as_str())
    }
}

/// The newest `count` entries of the dead-letter stream, newest first.
pub async fn newest<C: ConnectionLike>(
    conn: &mut C,
    count: usize,
) -> Result<Vec<DeadLetterEntry>, QueueError> {
    let raw: Vec<(String, Vec<(String, String)>)> = redis::cmd("XREVRANGE")
        .arg(keys::DEAD_LETTER)
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(count.max(1))
        .query_async(conn)
        .await?;
    Ok(raw
        .into_iter()
        .map(|(id, fields)| DeadLetterEntry { id, fields })
        .collect())
}
