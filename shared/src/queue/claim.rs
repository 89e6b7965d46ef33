//! Claiming jobs, first half: reading the jobs stream as a member of the
//! workers' consumer group, so that each entry is pending in one worker's
//! name (`start` is the second half: the record then says who runs it).
//! `reclaim` takes over the claims of a worker that went silent.
//!
//! Delivery is at-least-once: XREADGROUP hands an entry to one consumer and
//! keeps it in the group's pending list until the job's finish script
//! acknowledges it. An entry holds only the job id (field `job`); the job record
//! holds everything else, so any worker — the first reader, the same worker
//! after a restart, or another one after XAUTOCLAIM — can run the job from the
//! entry alone.

use std::time::Duration;

use redis::Value;
use redis::aio::ConnectionLike;

use super::{QueueError, consumer_group, keys, reply};
use crate::job::JobId;

/// One entry of the jobs stream, as delivered to a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamEntry {
    /// The entry's stream id (`1732450000123-0`), used to acknowledge it.
    pub entry_id: String,
    /// The job it names; `None` for an entry that was deleted after delivery
    /// or does not name a valid job (it is discarded).
    pub job: Option<JobId>,
}

/// Creates the consumer group (and the stream) if they do not exist yet.
///
/// The group starts at id 0 so that jobs submitted before the first worker
/// ever connected are delivered too. Safe to call any number of times; the
/// workers call it on every (re)connection, since a Redis that lost its data
/// lost the group with it.
pub async fn ensure_group<C: ConnectionLike>(conn: &mut C) -> Result<(), QueueError> {
    consumer_group::ensure(conn, keys::STREAM, keys::GROUP).await
}

/// Whether an error says the group (or the stream) is gone: Redis restarted
/// without persistence, or someone deleted the key. Call [`ensure_group`].
pub fn is_missing_group(err: &QueueError) -> bool {
    matches!(err, QueueError::Redis(err) if err.code() == Some("NOGROUP"))
}

/// Reads up to `count` new entries for `consumer`, waiting up to `block` for
/// the first one. An empty result means the wait ended with nothing to do.
///
/// Call it on a dedicated connection (see `RedisUrl::dedicated`): a blocked
/// command holds up every command pipelined behind it.
pub async fn read_new<C: ConnectionLike>(
    conn: &mut C,
    consumer: &str,
    count: usize,
    block: Duration,
) -> Result<Vec<StreamEntry>, QueueError> {
    read_group_new(
        conn,
        keys::STREAM,
        keys::GROUP,
        consumer,
        count,
        Some(block),
    )
    .await
}

/// Reads up to `count` new entries for `consumer` that are already waiting,
/// without waiting for any: what a worker busy with a job reads ahead. An
/// empty result means nothing is queued now.
pub async fn read_queued<C: ConnectionLike>(
    conn: &mut C,
    consumer: &str,
    count: usize,
) -> Result<Vec<StreamEntry>, QueueError> {
    read_group_new(conn, keys::STREAM, keys::GROUP, consumer, count, None).await
}

/// `XREADGROUP` of up to `count` new entries of `stream` for `consumer` of
/// `group`, blocking up to `block` (`None`: not at all): the jobs stream's
/// and the callbacks stream's readers are the same but for the names.
pub(crate) async fn read_group_new<C: ConnectionLike>(
    conn: &mut C,
    stream: &str,
    group: &str,
    consumer: &str,
    count: usize,
    block: Option<Duration>,
) -> Result<Vec<StreamEntry>, QueueError> {
    let mut cmd = redis::cmd("XREADGROUP");
    cmd.arg("GROUP")
        .arg(group)
        .arg(consumer)
        .arg("COUNT")
        .arg(count.max(1));
    if let Some(block) = block {
        // BLOCK 0 would wait for ever: at least a millisecond.
        cmd.arg("BLOCK").arg(block.as_millis().max(1) as u64);
    }
    let reply: Value = cmd
        .arg("STREAMS")
        .arg(stream)
        .arg(">")
        .query_async(conn)
        .await?;
    parse_read_reply(reply)
}

/// `XAUTOCLAIM` for `consumer` of up to `count` entries of `stream` pending in
/// `group` for at least `min_idle`: the jobs stream's reclaim and the
/// callbacks stream's takeover are the same but for the names.
pub(crate) async fn autoclaim<C: ConnectionLike>(
    conn: &mut C,
    stream: &str,
    group: &str,
    consumer: &str,
    min_idle: Duration,
    count: usize,
) -> Result<Vec<StreamEntry>, QueueError> {
    let reply: Value = redis::cmd("XAUTOCLAIM")
        .arg(stream)
        .arg(group)
        .arg(consumer)
        .arg(min_idle.as_millis().max(1) as u64)
        .arg("0-0")
        .arg("COUNT")
        .arg(count.max(1))
        .query_async(conn)
        .await?;
    // [next start, [[id, [field, value, ...] | nil], ...], [deleted ids]]
    let mut parts = reply::array(reply, "XAUTOCLAIM")?.into_iter();
    let _cursor = parts.next();
    parse_entries(parts.next().unwrap_or(Value::Array(Vec::new())))
}

