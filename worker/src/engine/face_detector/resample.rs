//! Area resampling: each output pixel is the mean of the input area it covers.
//!
//! One function serves the detector's three resizes (the image to its working
//! copy, the working square to each pyramid level, a candidate box to R-Net's
//! or O-Net's input): a box filter with fractional coverage, the part of a box
//! outside the image counted as a constant `pad`. Shrinking, it averages every
//! input pixel once (no aliasing, whatever the ratio); enlarging, an output
//! pixel covers part of one input pixel and takes its value (blended across a
//! pixel edge). `scripts/model/face_detect.py` (`area_resample`) is the same
//! computation in numpy.

/// An interleaved RGB image of `f32` samples (0..255 scale).
#[derive(Debug, Clone, PartialEq)]
pub struct Pixels {
    pub width: usize,
    pub height: usize,
    /// `height` rows of `width` pixels of 3 samples.
    pub data: Vec<f32>,
}

impl Pixels {
    /// A `width x height` image of one value.
    pub fn filled(width: usize, height: usize, value: f32) -> Pixels {
        Pixels {
            width,
            height,
            data: vec![value; width * height * 3],
        }
    }
}

/// The input pixels one output pixel covers along an axis, with weights
/// summing to the covered fraction of its interval (1 when all inside).
#[derive(Debug, Clone)]
struct Span {
    first: usize,
    weights: Vec<f32>,
    inside: f32,
}

/// Output `i` of `n` covers `[start + i * step, start + (i + 1) * step)`,
/// `step = length / n`, of an axis of `size` pixels.
fn spans(start: f64, length: f64, n: usize, size: usize) -> Vec<Span> {
    let step = length / n as f64;
    (0..n)
        .map(|i| {
            let a = start + i as f64 * step;
            let b = a + step;
            let lo = a.floor().max(0.0);
            let hi = b.ceil().min(size as f64);
            let mut weights = Vec::new();
            let mut inside = 0f64;
            let first = lo as usize;
            if step > 0.0 && hi > lo {
                for p in first..hi as usize {
                    let overlap = (b.min(p as f64 + 1.0) - a.max(p as f64)).max(0.0);
                    let w = overlap / step;
                    weights.push(w as f32);
                    inside += w;
                }
            }
            Span {
                first,
                weights,
                inside: inside as f32,
            }
        })
        .collect()
}

