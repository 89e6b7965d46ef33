//! Storing a checked submission: hash the image (or check the reference it
//! names against the server's image hosts and root), check the callback URL,
//! submit with the idempotency key. Shared by `POST /v1/jobs` and
//! `POST /v1/batches`, whose jobs are stored several to a transaction
//! ([`enqueue_many`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use axum::http::StatusCode;
use bytes::Bytes;
use sha2::{Digest, Sha256};
use verdict_shared::job::{ImageInfo, Job, JobId};
use verdict_shared::queue::QueueError;
use verdict_shared::queue::read::read_jobs;
use verdict_shared::queue::replicate::wait_for_replicas;
use verdict_shared::queue::submit::{NewJob, SubmitOptions, Submitted, submit_many};

use crate::durability;
use crate::error::ApiError;
use crate::idempotency;
use crate::redis_deadline::within;
use crate::state::AppState;
use crate::submission::SubmittedImage;

/// Images larger than this are hashed on a blocking thread, not on the
/// runtime's (an 8 MiB image takes tens of milliseconds).
const HASH_INLINE_MAX: usize = 256 * 1024;

/// What to store.
#[derive(Debug)]
pub struct Request {
    pub image: SubmittedImage,
    /// The format named by the image's magic bytes (empty for a reference).
    pub format: &'static str,
    pub texts: Vec<String>,
    pub premise: Option<String>,
    pub callback_url: Option<String>,
    pub idempotency_key: Option<String>,
}

impl Request {
    /// A checked submission, stored under `idempotency_key` if it has one.
    pub fn new(checked: crate::submission::Checked, idempotency_key: Option<String>) -> Request {
        Request {
            image: checked.submission.image,
            format: checked.format,
            texts: checked.submission.texts,
            premise: checked.submission.premise,
            callback_url: checked.submission.callback_url,
            idempotency_key,
        }
    }
}

/// The job, and whether it was created now (`false`: an earlier request with
/// the same `Idempotency-Key` created it).
#[derive(Debug)]
pub struct Enqueued {
    pub job: Job,
    pub created: bool,
}

pub async fn enqueue(state: &AppState, request: Request) -> Result<Enqueued, ApiError> {
    let [one]: [Result<Enqueued, ApiError>; 1] = enqueue_many(state, vec![Ok(request)])
        .await
        .try_into()
        .map_err(|_| internal("not one outcome for one submission"))?;
    one
}

/// Stores several submissions (jobs of one batch) in one Redis transaction,
/// one round trip (`submit_many`), and answers each as [`enqueue`] would, in
/// order: a job refused by its own checks (an `Err` already, or here) or by
/// the queue's limit is refused alone; when Redis cannot be reached, or its
/// answer does not come in time, every job of the group gets that answer
/// (`redis_unavailable`, or `outcome_unknown` once the transaction was sent).
pub async fn enqueue_many(
    state: &AppState,
    requests: Vec<Result<Request, ApiError>>,
) -> Vec<Result<Enqueued, ApiError>> {
    let mut outcomes: Vec<Option<Result<Enqueued, ApiError>>> = Vec::with_capacity(requests.len());
    let mut ready = Vec::new();
    for request in requests {
        let checked = match request {
            Ok(request) => Ready::new(state, request).await,
            Err(err) => Err(err),
        };
        match checked {
            Ok(job) => {
                ready.push((outcomes.len(), job));
                outcomes.push(None);
            }
            Err(err) => outcomes.push(Some(Err(err))),
        }
    }
    if !ready.is_empty() {
        let jobs: Vec<&Ready> = ready.iter().map(|(_, job)| job).collect();
        for ((position, _), outcome) in ready.iter().zip(store(state, &jobs).await) {
            outcomes[*position] = Some(outcome);
        }
    }
    outcomes
        .into_iter()
        .map(|outcome| outcome.unwrap_or_else(|| Err(internal("a submission was left unanswered"))))
        .collect()
}

/// A submission ready to be stored: its image hashed, its reference and
/// callback checked, its id drawn.
struct Ready {
    request: Request,
    id: JobId,
    image_info: ImageInfo,
    idempotency: Option<verdict_shared::queue::submit::Idempotency>,
}

impl Ready {
    async fn new(state: &AppState, request: Request) -> Result<Ready, ApiError> {
        if let Some(url) = &request.callback_url {
            state.callbacks.allow.check(url)?;
        }
        let (image_info, image_key) = match &request.image {
            SubmittedImage::Bytes(image) => {
                let sha256 = sha256_hex(image).await?;
                let info = ImageInfo {
                    bytes: image.len() as u64,
                    sha256: sha256.clone(),
                    format: request.format.to_owned(),
                    reference: None,
                };
                (info, sha256)
            }
            SubmittedImage::Reference(reference) => {
                state.images.check(reference)?;
                // An idempotency key names the reference, not bytes nobody read.
                let key = hex::encode(Sha256::digest(
                    format!("{}:{}", reference.kind(), reference.as_str()).as_bytes(),
                ));
                (ImageInfo::by_reference(reference.clone()), key)
            }
        };
        let idempotency = request.idempotency_key.as_deref().map(|key| {
            idempotency::for_request(
                key,
                &image_key,
                &request.texts,
                request.premise.as_deref(),
                request.callback_url.as_deref(),
            )
        });
        Ok(Ready {
            id: JobId::new(),
            image_info,
            idempotency,
            request,
        })
    }

