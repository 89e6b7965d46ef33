//! `fleet up`: resolve the fleet, clean up after a previous one, start the
//! watchdog detached (or run it here with `--foreground`), wait until the
//! fleet is ready and say where everything is.

use std::fs::OpenOptions;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use nix::sys::signal::{SigHandler, Signal, signal};
use verdict_shared::image_source_args::ImageSourceArgs;
use verdict_shared::outln;
use verdict_shared::redis_tls::RedisTlsArgs;
use verdict_shared::redis_url::RedisUrl;
use verdict_shared::telemetry::{self, LogFormat};
use verdict_supervisor::pidfile::{self, Probe};

use crate::binaries;
use verdict_supervisor::config::{FleetConfig, ModelPlan, Policy, RedisPlan};
use verdict_supervisor::durations_and_sizes::{format_size, parse_duration, parse_size};
use verdict_supervisor::home::Home;
use verdict_supervisor::recovery;
use verdict_supervisor::watchdog::{self, WatchdogError};

use super::up_safeguards::{Durability, ReliabilityArgs};
use super::wait;

#[derive(Debug, Clone, clap::Args)]
pub struct UpArgs {
    /// Number of workers [default: the number of CPU cores divided by
    /// --worker-threads]
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// Threads each worker's inference uses. 1 (one worker per core) suits the
    /// default pack; a pack whose verdict takes seconds (OFA-large) is better
    /// served by fewer workers with several threads each: one copy of the
    /// weights per worker, and each verdict sooner (docs/model-pack.md)
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub worker_threads: u16,
    /// Address and port the api listens on
    #[arg(
        long,
        env = "VERDICT_BIND",
        default_value = "127.0.0.1:7860",
        value_name = "ADDR:PORT"
    )]
    pub bind: String,
    /// Use this Redis instead of starting an embedded one (redis://, rediss://, unix://, or
    /// redis+sentinel://HOST[:PORT],.../SERVICE to follow a Redis that fails over)
    #[arg(long, env = "VERDICT_REDIS_URL", value_name = "URL")]
    pub redis: Option<String>,
    /// TLS to a --redis rediss:// (or rediss+sentinel://) URL with a private CA or client
    /// certificates; handed to the api and every worker.
    #[command(flatten)]
    pub redis_tls: RedisTlsArgs,
    /// The model pack the workers load [default: ./models/default, or the
    /// repository's models/default next to this build]
    #[arg(
        long,
        env = "VERDICT_MODEL",
        value_name = "DIR",
        conflicts_with = "noop_workers"
    )]
    pub model: Option<PathBuf>,
    /// Run the workers with --noop: no model, every sentence answered `maybe`.
    /// For tests and queue benchmarks only; never for real verdicts.
    #[arg(long)]
    pub noop_workers: bool,
    /// Example photos the web page offers: a directory with the manifest
    /// examples.json (scripts/fetch-test-photos writes one) [default:
    /// ./.cache/photos, or the repository's .cache/photos next to this
    /// build, when it has one; else none]
    #[arg(long, value_name = "DIR", conflicts_with = "no_examples")]
    pub examples: Option<PathBuf>,
    /// Offer no example photos on the web page
    #[arg(long)]
    pub no_examples: bool,
    #[command(flatten)]
    pub images: ImageSourceArgs,
    /// One more argument for every worker, passed through as given (repeat
    /// for several), e.g. --worker-arg=--noop-delay-ms=2000. For tests and
    /// benchmarks: the fleet does not check what the worker makes of it
    #[arg(long = "worker-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub worker_args: Vec<String>,
    /// Keep the watchdog in the foreground (for systemd and containers)
    #[arg(long)]
    pub foreground: bool,
    /// Allow running as root (a dedicated user is the safe way)
    #[arg(long)]
    pub allow_root: bool,
    /// Address-space limit of each worker (RLIMIT_AS), e.g. 4G; a worker that
    /// hits it dies and is restarted like any crash
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub worker_memory: Option<u64>,
    /// How long to wait for the fleet to become ready
    #[arg(long, default_value = "60s", value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Duration,
    /// A registered worker whose heartbeat has not changed for this long
    /// (on the watchdog's monotonic clock) is hung: killed and restarted
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = parse_duration)]
    pub hung_after: Duration,
    /// A process that crashes more than this many times within --crash-window is marked failed
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub crash_limit: u32,
    /// The window --crash-limit counts crashes in
    #[arg(long, default_value = "60s", value_name = "DURATION", value_parser = parse_duration)]
    pub crash_window: Duration,
    /// How long a process may take to stop after SIGTERM before SIGKILL
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = parse_duration)]
    pub stop_timeout: Duration,
    /// Format of the watchdog's own log in the foreground (detached, it is always json)
    #[arg(long, default_value = "pretty", value_name = "FORMAT")]
    pub log_format: LogFormat,
    /// Durability, attempts, reclaim, queue limit, restart delay, api token.
    #[command(flatten)]
    pub reliability: ReliabilityArgs,
}

