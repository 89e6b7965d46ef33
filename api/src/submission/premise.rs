//! Checking the optional premise of a submission: a text that holds together
//! with the image, against which each sentence is judged (models of the
//! `ofa-ve` kind use it; the default model refuses it at the worker with
//! `premise_unsupported`).

use verdict_shared::limits::MAX_SENTENCE_CHARS;
use verdict_shared::text_content::{MIN_WORD_CHARS, has_content};

use crate::error::ApiError;

/// Refuses a premise that the worker would refuse: an empty (or all-blank)
/// one, or one longer than [`MAX_SENTENCE_CHARS`] characters. No premise is
/// fine.
pub fn check(premise: Option<&str>) -> Result<(), ApiError> {
    let Some(premise) = premise else {
        return Ok(());
    };
    if premise.trim().is_empty() {
        return Err(ApiError::bad_request(
            "premise_empty",
            "the premise is empty: leave it out, or give a text",
        ));
    }
    if !has_content(premise) {
        return Err(ApiError::bad_request(
            "premise_empty",
            format!(
                "the premise has nothing in it: it needs at least {MIN_WORD_CHARS} letters or digits (leave it out, or give a text)"
            ),
        ));
    }
    let chars = premise.chars().count();
    if chars > MAX_SENTENCE_CHARS {
        return Err(ApiError::bad_request(
            "premise_too_long",
            format!(
                "the premise has {chars} characters, more than the limit of {MAX_SENTENCE_CHARS}"
            ),
        ));
    }
    Ok(())
}

/// The error for a `premise` multipart part whose bytes are not UTF-8.
pub fn not_utf8() -> ApiError {
    ApiError::bad_request("premise_not_utf8", "the premise is not valid UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_no_premise_and_ordinary_ones() {
        assert!(check(None).is_ok());
        assert!(check(Some("Steam rises from the cup.")).is_ok());
        assert!(check(Some(&"é".repeat(MAX_SENTENCE_CHARS))).is_ok());
    }

    #[test]
    fn refuses_with_stable_codes() {
        assert_eq!(check(Some("")).unwrap_err().code, "premise_empty");
        assert_eq!(check(Some(" \t\n")).unwrap_err().code, "premise_empty");
        let long = check(Some(&"é".repeat(MAX_SENTENCE_CHARS + 1))).unwrap_err();
        assert_eq!(long.code, "premise_too_long");
        assert_eq!(long.status, 400);
        assert!(long.message.contains("1001 characters"), "{}", long.message);
        assert_eq!(not_utf8().code, "premise_not_utf8");
    }
}
