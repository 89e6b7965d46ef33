//! `verdict-worker judge`: one image, one or more sentences, one JSON line each.
//!
//! The quickest way to see what the model thinks, and the heart of the README's
//! first command. Exit codes: 0 judged, 1 the model could not be loaded, 2 the
//! input (image or sentences) was refused; the reason goes to stderr.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use verdict_shared::telemetry::{self, LogFormat};

use crate::engine;

#[derive(Debug, clap::Args)]
pub struct JudgeArgs {
    /// The model pack directory.
    #[arg(long, env = "VERDICT_MODEL", value_name = "DIR")]
    pub model: PathBuf,
    /// The image file (PNG, JPEG, GIF, WebP, BMP or TIFF).
    #[arg(long, value_name = "PATH")]
    pub image: PathBuf,
    /// A sentence to judge; repeat for several.
    #[arg(long = "text", value_name = "SENTENCE", required = true)]
    pub texts: Vec<String>,
    /// A premise that holds with the image (models that take one: `ofa-ve`).
    #[arg(long, value_name = "TEXT")]
    pub premise: Option<String>,
    /// Threads one inference may use (tract's matrix products are split across
    /// them). 1 suits one worker per core; more suits a pack whose verdict
    /// takes seconds (OFA-large), served by fewer workers with one copy of the
    /// weights each.
    #[arg(long, env = "VERDICT_WORKER_THREADS", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: u16,
    /// Log format on stderr.
    #[arg(long, default_value = "pretty", value_name = "pretty|json")]
    pub log_format: LogFormat,
}

pub fn main(args: JudgeArgs) -> ExitCode {
    telemetry::init(args.log_format);
    engine::threads::use_threads(usize::from(args.threads));
    let judge = match engine::load(&args.model) {
        Ok(judge) => judge,
        Err(err) => {
            eprintln!("error: cannot load the model: {err}");
            return ExitCode::from(1);
        }
    };
    tracing::debug!(
        vm_size_mb = verdict_decode::memory_budget::mapped_bytes().map(|b| b >> 20),
        working_mb = judge.working_bytes() >> 20,
        "model loaded"
    );
    let image = match std::fs::read(&args.image) {
        Ok(bytes) => bytes,
        Err(err) => {
            eprintln!("error: cannot read {}: {err}", args.image.display());
            return ExitCode::from(2);
        }
    };
    let verdicts = match judge.judge(&image, &args.texts, args.premise.as_deref()) {
        Ok(verdicts) => verdicts,
        Err(err) => {
            eprintln!("error: {} ({}): {err}", args.image.display(), err.code());
            return ExitCode::from(2);
        }
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for verdict in verdicts {
        let line = match serde_json::to_string(&verdict) {
            Ok(line) => line,
            Err(err) => {
                eprintln!("error: cannot encode a verdict: {err}");
                return ExitCode::from(1);
            }
        };
        if writeln!(out, "{line}").is_err() {
            // stdout closed (e.g. piped into `head`): nothing left to do.
            return ExitCode::SUCCESS;
        }
    }
    ExitCode::SUCCESS
}
