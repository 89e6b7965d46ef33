//! `verdict-worker run`: take jobs from Redis and post verdicts back until stopped.
//!
//! Loads the judge once (the model pack in `--model`, or the no-op judge with
//! `--noop`), then hands it to the run loop in [`crate::runner`]. Exits 0 after
//! a SIGTERM or SIGINT once the jobs in hand are finished, non-zero when it
//! cannot start (bad flags, a model that does not load, a name that another
//! live process holds) or when its name is taken over while it runs.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use verdict_shared::queue::heartbeat::is_valid_worker_name;
use verdict_shared::queue::policy;
use verdict_shared::redis_tls::RedisTlsArgs;
use verdict_shared::redis_url::RedisUrl;
use verdict_shared::shutdown;
use verdict_shared::telemetry::{self, LogFormat};

use super::memory_limit;
use crate::engine::{Judge, NoopJudge};
use crate::image_fetch::FetchConfig;
use crate::runner::simulated_delay::DelayedJudge;
use crate::runner::{self, RunnerConfig};

/// Where the fleet's watchdog names a worker's dead predecessor
/// (`--predecessor`).
pub const PREDECESSOR_ENV: &str = "VERDICT_WORKER_PREDECESSOR";

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Redis to use: redis://HOST:PORT, rediss://HOST:PORT, unix:///PATH or
    /// redis+sentinel://HOST[:PORT][,HOST[:PORT]...]/SERVICE (whichever node
    /// the sentinels name as primary, followed through failovers).
    #[arg(long, env = "VERDICT_REDIS_URL")]
    pub redis: RedisUrl,

    #[command(flatten)]
    pub redis_tls: RedisTlsArgs,

    /// The model pack directory (see docs/model-pack.md).
    #[arg(long, env = "VERDICT_MODEL", required_unless_present = "noop")]
    pub model: Option<PathBuf>,

    /// This worker's name: its consumer in the group, so it must be unique
    /// among the processes sharing the Redis (letters, digits, '.', '_', '-').
    /// A name that a live process holds is refused. Default: HOST-RANDOM (the
    /// host name cut to 24 characters and 12 random hex digits), unique by
    /// construction, new at every start.
    #[arg(long)]
    pub name: Option<String>,

    /// The instance token of the process that held --name before this one,
    /// known to be dead: its record is taken over at once instead of after
    /// it goes unwritten for STALE_AFTER. Set by the fleet's watchdog, which
    /// reaped that process; not for people.
    #[arg(long, env = PREDECESSOR_ENV, hide = true, value_name = "INSTANCE")]
    pub predecessor: Option<String>,

    /// Skip inference: answer `maybe` to everything (for measuring the queue).
    #[arg(long)]
    pub noop: bool,

    /// With --noop: hold each job this many milliseconds, as inference would.
    #[arg(long, value_name = "MS", requires = "noop")]
    pub noop_delay_ms: Option<u64>,

    /// Most jobs taken from the stream at once (started and finished together;
    /// judged one after another until the engine batches).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub batch_size: u16,

    /// While a read's jobs are being judged, read the jobs already queued
    /// behind them (never waiting for new ones): the judge then goes from one
    /// job to the next without waiting for Redis. A worker holds at most two
    /// reads' jobs. `false`: read again only when a read's jobs have all ended.
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub read_ahead: bool,

    /// How many times a job may be started; the start after the last one
    /// moves it to the dead-letter stream and fails it (a job that keeps
    /// killing workers, or keeps failing transiently, never loops).
    #[arg(long, default_value_t = policy::DEFAULT_MAX_ATTEMPTS,
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_attempts: u32,

    /// Seconds a job may sit idle in the hands of a worker that stopped
    /// renewing it (dead, hung, cut off from Redis) before this worker takes
    /// it over. Live workers renew their jobs every heartbeat (2 s).
    #[arg(long, value_name = "SECONDS", default_value_t = policy::DEFAULT_RECLAIM_AFTER.as_secs(),
          value_parser = clap::value_parser!(u64).range(policy::MIN_RECLAIM_AFTER.as_secs()..=86_400))]
    pub reclaim_after: u64,

    /// Threads one inference may use (tract's matrix products are split across
    /// them). 1 suits one worker per core; more suits a pack whose verdict
    /// takes seconds (OFA-large), served by fewer workers with one copy of the
    /// weights each.
    #[arg(long, env = "VERDICT_WORKER_THREADS", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: u16,

    #[command(flatten)]
    pub images: verdict_shared::image_source_args::ImageSourceArgs,

    /// The largest image fetched by reference, in bytes (the api's limit for
    /// an image sent with the job).
    #[arg(long, default_value_t = verdict_shared::limits::DEFAULT_MAX_IMAGE_BYTES,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=512 << 20))]
    pub max_image_bytes: usize,

    /// How long fetching one image_url may take, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = crate::image_fetch::DEFAULT_TIMEOUT.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub image_timeout: u64,

    /// Log format: pretty (for a terminal) or json (one object per line).
    #[arg(long, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,
}

