//! The arithmetic of a 1 x 1 convolution (a pointwise convolution): every
//! output pixel's channels are one matrix of weights times that pixel's input
//! channels, plus a bias, optionally clipped and optionally added to a
//! residual. `pointwise_conv` puts it in a tract graph.
//!
//! Why not tract's own matrix product: tract drives its kernels one small
//! output tile at a time (16 channels x 5 pixels on AVX2) through a list of
//! fused operations, and packs the pixels into panels first. With the few
//! input channels of a mobile network's expansions (16 to 112) a tile is
//! little arithmetic, and the walk around it dominates: on one core of an AMD
//! EPYC family 25 (AVX2), the default pack's first expansion (12,544 pixels,
//! 16 channels in, 96 out) ran at about 10 billion multiply-adds a second.
//! Here the loop over a block of pixels stays inside one function, the
//! pixels are read where they lie (no packing: each multiply broadcasts one
//! input value), and bias, clip and residual are applied to the sums in
//! registers before the one store.
//!
//! Two kernels share one packing of the weights, done once when the graph is
//! planned: panels of 16 output channels (the last one zero-padded).
//! - [`Kernel::Avx2Fma`]: a tile is 6 pixels x 16 output channels, 12 AVX
//!   registers of sums, two of weights, one broadcast.
//! - [`Kernel::Avx512`]: a tile is 12 pixels x 32 output channels (two
//!   panels), 24 of the 32 AVX-512 registers of sums, two of weights, the
//!   input value broadcast from memory by the multiply-add itself; a last odd
//!   panel runs 12 x 16. Partial panels are stored under a mask.
//!
//! In both, the sums are fused multiply-adds in input-channel order from
//! zero, then the bias is added, as tract's kernels do.
//!
//! A call may give, instead of a channel step, one offset per input value
//! (`Call::taps`): a convolution with a larger kernel then reads each
//! pixel's patch where it lies in the image (`patch_conv`). The tiles are
//! the same code, generic over how an input value's offset is found.

use std::arch::x86_64::*;

/// Output channels per panel: two AVX registers, one AVX-512 register.
const PANEL: usize = 16;
/// Pixels per tile of [`Kernel::Avx2Fma`].
const ROWS: usize = 6;
/// Pixels per tile of [`Kernel::Avx512`].
const ROWS_512: usize = 12;
/// Input values one block of pixels should hold at most (in floats), so that
/// it stays in the second-level cache while every panel passes over it.
const BLOCK_FLOATS: usize = 24 * 1024;

/// Where the value of pixel `p`, channel `c` lies in a slice:
/// `p * pixel + c * channel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Layout {
    pub pixel: usize,
    pub channel: usize,
}

#[cfg(test)]
impl Layout {
    /// Channels contiguous, pixel after pixel (HWC).
    pub fn channel_last(channels: usize) -> Layout {
        Layout {
            pixel: channels,
            channel: 1,
        }
    }

    /// Pixels contiguous, channel after channel (CHW).
    pub fn channel_first(pixels: usize) -> Layout {
        Layout {
            pixel: 1,
            channel: pixels,
        }
    }
}

impl Layout {
    /// The highest offset touched by `pixels` pixels of `channels` channels, plus one.
    fn extent(&self, pixels: usize, channels: usize) -> usize {
        if pixels == 0 || channels == 0 {
            return 0;
        }
        (pixels - 1) * self.pixel + (channels - 1) * self.channel + 1
    }
}

/// A convolution's weights and bias, packed for [`run`]. Equal when every
/// value has the same bits.
#[derive(Clone)]
pub struct Weights {
    inputs: usize,
    outputs: usize,
    /// `outputs.div_ceil(16)` panels of `inputs` x 16: `panels[(j * inputs + k) * 16 + c]`
    /// is the weight of input channel `k` for output channel `j * 16 + c` (zero past the end).
    panels: Vec<f32>,
    /// The bias, zero-padded to whole panels.
    bias: Vec<f32>,
}

