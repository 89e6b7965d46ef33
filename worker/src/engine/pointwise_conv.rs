//! 1 x 1 convolutions run by the worker's own kernel (`pointwise_kernel`)
//! inside a tract plan.
//!
//! tract turns a 1 x 1 convolution into an `EinSum` (the input's channels
//! times an `O x I` weight matrix, per pixel), followed by the bias `Add`,
//! often by a clip (`Max` then `Min`: ReLU6) and, at the end of a residual
//! block, by the `Add` of the block's input. [`fuse_pointwise_convs`] finds
//! each such chain in a decluttered graph and puts one [`PointwiseConv`] in
//! its place, which does the whole chain in one pass over the pixels.
//!
//! Only what the kernel computes exactly as the chain did is rewritten: f32
//! throughout, constant weights and bias, the clip's bounds constant, the
//! residual of the output's own shape, pixels laid out so that one stride
//! walks them (channel-first or channel-last, whichever tract picked for
//! each side). Anything else stays tract's.
//!
//! Where it applies: x86-64 CPUs with AVX2 and FMA, with the AVX-512 kernel
//! where the CPU has AVX-512F ([`best_kernel_here`]). On one core of an AMD
//! EPYC family 25 model 1 (AVX2) the AVX2 kernel took the default pack's
//! image encoder from 18.3 and 18.8 ms to 14.3 and 14.4 ms; on one core of
//! an Intel Xeon family 6 model 167 (AVX-512) from 18.4 and 18.5 ms to 11.0
//! and 11.2 ms with the AVX-512 kernel (14.3 and 14.9 ms with the AVX2 one)
//! (`bench`, medians of 60 to 100, alternated with `--pointwise-kernel`;
//! docs/benchmarks.md).

use std::sync::Arc;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::binary::TypedBinOp;
use tract_onnx::tract_core::ops::einsum::EinSum;

use super::pointwise_kernel::{self, Epilogue, Kernel, Layout, Weights};

/// A chain of at most this few pixels stays tract's: a tile of fewer than
/// six pixels waits on its few sums' latency.
const MIN_PIXELS: usize = 6;

/// One rewritten chain: `output = clip(input x weights + bias) (+ residual)`.
#[derive(Debug, Clone)]
pub struct PointwiseConv {
    kernel: Kernel,
    weights: Arc<Weights>,
    clip: Option<(f32, f32)>,
    pixels: usize,
    input_layout: Layout,
    output_layout: Layout,
    output_shape: TVec<usize>,
    /// Whether a second input, laid out as the output, is added last.
    residual: bool,
}

impl PartialEq for PointwiseConv {
    fn eq(&self, other: &PointwiseConv) -> bool {
        let clip = |op: &PointwiseConv| op.clip.map(|(lo, hi)| (lo.to_bits(), hi.to_bits()));
        self.kernel == other.kernel
            && self.weights == other.weights
            && clip(self) == clip(other)
            && (
                self.pixels,
                self.input_layout,
                self.output_layout,
                self.residual,
            ) == (
                other.pixels,
                other.input_layout,
                other.output_layout,
                other.residual,
            )
            && self.output_shape == other.output_shape
    }
}

impl Eq for PointwiseConv {}

impl Op for PointwiseConv {
    fn name(&self) -> StaticName {
        "PointwiseConv".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!(
            "{} pixels, {} -> {} channels, clip {:?}, residual {}",
            self.pixels,
            self.weights.inputs(),
            self.weights.outputs(),
            self.clip,
            self.residual
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for PointwiseConv {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let expected = 1 + usize::from(self.residual);
        ensure!(
            inputs.len() == expected,
            "PointwiseConv takes {expected} inputs"
        );
        let input = inputs[0].try_as_plain_ram()?;
        let residual = match self.residual {
            true => Some(inputs[1].try_as_plain_ram()?),
            false => None,
        };
        let residual = match &residual {
            Some(view) => Some(view.as_slice::<f32>()?),
            None => None,
        };
        let input = input.as_slice::<f32>()?;
        let output = run_into_tensor(
            "PointwiseConv",
            &self.output_shape,
            pointwise_kernel::Call {
                kernel: self.kernel,
                weights: &self.weights,
                epilogue: Epilogue { clip: self.clip },
                pixels: self.pixels,
                input,
                input_layout: self.input_layout,
                taps: None,
                residual,
                output_layout: self.output_layout,
            },
        )?;
        Ok(tvec!(output))
    }
}

impl PointwiseConv {
    /// The kernel, weights, clip, pixels and input layout of a convolution
    /// whose output is channel-last and which adds no residual (what
    /// `expand_depthwise` computes a row of pixels at a time); None for any
    /// other.
    pub(super) fn expansion_parts(&self) -> Option<Expansion<'_>> {
        let w = &self.weights;
        let channel_last = Layout {
            pixel: w.outputs(),
            channel: 1,
        };
        (self.output_layout == channel_last && !self.residual).then_some(Expansion {
            kernel: self.kernel,
            weights: w,
            clip: self.clip,
            pixels: self.pixels,
            input_layout: self.input_layout,
        })
    }
}

/// What [`PointwiseConv::expansion_parts`] gives.
pub(super) struct Expansion<'a> {
    pub kernel: Kernel,
    pub weights: &'a Weights,
    pub clip: Option<(f32, f32)>,
    pub pixels: usize,
    pub input_layout: Layout,
}

