//! A worker recording what it fetched for a job by reference.
//!
//! A job that names its image (`image_url`, `image_path`) reaches Redis with
//! no size, hash or format: nobody has read the image yet. The worker that
//! fetches it records those (`lua/image_fetched.lua`) before judging, and a
//! reader sees them in the job's `image` from then on: the job says which
//! bytes were judged even if the URL later serves others.

use std::sync::LazyLock;

use redis::Script;
use redis::aio::ConnectionLike;
use serde::{Deserialize, Serialize};

use super::{QueueError, keys, reply};
use crate::job::JobId;

pub(crate) static IMAGE_FETCHED: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/image_fetched.lua")));

/// What a worker learned about a fetched image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchedImage {
    pub bytes: u64,
    /// Hex sha256 of the bytes.
    pub sha256: String,
    /// The format named by the magic bytes; empty when none is recognised.
    pub format: String,
}

/// Whether the record took it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    Recorded,
    /// The job is no longer running in `worker`'s hands: nothing written.
    NotRunning,
}

/// Records `fetched` on the job `id`, which `worker` runs.
pub async fn image_fetched<C: ConnectionLike>(
    conn: &mut C,
    id: JobId,
    worker: &str,
    fetched: &FetchedImage,
) -> Result<Recorded, QueueError> {
    let json = serde_json::to_string(fetched)
        .map_err(|err| QueueError::corrupt(format!("image_fetched: {err}")))?;
    let reply: redis::Value = IMAGE_FETCHED
        .key(keys::job(&id))
        .arg(worker)
        .arg(json)
        .invoke_async(conn)
        .await?;
    let mut parts = reply::Parts::new("image_fetched", reply::array(reply, "image_fetched")?);
    match parts.verb()?.as_str() {
        "recorded" => Ok(Recorded::Recorded),
        "not_running" => Ok(Recorded::NotRunning),
        other => Err(parts.unknown(other)),
    }
}
