//! The fleet as `fleet up` resolved it: what to run, where, with which limits.
//!
//! `fleet up` resolves flags, environment and defaults once, writes the result
//! to `run/fleet.json` and hands the file to the watchdog. Every later command
//! (`status`, `logs`, `down`) reads the same file, so they all agree on the
//! URL, the Redis and the model without repeating flags.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use verdict_shared::image_source_args::ImageSourceArgs;
use verdict_shared::redis_tls::RedisTlsArgs;
use verdict_shared::redis_url::RedisUrl;

use crate::api_token::ApiToken;
use crate::embedded_redis::Appendfsync;
use crate::job_policy::JobPolicy;

/// Where the fleet's Redis is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum RedisPlan {
    /// A `redis-server` supervised by the watchdog on a unix socket in `run/`.
    Embedded {
        program: PathBuf,
        socket: PathBuf,
        data_dir: PathBuf,
        appendfsync: Appendfsync,
    },
    /// A Redis run by someone else (`--redis URL`), with the TLS files to
    /// reach it (`--redis-ca`, `--redis-cert`, `--redis-key`).
    External {
        url: String,
        #[serde(default, skip_serializing_if = "RedisTlsArgs::is_empty")]
        tls: RedisTlsArgs,
    },
}

/// What the workers judge with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ModelPlan {
    /// A model pack directory, passed to each worker as `--model DIR`.
    Pack { dir: PathBuf, label: String },
    /// `--noop` workers: no model, every answer `maybe` (tests, benchmarks).
    Noop,
}

/// When the watchdog gives up on a process and how long it waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// More than this many crashes of one process within `crash_window_ms`
    /// marks it failed: no more restarts until `fleet restart`.
    pub crash_limit: u32,
    pub crash_window_ms: u64,
    /// A registered worker whose heartbeat is older than this is hung and is
    /// killed and restarted.
    pub hung_after_ms: u64,
    /// How long a process may take to stop after SIGTERM before SIGKILL.
    pub stop_timeout_ms: u64,
    /// The longest wait before restarting a crashed process
    /// (`--max-restart-delay`).
    #[serde(default = "default_max_restart_delay_ms")]
    pub max_restart_delay_ms: u64,
    /// How long a process marked failed rests before it is tried again
    /// (`--failed-cooldown`; doubles each time it fails again, up to a day;
    /// 0: never, a person runs `fleet restart`).
    #[serde(default = "default_failed_cooldown_ms")]
    pub failed_cooldown_ms: u64,
}

fn default_failed_cooldown_ms() -> u64 {
    crate::watchdog::backoff::FAILED_COOLDOWN.as_millis() as u64
}

fn default_max_restart_delay_ms() -> u64 {
    crate::watchdog::backoff::MAX_DELAY.as_millis() as u64
}

impl Policy {
    /// The first cool-down of a failed process; None: never retried.
    pub fn failed_cooldown(&self) -> Option<Duration> {
        (self.failed_cooldown_ms > 0).then(|| Duration::from_millis(self.failed_cooldown_ms))
    }

    pub fn crash_window(&self) -> Duration {
        Duration::from_millis(self.crash_window_ms)
    }
    pub fn hung_after(&self) -> Duration {
        Duration::from_millis(self.hung_after_ms)
    }
    pub fn stop_timeout(&self) -> Duration {
        Duration::from_millis(self.stop_timeout_ms)
    }
    pub fn max_restart_delay(&self) -> Duration {
        Duration::from_millis(self.max_restart_delay_ms)
    }
}

fn one_thread() -> u16 {
    1
}

/// Everything the watchdog needs to run a fleet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetConfig {
    pub home: PathBuf,
    pub workers: usize,
    /// The api's listen address, `ADDR:PORT`.
    pub bind: String,
    pub redis: RedisPlan,
    pub model: ModelPlan,
    pub api_program: PathBuf,
    pub worker_program: PathBuf,
    /// RLIMIT_AS for each worker, in bytes.
    pub worker_memory: Option<u64>,
    /// Inference threads per worker (`verdict-worker run --threads`).
    #[serde(default = "one_thread")]
    pub worker_threads: u16,
    /// Extra arguments for every worker (`--worker-arg`, tests and benchmarks).
    #[serde(default)]
    pub worker_args: Vec<String>,
    /// Prefix of the names workers register under in Redis: empty with the
    /// embedded Redis (this fleet's alone); with a shared one `HOST-ID-`, the
    /// fleet's id ([`crate::fleet_id`]) making two fleets' `worker-0`
    /// distinct whatever their hosts are called.
    pub worker_name_prefix: String,
    pub policy: Policy,
    /// Attempts, reclaim and queue limits for the workers and the api
    /// (issue 6); defaults when absent.
    #[serde(default)]
    pub jobs: JobPolicy,
    /// The api token (`VERDICT_API_TOKEN` or `--api-token-file`), passed to
    /// the api in its environment. This file is 0600 in a 0700 home.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_token: Option<ApiToken>,
    /// The web page's example photos, passed to the api as `--examples DIR`
    /// (none: the page shows no examples).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub examples: Option<PathBuf>,
    /// The images jobs may name instead of carrying, given to the api and
    /// every worker (`--image-hosts`, `--image-root`).
    #[serde(default, skip_serializing_if = "ImageSourceArgs::is_empty")]
    pub images: ImageSourceArgs,
}