impl TypedOp for PointwiseConv {
    fn output_facts(&self, _inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(f32::fact(&*self.output_shape)))
    }

    as_op!();
}

/// The kernel [`fuse_pointwise_convs`] is given on this CPU unless told
/// otherwise (`verdict-worker bench --pointwise-kernel`): the widest it has.
/// None leaves the convolutions to tract.
pub fn best_kernel_here() -> Option<Kernel> {
    Kernel::ALL.into_iter().find(|k| k.runs_here())
}

/// Rewrites every chain of `model` that [`PointwiseConv`] computes, to run
/// on `kernel`, and returns how many. The replaced nodes are left
/// unconnected, for tract's optimiser to drop. The caller checks that the
/// kernel [`Kernel::runs_here`].
pub fn fuse_pointwise_convs(model: &mut TypedModel, kernel: Kernel) -> TractResult<usize> {
    let mut done = 0;
    loop {
        let found = model
            .nodes()
            .iter()
            .filter(|node| node.op_is::<EinSum>())
            .find_map(|node| chain_at(model, node, kernel).transpose())
            .transpose()?;
        let Some(chain) = found else { break };
        let mut patch = TypedModelPatch::new("pointwise conv");
        let mut inputs = tvec![patch.tap_model(model, chain.input)?];
        if let Some(residual) = chain.residual {
            inputs.push(patch.tap_model(model, residual)?);
        }
        let name = format!("{}.pointwise", model.node(chain.einsum).name);
        let wire = patch.wire_node(name, chain.op, &inputs)?[0];
        patch.shunt_outside(model, chain.output, wire)?;
        patch.apply(model)?;
        done += 1;
    }
    Ok(done)
}

/// A chain found at an `EinSum`.
struct Chain {
    einsum: usize,
    input: OutletId,
    residual: Option<OutletId>,
    /// The last outlet of the chain, which the rewrite replaces.
    output: OutletId,
    op: PointwiseConv,
}

/// The chain starting at `node`, if it is one [`PointwiseConv`] computes.
fn chain_at(model: &TypedModel, node: &TypedNode, kernel: Kernel) -> TractResult<Option<Chain>> {
    let Some(einsum) = node.op_as::<EinSum>() else {
        return Ok(None);
    };
    if einsum.q_params.is_some()
        || einsum.operating_dt != f32::datum_type()
        || node.inputs.len() != 2
    {
        return Ok(None);
    }
    let input_fact = model.outlet_fact(node.inputs[0])?;
    let weight_fact = model.outlet_fact(node.inputs[1])?;
    let output_fact = &node.outputs[0].fact;
    let (Some(in_shape), Some(out_shape), Some(weights)) = (
        input_fact.shape.as_concrete(),
        output_fact.shape.as_concrete(),
        weight_fact.konst.as_ref(),
    ) else {
        return Ok(None);
    };
    if input_fact.datum_type != f32::datum_type()
        || output_fact.datum_type != f32::datum_type()
        || weights.datum_type() != f32::datum_type()
        || weights.rank() != 2
    {
        return Ok(None);
    }
    let (ins, outs) = einsum.axes.to_strs();
    let [x_axes, w_axes] = &ins[..] else {
        return Ok(None);
    };
    let [y_axes] = &outs[..] else { return Ok(None) };
    let (x_axes, w_axes, y_axes): (Vec<char>, Vec<char>, Vec<char>) = (
        x_axes.chars().collect(),
        w_axes.chars().collect(),
        y_axes.chars().collect(),
    );
    let &[o, i] = &w_axes[..] else {
        return Ok(None);
    };
    if x_axes.len() != in_shape.len() || y_axes.len() != out_shape.len() {
        return Ok(None);
    }
    let count = |axes: &[char], a: char| axes.iter().filter(|&&c| c == a).count();
    if count(&x_axes, i) != 1
        || count(&x_axes, o) != 0
        || count(&y_axes, o) != 1
        || count(&y_axes, i) != 0
    {
        return Ok(None);
    }
    let (outputs, inputs) = (weights.shape()[0], weights.shape()[1]);
    let Some(input_layout) = layout(&x_axes, in_shape, i, &y_axes, out_shape, o) else {
        return Ok(None);
    };
    let Some(output_layout) = layout(&y_axes, out_shape, o, &y_axes, out_shape, o) else {
        return Ok(None);
    };
    let pixels: usize = y_axes
        .iter()
        .zip(out_shape)
        .filter(|(a, _)| **a != o)
        .map(|(_, d)| d)
        .product();
    let o_pos = y_axes.iter().position(|&a| a == o).unwrap_or_default();
    if in_shape[x_axes.iter().position(|&a| a == i).unwrap_or_default()] != inputs
        || out_shape[o_pos] != outputs
        || pixels < MIN_PIXELS
    {
        return Ok(None);
    }

    let mut at = OutletId::new(node.id, 0);
    let mut bias = vec![0f32; outputs];
    if let Some((next, konst, _)) = next_bin_op(model, at, "Add")? {
        let konst = konst.filter(|k| along_channels(k, out_shape.len(), o_pos, outputs));
        if let Some(konst) = konst {
            bias.copy_from_slice(konst.try_as_plain_ram()?.as_slice::<f32>()?);
            at = next;
        }
    }
    let (next, clip) = clip_after(model, at)?;
    at = next;
    let mut residual = None;
    if let Some((next, None, Some(other))) = next_bin_op(model, at, "Add")? {
        let fact = model.outlet_fact(other)?;
        if fact.datum_type == f32::datum_type() && fact.shape.as_concrete() == Some(out_shape) {
            residual = Some(other);
            at = next;
        }
    }
    let packed = weights.try_as_plain_ram()?;
    let Some(weights) = Weights::pack(packed.as_slice::<f32>()?, &bias, outputs, inputs) else {
        return Ok(None);
    };
    Ok(Some(Chain {
        einsum: node.id,
        input: node.inputs[0],
        residual,
        output: at,
        op: PointwiseConv {
            kernel,
            weights: Arc::new(weights),
            clip,
            pixels,
            input_layout,
            output_layout,
            output_shape: out_shape.into(),
            residual: residual.is_some(),
        },
    }))
}

