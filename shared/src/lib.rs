//! What verdict's binaries share: the job model, the Redis queue protocol, limits,
//! PID files and telemetry.

pub mod job;
pub mod limits;
pub mod queue;
pub mod telemetry;
pub mod verdict;
