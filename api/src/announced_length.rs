//! The length a request announces for its body.

use axum::http::HeaderMap;
use axum::http::header::CONTENT_LENGTH;

/// Whether the request announces (`Content-Length`) a body longer than
/// `limit` bytes: such a body is refused before any of it is read. A missing
/// or unreadable length announces nothing; the body's reader enforces the
/// limit then.
pub fn announced_over(headers: &HeaderMap, limit: usize) -> bool {
    headers
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok())
        .is_some_and(|length| length > limit as u64)
}
