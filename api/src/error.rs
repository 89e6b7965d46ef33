//! The api's error answers: a status, a stable code and a message for people.
//!
//! Every error the api sends has the same body,
//! `{"error": {"code": "...", "message": "..."}}`; the codes are listed in
//! `docs/api.md` and never change meaning. Clients branch on `code`, people
//! read `message`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use verdict_shared::queue::QueueError;

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400 with `code`.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn body_too_large(limit: usize) -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the request body is larger than the limit of {limit} bytes"),
        )
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// Redis could not be reached or failed: the client may retry.
    pub fn unavailable(err: &QueueError) -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "redis_unavailable",
            format!("the job store is unavailable, retry later ({err})"),
        )
    }
}

impl ApiError {
    /// The submission of job `id` went to Redis and no answer came back in
    /// time: it may have been stored or not. A 503 that says so, with the id
    /// to look up and what a resend does.
    pub fn outcome_unknown(id: verdict_shared::job::JobId, had_idempotency_key: bool) -> ApiError {
        let resend = if had_idempotency_key {
            "Sending the same request again with the same Idempotency-Key is safe: \
             it finds the job if it was stored and stores it once if it was not."
        } else {
            "This request had no Idempotency-Key, so sending it again may make a second \
             job: send one with every submission."
        };
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "outcome_unknown",
            format!(
                "the job store did not confirm the job in time: it may or may not have been \
                 stored as job {id} (GET /v1/jobs/{id} tells once the store answers). {resend}"
            ),
        )
    }
}

impl From<QueueError> for ApiError {
    fn from(err: QueueError) -> ApiError {
        if let QueueError::QueueFull { depth, limit } = err {
            return ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "queue_full",
                format!(
                    "the queue is full ({depth} jobs waiting or running, the limit is {limit}): \
                     nothing was enqueued; retry after the Retry-After delay"
                ),
            );
        }
        if err.is_unavailable() {
            tracing::warn!(error = %err, "redis unavailable");
            ApiError::unavailable(&err)
        } else {
            tracing::error!(error = %err, "queue error");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the job store answered something unexpected; see the api's log",
            )
        }
    }
}

impl ApiError {
    /// `--durability replicated`: job `id` is stored on the primary, but no
    /// replica confirmed it within the wait. A 503 that says so: the job
    /// will probably run, but a failover now could lose it.
    pub fn not_replicated(id: verdict_shared::job::JobId, had_idempotency_key: bool) -> ApiError {
        let resend = if had_idempotency_key {
            "Sending the same request again with the same Idempotency-Key is safe: it finds \
             the job and waits for a replica again."
        } else {
            "This request had no Idempotency-Key, so sending it again makes a second job: \
             send one with every submission."
        };
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_replicated",
            format!(
                "the job was stored as job {id} on the Redis primary, but no replica confirmed \
                 it in time: it may run, or be lost if the primary fails now \
                 (GET /v1/jobs/{id} tells). {resend}"
            ),
        )
    }
}

/// The error body, as documented in the OpenAPI description.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// A stable machine-readable code and a message for people.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable: listed in docs/api.md; branch on it.
    #[schema(example = "missing_text")]
    pub code: String,
    /// For people; may change.
    pub message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        let mut response = (self.status, Json(body)).into_response();
        // Refusals that pass (a full queue, Redis away) say when to come back.
        if let Some(seconds) = retry_after(self.status) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static(seconds));
        }
        response
    }
}

/// The `Retry-After` (seconds) of a status, for the statuses that have one:
/// 429 (the queue drains at the workers' pace) and 503 (Redis is back within
/// seconds in the common cases: a restart, a failover).
fn retry_after(status: StatusCode) -> Option<&'static str> {
    match status {
        StatusCode::TOO_MANY_REQUESTS => Some("2"),
        StatusCode::SERVICE_UNAVAILABLE => Some("1"),
        _ => None,
    }
}
