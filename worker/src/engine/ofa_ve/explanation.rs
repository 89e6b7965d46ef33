//! What an OFA verdict can honestly say about itself.
//!
//! OFA answers a question about the image in one step: there are no image
//! classes or sentence neighbours behind its answer, only the prompt it was
//! asked and its three logits. The explanation says exactly that, and says
//! when the model did not see the whole prompt (or the whole sentence).
//!
//! Signals: `logit_yes`, `logit_no`, `logit_maybe` (the graph's raw logits),
//! `prompt_tokens` (the prompt's tokens before truncation, bos/eos not
//! counted) and `truncated_tokens` (how many of them the model did not see).

use std::collections::BTreeMap;

use verdict_shared::verdict::{Explanation, Label, Scores};

use super::prompt::Prompt;
use super::tokens::PromptTokens;

/// Everything one answer is made of.
#[derive(Debug, Clone)]
pub struct Answer<'a> {
    pub prompt: &'a Prompt,
    pub tokens: &'a PromptTokens,
    pub max_source_tokens: usize,
    pub max_source_words: usize,
    /// In the order yes, no, maybe.
    pub logits: [f32; 3],
    pub scores: Scores,
    pub label: Label,
}

pub fn explain(answer: &Answer<'_>) -> Explanation {
    let scores = &answer.scores;
    let mut summary = format!(
        "OFA answered \"{}\" to the prompt '{}' (yes {:.2}, no {:.2}, maybe {:.2}).",
        answer.label, answer.prompt.text, scores.yes, scores.no, scores.maybe
    );
    if answer.prompt.dropped_words > 0 {
        summary.push_str(&format!(
            " Only the first {} words of each text were used ({} dropped).",
            answer.max_source_words, answer.prompt.dropped_words
        ));
    }
    if answer.tokens.truncated > 0 {
        summary.push_str(&format!(
            " The prompt was truncated to the model's {} source tokens (it had {}): the model did not see its end.",
            answer.max_source_tokens, answer.tokens.prompt_tokens
        ));
    }
    let [yes, no, maybe] = answer.logits;
    let signals = BTreeMap::from([
        ("logit_yes".to_string(), yes),
        ("logit_no".to_string(), no),
        ("logit_maybe".to_string(), maybe),
        (
            "prompt_tokens".to_string(),
            answer.tokens.prompt_tokens as f32,
        ),
        (
            "truncated_tokens".to_string(),
            answer.tokens.truncated as f32,
        ),
    ]);
    Explanation {
        summary,
        image_labels: Vec::new(),
        sentence_labels: Vec::new(),
        signals,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn explain_with(prompt: &Prompt, tokens: &PromptTokens) -> Explanation {
        explain(&Answer {
            prompt,
            tokens,
            max_source_tokens: 256,
            max_source_words: 256,
            logits: [-1.0, 0.5, -1.5],
            scores: Scores {
                yes: 0.12,
                no: 0.80,
                maybe: 0.08,
            },
            label: Label::No,
        })
    }

    #[test]
    fn says_what_was_asked_and_answered() {
        let prompt = Prompt {
            text: " does the image describe \" this is a cat \"?".into(),
            dropped_words: 0,
        };
        let tokens = PromptTokens {
            ids: vec![0, 5, 6, 2],
            prompt_tokens: 2,
            truncated: 0,
        };
        let e = explain_with(&prompt, &tokens);
        assert_eq!(
            e.summary,
            "OFA answered \"no\" to the prompt ' does the image describe \" this is a cat \"?' (yes 0.12, no 0.80, maybe 0.08)."
        );
        assert_eq!(e.signals["logit_no"], 0.5);
        assert_eq!(e.signals["prompt_tokens"], 2.0);
        assert_eq!(e.signals["truncated_tokens"], 0.0);
        assert!(e.image_labels.is_empty() && e.sentence_labels.is_empty());
    }

    #[test]
    fn says_when_the_model_did_not_see_everything() {
        let prompt = Prompt {
            text: "long".into(),
            dropped_words: 3,
        };
        let tokens = PromptTokens {
            ids: vec![0; 258],
            prompt_tokens: 1234,
            truncated: 978,
        };
        let e = explain_with(&prompt, &tokens);
        assert!(
            e.summary.contains(
                "The prompt was truncated to the model's 256 source tokens (it had 1234)"
            ),
            "{}",
            e.summary
        );
        assert!(e.summary.contains("(3 dropped)"), "{}", e.summary);
        assert_eq!(e.signals["truncated_tokens"], 978.0);
        assert_eq!(e.signals["prompt_tokens"], 1234.0);
    }
}
