//! One log line per request: request id, method, path, status, latency, job id.
//!
//! The request id comes from `x-request-id` (set by the client, or generated
//! by the `SetRequestId` layer) and is echoed in the response. Handlers that
//! touch a job put its id in the response's extensions as [`LoggedJobId`], so
//! the line names the job without parsing anything.

use std::time::Instant;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;
use verdict_shared::job::JobId;

/// The job a response concerns, for the request log.
#[derive(Debug, Clone, Copy)]
pub struct LoggedJobId(pub JobId);

/// The middleware.
pub async fn log_request(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().chars().take(200).collect::<String>();
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .chars()
        .take(100)
        .collect::<String>();
    let span = tracing::info_span!("request", request_id = %request_id);
    let response = next.run(req).instrument(span.clone()).await;
    let job_id = response
        .extensions()
        .get::<LoggedJobId>()
        .map(|LoggedJobId(id)| id.to_string());
    let status = response.status().as_u16();
    let latency_ms = (started.elapsed().as_secs_f64() * 100_000.0).round() / 100.0;
    span.in_scope(|| {
        tracing::info!(
            request_id = %request_id,
            method = %method,
            path = %path,
            status,
            latency_ms,
            job_id = job_id.as_deref().unwrap_or("-"),
            "request"
        )
    });
    response
}
