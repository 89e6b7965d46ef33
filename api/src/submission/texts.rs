//! Checking the sentences of a submission.

use verdict_shared::limits::{MAX_SENTENCE_CHARS, MAX_SENTENCES};
use verdict_shared::text_content::{MIN_WORD_CHARS, has_content};

use crate::error::ApiError;

/// Refuses a list of sentences that the worker would refuse: none, more than
/// [`MAX_SENTENCES`], an empty (or all-blank) one, one with nothing to judge
/// (fewer than two letters or digits), or one longer than
/// [`MAX_SENTENCE_CHARS`] characters. Messages name the sentence by its index.
pub fn check(texts: &[String]) -> Result<(), ApiError> {
    if texts.is_empty() {
        return Err(ApiError::bad_request(
            "missing_text",
            "no sentence: send at least one text",
        ));
    }
    if texts.len() > MAX_SENTENCES {
        return Err(too_many());
    }
    for (index, text) in texts.iter().enumerate() {
        // People count from 1: the first sentence is "sentence 1".
        let number = index + 1;
        if text.trim().is_empty() {
            return Err(ApiError::bad_request(
                "text_empty",
                format!("sentence {number} is empty"),
            ));
        }
        if !has_content(text) {
            return Err(ApiError::bad_request(
                "text_empty",
                format!(
                    "sentence {number} has nothing to judge: it needs at least {MIN_WORD_CHARS} letters or digits (it holds only punctuation, symbols, emoji, invisible or control characters, or one letter)"
                ),
            ));
        }
        let chars = text.chars().count();
        if chars > MAX_SENTENCE_CHARS {
            return Err(ApiError::bad_request(
                "text_too_long",
                format!(
                    "sentence {number} has {chars} characters, more than the limit of {MAX_SENTENCE_CHARS}"
                ),
            ));
        }
    }
    Ok(())
}

/// The error for more than [`MAX_SENTENCES`] sentences (also raised while
/// still reading a multipart body, before the rest is read).
pub fn too_many() -> ApiError {
    ApiError::bad_request(
        "too_many_texts",
        format!("more than {MAX_SENTENCES} sentences in one job"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn accepts_ordinary_sentences() {
        assert!(check(&texts(&["This is a ceramic coffee cup.", "Это чашка."])).is_ok());
        assert!(check(&["x".repeat(MAX_SENTENCE_CHARS)]).is_ok());
        assert!(check(&vec!["ab".to_string(); MAX_SENTENCES]).is_ok());
    }

    #[test]
    fn refuses_with_stable_codes() {
        assert_eq!(check(&[]).unwrap_err().code, "missing_text");
        assert_eq!(
            check(&texts(&["ok", "  \n"])).unwrap_err().code,
            "text_empty"
        );
        for contentless in ["\u{200b}\u{200b}", "\u{0}", ".", "?", "a", "🙂🙂"] {
            let err = check(&texts(&["A cup.", contentless])).unwrap_err();
            assert_eq!(err.code, "text_empty", "{contentless:?}");
            assert!(
                err.message.contains("sentence 2 has nothing to judge"),
                "{}",
                err.message
            );
        }
        assert!(
            check(&texts(&["ok", ""]))
                .unwrap_err()
                .message
                .contains("sentence 2 is empty")
        );
        assert_eq!(
            check(&["é".repeat(MAX_SENTENCE_CHARS + 1)])
                .unwrap_err()
                .code,
            "text_too_long"
        );
        assert_eq!(
            check(&vec!["ab".to_string(); MAX_SENTENCES + 1])
                .unwrap_err()
                .code,
            "too_many_texts"
        );
    }
}
