//! A channel-first convolution with a kernel larger than 1 x 1 (the image
//! encoder's stem: 3 x 3, stride 2, 3 channels in, 32 out) run as the
//! worker's pointwise kernel over a copy of each output pixel's input patch.
//!
//! tract plans such a convolution as its lazy im2col feeding its matrix
//! product, channel-first, and the graph then clips it (`Max`, `Min`) and
//! moves its channels last for the depthwise convolution after it. On one
//! core of an AMD EPYC family 25 model 1 those took about 1.4, 0.1 and
//! 0.4 ms of the default pack's encoder. [`fuse_patch_convs`] replaces the
//! convolution, its clip and that move with one [`PatchConv`]: it copies
//! every output pixel's patch (27 values for the stem) into one row of a
//! matrix, and `pointwise_kernel` multiplies the rows by the weights, adds
//! the bias, clips, and stores each pixel's channels already channel-last.
//!
//! Only the plain case is rewritten: f32, one group, one image, no
//! dilation, constant weights and bias, a concrete input shape.

use std::ops::Range;
use std::sync::Arc;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::change_axes::AxisOp;
use tract_onnx::tract_core::ops::cnn::{Conv, KernelFormat};
use tract_onnx::tract_core::ops::nn::DataFormat;

use super::pointwise_conv::{clip_after, fill_new_tensor, uniform_f32};
use super::pointwise_kernel::{self, Epilogue, Kernel, Layout, Weights};

/// The geometry of one rewritten convolution (all of one image).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Geometry {
    channels: usize,
    height: usize,
    width: usize,
    kernel: [usize; 2],
    stride: [usize; 2],
    /// Rows and columns of zeros before the image.
    pad: [usize; 2],
    out: [usize; 2],
}

impl Geometry {
    fn patch(&self) -> usize {
        self.channels * self.kernel[0] * self.kernel[1]
    }

    fn pixels(&self) -> usize {
        self.out[0] * self.out[1]
    }

    /// Every output pixel's patch, one row each, in the weights' order
    /// (channel, kernel row, kernel column); zero outside the image.
    #[cfg(test)]
    fn patches(&self, image: &[f32]) -> Vec<f32> {
        let mut rows = Vec::new();
        self.patches_into(image, 0..self.out[0], &mut rows);
        rows
    }

    /// The patches of the output pixels on output rows `out_rows`, as
    /// [`Geometry::patches`] lays them out, into `rows` (resized to hold them).
    /// One image row's stretch of a patch (`kw` values) is copied for every
    /// output pixel of a row in turn, so the row is read in order.
    fn patches_into(&self, image: &[f32], out_rows: Range<usize>, rows: &mut Vec<f32>) {
        let (k, [kh, kw], ow) = (self.patch(), self.kernel, self.out[1]);
        let plane_len = self.height * self.width;
        let (sx, px) = (self.stride[1], self.pad[1]);
        // The output columns whose `kw` taps all lie inside the image.
        let first = px.div_ceil(sx).min(ow);
        let end = match (self.width + px).checked_sub(kw) {
            Some(last_x0) => (last_x0 / sx + 1).clamp(first, ow),
            None => first,
        };
        rows.clear();
        rows.resize(out_rows.len() * ow * k, 0.0);
        for (i, oy) in out_rows.enumerate() {
            let band = &mut rows[i * ow * k..][..ow * k];
            for c in 0..self.channels {
                let plane = &image[c * plane_len..][..plane_len];
                for ky in 0..kh {
                    let y = (oy * self.stride[0] + ky).checked_sub(self.pad[0]);
                    let Some(y) = y.filter(|&y| y < self.height) else {
                        continue;
                    };
                    let line = &plane[y * self.width..][..self.width];
                    let at = (c * kh + ky) * kw;
                    for ox in first..end {
                        let x0 = ox * sx - px;
                        band[ox * k + at..][..kw].copy_from_slice(&line[x0..][..kw]);
                    }
                    for ox in (0..first).chain(end..ow) {
                        for kx in 0..kw {
                            let x = (ox * sx + kx).checked_sub(px);
                            if let Some(&v) = x.and_then(|x| line.get(x)) {
                                band[ox * k + at + kx] = v;
                            }
                        }
                    }
                }
            }
        }
    }

    /// How many output rows one band's patches take, so that they stay in
    /// the first-level cache while the kernel reads them.
    fn band_rows(&self) -> usize {
        (BAND_FLOATS / (self.out[1] * self.patch()).max(1)).max(1)
    }
}

/// Values one band of patches holds at most (in floats): 32 KiB.
const BAND_FLOATS: usize = 8 * 1024;

