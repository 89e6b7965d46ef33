//! The Redis queue protocol that the api, the workers and `fleet` speak.
//!
//! Every key verdict uses is named in [`keys`]; `docs/protocol.md` describes each
//! key's type, contents and TTL, and who writes it. The life of a job, one file
//! per step:
//!
//! - [`submit`]: the api stores the record and appends the id to the stream;
//!   with `--durability replicated`, [`replicate`]: it waits until a replica
//!   has them too;
//! - [`claim`]: a worker claims entries through the consumer group (the
//!   entry is now pending in this worker's name);
//! - [`start`]: the worker marks the job running and fetches the image
//!   (the second half of a claim: the record says who runs it, attempt n);
//! - [`image_fetched`]: for a job that names its image (a URL, a path), the
//!   worker records the size, hash and format of what it fetched;
//! - [`finish`]: the worker stores the outcome, acknowledges, announces;
//! - [`read`]: the api serves the record (or many at once);
//! - [`register`]: a worker process claims its name (refused while another
//!   live process holds it), [`heartbeat`]: it announces that it is alive
//!   (and notices a name taken over), [`deregister`]: it leaves;
//! - [`stats`]: the counters;
//! - [`metrics`]: what the workers report for `/metrics`;
//! - [`callbacks`]: the jobs still to be POSTed to their `callback_url`;
//! - [`consumer_group`]: creating the group a stream is read through.
//!
//! What the dashboard shows (issue 17):
//!
//! - [`activity`]: the fleet's activity minute by minute, written by the
//!   scripts that end jobs and by [`queue_sample`], the api's sampler;
//! - [`recent_failures`]: the last failed jobs, written where they fail;
//! - [`queued`]: the jobs still waiting for a worker.
//!
//! What keeps jobs from being lost or looping (issue 6, `docs/reliability.md`):
//!
//! - [`renew`]: a live worker keeps the entries it holds from being reclaimed;
//! - [`reclaim`]: a worker takes over the entries of one that went silent;
//! - [`retry`]: a transient failure gives the job back for another attempt;
//! - [`dead_letter`]: a job out of attempts is failed and set aside;
//! - [`dead_list`], [`dead_retry`]: an operator looks at the dead letters,
//!   retries them or discards them;
//! - [`cancel`]: a queued job is withdrawn;
//! - [`policy`]: the limits and delays those steps use.
//!
//! State changes are Lua scripts (`lua/*.lua`), each atomic in Redis; the
//! three a worker runs on a job share their beginning (`job_script.rs`), and
//! so do the three that write a worker's record (`worker_name_script.rs`). A
//! job's image never passes through Lua: submit and start move it with plain
//! commands in the same MULTI/EXEC as their script (`transaction.rs`). A
//! script's reply is read part by part, its verb first (`reply.rs`).
//! [`scripts`] names every script's hash, for reading Redis's `SLOWLOG`.

pub mod activity;
pub mod callbacks;
pub mod cancel;
pub mod claim;
pub mod consumer_group;
pub mod dead_letter;
pub mod dead_list;
pub mod dead_retry;
pub mod deregister;
mod error;
pub mod finish;
pub mod heartbeat;
pub mod image_fetched;
pub mod job_record;
mod job_script;
pub mod keys;
pub mod metrics;
pub mod policy;
pub mod queue_sample;
pub mod queued;
pub mod read;
pub mod recent_failures;
pub mod reclaim;
pub mod register;
pub mod renew;
pub mod replicate;
mod reply;
pub mod retry;
pub mod scripts;
pub mod start;
pub mod stats;
pub mod submit;
mod transaction;
mod worker_name_script;
pub mod worker_record;

pub use claim::StreamEntry;
pub use error::QueueError;
pub use finish::{Finish, Outcome};
pub use start::{Start, StartedJob};
pub use worker_name_script::Holder;
pub use worker_record::WorkerRecord;
