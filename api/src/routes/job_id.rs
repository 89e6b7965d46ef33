//! The `{id}` of a job route, checked once for every route that takes one.

use axum::extract::Path;
use axum::extract::rejection::PathRejection;
use verdict_shared::job::{InvalidJobId, JobId};

use crate::error::ApiError;

/// The job id in the path, or 400 `invalid_job_id`.
pub fn from_path(path: Result<Path<String>, PathRejection>) -> Result<JobId, ApiError> {
    let Path(raw_id) =
        path.map_err(|err| ApiError::bad_request("invalid_job_id", err.body_text()))?;
    raw_id
        .parse()
        .map_err(|err: InvalidJobId| ApiError::bad_request("invalid_job_id", err.to_string()))
}
