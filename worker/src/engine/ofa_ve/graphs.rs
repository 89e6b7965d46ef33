//! The two graphs of an `ofa-ve` pack, planned: the image graph (OFA's ResNet
//! stem) and the entailment graph (encoder + the decoder's first step).
//!
//! The image graph is planned for its one input shape. The entailment graph is
//! planned once, with the length of `input_ids` a tract symbol `S` (bound at
//! each run to the prompt's length) and the image features' fixed shape: the
//! large model's weights are about 1.8 GB, and every tract plan holds its own
//! packed copy of them, so a plan per length bucket (as the text encoder of a
//! label-grounded pack has) would multiply that. Each parsed graph is dropped
//! as soon as it is planned, freeing its copy of the weights.

use std::sync::Arc;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::DimLike;

use super::super::image_preprocess::ImageSpec;
use super::super::onnx_graph::{Dim, Graph, Plan, SymbolicInput};
use super::super::pack::Pack;
use super::super::profile::Profile;
use super::super::{JudgeError, LoadError};
use super::sections::EntailmentSection;

/// The name of the symbolic length of `input_ids`.
const LENGTH: &str = "S";

/// The planned graphs and the shapes they exchange.
#[derive(Debug)]
pub struct OfaGraphs {
    image: Plan,
    entailment: Plan,
    /// `[1, C, H, W]`: the image graph's output, the entailment graph's input.
    features: [usize; 4],
    /// The longest `input_ids` the entailment plan accepts.
    max_ids: usize,
}

impl OfaGraphs {
    /// Loads and plans both graphs. `max_ids` is `max_source_tokens + 2`.
    pub fn load(
        pack: &Pack,
        image: &ImageSpec,
        features: [usize; 4],
        entailment: &EntailmentSection,
        max_ids: usize,
    ) -> Result<OfaGraphs, LoadError> {
        let image_path = pack.file("image_encoder")?;
        let image_plan = Graph::load(&image_path, &[image.input.as_str()], &image.output)?
            .into_plan(
                &[SymbolicInput {
                    name: &image.input,
                    datum: f32::datum_type(),
                    shape: image.input_shape().iter().map(|&n| Dim::Fixed(n)).collect(),
                }],
                &[],
            )?;

        let entailment_path = pack.file("entailment")?;
        let names = [
            entailment.inputs.input_ids.as_str(),
            entailment.inputs.image_features.as_str(),
        ];
        let entailment_plan = Graph::load(&entailment_path, &names, &entailment.output)?
            .into_plan(
                &[
                    SymbolicInput {
                        name: names[0],
                        datum: i64::datum_type(),
                        shape: vec![Dim::Fixed(1), Dim::Symbol(LENGTH)],
                    },
                    SymbolicInput {
                        name: names[1],
                        datum: f32::datum_type(),
                        shape: features.iter().map(|&n| Dim::Fixed(n)).collect(),
                    },
                ],
                // The shortest input is bos + one token + eos.
                &[format!("{LENGTH} >= 3"), format!("{LENGTH} <= {max_ids}")],
            )?;
        check_output(&image_plan, &image_path, &features)?;
        check_output(&entailment_plan, &entailment_path, &[1, 3])?;
        Ok(OfaGraphs {
            image: image_plan,
            entailment: entailment_plan,
            features,
            max_ids,
        })
    }

    /// The image features of a preprocessed image tensor, checked to have the
    /// manifest's shape.
    pub fn image_features(&self, image: &Tensor) -> Result<Tensor, JudgeError> {
        let mut outputs = self
            .image
            .run(tvec![image.clone().into_tvalue()])
            .map_err(|e| JudgeError::Model(format!("image graph: {e:#}")))?;
        if outputs.is_empty() {
            return Err(JudgeError::Model("image graph: no output".into()));
        }
        let features = outputs.remove(0).into_tensor();
        if features.datum_type() != f32::datum_type() || features.shape() != self.features {
            return Err(JudgeError::Model(format!(
                "image graph output is {:?} {:?}, the manifest says f32 {:?}",
                features.datum_type(),
                features.shape(),
                self.features
            )));
        }
        Ok(features)
    }

