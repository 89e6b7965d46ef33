//! `POST /v1/batches`: many jobs in one request, for catalogue runs
//! (`fleet batch`).
//!
//! Each job is checked and stored exactly as `POST /v1/jobs` would: one bad
//! image refuses that job, with its own status and error, not the batch.
//! The jobs are stored 16 to a Redis transaction (one round trip), four
//! transactions at a time, so a Redis hiccup answers the jobs of its
//! transaction (each with the same error); the answer lists them in the
//! request's order. Jobs carry their
//! own `idempotency_key`, so a client can resend a batch (or part of it)
//! after an error without creating a job twice. The request is bounded (`--max-batch-bytes`,
//! `--max-batch-jobs`) because the api holds it in memory while it works.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use verdict_shared::job::Job;

use crate::enqueue::{self, enqueue_many};
use crate::error::{ApiError, ErrorBody, ErrorDetail};
use crate::idempotency;
use crate::state::AppState;
use crate::submission::{self, json::JsonSubmission};

/// Jobs of a batch stored in one Redis transaction (`enqueue_many`): Redis
/// spends about half as much on a job sent with 15 others as on one sent
/// alone (docs/benchmarks.md).
const GROUP_SIZE: usize = 16;

/// Base64 characters of images after which a group takes no more jobs
/// (about 3 MiB of images).
const GROUP_IMAGE_CHARS: usize = 4 << 20;

/// Groups of one batch checked and stored at once, on as many connections
/// of the api's Redis pool (a quarter of it: other requests keep theirs).
const GROUPS_AT_ONCE: usize = crate::server::POOL_SIZE / 4;

/// The body of `POST /v1/batches`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// 1 to `--max-batch-jobs` (default 256) jobs.
    pub jobs: Vec<BatchJob>,
    /// The callback URL of every job that names none itself.
    #[serde(default)]
    pub callback_url: Option<String>,
}

/// One job of a batch: the JSON submission of `POST /v1/jobs` and its
/// idempotency key.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchJob {
    /// The image file, standard base64; or, instead, `image_url` or
    /// `image_path` as in `POST /v1/jobs`.
    #[serde(default)]
    pub image_base64: Option<String>,
    #[serde(default)]
    pub image_url: Option<String>,
    #[serde(default)]
    pub image_path: Option<String>,
    /// 1 to 64 sentences.
    pub texts: Vec<String>,
    /// Optional: a text that holds together with the image, as in `POST
    /// /v1/jobs` (1 to 1000 characters).
    #[serde(default)]
    pub premise: Option<String>,
    #[serde(default)]
    pub callback_url: Option<String>,
    /// As the `Idempotency-Key` header of `POST /v1/jobs`.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

/// The answer: one item per job, in request order.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BatchResponse {
    /// Jobs created or found by their idempotency key.
    pub accepted: usize,
    /// Jobs refused (see their `error`).
    pub refused: usize,
    pub jobs: Vec<BatchItem>,
}

/// What became of one job of the batch.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BatchItem {
    /// Its position in the request.
    pub index: usize,
    /// The status `POST /v1/jobs` would have answered: 202 created, 200
    /// found by its idempotency key, 4xx refused, 503 retry later.
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<Job>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
}

/// Submit many jobs at once.
#[utoipa::path(
    post,
    path = "/v1/batches",
    tag = "jobs",
    request_body(content = BatchRequest, content_type = "application/json"),
    security((), ("bearer" = [])),
    responses(
        (status = 202, description = "Every job was handled; each item says how", body = BatchResponse),
        (status = 400, description = "invalid_json, invalid_body, empty_batch, too_many_jobs, invalid_callback_url and callback_not_allowed (the batch's own callback_url)", body = ErrorBody),
        (status = 401, description = "unauthorized: VERDICT_API_TOKEN is set and the request has no valid bearer token", body = crate::error::ErrorBody),
        (status = 408, description = "body_too_slow: the body arrived slower than --body-min-rate after --body-grace", body = ErrorBody),
        (status = 413, description = "body_too_large", body = ErrorBody),
        (status = 415, description = "unsupported_content_type", body = ErrorBody),
    )
)]
pub async fn submit_batch(
    State(state): State<AppState>,
    req: Request,
) -> Result<Response, ApiError> {
    let body = crate::json_body::read(
        req,
        state.batch.max_bytes,
        "{\"jobs\": [{\"image_base64\": \"...\", \"texts\": [\"...\"]}]}",
    )
    .await?;
    let batch: BatchRequest = serde_json::from_slice(&body).map_err(|err| {
        ApiError::bad_request(
            "invalid_json",
            format!(
                "the body is not a batch ({err}); expected {{\"jobs\": [{{\"image_base64\": \"...\", \"texts\": [\"...\"]}}]}}"
            ),
        )
    })?;
    drop(body);
    if batch.jobs.is_empty() {
        return Err(ApiError::bad_request(
            "empty_batch",
            "the batch has no jobs",
        ));
    }
    if batch.jobs.len() > state.batch.max_jobs {
        return Err(ApiError::bad_request(
            "too_many_jobs",
            format!(
                "the batch has {} jobs, more than the limit of {}",
                batch.jobs.len(),
                state.batch.max_jobs
            ),
        ));
    }
    // The batch's own callback_url is checked once, up front: one that no job
    // could use is the request's mistake, not each job's.
    if let Some(url) = &batch.callback_url {
        state.callbacks.allow.check(url)?;
    }
    let default_callback = batch.callback_url;
    // The jobs go to Redis GROUP_SIZE to a transaction (fewer when their
    // images are large), GROUPS_AT_ONCE
    // transactions at a time; each group's jobs are decoded and checked
    // only when it goes, and `buffered` answers them in the request's
    // order.
    let groups = groups(batch.jobs);
    let items: Vec<BatchItem> = futures::stream::iter(groups)
        .map(|group| {
            let (state, default_callback) = (&state, default_callback.as_deref());
            async move { store_group(state, group, default_callback).await }
        })
        .buffered(GROUPS_AT_ONCE)
        .flat_map(futures::stream::iter)
        .collect()
        .await;
    let accepted = items.iter().filter(|i| i.job.is_some()).count();
    let response = BatchResponse {
        accepted,
        refused: items.len() - accepted,
        jobs: items,
    };
    Ok((StatusCode::ACCEPTED, Json(response)).into_response())
}

