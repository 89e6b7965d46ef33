//! Every Redis step of a request has a deadline, so that a Redis that is down
//! or frozen (SIGSTOP, a stuck network) gets a `503 redis_unavailable` with
//! an error body in under a second instead of a hanging request.
//!
//! The pool's own timeouts (1 s to connect, 2 s per reply) stop a worker from
//! waiting forever; this shorter one bounds what a client waits. A submission
//! that timed out may still have been stored (Redis may run the queued
//! command when it comes back): a 503 on `POST` means "not known to be
//! accepted", see `docs/reliability.md`.

use std::future::Future;
use std::time::Duration;

use axum::http::StatusCode;
use verdict_shared::queue::QueueError;

use crate::error::ApiError;

/// The default deadline: the answer, 503 included, leaves within a second.
pub const DEFAULT_REDIS_TIMEOUT: Duration = Duration::from_millis(800);

/// Runs `op` (getting a connection and using it), turning its errors into api
/// errors and a missed deadline into `503 redis_unavailable`.
pub async fn within<T>(
    limit: Duration,
    op: impl Future<Output = Result<T, QueueError>>,
) -> Result<T, ApiError> {
    match tokio::time::timeout(limit, op).await {
        Ok(result) => result.map_err(ApiError::from),
        Err(_) => {
            tracing::warn!(
                timeout_ms = limit.as_millis() as u64,
                "redis did not answer in time"
            );
            Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "redis_unavailable",
                format!(
                    "the job store did not answer within {} ms, retry later",
                    limit.as_millis()
                ),
            ))
        }
    }
}
