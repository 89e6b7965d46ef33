//! `GET /docs`: this API's OpenAPI description (`/openapi.json`) rendered for
//! people by Swagger UI, with the files it needs under `/docs/`.
//!
//! Swagger UI's built script and style sheet (its npm distribution,
//! `swagger-ui-dist`) come from the `utoipa-swagger-ui` crate, which holds
//! the archive itself (feature `vendored`: nothing is downloaded at build
//! time) and compiles it into the binary. The page around them is ours
//! (`static/docs.html`, `static/docs.js`): it loads nothing but those files
//! and `/openapi.json`. It uses Swagger UI's plain layout, without the top
//! bar that loads other descriptions or the online validator badge (an image
//! from a third-party server, told this api's address), and sets the
//! validator off as well.

use std::sync::{Arc, OnceLock};

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

const PAGE: &str = include_str!("../../static/docs.html");
const SCRIPT: &str = include_str!("../../static/docs.js");

/// The reference page.
#[utoipa::path(get, path = "/docs", tag = "page", operation_id = "docs_page",
    responses((status = 200, description = "This API's reference, rendered by Swagger UI", body = String, content_type = "text/html")))]
pub async fn page() -> Response {
    asset(
        "text/html; charset=utf-8",
        Bytes::from_static(PAGE.as_bytes()),
    )
}

/// The script that renders `/openapi.json` on the reference page.
#[utoipa::path(get, path = "/docs/docs.js", tag = "page", operation_id = "docs_script",
    responses((status = 200, description = "JavaScript", body = String, content_type = "text/javascript")))]
pub async fn script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        Bytes::from_static(SCRIPT.as_bytes()),
    )
}

/// Swagger UI's script.
#[utoipa::path(get, path = "/docs/swagger-ui-bundle.js", tag = "page", operation_id = "swagger_ui_script",
    responses((status = 200, description = "JavaScript (Swagger UI)", body = String, content_type = "text/javascript")))]
pub async fn swagger_script() -> Response {
    static FILE: OnceLock<Option<Bytes>> = OnceLock::new();
    swagger_file(
        &FILE,
        "swagger-ui-bundle.js",
        "text/javascript; charset=utf-8",
    )
}

/// Swagger UI's style sheet.
#[utoipa::path(get, path = "/docs/swagger-ui.css", tag = "page", operation_id = "swagger_ui_style",
    responses((status = 200, description = "CSS (Swagger UI)", body = String, content_type = "text/css")))]
pub async fn swagger_style() -> Response {
    static FILE: OnceLock<Option<Bytes>> = OnceLock::new();
    swagger_file(&FILE, "swagger-ui.css", "text/css; charset=utf-8")
}

/// A file of Swagger UI's distribution, read out of the binary once.
fn swagger_file(
    cell: &OnceLock<Option<Bytes>>,
    name: &str,
    content_type: &'static str,
) -> Response {
    match cell.get_or_init(|| distribution_file(name)) {
        Some(bytes) => asset(content_type, bytes.clone()),
        // Only if the crate stopped shipping the file (a unit test below
        // would have failed first).
        None => crate::error::ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("{name} is missing from this build's Swagger UI"),
        )
        .into_response(),
    }
}

/// The bytes of `name` in the embedded Swagger UI distribution.
fn distribution_file(name: &str) -> Option<Bytes> {
    // The configuration only shapes `swagger-initializer.js`, which the page
    // does not use (`static/docs.js` sets Swagger UI up instead).
    let config = Arc::new(utoipa_swagger_ui::Config::default());
    match utoipa_swagger_ui::serve(name, config) {
        Ok(Some(file)) => Some(Bytes::from(file.bytes.into_owned())),
        Ok(None) | Err(_) => None,
    }
}

fn asset(content_type: &'static str, body: Bytes) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_swagger_ui_files_the_page_loads_are_in_the_binary() {
        let script = distribution_file("swagger-ui-bundle.js").expect("the bundle");
        assert!(script.len() > 100_000, "{} bytes", script.len());
        assert!(String::from_utf8_lossy(&script).contains("SwaggerUIBundle"));
        let style = distribution_file("swagger-ui.css").expect("the style sheet");
        assert!(String::from_utf8_lossy(&style).contains(".swagger-ui"));
        assert!(distribution_file("no-such-file.js").is_none());
    }
}
