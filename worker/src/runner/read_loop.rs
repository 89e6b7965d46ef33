//! The read loop: connect, run one connection's session, and when Redis is
//! lost, back off and connect again, until the worker is told to stop.
//!
//! A session reads in two phases ([`ReadPhase`]): first the entries already
//! delivered to this worker's name and not acknowledged (the jobs in hand
//! when Redis, or the previous process of the same name, went away), then new
//! entries, with now and then the entries of silent workers (reclaim). It
//! ends with the reason ([`SessionEnd`]); backing off and reconnecting are
//! the outer loop's alone.

use std::time::Duration;

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

impl Session<'_> {
    /// Reads and runs jobs until the worker is told to stop or Redis fails.
    async fn run(&mut self, shutdown: &Shutdown) -> SessionEnd {
        let mut phase = ReadPhase::first();
        while !shutdown.is_shutdown() {
            if phase == ReadPhase::New && self.reclaimer.due() {
                match self.reclaim().await {
                    // Some were claimed: more may be waiting, look again.
                    Ok(true) => continue,
                    Ok(false) => {}
                    Err(end) => return end,
                }
            }
            let entries = match self.read(&phase).await {
                Ok(entries) => entries,
                Err(error) if claim::is_missing_group(&error) => {
                    tracing::warn!(
                        "the consumer group is gone (Redis lost its data?): recreating it"
                    );
                    match claim::ensure_group(&mut self.reader).await {
                        Ok(()) => continue,
                        Err(error) => return SessionEnd::GroupNotRecreated(error),
                    }
                }
                Err(error) => return lost(Step::Reading, error),
            };
            self.backoff.reset();
            if matches!(phase, ReadPhase::OwnPending { .. }) && !entries.is_empty() {
                tracing::info!(
                    jobs = entries.len(),
                    "running again jobs this worker held before"
                );
            }
            phase = phase.next(&entries);
            if let Err(error) = run_batch(self.ctx, &entries).await {
                return lost(Step::Running, error);
            }
        }
        SessionEnd::Shutdown
    }

    /// One read in `phase`.
    async fn read(&mut self, phase: &ReadPhase) -> Result<Vec<StreamEntry>, QueueError> {
        let (name, count) = (&self.config.name, self.config.batch_size);
        match phase {
            ReadPhase::OwnPending { after } => {
                claim::read_own_pending(&mut self.reader, name, count, after).await
            }
            ReadPhase::New => {
                claim::read_new(&mut self.reader, name, count, self.config.block).await
            }
        }
    }

    /// Claims the entries of silent workers and runs them; whether there
    /// were any.
    async fn reclaim(&mut self) -> Result<bool, SessionEnd> {
        let (name, count) = (&self.config.name, self.config.batch_size);
        match self.reclaimer.claim(&mut self.reader, name, count).await {
            Ok(entries) if entries.is_empty() => Ok(false),
            Ok(entries) => match run_batch(self.ctx, &entries).await {
                Ok(()) => Ok(true),
                Err(error) => Err(lost(Step::RunningReclaimed, error)),
            },
            Err(error) if claim::is_missing_group(&error) => Ok(false),
            Err(error) => Err(lost(Step::Reclaiming, error)),
        }
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
