//! The read loop: connect, run one connection's session, and when Redis is
//! lost, back off and connect again, until the worker is told to stop.
//!
//! A session reads in two phases ([`ReadPhase`]): first the entries already
//! delivered to this worker's name and not acknowledged (the jobs in hand
//! when Redis, or the previous process of the same name, went away), then new
//! entries, with now and then the entries of silent workers (reclaim). It
//! ends with the reason ([`SessionEnd`]); backing off and reconnecting are
//! the outer loop's alone.
//!
//! While the jobs of one read run, the session reads ahead ([`Running`]:
//! `RunnerConfig::read_ahead`): the entries already queued, never waiting
//! for new ones, which start at once and queue on the judge thread behind
//! the job it is judging. The judge then goes from one job to the next
//! without idling through a finish, a read and a start (about a tenth of a
//! PNG job's time on a 2-core machine, scripts/bench-peer). A read that
//! waits is made only with nothing in hand, so a job submitted while every
//! worker is busy goes to the first one that comes idle.

use std::future::Future;
use std::pin::{Pin, pin};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use redis::aio::MultiplexedConnection;
use verdict_shared::queue::QueueError;
use verdict_shared::queue::claim::{self, StreamEntry};
use verdict_shared::reconnect::Backoff;
use verdict_shared::redis_url::RedisUrl;
use verdict_shared::shutdown::Shutdown;

use super::reclaim::Reclaimer;
use super::{Context, RunnerConfig, job};

/// What a session reads next.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ReadPhase {
    /// This worker's own pending entries with ids after `after` (`"0"`: from
    /// the first).
    OwnPending { after: String },
    /// New entries, and now and then reclaimed ones.
    New,
}

impl ReadPhase {
    /// After a session (re)connects: its own pending entries first.
    fn first() -> ReadPhase {
        ReadPhase::OwnPending {
            after: "0".to_owned(),
        }
    }

    /// The phase after a read that returned `entries`: past the last of its
    /// own pending entries; new entries once they are all read again.
    fn next(self, entries: &[StreamEntry]) -> ReadPhase {
        match (self, entries.last()) {
            (ReadPhase::OwnPending { .. }, Some(last)) => ReadPhase::OwnPending {
                after: last.entry_id.clone(),
            },
            (ReadPhase::OwnPending { .. } | ReadPhase::New, _) => ReadPhase::New,
        }
    }
}

/// Why a session ended.
#[derive(Debug)]
enum SessionEnd {
    /// The worker was told to stop.
    Shutdown,
    /// Redis failed during `step`: back off, then reconnect.
    RedisLost { step: Step, error: QueueError },
    /// The consumer group vanished and could not be created again:
    /// reconnect at once (connecting creates it, and backs off if it cannot).
    GroupNotRecreated(QueueError),
}

/// What the worker was doing when Redis failed, for the log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Connecting,
    Reclaiming,
    RunningReclaimed,
    Reading,
    Running,
}

impl Step {
    fn message(self) -> &'static str {
        match self {
            Step::Connecting => "cannot reach Redis",
            Step::Reclaiming => "lost Redis while reclaiming jobs",
            Step::RunningReclaimed => {
                "lost Redis while running reclaimed jobs; they will run again"
            }
            Step::Reading => "lost Redis while reading jobs",
            Step::Running => "lost Redis while running jobs; they will run again",
        }
    }
}

/// Runs sessions until `shutdown` fires; between them, the backoff.
pub(super) async fn consume_until_shutdown(
    redis: &RedisUrl,
    config: &RunnerConfig,
    ctx: &Context,
    mut shutdown: Shutdown,
) {
    let mut backoff = Backoff::new();
    let mut reclaimer = Reclaimer::new(config.reclaim_after);
    let mut ever_connected = false;
    while !shutdown.is_shutdown() {
        let end = match connect(redis, config.block).await {
            Ok(reader) => {
                let connected = if ever_connected {
                    "reconnected to Redis"
                } else {
                    "connected to Redis; waiting for jobs"
                };
                tracing::info!(worker = %config.name, "{connected}");
                ever_connected = true;
                let mut session = Session {
                    reader,
                    config,
                    ctx,
                    reclaimer: &mut reclaimer,
                    backoff: &mut backoff,
                };
                session.run(&shutdown).await
            }
            Err(error) => SessionEnd::RedisLost {
                step: Step::Connecting,
                error,
            },
        };
        match end {
            SessionEnd::Shutdown => {}
            SessionEnd::GroupNotRecreated(error) => {
                tracing::warn!(error = %error, "cannot recreate the consumer group");
            }
            SessionEnd::RedisLost { step, error } => {
                let delay = backoff.next_delay();
                tracing::warn!(error = %error, retry_in_ms = delay.as_millis() as u64, "{}", step.message());
                sleep_or_shutdown(delay, &mut shutdown).await;
            }
        }
    }
}

