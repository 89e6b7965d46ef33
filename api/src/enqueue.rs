//! Storing a checked submission: hash the image (or check the reference it
//! names against the server's image hosts and root), check the callback URL,
//! submit with the idempotency key. Shared by `POST /v1/jobs` and each job of
//! `POST /v1/batches`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use axum::http::StatusCode;
use bytes::Bytes;
use sha2::{Digest, Sha256};
use verdict_shared::job::{ImageInfo, Job, JobId};
use verdict_shared::queue::read::read_job;
use verdict_shared::queue::replicate::wait_for_replicas;
use verdict_shared::queue::submit::{NewJob, SubmitOptions, Submitted, submit_with};

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
    if let Some(url) = &request.callback_url {
        state.callbacks.allow.check(url)?;
    }
    let empty = Bytes::new();
    let (image_info, image, image_key) = match &request.image {
        SubmittedImage::Bytes(image) => {
            let sha256 = sha256_hex(image).await?;
            let info = ImageInfo {
                bytes: image.len() as u64,
                sha256: sha256.clone(),
                format: request.format.to_owned(),
                reference: None,
            };
            (info, image, sha256)
        }
        SubmittedImage::Reference(reference) => {
            state.images.check(reference)?;
            // An idempotency key names the reference, not bytes nobody read.
            let key = hex::encode(Sha256::digest(
                format!("{}:{}", reference.kind(), reference.as_str()).as_bytes(),
            ));
            (ImageInfo::by_reference(reference.clone()), &empty, key)
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
    let id = JobId::new();
    // Whether the submission may have reached Redis: once it has, a missed
    // deadline or a dropped connection says nothing about whether Redis
    // stored the job (it may run the command when it wakes up).
    let sent = AtomicBool::new(false);
    let started = Instant::now();
    let stored = within(state.redis_timeout, async {
        let mut conn = state.pool.get().await?;
        sent.store(true, Ordering::Relaxed);
        let submitted = submit_with(
            &mut conn,
            NewJob {
                id,
                texts: &request.texts,
                premise: request.premise.as_deref(),
                image_info: &image_info,
                image,
                result_ttl: state.result_ttl,
                max_queue_depth: state.max_queue_depth,
            },
            SubmitOptions {
                callback_url: request.callback_url.as_deref(),
                idempotency: idempotency.as_ref(),
            },
        )
        .await?;
        // On the connection that wrote: the transaction always writes (the
        // image), so WAIT covers this job, or the one an Idempotency-Key
        // found (written before it, on this primary or replicated to it).
        let wanted = state.durability.replicas();
        let replicated = if wanted == 0 {
            true
        } else {
            let timeout = durability::wait_timeout(state.redis_timeout, started.elapsed());
            wait_for_replicas(&mut conn, wanted, timeout).await? >= u64::from(wanted)
        };
        let existing_job = match &submitted {
            Submitted::Existing { id, .. } => read_job(&mut conn, *id).await?,
            Submitted::New(_) => None,
        };
        Ok((submitted, existing_job, replicated))
    })
    .await;
    let (submitted, existing_job, replicated) = stored.map_err(|err| {
        if err.status == StatusCode::SERVICE_UNAVAILABLE && sent.load(Ordering::Relaxed) {
            ApiError::outcome_unknown(id, request.idempotency_key.is_some())
        } else {
            err
        }
    })?;
    if !replicated {
        let stored_as = match &submitted {
            Submitted::New(_) => id,
            Submitted::Existing { id, .. } => *id,
        };
        tracing::warn!(job_id = %stored_as, "no replica confirmed the job in time: answered 503 not_replicated");
        return Err(ApiError::not_replicated(
            stored_as,
            request.idempotency_key.is_some(),
        ));
    }
    match submitted {
        Submitted::New(job) => {
            tracing::debug!(job_id = %id, image_bytes = image.len(), by_reference = image_info.reference.as_ref().map(|r| r.kind()), format = request.format, sentences = request.texts.len(), premise = request.premise.is_some(), "job queued");
            Ok(Enqueued {
                job: *job,
                created: true,
            })
        }
        Submitted::Existing { fingerprint, .. } => {
            if idempotency.is_some_and(|i| i.fingerprint != fingerprint) {
                return Err(idempotency::reused());
            }
            // The script saw the job; it can only have expired since.
            let job = existing_job.ok_or_else(|| {
                ApiError::new(
                    StatusCode::CONFLICT,
                    "idempotency_conflict",
                    "the job this Idempotency-Key named expired just now: retry",
                )
            })?;
            Ok(Enqueued {
                job,
                created: false,
            })
        }
    }
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
