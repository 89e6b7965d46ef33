//! `fleet batch`: push a catalogue of (image, sentence) rows through the api
//! and write one verdict line per sentence.
//!
//! The run streams the input ([`input`]) and keeps at most `--concurrency`
//! jobs in flight: a row's image is read only when a slot is free and dropped
//! once its batch request is sent, so memory stays flat whatever the number of
//! rows. Rows go to the api in `POST /v1/batches` requests ([`crate::api`]) of up to
//! `--batch-size` jobs, each with an idempotency key derived from the row (its
//! id, the image's sha256, its sentences and its premise): resending after an error, or
//! resuming an interrupted run, finds the job already created instead of
//! making a second one. The jobs of each batch request are waited for
//! together, one `POST /v1/jobs/wait` (until any ends) at a time, and each
//! row's verdicts are written as its job ends ([`results`]); with `--submit-only`, the run writes `queued`
//! lines and leaves the judging to the fleet (run again without it to collect
//! the verdicts). An api that does not answer for `--give-up-after` ends the
//! run with the cause. Ctrl-C stops submitting and waiting at once; what was
//! written stays, and the same command resumes.

pub mod csv_lines;
pub mod input;
pub mod label_counts;
pub mod progress;
pub mod report;
pub mod results;
pub mod summary;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use sha2::{Digest, Sha256};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use verdict_shared::job::{Job, JobError, JobState};
use verdict_shared::shutdown::{self, Shutdown, ShutdownTrigger};

use crate::api::{self, Api, BatchImage, BatchJob, Item, Reachability};
use input::Row;
use progress::Progress;
use results::{ResultLine, Sink};
use summary::Counts;

/// Base64 bytes at which a batch request is sent even if it is not full:
/// keeps each request well under the api's `--max-batch-bytes` (32 MiB).
const BATCH_BYTES: usize = 12 << 20;

/// How a run is asked for.
#[derive(Debug, Clone)]
pub struct Options {
    pub input: PathBuf,
    pub out: Option<PathBuf>,
    pub api: String,
    pub token: Option<String>,
    /// Jobs in flight at once (submitted and not yet answered).
    pub concurrency: usize,
    /// Jobs per `POST /v1/batches`.
    pub batch_size: usize,
    /// Wait for the verdicts (else write `queued` lines and leave).
    pub wait: bool,
    /// Give up when the api has not answered for this long.
    pub give_up_after: Duration,
    /// Try the rows whose lines in `out` are errors again.
    pub retry_failed: bool,
    /// How the result lines are written (and read back to resume).
    pub format: results::Format,
    /// `--by-reference`: send each image as its path under this folder (the
    /// fleet's `--image-root`, as this machine sees it; canonical) instead of
    /// its bytes.
    pub image_root: Option<PathBuf>,
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub counts: Counts,
    /// What the whole `--out` file holds at the end, earlier runs included.
    pub file: Option<results::Tally>,
    pub interrupted: bool,
    pub elapsed: Duration,
}

/// The result file, the counts and the progress display, behind one lock.
struct Recorder {
    sink: Sink,
    counts: Counts,
    progress: Progress,
}

type Shared = Arc<Mutex<Recorder>>;

