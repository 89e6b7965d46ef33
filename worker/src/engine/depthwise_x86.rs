//! A channel-inner depthwise convolution kernel for x86-64, handed to tract
//! through its public kernel registry.
//!
//! The worker plans graphs with depthwise convolutions channel-last
//! (`onnx_graph`), where a run of output positions has its channels
//! contiguous. tract-linalg 0.23.9 has a kernel for that loop on ARM and
//! WebAssembly only; on x86 it runs its portable loop, which reads and
//! writes every output value once per kernel tap (nine times for a 3 x 3
//! kernel, 25 for a 5 x 5). The kernels here keep the sums in registers over
//! all the taps and write each output once, two output positions at a time
//! so that each load of the kernel's weights serves both.
//!
//! tract picks a kernel per function from `tract_linalg::routines`, an
//! `inventory` collection that any crate linked into the program may add to:
//! an architecture kernel is preferred to the portable loop, and of two, the
//! one needing the higher instruction-set level (AVX-512 over AVX2 + FMA) on
//! a machine that has it. Nothing of tract is changed or copied.
//!
//! The sums use fused multiply-adds, so outputs differ from the portable
//! loop's (a multiply, then an add) in the last bits; the pack's parity with
//! onnxruntime (`worker/tests/parity.rs`, 1e-4) covers the whole graph.

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;

use tract_linalg::isa::{Arch, Isa, IsaReq};
use tract_linalg::routines::{Func, Routine, RoutineFactory};

/// The AVX2 + FMA kernel's name in tract's registry (and in its profiles).
pub const AVX2_NAME: &str = "verdict_avx2_fma_depthwise_c_f32";
/// The AVX-512 kernel's name.
pub const AVX512_NAME: &str = "verdict_avx512f_depthwise_c_f32";

inventory::submit! {
    Routine {
        func: Func::DepthwiseC,
        arch: Some(Arch::X86_64),
        isa: IsaReq::ANY.needing(&[Isa::X86_64Avx2, Isa::X86_64Fma]),
        boost: 0,
        round_trip: false,
        factory: RoutineFactory::DepthwiseCF32 { name: AVX2_NAME, run: depthwise_c_avx2 },
    }
}

inventory::submit! {
    Routine {
        func: Func::DepthwiseC,
        arch: Some(Arch::X86_64),
        isa: IsaReq::ANY.needing(&[Isa::X86_64Avx512f]),
        boost: 0,
        round_trip: false,
        factory: RoutineFactory::DepthwiseCF32 { name: AVX512_NAME, run: depthwise_c_avx512 },
    }
}

/// The arguments of one call, as `tract_linalg::routines::DepthwiseCF32`
/// documents them: `len` output positions of `channels` contiguous values,
/// point `i` channel `c` being `bias[c]` plus, over the taps `t`,
/// `kernel[tap_indices[t] * k_stride + c] * input[i * in_stride +
/// offsets[t] + c]`.
struct Call<'a> {
    input: *const f32,
    output: *mut f32,
    kernel: *const f32,
    tap_indices: &'a [usize],
    offsets: &'a [isize],
    bias: *const f32,
    channels: usize,
    k_stride: usize,
    len: usize,
    in_stride: isize,
    out_stride: isize,
}

impl Call<'_> {
    /// Channels `c..channels` of positions `i0..i1`, one value at a time:
    /// what is left after the vectors.
    ///
    /// # Safety
    /// The call's pointers must satisfy `DepthwiseCF32`'s contract.
    unsafe fn scalar_tail(&self, c: usize, i0: usize, i1: usize) {
        for i in i0..i1 {
            let x = unsafe { self.input.offset(i as isize * self.in_stride) };
            let out = unsafe { self.output.offset(i as isize * self.out_stride) };
            for ch in c..self.channels {
                let mut sum = unsafe { *self.bias.add(ch) };
                for (&tap, &off) in self.tap_indices.iter().zip(self.offsets) {
                    let k = unsafe { *self.kernel.add(tap * self.k_stride + ch) };
                    sum = k.mul_add(unsafe { *x.offset(off).add(ch) }, sum);
                }
                unsafe { *out.add(ch) = sum };
            }
        }
    }
}

/// Defines one kernel for a vector type of `$lanes` floats: the loops are the
/// same for AVX2 and AVX-512, only the intrinsics differ.
macro_rules! depthwise_kernel {
    ($name:ident, $inner:ident, $features:literal, $lanes:expr, $vec:ty,
     $load:ident, $store:ident, $fma:ident) => {
        /// # Safety
        /// The pointers must satisfy `tract_linalg::routines::DepthwiseCF32`'s
        /// contract, and the CPU must have the kernel's instruction set (tract's
        /// registry only hands it to one that does).
        #[allow(clippy::too_many_arguments)]
        unsafe fn $name(
            input: *const f32,
            output: *mut f32,
            kernel: *const f32,
            tap_indices: &[usize],
            offsets: &[isize],
            bias: *const f32,
            channels: usize,
            k_stride: usize,
            len: usize,
            in_stride: isize,
            out_stride: isize,
        ) {
            let call = Call {
                input,
                output,
                kernel,
                tap_indices,
                offsets,
                bias,
                channels,
                k_stride,
                len,
                in_stride,
                out_stride,
            };
            unsafe { $inner(&call) }
        }

        #[target_feature(enable = $features)]
        unsafe fn $inner(call: &Call) {
            const LANES: usize = $lanes;
            let taps = call.tap_indices.iter().zip(call.offsets);
            let vectors = call.channels / LANES * LANES;
            // Output positions two at a time: the pair shares each weight load.
            let pairs = call.len / 2 * 2;
            for i in (0..pairs).step_by(2) {
                let x0 = unsafe { call.input.offset(i as isize * call.in_stride) };
                let x1 = unsafe { x0.offset(call.in_stride) };
                let out0 = unsafe { call.output.offset(i as isize * call.out_stride) };
                let out1 = unsafe { out0.offset(call.out_stride) };
                for c in (0..vectors).step_by(LANES) {
                    unsafe {
                        let b: $vec = $load(call.bias.add(c));
                        let (mut a0, mut a1) = (b, b);
                        for (&tap, &off) in taps.clone() {
                            let k: $vec = $load(call.kernel.add(tap * call.k_stride + c));
                            a0 = $fma(k, $load(x0.offset(off).add(c)), a0);
                            a1 = $fma(k, $load(x1.offset(off).add(c)), a1);
                        }
                        $store(out0.add(c), a0);
                        $store(out1.add(c), a1);
                    }
                }
            }
            for i in pairs..call.len {
                let x = unsafe { call.input.offset(i as isize * call.in_stride) };
                let out = unsafe { call.output.offset(i as isize * call.out_stride) };
                for c in (0..vectors).step_by(LANES) {
                    unsafe {
                        let mut a: $vec = $load(call.bias.add(c));
                        for (&tap, &off) in taps.clone() {
                            let k: $vec = $load(call.kernel.add(tap * call.k_stride + c));
                            a = $fma(k, $load(x.offset(off).add(c)), a);
                        }
                        $store(out.add(c), a);
                    }
                }
            }
            if vectors < call.channels {
                unsafe { call.scalar_tail(vectors, 0, call.len) };
            }
        }
    };
}

