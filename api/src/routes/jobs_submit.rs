//! `POST /v1/jobs`: check a submission, enqueue it, answer 202.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use verdict_shared::job::{ImageInfo, JobId};
use verdict_shared::queue::submit::{NewJob, submit as enqueue};

use crate::error::ApiError;
use crate::redis_deadline::within;
use crate::request_log::LoggedJobId;
use crate::state::AppState;
use crate::submission;

/// Images larger than this are hashed on a blocking thread, not on the
/// runtime's (an 8 MiB image takes tens of milliseconds).
const HASH_INLINE_MAX: usize = 256 * 1024;

pub async fn submit(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let checked = submission::from_request(req, &state.limits).await?;
    let image = checked.submission.image;
    let texts = checked.submission.texts;
    let sha256 = if image.len() <= HASH_INLINE_MAX {
        hex::encode(Sha256::digest(&image))
    } else {
        let image = image.clone();
        tokio::task::spawn_blocking(move || hex::encode(Sha256::digest(&image)))
            .await
            .map_err(|err| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    format!("hashing failed: {err}"),
                )
            })?
    };
    let image_info = ImageInfo {
        bytes: image.len() as u64,
        sha256,
        format: checked.format.to_owned(),
    };
    let id = JobId::new();
    let job = within(state.redis_timeout, async {
        let mut conn = state.pool.get().await?;
        enqueue(
            &mut conn,
            NewJob {
                id,
                texts: &texts,
                image_info: &image_info,
                image: &image,
                result_ttl: state.result_ttl,
                max_queue_depth: state.max_queue_depth,
            },
        )
        .await
    })
    .await?;
    tracing::debug!(job_id = %id, image_bytes = image.len(), format = checked.format, sentences = texts.len(), "job queued");
    let location = format!("/v1/jobs/{id}");
    let mut response = (
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(job),
    )
        .into_response();
    response.extensions_mut().insert(LoggedJobId(id));
    Ok(response)
}