fn lock<T>(shared: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Writes a row's lines and counts them.
fn record(shared: &Shared, lines: &[ResultLine]) -> anyhow::Result<()> {
    let mut recorder = lock(shared);
    for line in lines {
        recorder.sink.write(line)?;
    }
    let counts = &mut recorder.counts;
    counts.rows_answered += 1;
    if lines.iter().any(|l| l.error.is_some()) {
        counts.failed += 1;
    } else if lines.iter().any(|l| l.state.as_deref() == Some("queued")) {
        counts.queued += 1;
    }
    for line in lines {
        counts.labels.add(line);
    }
    let counts = recorder.counts.clone();
    recorder.progress.update(&counts);
    Ok(())
}

/// Error lines for every sentence of a row.
fn failed_lines(row: &Row, code: &str, message: &str) -> Vec<ResultLine> {
    if row.texts.is_empty() {
        return vec![ResultLine::failed(row, "", code, message)];
    }
    row.texts
        .iter()
        .map(|text| ResultLine::failed(row, text, code, message))
        .collect()
}

/// Runs the batch.
pub async fn run(options: Options) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let done = match &options.out {
        Some(out) => results::resume(out, options.format, options.retry_failed)?,
        None => HashSet::new(),
    };
    // A first pass counts the rows (no image is read) for the progress bar.
    let mut counts = Counts::default();
    for row in input::open(&options.input)? {
        counts.rows += 1;
        if results::row_answered(&done, &row) {
            counts.skipped += 1;
        }
    }
    let sink = match &options.out {
        Some(out) => Sink::append(out, options.format)?,
        None => Sink::stdout(options.format)?,
    };
    let progress = Progress::new(counts.rows - counts.skipped);
    let shared: Shared = Arc::new(Mutex::new(Recorder {
        sink,
        counts,
        progress,
    }));
    let api =
        Api::new(&options.api, options.token.clone())?.with_give_up_after(options.give_up_after);

    // Ctrl-C stops the run; so does a fatal error in a waiting task.
    let (stop_tx, stop) = shutdown::channel();
    {
        let stop_tx = stop_tx.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                stop_tx.fire();
            }
        });
    }
    let fatal: Arc<Mutex<Option<String>>> = Arc::default();
    let slots = Arc::new(Semaphore::new(options.concurrency.max(1)));
    let mut waiters = JoinSet::new();
    let mut chunk = Chunk::default();
    let mut submitter = Submitter {
        api: api.clone(),
        shared: shared.clone(),
        wait: options.wait,
        stop: stop.clone(),
        stop_tx: stop_tx.clone(),
        fatal: fatal.clone(),
    };

    let mut stopped = false;
    for row in input::open(&options.input)? {
        if stop.is_shutdown() {
            stopped = true;
            break;
        }
        if results::row_answered(&done, &row) {
            continue;
        }
        if let Some(problem) = &row.problem {
            record(&shared, &failed_lines(&row, "invalid_row", problem))?;
            continue;
        }
        let permit = match slots.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                submitter.flush(&mut chunk, &mut waiters).await?;
                let mut stop = stop.clone();
                tokio::select! {
                    permit = slots.clone().acquire_owned() => permit?,
                    _ = stop.recv() => { stopped = true; break; }
                }
            }
        };
        let image = match row_image(&row, options.image_root.as_deref()).await {
            Ok(image) => image,
            Err((code, message)) => {
                record(&shared, &failed_lines(&row, code, &message))?;
                continue;
            }
        };
        let key = idempotency_key(&row, &image);
        let job = BatchJob {
            image: image.into_batch_image(),
            texts: row.texts.clone(),
            premise: row.premise.clone(),
            idempotency_key: key,
        };
        chunk.bytes += job.image.body_bytes();
        chunk.jobs.push((job, row, permit));
        if chunk.jobs.len() >= options.batch_size || chunk.bytes >= BATCH_BYTES {
            submitter.flush(&mut chunk, &mut waiters).await?;
        }
    }
    if !stopped {
        submitter.flush(&mut chunk, &mut waiters).await?;
        let mut stop = stop.clone();
        loop {
            tokio::select! {
                joined = waiters.join_next() => {
                    if joined.is_none() { break; }
                }
                _ = stop.recv() => { stopped = true; break; }
            }
        }
    }
    waiters.abort_all();
    if let Some(message) = lock(&fatal).take() {
        anyhow::bail!("{message}");
    }
    let recorder = lock(&shared);
    recorder.progress.finish(stopped);
    let file = match &options.out {
        Some(out) => Some(results::tally(out, options.format)?),
        None => None,
    };
    Ok(Outcome {
        file,
        counts: recorder.counts.clone(),
        interrupted: stopped,
        elapsed: started.elapsed(),
    })
}

/// Rows read and not yet sent.
#[derive(Default)]
struct Chunk {
    jobs: Vec<(BatchJob, Row, OwnedSemaphorePermit)>,
    bytes: usize,
}

/// Sends chunks and starts a waiter for each accepted job.
struct Submitter {
    api: Api,
    shared: Shared,
    wait: bool,
    stop: Shutdown,
    stop_tx: ShutdownTrigger,
    fatal: Arc<Mutex<Option<String>>>,
}

