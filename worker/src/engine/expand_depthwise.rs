//! A mobile network's expansion (a 1 x 1 convolution to many channels) and
//! the depthwise convolution after it, computed a few rows at a time so that
//! the expanded image never exists whole.
//!
//! The default pack's first expansion writes 112 x 112 x 96 values (4.8 MB)
//! that the depthwise convolution after it reads back at once: more than a
//! core's second-level cache holds, so both ops wait on the third level
//! rather than compute. [`ExpandDepthwise`] keeps only the expanded rows that
//! one output row of the depthwise convolution reads (3 or 5, a ring): for
//! each output row it expands the input rows it does not hold yet
//! (`pointwise_kernel`, a row of pixels a call) and then computes the row
//! (`depthwise_kernel::run_row`). The arithmetic is the two ops', value for
//! value, so the outputs have the same bits.
//!
//! [`fuse_expand_depthwise`] rewrites a [`PointwiseConv`] followed only by a
//! [`DepthwiseConv`] (the expansion's output channel-last, its input laid
//! out as it is: in the default pack the projection before it writes
//! channel-first), where the expanded image is at least
//! [`MIN_EXPANDED_FLOATS`]: smaller ones stay in the cache anyway. In the
//! default pack that is the first three pairs (112 x 112 x 96 and twice
//! 56 x 56 x 144). On one core of an AMD EPYC family 25 model 17 their
//! expansions and depthwise convolutions took 1.26 to 1.50 ms as pairs
//! against 1.89 to 2.06 ms apart (single profiled runs, alternated four
//! times), and the encoder 8.85-9.56 ms against 9.52-9.94 (AVX-512, `bench`,
//! 80 runs, alternated four times; AVX2: 10.07-10.35 against 10.69-10.77).
//! Fusing all 15 pairs instead gave 9.33-9.49 ms: no better.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;

use super::depthwise_conv::DepthwiseConv;
use super::depthwise_kernel::{self, Geometry, RowCall, Weights as DepthwiseWeights};
use super::pointwise_conv::{Expansion, PointwiseConv, fill_new_tensor};
use super::pointwise_kernel::{self, Epilogue, Kernel, Layout, OutOfBounds};

/// Expanded images smaller than this (in floats: 1 MB) are left to the two
/// ops.
pub const MIN_EXPANDED_FLOATS: usize = 256 * 1024;

/// One rewritten pair: `depthwise(expand(input))`, channel-last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpandDepthwise {
    expand: PointwiseConv,
    depthwise: DepthwiseConv,
}

impl Op for ExpandDepthwise {
    fn name(&self) -> StaticName {
        "ExpandDepthwise".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        let mut info = self.expand.info()?;
        info.extend(self.depthwise.info()?);
        Ok(info)
    }

    op_as_typed_op!();
}

impl EvalOp for ExpandDepthwise {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        ensure!(inputs.len() == 1, "ExpandDepthwise takes one input");
        let input = inputs[0].try_as_plain_ram()?;
        let input = input.as_slice::<f32>()?;
        let Some(expansion) = self.expand.expansion_parts() else {
            bail!("ExpandDepthwise: an expansion that is not channel-last");
        };
        let dw = &self.depthwise;
        let g = dw.geometry;
        let depthwise = Depthwise {
            kernel: dw.kernel,
            geometry: g,
            weights: &dw.weights,
            clip: dw.clip,
        };
        ensure!(
            expansion.weights.outputs() == g.channels
                && expansion.pixels == g.height * g.width
                && input.len() == g.height * g.width * expansion.weights.inputs(),
            "ExpandDepthwise: input of another shape"
        );
        let fill = |output: &mut [f32]| run(&expansion, &depthwise, input, output);
        // SAFETY: every output row is written by `run_row` (or the call fails).
        let output = unsafe { fill_new_tensor("ExpandDepthwise", &dw.output_shape, fill)? };
        Ok(tvec!(output))
    }
}

/// The depthwise half of a pair: `depthwise_kernel`'s operands but the
/// input.
struct Depthwise<'a> {
    kernel: Kernel,
    geometry: Geometry,
    weights: &'a DepthwiseWeights,
    clip: Option<(f32, f32)>,
}

