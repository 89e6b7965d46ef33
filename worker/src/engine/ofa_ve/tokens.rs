//! From a prompt to the entailment graph's `input_ids`: tokenize, truncate,
//! frame with bos/eos.
//!
//! The pack's `tokenizer.json` is OFA's byte-level BPE; it is used without
//! special tokens, and whatever padding or truncation the file might declare is
//! switched off, because the truncation is done here: the first
//! `max_source_tokens` ids are kept (as modelscope's tokenizer call with
//! `truncation=True` does) and the number dropped is reported.

use std::path::Path;

use tokenizers::Tokenizer;

use super::super::{JudgeError, LoadError};

/// The ids of one prompt, as the entailment graph takes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptTokens {
    /// `[bos] + the first max_source_tokens ids of the prompt + [eos]`.
    pub ids: Vec<i64>,
    /// How many tokens the prompt had before truncation.
    pub prompt_tokens: usize,
    /// How many of them truncation dropped (0 when none).
    pub truncated: usize,
}

/// Frames a prompt's ids: keeps the first `max_source_tokens`, then adds
/// `bos_id` before and `eos_id` after.
pub fn frame(
    prompt_ids: &[u32],
    max_source_tokens: usize,
    bos_id: u32,
    eos_id: u32,
) -> PromptTokens {
    let kept = prompt_ids.len().min(max_source_tokens);
    let mut ids = Vec::with_capacity(kept + 2);
    ids.push(i64::from(bos_id));
    ids.extend(prompt_ids[..kept].iter().map(|&id| i64::from(id)));
    ids.push(i64::from(eos_id));
    PromptTokens {
        ids,
        prompt_tokens: prompt_ids.len(),
        truncated: prompt_ids.len() - kept,
    }
}

/// The pack's tokenizer with the framing parameters of its `text` section.
#[derive(Debug)]
pub struct PromptTokenizer {
    tokenizer: Tokenizer,
    max_source_tokens: usize,
    bos_id: u32,
    eos_id: u32,
}

impl PromptTokenizer {
    /// Loads `path` (a Hugging Face `tokenizer.json`).
    pub fn load(
        path: &Path,
        max_source_tokens: usize,
        bos_id: u32,
        eos_id: u32,
    ) -> Result<PromptTokenizer, LoadError> {
        let mut tokenizer = Tokenizer::from_file(path)
            .map_err(|e| LoadError::invalid(path, format!("not a tokenizer.json: {e}")))?;
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(None)
            .map_err(|e| LoadError::invalid(path, format!("truncation: {e}")))?;
        Ok(PromptTokenizer {
            tokenizer,
            max_source_tokens,
            bos_id,
            eos_id,
        })
    }

    /// The number of ids the tokenizer can produce, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.tokenizer.get_vocab_size(true)
    }

    pub fn max_source_tokens(&self) -> usize {
        self.max_source_tokens
    }

    /// The ids of `text`, without special tokens and untruncated.
    pub fn raw_ids(&self, text: &str) -> Result<Vec<u32>, JudgeError> {
        let encoding = self
            .tokenizer
            .encode_fast(text, false)
            .map_err(|e| JudgeError::Model(format!("tokenizer: {e}")))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// The framed, truncated ids of a prompt.
    pub fn encode(&self, prompt: &str) -> Result<PromptTokens, JudgeError> {
        let raw = self.raw_ids(prompt)?;
        if raw.is_empty() {
            return Err(JudgeError::Model(format!(
                "the tokenizer produced no tokens for the prompt {prompt:?}"
            )));
        }
        Ok(frame(
            &raw,
            self.max_source_tokens,
            self.bos_id,
            self.eos_id,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_prompts_are_framed_whole() {
        let t = frame(&[10, 11, 12], 5, 0, 2);
        assert_eq!(t.ids, vec![0, 10, 11, 12, 2]);
        assert_eq!(t.prompt_tokens, 3);
        assert_eq!(t.truncated, 0);
    }

    #[test]
    fn a_prompt_of_exactly_the_limit_loses_nothing() {
        let t = frame(&[10, 11, 12], 3, 0, 2);
        assert_eq!(t.ids, vec![0, 10, 11, 12, 2]);
        assert_eq!(t.truncated, 0);
    }

    #[test]
    fn long_prompts_keep_their_first_tokens_and_count_the_rest() {
        let prompt: Vec<u32> = (100..110).collect();
        let t = frame(&prompt, 4, 0, 2);
        assert_eq!(t.ids, vec![0, 100, 101, 102, 103, 2]);
        assert_eq!(t.prompt_tokens, 10);
        assert_eq!(t.truncated, 6);
        assert_eq!(t.ids.len(), 4 + 2, "bos and eos come on top of the limit");
    }
}