impl Submitter {
    /// Sends the chunk until every job is accepted or refused (or the run
    /// is stopped).
    async fn flush(&mut self, chunk: &mut Chunk, waiters: &mut JoinSet<()>) -> anyhow::Result<()> {
        let mut pending = std::mem::take(&mut chunk.jobs);
        chunk.bytes = 0;
        let mut delay = Duration::ZERO;
        let mut reachability = Reachability::new(self.api.give_up_after());
        while !pending.is_empty() {
            if self.stop.is_shutdown() {
                return Ok(());
            }
            let jobs: Vec<BatchJob> = pending.iter().map(|(job, _, _)| job.clone()).collect();
            let items = match self.api.submit(&jobs).await? {
                Ok(items) => items,
                Err(not_now) => {
                    if not_now.unreachable {
                        reachability.unreachable(self.api.base(), &not_now.cause)?;
                    } else {
                        reachability.answered();
                    }
                    delay = api::next_delay(delay, not_now.retry_after);
                    lock(&self.shared).progress.note(&format!(
                        "batch: the api at {} did not take the batch ({}); sending again in {:.0} s",
                        self.api.base(),
                        not_now.cause,
                        delay.as_secs_f64()
                    ));
                    self.pause(delay).await;
                    continue;
                }
            };
            let mut later = Vec::new();
            let mut accepted = Vec::new();
            for (item, (job, row, permit)) in items.into_iter().zip(pending) {
                match item {
                    Item::Accepted(id) if self.wait => accepted.push((id, row, permit)),
                    Item::Accepted(id) => {
                        let lines: Vec<ResultLine> = row
                            .texts
                            .iter()
                            .map(|text| {
                                let mut line = ResultLine::for_row(&row, text);
                                line.job = Some(id.clone());
                                line.state = Some("queued".into());
                                line
                            })
                            .collect();
                        record(&self.shared, &lines)?;
                    }
                    Item::Refused(error) => {
                        let lines = failed_lines(&row, &error.code, &error.message);
                        record(&self.shared, &lines)?;
                    }
                    Item::Later => later.push((job, row, permit)),
                }
            }
            if !accepted.is_empty() {
                let api = self.api.clone();
                let shared = self.shared.clone();
                let fatal = self.fatal.clone();
                let stop_tx = self.stop_tx.clone();
                waiters.spawn(async move {
                    if let Err(err) = wait_and_record_all(&api, &shared, accepted).await {
                        *lock(&fatal) = Some(format!("{err:#}"));
                        stop_tx.fire();
                    }
                });
            }
            pending = later;
            if !pending.is_empty() {
                delay = api::next_delay(delay, None);
                self.pause(delay).await;
            }
        }
        Ok(())
    }

    async fn pause(&mut self, delay: Duration) {
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = self.stop.recv() => {}
        }
    }
}

/// A job accepted by the api, its row, and its slot of `--concurrency`.
type Accepted = (String, Row, OwnedSemaphorePermit);

/// Waits for the jobs of one batch request and writes each row's lines as
/// its job ends, freeing its slot: one `POST /v1/jobs/wait` for the jobs
/// still running each time some end. From an api without that route, one
/// long-poll a job.
async fn wait_and_record_all(
    api: &Api,
    shared: &Shared,
    mut jobs: Vec<Accepted>,
) -> anyhow::Result<()> {
    while !jobs.is_empty() {
        let ids: Vec<String> = jobs.iter().map(|(id, _, _)| id.clone()).collect();
        let Some(ended) = api.wait_any(&ids).await? else {
            return wait_each(api, shared, jobs).await;
        };
        let mut ended: std::collections::HashMap<usize, Option<Job>> = ended.into_iter().collect();
        let mut running = Vec::new();
        for (index, (id, row, permit)) in jobs.into_iter().enumerate() {
            match ended.remove(&index) {
                Some(job) => {
                    record(shared, &ended_lines(&row, &id, job.as_ref()))?;
                    drop(permit);
                }
                None => running.push((id, row, permit)),
            }
        }
        jobs = running;
    }
    Ok(())
}

