//! Workers announcing that they are alive: the heartbeat, and reading the
//! records.
//!
//! A worker claims its name once ([`super::register`]), then keeps its
//! [`WorkerRecord`] at `verdict:worker:{name}` with a TTL of
//! [`HEARTBEAT_TTL`], rewriting it every [`HEARTBEAT_INTERVAL`] (each time
//! with [`WorkerRecord::beats`] one higher), and its name in the set
//! `verdict:workers`; it leaves with [`super::deregister`]. A record that
//! exists belongs to a worker that beat within the TTL; a name in the set
//! without a record is a worker that died without deregistering.
//!
//! Liveness is never judged by comparing the record's `heartbeat_ms` (the
//! worker's wall clock) with a reader's wall clock: hosts' clocks differ and
//! step. A reader that can watch over time (the watchdog) judges by the time
//! on its own monotonic clock since the record last *changed*; one that
//! looks once (`/readyz`, `/metrics`, `fleet status`) by whether the record
//! exists, that is by its TTL on Redis's clock; the register script by the
//! TTL left ([`STALE_AFTER`]).

use std::sync::LazyLock;
use std::time::Duration;

use redis::aio::ConnectionLike;
use redis::{Script, Value};

use super::worker_name_script::{Holder, record_json, worker_name_script};
use super::{QueueError, WorkerRecord, keys, reply};

/// How often a worker rewrites its record.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(2);

/// How long a record lives without being rewritten.
pub const HEARTBEAT_TTL: Duration = Duration::from_secs(10);

/// How long a record may go without being rewritten before its worker
/// counts as not beating (dead, hung or cut off), and another process may
/// take its name ([`super::register`]): three beats.
pub const STALE_AFTER: Duration = Duration::from_secs(6);

pub(crate) static BEAT: LazyLock<Script> =
    LazyLock::new(|| worker_name_script(include_str!("lua/beat.lua")));

/// What a heartbeat did.
#[derive(Debug, Clone, PartialEq)]
pub enum Beat {
    /// The record is rewritten with a fresh TTL.
    Beaten,
    /// Another process holds the name now (this one did not beat for
    /// [`STALE_AFTER`] and it registered): nothing was written; this process
    /// must stop.
    Taken { holder: Holder },
}

/// Rewrites the worker's record with a fresh TTL (and keeps its name in the
/// set of workers), unless another process has taken the name.
pub async fn beat<C: ConnectionLike>(
    conn: &mut C,
    record: &WorkerRecord,
) -> Result<Beat, QueueError> {
    let reply: Vec<Value> = BEAT
        .key(keys::worker(&record.name))
        .key(keys::WORKERS)
        .arg(&record.name)
        .arg(&record.instance)
        .arg(record_json(record)?)
        .arg(HEARTBEAT_TTL.as_millis() as u64)
        .invoke_async(conn)
        .await?;
    parse_beat_reply(reply)
}

/// What `beat.lua` answered, typed.
pub fn parse_beat_reply(reply: Vec<Value>) -> Result<Beat, QueueError> {
    let mut parts = reply::Parts::new("beat", reply);
    match parts.verb()?.as_str() {
        "beat" => Ok(Beat::Beaten),
        "taken" => Ok(Beat::Taken {
            holder: Holder::from_raw(parts.string("current record")?),
        }),
        other => Err(parts.unknown(other)),
    }
}

/// The records of the workers whose record has not expired, by name.
/// Records that do not parse are skipped (and logged): one bad record must
/// not hide the others.
pub async fn live_workers<C: ConnectionLike>(
    conn: &mut C,
) -> Result<Vec<WorkerRecord>, QueueError> {
    let names: Vec<String> = redis::cmd("SMEMBERS")
        .arg(keys::WORKERS)
        .query_async(conn)
        .await?;
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let mut records: Vec<WorkerRecord> = worker_records(conn, &names)
        .await?
        .into_iter()
        .flatten()
        .collect();
    records.sort_by(|a: &WorkerRecord, b| a.name.cmp(&b.name));
    Ok(records)
}

/// The records of the named workers, in the same order: `None` for one that
/// has none (expired: not beating) or whose record does not parse (logged).
/// One MGET.
pub async fn worker_records<C: ConnectionLike>(
    conn: &mut C,
    names: &[String],
) -> Result<Vec<Option<WorkerRecord>>, QueueError> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let keys: Vec<String> = names.iter().map(|name| keys::worker(name)).collect();
    let raw: Vec<Option<String>> = redis::cmd("MGET").arg(&keys).query_async(conn).await?;
    let records = raw
        .into_iter()
        .zip(names)
        .map(|(raw, name)| match serde_json::from_str(&raw?) {
            Ok(record) => Some(record),
            Err(err) => {
                tracing::warn!(worker = %name, error = %err, "unreadable worker record");
                None
            }
        })
        .collect();
    Ok(records)
}

/// Whether `name` can be a worker name: 1 to 64 ASCII letters, digits, `.`,
/// `_` or `-` (it becomes part of a key and a consumer name).
pub fn is_valid_worker_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_names_cannot_forge_keys() {
        assert!(is_valid_worker_name("worker-0"));
        assert!(is_valid_worker_name("host.example-1234"));
        assert!(!is_valid_worker_name(""));
        assert!(!is_valid_worker_name("a:b"));
        assert!(!is_valid_worker_name("a b"));
        assert!(!is_valid_worker_name("*"));
        assert!(!is_valid_worker_name(&"x".repeat(65)));
    }

    #[test]
    fn beat_replies_are_typed() {
        let bulk = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        assert_eq!(parse_beat_reply(vec![bulk("beat")]).unwrap(), Beat::Beaten);
        match parse_beat_reply(vec![bulk("taken"), bulk("{}")]).unwrap() {
            Beat::Taken { holder } => assert_eq!(holder.raw, "{}"),
            other => panic!("{other:?}"),
        }
        assert!(parse_beat_reply(vec![bulk("taken")]).is_err());
        assert!(parse_beat_reply(vec![bulk("shared")]).is_err());
    }

    #[test]
    fn a_stale_heartbeat_still_has_a_live_record() {
        assert!(STALE_AFTER >= HEARTBEAT_INTERVAL * 2);
        assert!(HEARTBEAT_TTL > STALE_AFTER);
    }
}
