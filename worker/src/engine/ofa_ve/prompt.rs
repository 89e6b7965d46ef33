//! OFA's text side before the tokenizer: `pre_caption` and the prompt.
//!
//! Both follow modelscope's OFA visual-entailment preprocessor exactly (see
//! the pack contract): the sentence (and the premise, when there is one) is
//! cleaned by [`pre_caption`], then put into the pack's prompt template the
//! way Python's `str.format` does it, literally.

/// The characters `pre_caption` strips from the start of a text (Python's
/// `lstrip(',.!?*#:;~')`).
const LEADING_PUNCTUATION: &[char] = &[',', '.', '!', '?', '*', '#', ':', ';', '~'];

/// A text cleaned by [`caption`]: what goes into the prompt, and how many
/// words the word cap dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caption {
    pub text: String,
    pub dropped_words: usize,
}

/// modelscope's `OfaBasePreprocessor.pre_caption(text, max_words)`.
pub fn pre_caption(text: &str, max_words: usize) -> String {
    caption(text, max_words).text
}

/// [`pre_caption`], also counting the words it dropped.
///
/// The steps, in Python's order: lowercase; strip leading `,.!?*#:;~`;
/// replace `-` and `/` by a space and `<person>` by `person`; replace every
/// run of two or more whitespace characters (Python's Unicode `\s`) by one
/// space; strip trailing `\n`; strip spaces at both ends; keep the first
/// `max_words` of the words separated by single spaces.
pub fn caption(text: &str, max_words: usize) -> Caption {
    let lowered = text.to_lowercase();
    let replaced = lowered
        .trim_start_matches(LEADING_PUNCTUATION)
        .replace(['-', '/'], " ")
        .replace("<person>", "person");
    let collapsed = collapse_whitespace_runs(&replaced);
    let stripped = collapsed.trim_end_matches('\n').trim_matches(' ');
    // Python's `str.split(' ')`: an empty string is one empty word, and a
    // single tab or newline inside a text is part of a word.
    let words: Vec<&str> = stripped.split(' ').collect();
    if words.len() > max_words {
        Caption {
            text: words[..max_words].join(" "),
            dropped_words: words.len() - max_words,
        }
    } else {
        Caption {
            text: stripped.to_string(),
            dropped_words: 0,
        }
    }
}

/// `re.sub(r'\s{2,}', ' ', text)`: runs of one whitespace character are kept
/// as they are.
fn collapse_whitespace_runs(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    for c in text.chars() {
        if is_python_space(c) {
            run.push(c);
            continue;
        }
        flush_run(&mut out, &mut run);
        out.push(c);
    }
    flush_run(&mut out, &mut run);
    out
}

fn flush_run(out: &mut String, run: &mut String) {
    if run.chars().nth(1).is_some() {
        out.push(' ');
    } else {
        out.push_str(run);
    }
    run.clear();
}

/// Python's `str.isspace()`, which is what `\s` matches in a `str` pattern:
/// Unicode's White_Space characters plus the four information separators
/// U+001C..U+001F, which Rust's `char::is_whitespace` leaves out.
fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// A prompt template with `{}` placeholders, as Python's `str.format` reads
/// it (`{{` and `}}` stand for literal braces).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// The literal text around the placeholders: one more piece than there
    /// are placeholders.
    pieces: Vec<String>,
}

impl Template {
    /// Parses `template`, which must have exactly `placeholders` `{}`; `field`
    /// names it in the error (`text.prompt`).
    pub fn parse(template: &str, placeholders: usize, field: &str) -> Result<Template, String> {
        let mut pieces = Vec::new();
        let mut current = String::new();
        let mut chars = template.chars().peekable();
        while let Some(c) = chars.next() {
            match (c, chars.peek()) {
                ('{', Some('{')) | ('}', Some('}')) => {
                    chars.next();
                    current.push(c);
                }
                ('{', Some('}')) => {
                    chars.next();
                    pieces.push(std::mem::take(&mut current));
                }
                ('{' | '}', _) => {
                    return Err(format!(
                        "{field} {template:?}: only {{}} placeholders (and {{{{, }}}} for literal braces) are supported"
                    ));
                }
                _ => current.push(c),
            }
        }
        pieces.push(current);
        let found = pieces.len() - 1;
        if found != placeholders {
            return Err(format!(
                "{field} {template:?} has {found} {{}} placeholders, expected {placeholders}"
            ));
        }
        Ok(Template { pieces })
    }

    /// The template with its placeholders replaced by `values`, in order,
    /// literally (a brace in a value stays a brace). Missing values are empty.
    pub fn fill(&self, values: &[&str]) -> String {
        let mut out = String::new();
        for (ix, piece) in self.pieces.iter().enumerate() {
            if ix > 0 {
                out.push_str(values.get(ix - 1).copied().unwrap_or(""));
            }
            out.push_str(piece);
        }
        out
    }
}

/// A prompt ready for the tokenizer, with what the word cap dropped from the
/// sentence and the premise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    pub text: String,
    pub dropped_words: usize,
}

/// OFA's two prompts: the sentence against the image alone, and the sentence
/// against the image and a premise.
#[derive(Debug, Clone)]
pub struct Prompts {
    pub hypothesis: Template,
    pub with_premise: Template,
    pub max_words: usize,
}

