//! Checks on the sentences and the premise of a job, shared by every kind.
//!
//! They run before any model does, so a bad job fails fast and with the same
//! error whichever model the worker runs.

use verdict_shared::limits::{MAX_SENTENCE_CHARS, MAX_SENTENCES};
use verdict_shared::text_content::has_content;

use super::JudgeError;

/// Checks the sentences: at least one, at most [`MAX_SENTENCES`], none without
/// anything to judge (see `verdict_shared::text_content`) or longer than
/// [`MAX_SENTENCE_CHARS`] characters.
pub fn validate_texts(texts: &[String]) -> Result<(), JudgeError> {
    if texts.is_empty() {
        return Err(JudgeError::NoTexts);
    }
    if texts.len() > MAX_SENTENCES {
        return Err(JudgeError::TooManyTexts {
            count: texts.len(),
            max: MAX_SENTENCES,
        });
    }
    for (index, text) in texts.iter().enumerate() {
        if !has_content(text) {
            return Err(JudgeError::TextEmpty { index });
        }
        let chars = text.chars().count();
        if chars > MAX_SENTENCE_CHARS {
            return Err(JudgeError::TextTooLong {
                index,
                chars,
                max: MAX_SENTENCE_CHARS,
            });
        }
    }
    Ok(())
}

/// Checks a premise by the rules of a sentence: not empty after trimming, at
/// most [`MAX_SENTENCE_CHARS`] characters.
pub fn validate_premise(premise: &str) -> Result<(), JudgeError> {
    if !has_content(premise) {
        return Err(JudgeError::PremiseEmpty);
    }
    let chars = premise.chars().count();
    if chars > MAX_SENTENCE_CHARS {
        return Err(JudgeError::PremiseTooLong {
            chars,
            max: MAX_SENTENCE_CHARS,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_are_checked_in_order() {
        assert!(matches!(validate_texts(&[]), Err(JudgeError::NoTexts)));
        let many = vec!["a".to_string(); MAX_SENTENCES + 1];
        assert!(matches!(
            validate_texts(&many),
            Err(JudgeError::TooManyTexts { .. })
        ));
        let texts = vec!["a cat".to_string(), " \t".to_string()];
        assert!(matches!(
            validate_texts(&texts),
            Err(JudgeError::TextEmpty { index: 1 })
        ));
        for contentless in ["\u{200b}\u{200b}", "\u{0}", "?", "a", "🙂"] {
            let texts = vec!["a cat".to_string(), contentless.to_string()];
            assert!(
                matches!(
                    validate_texts(&texts),
                    Err(JudgeError::TextEmpty { index: 1 })
                ),
                "{contentless:?}"
            );
        }
        // Characters, not bytes: 1000 two-byte characters are allowed.
        let long = "é".repeat(MAX_SENTENCE_CHARS);
        assert!(validate_texts(std::slice::from_ref(&long)).is_ok());
        let err = validate_texts(&[format!("{long}é")]).unwrap_err();
        assert!(matches!(
            err,
            JudgeError::TextTooLong { index: 0, chars, .. } if chars == MAX_SENTENCE_CHARS + 1
        ));
    }

    #[test]
    fn premises_are_checked_like_sentences() {
        assert!(matches!(
            validate_premise("  \n"),
            Err(JudgeError::PremiseEmpty)
        ));
        assert!(validate_premise(&"é".repeat(MAX_SENTENCE_CHARS)).is_ok());
        assert!(matches!(
            validate_premise(&"é".repeat(MAX_SENTENCE_CHARS + 1)),
            Err(JudgeError::PremiseTooLong { chars, .. }) if chars == MAX_SENTENCE_CHARS + 1
        ));
    }
}
