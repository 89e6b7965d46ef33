//! `GET /metrics`: the fleet's figures in Prometheus text format (see
//! `crate::metrics` for where each comes from).

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use verdict_shared::queue::QueueError;

use crate::metrics::{self, exposition::CONTENT_TYPE};
use crate::state::AppState;

/// Prometheus metrics for the whole fleet.
///
/// Always 200: when Redis does not answer, the page says `verdict_redis_up 0`
/// and nothing else.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "Prometheus text format 0.0.4", body = String,
               content_type = "text/plain; version=0.0.4"))
)]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let snapshot = async {
        let mut conn = state.pool.get().await.map_err(QueueError::from)?;
        metrics::read(&mut conn).await
    }
    .await;
    let snapshot = match snapshot {
        Ok(snapshot) => Some(snapshot),
        Err(err) => {
            tracing::warn!(error = %err, "metrics: Redis did not answer");
            None
        }
    };
    (
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        metrics::render(snapshot.as_ref()),
    )
        .into_response()
}
