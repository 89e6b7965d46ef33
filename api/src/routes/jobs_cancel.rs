//! `POST /v1/jobs/{id}/cancel`: cancel a job that no worker has started.
//!
//! A `POST` to a verb, not a `DELETE` of the job: the job stays readable
//! after it (`cancelled`, with its error), which a `DELETE` would deny.
//!
//! - queued: it becomes `cancelled`, its entry leaves the queue, waiting
//!   long-polls answer; 200 with the job;
//! - already cancelled: 200 with the job (cancelling twice is harmless);
//! - running: 409 `job_running` — a worker is judging it and it ends in
//!   moments; it is not interrupted;
//! - done or failed: 409 `job_finished`; the ending is kept;
//! - unknown or expired: 404.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use verdict_shared::job::JobState;
use verdict_shared::queue::cancel::{Cancel, cancel};
use verdict_shared::queue::read::read_job;

use crate::error::ApiError;
use crate::redis_deadline::within;
use crate::request_log::LoggedJobId;
use crate::state::AppState;

/// Cancel a job that no worker has started.
#[utoipa::path(
    post,
    path = "/v1/jobs/{id}/cancel",
    tag = "jobs",
    params(("id" = String, Path, description = "The job's id (a canonical UUID)")),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The job, now (or already) cancelled", body = verdict_shared::job::Job),
        (status = 400, description = "invalid_job_id", body = crate::error::ErrorBody),
        (status = 401, description = "unauthorized", body = crate::error::ErrorBody),
        (status = 404, description = "not_found: never submitted, or its result expired", body = crate::error::ErrorBody),
        (status = 409, description = "job_running (a worker is judging it), job_finished (done or failed)", body = crate::error::ErrorBody),
        (status = 500, description = "internal", body = crate::error::ErrorBody),
        (status = 503, description = "redis_unavailable", body = crate::error::ErrorBody,
         headers(("Retry-After" = String, description = "seconds"))),
    )
)]
pub async fn cancel_job(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = super::job_id::from_path(path)?;
    let pool = state.pool.clone();
    let (outcome, job) = within(state.redis_timeout, async move {
        let mut conn = pool.get().await?;
        let outcome = cancel(&mut conn, id).await?;
        let job = read_job(&mut conn, id).await?;
        Ok((outcome, job))
    })
    .await?;
    let not_found = || {
        ApiError::not_found(format!(
            "no job {id} (never submitted, or its result expired)"
        ))
    };
    match outcome {
        Cancel::Missing => return Err(not_found()),
        Cancel::Cancelled | Cancel::Refused(JobState::Cancelled) => {}
        Cancel::Refused(JobState::Running) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "job_running",
                format!("job {id} is running: a worker is judging it and it cannot be cancelled"),
            ));
        }
        Cancel::Refused(state) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "job_finished",
                format!("job {id} has already ended ({state}) and cannot be cancelled"),
            ));
        }
    }
    let job = job.ok_or_else(not_found)?;
    let mut response = Json(job).into_response();
    response.extensions_mut().insert(LoggedJobId(id));
    Ok(response)
}