/// The batch's jobs, with their index, in groups of `GROUP_SIZE`; a group
/// also ends once its images' base64 reaches `GROUP_IMAGE_CHARS`, so that
/// one transaction never carries much more than one large image.
fn groups(jobs: Vec<BatchJob>) -> Vec<Vec<(usize, BatchJob)>> {
    let mut groups: Vec<Vec<(usize, BatchJob)>> = Vec::new();
    let mut chars = 0;
    for (index, job) in jobs.into_iter().enumerate() {
        let full = groups
            .last()
            .is_none_or(|group| group.len() >= GROUP_SIZE || chars >= GROUP_IMAGE_CHARS);
        if full {
            groups.push(Vec::new());
            chars = 0;
        }
        chars += job.image_base64.as_ref().map_or(0, String::len);
        if let Some(group) = groups.last_mut() {
            group.push((index, job));
        }
    }
    groups
}

/// Checks a group's jobs and stores those that pass in one transaction;
/// an item for each, in order.
async fn store_group(
    state: &AppState,
    group: Vec<(usize, BatchJob)>,
    default_callback: Option<&str>,
) -> Vec<BatchItem> {
    let (indices, requests): (Vec<usize>, Vec<_>) = group
        .into_iter()
        .map(|(index, job)| (index, prepare(state, job, default_callback)))
        .unzip();
    indices
        .into_iter()
        .zip(enqueue_many(state, requests).await)
        .map(|(index, outcome)| item(index, outcome))
        .collect()
}

/// What the batch's answer says of one job.
fn item(index: usize, outcome: Result<enqueue::Enqueued, ApiError>) -> BatchItem {
    match outcome {
        Ok(enqueued) => BatchItem {
            index,
            status: if enqueued.created { 202 } else { 200 },
            job: Some(enqueued.job),
            error: None,
        },
        Err(err) => BatchItem {
            index,
            status: err.status.as_u16(),
            job: None,
            error: Some(ErrorDetail {
                code: err.code.to_owned(),
                message: err.message,
            }),
        },
    }
}

/// One job of the batch, checked as `POST /v1/jobs` checks it.
fn prepare(
    state: &AppState,
    job: BatchJob,
    default_callback: Option<&str>,
) -> Result<enqueue::Request, ApiError> {
    let idempotency_key = job
        .idempotency_key
        .as_deref()
        .map(|key| idempotency::check(key).map(str::to_owned))
        .transpose()?;
    let submission = JsonSubmission {
        image_base64: job.image_base64,
        image_url: job.image_url,
        image_path: job.image_path,
        texts: job.texts,
        premise: job.premise,
        callback_url: job.callback_url.or(default_callback.map(str::to_owned)),
    }
    .into_submission(&state.limits)?;
    let checked = submission::check(submission, &state.limits)?;
    Ok(enqueue::Request::new(checked, idempotency_key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(image_chars: usize) -> BatchJob {
        BatchJob {
            image_base64: Some("A".repeat(image_chars)),
            image_url: None,
            image_path: None,
            texts: vec!["A cup.".to_owned()],
            premise: None,
            callback_url: None,
            idempotency_key: None,
        }
    }

    fn sizes(groups: &[Vec<(usize, BatchJob)>]) -> Vec<usize> {
        groups.iter().map(Vec::len).collect()
    }

    #[test]
    fn groups_hold_sixteen_small_jobs_or_end_after_large_images() {
        let small = groups((0..40).map(|_| job(100)).collect());
        assert_eq!(sizes(&small), [16, 16, 8]);
        let indices: Vec<usize> = small.iter().flatten().map(|(index, _)| *index).collect();
        assert_eq!(indices, (0..40).collect::<Vec<_>>(), "in order, each once");
        let large = groups((0..5).map(|_| job(3 << 20)).collect());
        assert_eq!(sizes(&large), [2, 2, 1]);
        assert!(groups(Vec::new()).is_empty());
    }
}
