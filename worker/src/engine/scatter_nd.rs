//! A fast evaluation of ONNX `ScatterND` (without reduction) for tract plans.
//!
//! tract 0.23's `ScatterNd` writes every index tuple through a chain of
//! ndarray views, about 1.4 µs a tuple on the dev machine. OFA's encoder
//! writes its image relative-position bias into the attention bias with
//! `ScatterND` (`bias[:, :, -900:, -900:] = ...`, one scalar tuple per head
//! and pair of image positions): in the tiny pack (4 heads) 3.2 million tuples
//! and about 5 s per op, four such ops a run (18 s of a 19 s run); the large
//! one has 16 heads and more layers. [`FlatScatterNd`] computes
//! exactly the same thing with one flat offset per tuple and one copy per
//! update slice (a few ms), and [`replace`] swaps it in for every plain-data
//! `ScatterNd` of an optimised model. tract's own rewrite of constant block
//! scatters into slices and a concat runs before, during optimisation.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::TypedOp;
use tract_onnx::tract_core::ops::array::{ScatterNd, ScatterReduction};

/// `ScatterND` with reduction `none`, on plain (copyable) data.
#[derive(Debug, Clone, Hash, PartialEq, Eq)]
pub struct FlatScatterNd;

impl Op for FlatScatterNd {
    fn name(&self) -> StaticName {
        "FlatScatterNd".into()
    }

    op_as_typed_op!();
}

impl EvalOp for FlatScatterNd {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let (data, indices, updates) = args_3!(inputs);
        let mut data = data.into_tensor();
        scatter(&mut data, &indices, &updates)?;
        Ok(tvec!(data.into_tvalue()))
    }
}

impl TypedOp for FlatScatterNd {
    as_op!();

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(inputs[0].datum_type.fact(inputs[0].shape.to_tvec())))
    }
}

/// Writes `updates` into `data` at `indices`, as ONNX `ScatterND` does: the
/// last axis of `indices` holds `k` coordinates into the first `k` axes of
/// `data` (negative ones count from the end), and each tuple receives the
/// matching `data.shape[k..]` block of `updates`. Later tuples win.
pub fn scatter(data: &mut Tensor, indices: &Tensor, updates: &Tensor) -> TractResult<()> {
    let dt = data.datum_type();
    ensure!(
        dt == updates.datum_type(),
        "ScatterND data is {dt:?} but updates are {:?}",
        updates.datum_type()
    );
    ensure!(dt.is_copy(), "ScatterND on {dt:?} is not a plain copy");
    let data_shape: TVec<usize> = data.shape().into();
    let indices = indices.cast_to::<i64>()?;
    let index_shape = indices.shape();
    let k = *index_shape
        .last()
        .ok_or_else(|| format_err!("ScatterND indices are a scalar"))?;
    ensure!(
        (1..=data_shape.len()).contains(&k),
        "ScatterND tuples of {k} coordinates into data of rank {}",
        data_shape.len()
    );
    let mut expected: TVec<usize> = index_shape[..index_shape.len() - 1].into();
    expected.extend(data_shape[k..].iter().copied());
    ensure!(
        updates.shape() == &*expected,
        "ScatterND updates are {:?}, expected {:?} for data {:?} and indices {:?}",
        updates.shape(),
        expected,
        data_shape,
        index_shape
    );
    let elem = dt.size_of();
    let block: usize = data_shape[k..].iter().product::<usize>() * elem;
    // Row-major strides of the first k axes, in bytes.
    let mut strides = vec![0usize; k];
    let mut stride = block;
    for axis in (0..k).rev() {
        strides[axis] = stride;
        stride *= data_shape[axis];
    }
    let tuples = indices.try_as_plain_ram()?.as_slice::<i64>()?;
    let source = updates.try_as_plain_ram()?.as_bytes();
    let mut target = data.try_as_plain_ram_mut()?;
    let target = target.as_bytes_mut();
    for (n, tuple) in tuples.chunks_exact(k).enumerate() {
        let mut offset = 0usize;
        for (axis, &coordinate) in tuple.iter().enumerate() {
            let dim = data_shape[axis] as i64;
            let c = if coordinate < 0 {
                coordinate + dim
            } else {
                coordinate
            };
            ensure!(
                (0..dim).contains(&c),
                "ScatterND index {coordinate} out of bounds for axis {axis} of data {data_shape:?}"
            );
            offset += c as usize * strides[axis];
        }
        target[offset..offset + block].copy_from_slice(&source[n * block..(n + 1) * block]);
    }
    Ok(())
}