impl std::fmt::Debug for Weights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Weights({} in, {} out)", self.inputs, self.outputs)
    }
}

impl PartialEq for Weights {
    fn eq(&self, other: &Weights) -> bool {
        let bits = |w: &Weights| -> Vec<u32> {
            w.panels
                .iter()
                .chain(&w.bias)
                .map(|v| v.to_bits())
                .collect()
        };
        (self.inputs, self.outputs) == (other.inputs, other.outputs) && bits(self) == bits(other)
    }
}

impl Eq for Weights {}

impl Weights {
    /// Packs `weights` (`outputs` rows of `inputs`, row-major, as an ONNX 1 x 1
    /// kernel's `O x I`) and `bias` (`outputs` values).
    pub fn pack(weights: &[f32], bias: &[f32], outputs: usize, inputs: usize) -> Option<Weights> {
        if weights.len() != outputs.checked_mul(inputs)? || bias.len() != outputs || inputs == 0 {
            return None;
        }
        let panels_n = outputs.div_ceil(PANEL);
        let mut panels = vec![0f32; panels_n * inputs * PANEL];
        for o in 0..outputs {
            let (j, c) = (o / PANEL, o % PANEL);
            for k in 0..inputs {
                panels[(j * inputs + k) * PANEL + c] = weights[o * inputs + k];
            }
        }
        let mut padded = vec![0f32; panels_n * PANEL];
        padded[..outputs].copy_from_slice(bias);
        Some(Weights {
            inputs,
            outputs,
            panels,
            bias: padded,
        })
    }

    pub fn inputs(&self) -> usize {
        self.inputs
    }

    pub fn outputs(&self) -> usize {
        self.outputs
    }
}

/// What is done to a sum after the bias: `min(max(v, lo), hi)` when `clip`
/// is given, then `+ residual` when the call has one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Epilogue {
    pub clip: Option<(f32, f32)>,
}

/// One call's operands but the output.
pub struct Call<'a> {
    pub kernel: Kernel,
    pub weights: &'a Weights,
    pub epilogue: Epilogue,
    pub pixels: usize,
    pub input: &'a [f32],
    pub input_layout: Layout,
    /// Where each input value of a pixel lies instead of
    /// `input_layout.channel` steps: input value `k` of pixel `p` is at
    /// `p * input_layout.pixel + taps[k]`. A convolution with a kernel larger
    /// than 1 x 1 reads its input in place this way (`patch_conv`).
    pub taps: Option<&'a [usize]>,
    /// Laid out as the output.
    pub residual: Option<&'a [f32]>,
    pub output_layout: Layout,
}

/// Why a call was refused: a slice shorter than its layout reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutOfBounds(pub &'static str);

/// The instructions a call's tiles run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// 6 pixels x 16 channels a tile, AVX2 and FMA.
    Avx2Fma,
    /// 12 pixels x 32 channels a tile, AVX-512F.
    Avx512,
}

impl Kernel {
    /// Every kernel, the widest first.
    pub const ALL: [Kernel; 2] = [Kernel::Avx512, Kernel::Avx2Fma];

    /// Its name in logs, `bench`'s JSON and `bench --pointwise-kernel`.
    pub fn name(self) -> &'static str {
        match self {
            Kernel::Avx2Fma => "verdict_avx2_fma_pointwise_f32",
            Kernel::Avx512 => "verdict_avx512_pointwise_f32",
        }
    }

    /// The kernel of that [`Kernel::name`], or of its short name (`avx2`, `avx512`).
    pub fn named(name: &str) -> Option<Kernel> {
        Kernel::ALL.into_iter().find(|k| {
            k.name() == name
                || match k {
                    Kernel::Avx2Fma => name == "avx2",
                    Kernel::Avx512 => name == "avx512",
                }
        })
    }

    /// Whether this CPU has the instructions it needs.
    pub fn runs_here(self) -> bool {
        match self {
            Kernel::Avx2Fma => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
            Kernel::Avx512 => is_x86_feature_detected!("avx512f"),
        }
    }
}

