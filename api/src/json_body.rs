//! Reading a bounded `application/json` body, for the routes that take
//! nothing else (`POST /v1/batches`, `POST /v1/jobs/wait`).

use axum::body::{Bytes, to_bytes};
use axum::extract::Request;
use axum::http::StatusCode;

use crate::error::ApiError;

/// The body of `req`, at most `max` bytes: 415 `unsupported_content_type`
/// (its message shows `example`) unless the request says
/// `application/json`, 413 `body_too_large` over `max` (before reading when
/// `Content-Length` says so), 400 `invalid_body` when it cannot be read.
pub async fn read(req: Request, max: usize, example: &str) -> Result<Bytes, ApiError> {
    let json = req
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_content_type",
            format!("send application/json: {example}"),
        ));
    }
    if crate::announced_length::announced_over(req.headers(), max) {
        return Err(ApiError::body_too_large(max));
    }
    to_bytes(req.into_body(), max).await.map_err(|err| {
        if std::error::Error::source(&err)
            .is_some_and(|source| source.is::<http_body_util::LengthLimitError>())
        {
            ApiError::body_too_large(max)
        } else {
            ApiError::bad_request("invalid_body", format!("the body could not be read: {err}"))
        }
    })
}
