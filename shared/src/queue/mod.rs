//! The Redis queue protocol that the api, the workers and `fleet` speak.
//!
//! Every key verdict uses is named in [`keys`]; `docs/protocol.md` describes each
//! key's type, contents and TTL, and who writes it.

pub mod keys;
pub mod worker_record;

pub use worker_record::WorkerRecord;
