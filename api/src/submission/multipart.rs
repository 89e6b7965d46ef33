//! `multipart/form-data` submissions: one `image` file part and one or more
//! `text` parts, as `curl -F image=@cup.png -F text='A cup.'` sends them.

use axum::extract::multipart::{Field, MultipartError};
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::StatusCode;
use bytes::{Bytes, BytesMut};
use verdict_shared::limits::MAX_SENTENCES;

use super::{Limits, Submission, image_too_large, texts};
use crate::error::ApiError;

/// Reads the parts, stopping at the first that is wrong; the body limit set on
/// the router bounds what is read in all.
pub async fn parse(req: Request, limits: &Limits) -> Result<Submission, ApiError> {
    let mut multipart = Multipart::from_request(req, &())
        .await
        .map_err(|rejection| {
            ApiError::bad_request(
                "invalid_multipart",
                format!("the body is not valid multipart/form-data: {rejection}"),
            )
        })?;
    let mut image: Option<Bytes> = None;
    let mut texts: Vec<String> = Vec::new();
    let mut callback_url: Option<String> = None;
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|err| multipart_error(err, limits))?
    {
        match field.name() {
            Some("image") => {
                if image.is_some() {
                    return Err(ApiError::bad_request(
                        "multiple_images",
                        "more than one image part: send one image per job",
                    ));
                }
                check_image_part_type(&field)?;
                image = Some(read_limited(&mut field, limits).await?);
            }
            Some("text") => {
                if texts.len() == MAX_SENTENCES {
                    return Err(texts::too_many());
                }
                let index = texts.len();
                let bytes = field
                    .bytes()
                    .await
                    .map_err(|err| multipart_error(err, limits))?;
                let text = String::from_utf8(bytes.to_vec()).map_err(|_| {
                    ApiError::bad_request(
                        "text_not_utf8",
                        format!("sentence {index} is not valid UTF-8"),
                    )
                })?;
                texts.push(text);
            }
            Some("callback_url") if callback_url.is_none() => {
                let bytes = field
                    .bytes()
                    .await
                    .map_err(|err| multipart_error(err, limits))?;
                let url = String::from_utf8(bytes.to_vec()).map_err(|_| {
                    ApiError::bad_request("invalid_callback_url", "callback_url is not UTF-8")
                })?;
                callback_url = Some(url);
            }
            other => {
                let name = other.unwrap_or("").chars().take(64).collect::<String>();
                return Err(ApiError::bad_request(
                    "invalid_multipart",
                    format!("unexpected part {name:?}: send one \"image\" part and \"text\" parts"),
                ));
            }
        }
    }
    let image = image.ok_or_else(|| {
        ApiError::bad_request("missing_image", "no image: send an \"image\" file part")
    })?;
    Ok(Submission {
        image,
        texts,
        callback_url,
    })
}

/// The image part may declare `image/*` or `application/octet-stream`, or
/// nothing; anything else (a text field named `image`) is refused.
fn check_image_part_type(field: &Field<'_>) -> Result<(), ApiError> {
    match field.content_type() {
        None => Ok(()),
        Some(ct) if ct.starts_with("image/") || ct == "application/octet-stream" => Ok(()),
        Some(ct) => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_content_type",
            format!(
                "the image part has content type {:?}; expected image/* or application/octet-stream",
                ct.chars().take(64).collect::<String>()
            ),
        )),
    }
}

/// Reads the image part, refusing it as soon as it passes the image limit.
async fn read_limited(field: &mut Field<'_>, limits: &Limits) -> Result<Bytes, ApiError> {
    let mut buf = BytesMut::new();
    while let Some(chunk) = field
        .chunk()
        .await
        .map_err(|err| multipart_error(err, limits))?
    {
        if buf.len() + chunk.len() > limits.max_image_bytes {
            return Err(image_too_large(
                buf.len() + chunk.len(),
                limits.max_image_bytes,
            ));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

fn multipart_error(err: MultipartError, limits: &Limits) -> ApiError {
    if err.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::body_too_large(limits.max_body_bytes)
    } else {
        ApiError::bad_request(
            "invalid_multipart",
            format!("the multipart body is malformed: {}", err.body_text()),
        )
    }
}
