//! Sentence embeddings: tokenizer + transformer + pooling.
//!
//! The transformer is planned once per length bucket: a sentence is padded to
//! the smallest bucket that holds it, with `attention_mask` 0 on the padding,
//! so every run uses an optimised fixed-shape plan and the padding does not
//! change the outputs on real tokens. Pooling then averages only the real
//! tokens.
//!
//! The buckets (4, 6, 10, 15, 20, 32, 64, 128 tokens) follow what a run
//! costs. Over 85 % of a run is tract's matrix products, and their cost does
//! not grow smoothly with the padded length but in steps, as tract picks a
//! kernel, and with it how many tokens it computes at once, for each shape
//! (on AMD CPUs with AVX-512, tract-linalg 0.23.9 picks with a cost model
//! fitted on a Zen 5 desktop). Fixed-shape plans on one core of the first
//! AMD EPYC dev machine (2026-11-25): 3–4 tokens 2.4 ms, 5: 3.1, 6: 3.5,
//! 7–10: 4.4–4.7, 11–15: 5.5–5.8, 16–20: 6.7–6.9, 21: 9.4. On a later one
//! (family 26, 2026-12-01) the same steps, lower: 8–10 tokens 3.1–3.3 ms,
//! 11–15: 3.9–4.2, 16: 4.7; tract's vendor-neutral kernel choice
//! (`TRACT_X86_KIND=other`) measured the same. Each bucket ends a step, so
//! padding up to it is free; the 4-token bucket holds the single words of the
//! rule's word-level evidence (`[CLS] word [SEP]`, embedded for every new
//! word), the 10-token one most short rule sentences. (The former 8/16
//! buckets made a 9-token sentence pay 6.7 ms for the 16-token plan.)
//! Another CPU may step elsewhere: the buckets stay correct, only less snug.
//!
//! Each plan holds its own copy of the weights in tract's packed layout
//! (about 55 MB resident). The 4-, 6-, 10- and 15-token plans (words, and
//! sentences of up to 15 tokens: nearly every rule) are made when the model
//! loads, so no job waits for one and a memory limit too tight shows at
//! start-up; the longer ones the first time a sentence needs them (about
//! 150 ms, once per worker). A worker that has met every length holds all
//! eight, about 450 MB. A plan of tract's symbolic length avoids padding but
//! runs slower than the fixed plans (its element-wise ops stay unfused).

use std::path::Path;
use std::sync::OnceLock;

use serde::Deserialize;
use tokenizers::{Tokenizer, TruncationParams};
use tract_onnx::prelude::*;

use super::onnx_graph::{Graph, Plan, PlannedInput};
use super::pack::Pack;
use super::{JudgeError, LoadError};

/// The `text` section of a pack.
#[derive(Debug, Clone, Deserialize)]
pub struct TextSpec {
    /// The tokenizer file (a Hugging Face `tokenizer.json`).
    pub tokenizer: String,
    pub inputs: TextInputs,
    /// The graph's output: hidden states `[1, seq, dim]`.
    pub output: String,
    pub dim: usize,
    /// Tokens per sentence, special tokens included; longer ones are truncated.
    pub max_tokens: usize,
    /// Only `mean` (over the attention mask) for now.
    pub pooling: String,
    /// L2-normalise the pooled embedding.
    pub normalize: bool,
}

/// The names of the text encoder's three inputs.
#[derive(Debug, Clone, Deserialize)]
pub struct TextInputs {
    pub input_ids: String,
    pub attention_mask: String,
    pub token_type_ids: String,
}

/// Length buckets (see the module doc); the pack's `max_tokens` is added as
/// the last one.
const BUCKETS: [usize; 8] = [4, 6, 10, 15, 20, 32, 64, 128];

/// The buckets planned when the model loads: words, and sentences of up to
/// 15 tokens.
const EAGER: [usize; 4] = [4, 6, 10, 15];

/// The padded lengths a pack with this `max_tokens` is planned for, shortest
/// first.
fn bucket_lengths(max_tokens: usize) -> Vec<usize> {
    let mut lengths: Vec<usize> = BUCKETS
        .iter()
        .copied()
        .filter(|&b| b < max_tokens)
        .collect();
    lengths.push(max_tokens);
    lengths
}

/// Embeds sentences with a pack's tokenizer and text encoder.
#[derive(Debug)]
pub struct TextEncoder {
    spec: TextSpec,
    tokenizer: Tokenizer,
    /// The graph, kept to plan the lazy buckets.
    graph: Graph,
    /// The three input names, in the order plans take them.
    names: [String; 3],
    /// (padded length, plan once made), shortest first.
    plans: Vec<(usize, OnceLock<Plan>)>,
}

impl TextEncoder {
    /// Loads the tokenizer and plans the text encoder for every bucket.
    pub fn load(pack: &Pack, spec: TextSpec) -> Result<TextEncoder, LoadError> {
        let graph_path = pack.file("text_encoder")?;
        let tokenizer_path = pack.named_file(&spec.tokenizer)?;
        if spec.pooling != "mean" {
            return Err(LoadError::invalid(
                pack.manifest_path(),
                format!(
                    "text.pooling {:?} is not supported (only \"mean\")",
                    spec.pooling
                ),
            ));
        }
        if !(2..=512).contains(&spec.max_tokens) || spec.dim == 0 {
            return Err(LoadError::invalid(
                pack.manifest_path(),
                "text.max_tokens must be in 2..=512 and text.dim positive",
            ));
        }
        let tokenizer = load_tokenizer(&tokenizer_path, spec.max_tokens)?;
        let names = [
            spec.inputs.input_ids.as_str(),
            spec.inputs.attention_mask.as_str(),
            spec.inputs.token_type_ids.as_str(),
        ];
        let graph = Graph::load(&graph_path, &names, &spec.output)?;
        let lengths = bucket_lengths(spec.max_tokens);
        let encoder = TextEncoder {
            names: names.map(String::from),
            spec,
            tokenizer,
            graph,
            plans: lengths
                .into_iter()
                .map(|len| (len, OnceLock::new()))
                .collect(),
        };
        for (len, slot) in &encoder.plans {
            if EAGER.contains(len) {
                let _ = slot.set(encoder.plan_for(*len)?);
            }
        }
        Ok(encoder)
    }