/// Whether the rewrite pays here: an image's first convolution (a few
/// channels in, so the copied patches stay short) with whole panels of
/// output channels, over enough pixels. Measured only there: the stem (3 in,
/// 32 out, 12,544 pixels). The face detector's P-Net, with 10 channels out
/// of its first convolution and 16 into its last 3 x 3, went from 1.1 to
/// 2.4 ms a run when all of its convolutions were rewritten, so those stay
/// tract's.
fn worth_it(geometry: &Geometry, outputs: usize) -> bool {
    geometry.channels <= 4 && outputs.is_multiple_of(16) && geometry.pixels() >= 1024
}

/// One rewritten convolution: `output = clip(patches x weights + bias)`,
/// channel-last or channel-first.
#[derive(Debug, Clone)]
pub struct PatchConv {
    kernel: Kernel,
    weights: Arc<Weights>,
    clip: Option<(f32, f32)>,
    geometry: Geometry,
    output_layout: Layout,
    output_shape: TVec<usize>,
}

impl PartialEq for PatchConv {
    fn eq(&self, other: &PatchConv) -> bool {
        let clip = |op: &PatchConv| op.clip.map(|(lo, hi)| (lo.to_bits(), hi.to_bits()));
        self.kernel == other.kernel
            && self.weights == other.weights
            && clip(self) == clip(other)
            && self.geometry == other.geometry
            && self.output_layout == other.output_layout
            && self.output_shape == other.output_shape
    }
}

impl Eq for PatchConv {}

impl Op for PatchConv {
    fn name(&self) -> StaticName {
        "PatchConv".into()
    }

    op_as_typed_op!();
}

impl EvalOp for PatchConv {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        ensure!(inputs.len() == 1, "PatchConv takes one input");
        let image = inputs[0].try_as_plain_ram()?;
        let image = image.as_slice::<f32>()?;
        let g = &self.geometry;
        ensure!(
            image.len() == g.channels * g.height * g.width,
            "PatchConv: input of another shape"
        );
        // The patches are copied and multiplied a band of output rows at a
        // time, so that they are read back from the first-level cache.
        let fill = |output: &mut [f32]| {
            let mut patches = Vec::new();
            let band = g.band_rows();
            for first in (0..g.out[0]).step_by(band) {
                let out_rows = first..(first + band).min(g.out[0]);
                let pixels = out_rows.len() * g.out[1];
                let from = first * g.out[1] * self.output_layout.pixel;
                g.patches_into(image, out_rows, &mut patches);
                let call = pointwise_kernel::Call {
                    kernel: self.kernel,
                    weights: &self.weights,
                    epilogue: Epilogue { clip: self.clip },
                    pixels,
                    input: &patches,
                    input_layout: Layout {
                        pixel: g.patch(),
                        channel: 1,
                    },
                    residual: None,
                    output_layout: self.output_layout,
                };
                pointwise_kernel::run(call, output.get_mut(from..).unwrap_or_default())?;
            }
            Ok(())
        };
        // SAFETY: the bands cover every output row, and the kernel every
        // pixel and output channel of a band.
        let output = unsafe { fill_new_tensor("PatchConv", &self.output_shape, fill)? };
        Ok(tvec!(output))
    }
}

impl TypedOp for PatchConv {
    fn output_facts(&self, _inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(f32::fact(&*self.output_shape)))
    }

    as_op!();
}

/// Rewrites every convolution of `model` that [`PatchConv`] computes, with
/// the clip and the move to channel-last that follow it where they do, and
/// returns how many, to run on `kernel`. The caller checks that the kernel
/// [`Kernel::runs_here`].
pub fn fuse_patch_convs(model: &mut TypedModel, kernel: Kernel) -> TractResult<usize> {
    let mut done = 0;
    loop {
        let found = model
            .nodes()
            .iter()
            .filter(|node| node.op_is::<Conv>())
            .find_map(|node| chain_at(model, node, kernel).transpose())
            .transpose()?;
        let Some((input, output, op)) = found else {
            break;
        };
        let mut patch = TypedModelPatch::new("patch conv");
        let tap = patch.tap_model(model, input)?;
        let name = format!("{}.patches", model.node(output.node).name);
        let wire = patch.wire_node(name, op, &[tap])?[0];
        patch.shunt_outside(model, output, wire)?;
        patch.apply(model)?;
        done += 1;
    }
    Ok(done)
}