/// A dedicated connection for blocking reads, with the consumer group made
/// if it is missing.
async fn connect(redis: &RedisUrl, block: Duration) -> Result<MultiplexedConnection, QueueError> {
    let mut reader = redis.dedicated(block).await?;
    claim::ensure_group(&mut reader).await?;
    Ok(reader)
}

/// One connection's session.
struct Session<'a> {
    reader: MultiplexedConnection,
    config: &'a RunnerConfig,
    ctx: &'a Context,
    reclaimer: &'a mut Reclaimer,
    /// Reset after each successful read.
    backoff: &'a mut Backoff,
}

impl<'a> Session<'a> {
    /// Reads and runs jobs until the worker is told to stop or Redis fails.
    /// What is running when it ends is run to its end first (those jobs are
    /// in this worker's hands).
    async fn run(&mut self, shutdown: &Shutdown) -> SessionEnd {
        let ctx = self.ctx;
        let mut running = Running::new(ctx);
        let end = self.read_and_run(shutdown, &mut running).await;
        let left = running.finish().await;
        match (end, left) {
            (SessionEnd::Shutdown, Some(lost_running)) => lost_running,
            (end, _) => end,
        }
    }

    async fn read_and_run(&mut self, shutdown: &Shutdown, running: &mut Running<'a>) -> SessionEnd {
        let mut phase = ReadPhase::first();
        while !shutdown.is_shutdown() {
            // Room for one more read: none in hand, or one being run while
            // reading ahead (never beside jobs run again, see `Running`).
            let most = if self.config.read_ahead && !running.has_rerun() {
                2
            } else {
                1
            };
            if running.len() >= most {
                if let Some(end) = running.next().await {
                    return end;
                }
                continue;
            }
            if phase == ReadPhase::New && self.reclaimer.due() {
                // Reclaimed jobs are run again: alone, so first let what is
                // in hand end.
                if !running.is_empty() {
                    if let Some(end) = running.next().await {
                        return end;
                    }
                    continue;
                }
                let (name, count) = (&self.config.name, self.config.batch_size);
                let claim = self.reclaimer.claim(&mut self.reader, name, count);
                match running.alongside(claim).await {
                    Err(end) => return end,
                    // Some were claimed: more may be waiting, look again.
                    Ok(Ok(entries)) if !entries.is_empty() => {
                        running.push(Step::RunningReclaimed, entries, true);
                        continue;
                    }
                    Ok(Ok(_)) => {}
                    Ok(Err(error)) if claim::is_missing_group(&error) => {}
                    Ok(Err(error)) => return lost(Step::Reclaiming, error),
                }
            }
            // With jobs in hand, read ahead only what is already queued:
            // waiting here could take a job that an idle worker would run at
            // once.
            let ahead = !running.is_empty();
            let rerun = matches!(phase, ReadPhase::OwnPending { .. });
            let read = read(&mut self.reader, self.config, &phase, ahead);
            let entries = match running.alongside(read).await {
                Err(end) => return end,
                Ok(Ok(entries)) => entries,
                Ok(Err(error)) if claim::is_missing_group(&error) => {
                    tracing::warn!(
                        "the consumer group is gone (Redis lost its data?): recreating it"
                    );
                    match running
                        .alongside(claim::ensure_group(&mut self.reader))
                        .await
                    {
                        Err(end) => return end,
                        Ok(Ok(())) => continue,
                        Ok(Err(error)) => return SessionEnd::GroupNotRecreated(error),
                    }
                }
                Ok(Err(error)) => return lost(Step::Reading, error),
            };
            self.backoff.reset();
            if matches!(phase, ReadPhase::OwnPending { .. }) && !entries.is_empty() {
                tracing::info!(
                    jobs = entries.len(),
                    "running again jobs this worker held before"
                );
            }
            phase = phase.next(&entries);
            if entries.is_empty() {
                if ahead {
                    // Nothing queued: wait for what is running, then read
                    // (and wait) as usual.
                    if let Some(end) = running.next().await {
                        return end;
                    }
                }
                continue;
            }
            running.push(Step::Running, entries, rerun);
        }
        SessionEnd::Shutdown
    }
}

/// One read in `phase`; `ahead`: while jobs are in hand, so take only what
/// is queued now, without waiting.
async fn read(
    reader: &mut MultiplexedConnection,
    config: &RunnerConfig,
    phase: &ReadPhase,
    ahead: bool,
) -> Result<Vec<StreamEntry>, QueueError> {
    let (name, count) = (&config.name, config.batch_size);
    match phase {
        ReadPhase::OwnPending { after } => {
            claim::read_own_pending(reader, name, count, after).await
        }
        ReadPhase::New if ahead => claim::read_queued(reader, name, count).await,
        ReadPhase::New => claim::read_new(reader, name, count, config.block).await,
    }
}

