//! Shared helpers for the end-to-end tests: real `redis-server`, `verdict-api`
//! and `verdict-worker` processes, each killed when its guard is dropped (even
//! when a test fails), with their logs kept in a temporary directory and
//! printed when a test panics.

pub mod bench_report;
pub mod binaries;
pub mod browser;
pub mod client;
pub mod faketime;
pub mod fixtures;
pub mod fleet;
pub mod netns;
pub mod process;
pub mod redis_server;
pub mod reliability;
pub mod replicated_redis;
pub mod stack;
pub mod tls;

pub use client::ApiClient;
pub use redis_server::RedisServer;
pub use stack::{Stack, StackOptions};
