//! Running one job: start it, fetch its image if it names one, judge it on the
//! worker's judge thread, finish it, log it;
//! give it back and try again after a transient failure; dead-letter it when
//! its attempts have run out.

use std::sync::Arc;
use std::time::{Duration, Instant};

use verdict_shared::queue::dead_letter::{DeadLetter, dead_letter};
use verdict_shared::queue::finish::{Finishing, finish_all};
use verdict_shared::queue::metrics::{Increment, JobReport};
use verdict_shared::queue::policy::retry_delay;
use verdict_shared::queue::retry::{Retry, retry};
use verdict_shared::queue::start::start_all;
use verdict_shared::queue::{Finish, Outcome, QueueError, Start, StartedJob, StreamEntry};

use super::outcome::{self, Decision};
use super::{Context, image_probe};
use crate::image_fetch::{self, FetchFailure};
use verdict_shared::image_reference::ImageReference;
use verdict_shared::job::{Job, JobId};
use verdict_shared::queue::image_fetched::image_fetched;
use verdict_shared::reconnect::Backoff;

/// How long a worker keeps trying to store a result while Redis is away
/// before it gives up on it (the job then stays pending and runs again).
const FINISH_RETRY_FOR: Duration = Duration::from_secs(30);

/// The same once the worker has been told to stop: a worker whose watchdog
/// died (and with it, often, the embedded Redis) exits within seconds
/// instead of lingering; the job is reclaimed by the next fleet.
const FINISH_RETRY_WHEN_STOPPING: Duration = Duration::from_secs(3);

/// How one attempt ended, for this worker.
enum Ended {
    /// This worker stored the job's ending.
    Finished,
    /// The job ended elsewhere, or is no longer in this worker's hands.
    NotOurs,
    /// A transient failure: start the job again after this delay.
    RetryAfter(Duration),
}

/// Runs the job of `entry`, attempt after attempt while attempts fail
/// transiently. An error means Redis failed: the job was not finished and
/// stays pending, to be run again.
pub async fn run(ctx: &Context, entry: &StreamEntry) -> Result<(), QueueError> {
    loop {
        let start = start_grouped(ctx, entry).await?;
        let started = match start {
            Start::Run(started) => started,
            Start::Skip(state) => {
                tracing::info!(entry = %entry.entry_id, job_id = ?entry.job.map(|j| j.to_string()), %state, "skipped a job that already ended");
                return Ok(());
            }
            Start::Missing => {
                tracing::warn!(entry = %entry.entry_id, job_id = ?entry.job.map(|j| j.to_string()), "dropped a stream entry whose job record is gone");
                return Ok(());
            }
            Start::Exhausted { attempts } => return dead_letter_job(ctx, entry, attempts).await,
        };
        let started_here = Instant::now();
        let id = started.job.id;
        ctx.status.took(id, &entry.entry_id);
        let ended = judge_and_finish(ctx, *started, started_here).await;
        let retry_after = match &ended {
            Ok(Ended::RetryAfter(delay)) => Some(*delay),
            _ => None,
        };
        if let Some(delay) = retry_after {
            // Still in hand while waiting: the heartbeat keeps renewing the
            // entry, so no other worker takes it over meanwhile.
            tokio::time::sleep(delay).await;
        }
        ctx.status
            .released(id, matches!(ended, Ok(Ended::Finished)));
        match ended {
            Ok(Ended::RetryAfter(_)) => continue,
            Ok(_) => return Ok(()),
            Err(err) => return Err(err),
        }
    }
}

/// Moves a job that has used up its attempts to the dead-letter stream.
async fn dead_letter_job(
    ctx: &Context,
    entry: &StreamEntry,
    attempts: u32,
) -> Result<(), QueueError> {
    let Some(job_id) = entry.job else {
        return Ok(());
    };
    let mut conn = ctx.pool.get().await?;
    match dead_letter(
        &mut conn,
        job_id,
        &entry.entry_id,
        &ctx.name,
        ctx.max_attempts,
    )
    .await?
    {
        DeadLetter::DeadLettered {
            error,
            dead_letter_entry,
            ..
        } => tracing::warn!(
            job_id = %job_id,
            attempts,
            max_attempts = ctx.max_attempts,
            dead_letter_entry = %dead_letter_entry,
            error = %error.message,
            "job dead-lettered: it was started as often as allowed and never finished"
        ),
        DeadLetter::Stale(state) => {
            tracing::info!(job_id = %job_id, %state, "job to dead-letter had already ended")
        }
        DeadLetter::Missing => {
            tracing::warn!(job_id = %job_id, "job to dead-letter has no record any more")
        }
    }
    Ok(())
}

