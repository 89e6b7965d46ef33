//! The api's routes, one file per resource.

mod fallback;
mod health;
mod jobs_cancel;
mod jobs_get;
mod jobs_submit;

use axum::Router;
use axum::routing::{get, post};

use crate::state::AppState;

/// Every route.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/jobs", post(jobs_submit::submit))
        .route(
            "/v1/jobs/{id}",
            get(jobs_get::get_job).delete(jobs_cancel::cancel_job),
        )
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .fallback(fallback::not_found)
        .method_not_allowed_fallback(fallback::method_not_allowed)
}
