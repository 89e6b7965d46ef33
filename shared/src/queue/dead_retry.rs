//! Taking a job out of the dead-letter stream, at an operator's request
//! (`POST /v1/dead/{id}/retry`, `DELETE /v1/dead/{id}`, `fleet dead`):
//! retried, it is queued again from scratch (attempts 0) with the image the
//! dead-lettering kept; discarded, it only leaves the stream (its record
//! stays failed until its TTL). One script, `lua/dead_retry.lua`.

use std::sync::LazyLock;

use redis::aio::ConnectionLike;
use redis::{Script, Value};

use super::{QueueError, keys, reply};
use crate::job::{JobId, JobState};

pub(crate) static DEAD_RETRY: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/dead_retry.lua")));

/// What to do with a dead-lettered job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revive {
    /// Queue it again.
    Retry,
    /// Only take it out of the dead-letter stream.
    Discard,
}

/// What the script did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revived {
    /// Queued again, under this stream entry.
    Queued { entry: String },
    /// Out of the dead-letter stream; the record is left as it was.
    Discarded,
    /// The job exists but is not dead-lettered (this is its state).
    NotDead(JobState),
    /// No such job, or (to retry) no image left to judge: its record expired.
    Missing,
}

/// Retries or discards the dead-lettered job `job_id`.
pub async fn revive<C: ConnectionLike>(
    conn: &mut C,
    job_id: JobId,
    what: Revive,
) -> Result<Revived, QueueError> {
    let verb = match what {
        Revive::Retry => "retry",
        Revive::Discard => "discard",
    };
    let reply: Vec<Value> = DEAD_RETRY
        .key(keys::job(&job_id))
        .key(keys::STREAM)
        .key(keys::STATS)
        .key(keys::DEAD_LETTER)
        .arg(job_id.to_string())
        .arg(verb)
        .invoke_async(conn)
        .await?;
    parse_reply(reply)
}

/// What `dead_retry.lua` answered, typed.
pub fn parse_reply(reply: Vec<Value>) -> Result<Revived, QueueError> {
    let mut parts = reply::Parts::new("dead_retry", reply);
    match parts.verb()?.as_str() {
        "queued" => Ok(Revived::Queued {
            entry: parts.string("entry")?,
        }),
        "discarded" => Ok(Revived::Discarded),
        "not_dead" => Ok(Revived::NotDead(parts.state()?)),
        "missing" => Ok(Revived::Missing),
        other => Err(parts.unknown(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn replies_are_typed() {
        assert_eq!(
            parse_reply(vec![bulk("queued"), bulk("5-0")]).unwrap(),
            Revived::Queued {
                entry: "5-0".into()
            }
        );
        assert_eq!(
            parse_reply(vec![bulk("discarded")]).unwrap(),
            Revived::Discarded
        );
        assert_eq!(
            parse_reply(vec![bulk("not_dead"), bulk("done")]).unwrap(),
            Revived::NotDead(JobState::Done)
        );
        assert_eq!(
            parse_reply(vec![bulk("missing")]).unwrap(),
            Revived::Missing
        );
        assert!(parse_reply(vec![bulk("exploded")]).is_err());
    }
}