impl Prompts {
    /// The prompt for `sentence` (and `premise`): each is [`caption`]ed, then
    /// put in its template (the premise first, as modelscope does).
    pub fn build(&self, sentence: &str, premise: Option<&str>) -> Prompt {
        let hypothesis = caption(sentence, self.max_words);
        match premise {
            None => Prompt {
                text: self.hypothesis.fill(&[&hypothesis.text]),
                dropped_words: hypothesis.dropped_words,
            },
            Some(premise) => {
                let premise = caption(premise, self.max_words);
                Prompt {
                    text: self.with_premise.fill(&[&premise.text, &hypothesis.text]),
                    dropped_words: hypothesis.dropped_words + premise.dropped_words,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROMPT: &str = " does the image describe \" {} \"?";
    const PREMISE_PROMPT: &str = " can image and text1 \" {} \" imply text2 \" {} \"?";

    fn prompts() -> Prompts {
        Prompts {
            hypothesis: Template::parse(PROMPT, 1, "text.prompt").unwrap(),
            with_premise: Template::parse(PREMISE_PROMPT, 2, "text.premise_prompt").unwrap(),
            max_words: 256,
        }
    }

    #[test]
    fn lowercases_and_strips_leading_punctuation_only() {
        assert_eq!(pre_caption("This Is A Cat.", 256), "this is a cat.");
        assert_eq!(pre_caption(",.!?*#:;~Hello!", 256), "hello!");
        // Only leading characters of the set go; a leading space stops the strip.
        assert_eq!(pre_caption(" ...dots", 256), "...dots");
        assert_eq!(pre_caption("ÉCOLE ΟΔΟΣ", 256), "école οδος", "Unicode case");
    }

    #[test]
    fn replaces_dashes_slashes_and_the_person_tag() {
        assert_eq!(
            pre_caption("a well-lit room/hall", 256),
            "a well lit room hall"
        );
        assert_eq!(
            pre_caption("<PERSON> holds a cup", 256),
            "person holds a cup",
            "the tag is matched after lowercasing"
        );
        // A dash next to a space makes a run of two spaces, which collapses.
        assert_eq!(pre_caption("cat - dog", 256), "cat dog");
    }

    #[test]
    fn collapses_runs_of_unicode_whitespace_but_not_single_ones() {
        assert_eq!(pre_caption("a  cat\t\tsits", 256), "a cat sits");
        // No-break space + ideographic space, and the information separators
        // Python counts as whitespace.
        assert_eq!(pre_caption("a\u{a0}\u{3000}cat", 256), "a cat");
        assert_eq!(pre_caption("a\u{1c}\u{1f}cat", 256), "a cat");
        // A single tab or no-break space is not a run: it stays, inside a word.
        assert_eq!(pre_caption("a\tcat", 256), "a\tcat");
        assert_eq!(pre_caption("a\u{a0}cat", 256), "a\u{a0}cat");
        // A zero-width space is not whitespace for Python either.
        assert_eq!(
            pre_caption("a\u{200b}\u{200b}cat", 256),
            "a\u{200b}\u{200b}cat"
        );
    }

    #[test]
    fn strips_one_trailing_newline_and_spaces_at_both_ends() {
        assert_eq!(pre_caption(" a cat\n", 256), "a cat");
        assert_eq!(pre_caption("a cat \n\n", 256), "a cat");
        // A trailing tab is neither a newline nor a space: Python keeps it.
        assert_eq!(pre_caption("a cat\t", 256), "a cat\t");
        assert_eq!(pre_caption("   ", 256), "");
    }

    #[test]
    fn keeps_the_first_max_words() {
        let c = caption("one two three four five", 3);
        assert_eq!(c.text, "one two three");
        assert_eq!(c.dropped_words, 2);
        let c = caption("one two three", 3);
        assert_eq!(c.text, "one two three");
        assert_eq!(c.dropped_words, 0);
        // Words are split on single spaces after the collapse: "a\tb" is one.
        let c = caption("a\tb c d", 2);
        assert_eq!(c.text, "a\tb c");
        assert_eq!(c.dropped_words, 1);
    }

    #[test]
    fn builds_the_hypothesis_prompt() {
        let p = prompts().build("This is a cat.", None);
        assert_eq!(p.text, " does the image describe \" this is a cat. \"?");
        assert_eq!(p.dropped_words, 0);
    }

    #[test]
    fn builds_the_premise_prompt_with_the_premise_first() {
        let p = prompts().build("The cat sleeps.", Some("A CAT on a sofa"));
        assert_eq!(
            p.text,
            " can image and text1 \" a cat on a sofa \" imply text2 \" the cat sleeps. \"?"
        );
    }

    #[test]
    fn counts_words_dropped_from_both_texts() {
        let mut ps = prompts();
        ps.max_words = 2;
        let p = ps.build("a b c", Some("d e f g"));
        assert_eq!(
            p.text,
            " can image and text1 \" d e \" imply text2 \" a b \"?"
        );
        assert_eq!(p.dropped_words, 3);
    }

    #[test]
    fn values_are_inserted_literally() {
        let t = Template::parse("q {} {{x}}", 1, "text.prompt").unwrap();
        assert_eq!(t.fill(&["{}{0}"]), "q {}{0} {x}");
    }

    #[test]
    fn templates_must_have_the_expected_placeholders() {
        assert!(Template::parse(PROMPT, 2, "text.premise_prompt").is_err());
        assert!(Template::parse(PREMISE_PROMPT, 1, "text.prompt").is_err());
        let err = Template::parse("what is {0}?", 1, "text.prompt").unwrap_err();
        assert!(err.contains("text.prompt"), "{err}");
        assert!(Template::parse("a } b {}", 1, "text.prompt").is_err());
        assert!(Template::parse("trailing {", 0, "text.prompt").is_err());
    }
}
