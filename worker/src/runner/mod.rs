//! The worker's run loop: read jobs from the consumer group, judge them,
//! post verdicts back, until told to stop.
//!
//! - [`registration`]: claiming the worker's name before any read (refused
//!   while another live process holds it);
//! - [`read_loop`]: connecting to Redis, reading entries (own pending ones
//!   first, then new and reclaimed ones), reconnecting after a loss;
//! - [`job`]: one job, from start to finish;
//! - [`group_commit`]: the starts (and the finishes) that come while one is
//!   in flight, made together in the next call;
//! - [`judge_thread`]: the thread the judge runs on, one job after another;
//! - [`outcome`]: how a judgement ends a job (done, failed, or retried);
//! - [`heartbeat`]: the task that keeps the worker's record alive (and
//!   stops the worker if its name was taken over);
//! - [`status`]: what the heartbeat reports;
//! - [`reclaim`]: taking over the jobs of workers that went silent;
//! - [`image_probe`]: the image size for the log line;
//! - [`report`]: what the worker adds to `verdict:metrics` after each job;
//! - [`simulated_delay`]: a judge that takes a set time (`--noop-delay-ms`);
//! - `faulty_judge`: TEST-ONLY fault injection, compiled only with the
//!   `test-hooks` feature and off unless a test arms it.
//!
//! The loop reads up to `batch_size` entries at once (COUNT), starts and
//! finishes them concurrently on pooled connections, and judges them one at a
//! time on the judge thread; while they run it reads ahead the entries
//! already queued behind them (`read_ahead`), so the judge thread takes the
//! next job as it ends one instead of waiting for the finish, the next read
//! and the next start; the starts and the finishes that come while
//! one is in flight are made together in the next call ([`group_commit`]:
//! one script, one round trip, counters added once). A batching engine
//! can later take the whole read in one call without changing the loop.
//! After a (re)connection it first re-reads the entries already delivered to
//! its name and not acknowledged, so a job in hand when Redis (or the
//! previous process of the same name) went away runs again at once.

#[cfg(any(test, feature = "test-hooks"))]
mod faulty_judge;
mod group_commit;
mod heartbeat;
mod image_probe;
mod job;
mod judge_thread;
mod outcome;
mod read_loop;
mod reclaim;
mod registration;
mod report;
pub(crate) mod simulated_delay;
mod status;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use verdict_shared::clock::wall_ms;
use verdict_shared::queue::deregister::{Deregistration, deregister as deregister_name};
use verdict_shared::queue::{Finish, QueueError, Start, WorkerRecord};
use verdict_shared::redis_pool::Pool;
use verdict_shared::redis_url::{self, RedisUrl};
use verdict_shared::shutdown::{self, Shutdown};

use crate::engine::Judge;
use crate::image_fetch::{FetchConfig, ImageSources};
use group_commit::GroupCommit;
use judge_thread::JudgeThread;
use status::WorkerStatus;

/// How the loop runs.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// The worker's name: its consumer name in the group and its record's key.
    pub name: String,
    /// The instance of the dead process that held the name before, named by
    /// the supervisor that reaped it: its record is taken over at once.
    pub predecessor: Option<String>,
    /// Most entries read at once.
    pub batch_size: usize,
    /// While the jobs of one read are being run, read the entries already
    /// queued behind them (never waiting for new ones), so that the judge
    /// goes from one job to the next without waiting for Redis: at most two
    /// reads' jobs in hand.
    pub read_ahead: bool,
    /// How long one read waits for new entries. A SIGTERM is seen within this
    /// time when idle.
    pub block: Duration,
    /// How many times a job may be started before it is dead-lettered.
    pub max_attempts: u32,
    /// How long an entry may sit idle in a silent worker's hands before this
    /// worker claims it.
    pub reclaim_after: Duration,
    /// Where jobs that name their image may have it fetched from.
    pub images: FetchConfig,
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
    /// Where the judge runs: one job at a time, in the order they come.
    pub(crate) judge_thread: JudgeThread,
    /// Starts jobs, several in one call when they come together.
    pub(crate) starts: GroupCommit<job::StartRequest, Result<Start, QueueError>>,
    /// Stores jobs' endings, several in one call when they come together.
    pub(crate) finishes: GroupCommit<job::FinishRequest, Finish>,
    pub(crate) status: Arc<WorkerStatus>,
    pub(crate) reporter: report::Reporter,
    /// Fetches the images that jobs name instead of carrying.
    pub(crate) images: ImageSources,
    pub(crate) max_attempts: u32,
    /// Test-only faults to inject, if the environment arms any.
    #[cfg(any(test, feature = "test-hooks"))]
    faults: Option<Arc<faulty_judge::Faults>>,
    /// Fires when the worker is told to stop (SIGTERM, or the watchdog's
    /// death through the parent-death signal): results still to be stored
    /// get a short grace, not the full retry time.
    pub(crate) stopping: Shutdown,
}

