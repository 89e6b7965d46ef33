//! verdict's worker: the inference engine and the loop that feeds it from Redis.

pub mod cli;
pub mod engine;
pub mod runner;
