//! What a worker tells the fleet about itself through Redis.
//!
//! A worker writes its record at [`super::keys::worker`] when it starts and
//! refreshes it on every heartbeat with a TTL of a few heartbeat intervals, so a
//! record that is present means a worker that was alive recently. `fleet` reads
//! these records to know that a worker has registered, whether it is hung (its
//! heartbeat is old although its process lives) and how many jobs it has done.

use serde::{Deserialize, Serialize};

/// A worker's self-description, stored as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerRecord {
    /// The worker's name (`--name`), unique in a fleet: `worker-0`, `worker-1`, ...
    pub name: String,
    /// Host name of the machine it runs on.
    pub host: String,
    /// Its process id on that host.
    pub pid: u32,
    /// The model it serves (the pack's name and version).
    pub model: String,
    /// When it started, in milliseconds since the Unix epoch.
    pub started_ms: u64,
    /// Its last heartbeat, in milliseconds since the Unix epoch.
    pub heartbeat_ms: u64,
    /// Jobs it finished (done or failed) since it started.
    pub jobs_done: u64,
    /// The job it holds now, if any.
    #[serde(default)]
    pub current_job: Option<String>,
}
