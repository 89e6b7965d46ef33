//! The arithmetic of a channel-last depthwise convolution: every output
//! pixel's channel `c` is the sum, over the kernel's taps, of channel `c` of
//! the input pixel under the tap times that tap's weight for `c`, plus a
//! bias, optionally clipped. `depthwise_conv` puts it in a tract graph.
//!
//! Why not tract's `DepthWise` with the worker's tap loop
//! (`depthwise_x86`): that loop computes one or two output pixels at a time,
//! so every multiply-add loads its input vector (and every other one its
//! weights): on one core of an AMD EPYC family 25 model 17 the default
//! pack's 16 depthwise convolutions ran at about 20 billion multiply-adds a
//! second, a third of what the core's multiply-add units do. Here a tile is
//! a run of output pixels along a row (7 with AVX-512, 4 with AVX2) for one
//! vector of channels: for each kernel row, the input vectors under the
//! whole run are loaded once into registers (11 for 7 pixels of a 5 x 5
//! kernel at stride 1) and each serves up to `kernel` multiply-adds; the
//! clip that follows in the graph (ReLU6) is applied in registers before the
//! one store.
//!
//! Taps outside the image (the padding) read zeros, so a tile at the border
//! is the same code; a tile past the row's end computes pixels it does not
//! store. Sums start from the bias and add the taps in row-major order with
//! fused multiply-adds.

use std::arch::x86_64::*;

use super::pointwise_kernel::{Kernel, OutOfBounds};

/// Output pixels a tile of [`Kernel::Avx512`] computes: the default pack's
/// rows are 112, 56, 28, 14 and 7 pixels long.
const TILE_512: usize = 7;
/// Output pixels a tile of [`Kernel::Avx2Fma`] computes (16 registers).
const TILE_256: usize = 4;
/// Input vectors a tile's kernel row reads at most: `(TILE_512 - 1) * 2 +
/// 5`, the widest tile at the largest stride and kernel.
const MAX_READ: usize = 17;

/// The shape of one depthwise convolution over one image, channel-last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Geometry {
    pub height: usize,
    pub width: usize,
    pub channels: usize,
    /// The kernel's side (square kernels only).
    pub kernel: usize,
    /// The stride along both axes.
    pub stride: usize,
    /// Rows and columns of zeros before the image.
    pub pad: [usize; 2],
    /// Output rows and columns.
    pub out: [usize; 2],
}

impl Geometry {
    /// Whether `kernel` has a tile for this geometry: 3 x 3 or 5 x 5, stride
    /// 1 or 2, whole vectors of channels (16 for AVX-512, 8 for AVX2), a
    /// padding smaller than the kernel.
    pub fn runs_on(&self, kernel: Kernel) -> bool {
        let lanes = match kernel {
            Kernel::Avx512 => 16,
            Kernel::Avx2Fma => 8,
        };
        matches!(self.kernel, 3 | 5)
            && matches!(self.stride, 1 | 2)
            && self.channels > 0
            && self.channels.is_multiple_of(lanes)
            && self.pad.iter().all(|&p| p < self.kernel)
            && self.height > 0
            && self.width > 0
            && self.out.iter().all(|&o| o > 0)
    }

    fn input_len(&self) -> usize {
        self.height * self.width * self.channels
    }

    fn output_len(&self) -> usize {
        self.out[0] * self.out[1] * self.channels
    }

    fn taps(&self) -> usize {
        self.kernel * self.kernel
    }

    /// The input row under kernel row `ky` of output row `oy`, or None in
    /// the padding.
    pub fn input_row(&self, oy: usize, ky: usize) -> Option<usize> {
        (oy * self.stride + ky)
            .checked_sub(self.pad[0])
            .filter(|&iy| iy < self.height)
    }

    /// The geometry of a square kernel of side `kernel` at `stride` over a
    /// `height x width` image with `before` rows and columns of padding
    /// before it and `after` after it (the tests' cases).
    #[cfg(test)]
    pub(super) fn padded(
        [height, width, channels]: [usize; 3],
        kernel: usize,
        stride: usize,
        [before, after]: [usize; 2],
    ) -> Geometry {
        let out = |size: usize| (size + before + after - kernel) / stride + 1;
        Geometry {
            height,
            width,
            channels,
            kernel,
            stride,
            pad: [before, before],
            out: [out(height), out(width)],
        }
    }
}

