//! `POST /v1/jobs`: check a submission, enqueue it, answer 202 (or 200 with
//! the existing job for a repeated `Idempotency-Key`).

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use verdict_shared::job::Job;

use crate::enqueue::{self, enqueue};
use crate::error::{ApiError, ErrorBody};
use crate::idempotency;
use crate::request_log::LoggedJobId;
use crate::state::AppState;
use crate::submission;

/// Submit a job: one image, 1 to 64 sentences and an optional premise.
///
/// Multipart (`image` file part, `text` parts, optional `premise` and
/// `callback_url` parts) or JSON. A premise is a text that holds together
/// with the image; a model that cannot use one (the default) fails the job
/// with `premise_unsupported`. With an `Idempotency-Key` header, a repeat of
/// the same request within the result TTL answers 200 with the job the first
/// one created.
#[utoipa::path(
    post,
    path = "/v1/jobs",
    tag = "jobs",
    params(("Idempotency-Key" = Option<String>, Header,
            description = "1 to 255 visible ASCII characters; the same key returns the same job")),
    request_body(
        description = "The image, the sentences and an optional premise",
        content(
            (crate::openapi::MultipartSubmission = "multipart/form-data"),
            (crate::submission::json::JsonSubmission = "application/json"),
        )
    ),
    security((), ("bearer" = [])),
    responses(
        (status = 202, description = "Accepted: the job, queued", body = Job,
         headers(("Location" = String, description = "/v1/jobs/{id}"))),
        (status = 200, description = "An earlier request with this Idempotency-Key created this job", body = Job,
         headers(("Location" = String, description = "/v1/jobs/{id}"))),
        (status = 400, description = "missing_image, multiple_images, missing_text, too_many_texts, text_empty, text_too_long, text_not_utf8, premise_empty, premise_too_long, premise_not_utf8, image_empty, invalid_json, invalid_base64, invalid_multipart, invalid_body, invalid_idempotency_key, invalid_callback_url, callback_not_allowed", body = ErrorBody),
        (status = 409, description = "idempotency_conflict: the job the key named expired during the request; retry", body = ErrorBody),
        (status = 408, description = "body_too_slow: the body arrived slower than --body-min-rate after --body-grace", body = ErrorBody),
        (status = 413, description = "body_too_large, image_too_large", body = ErrorBody),
        (status = 415, description = "unsupported_content_type, image_format", body = ErrorBody),
        (status = 401, description = "unauthorized: VERDICT_API_TOKEN is set and the request has no valid bearer token", body = ErrorBody),
        (status = 422, description = "idempotency_key_reused: the key was used for a different request", body = ErrorBody),
        (status = 429, description = "queue_full: the queue holds its maximum depth; retry after Retry-After seconds", body = ErrorBody,
         headers(("Retry-After" = String, description = "seconds"))),
        (status = 500, description = "internal", body = ErrorBody),
        (status = 503, description = "redis_unavailable: Redis did not answer in time, the job was not stored; outcome_unknown: the submission reached Redis and no answer came back, the job may be stored; not_replicated (--durability replicated): stored on the primary, no replica confirmed it in time. Retry after Retry-After seconds, with the same Idempotency-Key", body = ErrorBody,
         headers(("Retry-After" = String, description = "seconds"))),
    )
)]
pub async fn submit(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let idempotency_key = idempotency::from_headers(req.headers())?;
    let checked = submission::from_request(req, &state.limits).await?;
    let enqueued = enqueue(&state, enqueue::Request::new(checked, idempotency_key)).await?;
    let id = enqueued.job.id;
    let status = if enqueued.created {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    let location = format!("/v1/jobs/{id}");
    let mut response = (status, [(header::LOCATION, location)], Json(enqueued.job)).into_response();
    response.extensions_mut().insert(LoggedJobId(id));
    Ok(response)
}