depthwise_kernel!(
    depthwise_c_avx2,
    depthwise_c_avx2_inner,
    "avx2,fma",
    8,
    __m256,
    _mm256_loadu_ps,
    _mm256_storeu_ps,
    _mm256_fmadd_ps
);

depthwise_kernel!(
    depthwise_c_avx512,
    depthwise_c_avx512_inner,
    "avx512f",
    16,
    __m512,
    _mm512_loadu_ps,
    _mm512_storeu_ps,
    _mm512_fmadd_ps
);

#[cfg(test)]
mod tests {
    use super::*;
    use tract_linalg::routines::DepthwiseCF32;

    /// A deterministic spread of values in [-1, 1).
    fn noise(n: usize, seed: u64) -> Vec<f32> {
        let mut state = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// Runs `kernel` on a channel-last 9 x 7 picture of `channels`
    /// channels (a row `row` floats long, `channels` of them used), every
    /// output position of a 3 x 3 kernel's valid zone in one row at a time,
    /// stride `stride`, and compares with the definition computed in f64.
    fn check(kernel: DepthwiseCF32, channels: usize, row: usize, stride: usize) {
        let (height, width) = (9usize, 7usize);
        let k_stride = channels + 3;
        let input = noise(height * width * row, channels as u64);
        let weights = noise(9 * k_stride, 7);
        let bias = noise(channels, 11);
        let taps: Vec<usize> = (0..9).collect();
        let offsets: Vec<isize> = (0..9)
            .map(|t| ((t / 3) * width * row + (t % 3) * row) as isize)
            .collect();
        let out_w = (width - 3) / stride + 1;
        let out_h = (height - 3) / stride + 1;
        let out_row = channels + 5;
        let mut output = vec![f32::NAN; out_h * out_w * out_row];
        for oy in 0..out_h {
            unsafe {
                kernel(
                    input.as_ptr().add(oy * stride * width * row),
                    output.as_mut_ptr().add(oy * out_w * out_row),
                    weights.as_ptr(),
                    &taps,
                    &offsets,
                    bias.as_ptr(),
                    channels,
                    k_stride,
                    out_w,
                    (stride * row) as isize,
                    out_row as isize,
                );
            }
        }
        for oy in 0..out_h {
            for ox in 0..out_w {
                for c in 0..out_row {
                    let got = output[(oy * out_w + ox) * out_row + c];
                    if c >= channels {
                        assert!(got.is_nan(), "wrote past the channels at {oy},{ox},{c}");
                        continue;
                    }
                    let mut want = f64::from(bias[c]);
                    for t in 0..9 {
                        let (ky, kx) = (t / 3, t % 3);
                        let at = ((oy * stride + ky) * width + ox * stride + kx) * row + c;
                        want += f64::from(weights[t * k_stride + c]) * f64::from(input[at]);
                    }
                    assert!(
                        (f64::from(got) - want).abs() < 1e-5,
                        "{channels} channels, stride {stride}: {got} against {want} at {oy},{ox},{c}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_kernels_compute_the_definition() {
        let isa = tract_linalg::isa::native();
        let mut kernels: Vec<(&str, DepthwiseCF32)> = Vec::new();
        if isa.has(Isa::X86_64Avx2) && isa.has(Isa::X86_64Fma) {
            kernels.push((AVX2_NAME, depthwise_c_avx2));
        }
        if isa.has(Isa::X86_64Avx512f) {
            kernels.push((AVX512_NAME, depthwise_c_avx512));
        }
        assert!(!kernels.is_empty(), "the build needs AVX2 and FMA");
        for (name, kernel) in kernels {
            for channels in [1, 7, 8, 16, 37, 96] {
                for stride in [1, 2] {
                    println!("{name}: {channels} channels, stride {stride}");
                    check(kernel, channels, channels + 2, stride);
                }
            }
        }
    }

    #[test]
    fn tract_runs_the_best_of_them_here() {
        let isa = tract_linalg::isa::native();
        let want = if isa.has(Isa::X86_64Avx512f) {
            AVX512_NAME
        } else {
            AVX2_NAME
        };
        assert_eq!(crate::engine::onnx_graph::depthwise_kernel(), want);
        assert!(tract_linalg::routines::depthwise_c_f32().is_some());
    }
}
