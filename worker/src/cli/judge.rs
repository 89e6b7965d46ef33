//! `verdict-worker judge`: one image, one or more sentences, one JSON line each. (Being written: see issue 3.)

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct JudgeArgs {}

pub fn main(_args: JudgeArgs) -> ExitCode {
    eprintln!("verdict-worker judge: not built yet");
    ExitCode::FAILURE
}