/// Reads up to `count` entries already delivered to `consumer` and not yet
/// acknowledged, with ids after `after` (start with `"0"`).
///
/// A worker reads its own pending entries when it (re)connects: the jobs it
/// held when it lost Redis, or when its previous process with the same name
/// died, are run again at once instead of waiting for a reclaim.
pub async fn read_own_pending<C: ConnectionLike>(
    conn: &mut C,
    consumer: &str,
    count: usize,
    after: &str,
) -> Result<Vec<StreamEntry>, QueueError> {
    let reply: Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(keys::GROUP)
        .arg(consumer)
        .arg("COUNT")
        .arg(count.max(1))
        .arg("STREAMS")
        .arg(keys::STREAM)
        .arg(after)
        .query_async(conn)
        .await?;
    parse_read_reply(reply)
}

/// Acknowledges and deletes an entry that names no runnable job.
pub async fn discard<C: ConnectionLike>(conn: &mut C, entry_id: &str) -> Result<(), QueueError> {
    redis::pipe()
        .atomic()
        .cmd("XACK")
        .arg(keys::STREAM)
        .arg(keys::GROUP)
        .arg(entry_id)
        .ignore()
        .cmd("XDEL")
        .arg(keys::STREAM)
        .arg(entry_id)
        .ignore()
        .query_async::<()>(conn)
        .await?;
    Ok(())
}

/// Parses `nil` or `[[stream, [[id, [field, value, ...] | nil], ...]]]` (or
/// the RESP3 map form).
pub fn parse_read_reply(reply: Value) -> Result<Vec<StreamEntry>, QueueError> {
    let streams = match reply {
        Value::Nil => return Ok(Vec::new()),
        Value::Map(pairs) => pairs.into_iter().map(|(_, entries)| entries).collect(),
        other => reply::array(other, "XREADGROUP")?
            .into_iter()
            .map(|stream| {
                let [_name, entries]: [Value; 2] = reply::array(stream, "XREADGROUP stream")?
                    .try_into()
                    .map_err(|_| QueueError::corrupt("XREADGROUP: expected [stream, entries]"))?;
                Ok(entries)
            })
            .collect::<Result<Vec<_>, QueueError>>()?,
    };
    let mut out = Vec::new();
    for entries in streams {
        out.extend(parse_entries(entries)?);
    }
    Ok(out)
}

/// Parses a list of stream entries `[[id, [field, value, ...] | nil], ...]`,
/// as XREADGROUP and XAUTOCLAIM return them.
pub fn parse_entries(entries: Value) -> Result<Vec<StreamEntry>, QueueError> {
    let mut out = Vec::new();
    for entry in reply::array(entries, "stream entries")? {
        let mut parts = reply::array(entry, "stream entry")?.into_iter();
        let entry_id = reply::string(parts.next().unwrap_or(Value::Nil), "stream entry id")?;
        let job = match parts.next() {
            Some(Value::Array(fields)) => job_field(fields),
            Some(Value::Map(pairs)) => {
                job_field(pairs.into_iter().flat_map(|(k, v)| [k, v]).collect())
            }
            _ => None,
        };
        out.push(StreamEntry { entry_id, job });
    }
    Ok(out)
}

fn job_field(fields: Vec<Value>) -> Option<JobId> {
    let mut fields = fields.into_iter();
    while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
        if matches!(&name, Value::BulkString(b) if b == b"job") {
            return reply::string(value, "job").ok()?.parse().ok();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn parses_entries_deleted_entries_and_timeouts() {
        let id = JobId::new();
        let reply = Value::Array(vec![Value::Array(vec![
            bulk("verdict:jobs"),
            Value::Array(vec![
                Value::Array(vec![
                    bulk("1-0"),
                    Value::Array(vec![bulk("job"), bulk(&id.to_string())]),
                ]),
                Value::Array(vec![bulk("2-0"), Value::Nil]),
                Value::Array(vec![
                    bulk("3-0"),
                    Value::Array(vec![bulk("job"), bulk("not-an-id")]),
                ]),
            ]),
        ])]);
        let entries = parse_read_reply(reply).unwrap();
        assert_eq!(
            entries,
            vec![
                StreamEntry {
                    entry_id: "1-0".into(),
                    job: Some(id)
                },
                StreamEntry {
                    entry_id: "2-0".into(),
                    job: None
                },
                StreamEntry {
                    entry_id: "3-0".into(),
                    job: None
                },
            ]
        );
        assert!(parse_read_reply(Value::Nil).unwrap().is_empty());
        assert!(parse_read_reply(Value::Int(3)).is_err());
    }
}
