//! Reading a job record (what the api serves).

use redis::aio::ConnectionLike;

use super::job_record::{self, READ_FIELDS};
use super::{QueueError, keys};
use crate::job::{Job, JobId};

/// The job as stored now, or `None` if there is no such job (never submitted,
/// or its result expired). One HMGET: a consistent snapshot.
pub async fn read_job<C: ConnectionLike>(
    conn: &mut C,
    id: JobId,
) -> Result<Option<Job>, QueueError> {
    let values: Vec<Option<Vec<u8>>> = redis::cmd("HMGET")
        .arg(keys::job(&id))
        .arg(&READ_FIELDS[..])
        .query_async(conn)
        .await?;
    job_record::assemble(id, &values)
}
