//! The worker's subcommands, one file each: `run` (jobs from Redis, the
//! worker's life), `judge_one_image` (`verdict-worker judge`: one image from
//! the command line, no Redis), `calibrate`, `bench` and `bench_ofa`; `memory_limit`: `run` under
//! `--worker-memory`, a limit too small refused before a job is taken.

pub mod bench;
pub mod bench_ofa;
pub mod calibrate;
pub mod judge_one_image;
pub mod memory_limit;
pub mod run;