/// Claims the worker's name, runs jobs until `shutdown` fires, then
/// finishes the jobs in hand, deregisters and returns. Redis being away is
/// not an error: the loop waits and reconnects. An error: the name is
/// another live process's (at the start, or taken over later).
pub async fn run(
    redis: RedisUrl,
    config: RunnerConfig,
    judge: Arc<dyn Judge>,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let pool = redis
        .pool(config.batch_size.clamp(2, 16))
        .with_context(|| format!("cannot use Redis at {redis}"))?;
    let images = ImageSources::new(&config.images).context("cannot set up image fetching")?;
    let status = Arc::new(WorkerStatus::default());
    let record = WorkerRecord {
        name: config.name.clone(),
        host: verdict_shared::host::name(),
        pid: std::process::id(),
        model: judge.model_name().to_owned(),
        started_ms: wall_ms(),
        heartbeat_ms: wall_ms(),
        beats: 0,
        uptime_ms: Some(0),
        instance: verdict_shared::unique_id::instance().to_owned(),
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
    // The worker stops when told to, or when its name is taken over.
    let (stop, stopping) = shutdown::channel();
    let forward = tokio::spawn({
        let (stop, mut shutdown) = (stop.clone(), shutdown);
        async move {
            shutdown.recv().await;
            stop.fire();
        }
    });
    let claimed = registration::claim_name(
        &pool,
        &record,
        config.predecessor.as_deref(),
        &mut stopping.clone(),
    )
    .await;
    if !matches!(claimed, Ok(true)) {
        forward.abort();
        if claimed.is_ok() {
            tracing::info!(worker = %config.name, "stopped before it registered");
        }
        return claimed.map(|_| ());
    }
    let (stop_heartbeat, heartbeat_stop) = shutdown::channel();
    let heartbeat = tokio::spawn(heartbeat::run(
        pool.clone(),
        record,
        status.clone(),
        heartbeat_stop,
        stop,
    ));

    let ctx = Context {
        name: config.name.clone(),
        pool: pool.clone(),
        judge,
        judge_thread: JudgeThread::start().context("cannot start the judge thread")?,
        starts: GroupCommit::default(),
        finishes: GroupCommit::default(),
        status: status.clone(),
        reporter: report::Reporter::default(),
        images,
        max_attempts: config.max_attempts,
        #[cfg(any(test, feature = "test-hooks"))]
        faults: faulty_judge::Faults::armed_from_env(),
        stopping: stopping.clone(),
    };
    read_loop::consume_until_shutdown(&redis, &config, &ctx, stopping).await;
    forward.abort();

    stop_heartbeat.fire();
    match heartbeat.await {
        Ok(heartbeat::Ended::NameTaken(holder)) => {
            anyhow::bail!(
                "the worker name {:?} was taken over by {holder} while this process was not \
                 beating; stopped so that the two do not share one consumer",
                config.name
            )
        }
        Ok(heartbeat::Ended::Stopped) => {}
        Err(err) => tracing::warn!(error = %err, "the heartbeat task ended badly"),
    }
    deregister(&pool, &config.name, status.jobs_done()).await;
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

/// Removes the worker's record (if the name is still this process's), and
/// says so.
async fn deregister(pool: &Pool, name: &str, jobs_done: u64) {
    let removed = async {
        let mut conn = pool.get().await?;
        deregister_name(&mut conn, name, verdict_shared::unique_id::instance()).await
    }
    .await;
    match removed {
        Ok(Deregistration::Deregistered) => {
            tracing::info!(worker = %name, jobs_done, "worker stopped and deregistered")
        }
        Ok(Deregistration::NotOurs { holder }) => tracing::warn!(
            worker = %name,
            holder = %holder,
            jobs_done,
            "worker stopped; its name is another process's now, whose record is left alone"
        ),
        Err::<_, QueueError>(err) => tracing::warn!(
            worker = %name,
            error = %err,
            "worker stopped but could not deregister; its record expires by itself"
        ),
    }
}