/// `output[p, o] = epilogue(bias[o] + sum_k weights[o, k] * input[p, k]) (+ residual[p, o])`
/// for every pixel `p` and output channel `o`. Every slice is checked
/// against its layout first; the caller checks that its kernel
/// [`Kernel::runs_here`].
pub fn run(call: Call<'_>, output: &mut [f32]) -> Result<(), OutOfBounds> {
    let w = call.weights;
    let input_extent = match call.taps {
        None => call.input_layout.extent(call.pixels, w.inputs),
        Some(taps) if taps.len() != w.inputs => return Err(OutOfBounds("taps")),
        Some(taps) => match (call.pixels, taps.iter().max()) {
            (0, _) | (_, None) => 0,
            (pixels, Some(&last)) => (pixels - 1) * call.input_layout.pixel + last + 1,
        },
    };
    if call.input.len() < input_extent {
        return Err(OutOfBounds("input"));
    }
    let out_extent = call.output_layout.extent(call.pixels, w.outputs);
    if output.len() < out_extent {
        return Err(OutOfBounds("output"));
    }
    if call.residual.is_some_and(|r| r.len() < out_extent) {
        return Err(OutOfBounds("residual"));
    }
    assert!(
        call.kernel.runs_here(),
        "pointwise_kernel::run: this CPU lacks what {} needs",
        call.kernel.name()
    );
    let ops = Operands {
        weights: call.weights,
        clip: call.epilogue.clip,
        input: call.input,
        input_layout: call.input_layout,
        residual: call.residual,
        output_layout: call.output_layout,
    };
    // SAFETY: the extents are checked above, the kernel's instructions
    // asserted; with taps, every tap is at most the largest one.
    unsafe {
        match call.taps {
            None => tiles(
                call.kernel,
                &ops,
                Stride(call.input_layout.channel),
                call.pixels,
                output,
            ),
            Some(taps) => tiles(call.kernel, &ops, Taps(taps), call.pixels, output),
        }
    }
    Ok(())
}

/// Where input value `k` of a pixel lies, from the pixel's first value.
trait Channels: Copy {
    /// # Safety
    /// `k` is below the weights' inputs.
    unsafe fn offset(self, k: usize) -> usize;
}

/// Input values `k` steps apart.
#[derive(Clone, Copy)]
struct Stride(usize);

impl Channels for Stride {
    #[inline(always)]
    unsafe fn offset(self, k: usize) -> usize {
        k * self.0
    }
}

/// Input values where a table says (one entry per input value).
#[derive(Clone, Copy)]
struct Taps<'a>(&'a [usize]);

impl Channels for Taps<'_> {
    #[inline(always)]
    unsafe fn offset(self, k: usize) -> usize {
        // SAFETY: `run` checked that the table has an entry per input.
        unsafe { *self.0.get_unchecked(k) }
    }
}

/// The tiles of a call, block of pixels by block, panel by panel.
///
/// # Safety
/// The kernel's instructions are present, and every offset a tile reaches
/// (through `channels` too) lies inside the checked extents.
unsafe fn tiles<C: Channels>(
    kernel: Kernel,
    ops: &Operands<'_>,
    channels: C,
    pixels: usize,
    output: &mut [f32],
) {
    let w = ops.weights;
    let out = output.as_mut_ptr();
    let (rows, panels_a_tile) = match kernel {
        Kernel::Avx2Fma => (ROWS, 1),
        Kernel::Avx512 => (ROWS_512, 2),
    };
    let block = (BLOCK_FLOATS / w.inputs).max(rows) / rows * rows;
    let panels = w.outputs.div_ceil(PANEL);
    let mut start = 0;
    while start < pixels {
        let end = (start + block).min(pixels);
        for panel in (0..panels).step_by(panels_a_tile) {
            let mut p = start;
            while p < end {
                let r = (end - p).min(rows);
                // SAFETY: the caller's promise.
                unsafe {
                    match kernel {
                        Kernel::Avx2Fma => tile_avx2(ops, channels, out, panel, p, r),
                        Kernel::Avx512 if panel + 1 < panels => {
                            tile_avx512::<2, C>(ops, channels, out, panel, p, r)
                        }
                        Kernel::Avx512 => tile_avx512::<1, C>(ops, channels, out, panel, p, r),
                    }
                }
                p += r;
            }
        }
        start = end;
    }
}

