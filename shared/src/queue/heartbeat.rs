//! Workers announcing themselves: register, heartbeat, deregister.
//!
//! A worker keeps its [`WorkerRecord`] at `verdict:worker:{name}` with a TTL of
//! [`HEARTBEAT_TTL`], rewriting it every [`HEARTBEAT_INTERVAL`], and its name in
//! the set `verdict:workers`. A record that exists belongs to a worker that was
//! alive within the TTL; one whose `heartbeat_ms` is older than [`STALE_AFTER`]
//! belongs to a worker that is alive but not beating (hung, or cut off from
//! Redis). A name in the set without a record is a worker that died without
//! deregistering.

use std::time::Duration;

use redis::aio::ConnectionLike;

use super::{QueueError, WorkerRecord, keys};

/// How often a worker rewrites its record.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(2);

/// How long a record lives without being rewritten.
pub const HEARTBEAT_TTL: Duration = Duration::from_secs(10);

/// How old a heartbeat may be before the worker counts as not beating.
pub const STALE_AFTER: Duration = Duration::from_secs(6);

/// Writes (or rewrites) the worker's record with a fresh TTL and adds its
/// name to the set of workers. Used both to register and to heartbeat.
pub async fn beat<C: ConnectionLike>(
    conn: &mut C,
    record: &WorkerRecord,
) -> Result<(), QueueError> {
    let json = serde_json::to_string(record)
        .map_err(|err| QueueError::corrupt(format!("worker record: {err}")))?;
    redis::pipe()
        .atomic()
        .cmd("SET")
        .arg(keys::worker(&record.name))
        .arg(json)
        .arg("PX")
        .arg(HEARTBEAT_TTL.as_millis() as u64)
        .ignore()
        .cmd("SADD")
        .arg(keys::WORKERS)
        .arg(&record.name)
        .ignore()
        .query_async::<()>(conn)
        .await?;
    Ok(())
}

/// Removes the worker's record and its name from the set.
pub async fn deregister<C: ConnectionLike>(conn: &mut C, name: &str) -> Result<(), QueueError> {
    redis::pipe()
        .atomic()
        .cmd("DEL")
        .arg(keys::worker(name))
        .ignore()
        .cmd("SREM")
        .arg(keys::WORKERS)
        .arg(name)
        .ignore()
        .query_async::<()>(conn)
        .await?;
    Ok(())
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
    fn a_stale_heartbeat_still_has_a_live_record() {
        assert!(STALE_AFTER >= HEARTBEAT_INTERVAL * 2);
        assert!(HEARTBEAT_TTL > STALE_AFTER);
    }
}
