//! The worker's run loop: read jobs from the consumer group, judge them,
//! post verdicts back, until told to stop.
//!
//! - [`job`]: one job, from start to finish;
//! - [`outcome`]: how a judgement ends a job (done, failed, or retried);
//! - [`heartbeat`]: the task that keeps the worker's record alive;
//! - [`status`]: what the heartbeat reports;
//! - [`backoff`]: reconnecting after Redis is lost;
//! - [`reclaim`]: taking over the jobs of workers that went silent;
//! - [`image_probe`]: the image size for the log line;
//! - [`report`]: what the worker adds to `verdict:metrics` after each job;
//! - [`simulated_delay`]: a judge that takes a set time (`--noop-delay-ms`);
//! - `faulty_judge`: TEST-ONLY fault injection, compiled only with the
//!   `test-hooks` feature and off unless a test arms it.
//!
//! The loop reads up to `batch_size` entries at once (COUNT), starts and
//! finishes them concurrently on pooled connections, and judges them one at a
//! time on a blocking thread; a batching engine can later take the whole read
//! in one call without changing the loop. After a (re)connection it first
//! re-reads the entries already delivered to its name and not acknowledged,
//! so a job in hand when Redis (or the previous process of the same name) went
//! away runs again at once.

mod backoff;
#[cfg(any(test, feature = "test-hooks"))]
mod faulty_judge;
mod heartbeat;
mod image_probe;
mod job;
mod outcome;
mod reclaim;
mod report;
pub(crate) mod simulated_delay;
mod status;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::Semaphore;
use verdict_shared::queue::consume::{self, StreamEntry};
use verdict_shared::queue::heartbeat::{self as protocol_heartbeat, now_ms};
use verdict_shared::queue::{QueueError, WorkerRecord};
use verdict_shared::redis_pool::Pool;
use verdict_shared::redis_url::{self, RedisUrl};
use verdict_shared::shutdown::{self, Shutdown};

use crate::engine::Judge;
use backoff::Backoff;
use reclaim::Reclaimer;
use status::WorkerStatus;

/// How the loop runs.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// The worker's name: its consumer name in the group and its record's key.
    pub name: String,
    /// Most entries read at once.
    pub batch_size: usize,
    /// How long one read waits for new entries. A SIGTERM is seen within this
    /// time when idle.
    pub block: Duration,
    /// How many times a job may be started before it is dead-lettered.
    pub max_attempts: u32,
    /// How long an entry may sit idle in a silent worker's hands before this
    /// worker claims it.
    pub reclaim_after: Duration,
}

impl RunnerConfig {
    pub const DEFAULT_BLOCK: Duration = Duration::from_secs(1);
}

/// What the job tasks share.
pub(crate) struct Context {
    pub(crate) name: String,
    pub(crate) pool: Pool,
    /// The loaded judge; a job's attempt gets it from [`Context::judge_for`].
    pub(crate) judge: Arc<dyn Judge>,
    pub(crate) judge_permit: Semaphore,
    pub(crate) status: Arc<WorkerStatus>,
    pub(crate) reporter: report::Reporter,
    pub(crate) max_attempts: u32,
    /// Test-only faults to inject, if the environment arms any.
    #[cfg(any(test, feature = "test-hooks"))]
    faults: Option<Arc<faulty_judge::Faults>>,
    /// Fires when the worker is told to stop (SIGTERM, or the watchdog's
    /// death through the parent-death signal): results still to be stored
    /// get a short grace, not the full retry time.
    pub(crate) stopping: Shutdown,
}

