//! A channel-first convolution with a kernel larger than 1 x 1 (the image
//! encoder's stem: 3 x 3, stride 2, 3 channels in, 32 out) run by the
//! worker's pointwise kernel, each output pixel's patch its input values.
//!
//! tract plans such a convolution as its lazy im2col feeding its matrix
//! product, channel-first, and the graph then clips it (`Max`, `Min`) and
//! moves its channels last for the depthwise convolution after it. On one
//! core of an AMD EPYC family 25 model 1 those took about 1.4, 0.1 and
//! 0.4 ms of the default pack's encoder. [`fuse_patch_convs`] replaces the
//! convolution, its clip and that move with one [`PatchConv`]:
//! `pointwise_kernel` multiplies every pixel's patch (27 values for the
//! stem) by the weights, adds the bias, clips, and stores each pixel's
//! channels already channel-last.
//!
//! A pixel whose patch lies inside the image is read where it lies: the
//! kernel takes one offset per patch value (its taps) and a pixel step of
//! the stride, an output row per call. Only the border's patches (the
//! stem's last row and column, which reach into the padding) are copied
//! first, with zeros past the edges. The outputs have the same bits as when
//! every patch was copied (a unit test), and on one core of an AMD EPYC
//! family 25 model 17 the encoder's median went from 10.56-11.11 ms to
//! 10.26-10.48 ms (`bench`, 80 runs, alternated four times); the stem alone
//! (`bench --profile`, single runs) from about 0.7 ms to 0.3-0.5 ms with
//! the AVX-512 kernel and from 0.63 to 0.32 ms with the AVX2 one
//! (onnxruntime's stem: 0.33 ms).
//!
//! Only the plain case is rewritten: f32, one group, one image, no
//! dilation, constant weights and bias, a concrete input shape.

use std::ops::Range;
use std::sync::Arc;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::change_axes::AxisOp;
use tract_onnx::tract_core::ops::cnn::Conv;
use tract_onnx::tract_core::ops::nn::DataFormat;

use super::conv_operands::conv_operands;
use super::pointwise_conv::{clip_after, fill_new_tensor};
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
        let k = self.patch();
        let mut rows = vec![f32::NAN; self.pixels() * k];
        for (p, row) in rows.chunks_exact_mut(k).enumerate() {
            self.patch_into(image, p / self.out[1], p % self.out[1], row);
        }
        rows
    }

    /// Output pixel (`oy`, `ox`)'s patch, in the weights' order, into `row`
    /// (`patch()` values); zero outside the image.
    fn patch_into(&self, image: &[f32], oy: usize, ox: usize, row: &mut [f32]) {
        let [kh, kw] = self.kernel;
        let plane_len = self.height * self.width;
        let mut values = row.iter_mut();
        for c in 0..self.channels {
            for ky in 0..kh {
                let y = (oy * self.stride[0] + ky)
                    .checked_sub(self.pad[0])
                    .filter(|&y| y < self.height);
                for kx in 0..kw {
                    let x = (ox * self.stride[1] + kx)
                        .checked_sub(self.pad[1])
                        .filter(|&x| x < self.width);
                    let value = match (y, x) {
                        (Some(y), Some(x)) => image[c * plane_len + y * self.width + x],
                        _ => 0.0,
                    };
                    if let Some(slot) = values.next() {
                        *slot = value;
                    }
                }
            }
        }
    }

    /// Where each value of a patch lies from the patch's first (top left
    /// of channel 0), in the weights' order: the taps of a pixel whose
    /// patch lies inside the image.
    fn taps(&self) -> Vec<usize> {
        let [kh, kw] = self.kernel;
        let plane_len = self.height * self.width;
        let mut taps = Vec::with_capacity(self.patch());
        for c in 0..self.channels {
            for ky in 0..kh {
                for kx in 0..kw {
                    taps.push(c * plane_len + ky * self.width + kx);
                }
            }
        }
        taps
    }

    /// The output rows (or, `axis` 1, columns) whose patches lie inside
    /// the image along that axis.
    fn inside(&self, axis: usize) -> Range<usize> {
        let (s, p, k, n) = (
            self.stride[axis],
            self.pad[axis],
            self.kernel[axis],
            self.out[axis],
        );
        let size = [self.height, self.width][axis];
        let first = p.div_ceil(s).min(n);
        let end = match (size + p).checked_sub(k) {
            Some(last) => (last / s + 1).clamp(first, n),
            None => first,
        };
        first..end
    }
}