/// An AVX2 tile of `rows` (1 to 6) pixels from `p0`, panel `panel`.
///
/// # Safety
/// AVX2 and FMA are present, and the tile lies inside the checked extents.
unsafe fn tile_avx2<C: Channels>(
    ops: &Operands<'_>,
    channels: C,
    out: *mut f32,
    panel: usize,
    p0: usize,
    rows: usize,
) {
    unsafe {
        match rows {
            6 => tile::<6, C>(ops, channels, out, panel, p0),
            5 => tile::<5, C>(ops, channels, out, panel, p0),
            4 => tile::<4, C>(ops, channels, out, panel, p0),
            3 => tile::<3, C>(ops, channels, out, panel, p0),
            2 => tile::<2, C>(ops, channels, out, panel, p0),
            _ => tile::<1, C>(ops, channels, out, panel, p0),
        }
    }
}

/// An AVX-512 tile of `rows` (1 to 12) pixels from `p0`, panels `panel ..
/// panel + W`.
///
/// # Safety
/// AVX-512F is present, and the tile lies inside the checked extents.
unsafe fn tile_avx512<const W: usize, C: Channels>(
    ops: &Operands<'_>,
    channels: C,
    out: *mut f32,
    panel: usize,
    p0: usize,
    rows: usize,
) {
    unsafe {
        match rows {
            12 => tile512::<12, W, C>(ops, channels, out, panel, p0),
            11 => tile512::<11, W, C>(ops, channels, out, panel, p0),
            10 => tile512::<10, W, C>(ops, channels, out, panel, p0),
            9 => tile512::<9, W, C>(ops, channels, out, panel, p0),
            8 => tile512::<8, W, C>(ops, channels, out, panel, p0),
            7 => tile512::<7, W, C>(ops, channels, out, panel, p0),
            6 => tile512::<6, W, C>(ops, channels, out, panel, p0),
            5 => tile512::<5, W, C>(ops, channels, out, panel, p0),
            4 => tile512::<4, W, C>(ops, channels, out, panel, p0),
            3 => tile512::<3, W, C>(ops, channels, out, panel, p0),
            2 => tile512::<2, W, C>(ops, channels, out, panel, p0),
            _ => tile512::<1, W, C>(ops, channels, out, panel, p0),
        }
    }
}

/// A call's operands but the output, which [`tile`] writes through a pointer.
struct Operands<'a> {
    weights: &'a Weights,
    clip: Option<(f32, f32)>,
    input: &'a [f32],
    input_layout: Layout,
    residual: Option<&'a [f32]>,
    output_layout: Layout,
}

impl Operands<'_> {
    /// Where the input's pixels `p0 .. p0 + R` start.
    ///
    /// # Safety
    /// Those pixels lie inside the input (`run` checks its extent).
    #[inline(always)]
    unsafe fn rows<const R: usize>(&self, p0: usize) -> [*const f32; R] {
        let x = self.input.as_ptr();
        let mut rows = [x; R];
        for (r, row) in rows.iter_mut().enumerate() {
            // SAFETY: the caller's promise.
            *row = unsafe { x.add((p0 + r) * self.input_layout.pixel) };
        }
        rows
    }
}