impl FleetConfig {
    /// The URL the api and workers are given.
    pub fn redis_url(&self) -> String {
        match &self.redis {
            RedisPlan::Embedded { socket, .. } => crate::embedded_redis::url(socket),
            RedisPlan::External { url, .. } => url.clone(),
        }
    }

    /// The TLS files the api, the workers and `fleet` reach Redis with
    /// (none for the embedded Redis, on a unix socket).
    pub fn redis_tls(&self) -> RedisTlsArgs {
        match &self.redis {
            RedisPlan::Embedded { .. } => RedisTlsArgs::default(),
            RedisPlan::External { tls, .. } => tls.clone(),
        }
    }

    /// Redis as `fleet` itself connects to it: the URL with its TLS files.
    pub fn redis(&self) -> Result<RedisUrl, String> {
        self.redis_url()
            .parse::<RedisUrl>()
            .and_then(|url| url.with_tls(&self.redis_tls()))
            .map_err(|err| err.to_string())
    }

    /// The Redis URL with any password hidden, for printing.
    pub fn redis_url_redacted(&self) -> String {
        let url = self.redis_url();
        // A URL the api and the workers accept hides its passwords itself
        // (a sentinel URL's query holds one too).
        if let Ok(parsed) = url.parse::<RedisUrl>() {
            return parsed.to_string();
        }
        match (url.find("://"), url.rfind('@')) {
            (Some(scheme_end), Some(at)) if at > scheme_end => {
                format!("{}***{}", &url[..scheme_end + 3], &url[at..])
            }
            _ => url,
        }
    }

    /// The api's base URL for people and probes.
    pub fn api_url(&self) -> String {
        let bind = self.bind.as_str();
        // An api bound to every address is reached locally through loopback.
        let host_port = if let Some(port) = bind.strip_prefix("0.0.0.0:") {
            format!("127.0.0.1:{port}")
        } else if let Some(port) = bind.strip_prefix("[::]:") {
            format!("[::1]:{port}")
        } else {
            bind.to_string()
        };
        format!("http://{host_port}")
    }

    /// The name worker `local` registers under in Redis.
    pub fn registered_name(&self, local: &str) -> String {
        format!("{}{local}", self.worker_name_prefix)
    }

    /// Writes the file atomically (temporary file, then rename), readable
    /// by its owner only: it may hold the api token.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(self)?;
        crate::private_file::replace(path, text.as_bytes())
    }

    pub fn load(path: &Path) -> anyhow::Result<FleetConfig> {
        let text =
            fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a fleet configuration", path.display()))
    }
}

#[cfg(test)]
pub(crate) fn sample(home: &Path) -> FleetConfig {
    FleetConfig {
        home: home.to_path_buf(),
        workers: 2,
        bind: "127.0.0.1:7860".into(),
        redis: RedisPlan::External {
            url: "redis://127.0.0.1:1".into(),
            tls: RedisTlsArgs::default(),
        },
        model: ModelPlan::Noop,
        api_program: "/bin/false".into(),
        worker_program: "/bin/false".into(),
        worker_memory: None,
        worker_threads: 1,
        worker_args: Vec::new(),
        worker_name_prefix: String::new(),
        policy: Policy {
            crash_limit: 5,
            crash_window_ms: 60_000,
            hung_after_ms: 30_000,
            stop_timeout_ms: 5_000,
            max_restart_delay_ms: 30_000,
            failed_cooldown_ms: 300_000,
        },
        jobs: JobPolicy::default(),
        api_token: None,
        examples: None,
        images: ImageSourceArgs::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let config = sample(dir.path());
        let path = dir.path().join("fleet.json");
        config.save(&path).unwrap();
        assert_eq!(FleetConfig::load(&path).unwrap(), config);
    }

    #[test]
    fn printed_redis_urls_hide_passwords() {
        let mut config = sample(Path::new("/h"));
        config.redis = RedisPlan::External {
            url: "redis://:s3cret@db.example:6379/0".into(),
            tls: RedisTlsArgs::default(),
        };
        assert_eq!(config.redis_url_redacted(), "redis://***@db.example:6379/0");
        config.redis = RedisPlan::External {
            url: "redis+sentinel://:s3cret@s1,s2/verdict?sentinel_password=t0p".into(),
            tls: RedisTlsArgs::default(),
        };
        assert_eq!(
            config.redis_url_redacted(),
            "redis+sentinel://***@s1,s2/verdict?sentinel_password=***"
        );
    }

    #[test]
    fn api_url_reaches_a_wildcard_bind_through_loopback() {
        let mut config = sample(Path::new("/h"));
        config.bind = "0.0.0.0:7860".into();
        assert_eq!(config.api_url(), "http://127.0.0.1:7860");
        config.bind = "127.0.0.1:8080".into();
        assert_eq!(config.api_url(), "http://127.0.0.1:8080");
    }
}
