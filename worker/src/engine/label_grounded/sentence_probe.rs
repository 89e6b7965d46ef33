//! The sentence probe: a linear read-out of the sentence embedding that says
//! how much a sentence is about what no photo shows (who made or owns a
//! thing, where it comes from, its price, its past or future, what someone
//! feels), whatever its nouns.
//!
//! Word-level evidence (the unverifiable share) misses such sentences when
//! their nouns name visible things: "The cup is for sale" names a cup.
//! Sentences of that kind sit in one region of the encoder's space, so a
//! logistic regression on the embedding separates them. It is fitted by
//! `verdict-worker calibrate` on the dev rows (target: the expected label is
//! `maybe`), with an L2 penalty, and stored in the pack's rule.

use serde::{Deserialize, Serialize};

/// The probe's weights: logit = w · s + b for a unit sentence embedding s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentenceProbe {
    pub weights: Vec<f32>,
    pub bias: f32,
}

/// The L2 penalty of the fit (chosen by 5-fold cross-validation on the dev
/// rows: 0.1 to 0.3 give the same AUC, 3 is worse; `calibrate
/// --probe-penalty` changes it).
pub const PENALTY: f32 = 0.3;
/// Gradient steps of the fit (full batch, step 1: converged well before).
const STEPS: usize = 3000;

impl SentenceProbe {
    /// The probe's logit for a sentence embedding: positive leans to "about
    /// what no photo shows". An embedding of another size gives 0.
    pub fn logit(&self, embedding: &[f32]) -> f32 {
        if embedding.len() != self.weights.len() {
            return 0.0;
        }
        self.bias
            + self
                .weights
                .iter()
                .zip(embedding)
                .map(|(w, x)| w * x)
                .sum::<f32>()
    }

    /// Fits the probe to `targets` (true: undecidable from any photo) by
    /// logistic regression with an L2 `penalty`. Deterministic.
    pub fn fit(embeddings: &[&[f32]], targets: &[bool], penalty: f32) -> SentenceProbe {
        let dim = embeddings.first().map_or(0, |e| e.len());
        let n = embeddings.len().max(1) as f32;
        let mut weights = vec![0f32; dim];
        let mut bias = 0f32;
        let mut gradient = vec![0f32; dim];
        for _ in 0..STEPS {
            gradient.iter_mut().for_each(|g| *g = 0.0);
            let mut bias_gradient = 0f32;
            for (x, &target) in embeddings.iter().zip(targets) {
                let z = bias + weights.iter().zip(*x).map(|(w, v)| w * v).sum::<f32>();
                let error = 1.0 / (1.0 + (-z).exp()) - f32::from(u8::from(target));
                for (g, v) in gradient.iter_mut().zip(*x) {
                    *g += error * v;
                }
                bias_gradient += error;
            }
            for (w, g) in weights.iter_mut().zip(&gradient) {
                *w -= (g + penalty * *w) / n;
            }
            bias -= bias_gradient / n;
        }
        SentenceProbe { weights, bias }
    }

    pub fn validate(&self) -> Result<(), String> {
        if self
            .weights
            .iter()
            .chain([&self.bias])
            .all(|x| x.is_finite())
        {
            Ok(())
        } else {
            Err("rule.sentence_probe has a weight that is not finite".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fit_separates_two_directions_and_is_reproducible() {
        // Targets lie along the first axis, the rest along the second.
        let rows: Vec<Vec<f32>> = (0..20)
            .map(|i| {
                let t = i as f32 / 20.0;
                if i % 2 == 0 {
                    vec![1.0, t * 0.3, 0.0]
                } else {
                    vec![t * 0.3, 1.0, 0.0]
                }
            })
            .collect();
        let x: Vec<&[f32]> = rows.iter().map(|r| r.as_slice()).collect();
        let y: Vec<bool> = (0..20).map(|i| i % 2 == 0).collect();
        let probe = SentenceProbe::fit(&x, &y, PENALTY);
        assert_eq!(probe, SentenceProbe::fit(&x, &y, PENALTY));
        for (row, target) in x.iter().zip(&y) {
            assert_eq!(probe.logit(row) > 0.0, *target, "{row:?}");
        }
        assert!(probe.validate().is_ok());
        assert_eq!(probe.logit(&[1.0]), 0.0);
    }
}
