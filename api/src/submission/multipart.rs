//! `multipart/form-data` submissions: one `image` file part (or an
//! `image_url` or `image_path` text part naming the image), one or more
//! `text` parts and at most one `premise` part, as `curl -F image=@cup.png
//! -F text='A cup.' -F premise='Steam rises from it.'` sends them.

use axum::extract::multipart::{Field, MultipartError};
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::StatusCode;
use bytes::{Bytes, BytesMut};
use verdict_shared::limits::MAX_SENTENCES;

use super::premise::not_utf8 as premise_not_utf8;
use super::{Limits, Submission, SubmittedImage, image_too_large, texts};
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
    let mut premise: Option<String> = None;
    let mut callback_url: Option<String> = None;
    let mut image_url: Option<String> = None;
    let mut image_path: Option<String> = None;
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
                // Counted from 1, as people count.
                let number = texts.len() + 1;
                let bytes = field
                    .bytes()
                    .await
                    .map_err(|err| multipart_error(err, limits))?;
                let text = String::from_utf8(bytes.to_vec()).map_err(|_| {
                    ApiError::bad_request(
                        "text_not_utf8",
                        format!("sentence {number} is not valid UTF-8"),
                    )
                })?;
                texts.push(text);
            }
            Some("premise") => {
                if premise.is_some() {
                    return Err(ApiError::bad_request(
                        "invalid_multipart",
                        "more than one premise part: send at most one premise per job",
                    ));
                }
                let bytes = field
                    .bytes()
                    .await
                    .map_err(|err| multipart_error(err, limits))?;
                let text = String::from_utf8(bytes.to_vec()).map_err(|_| premise_not_utf8())?;
                premise = Some(text);
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
            Some(name @ ("image_url" | "image_path")) => {
                let name = name.to_owned();
                let slot = if name == "image_url" {
                    &mut image_url
                } else {
                    &mut image_path
                };
                if slot.is_some() {
                    return Err(ApiError::bad_request(
                        "multiple_images",
                        format!("more than one {name} part: send one image per job"),
                    ));
                }
                let bytes = field
                    .bytes()
                    .await
                    .map_err(|err| multipart_error(err, limits))?;
                let code = if name == "image_url" {
                    "invalid_image_url"
                } else {
                    "invalid_image_path"
                };
                *slot =
                    Some(String::from_utf8(bytes.to_vec()).map_err(|_| {
                        ApiError::bad_request(code, format!("{name} is not UTF-8"))
                    })?);
            }
            other => {
                let name = other.unwrap_or("").chars().take(64).collect::<String>();
                return Err(ApiError::bad_request(
                    "invalid_multipart",
                    format!(
                        "unexpected part {name:?}: send one \"image\" part, \"text\" parts and \
                         at most one \"premise\" part"
                    ),
                ));
            }
        }
    }
    Ok(Submission {
        image: SubmittedImage::one_of(image, image_url, image_path)?,
        texts,
        premise,
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

#[cfg(test)]
mod tests {
    use axum::body::Body;

    use super::*;

    const BOUNDARY: &str = "verdict-test-boundary";

    fn limits() -> Limits {
        Limits {
            max_body_bytes: 1 << 20,
            max_image_bytes: 1 << 16,
        }
    }

    /// A multipart request with these `(name, bytes)` parts; `image` parts
    /// are sent as files.
    fn request(parts: &[(&str, &[u8])]) -> Request {
        let mut body = Vec::new();
        for (name, bytes) in parts {
            body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
            if *name == "image" {
                body.extend_from_slice(
                    b"Content-Disposition: form-data; name=\"image\"; filename=\"cup.png\"\r\n\
                      Content-Type: image/png\r\n\r\n",
                );
            } else {
                body.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
                );
            }
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
        Request::builder()
            .method("POST")
            .uri("/v1/jobs")
            .header(
                "content-type",
                format!("multipart/form-data; boundary={BOUNDARY}"),
            )
            .body(Body::from(body))
            .unwrap()
    }

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

    #[tokio::test]
    async fn reads_the_premise_part_beside_the_texts() {
        let sub = parse(
            request(&[
                ("image", PNG),
                ("text", b"The cup is hot."),
                ("premise", "Du thé fume dans la tasse.".as_bytes()),
                ("text", b"The cup is empty."),
            ]),
            &limits(),
        )
        .await
        .unwrap();
        assert_eq!(sub.texts, vec!["The cup is hot.", "The cup is empty."]);
        assert_eq!(sub.premise.as_deref(), Some("Du thé fume dans la tasse."));
        assert_eq!(sub.image, SubmittedImage::Bytes(Bytes::from_static(PNG)));

        let sub = parse(request(&[("image", PNG), ("text", b"A cup.")]), &limits())
            .await
            .unwrap();
        assert_eq!(sub.premise, None, "no part, no premise");
    }

    #[tokio::test]
    async fn refuses_a_second_premise_and_one_that_is_not_utf8() {
        let err = parse(
            request(&[
                ("image", PNG),
                ("text", b"A cup."),
                ("premise", b"One."),
                ("premise", b"Two."),
            ]),
            &limits(),
        )
        .await
        .unwrap_err();
        assert_eq!(err.code, "invalid_multipart");
        assert!(
            err.message.contains("more than one premise"),
            "{}",
            err.message
        );

        let err = parse(
            request(&[("image", PNG), ("text", b"A cup."), ("premise", b"caf\xe9")]),
            &limits(),
        )
        .await
        .unwrap_err();
        assert_eq!(err.code, "premise_not_utf8");
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn an_empty_premise_part_is_kept_for_the_checks_to_refuse() {
        let sub = parse(
            request(&[("image", PNG), ("text", b"A cup."), ("premise", b"  ")]),
            &limits(),
        )
        .await
        .unwrap();
        assert_eq!(sub.premise.as_deref(), Some("  "));
        assert_eq!(
            super::super::check(sub, &limits()).unwrap_err().code,
            "premise_empty"
        );
    }
}
