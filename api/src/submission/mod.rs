//! Turning a `POST /v1/jobs` request into a checked submission.
//!
//! Two encodings, chosen by `Content-Type`: multipart (the raw image bytes, as
//! curl and browsers send files) and JSON (the image in base64). Both end in
//! the same checks: the image's size and magic bytes, the sentences' count,
//! length and UTF-8, the optional premise's length. Nothing here decodes the
//! image.

pub(crate) mod image_format;
pub mod json;
mod multipart;
mod premise;
pub(crate) mod texts;

use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use bytes::Bytes;

use crate::error::ApiError;

/// The byte limits a submission must respect.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub max_image_bytes: usize,
}

/// A submission that passed every cheap check.
#[derive(Debug)]
pub struct Submission {
    /// The encoded image, as uploaded.
    pub image: Bytes,
    pub texts: Vec<String>,
    /// The optional premise: a text that holds together with the image.
    pub premise: Option<String>,
    /// The optional `callback_url` (checked against the allow-list later).
    pub callback_url: Option<String>,
}

/// A checked submission and the format its magic bytes name.
#[derive(Debug)]
pub struct Checked {
    pub submission: Submission,
    pub format: &'static str,
}

/// Reads and checks the submission in `req`.
pub async fn from_request(req: Request, limits: &Limits) -> Result<Checked, ApiError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    // A declared length over the limit is refused before reading anything.
    let declared_length = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared_length.is_some_and(|len| len > limits.max_body_bytes as u64) {
        return Err(ApiError::body_too_large(limits.max_body_bytes));
    }
    let mime = content_type.split(';').next().unwrap_or("").trim();
    let submission = match mime {
        "multipart/form-data" => multipart::parse(req, limits).await?,
        "application/json" => {
            let body = Bytes::from_request(req, &()).await.map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::body_too_large(limits.max_body_bytes)
                } else {
                    ApiError::bad_request(
                        "invalid_body",
                        format!("the body could not be read: {rejection}"),
                    )
                }
            })?;
            json::parse(&body, limits)?
        }
        _ => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_content_type",
                format!(
                    "content type {:?} is not accepted: send multipart/form-data \
                     (an \"image\" file, \"text\" parts and an optional \"premise\") or application/json",
                    content_type.chars().take(64).collect::<String>()
                ),
            ));
        }
    };
    check(submission, limits)
}

/// The checks every submission passes, however it came.
pub fn check(submission: Submission, limits: &Limits) -> Result<Checked, ApiError> {
    texts::check(&submission.texts)?;
    premise::check(submission.premise.as_deref())?;
    let format = check_image(&submission.image, limits)?;
    Ok(Checked { submission, format })
}

/// Checks the image's size and names its format from its magic bytes.
fn check_image(image: &[u8], limits: &Limits) -> Result<&'static str, ApiError> {
    if image.is_empty() {
        return Err(ApiError::bad_request(
            "image_empty",
            "the image is empty (0 bytes)",
        ));
    }
    if image.len() > limits.max_image_bytes {
        return Err(image_too_large(image.len(), limits.max_image_bytes));
    }
    image_format::sniff(image).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "image_format",
            "the image is not a PNG, JPEG, GIF, WebP, BMP or TIFF file (judged by its first bytes)",
        )
    })
}

pub(crate) fn image_too_large(bytes: usize, max: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "image_too_large",
        format!("the image is {bytes} bytes or more, more than the limit of {max} bytes"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_body_bytes: 1 << 20,
            max_image_bytes: 1 << 16,
        }
    }

    fn submission(premise: Option<&str>) -> Submission {
        Submission {
            image: Bytes::from_static(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
            texts: vec!["The cup is hot.".into()],
            premise: premise.map(str::to_owned),
            callback_url: None,
        }
    }

    #[test]
    fn every_submission_has_its_premise_checked() {
        let checked = check(submission(Some("Steam rises from the cup.")), &limits()).unwrap();
        assert_eq!(
            checked.submission.premise.as_deref(),
            Some("Steam rises from the cup.")
        );
        assert_eq!(checked.format, "png");
        assert!(check(submission(None), &limits()).is_ok());
        let code = |premise: &str| {
            check(submission(Some(premise)), &limits())
                .unwrap_err()
                .code
        };
        assert_eq!(code(""), "premise_empty");
        assert_eq!(code("\n \t"), "premise_empty");
        assert_eq!(
            code(&"x".repeat(verdict_shared::limits::MAX_SENTENCE_CHARS + 1)),
            "premise_too_long"
        );
    }

    #[test]
    fn a_json_premise_is_checked_like_a_multipart_one() {
        let body = format!(
            r#"{{"image_base64": "iVBORw0KGgoAAAANSUhEUg==", "texts": ["A cup."], "premise": "{}"}}"#,
            "y".repeat(verdict_shared::limits::MAX_SENTENCE_CHARS + 1)
        );
        let parsed = json::parse(body.as_bytes(), &limits()).unwrap();
        assert_eq!(
            check(parsed, &limits()).unwrap_err().code,
            "premise_too_long"
        );
    }
}