/// A depthwise convolution's weights, tap-major: `weights[(ky * kernel + kx)
/// * channels + c]`, and its bias, one per channel.
#[derive(Debug, Clone, PartialEq)]
pub struct Weights {
    pub taps: Vec<f32>,
    pub bias: Vec<f32>,
}

impl Weights {
    /// Packs ONNX's `C x 1 x k x k` weights (`c` outer, then kernel row,
    /// then column) and the bias (`C` values).
    pub fn pack(onnx: &[f32], bias: &[f32], channels: usize, kernel: usize) -> Option<Weights> {
        let taps = kernel * kernel;
        if onnx.len() != channels.checked_mul(taps)? || bias.len() != channels {
            return None;
        }
        let mut packed = vec![0f32; onnx.len()];
        for c in 0..channels {
            for t in 0..taps {
                packed[t * channels + c] = onnx[c * taps + t];
            }
        }
        Some(Weights {
            taps: packed,
            bias: bias.to_vec(),
        })
    }
}

/// One call's operands but the output (laid out `out[0] x out[1] x
/// channels`).
pub struct Call<'a> {
    pub kernel: Kernel,
    pub geometry: Geometry,
    pub weights: &'a Weights,
    pub clip: Option<(f32, f32)>,
    /// `height x width x channels`.
    pub input: &'a [f32],
}

/// Computes every output value of `call` into `output`. Checks each slice's
/// length and the geometry first; the caller checks that its kernel
/// [`Kernel::runs_here`].
pub fn run(call: Call<'_>, output: &mut [f32]) -> Result<(), OutOfBounds> {
    let g = call.geometry;
    let tiles = Tiles::new(call.kernel, g, call.weights, call.clip)?;
    if call.input.len() < g.input_len() {
        return Err(OutOfBounds("input"));
    }
    if output.len() < g.output_len() {
        return Err(OutOfBounds("output"));
    }
    let line = g.width * g.channels;
    let out_line = g.out[1] * g.channels;
    for oy in 0..g.out[0] {
        let mut lines = [None; 5];
        for (ky, slot) in lines.iter_mut().enumerate().take(g.kernel) {
            *slot = g
                .input_row(oy, ky)
                .map(|iy| call.input[iy * line..].as_ptr());
        }
        // SAFETY: the lengths were checked above: every input row inside the
        // image holds `line` values, and output row `oy` `out_line`.
        unsafe { tiles.row(&lines[..g.kernel], output[oy * out_line..].as_mut_ptr()) };
    }
    Ok(())
}

/// One output row's operands, its input rows held wherever the caller keeps
/// them (`expand_depthwise` keeps the few a row needs).
pub struct RowCall<'a> {
    pub kernel: Kernel,
    pub geometry: Geometry,
    pub weights: &'a Weights,
    pub clip: Option<(f32, f32)>,
    /// For each kernel row, the input row under it (`width x channels`
    /// values), None where it lies in the padding.
    pub lines: &'a [Option<&'a [f32]>],
}

/// Computes one output row (`out[1] x channels` values) into `output`.
/// Checks each slice's length and the geometry first; the caller checks
/// that its kernel [`Kernel::runs_here`] and gives the rows
/// [`Geometry::input_row`] names.
pub fn run_row(call: RowCall<'_>, output: &mut [f32]) -> Result<(), OutOfBounds> {
    let g = call.geometry;
    let tiles = Tiles::new(call.kernel, g, call.weights, call.clip)?;
    let line = g.width * g.channels;
    if call.lines.len() != g.kernel || call.lines.iter().flatten().any(|l| l.len() < line) {
        return Err(OutOfBounds("input"));
    }
    if output.len() < g.out[1] * g.channels {
        return Err(OutOfBounds("output"));
    }
    let mut lines = [None; 5];
    for (slot, line) in lines.iter_mut().zip(call.lines) {
        *slot = line.map(<[f32]>::as_ptr);
    }
    // SAFETY: the lengths were checked above.
    unsafe { tiles.row(&lines[..g.kernel], output.as_mut_ptr()) };
    Ok(())
}

