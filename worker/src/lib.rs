//! verdict's worker: the inference engine and the loop that feeds it from Redis.
//!
//! - [`engine`]: the [`engine::Judge`] trait and its pack kinds (the
//!   default `label-grounded` pack, OFA visual entailment, the no-op judge),
//!   model packs, image preprocessing, tract graphs, the profiler;
//! - [`image_fetch`]: the image of a job that names it, from a URL on the
//!   allow-list or a file under the shared image root;
//! - [`runner`]: the run loop: reading jobs from Redis, judging them on the
//!   judge thread, posting verdicts, heartbeats, reclaim, reconnection;
//! - [`cli`]: the subcommands of `verdict-worker` (`run`, `judge`,
//!   `calibrate`, `bench`, `bench-ofa`).

pub mod cli;
pub mod engine;
pub mod image_fetch;
pub mod runner;