/// `depthwise(expand(input))` into `output` (`out[0] x out[1] x channels`),
/// an output row at a time: the input rows a row reads are expanded into a
/// ring of `kernel` rows first, those it already holds excepted.
fn run(
    expansion: &Expansion<'_>,
    depthwise: &Depthwise<'_>,
    input: &[f32],
    output: &mut [f32],
) -> Result<(), OutOfBounds> {
    let g = depthwise.geometry;
    let c_exp = expansion.weights.outputs();
    // Input pixel `iy * width + ix` lies where the expansion's layout says.
    let input_layout = expansion.input_layout;
    let (line, out_line) = (g.width * c_exp, g.out[1] * g.channels);
    let mut ring = vec![0f32; g.kernel * line];
    let mut held = [usize::MAX; 5];
    for oy in 0..g.out[0] {
        for ky in 0..g.kernel {
            let Some(iy) = g.input_row(oy, ky) else {
                continue;
            };
            let slot = iy % g.kernel;
            if held[slot] == iy {
                continue;
            }
            let row = input
                .get(iy * g.width * input_layout.pixel..)
                .unwrap_or_default();
            let call = expansion_call(expansion, g.width, row);
            pointwise_kernel::run(call, &mut ring[slot * line..][..line])?;
            held[slot] = iy;
        }
        let mut lines = [None; 5];
        for (ky, held_line) in lines.iter_mut().enumerate().take(g.kernel) {
            *held_line = g
                .input_row(oy, ky)
                .map(|iy| &ring[(iy % g.kernel) * line..][..line]);
        }
        let call = RowCall {
            kernel: depthwise.kernel,
            geometry: g,
            weights: depthwise.weights,
            clip: depthwise.clip,
            lines: &lines[..g.kernel],
        };
        let row = output.get_mut(oy * out_line..).unwrap_or_default();
        depthwise_kernel::run_row(call, row)?;
    }
    Ok(())
}

/// The expansion of `pixels` pixels of `input` (laid out as the
/// expansion's input), channel-last out.
fn expansion_call<'a>(
    expansion: &Expansion<'a>,
    pixels: usize,
    input: &'a [f32],
) -> pointwise_kernel::Call<'a> {
    pointwise_kernel::Call {
        kernel: expansion.kernel,
        weights: expansion.weights,
        epilogue: Epilogue {
            clip: expansion.clip,
        },
        pixels,
        input,
        input_layout: expansion.input_layout,
        taps: None,
        residual: None,
        output_layout: Layout {
            pixel: expansion.weights.outputs(),
            channel: 1,
        },
    }
}

impl TypedOp for ExpandDepthwise {
    fn output_facts(&self, _inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(f32::fact(&*self.depthwise.output_shape)))
    }

    as_op!();
}

/// Rewrites every [`PointwiseConv`] whose only reader is a
/// [`DepthwiseConv`] into one [`ExpandDepthwise`], where both are
/// channel-last out and the expanded image is large enough to pay, and returns
/// how many.
pub fn fuse_expand_depthwise(model: &mut TypedModel) -> TractResult<usize> {
    let mut done = 0;
    loop {
        let found = model.nodes().iter().find_map(|node| pair_at(model, node));
        let Some((input, output, op)) = found else {
            break;
        };
        let mut patch = TypedModelPatch::new("expand depthwise");
        let tap = patch.tap_model(model, input)?;
        let name = format!("{}.expanded", model.node(output.node).name);
        let wire = patch.wire_node(name, op, &[tap])?[0];
        patch.shunt_outside(model, output, wire)?;
        patch.apply(model)?;
        done += 1;
    }
    Ok(done)
}