/// Resamples the box `(x0, y0, x1, y1)` (input pixels; it may reach outside
/// the image) of an interleaved RGB image of `width x height` to
/// `out_width x out_height`. `T` is `u8` (a decoded image) or `f32`.
#[allow(clippy::too_many_arguments)]
pub fn area_resample<T: Copy + Into<f32>>(
    src: &[T],
    width: usize,
    height: usize,
    (x0, y0, x1, y1): (f64, f64, f64, f64),
    out_width: usize,
    out_height: usize,
    pad: f32,
) -> Pixels {
    debug_assert_eq!(src.len(), width * height * 3);
    let mut out = Pixels::filled(out_width, out_height, pad);
    if out_width == 0 || out_height == 0 || width == 0 || height == 0 {
        return out;
    }
    let rows = spans(y0, y1 - y0, out_height, height);
    let cols = spans(x0, x1 - x0, out_width, width);
    // The input columns any output column reads.
    let col_lo = cols
        .iter()
        .filter(|c| !c.weights.is_empty())
        .map(|c| c.first)
        .min();
    let col_hi = cols
        .iter()
        .filter(|c| !c.weights.is_empty())
        .map(|c| c.first + c.weights.len())
        .max()
        .unwrap_or(0);
    let Some(col_lo) = col_lo else {
        return out;
    };
    let span_width = col_hi - col_lo;
    let mut row_sum = vec![0f32; span_width * 3];
    for (oy, row) in rows.iter().enumerate() {
        // Vertical pass: the weighted sum of the input rows, over the columns read.
        row_sum.iter_mut().for_each(|v| *v = 0.0);
        for (k, &wy) in row.weights.iter().enumerate() {
            let y = row.first + k;
            let line = &src[(y * width + col_lo) * 3..(y * width + col_hi) * 3];
            for (acc, &v) in row_sum.iter_mut().zip(line) {
                *acc += wy * v.into();
            }
        }
        // Horizontal pass, and the pad value for the part outside the image.
        let out_row = &mut out.data[oy * out_width * 3..(oy + 1) * out_width * 3];
        for (ox, col) in cols.iter().enumerate() {
            let mut rgb = [0f32; 3];
            for (k, &wx) in col.weights.iter().enumerate() {
                let x = col.first + k - col_lo;
                for (c, v) in rgb.iter_mut().enumerate() {
                    *v += wx * row_sum[x * 3 + c];
                }
            }
            let outside = 1.0 - row.inside * col.inside;
            for (c, v) in rgb.iter().enumerate() {
                out_row[ox * 3 + c] = v + pad * outside;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gray(width: usize, height: usize, f: impl Fn(usize, usize) -> f32) -> Vec<f32> {
        let mut data = Vec::new();
        for y in 0..height {
            for x in 0..width {
                data.extend([f(x, y); 3]);
            }
        }
        data
    }

    #[test]
    fn halving_averages_blocks_of_four() {
        let src = gray(4, 2, |x, y| (x + 4 * y) as f32);
        let out = area_resample(&src, 4, 2, (0.0, 0.0, 4.0, 2.0), 2, 1, 0.0);
        assert_eq!((out.width, out.height), (2, 1));
        // (0 + 1 + 4 + 5) / 4 and (2 + 3 + 6 + 7) / 4.
        assert_eq!(out.data, vec![2.5, 2.5, 2.5, 4.5, 4.5, 4.5]);
    }

    #[test]
    fn fractional_coverage_weighs_each_pixel_by_its_overlap() {
        // Three pixels to two: output 0 covers [0, 1.5), output 1 [1.5, 3).
        let src = gray(3, 1, |x, _| [0.0, 30.0, 90.0][x]);
        let out = area_resample(&src, 3, 1, (0.0, 0.0, 3.0, 1.0), 2, 1, 0.0);
        assert!((out.data[0] - 10.0).abs() < 1e-5, "{:?}", out.data);
        assert!((out.data[3] - 70.0).abs() < 1e-5, "{:?}", out.data);
    }

    #[test]
    fn outside_the_image_counts_as_pad() {
        let src = gray(2, 2, |_, _| 100.0);
        // The box's left half lies outside the image.
        let out = area_resample(&src, 2, 2, (-2.0, 0.0, 2.0, 2.0), 2, 1, 20.0);
        assert!((out.data[0] - 20.0).abs() < 1e-5, "{:?}", out.data);
        assert!((out.data[3] - 100.0).abs() < 1e-5, "{:?}", out.data);
        // Wholly outside: all pad.
        let out = area_resample(&src, 2, 2, (5.0, 5.0, 9.0, 9.0), 3, 3, 7.0);
        assert!(out.data.iter().all(|&v| v == 7.0));
    }

    #[test]
    fn enlarging_repeats_pixels() {
        let src: Vec<u8> = vec![10, 10, 10, 200, 200, 200];
        let out = area_resample(&src, 2, 1, (0.0, 0.0, 2.0, 1.0), 4, 2, 0.0);
        let red: Vec<f32> = out.data.iter().step_by(3).copied().collect();
        assert_eq!(
            red,
            vec![10.0, 10.0, 200.0, 200.0, 10.0, 10.0, 200.0, 200.0]
        );
    }

    #[test]
    fn degenerate_boxes_and_sizes_do_not_panic() {
        let src = gray(3, 3, |_, _| 5.0);
        for b in [
            (1.0, 1.0, 1.0, 1.0),
            (2.0, 2.0, 1.0, 1.0),
            (f64::NAN, 0.0, 3.0, 3.0),
            (0.0, 0.0, f64::INFINITY, 3.0),
            (-1e12, -1e12, 1e12, 1e12),
            (1.0, 0.0, 9.0, 2.0),
        ] {
            let out = area_resample(&src, 3, 3, b, 4, 4, 1.0);
            assert_eq!(out.data.len(), 48);
        }
        assert!(
            area_resample(&src, 3, 3, (0.0, 0.0, 3.0, 3.0), 0, 4, 1.0)
                .data
                .is_empty()
        );
    }
}
