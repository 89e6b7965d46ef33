//! A worker process claiming its name before it reads any job
//! (`lua/register.lua`).
//!
//! The name is the worker's consumer in the group: a process that reads
//! under a name gets that name's pending entries, so two live processes
//! under one name would run each other's jobs. The script writes the record
//! only if the name is free, already this process's ([`WorkerRecord::instance`]),
//! or held by a process that has not beaten for [`STALE_AFTER`] (measured on
//! Redis's clock, by the record's TTL: no two hosts' clocks are compared).
//! A process started by a supervisor that reaped the name's previous
//! process names it (`predecessor`), and takes its record over at once: a
//! worker restarted after a `kill -9` runs its pending jobs again without
//! waiting. Otherwise it answers [`Registration::Held`] and writes nothing; the
//! caller asks again, and a holder whose record changed in between is alive
//! (it beats every [`super::heartbeat::HEARTBEAT_INTERVAL`]): the caller
//! must refuse to run (`worker/src/runner/registration.rs`).

use std::sync::LazyLock;
use std::time::Duration;

use redis::aio::ConnectionLike;
use redis::{Script, Value};

use super::heartbeat::{HEARTBEAT_TTL, STALE_AFTER};
use super::worker_name_script::{Holder, record_json, worker_name_script};
use super::{QueueError, WorkerRecord, keys, reply};

pub(crate) static REGISTER: LazyLock<Script> =
    LazyLock::new(|| worker_name_script(include_str!("lua/register.lua")));

/// What the register script did.
#[derive(Debug, Clone, PartialEq)]
pub enum Registration {
    /// The name is this process's now (it was free, or already its own).
    Registered,
    /// The name was held by the dead predecessor, or by a process that had
    /// stopped beating; it is this process's now.
    TookOver { previous: Holder, why: Takeover },
    /// Another process holds the name and beat within [`STALE_AFTER`];
    /// nothing was written. Its record lives `ttl_left` more.
    Held { holder: Holder, ttl_left: Duration },
}

/// Why a register took a name over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Takeover {
    /// The holder was the predecessor the caller named: known dead.
    Predecessor,
    /// The holder had not beaten for [`STALE_AFTER`].
    Silent,
}

/// Claims `record.name` for the process `record.instance`. `predecessor`:
/// the instance of the process that held the name before this one and is
/// known to be dead (the fleet's watchdog reaped it); its record is taken
/// over at once instead of after [`STALE_AFTER`].
pub async fn register<C: ConnectionLike>(
    conn: &mut C,
    record: &WorkerRecord,
    predecessor: Option<&str>,
) -> Result<Registration, QueueError> {
    let reply: Vec<Value> = REGISTER
        .key(keys::worker(&record.name))
        .key(keys::WORKERS)
        .arg(&record.name)
        .arg(&record.instance)
        .arg(record_json(record)?)
        .arg(HEARTBEAT_TTL.as_millis() as u64)
        .arg((HEARTBEAT_TTL - STALE_AFTER).as_millis() as u64)
        .arg(predecessor.unwrap_or(""))
        .invoke_async(conn)
        .await?;
    parse_reply(reply)
}

/// What `register.lua` answered, typed.
pub fn parse_reply(reply: Vec<Value>) -> Result<Registration, QueueError> {
    let mut parts = reply::Parts::new("register", reply);
    match parts.verb()?.as_str() {
        "registered" => Ok(Registration::Registered),
        "took_over" => Ok(Registration::TookOver {
            previous: Holder::from_raw(parts.string("previous record")?),
            why: match parts.string("why")?.as_str() {
                "predecessor" => Takeover::Predecessor,
                "silent" => Takeover::Silent,
                other => return Err(parts.unknown(other)),
            },
        }),
        "held" => Ok(Registration::Held {
            holder: Holder::from_raw(parts.string("current record")?),
            ttl_left: Duration::from_millis(parts.integer("ttl left")?.max(0) as u64),
        }),
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
            parse_reply(vec![bulk("registered")]).unwrap(),
            Registration::Registered
        );
        match parse_reply(vec![bulk("held"), bulk("{}"), Value::Int(9000)]).unwrap() {
            Registration::Held { holder, ttl_left } => {
                assert_eq!(holder.raw, "{}");
                assert_eq!(ttl_left, Duration::from_millis(9000));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_reply(vec![bulk("took_over"), bulk("{}"), bulk("silent")]).unwrap(),
            Registration::TookOver {
                why: Takeover::Silent,
                ..
            }
        ));
        assert!(matches!(
            parse_reply(vec![bulk("took_over"), bulk("{}"), bulk("predecessor")]).unwrap(),
            Registration::TookOver {
                why: Takeover::Predecessor,
                ..
            }
        ));
        assert!(parse_reply(vec![bulk("took_over"), bulk("{}")]).is_err());
        assert!(parse_reply(vec![bulk("took_over"), bulk("{}"), bulk("luck")]).is_err());
        assert!(parse_reply(vec![bulk("held")]).is_err(), "no record");
        assert!(parse_reply(vec![bulk("shared")]).is_err());
    }
}
