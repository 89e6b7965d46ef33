//! A worker leaving: its record and its place in the set of workers go,
//! unless the name is another process's by now (`lua/deregister.lua`): a
//! process whose name was taken over must not delete the new holder's
//! record on its way out.

use std::sync::LazyLock;

use redis::aio::ConnectionLike;
use redis::{Script, Value};

use super::worker_name_script::{Holder, worker_name_script};
use super::{QueueError, keys, reply};

pub(crate) static DEREGISTER: LazyLock<Script> =
    LazyLock::new(|| worker_name_script(include_str!("lua/deregister.lua")));

/// What the deregister script did.
#[derive(Debug, Clone, PartialEq)]
pub enum Deregistration {
    /// The record and the name in the set are gone (or were already).
    Deregistered,
    /// Another process holds the name: nothing was touched.
    NotOurs { holder: Holder },
}

/// Removes the record of `name` and its place in the set, if the process
/// `instance` still holds it.
pub async fn deregister<C: ConnectionLike>(
    conn: &mut C,
    name: &str,
    instance: &str,
) -> Result<Deregistration, QueueError> {
    let reply: Vec<Value> = DEREGISTER
        .key(keys::worker(name))
        .key(keys::WORKERS)
        .arg(name)
        .arg(instance)
        .invoke_async(conn)
        .await?;
    parse_reply(reply)
}

/// What `deregister.lua` answered, typed.
pub fn parse_reply(reply: Vec<Value>) -> Result<Deregistration, QueueError> {
    let mut parts = reply::Parts::new("deregister", reply);
    match parts.verb()?.as_str() {
        "deregistered" => Ok(Deregistration::Deregistered),
        "not_ours" => Ok(Deregistration::NotOurs {
            holder: Holder::from_raw(parts.string("current record")?),
        }),
        other => Err(parts.unknown(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_typed() {
        let bulk = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        assert_eq!(
            parse_reply(vec![bulk("deregistered")]).unwrap(),
            Deregistration::Deregistered
        );
        assert!(matches!(
            parse_reply(vec![bulk("not_ours"), bulk("{}")]).unwrap(),
            Deregistration::NotOurs { .. }
        ));
        assert!(parse_reply(vec![bulk("gone")]).is_err());
    }
}