type BatchRun<'a> = Pin<Box<dyn Future<Output = Ended> + Send + 'a>>;

/// How the jobs of one read ended: `Err` when Redis failed while they ran
/// (during `step`); whether they were run again (`rerun`).
struct Ended {
    step: Step,
    rerun: bool,
    result: Result<(), QueueError>,
}

/// The reads whose jobs are being run: one, or two while reading ahead.
///
/// A worker that dies while judging (a job that crashes it) takes the jobs
/// it read ahead with it: they were started, so they run again with one
/// more attempt counted. To keep that to once per job, jobs run again (this
/// worker's own pending entries after a restart, and entries reclaimed from
/// a silent worker: the ones a crashing job is among) are run with nothing
/// read ahead beside them, and nothing is read ahead while they run.
struct Running<'a> {
    ctx: &'a Context,
    batches: FuturesUnordered<BatchRun<'a>>,
    /// How many of `batches` are jobs run again.
    reruns: usize,
}

impl<'a> Running<'a> {
    fn new(ctx: &'a Context) -> Running<'a> {
        Running {
            ctx,
            batches: FuturesUnordered::new(),
            reruns: 0,
        }
    }

    /// Whether jobs run again are among those in hand.
    fn has_rerun(&self) -> bool {
        self.reruns > 0
    }

    fn len(&self) -> usize {
        self.batches.len()
    }

    fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    /// Starts running the jobs of one read (`step`: what to call a Redis
    /// failure while they run; `rerun`: they are run again).
    fn push(&mut self, step: Step, entries: Vec<StreamEntry>, rerun: bool) {
        let ctx = self.ctx;
        self.reruns += usize::from(rerun);
        self.batches.push(Box::pin(async move {
            let result = run_batch(ctx, &entries).await;
            Ended {
                step,
                rerun,
                result,
            }
        }));
    }

    /// The next read's jobs to end, counted out; `Err` when Redis failed
    /// while they ran.
    async fn next_ended(&mut self) -> Option<Result<(), SessionEnd>> {
        let ended = self.batches.next().await?;
        self.reruns -= usize::from(ended.rerun);
        Some(ended.result.map_err(|error| lost(ended.step, error)))
    }

    /// Waits for one read's jobs to end: `Some` when Redis failed while
    /// they ran.
    async fn next(&mut self) -> Option<SessionEnd> {
        self.next_ended().await?.err()
    }

    /// Awaits `work` (a read: never dropped half-way, or the entries it
    /// took would be lost until reclaimed) while the jobs in hand go on;
    /// `Err` when Redis failed while they ran.
    async fn alongside<T>(&mut self, work: impl Future<Output = T>) -> Result<T, SessionEnd> {
        let mut work = pin!(work);
        let mut failed = None;
        loop {
            tokio::select! {
                biased;
                out = &mut work => return failed.map_or(Ok(out), Err),
                Some(ended) = self.next_ended(), if !self.batches.is_empty() => {
                    if let Err(end) = ended {
                        failed.get_or_insert(end);
                    }
                }
            }
        }
    }

    /// Runs what is in hand to its end; the first Redis failure, if any.
    async fn finish(&mut self) -> Option<SessionEnd> {
        let mut failed = None;
        while let Some(ended) = self.next_ended().await {
            if let Err(end) = ended {
                failed.get_or_insert(end);
            }
        }
        failed
    }
}

fn lost(step: Step, error: QueueError) -> SessionEnd {
    SessionEnd::RedisLost { step, error }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(ids: &[&str]) -> Vec<StreamEntry> {
        ids.iter()
            .map(|id| StreamEntry {
                entry_id: (*id).to_owned(),
                job: None,
            })
            .collect()
    }

    #[test]
    fn own_pending_entries_are_read_to_the_end_then_new_ones() {
        let own = |after: &str| ReadPhase::OwnPending {
            after: after.to_owned(),
        };
        let cases = [
            (ReadPhase::first(), entries(&[]), ReadPhase::New),
            (ReadPhase::first(), entries(&["1-0", "2-0"]), own("2-0")),
            (own("2-0"), entries(&["3-0"]), own("3-0")),
            (own("3-0"), entries(&[]), ReadPhase::New),
            (ReadPhase::New, entries(&[]), ReadPhase::New),
            (ReadPhase::New, entries(&["4-0"]), ReadPhase::New),
        ];
        for (phase, read, next) in cases {
            let before = format!("{phase:?}");
            assert_eq!(phase.next(&read), next, "after {before} read {read:?}");
        }
        assert_eq!(ReadPhase::first(), own("0"));
    }
}
