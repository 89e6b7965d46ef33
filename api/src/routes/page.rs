//! `GET /`: the web page to try verdict, with its script and style.
//!
//! Everything the page needs is compiled into the binary (no CDN, no other
//! server): it works on a machine with no network but the api. It uses the
//! public API only (`POST /v1/jobs`, `GET /v1/jobs/{id}?wait=`), as any
//! client would.

use axum::http::header;
use axum::response::{IntoResponse, Response};

const INDEX: &str = include_str!("../../static/index.html");
const SCRIPT: &str = include_str!("../../static/app.js");
const STYLE: &str = include_str!("../../static/style.css");

/// The page.
#[utoipa::path(get, path = "/", tag = "page",
    responses((status = 200, description = "The page", body = String, content_type = "text/html")))]
pub async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX)
}

/// The page's script.
#[utoipa::path(get, path = "/static/app.js", tag = "page",
    responses((status = 200, description = "JavaScript", body = String, content_type = "text/javascript")))]
pub async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

/// The page's style sheet.
#[utoipa::path(get, path = "/static/style.css", tag = "page",
    responses((status = 200, description = "CSS", body = String, content_type = "text/css")))]
pub async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

/// A compiled-in file, revalidated on every load (a new binary serves a new
/// page at once).
pub(crate) fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}
