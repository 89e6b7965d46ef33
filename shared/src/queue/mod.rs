//! The Redis queue protocol that the api, the workers and `fleet` speak.
//!
//! Every key verdict uses is named in [`keys`]; `docs/protocol.md` describes each
//! key's type, contents and TTL, and who writes it. The life of a job, one file
//! per step:
//!
//! - [`submit`]: the api stores the record and appends the id to the stream;
//! - [`consume`]: a worker reads entries through the consumer group;
//! - [`start`]: the worker marks the job running and fetches the image;
//! - [`finish`]: the worker stores the outcome, acknowledges, announces;
//! - [`read`]: the api serves the record;
//! - [`heartbeat`]: workers announce that they are alive;
//! - [`stats`]: the counters;
//! - [`metrics`]: what the workers report for `/metrics`;
//! - [`callbacks`]: the jobs still to be POSTed to their `callback_url`.
//!
//! State changes are Lua scripts (`lua/*.lua`), each atomic in Redis.

pub mod callbacks;
pub mod consume;
mod error;
pub mod finish;
pub mod heartbeat;
pub mod job_record;
pub mod keys;
pub mod metrics;
pub mod read;
mod reply;
pub mod start;
pub mod stats;
pub mod submit;
pub mod worker_record;

pub use consume::StreamEntry;
pub use error::QueueError;
pub use finish::{Finish, Outcome};
pub use start::{Start, StartedJob};
pub use worker_record::WorkerRecord;
