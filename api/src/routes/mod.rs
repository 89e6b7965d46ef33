//! The api's routes, one file per resource.

pub(crate) mod batches;
pub(crate) mod dashboard;
pub(crate) mod dead;
pub(crate) mod docs;
pub(crate) mod examples;
mod fallback;
pub(crate) mod health;
mod job_id;
pub(crate) mod jobs_cancel;
pub(crate) mod jobs_get;
pub(crate) mod jobs_submit;
pub(crate) mod jobs_wait;
pub(crate) mod metrics;
pub(crate) mod openapi;
pub(crate) mod page;

use axum::Router;
use axum::routing::{delete, get, post};

use crate::state::AppState;

/// Every route. Each is documented in `crate::openapi`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/jobs", post(jobs_submit::submit))
        .route("/v1/jobs/wait", post(jobs_wait::wait_jobs))
        .route("/v1/jobs/{id}", get(jobs_get::get_job))
        .route("/v1/jobs/{id}/cancel", post(jobs_cancel::cancel_job))
        .route("/v1/dead", get(dead::list))
        .route("/v1/dead/{id}/retry", post(dead::retry))
        .route("/v1/dead/{id}", delete(dead::discard))
        .route("/v1/dashboard", get(dashboard::snapshot))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        // Issue 7: batches, metrics, the OpenAPI description, the web page.
        .route("/v1/batches", post(batches::submit_batch))
        .route("/metrics", get(metrics::metrics))
        .route("/openapi.json", get(openapi::openapi_json))
        .route("/", get(page::index))
        .route("/static/app.js", get(page::script))
        .route("/static/style.css", get(page::style))
        .route("/dashboard", get(dashboard::page))
        .route("/static/dashboard.js", get(dashboard::script))
        .route("/static/dashboard.css", get(dashboard::style))
        .route("/examples", get(examples::list))
        .route("/examples/{image}", get(examples::photo))
        .route("/docs", get(docs::page))
        .route("/docs/docs.js", get(docs::script))
        .route("/docs/swagger-ui-bundle.js", get(docs::swagger_script))
        .route("/docs/swagger-ui.css", get(docs::swagger_style))
        .fallback(fallback::not_found)
        .method_not_allowed_fallback(fallback::method_not_allowed)
}
