//! `GET /v1/jobs/{id}[?wait=SECONDS]`: the job, optionally once it has ended.

use std::time::Duration;

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use tokio::time::Instant;
use verdict_shared::job::{Job, JobId};
use verdict_shared::queue::QueueError;
use verdict_shared::queue::read::read_job;

use crate::error::ApiError;
use crate::redis_deadline::within;
use crate::request_log::LoggedJobId;
use crate::state::AppState;

/// The longest long-poll.
pub const MAX_WAIT: Duration = Duration::from_secs(60);

/// A job; with `wait`, once it has ended (or when the wait is over).
#[utoipa::path(
    get,
    path = "/v1/jobs/{id}",
    tag = "jobs",
    params(
        ("id" = String, Path, description = "The job's id (a canonical UUID)"),
        ("wait" = Option<f64>, Query, description = "Seconds (0 to 60, fractions allowed) to wait for the job to end"),
    ),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The job as it is now", body = verdict_shared::job::Job),
        (status = 400, description = "invalid_job_id, invalid_wait", body = crate::error::ErrorBody),
        (status = 401, description = "unauthorized: VERDICT_API_TOKEN is set and the request has no valid bearer token", body = crate::error::ErrorBody),
        (status = 404, description = "not_found: never submitted, or its result expired", body = crate::error::ErrorBody),
        (status = 500, description = "internal", body = crate::error::ErrorBody),
        (status = 503, description = "redis_unavailable", body = crate::error::ErrorBody),
    )
)]
pub async fn get_job(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let id = super::job_id::from_path(path)?;
    let wait = parse_wait(query.as_deref())?;
    let job = match wait {
        None => load(&state, id).await?,
        Some(wait) => wait_for_end(&state, id, wait).await?,
    };
    let mut response = Json(job).into_response();
    response.extensions_mut().insert(LoggedJobId(id));
    Ok(response)
}

/// Reads the job; 404 if there is none.
pub(crate) async fn load(state: &AppState, id: JobId) -> Result<Job, ApiError> {
    let pool = state.pool.clone();
    let job = within(state.redis_timeout, async move {
        let mut conn = pool.get().await.map_err(QueueError::from)?;
        read_job(&mut conn, id).await
    })
    .await?;
    job.ok_or_else(|| {
        ApiError::not_found(format!(
            "no job {id} (never submitted, or its result expired)"
        ))
    })
}

/// Reads the job until it has ended or `wait` has passed, whichever is first,
/// sleeping on the job's events in between (no polling).
async fn wait_for_end(state: &AppState, id: JobId, wait: Duration) -> Result<Job, ApiError> {
    // Register before reading, so that an end between the read and the wait
    // is not missed.
    let waiter = state.waiters.register(id);
    let mut job = load(state, id).await?;
    let deadline = Instant::now() + wait;
    let mut shutdown = state.shutdown.clone();
    while !job.state.is_terminal() {
        tokio::select! {
            _ = waiter.changed() => {}
            _ = tokio::time::sleep_until(deadline) => return load(state, id).await,
            _ = shutdown.recv() => return load(state, id).await,
        }
        job = load(state, id).await?;
    }
    Ok(job)
}

/// `wait=SECONDS` (a number from 0 to 60, fractions allowed); other
/// parameters are ignored.
fn parse_wait(query: Option<&str>) -> Result<Option<Duration>, ApiError> {
    let Some(query) = query else { return Ok(None) };
    let Some(value) = query
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find_map(|(key, value)| (key == "wait").then_some(value))
    else {
        return Ok(None);
    };
    let invalid = || {
        ApiError::bad_request(
            "invalid_wait",
            format!(
                "wait={:?} is not a number of seconds from 0 to {}",
                value.chars().take(32).collect::<String>(),
                MAX_WAIT.as_secs()
            ),
        )
    };
    let seconds: f64 = value.parse().map_err(|_| invalid())?;
    if !seconds.is_finite() || !(0.0..=MAX_WAIT.as_secs_f64()).contains(&seconds) {
        return Err(invalid());
    }
    Ok(Some(Duration::from_secs_f64(seconds)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_accepts_seconds_up_to_the_maximum() {
        assert_eq!(parse_wait(None).unwrap(), None);
        assert_eq!(parse_wait(Some("x=1")).unwrap(), None);
        assert_eq!(
            parse_wait(Some("wait=5")).unwrap(),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            parse_wait(Some("a=b&wait=0.5")).unwrap(),
            Some(Duration::from_millis(500))
        );
        assert_eq!(parse_wait(Some("wait=60")).unwrap(), Some(MAX_WAIT));
    }

    #[test]
    fn wait_refuses_the_rest() {
        for bad in [
            "wait=61", "wait=-1", "wait=", "wait", "wait=NaN", "wait=inf", "wait=1e9", "wait=ten",
        ] {
            assert_eq!(
                parse_wait(Some(bad)).unwrap_err().code,
                "invalid_wait",
                "{bad}"
            );
        }
    }
}
