//! The `fleet up` flags that keep jobs from being lost and strangers out:
//! durability (of the embedded Redis, or replication to a replica of an
//! external one), attempts, reclaim, queue limit, restart delays and the api
//! token. See `docs/reliability.md` and `docs/scale-out.md`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;
use verdict_shared::queue::policy;

use verdict_supervisor::api_token::ApiToken;
use verdict_supervisor::durations_and_sizes::parse_duration;
use verdict_supervisor::embedded_redis::Appendfsync;
use verdict_supervisor::job_policy::{
    DEFAULT_MAX_QUEUE_DEPTH, DEFAULT_REDIS_TIMEOUT_MS, JobPolicy,
};

/// What an accepted job (202) has survived: how the embedded Redis flushes
/// its append-only file, or whether a replica of an external Redis has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Durability {
    /// `appendfsync everysec` for the embedded Redis: a crash of Redis loses
    /// nothing; a crash of the machine may lose the last second of accepted
    /// jobs. With --redis: accepted once the primary has the job, replicas
    /// follow (`async`, the api's default).
    #[value(alias = "async")]
    Normal,
    /// `appendfsync always` (embedded Redis only): an accepted job is on
    /// disk before the api answers 202; each write waits for an fsync.
    Strict,
    /// With --redis only (a primary with replicas, best through Sentinel):
    /// accepted once a replica has the job too (`verdict-api --durability
    /// replicated`, WAIT 1); otherwise 503 not_replicated.
    Replicated,
}

impl Durability {
    /// The embedded Redis's `appendfsync` (`replicated` is refused with the
    /// embedded Redis before this is asked).
    pub fn appendfsync(self) -> Appendfsync {
        match self {
            Durability::Normal | Durability::Replicated => Appendfsync::Everysec,
            Durability::Strict => Appendfsync::Always,
        }
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct ReliabilityArgs {
    /// What an accepted job survives. Embedded Redis: normal (appendfsync
    /// everysec) or strict (appendfsync always: accepted jobs survive even a
    /// machine crash, at the cost of an fsync per write). With --redis:
    /// normal (alias async: once the primary has it) or replicated (once a
    /// replica has it too: survives a failover)
    #[arg(long, value_enum, default_value = "normal")]
    pub durability: Durability,
    /// Starts allowed per job; the next moves it to the dead-letter stream,
    /// failed (must not exceed --crash-limit: a job that kills its worker
    /// costs one crash per attempt)
    #[arg(long, default_value_t = policy::DEFAULT_MAX_ATTEMPTS, value_name = "N")]
    pub max_attempts: u32,
    /// A job idle this long in the hands of a worker that stopped renewing it
    /// (dead, hung, cut off) is taken over by another worker
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = parse_duration)]
    pub reclaim_after: Duration,
    /// Most jobs queued or running; beyond it the api answers 429 with
    /// Retry-After (0: no limit)
    #[arg(long, default_value_t = DEFAULT_MAX_QUEUE_DEPTH, value_name = "N")]
    pub max_queue_depth: u64,
    /// How long an api request waits for Redis before it answers 503, in
    /// milliseconds (50 to 60000); raise it for a Redis across a network
    #[arg(long, default_value_t = DEFAULT_REDIS_TIMEOUT_MS, value_name = "MS",
          value_parser = clap::value_parser!(u64).range(50..=60_000))]
    pub redis_timeout_ms: u64,
    /// The longest wait before restarting a crashed process (the delay
    /// doubles from 100 ms with each crash in a row)
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = parse_duration)]
    pub max_restart_delay: Duration,
    /// How long a process marked failed (more than --crash-limit crashes
    /// within --crash-window) rests before the watchdog tries it again; the
    /// rest doubles while it keeps failing, up to a day. 0s: never (only
    /// `fleet restart` brings it back)
    #[arg(long, default_value = "5m", value_name = "DURATION", value_parser = parse_duration)]
    pub failed_cooldown: Duration,
    /// Require this token (first line of FILE) as `Authorization: Bearer` on
    /// every /v1 request [default: $VERDICT_API_TOKEN if set, else no token]
    #[arg(long, value_name = "FILE")]
    pub api_token_file: Option<PathBuf>,
}

impl ReliabilityArgs {
    /// Checks the flags against each other and the crash limit.
    pub fn job_policy(&self, crash_limit: u32) -> anyhow::Result<JobPolicy> {
        if !(1..=100).contains(&self.max_attempts) {
            bail!("--max-attempts must be from 1 to 100");
        }
        if self.max_attempts > crash_limit {
            bail!(
                "--max-attempts {} is more than --crash-limit {crash_limit}: a job that kills \
                 every worker running it would mark a worker failed before it is dead-lettered",
                self.max_attempts
            );
        }
        let min = policy::MIN_RECLAIM_AFTER;
        if self.reclaim_after < min {
            bail!(
                "--reclaim-after must be at least {}s: live workers renew their jobs every {}s",
                min.as_secs(),
                verdict_shared::queue::heartbeat::HEARTBEAT_INTERVAL.as_secs()
            );
        }
        Ok(JobPolicy {
            max_attempts: self.max_attempts,
            reclaim_after_s: self.reclaim_after.as_secs().max(min.as_secs()),
            max_queue_depth: self.max_queue_depth,
            redis_timeout_ms: self.redis_timeout_ms,
            replicated: self.durability == Durability::Replicated,
        })
    }

    pub fn api_token(&self) -> anyhow::Result<Option<ApiToken>> {
        ApiToken::resolve(self.api_token_file.as_deref())
    }
}
