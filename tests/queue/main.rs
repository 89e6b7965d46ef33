//! End-to-end tests of the queue: real redis-server, verdict-api and
//! verdict-worker processes (no-op judge), talking HTTP and Redis.
//!
//! The real-model tests (verdicts on photos) are in `queue_model.rs`.

mod bad_requests;
mod fifty_jobs;
mod finish_is_final;
mod graceful_exit;
mod long_poll;
mod redis_restart;
mod tcp_url;
mod together;
mod undecodable_image;
mod worker_names;

use std::time::Duration;

/// Generous bound for anything that should take milliseconds.
pub const PATIENCE: Duration = Duration::from_secs(30);