/// Judges one attempt and stores its ending, or gives the job back.
async fn judge_and_finish(
    ctx: &Context,
    started: StartedJob,
    started_here: Instant,
) -> Result<Ended, QueueError> {
    let StartedJob {
        job,
        image,
        entry_id,
    } = started;
    let texts = Arc::new(job.texts.clone());
    // A job that names its image: fetched first, outside the judge's turn.
    let image = match &job.image.reference {
        None => Ok(image),
        Some(reference) => fetch_image(ctx, &job, reference).await,
    };
    let (image, dims, decision, inference) = match image {
        Err(failure) => (
            Arc::new(Vec::new()),
            None,
            outcome::fetch_failed(failure),
            Duration::ZERO,
        ),
        Ok(image) => {
            let image = Arc::new(image);
            let (dims, decision, inference) = judge(ctx, &job, &image, &texts).await;
            (image, dims, decision, inference)
        }
    };
    let queue_wait = job
        .started_at
        .map(|started| (started - job.submitted_at).as_seconds_f64() * 1000.0)
        .unwrap_or(0.0);
    let (width, height) = dims.map_or((0, 0), |(w, h)| (w, h));

    let outcome = match decision {
        Decision::Finish(outcome) => outcome,
        Decision::Retry(error) => {
            let mut conn = ctx.pool.get().await?;
            return match retry(&mut conn, job.id, &ctx.name, &error).await? {
                Retry::Scheduled { attempts } => {
                    // After the last allowed attempt there is nothing to
                    // wait for: the next start dead-letters the job.
                    let delay = if attempts >= ctx.max_attempts {
                        Duration::ZERO
                    } else {
                        retry_delay(attempts)
                    };
                    tracing::warn!(
                        job_id = %job.id,
                        attempt = attempts,
                        max_attempts = ctx.max_attempts,
                        error = %error,
                        retry_in_ms = delay.as_millis() as u64,
                        "transient failure: the job will be started again"
                    );
                    Ok(Ended::RetryAfter(delay))
                }
                Retry::Lost => {
                    tracing::info!(job_id = %job.id, "transient failure of a job no longer in this worker's hands");
                    Ok(Ended::NotOurs)
                }
            };
        }
    };
    let report = ctx
        .reporter
        .job_report(ctx, &job, inference, started_here.elapsed(), &outcome);
    let finished = finish_with_retry(ctx, &job.id, &entry_id, &outcome, &report).await;
    if !matches!(finished, Ok(Finish::Finished { .. })) {
        ctx.reporter.not_stored(&report);
    }
    let finished = finished?;

    let labels = match &outcome {
        Outcome::Done(verdicts) => verdicts
            .iter()
            .map(|v| v.label.as_str())
            .collect::<Vec<_>>()
            .join(","),
        Outcome::Failed(_) => String::new(),
    };
    let error_code = match &outcome {
        Outcome::Failed(error) => error.code.as_str(),
        Outcome::Done(_) => "",
    };
    let state = match &finished {
        Finish::Finished { .. } => outcome.state().as_str(),
        Finish::Stale(state) => state.as_str(),
        Finish::Missing => "gone",
    };
    let round = |ms: f64| (ms * 100.0).round() / 100.0;
    tracing::info!(
        job_id = %job.id,
        attempt = job.attempts,
        image_bytes = image.len(),
        image_format = %job.image.format,
        width,
        height,
        sentences = texts.len(),
        premise = job.premise.is_some(),
        labels = %labels,
        error = error_code,
        queue_wait_ms = round(queue_wait),
        inference_ms = round(inference.as_secs_f64() * 1000.0),
        state,
        "job {}", match finished {
            Finish::Finished { .. } => "finished",
            Finish::Stale(_) => "already ended elsewhere: result discarded",
            Finish::Missing => "record gone: result discarded",
        }
    );
    Ok(match finished {
        Finish::Finished { .. } => Ended::Finished,
        Finish::Stale(_) | Finish::Missing => Ended::NotOurs,
    })
}

/// Judges `image` on the worker's judge thread, its one judging slot:
/// the image's size (for the log), the decision, and how long the judge took.
async fn judge(
    ctx: &Context,
    job: &Job,
    image: &Arc<Vec<u8>>,
    texts: &Arc<Vec<String>>,
) -> (Option<(u32, u32)>, Decision, Duration) {
    // One judgement at a time per worker: several jobs read together are
    // started and finished concurrently, but the CPU-bound part is serial,
    // on the judge thread.
    let judge = ctx.judge_for(job.attempts);
    let (image, sentences) = (image.clone(), texts.clone());
    // The job's premise, if it has one: the judge answers with it or
    // refuses it (`premise_unsupported`), never ignores it.
    let premise = job.premise.clone();
    let judged = ctx
        .judge_thread
        .run(move || {
            let dims = image_probe::dimensions(&image);
            (dims, judge.judge(&image, &sentences, premise.as_deref()))
        })
        .await;
    match judged.answer {
        Ok((dims, result)) => (dims, outcome::decide(result, texts), judged.took),
        Err(unjudged) => {
            let decision = outcome::unjudged(unjudged);
            tracing::error!(job_id = %job.id, ?decision, "the judge panicked or its thread is gone");
            (None, decision, judged.took)
        }
    }
}

