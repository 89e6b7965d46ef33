//! What the worker's rewrites of tract's `Conv` (`patch_conv`,
//! `depthwise_conv`) read from a convolution node before deciding whether
//! they compute it: its constant weights and bias, its concrete shapes and
//! its geometry.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::cnn::{Conv, KernelFormat};

/// A plain 2-D convolution's operands.
pub(super) struct ConvOperands<'a> {
    pub conv: &'a Conv,
    pub input_shape: &'a [usize],
    pub output_shape: &'a [usize],
    /// `O x I/group x kh x kw`, as ONNX lays them out.
    pub weights: Vec<f32>,
    pub weights_shape: TVec<usize>,
    /// One per output channel (a single bias value repeated).
    pub bias: Vec<f32>,
    /// The input's and output's rows and columns.
    pub input_hw: [usize; 2],
    pub output_hw: [usize; 2],
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    /// Rows and columns of zeros before the image.
    pub pad: [usize; 2],
}

/// The operands of the convolution at `node` if it is a plain one: f32,
/// not quantised, 2-D, no dilation, weights (`OIHW`) and bias constant,
/// shapes concrete, and an output of the size tract's padding gives. None
/// for any other node.
pub(super) fn conv_operands<'a>(
    model: &'a TypedModel,
    node: &'a TypedNode,
) -> TractResult<Option<ConvOperands<'a>>> {
    let Some(conv) = node.op_as::<Conv>() else {
        return Ok(None);
    };
    let spec = &conv.pool_spec;
    if conv.q_params.is_some()
        || conv.kernel_fmt != KernelFormat::OIHW
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
    let (Some(input_shape), Some(output_shape), Some(weights), Some(bias)) = (
        x.shape.as_concrete(),
        y.shape.as_concrete(),
        w.konst.as_ref(),
        b.konst.as_ref(),
    ) else {
        return Ok(None);
    };
    let f32_dt = f32::datum_type();
    if x.datum_type != f32_dt
        || y.datum_type != f32_dt
        || weights.datum_type() != f32_dt
        || bias.datum_type() != f32_dt
    {
        return Ok(None);
    }
    let outputs = spec.output_channels;
    let bias: Vec<f32> = match bias.len() {
        n if n == outputs => bias.try_as_plain_ram()?.as_slice::<f32>()?.to_vec(),
        1 => vec![bias.try_as_plain_ram()?.as_slice::<f32>()?[0]; outputs],
        _ => return Ok(None),
    };
    let input_hw = spec.data_format.shape(input_shape)?.hw_dims().to_vec();
    let output_hw = spec.data_format.shape(output_shape)?.hw_dims().to_vec();
    let (&[h, w], &[oh, ow]) = (&input_hw[..], &output_hw[..]) else {
        return Ok(None);
    };
    let padding = spec.computed_padding(&[h, w]);
    if padding[0].convoluted != oh || padding[1].convoluted != ow {
        return Ok(None);
    }
    let strides = spec.strides();
    Ok(Some(ConvOperands {
        conv,
        input_shape,
        output_shape,
        weights: weights.try_as_plain_ram()?.as_slice::<f32>()?.to_vec(),
        weights_shape: weights.shape().into(),
        bias,
        input_hw: [h, w],
        output_hw: [oh, ow],
        kernel: [spec.kernel_shape[0], spec.kernel_shape[1]],
        stride: [strides[0], strides[1]],
        pad: [padding[0].pad_before, padding[1].pad_before],
    }))
}