/// One long-poll a job, all at once (an api without `POST /v1/jobs/wait`).
async fn wait_each(api: &Api, shared: &Shared, jobs: Vec<Accepted>) -> anyhow::Result<()> {
    let mut each = JoinSet::new();
    for (id, row, permit) in jobs {
        let (api, shared) = (api.clone(), shared.clone());
        each.spawn(async move {
            let job = api.wait_end(&id).await?;
            record(&shared, &ended_lines(&row, &id, job.as_ref()))?;
            drop(permit);
            anyhow::Ok(())
        });
    }
    while let Some(joined) = each.join_next().await {
        joined??;
    }
    Ok(())
}

/// The lines of a row whose job ended, or is gone (`None`).
fn ended_lines(row: &Row, id: &str, job: Option<&Job>) -> Vec<ResultLine> {
    match job {
        None => failed_lines(
            row,
            "not_found",
            "the api no longer has the job (its result expired?)",
        ),
        Some(job) => lines_for(row, id, job),
    }
}

/// The result lines of an ended job.
fn lines_for(row: &Row, id: &str, job: &Job) -> Vec<ResultLine> {
    let seconds = job
        .finished_at
        .map(|end| (end - job.submitted_at).as_seconds_f64());
    if job.state == JobState::Done && job.results.len() == row.texts.len() {
        return row
            .texts
            .iter()
            .zip(&job.results)
            .map(|(text, result)| {
                let mut line = ResultLine::for_row(row, text);
                line.label = Some(result.label.as_str().to_owned());
                line.scores = Some(result.scores);
                line.explanation = Some(result.explanation.summary.clone());
                line.job = Some(id.to_owned());
                line.seconds = seconds;
                line
            })
            .collect();
    }
    let error = match &job.error {
        Some(error) => error.clone(),
        None => JobError::new(
            job.state.as_str(),
            format!("the job ended {}", job.state.as_str()),
        ),
    };
    let mut lines = failed_lines(row, &error.code, &error.message);
    for line in &mut lines {
        line.job = Some(id.to_owned());
        line.seconds = seconds;
    }
    lines
}

/// The row's idempotency key: the same row (id, image bytes, sentences,
/// premise) always gets the same key, so a resubmission finds its job, and a
/// row whose premise was edited is a new job rather than a conflict.
/// A row's image as the job will give it.
enum RowImage {
    /// The file's bytes.
    Bytes(Vec<u8>),
    /// An `https://` or `http://` row: the workers fetch it.
    Url(String),
    /// `--by-reference`: the file's path under the image root.
    Path(String),
}

impl RowImage {
    fn into_batch_image(self) -> BatchImage {
        match self {
            RowImage::Bytes(bytes) => {
                BatchImage::Base64(base64::engine::general_purpose::STANDARD.encode(bytes))
            }
            RowImage::Url(url) => BatchImage::Url(url),
            RowImage::Path(path) => BatchImage::Path(path),
        }
    }
}

/// Reads the row's image, or names it: a URL as the row gives it; with an
/// image root (`--by-reference`), the file's path relative to that root. An
/// error is the row's failure: its code and message.
async fn row_image(
    row: &Row,
    image_root: Option<&Path>,
) -> Result<RowImage, (&'static str, String)> {
    if row.image.starts_with("https://") || row.image.starts_with("http://") {
        return Ok(RowImage::Url(row.image.clone()));
    }
    let Some(root) = image_root else {
        return match tokio::fs::read(&row.image_path).await {
            Ok(image) => Ok(RowImage::Bytes(image)),
            Err(err) => Err((
                "image_unreadable",
                format!("cannot read {}: {err}", row.image_path.display()),
            )),
        };
    };
    let real = tokio::fs::canonicalize(&row.image_path)
        .await
        .map_err(|err| {
            (
                "image_unreadable",
                format!("cannot find {}: {err}", row.image_path.display()),
            )
        })?;
    let relative = real.strip_prefix(root).map_err(|_| {
        (
            "image_outside_root",
            format!(
                "{} is not under the image root {}: --by-reference can only name files there",
                real.display(),
                root.display()
            ),
        )
    })?;
    let relative = relative.to_str().ok_or_else(|| {
        (
            "image_unreadable",
            format!("{} is not a UTF-8 path", relative.display()),
        )
    })?;
    Ok(RowImage::Path(relative.to_owned()))
}