pub fn main(home_flag: Option<&Path>, args: UpArgs) -> anyhow::Result<ExitCode> {
    refuse_root(args.allow_root)?;
    let home = Home::resolve(home_flag)?;
    home.create()?;

    let watchdog_pid = home.pid_file("watchdog");
    match pidfile::probe(&watchdog_pid)? {
        Probe::Running { pid } => {
            eprintln!(
                "fleet: already running, watchdog PID {} (home {}); `fleet status` shows it, `fleet down` stops it",
                pid.map_or_else(|| "unknown".into(), |p| p.to_string()),
                home.root().display()
            );
            return Ok(ExitCode::FAILURE);
        }
        Probe::Stale { pid } => {
            pidfile::remove_if_stale(&watchdog_pid)?;
            outln!(
                "stale PID file run/watchdog.pid ({}, lock free: that process is gone); removed",
                pid.map_or_else(|| "no valid PID".into(), |p| format!("PID {p}"))
            );
        }
        Probe::Absent => {}
    }

    let config = resolve(&home, &args)?;
    // Orphans of a watchdog that was killed, stale files of a crash: reported
    // and cleaned before anything starts.
    let sweep = recovery::sweep(&home, Duration::from_secs(10))?;
    for line in sweep.lines() {
        outln!("{line}");
    }
    check_bind(&config.bind)?;
    config.save(&home.config_file())?;

    if args.foreground {
        telemetry::init(args.log_format);
        return match watchdog::run(home, config) {
            Ok(()) => Ok(ExitCode::SUCCESS),
            Err(WatchdogError::AlreadyRunning { pid, .. }) => {
                eprintln!("fleet: already running, watchdog PID {pid}");
                Ok(ExitCode::FAILURE)
            }
            Err(WatchdogError::Other(err)) => Err(err),
        };
    }

    let child = spawn_detached(&home)?;
    wait::until_up(&home, &config, child, args.timeout)
}

/// Refuses an address the api could not listen on, before anything starts
/// (the api would crash-loop on it), naming who holds it.
fn check_bind(bind: &str) -> anyhow::Result<()> {
    let err = match std::net::TcpListener::bind(bind) {
        Ok(_) => return Ok(()),
        Err(err) => err,
    };
    let port = bind.parse::<SocketAddr>().map_or(0, |a| a.port());
    let holder = match verdict_supervisor::procfs::listener(port) {
        Some((pid, name)) => format!("{name} (PID {pid}) listens on port {port}"),
        None if err.kind() == std::io::ErrorKind::AddrInUse => {
            "another process listens on it (one this user may not look into)".to_string()
        }
        None => err.to_string(),
    };
    bail!(
        "the api cannot listen on {bind}: {holder}; stop it, or choose another address with --bind HOST:PORT"
    )
}

/// Refuses root without `--allow-root`.
pub fn refuse_root(allow_root: bool) -> anyhow::Result<()> {
    if nix::unistd::geteuid().is_root() && !allow_root {
        bail!(
            "refusing to run the fleet as root: run it as a dedicated user (see docs/fleet.md, \
             \"A dedicated user\"), or pass --allow-root if you really mean it"
        );
    }
    Ok(())
}

