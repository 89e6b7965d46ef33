//! The names of verdict's Redis keys, in one place.
//!
//! All keys share the `verdict:` prefix so that one Redis can be inspected (or
//! flushed) by pattern. Ids and names are validated before they reach a key, so
//! no key can be forged from user input. `docs/protocol.md` gives each key's
//! type, contents and TTL.

use crate::job::JobId;

/// The stream of submitted jobs; workers read it through [`GROUP`].
pub const STREAM: &str = "verdict:jobs";

/// The consumer group of the workers on [`STREAM`].
pub const GROUP: &str = "workers";

/// The set of registered worker names.
pub const WORKERS: &str = "verdict:workers";

/// The pub/sub channel on which a job's id is published when it reaches a
/// terminal state.
pub const EVENTS: &str = "verdict:events";

/// Counters (a hash): jobs submitted, done, failed, late finishes.
pub const STATS: &str = "verdict:stats";

/// The dead-letter stream: one entry per job given up on after its last
/// allowed attempt (fields `job`, `attempts`, `error`, `last_error`, `worker`).
pub const DEAD_LETTER: &str = "verdict:dead";

/// The job record (a hash) of one job.
pub fn job(id: &JobId) -> String {
    format!("verdict:job:{id}")
}

/// A worker's heartbeat record (a string holding a [`super::WorkerRecord`] as JSON),
/// which expires when the worker stops refreshing it.
pub fn worker(name: &str) -> String {
    format!("verdict:worker:{name}")
}
