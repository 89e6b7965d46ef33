//! Consumer groups: creating one (and its stream) if it is not there yet.
//!
//! Both streams read through a group (the jobs, read by workers; the
//! callbacks, read by the api's senders) create it the same way.

use redis::aio::ConnectionLike;

use super::QueueError;

/// Creates `group` on `stream` (and the stream) if they do not exist yet.
///
/// The group starts at id 0 so that entries added before its first reader
/// connected are delivered too. Safe to call any number of times; readers
/// call it on every (re)connection, since a Redis that lost its data lost
/// the group with it.
pub async fn ensure<C: ConnectionLike>(
    conn: &mut C,
    stream: &str,
    group: &str,
) -> Result<(), QueueError> {
    let created: Result<(), redis::RedisError> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(stream)
        .arg(group)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(conn)
        .await;
    match created {
        Ok(()) => Ok(()),
        Err(err) if err.code() == Some("BUSYGROUP") => Ok(()),
        Err(err) => Err(err.into()),
    }
}
