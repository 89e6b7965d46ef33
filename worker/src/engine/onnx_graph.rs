//! Loading an ONNX graph with tract into an optimised fixed-shape plan.
//!
//! tract optimises far better when every input shape is known, so each graph
//! is planned for the exact shapes the engine will feed it (the image encoder
//! for one size, the text encoder once per length bucket). Before planning, the
//! graph's inputs and output are checked against what the manifest promises, so
//! a pack holding the wrong graph fails at start-up with the file's name.

use std::path::Path;
use std::sync::Arc;

use tract_onnx::prelude::*;

use super::LoadError;

/// A runnable, optimised plan.
pub type Plan = Arc<TypedRunnableModel>;

/// One input of a graph, with the shape it will be planned for.
#[derive(Debug, Clone)]
pub struct PlannedInput<'a> {
    pub name: &'a str,
    pub datum: DatumType,
    pub shape: Vec<usize>,
}

/// A parsed ONNX graph whose inputs and output have been checked.
#[derive(Debug, Clone)]
pub struct Graph {
    model: InferenceModel,
    path: std::path::PathBuf,
}

impl Graph {
    /// Parses `path` and checks that its inputs are exactly `inputs` (in any
    /// order) and that it has an output named `output`.
    pub fn load(path: &Path, inputs: &[&str], output: &str) -> Result<Graph, LoadError> {
        // The graph's own shape annotations name symbolic dimensions ("batch",
        // "sequence") that would clash with the fixed shapes we plan for; the
        // shapes are inferred from the inputs instead.
        let model = tract_onnx::onnx()
            .with_ignore_output_shapes(true)
            .with_ignore_value_info(true)
            .model_for_path(path)
            .map_err(|e| {
                LoadError::invalid(path, format!("not an ONNX graph tract can read: {e:#}"))
            })?;
        let mut actual: Vec<String> = model
            .input_outlets()
            .map_err(|e| LoadError::invalid(path, e))?
            .iter()
            .map(|o| model.node(o.node).name.clone())
            .collect();
        actual.sort();
        let mut expected: Vec<String> = inputs.iter().map(|s| s.to_string()).collect();
        expected.sort();
        if actual != expected {
            return Err(LoadError::invalid(
                path,
                format!("the graph's inputs are {actual:?}, the manifest expects {expected:?}"),
            ));
        }
        let outputs: Vec<String> = model
            .output_outlets()
            .map_err(|e| LoadError::invalid(path, e))?
            .iter()
            .map(|o| {
                model
                    .outlet_label(*o)
                    .map(str::to_string)
                    .unwrap_or_else(|| model.node(o.node).name.clone())
            })
            .collect();
        if !outputs.iter().any(|name| name == output) {
            return Err(LoadError::invalid(
                path,
                format!("the graph has no output {output:?} (its outputs are {outputs:?})"),
            ));
        }
        let model = model
            .with_input_names(inputs)
            .and_then(|m| m.with_outputs_by_name([output]))
            .map_err(|e| LoadError::invalid(path, e))?;
        Ok(Graph {
            model,
            path: path.to_path_buf(),
        })
    }

    /// An optimised plan for these input shapes (given in the order of `load`'s
    /// `inputs`).
    pub fn plan(&self, inputs: &[PlannedInput<'_>]) -> Result<Plan, LoadError> {
        let mut model = self.model.clone();
        for (ix, input) in inputs.iter().enumerate() {
            model = model
                .with_input_fact(
                    ix,
                    InferenceFact::dt_shape(input.datum, input.shape.clone()),
                )
                .map_err(|e| {
                    LoadError::invalid(&self.path, format!("input {:?}: {e:#}", input.name))
                })?;
        }
        model
            .into_optimized()
            .and_then(|m| m.into_runnable())
            .map_err(|e| LoadError::invalid(&self.path, format!("cannot plan the graph: {e:#}")))
    }
}
