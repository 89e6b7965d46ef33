//! `verdict-worker run`: the queue loop. (Being written: see issue 4.)

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct RunArgs {}

pub fn main(_args: RunArgs) -> ExitCode {
    eprintln!("verdict-worker run: not built yet");
    ExitCode::FAILURE
}
