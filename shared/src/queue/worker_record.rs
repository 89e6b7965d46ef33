//! What a worker tells the fleet about itself through Redis.
//!
//! A worker writes its record at [`super::keys::worker`] when it starts and
//! refreshes it on every heartbeat with a TTL of a few heartbeat intervals, so a
//! record that is present means a worker that was alive recently. `fleet` reads
//! these records to know that a worker has registered, whether it is hung (its
//! heartbeat stopped changing although its process lives) and how many jobs it
//! has done.
//!
//! The name is the worker's identity in the consumer group; `instance` is the
//! identity of the process holding it (a random token made when the process
//! starts), so that a second live process can never take a name that is
//! alive ([`super::register`]), and a process whose name was taken over
//! notices it at its next heartbeat ([`super::heartbeat`]).

use serde::{Deserialize, Serialize};

/// A worker's self-description, stored as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerRecord {
    /// The worker's name (`--name`), its consumer in the group: unique by
    /// construction (`worker-0` in a fleet with its own Redis,
    /// `HOST-FLEETID-worker-0` with a shared one, `HOST-RANDOM` by hand).
    pub name: String,
    /// Host name of the machine it runs on, as the kernel has it: a label for
    /// people, never part of an identity (two machines may share it).
    pub host: String,
    /// Its process id on that host.
    pub pid: u32,
    /// The model it serves (the pack's name and version).
    pub model: String,
    /// When it started, in milliseconds since the Unix epoch.
    pub started_ms: u64,
    /// Its last heartbeat, in milliseconds since the Unix epoch, on its own
    /// wall clock: for people; no reader compares it with another clock.
    pub heartbeat_ms: u64,
    /// Heartbeats written since it started: a reader that sees this change
    /// knows the worker beat in between, whatever the clocks say.
    #[serde(default)]
    pub beats: u64,
    /// How long the process had run at its last heartbeat, in milliseconds
    /// on its own monotonic clock: its uptime, which a reader on another
    /// host can show without comparing two clocks ([`WorkerRecord::uptime_s`]).
    /// Absent in records written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uptime_ms: Option<u64>,
    /// The process holding the name: a random token per process
    /// ([`crate::unique_id::instance`]). Empty in records written before
    /// instances existed.
    #[serde(default)]
    pub instance: String,
    /// Jobs it finished (done or failed) since it started.
    pub jobs_done: u64,
    /// The job it holds now, if any.
    #[serde(default)]
    pub current_job: Option<String>,
}

impl WorkerRecord {
    /// How long the worker has run, in seconds, given how long ago (on
    /// Redis's clock: the record's TTL spent, `heartbeat_age_ms`) it last
    /// beat. From [`WorkerRecord::uptime_ms`]; for a record without it,
    /// `now_ms` (the reader's wall clock) less `started_ms`, which is off by
    /// the two hosts' clock difference.
    pub fn uptime_s(&self, heartbeat_age_ms: u64, now_ms: u64) -> f64 {
        let ms = match self.uptime_ms {
            Some(uptime_ms) => uptime_ms.saturating_add(heartbeat_age_ms),
            None => now_ms.saturating_sub(self.started_ms),
        };
        ms as f64 / 1000.0
    }
}
