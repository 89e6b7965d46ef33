//! `POST /v1/jobs/wait`: many jobs read at once, optionally once every one
//! of them has ended.
//!
//! What `GET /v1/jobs/{id}?wait=` does for one job, for up to
//! `--max-batch-jobs` (the size of a batch, so a client reads a batch's
//! results as it submitted them): one request, one subscription to their
//! events, and one pipelined read of the jobs that had an event each time
//! some end, instead of a long-poll per job. By default the answer waits
//! for every job; `until: any` answers once one has ended, for a client
//! that records results as they come. Ids that name no job are answered
//! `not_found` on their own; they do not refuse the request.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use axum::Json;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use verdict_shared::job::{InvalidJobId, Job, JobId};
use verdict_shared::queue::QueueError;
use verdict_shared::queue::read::read_jobs;

use super::jobs_get::MAX_WAIT;
use crate::error::{ApiError, ErrorBody, ErrorDetail};
use crate::redis_deadline::within;
use crate::state::AppState;

/// The largest body: 256 ids of 36 characters take under 11 KiB.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// The body of `POST /v1/jobs/wait`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitRequest {
    /// 1 to `--max-batch-jobs` (default 256) job ids; one may repeat.
    pub ids: Vec<String>,
    /// Seconds (0 to 60, fractions allowed) to wait; 0 or absent: answer
    /// at once.
    #[serde(default)]
    pub wait: Option<f64>,
    /// What ends the wait: `all` (the default) once every job has ended;
    /// `any` once one has (or names no job), for a client that records
    /// results as they come and asks again for the rest.
    #[serde(default)]
    pub until: Until,
}

/// What ends a wait.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Until {
    #[default]
    All,
    Any,
}

/// The answer: one item per id, in request order.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WaitResponse {
    /// Items whose job has ended (`done`, `failed` or `cancelled`).
    pub ended: usize,
    /// Items whose job is still `queued` or `running` (the wait ran out).
    pub pending: usize,
    /// Items with no job (`not_found`).
    pub missing: usize,
    pub jobs: Vec<WaitItem>,
}

/// One id of the request: its job as it is now, or why there is none.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WaitItem {
    #[schema(value_type = String)]
    pub id: JobId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<Job>,
    /// `not_found`: never submitted, or its result expired.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
}

/// Many jobs; with `wait`, once all of them (or, with `until` any, one of
/// them) have ended, or when the wait is over.
#[utoipa::path(
    post,
    path = "/v1/jobs/wait",
    tag = "jobs",
    request_body(content = WaitRequest, content_type = "application/json"),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Every id, in order: its job as it is now, or not_found", body = WaitResponse),
        (status = 400, description = "invalid_json (an unknown field or `until` value included), invalid_body, no_ids, too_many_ids, invalid_job_id (its index named), invalid_wait", body = ErrorBody),
        (status = 401, description = "unauthorized: VERDICT_API_TOKEN is set and the request has no valid bearer token", body = ErrorBody),
        (status = 408, description = "body_too_slow: the body arrived slower than --body-min-rate after --body-grace", body = ErrorBody),
        (status = 413, description = "body_too_large", body = ErrorBody),
        (status = 415, description = "unsupported_content_type", body = ErrorBody),
        (status = 500, description = "internal", body = ErrorBody),
        (status = 503, description = "redis_unavailable", body = ErrorBody),
    )
)]
pub async fn wait_jobs(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let (ids, wait, until) = parse(req, state.batch.max_jobs).await?;
    let jobs = match wait {
        Some(wait) => wait_for_ends(&state, &ids, wait, until).await?,
        None => read(&state, &ids).await?,
    };
    Ok(Json(answer(&ids, jobs)).into_response())
}

/// Reads the body: the ids, the wait (`None` for no wait) and what ends it.
async fn parse(
    req: Request,
    max_ids: usize,
) -> Result<(Vec<JobId>, Option<Duration>, Until), ApiError> {
    let body =
        crate::json_body::read(req, MAX_BODY_BYTES, "{\"ids\": [\"...\"], \"wait\": 30}").await?;
    let request: WaitRequest = serde_json::from_slice(&body).map_err(|err| {
        ApiError::bad_request(
            "invalid_json",
            format!(
                "the body is not a wait ({err}); expected {{\"ids\": [\"...\"], \"wait\": 30}}"
            ),
        )
    })?;
    if request.ids.is_empty() {
        return Err(ApiError::bad_request("no_ids", "the request names no job"));
    }
    if request.ids.len() > max_ids {
        return Err(ApiError::bad_request(
            "too_many_ids",
            format!(
                "the request names {} jobs, more than the limit of {max_ids} (--max-batch-jobs)",
                request.ids.len()
            ),
        ));
    }
    let ids = request
        .ids
        .iter()
        .enumerate()
        .map(|(index, raw)| {
            raw.parse().map_err(|err: InvalidJobId| {
                ApiError::bad_request("invalid_job_id", format!("ids[{index}]: {err}"))
            })
        })
        .collect::<Result<Vec<JobId>, ApiError>>()?;
    Ok((ids, wait_of(request.wait)?, request.until))
}

