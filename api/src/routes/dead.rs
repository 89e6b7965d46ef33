//! The dead letters (`verdict:dead`): jobs the workers gave up on after their
//! last attempt (a poison job, or one that kept failing transiently).
//!
//! - `GET /v1/dead?before=ENTRY&limit=N`: newest first, a page at a time;
//! - `POST /v1/dead/{id}/retry`: queued again from scratch (attempts 0), with
//!   the image the dead-lettering kept; 200 with the job;
//! - `DELETE /v1/dead/{id}`: out of the dead-letter stream; the job stays
//!   readable, failed, until its result TTL.
//!
//! Same token as the rest of `/v1`.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use verdict_shared::job::JobId;
use verdict_shared::queue::dead_list::{self, DeadPage};
use verdict_shared::queue::dead_retry::{Revive, Revived, revive};

use crate::error::ApiError;
use crate::redis_deadline::within;
use crate::request_log::LoggedJobId;
use crate::state::AppState;

/// Most entries in one page.
const MAX_LIMIT: usize = 100;

/// What `DELETE /v1/dead/{id}` did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Discarded {
    /// The job's id.
    pub job: String,
    pub discarded: bool,
}

/// List the dead-lettered jobs, newest first.
#[utoipa::path(
    get,
    path = "/v1/dead",
    tag = "dead letters",
    params(
        ("before" = Option<String>, Query, description = "The `next` of the previous page (a dead-letter entry id)", pattern = r"^[0-9]{1,19}-[0-9]{1,19}$"),
        ("limit" = Option<usize>, Query, description = "Entries per page, 1 to 100 (default 20)", minimum = 1, maximum = 100),
    ),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "A page of dead letters", body = DeadPage),
        (status = 400, description = "invalid_query", body = crate::error::ErrorBody),
        (status = 401, description = "unauthorized", body = crate::error::ErrorBody),
        (status = 503, description = "redis_unavailable", body = crate::error::ErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let (before, limit) = parse_query(query.as_deref())?;
    let pool = state.pool.clone();
    let (dead, count) = within(state.redis_timeout, async move {
        let mut conn = pool.get().await?;
        let dead = dead_list::page(&mut conn, before.as_deref(), limit).await?;
        let count = dead_list::count(&mut conn).await?;
        Ok((dead, count))
    })
    .await?;
    let next = (dead.len() == limit)
        .then(|| dead.last().map(|d| d.entry.clone()))
        .flatten();
    Ok(Json(DeadPage { count, dead, next }).into_response())
}

/// `before` (a stream entry id, `MS-SEQ`) and `limit` from the query.
fn parse_query(query: Option<&str>) -> Result<(Option<String>, usize), ApiError> {
    let invalid = |message: String| ApiError::bad_request("invalid_query", message);
    let mut before = None;
    let mut limit = 20;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        match name {
            "before" => {
                // Each part fits in a u64, as Redis's entry ids do.
                let part =
                    |p: &str| (1..=19).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit());
                let valid = value
                    .split_once('-')
                    .is_some_and(|(ms, seq)| part(ms) && part(seq));
                if !valid {
                    return Err(invalid(format!(
                        "before={value:?} is not an entry id (MS-SEQ)"
                    )));
                }
                before = Some(value.to_string());
            }
            "limit" => {
                limit = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| invalid(format!("limit={value:?}: 1 to {MAX_LIMIT}")))?;
            }
            other => {
                return Err(invalid(format!(
                    "unknown parameter {other:?} (before, limit)"
                )));
            }
        }
    }
    Ok((before, limit))
}

/// Queue a dead-lettered job again.
#[utoipa::path(
    post,
    path = "/v1/dead/{id}/retry",
    tag = "dead letters",
    params(("id" = String, Path, description = "The job's id")),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The job, queued again (attempts 0)", body = verdict_shared::job::Job),
        (status = 400, description = "invalid_job_id", body = crate::error::ErrorBody),
        (status = 401, description = "unauthorized", body = crate::error::ErrorBody),
        (status = 404, description = "not_found: no such job, or its record (and image) expired", body = crate::error::ErrorBody),
        (status = 409, description = "not_dead: the job is not in the dead-letter stream", body = crate::error::ErrorBody),
        (status = 503, description = "redis_unavailable", body = crate::error::ErrorBody),
    )
)]
pub async fn retry(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = super::job_id::from_path(path)?;
    revived(&state, id, Revive::Retry).await?;
    let job = super::jobs_get::load(&state, id).await?;
    let mut response = Json(job).into_response();
    response.extensions_mut().insert(LoggedJobId(id));
    Ok(response)
}

/// Take a job out of the dead-letter stream without running it again.
#[utoipa::path(
    delete,
    path = "/v1/dead/{id}",
    tag = "dead letters",
    params(("id" = String, Path, description = "The job's id")),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Discarded; the job stays readable (failed) until its TTL", body = Discarded),
        (status = 400, description = "invalid_job_id", body = crate::error::ErrorBody),
        (status = 401, description = "unauthorized", body = crate::error::ErrorBody),
        (status = 404, description = "not_found", body = crate::error::ErrorBody),
        (status = 409, description = "not_dead: the job is not in the dead-letter stream", body = crate::error::ErrorBody),
        (status = 503, description = "redis_unavailable", body = crate::error::ErrorBody),
    )
)]
pub async fn discard(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = super::job_id::from_path(path)?;
    revived(&state, id, Revive::Discard).await?;
    let mut response = Json(Discarded {
        job: id.to_string(),
        discarded: true,
    })
    .into_response();
    response.extensions_mut().insert(LoggedJobId(id));
    Ok(response)
}

/// Runs the script; its refusals as 404 and 409.
async fn revived(state: &AppState, id: JobId, what: Revive) -> Result<(), ApiError> {
    let pool = state.pool.clone();
    let outcome = within(state.redis_timeout, async move {
        let mut conn = pool.get().await?;
        revive(&mut conn, id, what).await
    })
    .await?;
    match outcome {
        Revived::Queued { .. } | Revived::Discarded => Ok(()),
        Revived::Missing => Err(not_found(id)),
        Revived::NotDead(job_state) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_dead",
            format!("job {id} is not in the dead-letter stream (it is {job_state})"),
        )),
    }
}

fn not_found(id: JobId) -> ApiError {
    ApiError::not_found(format!(
        "no dead-lettered job {id} with its image (never dead-lettered, or its record expired)"
    ))
}
