//! What the fleet tells its workers and api about giving up on jobs, taking
//! over abandoned ones and refusing new ones (issue 6, `docs/reliability.md`):
//! `fleet up --max-attempts`, `--reclaim-after`, `--max-queue-depth`, how
//! long the api waits for Redis before it answers 503 (`--redis-timeout-ms`),
//! and whether it waits for a replica before it accepts a job
//! (`--durability replicated`, issue 19).

use std::ffi::OsString;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use verdict_shared::queue::policy;

/// The limits, as `fleet up` resolved them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobPolicy {
    /// Starts allowed per job before it is dead-lettered (`verdict-worker
    /// --max-attempts`).
    pub max_attempts: u32,
    /// Seconds an entry may sit idle in a silent worker's hands before
    /// another takes it over (`verdict-worker --reclaim-after`).
    pub reclaim_after_s: u64,
    /// Most jobs queued or running; beyond it the api answers 429
    /// (`verdict-api --max-queue-depth`; 0: no limit).
    pub max_queue_depth: u64,
    /// How long an api request waits for Redis before it answers 503
    /// (`verdict-api --redis-timeout-ms`; raise it for a Redis across a
    /// network).
    #[serde(default = "default_redis_timeout_ms")]
    pub redis_timeout_ms: u64,
    /// Whether the api accepts a job only once a replica has it
    /// (`verdict-api --durability replicated`).
    #[serde(default)]
    pub replicated: bool,
}

/// The api's default Redis deadline (kept equal to `verdict-api`'s).
pub const DEFAULT_REDIS_TIMEOUT_MS: u64 = 800;

fn default_redis_timeout_ms() -> u64 {
    DEFAULT_REDIS_TIMEOUT_MS
}

/// The api's default queue limit (kept equal to `verdict-api`'s).
pub const DEFAULT_MAX_QUEUE_DEPTH: u64 = 1000;

impl Default for JobPolicy {
    fn default() -> Self {
        JobPolicy {
            max_attempts: policy::DEFAULT_MAX_ATTEMPTS,
            reclaim_after_s: policy::DEFAULT_RECLAIM_AFTER.as_secs(),
            max_queue_depth: DEFAULT_MAX_QUEUE_DEPTH,
            redis_timeout_ms: DEFAULT_REDIS_TIMEOUT_MS,
            replicated: false,
        }
    }
}

impl JobPolicy {
    pub fn reclaim_after(&self) -> Duration {
        Duration::from_secs(self.reclaim_after_s)
    }

    /// The arguments every worker gets.
    pub fn worker_args(&self) -> Vec<OsString> {
        vec![
            "--max-attempts".into(),
            self.max_attempts.to_string().into(),
            "--reclaim-after".into(),
            self.reclaim_after_s.to_string().into(),
        ]
    }

    /// The arguments the api gets.
    pub fn api_args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            "--max-queue-depth".into(),
            self.max_queue_depth.to_string().into(),
            "--redis-timeout-ms".into(),
            self.redis_timeout_ms.to_string().into(),
        ];
        if self.replicated {
            args.extend(["--durability".into(), "replicated".into()]);
        }
        args
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_queues_and_become_arguments() {
        let policy = JobPolicy::default();
        assert_eq!(policy.max_attempts, 3);
        assert_eq!(policy.reclaim_after(), Duration::from_secs(30));
        assert_eq!(
            policy.worker_args(),
            ["--max-attempts", "3", "--reclaim-after", "30"]
                .map(OsString::from)
                .to_vec()
        );
        assert_eq!(
            policy.api_args(),
            ["--max-queue-depth", "1000", "--redis-timeout-ms", "800"]
                .map(OsString::from)
                .to_vec()
        );
        let replicated = JobPolicy {
            replicated: true,
            ..policy
        };
        assert!(
            replicated
                .api_args()
                .ends_with(&["--durability".into(), "replicated".into()])
        );
        // A fleet.json written before the field existed reads as async.
        let old: JobPolicy = serde_json::from_str(
            r#"{"max_attempts": 3, "reclaim_after_s": 30, "max_queue_depth": 1000}"#,
        )
        .unwrap();
        assert!(!old.replicated);
    }
}
