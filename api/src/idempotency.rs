//! `Idempotency-Key` on `POST /v1/jobs` (and per job in `POST /v1/batches`):
//! a client that retries a submission (a timeout, a lost answer, a batch run
//! resumed) gets the job it already created instead of a second one.
//!
//! The key is remembered in Redis for the result TTL by the submit script
//! itself, so two concurrent requests with one key create one job. The
//! request's fingerprint (image digest, sentences, premise, callback) is
//! stored with it: the same key sent with a different request is refused
//! (`idempotency_key_reused`) rather than answered with a job that does not
//! match it.

use axum::http::{HeaderMap, StatusCode};
use serde::Serialize;
use sha2::{Digest, Sha256};
use verdict_shared::queue::submit::Idempotency;

use crate::error::ApiError;

/// The request header.
pub const HEADER: &str = "idempotency-key";

/// The longest key accepted.
pub const MAX_KEY_CHARS: usize = 255;

/// The key in `headers`, checked; `None` when there is none.
pub fn from_headers(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(HEADER) else {
        return Ok(None);
    };
    let key = value.to_str().map_err(|_| invalid())?;
    check(key).map(|key| Some(key.to_owned()))
}

/// A key must be 1 to 255 visible ASCII characters.
pub fn check(key: &str) -> Result<&str, ApiError> {
    if key.is_empty() || key.len() > MAX_KEY_CHARS || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid());
    }
    Ok(key)
}

/// What the queue stores for `key` and this request.
pub fn for_request(
    key: &str,
    image_sha256: &str,
    texts: &[String],
    premise: Option<&str>,
    callback_url: Option<&str>,
) -> Idempotency {
    #[derive(Serialize)]
    struct Fingerprint<'a> {
        image: &'a str,
        texts: &'a [String],
        // Left out when there is none, so that a request without a premise
        // has the fingerprint it had before premises existed (a key stored
        // then still matches its retry).
        #[serde(skip_serializing_if = "Option::is_none")]
        premise: Option<&'a str>,
        callback_url: Option<&'a str>,
    }
    let fingerprint = serde_json::to_vec(&Fingerprint {
        image: image_sha256,
        texts,
        premise,
        callback_url,
    })
    .unwrap_or_default();
    Idempotency {
        key_sha256: hex::encode(Sha256::digest(key.as_bytes())),
        fingerprint: hex::encode(Sha256::digest(&fingerprint)),
    }
}

/// The answer when a key comes back with another request.
pub fn reused() -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
        "this Idempotency-Key was used for a different request (another image, sentences, premise or callback_url): use a new key",
    )
}

fn invalid() -> ApiError {
    ApiError::bad_request(
        "invalid_idempotency_key",
        format!("Idempotency-Key must be 1 to {MAX_KEY_CHARS} visible ASCII characters"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked() {
        assert!(check("row-17:3f2a").is_ok());
        assert_eq!(check("").unwrap_err().code, "invalid_idempotency_key");
        assert_eq!(check("a b").unwrap_err().code, "invalid_idempotency_key");
        assert_eq!(
            check(&"k".repeat(256)).unwrap_err().code,
            "invalid_idempotency_key"
        );
    }

    #[test]
    fn the_fingerprint_changes_with_the_request_not_the_key_hash() {
        let texts = vec!["A cup.".to_string()];
        let a = for_request("k", "ab", &texts, None, None);
        assert_eq!(a, for_request("k", "ab", &texts, None, None));
        assert_ne!(
            a.fingerprint,
            for_request("k", "cd", &texts, None, None).fingerprint
        );
        assert_ne!(
            a.fingerprint,
            for_request("k", "ab", &texts, None, Some("http://h/")).fingerprint
        );
        assert_ne!(
            a.key_sha256,
            for_request("k2", "ab", &texts, None, None).key_sha256
        );
    }

    #[test]
    fn the_premise_is_part_of_the_fingerprint() {
        let texts = vec!["The cup is hot.".to_string()];
        let none = for_request("k", "ab", &texts, None, None);
        let steam = for_request("k", "ab", &texts, Some("Steam rises."), None);
        let ice = for_request("k", "ab", &texts, Some("Ice floats in it."), None);
        assert_ne!(none.fingerprint, steam.fingerprint);
        assert_ne!(steam.fingerprint, ice.fingerprint);
        assert_eq!(
            steam,
            for_request("k", "ab", &texts, Some("Steam rises."), None)
        );
        // Without a premise the fingerprint is the one stored before
        // premises existed: image, texts and callback only.
        #[derive(Serialize)]
        struct Before<'a> {
            image: &'a str,
            texts: &'a [String],
            callback_url: Option<&'a str>,
        }
        let before = serde_json::to_vec(&Before {
            image: "ab",
            texts: &texts,
            callback_url: None,
        })
        .unwrap();
        assert_eq!(none.fingerprint, hex::encode(Sha256::digest(&before)));
    }
}
