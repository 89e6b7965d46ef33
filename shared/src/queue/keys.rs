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

/// The prefix of [`job`] keys (scripts that find a job from an id they read
/// build its key with it).
pub const JOB_PREFIX: &str = "verdict:job:";
/// The dead-letter stream: one entry per job given up on after its last
/// allowed attempt (fields `job`, `attempts`, `error`, `last_error`, `worker`).
pub const DEAD_LETTER: &str = "verdict:dead";

/// The prefix of the per-minute activity hashes (issue 17's dashboard):
/// `verdict:minute:{unix minute}` holds the metrics fields of the jobs that
/// ended in that minute, `jobs:done` and `jobs:failed`, and the queue as the
/// api sampled it (`queued`, `in_flight` and their `:max`). Scripts build
/// the minute's key from Redis's clock (see [`super::activity`]).
pub const MINUTE_PREFIX: &str = "verdict:minute:";

/// The activity hash of one minute (minutes since the Unix epoch).
pub fn minute(unix_minute: u64) -> String {
    format!("{MINUTE_PREFIX}{unix_minute}")
}

/// The most recent failed jobs (a list of JSON objects, newest first,
/// capped; see [`super::recent_failures`]).
pub const RECENT_FAILURES: &str = "verdict:failures";

/// The job record (a hash) of one job.
pub fn job(id: &JobId) -> String {
    format!("{JOB_PREFIX}{id}")
}

/// Callbacks to send (a stream): one entry per ended job that asked for one,
/// added by the script that ended it, read by the api processes through
/// [`CALLBACK_GROUP`].
pub const CALLBACKS: &str = "verdict:callbacks";

/// The consumer group of the callback senders (the api processes) on
/// [`CALLBACKS`]: each entry goes to one of them.
pub const CALLBACK_GROUP: &str = "senders";

/// What only the workers know, for `/metrics` (a hash of counters): verdicts
/// by label, failures by code, histogram buckets, cache hits.
pub const METRICS: &str = "verdict:metrics";

/// An `Idempotency-Key` (a string holding `{job id} {fingerprint}`), named by
/// the sha256 of the client's key so that no client text reaches a key name.
pub fn idempotency(key_sha256_hex: &str) -> String {
    format!("verdict:idempotency:{key_sha256_hex}")
}

/// A worker's heartbeat record (a string holding a [`super::WorkerRecord`] as JSON),
/// which expires when the worker stops refreshing it.
pub fn worker(name: &str) -> String {
    format!("verdict:worker:{name}")
}