/// Runs jobs until `shutdown` fires, then finishes the jobs in hand,
/// deregisters and returns. Redis being away is not an error: the loop waits
/// and reconnects.
pub async fn run(
    redis: RedisUrl,
    config: RunnerConfig,
    judge: Arc<dyn Judge>,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let pool = redis
        .pool(config.batch_size.clamp(2, 16))
        .with_context(|| format!("cannot use Redis at {redis}"))?;
    let status = Arc::new(WorkerStatus::default());
    let record = WorkerRecord {
        name: config.name.clone(),
        host: hostname(),
        pid: std::process::id(),
        model: judge.model_name().to_owned(),
        started_ms: now_ms(),
        heartbeat_ms: now_ms(),
        jobs_done: 0,
        current_job: None,
    };
    tracing::info!(
        worker = %config.name,
        model = %record.model,
        redis = %redis,
        transport = redis_url::transport(&redis),
        batch_size = config.batch_size,
        max_attempts = config.max_attempts,
        reclaim_after_s = config.reclaim_after.as_secs_f64(),
        "worker starting"
    );
    let (stop_heartbeat, heartbeat_stop) = shutdown::channel();
    let heartbeat = tokio::spawn(heartbeat::run(
        pool.clone(),
        record,
        status.clone(),
        heartbeat_stop,
    ));

    let ctx = Context {
        name: config.name.clone(),
        pool: pool.clone(),
        judge,
        judge_permit: Semaphore::new(1),
        status: status.clone(),
        reporter: report::Reporter::default(),
        max_attempts: config.max_attempts,
        #[cfg(any(test, feature = "test-hooks"))]
        faults: faulty_judge::Faults::armed_from_env(),
        stopping: shutdown.clone(),
    };
    consume_until_shutdown(&redis, &config, &ctx, shutdown).await;

    stop_heartbeat.fire();
    if let Err(err) = heartbeat.await {
        tracing::warn!(error = %err, "the heartbeat task ended badly");
    }
    match deregister(&pool, &config.name).await {
        Ok(()) => {
            tracing::info!(worker = %config.name, jobs_done = status.jobs_done(), "worker stopped and deregistered")
        }
        Err(err) => tracing::warn!(
            worker = %config.name,
            error = %err,
            "worker stopped but could not deregister; its record expires by itself"
        ),
    }
    Ok(())
}

impl Context {
    /// The judge for attempt `attempt` (1-based) of a job: the loaded one.
    #[cfg(not(any(test, feature = "test-hooks")))]
    pub(crate) fn judge_for(&self, _attempt: u32) -> Arc<dyn Judge> {
        self.judge.clone()
    }

    /// The judge for attempt `attempt` (1-based) of a job: the loaded one,
    /// wrapped in a [`faulty_judge::FaultyJudge`] when faults are armed. The
    /// `Judge` trait does not see attempts, so the wrapper is made here,
    /// where the attempt is known.
    #[cfg(any(test, feature = "test-hooks"))]
    pub(crate) fn judge_for(&self, attempt: u32) -> Arc<dyn Judge> {
        match &self.faults {
            Some(faults) => Arc::new(faulty_judge::FaultyJudge::new(
                self.judge.clone(),
                faults.clone(),
                attempt,
            )),
            None => self.judge.clone(),
        }
    }
}

async fn deregister(pool: &Pool, name: &str) -> Result<(), QueueError> {
    let mut conn = pool.get().await?;
    protocol_heartbeat::deregister(&mut conn, name).await
}

