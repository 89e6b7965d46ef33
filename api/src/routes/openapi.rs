//! `GET /openapi.json`: the api's OpenAPI 3 description (`crate::openapi`),
//! with this server's limits written in (`crate::openapi_limits`).

use std::sync::OnceLock;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa::OpenApi;

use crate::openapi::ApiDoc;
use crate::openapi_limits::{self, SpecLimits};
use crate::state::AppState;

/// Rendered once: the description and the flags never change while the
/// process runs.
static SPEC: OnceLock<String> = OnceLock::new();

/// The description for this server's flags.
pub fn render(limits: &SpecLimits) -> String {
    let mut spec = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    openapi_limits::apply(&mut spec, limits);
    serde_json::to_string_pretty(&spec).unwrap_or_default()
}

/// This description.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI 3 description", body = Object)))]
pub async fn openapi_json(State(state): State<AppState>) -> Response {
    let spec = SPEC.get_or_init(|| {
        render(&SpecLimits {
            max_image_bytes: state.limits.max_image_bytes,
            max_batch_jobs: state.batch.max_jobs,
            callback_hosts: state.callbacks.allow.hosts(),
            image_hosts: state.images.hosts.hosts(),
            image_paths: state.images.root.is_some(),
        })
    });
    ([(header::CONTENT_TYPE, "application/json")], spec.as_str()).into_response()
}
