//! Depthwise convolutions run by the worker's own kernel
//! (`depthwise_kernel`) inside a tract plan, with the clip that follows
//! them.
//!
//! tract plans a depthwise convolution channel-last as its `DepthWise` op
//! (with the worker's tap loop, `depthwise_x86`), and the ReLU6 after it as
//! a separate `Max` and `Min` pass over the output. [`fuse_depthwise_convs`]
//! puts one [`DepthwiseConv`] in place of the convolution and its clip
//! before the graph is moved channel-last. In the default pack's decluttered
//! graph the first depthwise convolution is still channel-first (`NCHW`):
//! it gets the moves to channel-last and back that tract's own `conv_nhwc`
//! transform wires around a convolution (they cancel out against their
//! neighbours' when the graph is decluttered again); the other 15 are
//! already channel-last (`HWC`) by then.
//!
//! On one core of an AMD EPYC family 25 model 17 the default pack's image
//! encoder went from 10.26-10.48 ms to 9.48-9.91 ms with the AVX-512
//! kernels, and from 10.47-10.87 to 10.11-10.55 ms with the AVX2 ones
//! (`bench --pointwise-kernel`, 80 runs, alternated four times); alternated
//! three times with onnxruntime later (the host ran faster then): 8.89, 9.04
//! and 9.78 ms against its 8.76, 8.65 and 8.98. `calibrate --evaluate`
//! printed the same reports on all four dev sets.
//!
//! Only the plain case is rewritten: f32, one image, a square 3 x 3 or
//! 5 x 5 kernel, stride 1 or 2, no dilation, constant weights and bias,
//! whole vectors of channels ([`Geometry::runs_on`]). Anything else stays
//! tract's.

use std::sync::Arc;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::change_axes::AxisOp;
use tract_onnx::tract_core::ops::cnn::Conv;
use tract_onnx::tract_core::ops::nn::DataFormat;

use super::conv_operands::conv_operands;
use super::depthwise_kernel::{self, Geometry, Weights};
use super::pointwise_conv::{clip_after, fill_new_tensor};
use super::pointwise_kernel::Kernel;

/// One rewritten convolution: `output = clip(depthwise(input) + bias)`,
/// channel-last in and out (`1 x height x width x channels`).
#[derive(Debug, Clone)]
pub struct DepthwiseConv {
    pub(super) kernel: Kernel,
    pub(super) geometry: Geometry,
    pub(super) weights: Arc<Weights>,
    pub(super) clip: Option<(f32, f32)>,
    /// `out[0] x out[1] x channels`, after a batch axis of 1 where the
    /// input has one.
    pub(super) output_shape: TVec<usize>,
}

impl PartialEq for DepthwiseConv {
    fn eq(&self, other: &DepthwiseConv) -> bool {
        let bits = |op: &DepthwiseConv| -> (Vec<u32>, Option<(u32, u32)>) {
            let w = &op.weights;
            let values = w.taps.iter().chain(&w.bias).map(|v| v.to_bits()).collect();
            (values, op.clip.map(|(lo, hi)| (lo.to_bits(), hi.to_bits())))
        };
        self.kernel == other.kernel
            && self.geometry == other.geometry
            && self.output_shape == other.output_shape
            && bits(self) == bits(other)
    }
}

impl Eq for DepthwiseConv {}

