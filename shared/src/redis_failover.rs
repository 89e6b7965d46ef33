//! Recognising a failover in what Redis answers.
//!
//! When the sentinels promote a replica ([`crate::redis_sentinel`]), the
//! connections to the old primary do not all fail the same way: if it died,
//! they break (I/O errors, which every caller already treats as "Redis
//! unavailable"); if it is still alive and has been turned into a replica
//! (it came back, or a network partition healed), it answers every write
//! with a `READONLY` error reply over a perfectly healthy connection; a
//! replica that lost its primary may answer `MASTERDOWN`. Those replies say
//! that the connection goes to the wrong node: it must be dropped, and the
//! next one asks the sentinels where the primary is now. And while no
//! primary is known (the sentinels have not promoted one yet), looking one
//! up fails: the caller should back off and retry, as for a Redis that is
//! down.
//!
//! A `READONLY` reply can come alone (a command, a script), inside EXEC's
//! reply, or as the reason a transaction was aborted (`EXECABORT`: a write
//! refused while it was queued); [`answer_is_wrong_node`] and
//! [`error_is_wrong_node`] look in all three places.

use redis::{ErrorKind, RedisError, ServerErrorKind, Value};

/// Whether a server error of this kind says the node is not (or no longer)
/// the primary.
fn wrong_node_kind(kind: Option<ServerErrorKind>) -> bool {
    matches!(
        kind,
        Some(ServerErrorKind::ReadOnly | ServerErrorKind::MasterDown)
    )
}

/// Whether `err` is a `READONLY` or `MASTERDOWN` reply, alone or among the
/// errors that aborted a transaction.
pub fn error_is_wrong_node(err: &RedisError) -> bool {
    if let ErrorKind::Server(kind) = err.kind()
        && wrong_node_kind(Some(kind))
    {
        return true;
    }
    // An aborted transaction (EXECABORT) or a failed pipeline carries the
    // errors of its commands.
    err.clone()
        .into_server_errors()
        .is_some_and(|errors| errors.iter().any(|(_, e)| wrong_node_kind(e.kind())))
}

/// Whether a reply holds a `READONLY` or `MASTERDOWN` error reply (itself, or
/// among the values of EXEC's or a pipeline's reply).
pub fn answer_is_wrong_node(value: &Value) -> bool {
    match value {
        Value::ServerError(err) => wrong_node_kind(err.kind()),
        Value::Array(items) => items.iter().any(answer_is_wrong_node),
        _ => false,
    }
}

/// Whether `err` says no primary could be found through the sentinels right
/// now (none named, or the named one is not a primary): a failover in
/// progress, to be waited out like an outage.
pub fn is_no_primary_yet(err: &RedisError) -> bool {
    matches!(
        err.kind(),
        ErrorKind::MasterNameNotFoundBySentinel | ErrorKind::NoValidReplicasFoundBySentinel
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(raw: &str) -> Value {
        redis::parse_redis_value(raw.as_bytes()).expect("a RESP reply")
    }

    #[test]
    fn readonly_and_masterdown_say_wrong_node_wherever_they_are() {
        let readonly = reply("-READONLY You can't write against a read only replica.\r\n");
        let masterdown = reply("-MASTERDOWN Link with MASTER is down\r\n");
        let other = reply("-ERR finish: outcome must be done or failed\r\n");
        assert!(answer_is_wrong_node(&readonly));
        assert!(answer_is_wrong_node(&masterdown));
        assert!(!answer_is_wrong_node(&other));
        assert!(answer_is_wrong_node(&Value::Array(vec![
            Value::Okay,
            readonly.clone()
        ])));
        assert!(!answer_is_wrong_node(&Value::Array(vec![
            Value::Okay,
            other.clone()
        ])));

        let as_error = |value: Value| -> RedisError {
            match value {
                Value::ServerError(err) => err.into(),
                _ => unreachable!(),
            }
        };
        assert!(error_is_wrong_node(&as_error(readonly)));
        assert!(error_is_wrong_node(&as_error(masterdown)));
        assert!(!error_is_wrong_node(&as_error(other)));
        let io: RedisError =
            std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset").into();
        assert!(!error_is_wrong_node(&io));
    }

    #[test]
    fn a_missing_primary_is_recognised() {
        let missing = RedisError::from((
            ErrorKind::MasterNameNotFoundBySentinel,
            "Master with given name not found in sentinel",
        ));
        assert!(is_no_primary_yet(&missing));
        let config = RedisError::from((ErrorKind::InvalidClientConfig, "bad"));
        assert!(!is_no_primary_yet(&config));
    }
}