/// Pixels `p0 .. p0 + R`, output channels of panel `panel`.
#[target_feature(enable = "avx2,fma")]
unsafe fn tile<const R: usize, C: Channels>(
    call: &Operands<'_>,
    channels: C,
    out: *mut f32,
    panel: usize,
    p0: usize,
) {
    let w = call.weights;
    let k_n = w.inputs;
    unsafe {
        let weights = w.panels.as_ptr().add(panel * k_n * PANEL);
        let rows = call.rows::<R>(p0);
        let mut acc = [[_mm256_setzero_ps(); 2]; R];
        for k in 0..k_n {
            let w0 = _mm256_loadu_ps(weights.add(k * PANEL));
            let w1 = _mm256_loadu_ps(weights.add(k * PANEL + 8));
            for r in 0..R {
                let a = _mm256_broadcast_ss(&*rows[r].add(channels.offset(k)));
                acc[r][0] = _mm256_fmadd_ps(a, w0, acc[r][0]);
                acc[r][1] = _mm256_fmadd_ps(a, w1, acc[r][1]);
            }
        }
        let b0 = _mm256_loadu_ps(w.bias.as_ptr().add(panel * PANEL));
        let b1 = _mm256_loadu_ps(w.bias.as_ptr().add(panel * PANEL + 8));
        for sums in acc.iter_mut() {
            sums[0] = _mm256_add_ps(sums[0], b0);
            sums[1] = _mm256_add_ps(sums[1], b1);
        }
        if let Some((lo, hi)) = call.clip {
            let (lo, hi) = (_mm256_set1_ps(lo), _mm256_set1_ps(hi));
            for sums in acc.iter_mut() {
                for v in sums.iter_mut() {
                    *v = _mm256_min_ps(_mm256_max_ps(*v, lo), hi);
                }
            }
        }
        let o0 = panel * PANEL;
        let width = (w.outputs - o0).min(PANEL);
        let (yp, yo) = (call.output_layout.pixel, call.output_layout.channel);
        if yo == 1 && width == PANEL {
            for (r, sums) in acc.iter().enumerate() {
                let at = (p0 + r) * yp + o0;
                let (mut v0, mut v1) = (sums[0], sums[1]);
                if let Some(res) = call.residual {
                    v0 = _mm256_add_ps(v0, _mm256_loadu_ps(res.as_ptr().add(at)));
                    v1 = _mm256_add_ps(v1, _mm256_loadu_ps(res.as_ptr().add(at + 8)));
                }
                _mm256_storeu_ps(out.add(at), v0);
                _mm256_storeu_ps(out.add(at + 8), v1);
            }
            return;
        }
        let mut spill = [[0f32; PANEL]; R];
        for (r, sums) in acc.iter().enumerate() {
            _mm256_storeu_ps(spill[r].as_mut_ptr(), sums[0]);
            _mm256_storeu_ps(spill[r].as_mut_ptr().add(8), sums[1]);
        }
        for c in 0..width {
            for (r, row) in spill.iter().enumerate() {
                let at = (p0 + r) * yp + (o0 + c) * yo;
                let mut v = row[c];
                if let Some(res) = call.residual {
                    v += *res.get_unchecked(at);
                }
                *out.add(at) = v;
            }
        }
    }
}