/// The read loop, with reconnection.
async fn consume_until_shutdown(
    redis: &RedisUrl,
    config: &RunnerConfig,
    ctx: &Context,
    mut shutdown: Shutdown,
) {
    let mut backoff = Backoff::new();
    let mut ever_connected = false;
    let mut reclaimer = Reclaimer::new(config.reclaim_after);
    'connect: while !shutdown.is_shutdown() {
        let connected = async {
            let mut reader = redis.dedicated(config.block).await?;
            consume::ensure_group(&mut reader).await?;
            Ok::<_, QueueError>(reader)
        }
        .await;
        let mut reader = match connected {
            Ok(reader) => reader,
            Err(err) => {
                let delay = backoff.next_delay();
                tracing::warn!(error = %err, retry_in_ms = delay.as_millis() as u64, "cannot reach Redis");
                sleep_or_shutdown(delay, &mut shutdown).await;
                continue 'connect;
            }
        };
        tracing::info!(
            worker = %config.name,
            "{}",
            if ever_connected { "reconnected to Redis" } else { "connected to Redis; waiting for jobs" }
        );
        ever_connected = true;
        // First the entries this name already holds, then new ones.
        let mut pending_after: Option<String> = Some("0".to_owned());
        while !shutdown.is_shutdown() {
            if pending_after.is_none() && reclaimer.due() {
                let claimed = reclaimer
                    .claim(&mut reader, &config.name, config.batch_size)
                    .await;
                match claimed {
                    Ok(entries) if entries.is_empty() => {}
                    Ok(entries) => {
                        if let Err(err) = run_batch(ctx, &entries).await {
                            let delay = backoff.next_delay();
                            tracing::warn!(error = %err, retry_in_ms = delay.as_millis() as u64, "lost Redis while running reclaimed jobs; they will run again");
                            sleep_or_shutdown(delay, &mut shutdown).await;
                            continue 'connect;
                        }
                        continue;
                    }
                    Err(err) if consume::is_missing_group(&err) => {}
                    Err(err) => {
                        let delay = backoff.next_delay();
                        tracing::warn!(error = %err, retry_in_ms = delay.as_millis() as u64, "lost Redis while reclaiming jobs");
                        sleep_or_shutdown(delay, &mut shutdown).await;
                        continue 'connect;
                    }
                }
            }
            let read = match &pending_after {
                Some(after) => {
                    consume::read_own_pending(&mut reader, &config.name, config.batch_size, after)
                        .await
                }
                None => {
                    consume::read_new(&mut reader, &config.name, config.batch_size, config.block)
                        .await
                }
            };
            let entries = match read {
                Ok(entries) => entries,
                Err(err) if consume::is_missing_group(&err) => {
                    tracing::warn!(
                        "the consumer group is gone (Redis lost its data?): recreating it"
                    );
                    if let Err(err) = consume::ensure_group(&mut reader).await {
                        tracing::warn!(error = %err, "cannot recreate the consumer group");
                        continue 'connect;
                    }
                    continue;
                }
                Err(err) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %err, retry_in_ms = delay.as_millis() as u64, "lost Redis while reading jobs");
                    sleep_or_shutdown(delay, &mut shutdown).await;
                    continue 'connect;
                }
            };
            backoff.reset();
            if let Some(after) = pending_after.as_mut() {
                match entries.last() {
                    None => {
                        pending_after = None;
                        continue;
                    }
                    Some(last) => {
                        tracing::info!(
                            jobs = entries.len(),
                            "running again jobs this worker held before"
                        );
                        *after = last.entry_id.clone();
                    }
                }
            }
            if entries.is_empty() {
                continue;
            }
            if let Err(err) = run_batch(ctx, &entries).await {
                let delay = backoff.next_delay();
                tracing::warn!(error = %err, retry_in_ms = delay.as_millis() as u64, "lost Redis while running jobs; they will run again");
                sleep_or_shutdown(delay, &mut shutdown).await;
                continue 'connect;
            }
        }
    }
}

/// Runs the jobs of one read concurrently; the first Redis error, if any.
async fn run_batch(ctx: &Context, entries: &[StreamEntry]) -> Result<(), QueueError> {
    let results = futures::future::join_all(entries.iter().map(|entry| job::run(ctx, entry))).await;
    results.into_iter().find(Result::is_err).unwrap_or(Ok(()))
}

async fn sleep_or_shutdown(delay: Duration, shutdown: &mut Shutdown) {
    tokio::select! {
        _ = tokio::time::sleep(delay) => {}
        _ = shutdown.recv() => {}
    }
}

/// This machine's host name, for the worker's record and default name.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_owned())
}