    /// The image's bytes (none for a job that names its image).
    fn image(&self) -> &[u8] {
        match &self.request.image {
            SubmittedImage::Bytes(image) => image,
            SubmittedImage::Reference(_) => &[],
        }
    }

    fn new_job(&self, state: &AppState) -> NewJob<'_> {
        NewJob {
            id: self.id,
            texts: &self.request.texts,
            premise: self.request.premise.as_deref(),
            image_info: &self.image_info,
            image: self.image(),
            result_ttl: state.result_ttl,
            max_queue_depth: state.max_queue_depth,
        }
    }

    fn options(&self) -> SubmitOptions<'_> {
        SubmitOptions {
            callback_url: self.request.callback_url.as_deref(),
            idempotency: self.idempotency.as_ref(),
        }
    }

    fn had_key(&self) -> bool {
        self.request.idempotency_key.is_some()
    }
}

/// What Redis said about one job of a group.
type Stored = (Result<Submitted, QueueError>, Option<Job>);

/// Stores the jobs in one transaction and answers each.
async fn store(state: &AppState, jobs: &[&Ready]) -> Vec<Result<Enqueued, ApiError>> {
    // Whether the submission may have reached Redis: once it has, a missed
    // deadline or a dropped connection says nothing about whether Redis
    // stored the jobs (it may run the commands when it wakes up).
    let sent = AtomicBool::new(false);
    let started = Instant::now();
    let stored = within(state.redis_timeout, async {
        let mut conn = state.pool.get().await?;
        sent.store(true, Ordering::Relaxed);
        let submissions: Vec<(NewJob<'_>, SubmitOptions<'_>)> = jobs
            .iter()
            .map(|job| (job.new_job(state), job.options()))
            .collect();
        let outcomes = submit_many(&mut conn, &submissions).await?;
        // On the connection that wrote: the transaction always writes (the
        // images), so WAIT covers these jobs, or those an Idempotency-Key
        // found (written before them, on this primary or replicated to it).
        let wanted = state.durability.replicas();
        let replicated = if wanted == 0 {
            true
        } else {
            let timeout = durability::wait_timeout(state.redis_timeout, started.elapsed());
            wait_for_replicas(&mut conn, wanted, timeout).await? >= u64::from(wanted)
        };
        let existing: Vec<JobId> = outcomes
            .iter()
            .filter_map(|outcome| match outcome {
                Ok(Submitted::Existing { id, .. }) => Some(*id),
                _ => None,
            })
            .collect();
        let mut found = read_jobs(&mut conn, &existing).await?.into_iter();
        let stored: Vec<Stored> = outcomes
            .into_iter()
            .map(|outcome| {
                let job = match &outcome {
                    Ok(Submitted::Existing { .. }) => found.next().flatten(),
                    _ => None,
                };
                (outcome, job)
            })
            .collect();
        Ok((stored, replicated))
    })
    .await;
    let (stored, replicated) = match stored {
        Ok(stored) => stored,
        Err(err) => {
            let unknown =
                err.status == StatusCode::SERVICE_UNAVAILABLE && sent.load(Ordering::Relaxed);
            return jobs
                .iter()
                .map(|job| {
                    Err(if unknown {
                        ApiError::outcome_unknown(job.id, job.had_key())
                    } else {
                        err.clone()
                    })
                })
                .collect();
        }
    };
    jobs.iter()
        .zip(stored)
        .map(|(job, (outcome, existing_job))| answer(job, outcome?, existing_job, replicated))
        .collect()
}

/// One job's answer, from what the script did with it.
fn answer(
    job: &Ready,
    submitted: Submitted,
    existing_job: Option<Job>,
    replicated: bool,
) -> Result<Enqueued, ApiError> {
    if !replicated {
        let stored_as = match &submitted {
            Submitted::New(_) => job.id,
            Submitted::Existing { id, .. } => *id,
        };
        tracing::warn!(job_id = %stored_as, "no replica confirmed the job in time: answered 503 not_replicated");
        return Err(ApiError::not_replicated(stored_as, job.had_key()));
    }
    match submitted {
        Submitted::New(stored) => {
            let request = &job.request;
            tracing::debug!(job_id = %job.id, image_bytes = job.image().len(), by_reference = job.image_info.reference.as_ref().map(|r| r.kind()), format = request.format, sentences = request.texts.len(), premise = request.premise.is_some(), "job queued");
            Ok(Enqueued {
                job: *stored,
                created: true,
            })
        }
        Submitted::Existing { fingerprint, .. } => {
            if job
                .idempotency
                .as_ref()
                .is_some_and(|i| i.fingerprint != fingerprint)
            {
                return Err(idempotency::reused());
            }
            // The script saw the job; it can only have expired since.
            let stored = existing_job.ok_or_else(|| {
                ApiError::new(
                    StatusCode::CONFLICT,
                    "idempotency_conflict",
                    "the job this Idempotency-Key named expired just now: retry",
                )
            })?;
            Ok(Enqueued {
                job: stored,
                created: false,
            })
        }
    }
}

fn internal(what: &str) -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        format!("enqueue: {what}"),
    )
}

async fn sha256_hex(image: &Bytes) -> Result<String, ApiError> {
    if image.len() <= HASH_INLINE_MAX {
        return Ok(hex::encode(Sha256::digest(image)));
    }
    let image = image.clone();
    tokio::task::spawn_blocking(move || hex::encode(Sha256::digest(&image)))
        .await
        .map_err(|err| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("hashing failed: {err}"),
            )
        })
}
