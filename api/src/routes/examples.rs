//! `GET /examples` and `GET /examples/{image}`: the example photos the web
//! page offers as thumbnails (`--examples DIR`, `crate::examples`), each with
//! its alt text and sentences. Outside `/v1`: page content, open like the
//! page itself.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::ApiError;
use crate::state::AppState;

/// The examples this api offers.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ExampleList {
    /// In the order the page shows them; empty when the api was started
    /// without `--examples`.
    pub examples: Vec<ExampleItem>,
}

/// One example.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ExampleItem {
    /// The photo's name.
    pub image: String,
    /// Where the photo is: `/examples/{image}`.
    pub url: String,
    /// What the photo shows, for people who cannot see it.
    pub alt: String,
    /// Sentences to try on it.
    pub texts: Vec<String>,
}

/// The example photos and their sentences.
#[utoipa::path(get, path = "/examples", tag = "page", operation_id = "list_examples",
    responses((status = 200, description = "The examples (none without --examples)", body = ExampleList)))]
pub async fn list(State(state): State<AppState>) -> Json<ExampleList> {
    Json(ExampleList {
        examples: state
            .examples
            .list()
            .iter()
            .map(|example| ExampleItem {
                image: example.image.clone(),
                url: format!("/examples/{}", example.image),
                alt: example.alt.clone(),
                texts: example.texts.clone(),
            })
            .collect(),
    })
}

/// One example photo, as its file holds it.
#[utoipa::path(get, path = "/examples/{image}", tag = "page", operation_id = "example_photo",
    params(("image" = String, Path, description = "The photo's name, as `GET /examples` lists it")),
    responses(
        (status = 200, description = "The photo", content(
            (String = "image/png"), (String = "image/jpeg"), (String = "image/gif"),
            (String = "image/webp"), (String = "image/bmp"))),
        (status = 404, description = "not_found: no example of that name", body = crate::error::ErrorBody),
    ))]
pub async fn photo(
    State(state): State<AppState>,
    image: Result<Path<String>, PathRejection>,
) -> Response {
    // Looked up by name among the photos read at start: a name that is no
    // example's, `../` or not, finds nothing.
    let found = image.ok().and_then(|Path(name)| {
        let example = state.examples.get(&name)?;
        Some((example.content_type, example.bytes.clone()))
    });
    match found {
        Some((content_type, bytes)) => (
            [
                (header::CONTENT_TYPE, content_type),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            bytes,
        )
            .into_response(),
        None => ApiError::not_found("no example photo of that name").into_response(),
    }
}