/// A checked call's kernel, geometry, weights and clip, as the tiles read
/// them.
struct Tiles {
    kernel: Kernel,
    g: Geometry,
    taps: *const f32,
    bias: *const f32,
    clip: Option<(f32, f32)>,
}

impl Tiles {
    /// Checks the geometry, the weights' lengths and the CPU.
    fn new(
        kernel: Kernel,
        g: Geometry,
        weights: &Weights,
        clip: Option<(f32, f32)>,
    ) -> Result<Tiles, OutOfBounds> {
        if !g.runs_on(kernel) {
            return Err(OutOfBounds("geometry"));
        }
        if weights.taps.len() != g.taps() * g.channels || weights.bias.len() != g.channels {
            return Err(OutOfBounds("weights"));
        }
        assert!(
            kernel.runs_here(),
            "depthwise_kernel: this CPU lacks what {} needs",
            kernel.name()
        );
        Ok(Tiles {
            kernel,
            g,
            taps: weights.taps.as_ptr(),
            bias: weights.bias.as_ptr(),
            clip,
        })
    }

    /// One output row into `out`, from `lines` (one per kernel row).
    ///
    /// # Safety
    /// `lines` has `kernel` entries, each row `width x channels` values
    /// long; `out` has room for `out[1] x channels`.
    unsafe fn row(&self, lines: &[Option<*const f32>], out: *mut f32) {
        let three = || -> [Option<*const f32>; 3] { [lines[0], lines[1], lines[2]] };
        let five =
            || -> [Option<*const f32>; 5] { [lines[0], lines[1], lines[2], lines[3], lines[4]] };
        // SAFETY: the caller's promise; the instructions are present
        // (asserted by `Tiles::new`).
        unsafe {
            match (self.kernel, self.g.kernel, self.g.stride) {
                (Kernel::Avx512, 3, 1) => self.row_512::<3, 1>(three(), out),
                (Kernel::Avx512, 3, _) => self.row_512::<3, 2>(three(), out),
                (Kernel::Avx512, _, 1) => self.row_512::<5, 1>(five(), out),
                (Kernel::Avx512, _, _) => self.row_512::<5, 2>(five(), out),
                (Kernel::Avx2Fma, 3, 1) => self.row_256::<3, 1>(three(), out),
                (Kernel::Avx2Fma, 3, _) => self.row_256::<3, 2>(three(), out),
                (Kernel::Avx2Fma, _, 1) => self.row_256::<5, 1>(five(), out),
                (Kernel::Avx2Fma, _, _) => self.row_256::<5, 2>(five(), out),
            }
        }
    }

    /// One output row, AVX-512.
    ///
    /// # Safety
    /// AVX-512F is present; as [`Tiles::row`].
    #[target_feature(enable = "avx512f")]
    unsafe fn row_512<const K: usize, const S: usize>(
        &self,
        lines: [Option<*const f32>; K],
        out: *mut f32,
    ) {
        let g = self.g;
        let (c_n, w) = (g.channels, g.width as isize);
        let read = (TILE_512 - 1) * S + K;
        let clip = self
            .clip
            .map(|(lo, hi)| (_mm512_set1_ps(lo), _mm512_set1_ps(hi)));
        for ox0 in (0..g.out[1]).step_by(TILE_512) {
            let ix0 = (ox0 * S) as isize - g.pad[1] as isize;
            let stored = (g.out[1] - ox0).min(TILE_512);
            for cb in (0..c_n).step_by(16) {
                // SAFETY: `cb` is a whole vector of channels; input columns
                // outside the image are never read (zeros instead), and only
                // output pixels of the row are stored.
                unsafe {
                    let mut acc = [_mm512_loadu_ps(self.bias.add(cb)); TILE_512];
                    for (ky, line) in lines.iter().enumerate() {
                        let Some(line) = *line else { continue };
                        let line = line.add(cb);
                        let mut x = [_mm512_setzero_ps(); MAX_READ];
                        for (i, v) in x.iter_mut().enumerate().take(read) {
                            let ix = ix0 + i as isize;
                            if ix >= 0 && ix < w {
                                *v = _mm512_loadu_ps(line.add(ix as usize * c_n));
                            }
                        }
                        for kx in 0..K {
                            let wv = _mm512_loadu_ps(self.taps.add((ky * K + kx) * c_n + cb));
                            for (t, sum) in acc.iter_mut().enumerate() {
                                *sum = _mm512_fmadd_ps(x[t * S + kx], wv, *sum);
                            }
                        }
                    }
                    let out = out.add(ox0 * c_n + cb);
                    for (t, &sum) in acc.iter().enumerate().take(stored) {
                        let v = match clip {
                            Some((lo, hi)) => _mm512_min_ps(_mm512_max_ps(sum, lo), hi),
                            None => sum,
                        };
                        _mm512_storeu_ps(out.add(t * c_n), v);
                    }
                }
            }
        }
    }