pub fn main(args: RunArgs) -> ExitCode {
    telemetry::init(args.log_format);
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "verdict-worker run failed");
            ExitCode::FAILURE
        }
    }
}

fn run(args: RunArgs) -> anyhow::Result<()> {
    let name = match &args.name {
        Some(name) if is_valid_worker_name(name) => name.clone(),
        Some(name) => bail!(
            "--name {name:?} is not a worker name: use 1 to 64 letters, digits, '.', '_' or '-'"
        ),
        None => default_name(),
    };
    let redis = args.redis.clone().with_tls(&args.redis_tls)?;
    let images = FetchConfig {
        hosts: args.images.allow_list().map_err(anyhow::Error::msg)?,
        root: args.images.image_root.clone(),
        max_bytes: args.max_image_bytes,
        timeout: Duration::from_secs(args.image_timeout),
    };
    crate::engine::threads::use_threads(usize::from(args.threads));
    if let (Some(model), false) = (&args.model, args.noop) {
        memory_limit::check_room_to_load(model)?;
    }
    let judge = memory_limit::load(|| load_judge(&args))?;
    memory_limit::check_room_to_judge(judge.as_ref())?;
    // The judge runs on tokio's blocking pool; the loop itself is light, so one
    // runtime thread is enough and leaves the cores to inference.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let (_trigger, shutdown) =
            shutdown::on_terminate_signals().context("cannot install signal handlers")?;
        let config = RunnerConfig {
            name,
            predecessor: args.predecessor.clone().filter(|p| !p.is_empty()),
            batch_size: usize::from(args.batch_size),
            read_ahead: args.read_ahead,
            block: RunnerConfig::DEFAULT_BLOCK,
            max_attempts: args.max_attempts,
            reclaim_after: Duration::from_secs(args.reclaim_after),
            images,
        };
        runner::run(redis, config, judge, shutdown).await
    })
}

fn load_judge(args: &RunArgs) -> anyhow::Result<Arc<dyn Judge>> {
    if args.noop {
        return Ok(match args.noop_delay_ms {
            Some(ms) => Arc::new(DelayedJudge::new(NoopJudge, Duration::from_millis(ms))),
            None => Arc::new(NoopJudge),
        });
    }
    let Some(model) = &args.model else {
        bail!("--model DIR (or VERDICT_MODEL) is required unless --noop is given");
    };
    let started = std::time::Instant::now();
    let judge = crate::engine::load(model)
        .with_context(|| format!("cannot load the model pack at {}", model.display()))?;
    tracing::info!(
        model = judge.model_name(),
        path = %model.display(),
        load_ms = started.elapsed().as_millis() as u64,
        depthwise_kernel = crate::engine::onnx_graph::depthwise_kernel(),
        pointwise_kernel = crate::engine::onnx_graph::pointwise_kernel(),
        "model loaded"
    );
    Ok(judge)
}

/// HOST-RANDOM: two machines may share a host name, and a PID is only
/// unique on one machine, so the host is only a readable beginning.
fn default_name() -> String {
    format!(
        "{}-{}",
        verdict_shared::host::name_for_ids(),
        verdict_shared::unique_id::short()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_default_name_is_valid_and_new_each_time() {
        let name = default_name();
        assert!(is_valid_worker_name(&name), "{name}");
        assert_ne!(name, default_name());
    }
}
