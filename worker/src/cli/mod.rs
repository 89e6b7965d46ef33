//! The worker's subcommands, one file each.

pub mod judge;
pub mod run;