/// The depthwise convolution at `node` and the expansion before it, if
/// [`ExpandDepthwise`] computes them: the expansion's input, the depthwise
/// convolution's output, the op.
fn pair_at(model: &TypedModel, node: &TypedNode) -> Option<(OutletId, OutletId, ExpandDepthwise)> {
    let depthwise = node.op_as::<DepthwiseConv>()?;
    let [from] = node.inputs[..] else {
        return None;
    };
    let expand_node = model.node(from.node);
    let expand = expand_node.op_as::<PointwiseConv>()?;
    let only_reader = model.outlet_successors(from).len() == 1
        && !model.output_outlets().ok()?.contains(&from)
        && expand_node.inputs.len() == 1;
    let expansion = expand.expansion_parts()?;
    let g = depthwise.geometry;
    let expanded = g.height * g.width * g.channels;
    if !only_reader
        || expansion.pixels != g.height * g.width
        || expansion.weights.outputs() != g.channels
        || expanded < MIN_EXPANDED_FLOATS
    {
        return None;
    }
    let op = ExpandDepthwise {
        expand: expand.clone(),
        depthwise: depthwise.clone(),
    };
    Some((expand_node.inputs[0], OutletId::new(node.id, 0), op))
}

#[cfg(test)]
mod tests {
    use super::super::pointwise_kernel::{Weights, test_values as values};
    use super::*;

    #[test]
    fn rows_through_the_ring_give_the_bits_of_the_two_ops_in_turn() {
        let kernels: Vec<Kernel> = Kernel::ALL.into_iter().filter(|k| k.runs_here()).collect();
        eprintln!("kernels this CPU runs, checked here: {kernels:?}");
        // (height, width, channels in, channels expanded, kernel, stride, pad
        // before, pad after, input channel-first): the default pack's first
        // pair's kind (stride 2, padding after only, input channel-first),
        // stride 1 with padding on both sides, a 5 x 5 kernel, an image of
        // fewer rows than the kernel.
        let cases = [
            (14, 14, 16, 96, 3, 2, 0, 1, true),
            (9, 11, 8, 32, 3, 1, 1, 1, false),
            (12, 10, 24, 48, 5, 2, 1, 2, true),
            (11, 9, 16, 64, 5, 1, 2, 2, false),
            (2, 5, 4, 16, 5, 1, 2, 2, true),
        ];
        for kernel in kernels {
            for (i, &(height, width, c_in, c_exp, k, stride, before, after, first)) in
                cases.iter().enumerate()
            {
                let g = Geometry::padded([height, width, c_exp], k, stride, [before, after]);
                if !g.runs_on(kernel) {
                    continue;
                }
                let pixels = height * width;
                let x = values(pixels * c_in, i as u32);
                let w = values(c_exp * c_in, 10 + i as u32);
                let b = values(c_exp, 20 + i as u32);
                let weights = Weights::pack(&w, &b, c_exp, c_in).unwrap();
                let input_layout = match first {
                    true => Layout {
                        pixel: 1,
                        channel: pixels,
                    },
                    false => Layout {
                        pixel: c_in,
                        channel: 1,
                    },
                };
                let expansion = Expansion {
                    kernel,
                    weights: &weights,
                    clip: Some((0.0, 6.0)),
                    pixels,
                    input_layout,
                };
                let dw = DepthwiseWeights::pack(
                    &values(c_exp * k * k, 30 + i as u32),
                    &values(c_exp, 40 + i as u32),
                    c_exp,
                    k,
                )
                .unwrap();
                let depthwise = Depthwise {
                    kernel,
                    geometry: g,
                    weights: &dw,
                    clip: Some((0.0, 0.5)),
                };
                let mut fused = vec![f32::NAN; g.out[0] * g.out[1] * c_exp];
                run(&expansion, &depthwise, &x, &mut fused).unwrap();

                let mut expanded = vec![f32::NAN; pixels * c_exp];
                let call = expansion_call(&expansion, pixels, &x);
                pointwise_kernel::run(call, &mut expanded).unwrap();
                let mut apart = vec![f32::NAN; fused.len()];
                let call = depthwise_kernel::Call {
                    kernel,
                    geometry: g,
                    weights: &dw,
                    clip: depthwise.clip,
                    input: &expanded,
                };
                depthwise_kernel::run(call, &mut apart).unwrap();
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert!(
                    bits(&fused) == bits(&apart),
                    "case {i}, {kernel:?}: outputs differ"
                );
                assert!(
                    fused.iter().all(|v| v.is_finite()),
                    "case {i}: a value unwritten"
                );
            }
        }
    }
}
