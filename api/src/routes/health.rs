//! `/healthz` (the process answers) and `/readyz` (it can do its job).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use verdict_shared::queue::heartbeat;

use crate::redis_deadline::within;
use crate::state::AppState;

/// Alive: answers without touching Redis.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "{\"status\": \"ok\"}", body = Object)))]
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// Ready: Redis answers, the job-events subscription is up, and at least one
/// worker's heartbeat record is alive. 503 with the reason otherwise.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "{\"status\": \"ready\", \"workers\": [...], \"waiting\": N}", body = Object),
        (status = 503, description = "not_ready (with `workers`), redis_unavailable", body = crate::error::ErrorBody),
    ))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    let pool = state.pool.clone();
    let read = within(state.redis_timeout, async move {
        let mut conn = pool.get().await?;
        heartbeat::live_workers(&mut conn).await
    })
    .await;
    let workers = match read {
        Ok(workers) => workers,
        Err(err) => return err.into_response(),
    };
    let names: Vec<&str> = workers.iter().map(|w| w.name.as_str()).collect();
    if !state.subscribed.get() {
        return not_ready("the job events subscription is not up yet", &names);
    }
    if workers.is_empty() {
        return not_ready("no worker is alive (no worker heartbeat in Redis)", &names);
    }
    Json(json!({"status": "ready", "workers": names, "waiting": state.waiters.len()}))
        .into_response()
}

fn not_ready(message: &str, workers: &[&str]) -> Response {
    let body = json!({
        "error": {"code": "not_ready", "message": message},
        "workers": workers,
    });
    (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}