/// Turns flags, environment and defaults into the fleet's configuration.
pub fn resolve(home: &Home, args: &UpArgs) -> anyhow::Result<FleetConfig> {
    args.bind.parse::<SocketAddr>().with_context(|| {
        format!(
            "--bind {:?} is not ADDR:PORT (e.g. 127.0.0.1:7860)",
            args.bind
        )
    })?;
    let workers = match args.workers {
        Some(n) => n,
        None => {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            (cores / usize::from(args.worker_threads)).max(1)
        }
    };
    if workers > watchdog::supervisor::MAX_WORKERS {
        bail!(
            "--workers {workers} is more than the maximum of {}",
            watchdog::supervisor::MAX_WORKERS
        );
    }
    // Workers beat every HEARTBEAT_INTERVAL; a limit closer than two beats
    // would kill healthy workers between beats.
    let min_hung = verdict_shared::queue::heartbeat::HEARTBEAT_INTERVAL * 2;
    if args.hung_after < min_hung {
        bail!(
            "--hung-after must be at least {}s: workers beat every {}s",
            min_hung.as_secs(),
            min_hung.as_secs() / 2
        );
    }
    if args.crash_limit == 0 {
        bail!("--crash-limit must be at least 1");
    }
    let jobs = args.reliability.job_policy(args.crash_limit)?;
    let api_token = args.reliability.api_token()?;
    let (redis, worker_name_prefix) = match &args.redis {
        Some(_) if args.reliability.durability == Durability::Strict => bail!(
            "--durability strict applies to the embedded Redis only: set appendfsync on the Redis at --redis"
        ),
        Some(url) => {
            validate_redis_url(url, &args.redis_tls)?;
            // Workers of several fleets share this Redis: their names carry
            // this fleet's id (unique by construction, kept in the home so a
            // restarted worker finds its pending jobs) and, to be read, the
            // host name (two machines may share one).
            let fleet_id = verdict_supervisor::fleet_id::load_or_create(home)?;
            (
                RedisPlan::External {
                    url: url.clone(),
                    tls: args.redis_tls.clone(),
                },
                format!("{}-{fleet_id}-", verdict_shared::host::name_for_ids()),
            )
        }
        None if args.reliability.durability == Durability::Replicated => bail!(
            "--durability replicated needs a Redis with replicas: give --redis \
             (redis+sentinel://... to follow failovers); the embedded Redis has none"
        ),
        None if !args.redis_tls.is_empty() => bail!(
            "--redis-ca, --redis-cert and --redis-key are for a Redis given with --redis rediss://...; the embedded Redis is on a unix socket"
        ),
        None => (
            RedisPlan::Embedded {
                program: binaries::find("redis-server")?,
                socket: home.redis_socket(),
                data_dir: home.redis_dir(),
                appendfsync: args.reliability.durability.appendfsync(),
            },
            String::new(),
        ),
    };
    let model = crate::model::resolve(args.model.as_deref(), args.noop_workers)?;
    let examples = crate::examples::resolve(args.examples.as_deref(), args.no_examples)?;
    let images = image_sources(args)?;
    Ok(FleetConfig {
        home: home.root().to_path_buf(),
        workers,
        bind: args.bind.clone(),
        redis,
        model,
        api_program: binaries::find("verdict-api")?,
        worker_program: binaries::find("verdict-worker")?,
        worker_memory: args.worker_memory,
        worker_threads: args.worker_threads,
        worker_args: args.worker_args.clone(),
        worker_name_prefix,
        policy: Policy {
            crash_limit: args.crash_limit,
            crash_window_ms: args.crash_window.as_millis() as u64,
            hung_after_ms: args.hung_after.as_millis() as u64,
            stop_timeout_ms: args.stop_timeout.as_millis() as u64,
            max_restart_delay_ms: args.reliability.max_restart_delay.as_millis() as u64,
            failed_cooldown_ms: args.reliability.failed_cooldown.as_millis() as u64,
        },
        jobs,
        api_token,
        examples,
        images,
    })
}

