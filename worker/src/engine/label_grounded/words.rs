//! Splitting a sentence into the words whose grounding the rule checks.

/// At most this many words of a sentence are analysed; the rest of a very long
/// sentence still counts through the sentence embedding.
pub const MAX_WORDS: usize = 48;

/// The words of `text`, lowercased: runs of letters and digits, keeping an
/// apostrophe or hyphen between two of them ("cat's", "close-up").
pub fn words(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut current = String::new();
    for (i, &c) in chars.iter().enumerate() {
        let joiner = (c == '\'' || c == '’' || c == '-')
            && !current.is_empty()
            && chars.get(i + 1).is_some_and(|n| n.is_alphanumeric());
        if c.is_alphanumeric() {
            current.extend(c.to_lowercase());
        } else if joiner {
            current.push(if c == '’' { '\'' } else { c });
        } else if !current.is_empty() {
            out.push(std::mem::take(&mut current));
            if out.len() == MAX_WORDS {
                return out;
            }
        }
    }
    if !current.is_empty() && out.len() < MAX_WORDS {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_punctuation_and_keeps_inner_joiners() {
        assert_eq!(
            words("A close-up of a cat's face."),
            vec!["a", "close-up", "of", "a", "cat's", "face"]
        );
        assert_eq!(
            words("  It's 18th-century!  "),
            vec!["it's", "18th-century"]
        );
        assert_eq!(words("rock -- roll ' x"), vec!["rock", "roll", "x"]);
        assert!(words("?!").is_empty());
        assert_eq!(words("Ça coûte 3€"), vec!["ça", "coûte", "3"]);
    }

    #[test]
    fn long_sentences_are_capped() {
        let text = "word ".repeat(500);
        assert_eq!(words(&text).len(), MAX_WORDS);
    }
}
