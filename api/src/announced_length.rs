//! The length a request announces for its body.

use axum::http::HeaderMap;
use axum::http::header::CONTENT_LENGTH;

/// The body's length from `Content-Length`, if the request sends one that
/// reads as a number. A body announced over a limit is refused before any
/// of it is read.
pub fn announced_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok())
}
