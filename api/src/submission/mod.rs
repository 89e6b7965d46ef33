//! Turning a `POST /v1/jobs` request into a checked submission.
//!
//! Two encodings, chosen by `Content-Type`: multipart (the raw image bytes, as
//! curl and browsers send files) and JSON (the image in base64). Both end in
//! the same checks: the image's size and magic bytes, the sentences' count,
//! length and UTF-8, the optional premise's length. Nothing here decodes the
//! image.

pub mod json;
mod multipart;
mod premise;
pub(crate) mod texts;

use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use bytes::Bytes;

use verdict_shared::image_format;
use verdict_shared::image_reference::{ImageReference, MAX_REFERENCE_CHARS, check_image_path};

use crate::error::ApiError;

/// The byte limits a submission must respect.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub max_image_bytes: usize,
}

/// The image of a submission: sent with it, or named by it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmittedImage {
    /// The encoded image, as uploaded.
    Bytes(Bytes),
    /// `image_url` or `image_path`: fetched by the worker (checked against
    /// the server's `--image-hosts` or `--image-root` when stored).
    Reference(ImageReference),
}

impl SubmittedImage {
    /// Exactly one of the three ways to give an image, or the error to answer.
    pub fn one_of(
        bytes: Option<Bytes>,
        url: Option<String>,
        path: Option<String>,
    ) -> Result<SubmittedImage, ApiError> {
        match (bytes, url, path) {
            (Some(bytes), None, None) => Ok(SubmittedImage::Bytes(bytes)),
            (None, Some(url), None) => Ok(SubmittedImage::Reference(ImageReference::Url(url))),
            (None, None, Some(path)) => Ok(SubmittedImage::Reference(ImageReference::Path(path))),
            (None, None, None) => Err(ApiError::bad_request(
                "missing_image",
                "no image: send the image (an \"image\" file part, or image_base64), or name it with image_url or image_path",
            )),
            _ => Err(ApiError::bad_request(
                "multiple_images",
                "more than one image: send exactly one of the image, image_url and image_path",
            )),
        }
    }
}

/// A submission that passed every cheap check.
#[derive(Debug)]
pub struct Submission {
    pub image: SubmittedImage,
    pub texts: Vec<String>,
    /// The optional premise: a text that holds together with the image.
    pub premise: Option<String>,
    /// The optional `callback_url` (checked against the allow-list later).
    pub callback_url: Option<String>,
}

/// A checked submission and the format its magic bytes name (empty for an
/// image by reference: nobody has read it yet).
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
    if crate::announced_length::announced_over(req.headers(), limits.max_body_bytes) {
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
    let format = match &submission.image {
        SubmittedImage::Bytes(image) => check_image(image, limits)?,
        SubmittedImage::Reference(reference) => {
            check_reference(reference)?;
            ""
        }
    };
    Ok(Checked { submission, format })
}

/// Checks a reference by its form; the server's configuration (which hosts,
/// whether paths at all) is checked when the job is stored.
fn check_reference(reference: &ImageReference) -> Result<(), ApiError> {
    match reference {
        ImageReference::Url(url) => {
            if url.chars().count() > MAX_REFERENCE_CHARS {
                return Err(ApiError::bad_request(
                    "invalid_image_url",
                    format!("image_url is longer than {MAX_REFERENCE_CHARS} characters"),
                ));
            }
            Ok(())
        }
        ImageReference::Path(path) => check_image_path(path)
            .map(|_| ())
            .map_err(|err| ApiError::bad_request("invalid_image_path", err.to_string())),
    }
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
            image: SubmittedImage::Bytes(Bytes::from_static(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR")),
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

    #[test]
    fn references_are_checked_by_their_form() {
        let with = |image: SubmittedImage| Submission {
            image,
            texts: vec!["A cup.".into()],
            premise: None,
            callback_url: None,
        };
        let path = |p: &str| with(SubmittedImage::Reference(ImageReference::Path(p.into())));
        let checked = check(path("shop/cup.png"), &limits()).unwrap();
        assert_eq!(checked.format, "");
        assert_eq!(
            check(path("../etc/passwd"), &limits()).unwrap_err().code,
            "invalid_image_path"
        );
        assert_eq!(
            check(path("/etc/passwd"), &limits()).unwrap_err().code,
            "invalid_image_path"
        );
        let url = |u: String| with(SubmittedImage::Reference(ImageReference::Url(u)));
        assert!(check(url("https://img.example.com/a.png".into()), &limits()).is_ok());
        assert_eq!(
            check(
                url(format!(
                    "https://img.example.com/{}",
                    "a".repeat(MAX_REFERENCE_CHARS)
                )),
                &limits()
            )
            .unwrap_err()
            .code,
            "invalid_image_url"
        );
    }

    #[test]
    fn exactly_one_image_is_given() {
        let bytes = || Some(Bytes::from_static(b"x"));
        let code = |r: Result<SubmittedImage, ApiError>| r.unwrap_err().code;
        assert_eq!(
            code(SubmittedImage::one_of(None, None, None)),
            "missing_image"
        );
        assert_eq!(
            code(SubmittedImage::one_of(bytes(), Some("u".into()), None)),
            "multiple_images"
        );
        assert_eq!(
            code(SubmittedImage::one_of(
                None,
                Some("u".into()),
                Some("p".into())
            )),
            "multiple_images"
        );
        assert_eq!(
            SubmittedImage::one_of(None, None, Some("a.png".into())).unwrap(),
            SubmittedImage::Reference(ImageReference::Path("a.png".into()))
        );
    }
}
