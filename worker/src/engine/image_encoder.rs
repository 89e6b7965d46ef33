//! The image classifier: a preprocessed image in, one logit per class out.

use image::RgbImage;
use tract_onnx::prelude::*;

use super::image_preprocess::ImageSpec;
use super::onnx_graph::{Graph, Plan, PlannedInput};
use super::pack::Pack;
use super::profile::Profile;
use super::{JudgeError, LoadError};

/// Runs a pack's image encoder.
#[derive(Debug)]
pub struct ImageEncoder {
    spec: ImageSpec,
    plan: Plan,
    classes: usize,
}

impl ImageEncoder {
    /// Loads and plans the image encoder for `spec`'s input shape; `classes` is
    /// the number of logits it must output.
    pub fn load(pack: &Pack, spec: ImageSpec, classes: usize) -> Result<ImageEncoder, LoadError> {
        spec.validate()
            .map_err(|message| LoadError::invalid(pack.manifest_path(), message))?;
        let path = pack.file("image_encoder")?;
        let graph = Graph::load(&path, &[spec.input.as_str()], &spec.output)?;
        let plan = graph.plan(&[PlannedInput {
            name: &spec.input,
            datum: f32::datum_type(),
            shape: spec.input_shape().to_vec(),
        }])?;
        let encoder = ImageEncoder {
            spec,
            plan,
            classes,
        };
        // One run on a blank image proves the output shape now, not at the
        // first job.
        let blank = RgbImage::new(encoder.spec.size, encoder.spec.size);
        encoder
            .logits(&encoder.spec.tensor(&blank))
            .map_err(|e| LoadError::invalid(&path, e))?;
        Ok(encoder)
    }

    pub fn spec(&self) -> &ImageSpec {
        &self.spec
    }

    /// The logits for an input tensor made by [`ImageSpec::tensor`].
    pub fn logits(&self, input: &Tensor) -> Result<Vec<f32>, JudgeError> {
        let outputs = self
            .plan
            .run(tvec![input.clone().into_tvalue()])
            .map_err(|e| JudgeError::Model(format!("image encoder: {e:#}")))?;
        let view = outputs[0]
            .to_plain_array_view::<f32>()
            .map_err(|e| JudgeError::Model(format!("image encoder output: {e}")))?;
        if view.len() != self.classes {
            return Err(JudgeError::Model(format!(
                "image encoder output has {} values, expected {}",
                view.len(),
                self.classes
            )));
        }
        Ok(view.iter().copied().collect())
    }

    /// One run on `input` with a clock on every node (`bench --profile`).
    pub fn profile(&self, input: &Tensor) -> Result<Profile, JudgeError> {
        Profile::of(&self.plan, tvec![input.clone().into_tvalue()])
    }
}

/// Softmax of logits, computed stably.
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = logits.iter().map(|&l| (l - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}