/// `--image-hosts` and `--image-root`, checked here (the list's form, the
/// folder's existence) rather than by every child; the root is made
/// absolute, since the children run in the fleet's home.
fn image_sources(args: &UpArgs) -> anyhow::Result<ImageSourceArgs> {
    args.images.allow_list().map_err(anyhow::Error::msg)?;
    let image_root = match &args.images.image_root {
        Some(root) => Some(
            root.canonicalize()
                .ok()
                .filter(|root| root.is_dir())
                .with_context(|| format!("--image-root {} is not a folder", root.display()))?,
        ),
        None => None,
    };
    Ok(ImageSourceArgs {
        image_hosts: args.images.image_hosts.clone(),
        image_root,
    })
}

/// The URL as the api and the workers will parse it, with its TLS files
/// read: refused here, before anything starts, rather than by every child.
fn validate_redis_url(url: &str, tls: &RedisTlsArgs) -> anyhow::Result<()> {
    url.parse::<RedisUrl>()
        .and_then(|url| url.with_tls(tls))
        .map_err(|err| anyhow::anyhow!("--redis: {err}"))?;
    Ok(())
}
/// Starts `fleet watchdog` in a new session with SIGHUP ignored, its output
/// appended to `logs/watchdog.log`.
fn spawn_detached(home: &Home) -> anyhow::Result<std::process::Child> {
    let exe = std::env::current_exe().context("cannot find the fleet executable")?;
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(home.log_file("watchdog"))
        .with_context(|| format!("cannot open {}", home.log_file("watchdog").display()))?;
    let mut cmd = Command::new(exe);
    cmd.arg("--home")
        .arg(home.root())
        .arg("watchdog")
        // The token travels in fleet.json and reaches the api alone.
        .env_remove(verdict_supervisor::api_token::ENV)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .current_dir(home.root());
    // SAFETY: setsid and sigaction are async-signal-safe; nothing is allocated.
    unsafe {
        cmd.pre_exec(|| {
            // A new session: no controlling terminal, so closing the terminal
            // sends it nothing; and its own process group, which its children
            // join.
            nix::unistd::setsid()?;
            // Belt and braces until the watchdog installs its own handler.
            signal(Signal::SIGHUP, SigHandler::SigIgn)?;
            Ok(())
        });
    }
    cmd.spawn().context("cannot start the watchdog")
}

/// The summary printed once the fleet is ready.
pub fn summary(home: &Home, config: &FleetConfig, watchdog_pid: u32) -> String {
    let model = match &config.model {
        ModelPlan::Pack { dir, label } => format!("{label} ({})", dir.display()),
        ModelPlan::Noop => {
            "none: --noop workers answer `maybe` to everything (tests/benchmarks)".into()
        }
    };
    let redis = match &config.redis {
        RedisPlan::Embedded {
            socket, data_dir, ..
        } => format!(
            "embedded, unix socket {} (data in {})",
            socket.display(),
            data_dir.display()
        ),
        RedisPlan::External { .. } if config.jobs.replicated => format!(
            "external, {} (--durability replicated: jobs accepted once a replica has them)",
            config.redis_url_redacted()
        ),
        RedisPlan::External { .. } => format!("external, {}", config.redis_url_redacted()),
    };
    let threads = match config.worker_threads {
        1 => String::new(),
        n => format!(", {n} inference threads each"),
    };
    let memory = config
        .worker_memory
        .map(|m| format!("{threads}, {} address space each", format_size(m)))
        .unwrap_or(threads);
    let examples = match &config.examples {
        Some(dir) => dir.display().to_string(),
        None => "none (see fleet up --examples)".into(),
    };
    let home_flag = format!("--home {}", home.root().display());
    format!(
        "verdict fleet is up (watchdog PID {watchdog_pid})\n\
         \x20 web page and API  {url}/\n\
         \x20 model             {model}\n\
         \x20 page examples     {examples}\n\
         \x20 workers           {workers}{memory}\n\
         \x20 Redis             {redis}\n\
         \x20 PID files         {run}\n\
         \x20 logs              {logs}   (fleet logs [NAME] [-f] {home_flag})\n\
         \x20 status / stop     fleet status {home_flag} / fleet down {home_flag}",
        url = config.api_url(),
        workers = config.workers,
        run = home.run_dir().display(),
        logs = home.logs_dir().display(),
    )
}