/// The one node reading `at`, if it is a binary op named `name` and `at` is
/// no output of the model: its output, its other operand's constant value
/// (when it is one) and that operand.
#[allow(clippy::type_complexity)]
pub(super) fn next_bin_op(
    model: &TypedModel,
    at: OutletId,
    name: &str,
) -> TractResult<Option<(OutletId, Option<Arc<Tensor>>, Option<OutletId>)>> {
    let succ = model.outlet_successors(at);
    if succ.len() != 1 || model.output_outlets()?.contains(&at) {
        return Ok(None);
    }
    let next = model.node(succ[0].node);
    let Some(op) = next.op_as::<TypedBinOp>() else {
        return Ok(None);
    };
    if op.0.name() != name || op.1.is_some() || next.inputs.len() != 2 {
        return Ok(None);
    }
    let other = next.inputs[1 - succ[0].slot];
    if other == at {
        return Ok(None);
    }
    let fact = model.outlet_fact(other)?;
    if fact.datum_type != f32::datum_type() || next.outputs[0].fact.datum_type != f32::datum_type()
    {
        return Ok(None);
    }
    Ok(Some((
        OutletId::new(next.id, 0),
        fact.konst.clone(),
        Some(other),
    )))
}

/// The clip that follows `at`, if any: a `Max` by a constant (the low
/// bound), optionally then a `Min` by a constant (the high one). Returns the
/// last outlet of what it took (`at` itself when nothing).
pub(super) fn clip_after(
    model: &TypedModel,
    at: OutletId,
) -> TractResult<(OutletId, Option<(f32, f32)>)> {
    let Some((after_max, Some(lo), _)) = next_bin_op(model, at, "Max")? else {
        return Ok((at, None));
    };
    let Some(lo) = uniform_f32(&lo)? else {
        return Ok((at, None));
    };
    if let Some((after_min, Some(hi), _)) = next_bin_op(model, after_max, "Min")?
        && let Some(hi) = uniform_f32(&hi)?
    {
        return Ok((after_min, Some((lo, hi))));
    }
    Ok((after_max, Some((lo, f32::INFINITY))))
}

/// A new tensor of `shape` holding what `pointwise_kernel::run` writes for
/// `call` (`op` names the node kind in errors).
pub(super) fn run_into_tensor(
    op: &str,
    shape: &[usize],
    call: pointwise_kernel::Call<'_>,
) -> TractResult<TValue> {
    // SAFETY: the kernel covers every pixel and output channel.
    unsafe { fill_new_tensor(op, shape, |output| pointwise_kernel::run(call, output)) }
}

