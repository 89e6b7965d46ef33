//! Reading job records (what the api serves).

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
    let values: Vec<Option<Vec<u8>>> = hmget(&id).query_async(conn).await?;
    job_record::assemble(id, &values)
}

/// Several jobs, in the order of `ids`, in one round trip: one HMGET each,
/// pipelined (each job a consistent snapshot of its own, not of the set).
/// `None` where there is no such job. A record that cannot be read fails
/// the whole call, as [`read_job`] fails for it.
pub async fn read_jobs<C: ConnectionLike>(
    conn: &mut C,
    ids: &[JobId],
) -> Result<Vec<Option<Job>>, QueueError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    for id in ids {
        pipe.add_command(hmget(id));
    }
    let replies: Vec<Vec<Option<Vec<u8>>>> = pipe.query_async(conn).await?;
    if replies.len() != ids.len() {
        return Err(QueueError::corrupt(format!(
            "{} replies to {} HMGETs",
            replies.len(),
            ids.len()
        )));
    }
    ids.iter()
        .zip(&replies)
        .map(|(id, values)| job_record::assemble(*id, values))
        .collect()
}

fn hmget(id: &JobId) -> redis::Cmd {
    let mut cmd = redis::cmd("HMGET");
    cmd.arg(keys::job(id)).arg(&READ_FIELDS[..]);
    cmd
}