/// The convolution at `node` and what follows it, if [`PatchConv`] computes
/// them: its input, the last outlet replaced, the op.
fn chain_at(
    model: &TypedModel,
    node: &TypedNode,
    kernel: Kernel,
) -> TractResult<Option<(OutletId, OutletId, PatchConv)>> {
    let Some(conv) = node.op_as::<Conv>() else {
        return Ok(None);
    };
    let spec = &conv.pool_spec;
    if conv.group != 1
        || conv.q_params.is_some()
        || conv.kernel_fmt != KernelFormat::OIHW
        || spec.data_format != DataFormat::NCHW
        || spec.kernel_shape.len() != 2
        || spec.dilations().iter().any(|&d| d != 1)
        || node.inputs.len() != 3
    {
        return Ok(None);
    }
    let x = model.outlet_fact(node.inputs[0])?;
    let w = model.outlet_fact(node.inputs[1])?;
    let b = model.outlet_fact(node.inputs[2])?;
    let y = &node.outputs[0].fact;
    let (Some(in_shape), Some(out_shape), Some(weights), Some(bias)) = (
        x.shape.as_concrete(),
        y.shape.as_concrete(),
        w.konst.as_ref(),
        b.konst.as_ref(),
    ) else {
        return Ok(None);
    };
    let f32_dt = f32::datum_type();
    if x.datum_type != f32_dt || y.datum_type != f32_dt || weights.datum_type() != f32_dt {
        return Ok(None);
    }
    let (&[1, channels, height, width], &[1, outputs, oh, ow]) = (in_shape, out_shape) else {
        return Ok(None);
    };
    let [kh, kw] = [spec.kernel_shape[0], spec.kernel_shape[1]];
    if weights.shape() != [outputs, channels, kh, kw] {
        return Ok(None);
    }
    let bias: Vec<f32> = match (bias.datum_type() == f32_dt, bias.len()) {
        (true, n) if n == outputs => bias.try_as_plain_ram()?.as_slice::<f32>()?.to_vec(),
        (true, 1) => vec![uniform_f32(bias)?.unwrap_or_default(); outputs],
        _ => return Ok(None),
    };
    let padding = spec.computed_padding(&[height, width]);
    let strides = spec.strides();
    let geometry = Geometry {
        channels,
        height,
        width,
        kernel: [kh, kw],
        stride: [strides[0], strides[1]],
        pad: [padding[0].pad_before, padding[1].pad_before],
        out: [oh, ow],
    };
    if padding[0].convoluted != oh || padding[1].convoluted != ow || !worth_it(&geometry, outputs) {
        return Ok(None);
    }

    let (mut at, clip) = clip_after(model, OutletId::new(node.id, 0))?;
    let mut output_layout = Layout {
        pixel: 1,
        channel: oh * ow,
    };
    let mut output_shape: TVec<usize> = out_shape.into();
    let succ = model.outlet_successors(at);
    if succ.len() == 1 && !model.output_outlets()?.contains(&at) {
        let next = model.node(succ[0].node);
        if next.op_as::<AxisOp>() == Some(&AxisOp::Move(1, 3)) {
            at = OutletId::new(next.id, 0);
            output_layout = Layout {
                pixel: outputs,
                channel: 1,
            };
            output_shape = tvec![1, oh, ow, outputs];
        }
    }
    let packed = weights.try_as_plain_ram()?;
    let Some(weights) = Weights::pack(packed.as_slice::<f32>()?, &bias, outputs, geometry.patch())
    else {
        return Ok(None);
    };
    let op = PatchConv {
        kernel,
        weights: Arc::new(weights),
        clip,
        geometry,
        output_layout,
        output_shape,
    };
    Ok(Some((node.inputs[0], at, op)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patches_hold_the_image_and_zeros_past_its_edges() {
        // One channel of 3 x 3 (values 1..9), a 3 x 3 kernel, stride 2,
        // no padding before and one after: 2 x 2 outputs, as the stem.
        let g = Geometry {
            channels: 1,
            height: 3,
            width: 3,
            kernel: [3, 3],
            stride: [2, 2],
            pad: [0, 0],
            out: [2, 2],
        };
        let image: Vec<f32> = (1..=9).map(|v| v as f32).collect();
        let rows = g.patches(&image);
        assert_eq!(&rows[..9], &[1., 2., 3., 4., 5., 6., 7., 8., 9.]);
        // Output (0, 1): columns 2, 3, 4 of rows 0, 1, 2; only column 2 exists.
        assert_eq!(&rows[9..18], &[3., 0., 0., 6., 0., 0., 9., 0., 0.]);
        // Output (1, 1): the bottom-right corner only.
        assert_eq!(&rows[27..36], &[9., 0., 0., 0., 0., 0., 0., 0., 0.]);
        // With one row and column of padding before, (0, 0) starts outside.
        let g = Geometry { pad: [1, 1], ..g };
        let all = g.patches(&image);
        assert_eq!(&all[..9], &[0., 0., 0., 0., 1., 2., 0., 4., 5.]);
        // A band of output rows holds what the whole image's patches hold there.
        let mut band = vec![f32::NAN; 3];
        g.patches_into(&image, 1..2, &mut band);
        assert_eq!(band, &all[18..36]);
    }
}