/// A new tensor of `shape`, its values written by `fill` (`op` names the
/// node kind in errors).
///
/// # Safety
/// `fill` writes every value of the slice it is given (or fails).
pub(super) unsafe fn fill_new_tensor(
    op: &str,
    shape: &[usize],
    fill: impl FnOnce(&mut [f32]) -> Result<(), pointwise_kernel::OutOfBounds>,
) -> TractResult<TValue> {
    // SAFETY: every value is written by `fill` before it is read (the
    // caller's promise).
    let mut output = unsafe { Tensor::uninitialized::<f32>(shape)? };
    {
        let mut view = output.try_as_plain_ram_mut()?;
        fill(view.as_slice_mut::<f32>()?)
            .map_err(|e| format_err!("{op}: {} shorter than its layout", e.0))?;
    }
    Ok(output.into_tvalue())
}

/// Whether `konst` holds one value per output channel, along the output's
/// channel axis (`o_pos` of `rank`), and nothing else.
fn along_channels(konst: &Tensor, rank: usize, o_pos: usize, outputs: usize) -> bool {
    konst.datum_type() == f32::datum_type()
        && konst.rank() == rank
        && konst
            .shape()
            .iter()
            .enumerate()
            .all(|(ax, &d)| d == if ax == o_pos { outputs } else { 1 })
}

/// The value of a constant holding one value (whatever its shape of ones).
fn uniform_f32(konst: &Tensor) -> TractResult<Option<f32>> {
    if konst.datum_type() != f32::datum_type() || konst.len() != 1 {
        return Ok(None);
    }
    Ok(Some(konst.try_as_plain_ram()?.as_slice::<f32>()?[0]))
}

/// Where pixel `p`, channel `c` lies in a tensor of `shape` with axes
/// `axes` (channel axis `channel`), pixels being numbered in the order of
/// the output's axes `pixel_axes` (all but its channel axis `pixel_skip`).
/// None unless one stride walks all the pixels, and every axis of the
/// tensor not among them or the channel is of size 1.
fn layout(
    axes: &[char],
    shape: &[usize],
    channel: char,
    pixel_axes: &[char],
    pixel_shape: &[usize],
    pixel_skip: char,
) -> Option<Layout> {
    let mut strides = vec![1usize; shape.len()];
    for ax in (0..shape.len().saturating_sub(1)).rev() {
        strides[ax] = strides[ax + 1] * shape[ax + 1];
    }
    let pos = |a: char| axes.iter().position(|&c| c == a);
    // Every axis here is the channel, a pixel axis of the output, or of size 1.
    for (ax, &a) in axes.iter().enumerate() {
        if a != channel && !pixel_axes.contains(&a) && shape[ax] != 1 {
            return None;
        }
    }
    // The output's pixel axes of size above one, in its order, must each be
    // here, of the same size, and follow one another in memory.
    let mut pixel_stride = None;
    let mut expect: Option<usize> = None;
    for (&a, &d) in pixel_axes.iter().zip(pixel_shape).rev() {
        if a == pixel_skip || d == 1 {
            continue;
        }
        let ax = pos(a)?;
        if shape[ax] != d {
            return None;
        }
        match expect {
            None => pixel_stride = Some(strides[ax]),
            Some(want) if strides[ax] == want => {}
            Some(_) => return None,
        }
        expect = Some(strides[ax] * d);
    }
    Some(Layout {
        pixel: pixel_stride.unwrap_or(1),
        channel: strides[pos(channel)?],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chars(s: &str) -> Vec<char> {
        s.chars().collect()
    }

    #[test]
    fn layouts_of_the_encoders_einsums() {
        // IHW,OI->HWO: channel-first in, channel-last out.
        let (x, y) = (chars("IHW"), chars("HWO"));
        assert_eq!(
            layout(&x, &[16, 112, 112], 'I', &y, &[112, 112, 96], 'O'),
            Some(Layout::channel_first(112 * 112))
        );
        assert_eq!(
            layout(&y, &[112, 112, 96], 'O', &y, &[112, 112, 96], 'O'),
            Some(Layout::channel_last(96))
        );
        // NHWI,OI->OHW: a batch of one in.
        let (x, y) = (chars("NHWI"), chars("OHW"));
        assert_eq!(
            layout(&x, &[1, 112, 112, 32], 'I', &y, &[16, 112, 112], 'O'),
            Some(Layout::channel_last(32))
        );
        assert_eq!(
            layout(&y, &[16, 112, 112], 'O', &y, &[16, 112, 112], 'O'),
            Some(Layout::channel_first(112 * 112))
        );
        // Pixels in another order than the output's: no single stride.
        let x = chars("WHI");
        assert_eq!(
            layout(&x, &[112, 112, 32], 'I', &y, &[16, 112, 112], 'O'),
            None
        );
        // A batch of two is not pixels of one image.
        assert_eq!(
            layout(&chars("NHWI"), &[2, 4, 4, 8], 'I', &y, &[16, 4, 4], 'O'),
            None
        );
    }
}
