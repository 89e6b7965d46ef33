//! Answers for unknown paths and methods, in the api's error shape.

use axum::http::{Method, StatusCode, Uri};

use crate::error::ApiError;

pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found(format!(
        "no route for {}",
        uri.path().chars().take(200).collect::<String>()
    ))
}

pub async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{method} is not allowed on {}",
            uri.path().chars().take(200).collect::<String>()
        ),
    )
}