    /// Runs the entailment graph once with a clock on every node, for
    /// `verdict-worker bench --profile`.
    pub fn profile_entailment(
        &self,
        ids: &[i64],
        features: &Arc<Tensor>,
    ) -> Result<Profile, JudgeError> {
        let input_ids = Tensor::from_shape(&[1, ids.len()], ids)
            .map_err(|e| JudgeError::Model(format!("entailment input: {e}")))?;
        Profile::of(
            &self.entailment,
            tvec![
                input_ids.into_tvalue(),
                TValue::from_const(Arc::clone(features))
            ],
        )
    }

    /// As [`OfaGraphs::profile_entailment`], for the image graph.
    pub fn profile_image(&self, image: &Tensor) -> Result<Profile, JudgeError> {
        Profile::of(&self.image, tvec![image.clone().into_tvalue()])
    }
}

impl OfaGraphs {
    /// The logits of yes, no and maybe for framed prompt ids and an image's
    /// features (as [`OfaGraphs::image_features`] returns them).
    pub fn answer_logits(
        &self,
        ids: &[i64],
        features: &Arc<Tensor>,
    ) -> Result<[f32; 3], JudgeError> {
        if !(3..=self.max_ids).contains(&ids.len()) {
            return Err(JudgeError::Model(format!(
                "{} input ids, the entailment graph takes 3 to {}",
                ids.len(),
                self.max_ids
            )));
        }
        if features.shape() != self.features {
            return Err(JudgeError::Model(format!(
                "image features of shape {:?}, the entailment graph takes {:?}",
                features.shape(),
                self.features
            )));
        }
        let input_ids = Tensor::from_shape(&[1, ids.len()], ids)
            .map_err(|e| JudgeError::Model(format!("entailment input: {e}")))?;
        let outputs = self
            .entailment
            .run(tvec![
                input_ids.into_tvalue(),
                TValue::from_const(Arc::clone(features))
            ])
            .map_err(|e| JudgeError::Model(format!("entailment graph: {e:#}")))?;
        let view = outputs
            .first()
            .ok_or_else(|| JudgeError::Model("entailment graph: no output".into()))?
            .to_plain_array_view::<f32>()
            .map_err(|e| JudgeError::Model(format!("entailment graph output: {e}")))?;
        let values: Vec<f32> = view.iter().copied().collect();
        let logits: [f32; 3] = values.as_slice().try_into().map_err(|_| {
            JudgeError::Model(format!(
                "entailment graph output has shape {:?}, expected [1, 3]",
                view.shape()
            ))
        })?;
        if logits.iter().any(|l| !l.is_finite()) {
            return Err(JudgeError::Model(format!(
                "entailment graph output is not finite: {logits:?}"
            )));
        }
        Ok(logits)
    }
}

/// Checks that a plan's output is f32 of exactly `shape`, as tract typed it
/// when planning (for the symbolic entailment plan: for every length allowed).
fn check_output(plan: &Plan, path: &std::path::Path, shape: &[usize]) -> Result<(), LoadError> {
    let fact = plan
        .model()
        .output_fact(0)
        .map_err(|e| LoadError::invalid(path, format!("the graph has no output: {e:#}")))?;
    let dims: Vec<Option<usize>> = fact.shape.iter().map(|d| d.to_usize().ok()).collect();
    let expected: Vec<Option<usize>> = shape.iter().map(|&n| Some(n)).collect();
    if fact.datum_type != f32::datum_type() || dims != expected {
        return Err(LoadError::invalid(
            path,
            format!(
                "the graph's output is {:?} {:?}, the manifest says f32 {shape:?}",
                fact.datum_type, fact.shape
            ),
        ));
    }
    Ok(())
}
