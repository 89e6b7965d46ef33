//! Whether a sentence has anything in it to judge.
//!
//! A sentence made only of invisible characters (zero-width spaces, control
//! characters, NUL), punctuation, symbols or emoji, or of one lone letter
//! ("a"), passes a blank check, yet names nothing a model could find in an
//! image; the default pack answered such sentences a confident `no` (p about
//! 0.999). The api refuses them (`text_empty`, `premise_empty`) and the
//! worker refuses them again, so no model is ever asked.

/// The fewest letters and digits (any script) a sentence must hold.
pub const MIN_WORD_CHARS: usize = 2;

/// True when `text` holds at least [`MIN_WORD_CHARS`] letters or digits.
pub fn has_content(text: &str) -> bool {
    text.chars()
        .filter(|c| c.is_alphanumeric())
        .take(MIN_WORD_CHARS)
        .count()
        >= MIN_WORD_CHARS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_with_words_have_content() {
        for text in [
            "This is a ceramic coffee cup.",
            "A cup.",
            "黑猫",
            "Это чашка.",
            "42",
            "\u{200b}a cat\u{200b}",
        ] {
            assert!(has_content(text), "{text:?}");
        }
    }

    #[test]
    fn invisible_punctuation_emoji_and_lone_letters_have_none() {
        for text in [
            "\u{200b}\u{200b}\u{200b}",
            "\u{0}\u{1}\u{7f}",
            ".",
            "?!...",
            "a",
            " a ",
            "🐱☕🙂",
            "\u{feff}\u{2060}",
            "",
        ] {
            assert!(!has_content(text), "{text:?}");
        }
    }
}
