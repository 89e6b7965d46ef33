//! The most recent failed jobs (`verdict:failures`), for the dashboard.
//!
//! The scripts that fail a job push it here in the step that fails it
//! (`finish.lua` for an error the judge or the image gave, `dead_letter.lua`
//! for a job out of attempts; the helper is `remember_failure` in
//! `lua/job_end.lua`), newest first, trimmed to [`KEPT`] entries: a list
//! that answers "what went wrong lately" without scanning job records.

use redis::aio::ConnectionLike;
use serde::{Deserialize, Serialize};

use super::{QueueError, keys};

/// How many failures the list keeps.
pub const KEPT: usize = 100;

/// One failed job, as the failing script recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecentFailure {
    /// The job's id.
    pub job: String,
    /// The error's code (`image_unreadable`, `attempts_exhausted`, ...).
    pub code: String,
    /// The error's message, cut to 300 bytes.
    pub message: String,
    /// The worker that failed it.
    pub worker: String,
    /// When, in milliseconds since the epoch (Redis's clock).
    pub at_ms: u64,
    /// Whether the job went to the dead-letter stream.
    pub dead_lettered: bool,
}

/// The newest `count` failures, newest first. An entry that does not parse
/// is skipped (and logged): one bad entry must not hide the rest.
pub async fn newest<C: ConnectionLike>(
    conn: &mut C,
    count: usize,
) -> Result<Vec<RecentFailure>, QueueError> {
    if count == 0 {
        return Ok(Vec::new());
    }
    let raw: Vec<Vec<u8>> = redis::cmd("LRANGE")
        .arg(keys::RECENT_FAILURES)
        .arg(0)
        .arg(count - 1)
        .query_async(conn)
        .await?;
    Ok(raw
        .iter()
        .filter_map(|entry| {
            // The message was cut by bytes: it may end inside a character.
            let text = String::from_utf8_lossy(entry);
            match serde_json::from_str(&text) {
                Ok(failure) => Some(failure),
                Err(err) => {
                    tracing::warn!(error = %err, "unreadable recent failure");
                    None
                }
            }
        })
        .collect())
}
