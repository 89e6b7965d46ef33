//! `fleet`, verdict's process manager, as a library: the `fleet` binary is a
//! thin `main` over [`cli`], and the tests reach the pieces directly.

pub mod api_token;
pub mod batch;
pub mod binaries;
pub mod cli;
pub mod config;
pub mod control;
pub mod embedded_redis;
pub mod home;
pub mod job_policy;
pub mod log_line;
pub mod model;
pub mod names;
pub mod procfs;
pub mod queue_stats;
pub mod recovery;
pub mod units;
pub mod watchdog;
