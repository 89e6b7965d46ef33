//! What verdict's binaries share: the job model, the Redis queue protocol, limits,
//! PID files and telemetry.

pub mod job;
pub mod limits;
pub mod pidfile;
pub mod queue;
pub mod telemetry;
pub mod verdict;
