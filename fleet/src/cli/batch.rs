//! `fleet batch INPUT`: run a catalogue of rows through the api (see
//! `verdict_client::batch`).
//!
//! The api is `--api`, else the one of the fleet in the home (its
//! `run/fleet.json`); with neither, the run refuses (it never guesses a port
//! that may be someone else's fleet). The first line on stderr names it.
//!
//! A rerun with the same `--out` tries the failed rows again
//! (`--no-retry-failed` keeps them), and the summary ends with what the
//! whole file holds.
//!
//! Exit code: 0 when every row got verdicts (or was submitted, with
//! `--submit-only`), 2 when some row failed (its line says why; with `--out`,
//! any failed row in the file), 130 when
//! stopped by Ctrl-C, 1 when the run itself could not go on (no api, an api
//! unreachable for `--give-up-after`, a bad input file, a wrong token).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use verdict_client::batch::results::Format;
use verdict_client::batch::{self, Options};
use verdict_supervisor::durations_and_sizes::parse_duration;

/// The result file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutFormat {
    Jsonl,
    Csv,
}

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

    /// The api [default: the api of the fleet in the home (its run/fleet.json)]
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

    /// Only submit the rows: write them as `queued` and leave the judging to
    /// the fleet (run again without it to collect the verdicts). By default
    /// the run waits for every verdict.
    #[arg(long)]
    pub submit_only: bool,

    /// Wait for the verdicts (the default; kept for scripts that say so).
    #[arg(long, hide = true, conflicts_with = "submit_only")]
    pub wait: bool,

    /// How to write the result lines [default: csv for an --out FILE.csv, else jsonl]
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<OutFormat>,

    /// Also write an HTML report of the whole --out file (counts by label
    /// and by sentence, failed rows and why, the slowest rows)
    #[arg(long, value_name = "FILE.html", requires = "out")]
    pub report: Option<PathBuf>,

    /// Keep the rows that failed in an earlier run as they are (by default a
    /// rerun tries them again: their image may have been fixed).
    #[arg(long)]
    pub no_retry_failed: bool,

    /// Give up (exit 1, with the cause) when the api has not answered for this long.
    #[arg(long, default_value = "60s", value_name = "DURATION", value_parser = parse_duration)]
    pub give_up_after: Duration,

    /// Send each image as its path under the fleet's image root (`image_path`)
    /// instead of its bytes: for a fleet whose workers mount the catalogue's
    /// folder (fleet up --image-root), so that images never pass through
    /// Redis. Rows whose image is an https:// URL are sent as image_url
    /// either way.
    #[arg(long)]
    pub by_reference: bool,

    /// With --by-reference: the image root as this machine sees it [default:
    /// the --image-root of the fleet in the home]
    #[arg(long, value_name = "DIR", requires = "by_reference")]
    pub image_root: Option<PathBuf>,

    /// Bearer token for an api that asks for one.
    #[arg(long, env = "VERDICT_API_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

pub fn main(home_flag: Option<&Path>, args: BatchArgs) -> anyhow::Result<ExitCode> {
    let (api, source) = super::api_of(home_flag, args.api.as_deref())?;
    eprintln!("fleet batch: api {api} (from {source})");
    let image_root = if args.by_reference {
        Some(image_root(home_flag, args.image_root.as_deref())?)
    } else {
        None
    };
    let options = Options {
        input: args.input.clone(),
        out: args.out.clone(),
        api,
        token: args.token.clone(),
        concurrency: args.concurrency as usize,
        batch_size: args.batch_size as usize,
        wait: !args.submit_only,
        give_up_after: args.give_up_after,
        retry_failed: !args.no_retry_failed,
        format: match (args.format, &args.out) {
            (Some(OutFormat::Csv), _) => Format::Csv,
            (Some(OutFormat::Jsonl), _) | (None, None) => Format::Jsonl,
            (None, Some(out)) => Format::of(out),
        },
        image_root,
    };
    let format = options.format;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(batch::run(options))?;
    eprintln!(
        "{}",
        outcome.counts.summary(outcome.elapsed, outcome.interrupted)
    );
    // With --out, the file is the answer: its failed rows decide, whichever
    // run wrote them.
    let failed = match (&outcome.file, &args.out) {
        (Some(file), Some(out)) => {
            eprintln!(
                "  {}: {}; failed rows: {}; rows without a verdict yet: {}",
                out.display(),
                file.labels,
                file.failed_rows,
                file.queued_rows
            );
            file.failed_rows
        }
        _ => outcome.counts.failed,
    };
    if let (Some(report), Some(out)) = (&args.report, &args.out) {
        batch::report::write(out, format, report)?;
        eprintln!("  report: {}", report.display());
    }
    Ok(if outcome.interrupted {
        ExitCode::from(130)
    } else if failed > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// The folder `--by-reference` names images under: `--image-root`, else the
/// home's fleet's; canonical, as the rows' paths will be.
fn image_root(home_flag: Option<&Path>, flag: Option<&Path>) -> anyhow::Result<PathBuf> {
    let root = match flag {
        Some(root) => root.to_path_buf(),
        None => {
            let home = verdict_supervisor::home::Home::resolve(home_flag)?;
            let file = home.config_file();
            let root = file
                .exists()
                .then(|| verdict_supervisor::config::FleetConfig::load(&file))
                .transpose()?
                .and_then(|config| config.images.image_root);
            root.ok_or_else(|| {
                anyhow::anyhow!(
                    "--by-reference needs the image root: the fleet in {} has no --image-root; \
                     give --image-root DIR (the folder the fleet's workers read images under)",
                    home.root().display()
                )
            })?
        }
    };
    root.canonicalize()
        .ok()
        .filter(|root| root.is_dir())
        .ok_or_else(|| anyhow::anyhow!("--image-root {} is not a folder", root.display()))
}