/// One rewritten convolution's operands but the image.
struct Convolution<'a> {
    kernel: Kernel,
    weights: &'a Weights,
    clip: Option<(f32, f32)>,
    geometry: &'a Geometry,
    output_layout: Layout,
}

impl Convolution<'_> {
    /// Every output pixel into `output`. The pixels whose patch lies inside
    /// the image (all but a border) are read in place, an output row at a
    /// time, through the patch's taps; the border's patches are copied
    /// first, zeros past the edges. Both multiply a pixel's patch values in
    /// the same order, so a pixel's output has the same bits either way.
    fn run(&self, image: &[f32], output: &mut [f32]) -> Result<(), pointwise_kernel::OutOfBounds> {
        let g = self.geometry;
        let (k, ow) = (g.patch(), g.out[1]);
        let taps = g.taps();
        let (rows, columns) = (g.inside(0), g.inside(1));
        let mut patches = Vec::new();
        for oy in 0..g.out[0] {
            let row_start = oy * ow;
            let mut copied = |pixels: Range<usize>| {
                patches.clear();
                patches.resize(pixels.len() * k, 0.0);
                for (ox, row) in pixels.clone().zip(patches.chunks_exact_mut(k)) {
                    g.patch_into(image, oy, ox, row);
                }
                let layout = Layout {
                    pixel: k,
                    channel: 1,
                };
                self.call(
                    &patches,
                    layout,
                    None,
                    row_start + pixels.start,
                    pixels.len(),
                    output,
                )
            };
            if !rows.contains(&oy) || columns.is_empty() {
                copied(0..ow)?;
                continue;
            }
            copied(0..columns.start)?;
            copied(columns.end..ow)?;
            let first =
                (oy * g.stride[0] - g.pad[0]) * g.width + columns.start * g.stride[1] - g.pad[1];
            let layout = Layout {
                pixel: g.stride[1],
                channel: 0,
            };
            let input = image.get(first..).unwrap_or_default();
            let pixel = row_start + columns.start;
            self.call(input, layout, Some(&taps), pixel, columns.len(), output)?;
        }
        Ok(())
    }

    /// `pixels` output pixels from output pixel `first`, their inputs in
    /// `input` as `layout` and `taps` say.
    fn call(
        &self,
        input: &[f32],
        layout: Layout,
        taps: Option<&[usize]>,
        first: usize,
        pixels: usize,
        output: &mut [f32],
    ) -> Result<(), pointwise_kernel::OutOfBounds> {
        if pixels == 0 {
            return Ok(());
        }
        let call = pointwise_kernel::Call {
            kernel: self.kernel,
            weights: self.weights,
            epilogue: Epilogue { clip: self.clip },
            pixels,
            input,
            input_layout: layout,
            taps,
            residual: None,
            output_layout: self.output_layout,
        };
        let from = first * self.output_layout.pixel;
        pointwise_kernel::run(call, output.get_mut(from..).unwrap_or_default())
    }
}

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
        let convolution = Convolution {
            kernel: self.kernel,
            weights: &self.weights,
            clip: self.clip,
            geometry: g,
            output_layout: self.output_layout,
        };
        let fill = |output: &mut [f32]| convolution.run(image, output);
        // SAFETY: `Convolution::run` covers every output pixel, and the
        // kernel every output channel of a pixel.
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
    let Some(ops) = conv_operands(model, node)? else {
        return Ok(None);
    };
    if ops.conv.group != 1 || ops.conv.pool_spec.data_format != DataFormat::NCHW {
        return Ok(None);
    }
    let (&[1, channels, height, width], &[1, outputs, oh, ow]) =
        (ops.input_shape, ops.output_shape)
    else {
        return Ok(None);
    };
    let [kh, kw] = ops.kernel;
    if ops.weights_shape[..] != [outputs, channels, kh, kw] {
        return Ok(None);
    }
    let geometry = Geometry {
        channels,
        height,
        width,
        kernel: ops.kernel,
        stride: ops.stride,
        pad: ops.pad,
        out: [oh, ow],
    };
    if !worth_it(&geometry, outputs) {
        return Ok(None);
    }

    let (mut at, clip) = clip_after(model, OutletId::new(node.id, 0))?;
    let mut output_layout = Layout {
        pixel: 1,
        channel: oh * ow,
    };
    let mut output_shape: TVec<usize> = ops.output_shape.into();
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
    let Some(weights) = Weights::pack(&ops.weights, &ops.bias, outputs, geometry.patch()) else {
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
    use super::super::pointwise_kernel::test_values as values;
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
    }

    #[test]
    fn reading_in_place_gives_the_bits_of_the_copied_patches() {
        let kernels: Vec<Kernel> = Kernel::ALL.into_iter().filter(|k| k.runs_here()).collect();
        eprintln!("kernels this CPU runs, checked here: {kernels:?}");
        // (channels, height, width, kernel, stride, pad before, pad after,
        // outputs): the stem's shape (a row and column of padding after,
        // none before), padding on both sides, stride 1, a 5 x 5 kernel, an
        // image narrower than the kernel's reach, a ragged panel.
        let cases = [
            (3, 224, 224, 3, 2, 0, 1, 32),
            (3, 13, 17, 3, 2, 1, 1, 32),
            (2, 9, 8, 3, 1, 1, 1, 16),
            (3, 12, 11, 5, 2, 2, 2, 48),
            (1, 3, 2, 3, 2, 1, 1, 16),
            (4, 10, 10, 3, 3, 0, 0, 20),
        ];
        for kernel in kernels {
            for (i, &(channels, height, width, k, stride, before, after, outputs)) in
                cases.iter().enumerate()
            {
                let out = |size: usize| (size + before + after - k) / stride + 1;
                let g = Geometry {
                    channels,
                    height,
                    width,
                    kernel: [k, k],
                    stride: [stride, stride],
                    pad: [before, before],
                    out: [out(height), out(width)],
                };
                let image = values(channels * height * width, i as u32);
                let w = values(outputs * g.patch(), 100 + i as u32);
                let bias = values(outputs, 200 + i as u32);
                let weights = Weights::pack(&w, &bias, outputs, g.patch()).unwrap();
                for (layout, clip) in [
                    (Layout::channel_last(outputs), Some((0.0, 6.0))),
                    (Layout::channel_first(g.pixels()), None),
                ] {
                    let convolution = Convolution {
                        kernel,
                        weights: &weights,
                        clip,
                        geometry: &g,
                        output_layout: layout,
                    };
                    let mut read = vec![f32::NAN; g.pixels() * outputs];
                    convolution.run(&image, &mut read).unwrap();
                    let mut copied = vec![f32::NAN; g.pixels() * outputs];
                    let patches = g.patches(&image);
                    let patch_layout = Layout {
                        pixel: g.patch(),
                        channel: 1,
                    };
                    convolution
                        .call(&patches, patch_layout, None, 0, g.pixels(), &mut copied)
                        .unwrap();
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert!(
                        bits(&read) == bits(&copied),
                        "case {i}, {kernel:?}, {layout:?}: outputs differ"
                    );
                    assert!(
                        read.iter().all(|v| v.is_finite()),
                        "case {i}: a value unwritten"
                    );
                }
            }
        }
    }
}
