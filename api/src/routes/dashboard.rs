//! The operator's dashboard: `GET /v1/dashboard` (the snapshot, JSON) and
//! `GET /dashboard` (the page that draws it, with its script), compiled into
//! the binary like the web page: no CDN, no other server. The page polls the
//! snapshot every 2 s and acts through the public API only (`/v1/dead/...`
//! to retry or discard a dead letter, `/v1/jobs/{id}/cancel` for a queued
//! job), with the same token as any client.

use axum::Json;
use axum::extract::State;
use axum::response::Response;

use super::page::asset;
use crate::dashboard::snapshot::{self, Dashboard};
use crate::error::ApiError;
use crate::redis_deadline::within;
use crate::state::AppState;

const PAGE: &str = include_str!("../../static/dashboard.html");
const SCRIPT: &str = include_str!("../../static/dashboard.js");
const STYLE: &str = include_str!("../../static/dashboard.css");

/// The fleet at a glance: workers, the queue now and over the last hour,
/// throughput and latency per minute, recent failures, dead letters and the
/// oldest queued jobs.
#[utoipa::path(
    get,
    path = "/v1/dashboard",
    tag = "operations",
    operation_id = "dashboard_snapshot",
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "A snapshot of the fleet", body = Dashboard),
        (status = 401, description = "unauthorized", body = crate::error::ErrorBody),
        (status = 503, description = "redis_unavailable", body = crate::error::ErrorBody),
    )
)]
pub async fn snapshot(State(state): State<AppState>) -> Result<Json<Dashboard>, ApiError> {
    let pool = state.pool.clone();
    let dashboard = within(state.redis_timeout, async move {
        let mut conn = pool.get().await?;
        snapshot::read(&mut conn).await
    })
    .await?;
    Ok(Json(dashboard))
}

/// The dashboard page.
#[utoipa::path(get, path = "/dashboard", tag = "page", operation_id = "dashboard_page",
    responses((status = 200, description = "The dashboard", body = String, content_type = "text/html")))]
pub async fn page() -> Response {
    asset("text/html; charset=utf-8", PAGE)
}

/// The dashboard's script.
#[utoipa::path(get, path = "/static/dashboard.js", tag = "page", operation_id = "dashboard_script",
    responses((status = 200, description = "JavaScript", body = String, content_type = "text/javascript")))]
pub async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

/// The dashboard's style sheet (on top of the page's).
#[utoipa::path(get, path = "/static/dashboard.css", tag = "page", operation_id = "dashboard_style",
    responses((status = 200, description = "CSS", body = String, content_type = "text/css")))]
pub async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}