impl Op for DepthwiseConv {
    fn name(&self) -> StaticName {
        "DepthwiseConv".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        let g = &self.geometry;
        Ok(vec![format!(
            "{}x{}x{} in, {k}x{k} stride {}, clip {:?}",
            g.height,
            g.width,
            g.channels,
            g.stride,
            self.clip,
            k = g.kernel,
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for DepthwiseConv {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        ensure!(inputs.len() == 1, "DepthwiseConv takes one input");
        let input = inputs[0].try_as_plain_ram()?;
        let input = input.as_slice::<f32>()?;
        let call = depthwise_kernel::Call {
            kernel: self.kernel,
            geometry: self.geometry,
            weights: &self.weights,
            clip: self.clip,
            input,
        };
        // SAFETY: the kernel writes every output value (or fails).
        let output = unsafe {
            fill_new_tensor("DepthwiseConv", &self.output_shape, |output| {
                depthwise_kernel::run(call, output)
            })?
        };
        Ok(tvec!(output))
    }
}

impl TypedOp for DepthwiseConv {
    fn output_facts(&self, _inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(f32::fact(&*self.output_shape)))
    }

    as_op!();
}

/// Rewrites every depthwise convolution of `model` that [`DepthwiseConv`]
/// computes (channel-first or channel-last, as the decluttered graph has
/// it), with the clip after it where there is one, and returns how many, to
/// run on `kernel`. Run before the graph is moved channel-last. The caller checks that the kernel
/// [`Kernel::runs_here`].
pub fn fuse_depthwise_convs(model: &mut TypedModel, kernel: Kernel) -> TractResult<usize> {
    let mut done = 0;
    loop {
        let found = model
            .nodes()
            .iter()
            .filter(|node| node.op_is::<Conv>())
            .find_map(|node| chain_at(model, node, kernel).transpose())
            .transpose()?;
        let Some(chain) = found else {
            break;
        };
        let mut patch = TypedModelPatch::new("depthwise conv");
        let mut wire = tvec![patch.tap_model(model, chain.input)?];
        let base = format!("{}.depthwise", model.node(chain.output.node).name);
        if let Some((c_axis, last)) = chain.moved {
            let name = format!("{base}.nhwc_in");
            wire = patch.wire_node(name, AxisOp::Move(c_axis, last), &wire)?;
        }
        wire = patch.wire_node(base.clone(), chain.op, &wire)?;
        if let Some((c_axis, last)) = chain.moved {
            let name = format!("{base}.nhwc_out");
            wire = patch.wire_node(name, AxisOp::Move(last, c_axis), &wire)?;
        }
        patch.shunt_outside(model, chain.output, wire[0])?;
        patch.apply(model)?;
        done += 1;
    }
    Ok(done)
}

/// A depthwise convolution and its clip, as [`DepthwiseConv`] computes them.
struct Chain {
    input: OutletId,
    /// The last outlet of the chain, which the rewrite replaces.
    output: OutletId,
    /// For a channel-first convolution: its channel axis and last axis,
    /// between which the input and output are moved.
    moved: Option<(usize, usize)>,
    op: DepthwiseConv,
}

/// The depthwise convolution at `node` and the clip after it, if
/// [`DepthwiseConv`] computes them.
fn chain_at(model: &TypedModel, node: &TypedNode, kernel: Kernel) -> TractResult<Option<Chain>> {
    let Some(ops) = conv_operands(model, node)? else {
        return Ok(None);
    };
    // [height, width, channels] of the input and output, and the axes moved.
    let (in_c, out_c, moved) = match (
        ops.conv.pool_spec.data_format,
        ops.input_shape,
        ops.output_shape,
    ) {
        (DataFormat::NCHW, &[1, c, _, _], &[1, oc, _, _]) => (c, oc, Some((1, 3))),
        (DataFormat::CHW, &[c, _, _], &[oc, _, _]) => (c, oc, Some((0, 2))),
        (DataFormat::NHWC, &[1, _, _, c], &[1, _, _, oc])
        | (DataFormat::HWC, &[_, _, c], &[_, _, oc]) => (c, oc, None),
        _ => return Ok(None),
    };
    let [k, kw] = ops.kernel;
    let channels = in_c;
    if ops.conv.group != channels
        || out_c != channels
        || k != kw
        || ops.stride[0] != ops.stride[1]
        || ops.weights_shape[..] != [channels, 1, k, k]
    {
        return Ok(None);
    }
    let [height, width] = ops.input_hw;
    let [oh, ow] = ops.output_hw;
    let geometry = Geometry {
        height,
        width,
        channels,
        kernel: k,
        stride: ops.stride[0],
        pad: ops.pad,
        out: [oh, ow],
    };
    if !geometry.runs_on(kernel) {
        return Ok(None);
    }
    let (output, clip) = clip_after(model, OutletId::new(node.id, 0))?;
    let Some(weights) = Weights::pack(&ops.weights, &ops.bias, channels, k) else {
        return Ok(None);
    };
    let batch: &[usize] = if ops.input_shape.len() == 4 {
        &[1]
    } else {
        &[]
    };
    let output_shape = batch.iter().copied().chain([oh, ow, channels]).collect();
    Ok(Some(Chain {
        input: node.inputs[0],
        output,
        moved,
        op: DepthwiseConv {
            kernel,
            geometry,
            weights: Arc::new(weights),
            clip,
            output_shape,
        },
    }))
}