/// Replaces every `ScatterNd` without reduction on copyable data in `model` by
/// [`FlatScatterNd`]; returns how many.
pub fn replace(model: &mut TypedModel) -> TractResult<usize> {
    let mut replaced = 0;
    for id in 0..model.nodes().len() {
        let node = model.node(id);
        let Some(op) = node.op_as::<ScatterNd>() else {
            continue;
        };
        if op.reduction != ScatterReduction::None {
            continue;
        }
        if !model.outlet_fact(node.inputs[0])?.datum_type.is_copy() {
            continue;
        }
        model.node_mut(id).op = Box::new(FlatScatterNd);
        replaced += 1;
    }
    Ok(replaced)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// tract's own ScatterNd on the same inputs.
    fn reference(data: &Tensor, indices: &Tensor, updates: &Tensor) -> Tensor {
        let op = ScatterNd::new(ScatterReduction::None);
        let out = op
            .eval(
                &EvalContext::out_of_plan(),
                tvec![
                    data.clone().into_tvalue(),
                    indices.clone().into_tvalue(),
                    updates.clone().into_tvalue()
                ],
            )
            .unwrap();
        out[0].clone().into_tensor()
    }

    fn flat(data: &Tensor, indices: &Tensor, updates: &Tensor) -> Tensor {
        let mut out = data.clone();
        scatter(&mut out, indices, updates).unwrap();
        out
    }

    fn range_f32(shape: &[usize], start: f32) -> Tensor {
        let n: usize = shape.iter().product();
        let values: Vec<f32> = (0..n).map(|i| start + i as f32).collect();
        Tensor::from_shape(shape, &values).unwrap()
    }

    #[test]
    fn scalar_tuples_match_tract_like_ofas_bias_block() {
        // data[:, :, 2:, 2:] = updates, written as full 4-coordinate tuples.
        let data = range_f32(&[1, 2, 5, 5], 0.0);
        let updates = range_f32(&[1, 2, 3, 3], 100.0);
        let mut tuples = Vec::new();
        for h in 0..2i64 {
            for i in 0..3i64 {
                for j in 0..3i64 {
                    tuples.extend([0, h, 2 + i, 2 + j]);
                }
            }
        }
        let indices = Tensor::from_shape(&[1, 2, 3, 3, 4], &tuples).unwrap();
        let ours = flat(&data, &indices, &updates);
        assert_eq!(ours, reference(&data, &indices, &updates));
        let view = ours.to_plain_array_view::<f32>().unwrap();
        assert_eq!(view[[0, 1, 4, 4]], 117.0);
        assert_eq!(view[[0, 1, 1, 4]], 34.0, "outside the block: unchanged");
    }

    #[test]
    fn slice_tuples_match_tract() {
        // Two coordinates into a rank-3 tensor: each tuple writes a row; the
        // repeated tuple is written last-wins, as tract does.
        let data = range_f32(&[3, 4, 2], 0.0);
        let indices = Tensor::from_shape(&[3, 2], &[2i64, 1, 0, 3, 2, 1]).unwrap();
        let updates = range_f32(&[3, 2], -10.0);
        assert_eq!(
            flat(&data, &indices, &updates),
            reference(&data, &indices, &updates)
        );
        let one = Tensor::from_shape(&[1, 1], &[1i64]).unwrap();
        let rows = range_f32(&[1, 4, 2], 50.0);
        assert_eq!(flat(&data, &one, &rows), reference(&data, &one, &rows));
    }

    #[test]
    fn negative_indices_count_from_the_end_and_bad_ones_fail() {
        let data = range_f32(&[4], 0.0);
        let updates = range_f32(&[1], 9.0);
        let last = Tensor::from_shape(&[1, 1], &[-1i64]).unwrap();
        let out = flat(&data, &last, &updates);
        assert_eq!(out.to_plain_array_view::<f32>().unwrap()[[3]], 9.0);
        let mut d = data.clone();
        let far = Tensor::from_shape(&[1, 1], &[4i64]).unwrap();
        assert!(scatter(&mut d, &far, &updates).is_err());
        let wrong = range_f32(&[2], 0.0);
        assert!(
            scatter(&mut d, &last, &wrong).is_err(),
            "updates of the wrong shape"
        );
    }
}