fn idempotency_key(row: &Row, image: &RowImage) -> String {
    let mut hash = Sha256::new();
    hash.update(row.id.as_bytes());
    hash.update([0]);
    match image {
        RowImage::Bytes(bytes) => hash.update(Sha256::digest(bytes)),
        // Named images: a key of their own kind, so that a row sent by
        // reference after being sent inline is a new job.
        RowImage::Url(url) => hash.update(Sha256::digest(format!("url:{url}"))),
        RowImage::Path(path) => hash.update(Sha256::digest(format!("path:{path}"))),
    }
    for text in &row.texts {
        hash.update([0]);
        hash.update(text.as_bytes());
    }
    // Only when there is one (so rows without a premise keep the keys they
    // had before premises existed), after a byte that UTF-8 never contains
    // (so it cannot be mistaken for the end of a sentence).
    if let Some(premise) = &row.premise {
        hash.update([0xff]);
        hash.update(premise.as_bytes());
    }
    format!("batch-{}", hex::encode(hash.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(premise: Option<&str>) -> Row {
        Row {
            id: "sku-1".into(),
            image: "cup.png".into(),
            image_path: PathBuf::from("cup.png"),
            texts: vec!["It is hot.".into()],
            premise: premise.map(str::to_owned),
            problem: None,
        }
    }

    #[test]
    fn the_idempotency_key_follows_the_premise() {
        let bytes = b"\x89PNG";
        let image = &RowImage::Bytes(bytes.to_vec());
        let none = idempotency_key(&row(None), image);
        let steam = idempotency_key(&row(Some("Steam rises.")), image);
        assert_ne!(none, steam);
        assert_ne!(steam, idempotency_key(&row(Some("Ice floats.")), image));
        assert_eq!(steam, idempotency_key(&row(Some("Steam rises.")), image));
        let by_path = idempotency_key(&row(None), &RowImage::Path("cup.png".into()));
        assert_ne!(none, by_path, "by reference is another job");
        assert_ne!(
            by_path,
            idempotency_key(&row(None), &RowImage::Url("cup.png".into()))
        );

        // Without a premise, the key a run made before premises existed: a
        // run resumed across the upgrade finds its jobs.
        let mut hash = Sha256::new();
        hash.update(b"sku-1");
        hash.update([0]);
        hash.update(Sha256::digest(bytes));
        hash.update([0]);
        hash.update(b"It is hot.");
        assert_eq!(none, format!("batch-{}", hex::encode(hash.finalize())));
    }

    #[tokio::test]
    async fn by_reference_rows_name_their_file_under_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("catalogue");
        std::fs::create_dir_all(root.join("shop")).unwrap();
        std::fs::write(root.join("shop/cup.png"), b"png").unwrap();
        std::fs::write(dir.path().join("elsewhere.png"), b"png").unwrap();
        let root = root.canonicalize().unwrap();
        let with = |image: &str, path: PathBuf| Row {
            image: image.into(),
            image_path: path,
            ..row(None)
        };

        let named = row_image(
            &with("shop/cup.png", root.join("shop/cup.png")),
            Some(&root),
        )
        .await;
        assert!(matches!(named, Ok(RowImage::Path(p)) if p == "shop/cup.png"));
        let outside = row_image(
            &with("../elsewhere.png", dir.path().join("elsewhere.png")),
            Some(&root),
        )
        .await;
        assert!(matches!(outside, Err(("image_outside_root", _))));
        let url = row_image(
            &with("https://img.example.com/a.png", PathBuf::from("x")),
            None,
        )
        .await;
        assert!(matches!(url, Ok(RowImage::Url(u)) if u == "https://img.example.com/a.png"));
        let inline = row_image(&with("shop/cup.png", root.join("shop/cup.png")), None).await;
        assert!(matches!(inline, Ok(RowImage::Bytes(b)) if b == b"png"));
    }
}