    fn plan_for(&self, len: usize) -> Result<Plan, LoadError> {
        let inputs: Vec<PlannedInput<'_>> = self
            .names
            .iter()
            .map(|name| PlannedInput {
                name,
                datum: i64::datum_type(),
                shape: vec![1, len],
            })
            .collect();
        self.graph.plan(&inputs)
    }

    /// The plan of the bucket at `index`, made on first use.
    fn plan(&self, index: usize) -> Result<&Plan, JudgeError> {
        let (len, slot) = &self.plans[index];
        if let Some(plan) = slot.get() {
            return Ok(plan);
        }
        // Two threads may both plan a bucket on first use; one result is kept.
        let plan = self.plan_for(*len).map_err(|e| {
            JudgeError::Model(format!("planning the {len}-token text encoder: {e}"))
        })?;
        Ok(slot.get_or_init(|| plan))
    }

    pub fn dim(&self) -> usize {
        self.spec.dim
    }

    /// The token ids of `text`, special tokens included, truncated to `max_tokens`.
    pub fn token_ids(&self, text: &str) -> Result<Vec<u32>, JudgeError> {
        let encoding = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| JudgeError::Model(format!("tokenizer: {e}")))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// The sentence embedding of `text`.
    pub fn embed(&self, text: &str) -> Result<Vec<f32>, JudgeError> {
        let ids = self.token_ids(text)?;
        self.embed_ids(&ids)
    }

    /// The sentence embedding of already tokenised ids.
    pub fn embed_ids(&self, ids: &[u32]) -> Result<Vec<f32>, JudgeError> {
        let n = ids.len();
        if n == 0 {
            return Err(JudgeError::Model("the tokenizer produced no tokens".into()));
        }
        let index = self
            .plans
            .iter()
            .position(|(len, _)| *len >= n)
            .ok_or_else(|| JudgeError::Model(format!("{n} tokens exceed every length bucket")))?;
        let len = &self.plans[index].0;
        let plan = self.plan(index)?;
        let mut input_ids = vec![0i64; *len];
        let mut mask = vec![0i64; *len];
        for (i, &id) in ids.iter().enumerate() {
            input_ids[i] = i64::from(id);
            mask[i] = 1;
        }
        let shape = [1, *len];
        let tensor = |data: Vec<i64>| -> Result<TValue, JudgeError> {
            Tensor::from_shape(&shape, &data)
                .map(|t| t.into_tvalue())
                .map_err(|e| JudgeError::Model(format!("text input: {e}")))
        };
        let outputs = plan
            .run(tvec![
                tensor(input_ids)?,
                tensor(mask)?,
                tensor(vec![0i64; *len])?
            ])
            .map_err(|e| JudgeError::Model(format!("text encoder: {e:#}")))?;
        let hidden = outputs[0]
            .to_plain_array_view::<f32>()
            .map_err(|e| JudgeError::Model(format!("text encoder output: {e}")))?;
        let dim = self.spec.dim;
        if hidden.shape() != [1, *len, dim] {
            return Err(JudgeError::Model(format!(
                "text encoder output has shape {:?}, expected [1, {len}, {dim}]",
                hidden.shape()
            )));
        }
        let mut pooled = vec![0f32; dim];
        for t in 0..n {
            for (d, value) in pooled.iter_mut().enumerate() {
                *value += hidden[[0, t, d]];
            }
        }
        for value in &mut pooled {
            *value /= n as f32;
        }
        if self.spec.normalize {
            normalize(&mut pooled);
        }
        Ok(pooled)
    }
}

fn load_tokenizer(path: &Path, max_tokens: usize) -> Result<Tokenizer, LoadError> {
    let mut tokenizer = Tokenizer::from_file(path)
        .map_err(|e| LoadError::invalid(path, format!("not a tokenizer.json: {e}")))?;
    // Whatever the file says: no padding (it would pollute mean pooling) and
    // truncation at the model's limit.
    tokenizer.with_padding(None);
    tokenizer
        .with_truncation(Some(TruncationParams {
            max_length: max_tokens,
            ..TruncationParams::default()
        }))
        .map_err(|e| LoadError::invalid(path, format!("truncation: {e}")))?;
    Ok(tokenizer)
}

/// Scales `v` to unit length (a zero vector stays zero).
pub fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        for x in v {
            *x /= norm;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_end_at_the_packs_limit() {
        assert_eq!(bucket_lengths(128), vec![4, 6, 10, 15, 20, 32, 64, 128]);
        assert_eq!(bucket_lengths(12), vec![4, 6, 10, 12]);
        assert_eq!(
            bucket_lengths(256),
            vec![4, 6, 10, 15, 20, 32, 64, 128, 256]
        );
        assert_eq!(bucket_lengths(3), vec![3]);
    }
}