/// Pixels `p0 .. p0 + R`, output channels of panels `panel .. panel + W`.
#[target_feature(enable = "avx512f")]
unsafe fn tile512<const R: usize, const W: usize, C: Channels>(
    call: &Operands<'_>,
    channels: C,
    out: *mut f32,
    panel: usize,
    p0: usize,
) {
    let w = call.weights;
    let k_n = w.inputs;
    unsafe {
        let weights = w.panels.as_ptr().add(panel * k_n * PANEL);
        let rows = call.rows::<R>(p0);
        let mut acc = [[_mm512_setzero_ps(); W]; R];
        for k in 0..k_n {
            let mut wk = [_mm512_setzero_ps(); W];
            for (j, v) in wk.iter_mut().enumerate() {
                *v = _mm512_loadu_ps(weights.add((j * k_n + k) * PANEL));
            }
            for r in 0..R {
                let a = _mm512_set1_ps(*rows[r].add(channels.offset(k)));
                for j in 0..W {
                    acc[r][j] = _mm512_fmadd_ps(a, wk[j], acc[r][j]);
                }
            }
        }
        let o0 = panel * PANEL;
        for j in 0..W {
            let b = _mm512_loadu_ps(w.bias.as_ptr().add(o0 + j * PANEL));
            for sums in acc.iter_mut() {
                sums[j] = _mm512_add_ps(sums[j], b);
            }
        }
        if let Some((lo, hi)) = call.clip {
            let (lo, hi) = (_mm512_set1_ps(lo), _mm512_set1_ps(hi));
            for sums in acc.iter_mut() {
                for v in sums.iter_mut() {
                    *v = _mm512_min_ps(_mm512_max_ps(*v, lo), hi);
                }
            }
        }
        let width = (w.outputs - o0).min(W * PANEL);
        let (yp, yo) = (call.output_layout.pixel, call.output_layout.channel);
        if yo == 1 {
            for (r, sums) in acc.iter().enumerate() {
                for (j, &sum) in sums.iter().enumerate() {
                    let lanes = width.saturating_sub(j * PANEL).min(PANEL);
                    let mask: __mmask16 = ((1u32 << lanes) - 1) as u16;
                    let at = (p0 + r) * yp + o0 + j * PANEL;
                    let mut v = sum;
                    if let Some(res) = call.residual {
                        let more = _mm512_maskz_loadu_ps(mask, res.as_ptr().add(at));
                        v = _mm512_add_ps(v, more);
                    }
                    _mm512_mask_storeu_ps(out.add(at), mask, v);
                }
            }
            return;
        }
        let mut spill = [[[0f32; PANEL]; W]; R];
        for (r, sums) in acc.iter().enumerate() {
            for (j, &sum) in sums.iter().enumerate() {
                _mm512_storeu_ps(spill[r][j].as_mut_ptr(), sum);
            }
        }
        for c in 0..width {
            for (r, row) in spill.iter().enumerate() {
                let at = (p0 + r) * yp + (o0 + c) * yo;
                let mut v = row[c / PANEL][c % PANEL];
                if let Some(res) = call.residual {
                    v += *res.get_unchecked(at);
                }
                *out.add(at) = v;
            }
        }
    }
}

