//! `application/json` submissions: `{"image_base64": "...", "texts": ["..."]}`
//! (or `"image_url"` / `"image_path"` naming the image instead), optionally
//! with `"premise": "..."` and `"callback_url": "..."`.

use base64::Engine;
use bytes::Bytes;
use serde::Deserialize;

use super::{Limits, Submission, SubmittedImage, image_too_large};
use crate::error::ApiError;

/// The JSON body of `POST /v1/jobs`, and one job of `POST /v1/batches`.
/// Exactly one of `image_base64`, `image_url` and `image_path`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JsonSubmission {
    /// The image file (PNG, JPEG, GIF, WebP, BMP or TIFF), standard base64.
    #[serde(default)]
    pub(crate) image_base64: Option<String>,
    /// Instead of the bytes: an https URL (or http, where the server's
    /// `--image-hosts` entry says so) on the server's allow-list; the worker
    /// fetches it. At most 2048 characters.
    #[serde(default)]
    pub(crate) image_url: Option<String>,
    /// Instead of the bytes: a path relative to the server's `--image-root`
    /// (a folder every worker mounts); no `..`, not absolute.
    #[serde(default)]
    pub(crate) image_path: Option<String>,
    /// 1 to 64 sentences, each 1 to 1000 characters.
    pub(crate) texts: Vec<String>,
    /// Optional: a text that holds together with the image (1 to 1000
    /// characters); each sentence is judged against the image and this
    /// premise. Only models that take one (`ofa-ve`) can; the default model
    /// fails such a job with `premise_unsupported`.
    #[serde(default)]
    pub(crate) premise: Option<String>,
    /// Where to POST the job's JSON when it ends (a host on the server's
    /// allow-list).
    #[serde(default)]
    pub(crate) callback_url: Option<String>,
}

/// Parses a JSON body (already bounded by the body limit).
pub fn parse(body: &[u8], limits: &Limits) -> Result<Submission, ApiError> {
    let parsed: JsonSubmission = serde_json::from_slice(body).map_err(|err| {
        ApiError::bad_request(
            "invalid_json",
            format!(
                "the body is not a JSON submission ({err}); expected \
                 {{\"image_base64\": \"...\", \"texts\": [\"...\"]}}"
            ),
        )
    })?;
    parsed.into_submission(limits)
}

impl JsonSubmission {
    /// Decodes the image (refusing an oversized one first).
    pub fn into_submission(self, limits: &Limits) -> Result<Submission, ApiError> {
        let parsed = self;
        let bytes = parsed
            .image_base64
            .as_deref()
            .map(|encoded| decode_base64(encoded, limits))
            .transpose()?;
        Ok(Submission {
            image: SubmittedImage::one_of(bytes, parsed.image_url, parsed.image_path)?,
            texts: parsed.texts,
            premise: parsed.premise,
            callback_url: parsed.callback_url,
        })
    }
}

/// The image's bytes, refusing an oversized image before decoding it.
fn decode_base64(encoded: &str, limits: &Limits) -> Result<Bytes, ApiError> {
    // Base64 is 4 characters per 3 bytes.
    let encoded = encoded.trim();
    if encoded.len() / 4 * 3 > limits.max_image_bytes + 3 {
        return Err(image_too_large(
            encoded.len() / 4 * 3,
            limits.max_image_bytes,
        ));
    }
    let image = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|err| {
            ApiError::bad_request(
                "invalid_base64",
                format!("image_base64 is not standard base64: {err}"),
            )
        })?;
    Ok(Bytes::from(image))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_body_bytes: 1 << 20,
            max_image_bytes: 100,
        }
    }

    #[test]
    fn parses_a_submission() {
        let sub = parse(
            br#"{"image_base64": "aGVsbG8=", "texts": ["a", "b"]}"#,
            &limits(),
        )
        .unwrap();
        assert_eq!(
            sub.image,
            SubmittedImage::Bytes(Bytes::from_static(b"hello"))
        );
        assert_eq!(sub.texts, vec!["a", "b"]);
        assert_eq!(sub.premise, None);
    }

    #[test]
    fn takes_the_premise_beside_the_texts() {
        let sub = parse(
            br#"{"image_base64": "aGVsbG8=", "texts": ["The cup is hot."], "premise": "Steam rises."}"#,
            &limits(),
        )
        .unwrap();
        assert_eq!(sub.premise.as_deref(), Some("Steam rises."));
        let sub = parse(
            br#"{"image_base64": "aGVsbG8=", "texts": ["a"], "premise": null}"#,
            &limits(),
        )
        .unwrap();
        assert_eq!(sub.premise, None, "null is no premise");
        assert_eq!(
            parse(
                br#"{"image_base64": "aGVsbG8=", "texts": ["a"], "premise": ["x"]}"#,
                &limits()
            )
            .unwrap_err()
            .code,
            "invalid_json"
        );
    }

    #[test]
    fn refuses_bad_bodies_with_codes() {
        let code = |body: &[u8]| parse(body, &limits()).unwrap_err().code;
        assert_eq!(code(b"{"), "invalid_json");
        assert_eq!(code(b"\xff\xfe"), "invalid_json");
        assert_eq!(code(br#"{"texts": ["a"]}"#), "missing_image");
        assert_eq!(
            code(
                br#"{"image_base64": "aGVsbG8=", "image_url": "https://x/a.png", "texts": ["a"]}"#
            ),
            "multiple_images"
        );
        assert_eq!(
            code(br#"{"image_base64": "aGVsbG8=", "texts": ["a"], "x": 1}"#),
            "invalid_json"
        );
        assert_eq!(
            code(br#"{"image_base64": "not base64!", "texts": ["a"]}"#),
            "invalid_base64"
        );
        let big = format!(
            r#"{{"image_base64": "{}", "texts": ["a"]}}"#,
            "A".repeat(400)
        );
        assert_eq!(code(big.as_bytes()), "image_too_large");
    }
}