/// The wait: 0 to 60 seconds; 0 or none is no wait.
fn wait_of(seconds: Option<f64>) -> Result<Option<Duration>, ApiError> {
    let Some(seconds) = seconds else {
        return Ok(None);
    };
    if !seconds.is_finite() || !(0.0..=MAX_WAIT.as_secs_f64()).contains(&seconds) {
        return Err(ApiError::bad_request(
            "invalid_wait",
            format!(
                "wait={seconds} is not a number of seconds from 0 to {}",
                MAX_WAIT.as_secs()
            ),
        ));
    }
    Ok((seconds > 0.0).then(|| Duration::from_secs_f64(seconds)))
}

/// Every job of `ids` as it is now, in one round trip.
async fn read(state: &AppState, ids: &[JobId]) -> Result<Vec<Option<Job>>, ApiError> {
    let pool = state.pool.clone();
    within(state.redis_timeout, async move {
        let mut conn = pool.get().await.map_err(QueueError::from)?;
        read_jobs(&mut conn, ids).await
    })
    .await
}

/// Reads the jobs until every one (`until` all) or one (any) has ended or
/// is gone, or `wait` has passed. After the first read, only the jobs that
/// had an event are read again, together.
async fn wait_for_ends(
    state: &AppState,
    ids: &[JobId],
    wait: Duration,
    until: Until,
) -> Result<Vec<Option<Job>>, ApiError> {
    // Register before reading, so that an end between the read and the wait
    // is not missed.
    let waiter = state.waiters.register_all(ids);
    let mut jobs = read(state, ids).await?;
    let mut positions: HashMap<JobId, Vec<usize>> = HashMap::new();
    for (position, id) in ids.iter().enumerate() {
        positions.entry(*id).or_default().push(position);
    }
    let deadline = Instant::now() + wait;
    let mut shutdown = state.shutdown.clone();
    loop {
        let pending: HashSet<JobId> = ids
            .iter()
            .zip(&jobs)
            .filter(|(_, job)| job.as_ref().is_some_and(|job| !job.state.is_terminal()))
            .map(|(id, _)| *id)
            .collect();
        let enough = match until {
            Until::All => pending.is_empty(),
            Until::Any => ids.iter().any(|id| !pending.contains(id)),
        };
        if enough {
            return Ok(jobs);
        }
        let over = tokio::select! {
            _ = waiter.changed() => false,
            _ = tokio::time::sleep_until(deadline) => true,
            _ = shutdown.recv() => true,
        };
        // At the end, the pending jobs are read once more, as they are now.
        let again: Vec<JobId> = if over {
            pending.into_iter().collect()
        } else {
            waiter
                .take_woken()
                .into_iter()
                .filter(|id| pending.contains(id))
                .collect()
        };
        let fresh = read(state, &again).await?;
        for (id, job) in again.iter().zip(fresh) {
            for &position in positions.get(id).into_iter().flatten() {
                jobs[position].clone_from(&job);
            }
        }
        if over {
            return Ok(jobs);
        }
    }
}

/// The answer, one item per id in request order.
fn answer(ids: &[JobId], jobs: Vec<Option<Job>>) -> WaitResponse {
    let items: Vec<WaitItem> = ids
        .iter()
        .zip(jobs)
        .map(|(id, job)| match job {
            Some(job) => WaitItem {
                id: *id,
                job: Some(job),
                error: None,
            },
            None => WaitItem {
                id: *id,
                job: None,
                error: Some(ErrorDetail {
                    code: "not_found".to_owned(),
                    message: format!("no job {id} (never submitted, or its result expired)"),
                }),
            },
        })
        .collect();
    let ended = items
        .iter()
        .filter(|item| item.job.as_ref().is_some_and(|job| job.state.is_terminal()))
        .count();
    let missing = items.iter().filter(|item| item.job.is_none()).count();
    WaitResponse {
        ended,
        pending: items.len() - ended - missing,
        missing,
        jobs: items,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_is_zero_to_sixty_seconds_and_zero_is_none() {
        assert_eq!(wait_of(None).unwrap(), None);
        assert_eq!(wait_of(Some(0.0)).unwrap(), None);
        assert_eq!(
            wait_of(Some(0.5)).unwrap(),
            Some(Duration::from_millis(500))
        );
        assert_eq!(wait_of(Some(60.0)).unwrap(), Some(MAX_WAIT));
        for bad in [-1.0, 60.5, f64::NAN, f64::INFINITY] {
            assert_eq!(
                wait_of(Some(bad)).unwrap_err().code,
                "invalid_wait",
                "{bad}"
            );
        }
    }

    #[test]
    fn until_is_all_unless_it_says_any() {
        let parse = |body: &str| serde_json::from_str::<WaitRequest>(body).map(|r| r.until);
        assert_eq!(parse(r#"{"ids": []}"#).unwrap(), Until::All);
        assert_eq!(parse(r#"{"ids": [], "until": "all"}"#).unwrap(), Until::All);
        assert_eq!(parse(r#"{"ids": [], "until": "any"}"#).unwrap(), Until::Any);
        assert!(parse(r#"{"ids": [], "until": "some"}"#).is_err());
    }

    #[test]
    fn the_answer_keeps_the_order_and_counts_each_kind() {
        let (a, b) = (JobId::new(), JobId::new());
        let answer = answer(&[a, b, a], vec![None, None, None]);
        assert_eq!(
            answer.jobs.iter().map(|item| item.id).collect::<Vec<_>>(),
            vec![a, b, a]
        );
        assert_eq!((answer.ended, answer.pending, answer.missing), (0, 0, 3));
        assert_eq!(answer.jobs[1].error.as_ref().unwrap().code, "not_found");
    }
}