/// Values in [-1, 1] drawn from `seed`, the operands of the kernels' tests.
#[cfg(test)]
pub(super) fn test_values(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s % 2001) as f32 / 1000.0 - 1.0
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::test_values as values;
    use super::*;

    /// One test case's operands, unpacked.
    struct Case<'a> {
        pixels: usize,
        inputs: usize,
        outputs: usize,
        weights: &'a [f32],
        bias: &'a [f32],
        clip: Option<(f32, f32)>,
        x: &'a [f32],
        xl: Layout,
        residual: Option<&'a [f32]>,
        yl: Layout,
    }

    /// The definition, in f64: (offset in the output, value).
    fn reference(c: &Case<'_>) -> Vec<(usize, f64)> {
        let mut out = vec![];
        for p in 0..c.pixels {
            for o in 0..c.outputs {
                let mut s = 0f64;
                for k in 0..c.inputs {
                    s += c.weights[o * c.inputs + k] as f64
                        * c.x[p * c.xl.pixel + k * c.xl.channel] as f64;
                }
                s += c.bias[o] as f64;
                if let Some((lo, hi)) = c.clip {
                    s = s.max(lo as f64).min(hi as f64);
                }
                let at = p * c.yl.pixel + o * c.yl.channel;
                if let Some(r) = c.residual {
                    s += r[at] as f64;
                }
                out.push((at, s));
            }
        }
        out
    }

    #[test]
    fn matches_the_definition_in_every_layout_and_shape() {
        let kernels: Vec<Kernel> = Kernel::ALL.into_iter().filter(|k| k.runs_here()).collect();
        eprintln!("kernels this CPU runs, checked here: {kernels:?}");
        for kernel in kernels {
            matches_the_definition(kernel);
        }
    }

    fn matches_the_definition(kernel: Kernel) {
        for &(pixels, inputs, outputs) in &[
            (1, 1, 1),
            (7, 16, 96),
            (13, 24, 40),
            (49, 112, 21),
            (50, 3, 16),
            (36, 320, 33),
            (25, 16, 48),
            (30, 8, 64),
            // More than one block of input (BLOCK_FLOATS), the last one ragged.
            (1001, 70, 33),
        ] {
            let w = values(outputs * inputs, 1);
            let bias = values(outputs, 2);
            let packed = Weights::pack(&w, &bias, outputs, inputs).unwrap();
            for (xl, yl) in [
                (Layout::channel_first(pixels), Layout::channel_last(outputs)),
                (Layout::channel_last(inputs), Layout::channel_first(pixels)),
                (Layout::channel_last(inputs), Layout::channel_last(outputs)),
                (Layout::channel_first(pixels), Layout::channel_first(pixels)),
            ] {
                for clip in [None, Some((0.0, 0.5))] {
                    for with_res in [false, true] {
                        let x = values(pixels * inputs, 3);
                        let res = values(pixels * outputs, 4);
                        let res = with_res.then_some(res.as_slice());
                        // A tail past the output that no store may reach.
                        let mut y = vec![f32::NAN; pixels * outputs + PANEL * 2];
                        run(
                            Call {
                                kernel,
                                weights: &packed,
                                epilogue: Epilogue { clip },
                                pixels,
                                input: &x,
                                input_layout: xl,
                                taps: None,
                                residual: res,
                                output_layout: yl,
                            },
                            &mut y,
                        )
                        .unwrap();
                        let want = reference(&Case {
                            pixels,
                            inputs,
                            outputs,
                            weights: &w,
                            bias: &bias,
                            clip,
                            x: &x,
                            xl,
                            residual: res,
                            yl,
                        });
                        let (y, tail) = y.split_at(pixels * outputs);
                        assert!(
                            tail.iter().all(|v| v.is_nan()),
                            "{kernel:?} wrote past the end"
                        );
                        assert_eq!(want.len(), y.len());
                        for (at, v) in want {
                            let tol = 1e-5 * (inputs as f64 + 1.0);
                            assert!(
                                (y[at] as f64 - v).abs() <= tol,
                                "{kernel:?} {pixels}x{inputs}->{outputs} {xl:?} {yl:?} clip {clip:?} \
                                 residual {with_res}: at {at} got {} want {v}",
                                y[at]
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn refuses_slices_shorter_than_their_layout() {
        let packed = Weights::pack(&[1.0; 8], &[0.0; 2], 2, 4).unwrap();
        let x = [0f32; 11];
        let mut y = [0f32; 6];
        let call = |x: &[f32], y: &mut [f32]| {
            run(
                Call {
                    kernel: Kernel::Avx2Fma,
                    weights: &packed,
                    epilogue: Epilogue { clip: None },
                    pixels: 3,
                    input: x,
                    input_layout: Layout::channel_last(4),
                    taps: None,
                    residual: None,
                    output_layout: Layout::channel_last(2),
                },
                y,
            )
        };
        assert_eq!(call(&x, &mut y), Err(OutOfBounds("input")));
        let x = [0f32; 12];
        assert_eq!(call(&x, &mut y[..5]), Err(OutOfBounds("output")));
        assert!(Weights::pack(&[1.0; 7], &[0.0; 2], 2, 4).is_none());
    }
}