/// Fetches the image a job names and records what was fetched on the job
/// (a record that cannot be written is only logged: the verdict matters
/// more than the note).
async fn fetch_image(
    ctx: &Context,
    job: &Job,
    reference: &ImageReference,
) -> Result<Vec<u8>, FetchFailure> {
    let began = Instant::now();
    let bytes = ctx.images.fetch(reference).await;
    let bytes = match bytes {
        Ok(bytes) => bytes,
        Err(failure) => {
            tracing::info!(job_id = %job.id, reference = reference.kind(), code = %failure.error.code, transient = failure.transient, error = %failure.error.message, "image not fetched");
            return Err(failure);
        }
    };
    let fetched = image_fetch::describe(&bytes);
    tracing::debug!(job_id = %job.id, reference = reference.kind(), bytes = fetched.bytes, sha256 = %fetched.sha256, fetch_ms = began.elapsed().as_millis() as u64, "image fetched");
    let recorded = async {
        let mut conn = ctx.pool.get().await?;
        image_fetched(&mut conn, job.id, &ctx.name, &fetched).await
    }
    .await;
    if let Err(err) = recorded {
        tracing::warn!(job_id = %job.id, error = %err, "what was fetched could not be noted on the job");
    }
    Ok(bytes)
}

/// Stores the outcome and the job's metrics, retrying with backoff while Redis is unreachable
/// (finishing twice is harmless: the second answers `Stale`).
async fn finish_with_retry(
    ctx: &Context,
    job_id: &verdict_shared::job::JobId,
    entry_id: &str,
    outcome: &Outcome,
    report: &JobReport,
) -> Result<Finish, QueueError> {
    let metrics = report.increments();
    let mut deadline = Instant::now() + FINISH_RETRY_FOR;
    let mut stop_seen = false;
    let mut backoff = Backoff::new();
    loop {
        if !stop_seen && ctx.stopping.is_shutdown() {
            stop_seen = true;
            deadline = deadline.min(Instant::now() + FINISH_RETRY_WHEN_STOPPING);
        }
        let request = FinishRequest {
            job_id: *job_id,
            entry_id: entry_id.to_owned(),
            outcome: outcome.clone(),
            metrics: metrics.clone(),
        };
        let attempt = finish_grouped(ctx, request).await;
        match attempt {
            Ok(finished) => return Ok(finished),
            Err(err) if err.is_unavailable() && Instant::now() < deadline => {
                let delay = backoff.next_delay().min(deadline - Instant::now());
                tracing::warn!(job_id = %job_id, error = %err, retry_in_ms = delay.as_millis() as u64, "cannot store the result yet");
                if stop_seen {
                    tokio::time::sleep(delay).await;
                } else {
                    // A stop during the wait shortens what is left of it.
                    let mut stopping = ctx.stopping.clone();
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = stopping.recv() => {}
                    }
                }
            }
            Err(err) => {
                tracing::error!(job_id = %job_id, error = %err, "result not stored: the job stays pending and will run again");
                return Err(err);
            }
        }
    }
}

/// A job to start, as the grouped start call takes it.
pub(crate) struct StartRequest {
    entry_id: String,
    job_id: JobId,
}

/// A job to finish, as the grouped finish call takes it.
pub(crate) struct FinishRequest {
    job_id: JobId,
    entry_id: String,
    outcome: Outcome,
    metrics: Vec<Increment>,
}

/// Starts the job of `entry`, in one `start.lua` call with the other jobs
/// this worker starts at the same moment (see `group_commit`).
async fn start_grouped(ctx: &Context, entry: &StreamEntry) -> Result<Start, QueueError> {
    let Some(job_id) = entry.job else {
        // An entry that names no job: discarded, alone.
        let mut conn = ctx.pool.get().await?;
        return entry.start(&mut conn, &ctx.name, ctx.max_attempts).await;
    };
    let request = StartRequest {
        entry_id: entry.entry_id.clone(),
        job_id,
    };
    ctx.starts
        .call(request, async |requests: &[StartRequest]| {
            let jobs: Vec<(&str, JobId)> = requests
                .iter()
                .map(|r| (r.entry_id.as_str(), r.job_id))
                .collect();
            let mut conn = ctx.pool.get().await?;
            start_all(&mut conn, &ctx.name, ctx.max_attempts, &jobs).await
        })
        .await?
}

/// Stores one job's ending, in one `finish.lua` call with the other jobs of
/// this worker that ended while its previous finish was in flight.
async fn finish_grouped(ctx: &Context, request: FinishRequest) -> Result<Finish, QueueError> {
    ctx.finishes
        .call(request, async |requests: &[FinishRequest]| {
            let jobs: Vec<Finishing<'_>> = requests
                .iter()
                .map(|r| Finishing {
                    job_id: r.job_id,
                    entry_id: &r.entry_id,
                    outcome: &r.outcome,
                    metrics: &r.metrics,
                })
                .collect();
            let mut conn = ctx.pool.get().await?;
            finish_all(&mut conn, &ctx.name, &jobs).await
        })
        .await
}
