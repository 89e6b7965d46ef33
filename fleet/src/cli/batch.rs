//! `fleet batch INPUT`: run a catalogue of rows through the api (see
//! `verdict_client::batch`).
//!
//! Exit code: 0 when every row got verdicts (or was queued, without
//! `--wait`), 2 when some row failed (its line says why), 130 when stopped
//! by Ctrl-C, 1 when the run itself could not go on (no api, a bad input
//! file, a wrong token).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use verdict_client::batch::{self, Options};
use verdict_supervisor::config::FleetConfig;
use verdict_supervisor::home::Home;

/// The api a fleet on this machine serves when none is named.
const DEFAULT_API: &str = "http://127.0.0.1:7860";

#[derive(Debug, Clone, clap::Args)]
pub struct BatchArgs {
    /// The rows: *.jsonl ({"id", "image", "text" or "texts", optional "premise"}) or *.csv
    /// (header id,image,text and an optional premise column). Image paths are relative to this
    /// file.
    pub input: PathBuf,

    /// Where to append one JSON line per sentence (stdout if not given). Run
    /// again with the same file to resume: answered rows are skipped.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// The api [default: this machine's fleet (its home's run/fleet.json), else http://127.0.0.1:7860]
    #[arg(long, value_name = "URL")]
    pub api: Option<String>,

    /// Jobs in flight at once: submitted and not yet answered.
    #[arg(long, default_value_t = 32, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub concurrency: u32,

    /// Jobs per POST /v1/batches request.
    #[arg(long, default_value_t = 32, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=256))]
    pub batch_size: u32,

    /// Wait for the verdicts and write them; without it the rows are
    /// submitted, written as `queued`, and judged by the fleet in its time.
    #[arg(long)]
    pub wait: bool,

    /// Bearer token for an api that asks for one.
    #[arg(long, env = "VERDICT_API_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

pub fn main(home_flag: Option<&Path>, args: BatchArgs) -> anyhow::Result<ExitCode> {
    let api = match &args.api {
        Some(api) => api.clone(),
        None => local_api(home_flag),
    };
    let options = Options {
        input: args.input.clone(),
        out: args.out.clone(),
        api,
        token: args.token.clone(),
        concurrency: args.concurrency as usize,
        batch_size: args.batch_size as usize,
        wait: args.wait,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(batch::run(options))?;
    eprintln!(
        "{}",
        outcome.counts.summary(outcome.elapsed, outcome.interrupted)
    );
    Ok(if outcome.interrupted {
        ExitCode::from(130)
    } else if outcome.counts.failed > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// The api of the fleet in this home, if one was set up; else the default.
fn local_api(home_flag: Option<&Path>) -> String {
    Home::resolve(home_flag)
        .ok()
        .and_then(|home| FleetConfig::load(&home.config_file()).ok())
        .map(|config| config.api_url())
        .unwrap_or_else(|| DEFAULT_API.to_owned())
}