    /// One output row, AVX2 and FMA.
    ///
    /// # Safety
    /// AVX2 and FMA are present; as [`Tiles::row`].
    #[target_feature(enable = "avx2,fma")]
    unsafe fn row_256<const K: usize, const S: usize>(
        &self,
        lines: [Option<*const f32>; K],
        out: *mut f32,
    ) {
        let g = self.g;
        let (c_n, w) = (g.channels, g.width as isize);
        let read = (TILE_256 - 1) * S + K;
        let clip = self
            .clip
            .map(|(lo, hi)| (_mm256_set1_ps(lo), _mm256_set1_ps(hi)));
        for ox0 in (0..g.out[1]).step_by(TILE_256) {
            let ix0 = (ox0 * S) as isize - g.pad[1] as isize;
            let stored = (g.out[1] - ox0).min(TILE_256);
            for cb in (0..c_n).step_by(8) {
                // SAFETY: as in `row_512`, with vectors of 8 channels.
                unsafe {
                    let mut acc = [_mm256_loadu_ps(self.bias.add(cb)); TILE_256];
                    for (ky, line) in lines.iter().enumerate() {
                        let Some(line) = *line else { continue };
                        let line = line.add(cb);
                        let mut x = [_mm256_setzero_ps(); MAX_READ];
                        for (i, v) in x.iter_mut().enumerate().take(read) {
                            let ix = ix0 + i as isize;
                            if ix >= 0 && ix < w {
                                *v = _mm256_loadu_ps(line.add(ix as usize * c_n));
                            }
                        }
                        for kx in 0..K {
                            let wv = _mm256_loadu_ps(self.taps.add((ky * K + kx) * c_n + cb));
                            for (t, sum) in acc.iter_mut().enumerate() {
                                *sum = _mm256_fmadd_ps(x[t * S + kx], wv, *sum);
                            }
                        }
                    }
                    let out = out.add(ox0 * c_n + cb);
                    for (t, &sum) in acc.iter().enumerate().take(stored) {
                        let v = match clip {
                            Some((lo, hi)) => _mm256_min_ps(_mm256_max_ps(sum, lo), hi),
                            None => sum,
                        };
                        _mm256_storeu_ps(out.add(t * c_n), v);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::pointwise_kernel::test_values as values;
    use super::*;

    /// The definition, in f64, from ONNX's weight order.
    fn reference(
        g: &Geometry,
        onnx: &[f32],
        bias: &[f32],
        clip: Option<(f32, f32)>,
        x: &[f32],
    ) -> Vec<f64> {
        let k = g.kernel;
        let mut out = vec![0f64; g.out[0] * g.out[1] * g.channels];
        for oy in 0..g.out[0] {
            for ox in 0..g.out[1] {
                for c in 0..g.channels {
                    let mut s = bias[c] as f64;
                    for ky in 0..k {
                        for kx in 0..k {
                            let iy = (oy * g.stride + ky) as isize - g.pad[0] as isize;
                            let ix = (ox * g.stride + kx) as isize - g.pad[1] as isize;
                            if iy < 0 || ix < 0 || iy >= g.height as isize || ix >= g.width as isize
                            {
                                continue;
                            }
                            let v = x[(iy as usize * g.width + ix as usize) * g.channels + c];
                            s += onnx[(c * k + ky) * k + kx] as f64 * v as f64;
                        }
                    }
                    if let Some((lo, hi)) = clip {
                        s = s.max(lo as f64).min(hi as f64);
                    }
                    out[(oy * g.out[1] + ox) * g.channels + c] = s;
                }
            }
        }
        out
    }

    #[test]
    fn matches_the_definition_at_every_kernel_stride_and_border() {
        let kernels: Vec<Kernel> = Kernel::ALL.into_iter().filter(|k| k.runs_here()).collect();
        eprintln!("kernels this CPU runs, checked here: {kernels:?}");
        // (height, width, channels, kernel, stride, pad before, pad after):
        // the default pack's kinds (3 x 3 and 5 x 5, stride 1 with padding
        // on both sides, stride 2 with padding after only or on both sides),
        // rows shorter than a tile, ragged tiles, an image smaller than the
        // kernel.
        let cases = [
            (14, 14, 32, 3, 1, 1, 1),
            (15, 13, 16, 3, 2, 0, 1),
            (9, 23, 48, 5, 1, 2, 2),
            (12, 11, 16, 5, 2, 1, 2),
            (7, 7, 64, 5, 1, 2, 2),
            (3, 2, 16, 5, 1, 2, 2),
            (10, 30, 16, 3, 2, 1, 1),
            (1, 1, 16, 3, 1, 1, 1),
        ];
        for kernel in kernels {
            for (i, &(height, width, channels, k, stride, before, after)) in
                cases.iter().enumerate()
            {
                let g = Geometry::padded([height, width, channels], k, stride, [before, after]);
                if !g.runs_on(kernel) {
                    continue;
                }
                let x = values(height * width * channels, i as u32);
                let onnx = values(channels * k * k, 50 + i as u32);
                let bias = values(channels, 90 + i as u32);
                let weights = Weights::pack(&onnx, &bias, channels, k).unwrap();
                for clip in [None, Some((0.0, 0.5))] {
                    let mut y = vec![f32::NAN; g.out[0] * g.out[1] * channels];
                    let call = Call {
                        kernel,
                        geometry: g,
                        weights: &weights,
                        clip,
                        input: &x,
                    };
                    run(call, &mut y).unwrap();
                    let want = reference(&g, &onnx, &bias, clip, &x);
                    for (at, (&got, &want)) in y.iter().zip(&want).enumerate() {
                        assert!(
                            (got as f64 - want).abs() <= 1e-5,
                            "case {i}, {kernel:?}, clip {clip:?}: value {at} is {got}, want {want}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn refuses_what_it_has_no_tile_for_and_short_slices() {
        let g = Geometry {
            height: 4,
            width: 4,
            channels: 16,
            kernel: 3,
            stride: 1,
            pad: [1, 1],
            out: [4, 4],
        };
        assert!(g.runs_on(Kernel::Avx2Fma) && g.runs_on(Kernel::Avx512));
        assert!(!Geometry { kernel: 7, ..g }.runs_on(Kernel::Avx2Fma));
        assert!(!Geometry { stride: 3, ..g }.runs_on(Kernel::Avx2Fma));
        assert!(!Geometry { channels: 12, ..g }.runs_on(Kernel::Avx2Fma));
        assert!(Geometry { channels: 24, ..g }.runs_on(Kernel::Avx2Fma));
        assert!(!Geometry { channels: 24, ..g }.runs_on(Kernel::Avx512));
        let Some(kernel) = Kernel::ALL.into_iter().find(|k| k.runs_here()) else {
            return;
        };
        let weights = Weights::pack(&[0.5; 144], &[0.0; 16], 16, 3).unwrap();
        let input = vec![1.0; 4 * 4 * 16];
        let call = |input| Call {
            kernel,
            geometry: g,
            weights: &weights,
            clip: None,
            input,
        };
        let mut y = vec![0.0; 4 * 4 * 16];
        assert_eq!(run(call(&input[1..]), &mut y), Err(OutOfBounds("input")));
        assert_eq!(run(call(&input), &mut y[1..]), Err(OutOfBounds("output")));
        run(call(&input), &mut y).unwrap();
        // A corner sees 2 x 2 of the 9 taps, an edge 2 x 3, the middle 9.
        assert_eq!((y[0], y[16], y[5 * 16]), (2.0, 3.0, 4.5));
    }
}
