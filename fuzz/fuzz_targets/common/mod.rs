//! What the two submission targets share: the request, the api's limits, and
//! the checks on what comes out.

use std::sync::OnceLock;

use axum::body::Body;
use axum::extract::Request;
use verdict_api::submission::{self, Limits, SubmittedImage};
use verdict_shared::image_reference::{ImageReference, MAX_REFERENCE_CHARS, check_image_path};
use verdict_shared::limits::{MAX_SENTENCE_CHARS, MAX_SENTENCES};
use verdict_shared::text_content::has_content;

/// Small limits, so that the fuzzer reaches them with small inputs.
const LIMITS: Limits = Limits {
    max_body_bytes: 64 * 1024,
    max_image_bytes: 4 * 1024,
};

pub fn submit(content_type: &str, body: &[u8]) {
    // One runtime for the whole run, not one an input.
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    let runtime = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime")
    });
    let request = Request::builder()
        .method("POST")
        .uri("/v1/jobs")
        .header("content-type", content_type)
        .body(Body::from(body.to_vec()))
        .expect("a request");
    match runtime.block_on(submission::from_request(request, &LIMITS)) {
        Ok(checked) => {
            let s = &checked.submission;
            match &s.image {
                SubmittedImage::Bytes(image) => {
                    assert!(!image.is_empty() && image.len() <= LIMITS.max_image_bytes);
                    assert!(!checked.format.is_empty());
                }
                SubmittedImage::Reference(ImageReference::Path(path)) => {
                    assert!(check_image_path(path).is_ok(), "{path:?}");
                    assert!(checked.format.is_empty());
                }
                SubmittedImage::Reference(ImageReference::Url(url)) => {
                    assert!(url.chars().count() <= MAX_REFERENCE_CHARS);
                    assert!(checked.format.is_empty());
                }
            }
            assert!(
                (1..=MAX_SENTENCES).contains(&s.texts.len()),
                "{}",
                s.texts.len()
            );
            for text in s.texts.iter().chain(s.premise.iter()) {
                assert!(text.chars().count() <= MAX_SENTENCE_CHARS);
                assert!(
                    has_content(text),
                    "a text with nothing to judge was accepted: {text:?}"
                );
            }
        }
        Err(err) => {
            assert!(
                err.status.is_client_error(),
                "{} for {}",
                err.status,
                err.code
            );
            assert!(!err.code.is_empty() && !err.message.is_empty());
        }
    }
}
