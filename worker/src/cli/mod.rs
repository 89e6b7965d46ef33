//! The worker's subcommands, one file each.

pub mod bench;
pub mod bench_ofa;
pub mod calibrate;
pub mod judge;
pub mod run;
