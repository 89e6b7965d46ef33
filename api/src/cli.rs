//! `verdict-api`'s command line.

use std::net::SocketAddr;

use clap::Parser;
use verdict_shared::limits;
use verdict_shared::redis_tls::RedisTlsArgs;
use verdict_shared::redis_url::RedisUrl;
use verdict_shared::telemetry::LogFormat;

/// verdict's HTTP API: validates and enqueues jobs in Redis, serves results.
#[derive(Debug, Clone, Parser)]
#[command(name = "verdict-api", version)]
pub struct Args {
    /// Redis to use: redis://HOST:PORT, rediss://HOST:PORT, unix:///PATH or
    /// redis+sentinel://HOST[:PORT][,HOST[:PORT]...]/SERVICE (whichever node
    /// the sentinels name as primary, followed through failovers).
    #[arg(long, env = "VERDICT_REDIS_URL")]
    pub redis: RedisUrl,

    #[command(flatten)]
    pub redis_tls: RedisTlsArgs,

    /// Address to listen on (port 0 picks a free port; the log says which).
    #[arg(long, env = "VERDICT_BIND", default_value = "127.0.0.1:7860")]
    pub bind: SocketAddr,

    /// Log format: pretty (for a terminal) or json (one object per line).
    #[arg(long, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,

    /// Largest request body accepted, in bytes.
    #[arg(long, default_value_t = limits::DEFAULT_MAX_BODY_BYTES,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1024..=1 << 30))]
    pub max_body_bytes: usize,

    /// Largest image accepted, in bytes (encoded, as uploaded).
    #[arg(long, default_value_t = limits::DEFAULT_MAX_IMAGE_BYTES,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=512 << 20))]
    pub max_image_bytes: usize,

    /// How long a finished job's result is kept, in seconds.
    #[arg(long, default_value_t = 24 * 60 * 60,
          value_parser = clap::value_parser!(u64).range(1..=365 * 24 * 60 * 60))]
    pub result_ttl: u64,

    /// Largest `POST /v1/batches` body accepted, in bytes.
    #[arg(long, default_value_t = 32 << 20,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1024..=1 << 30))]
    pub max_batch_bytes: usize,

    /// Most jobs in one `POST /v1/batches`.
    #[arg(long, default_value_t = 256,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=10_000))]
    pub max_batch_jobs: usize,

    /// Hosts that jobs may name in `callback_url`, comma-separated (`host` or
    /// `host:port`). Empty: no callbacks at all (a job naming one is refused).
    #[arg(
        long,
        env = "VERDICT_CALLBACK_HOSTS",
        value_delimiter = ',',
        value_name = "HOST[:PORT],..."
    )]
    pub callback_hosts: Vec<String>,

    #[command(flatten)]
    pub images: verdict_shared::image_source_args::ImageSourceArgs,

    /// A file holding the secret that signs callbacks (HMAC-SHA256 of the
    /// body); required with --callback-hosts unless VERDICT_CALLBACK_SECRET is set.
    #[arg(long, env = "VERDICT_CALLBACK_SECRET_FILE", value_name = "FILE")]
    pub callback_secret_file: Option<std::path::PathBuf>,

    /// How many times a callback is tried before it is given up.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub callback_attempts: u32,
    /// Most jobs queued or running at once; beyond it submissions get 429
    /// with Retry-After (backpressure). 0: no limit.
    #[arg(long, env = "VERDICT_MAX_QUEUE_DEPTH", default_value_t = DEFAULT_MAX_QUEUE_DEPTH)]
    pub max_queue_depth: u64,

    /// When a submission is accepted: async (once the primary has it) or
    /// replicated (once a replica has it too: WAIT 1 after the submission;
    /// 503 not_replicated when no replica confirms it in time).
    #[arg(long, value_enum, env = "VERDICT_DURABILITY", default_value = "async")]
    pub durability: crate::durability::Durability,

    /// How long a request waits for Redis before it answers 503
    /// redis_unavailable, in milliseconds.
    #[arg(long, value_name = "MS",
          default_value_t = crate::redis_deadline::DEFAULT_REDIS_TIMEOUT.as_millis() as u64,
          value_parser = clap::value_parser!(u64).range(50..=60_000))]
    pub redis_timeout_ms: u64,

    /// Seconds a client has to send a request's headers, counted from the
    /// connection's opening or its previous response (so it also closes
    /// idle keep-alive connections).
    #[arg(long, value_name = "SECONDS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub header_timeout: u64,

    /// The slowest a request body may arrive, in bytes a second, once
    /// --body-grace has passed; slower bodies get 408 body_too_slow.
    #[arg(long, value_name = "BYTES_PER_S", default_value_t = 4096,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub body_min_rate: u64,

    /// Seconds a request body may take before --body-min-rate applies.
    #[arg(long, value_name = "SECONDS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub body_grace: u64,

    /// Connections served at once; past this a new connection gets 503
    /// too_many_connections. Lowered to the open-file limit (raised to its
    /// hard limit at start) less 256 when that is smaller.
    #[arg(long, value_name = "N", default_value_t = 4096,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_connections: u64,

    /// A host name (or address) this api answers to in `Host`, besides
    /// loopback names and the bind address; repeat for several. Needed to
    /// refuse DNS-rebinding requests on an api bound to 0.0.0.0.
    #[arg(
        long = "allowed-host",
        value_name = "HOST",
        env = "VERDICT_ALLOWED_HOSTS",
        value_delimiter = ','
    )]
    pub allowed_hosts: Vec<String>,

    /// An origin (`https://tools.example`) whose pages may submit and cancel
    /// jobs, besides the api's own page; repeat for several.
    #[arg(
        long = "cors-origin",
        value_name = "ORIGIN",
        env = "VERDICT_CORS_ORIGINS",
        value_delimiter = ','
    )]
    pub cors_origins: Vec<String>,

    /// A directory of example photos for the web page, named with their alt
    /// text and sentences in DIR/examples.json (scripts/fetch-test-photos
    /// writes one in .cache/photos). Read once at start; without it the page
    /// shows no examples.
    #[arg(long, value_name = "DIR")]
    pub examples: Option<std::path::PathBuf>,
}

/// The default queue limit: about 1000 x the average image in Redis's memory
/// (a few hundred MB for photos), and minutes of work for a small fleet.
pub const DEFAULT_MAX_QUEUE_DEPTH: u64 = 1000;
