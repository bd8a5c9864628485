//! Hidden-layer products in bfloat16 for [`super::FusedField`]'s [`Precision::Bf16`]: the
//! activations and the weights rounded to bf16 (8 significant bits), the products summed in
//! f32 by AVX512-BF16's `vdpbf16ps`, which does two multiply-adds a lane where an f32 FMA does
//! one. A layer of 256 → 256 units over 1,024 rows runs ≈ 2× the f32 `gemm` on a Zen 4 core
//! (BENCHMARKS.md, "bf16 hidden layers for the plain velocity"); each output carries a
//! relative error of a few 2⁻⁸ of the sum of |a|·|w| (both operands rounded once; the sums
//! are f32).
//!
//! Only CPUs with `avx512_bf16` (AMD Zen 4 and later, Intel Sapphire Rapids and later) have
//! the instruction; elsewhere [`supported`] is false and the field stays in f32.

use super::mlp::FusedMlp;

/// Whether this CPU runs the bf16 products (AVX-512F and AVX512-BF16).
pub fn supported() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static OK: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *OK.get_or_init(|| is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bf16"))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The precision of [`super::FusedField`]'s hidden-layer products.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// f32 throughout (the default; equal to the burn path to f32 rounding).
    #[default]
    F32,
    /// Hidden layers (all but the first and the last) on bf16 operands with f32 sums, for
    /// blocks of more than 32 rows, where [`supported`]; f32 otherwise. For pictures and
    /// animations, where a velocity good to ≈ 0.5 % is as good as exact: the explorer's
    /// particles. Not for likelihoods, metrics or exports.
    Bf16,
}

/// Columns of one panel: two 16-lane registers of f32 sums.
const COLS: usize = 32;

/// bf16 of an f32, rounded to nearest, ties to even, a NaN to a quiet NaN (as
/// `vcvtne2ps2bf16` converts).
fn to_bf16(x: f32) -> u32 {
    if x.is_nan() {
        return 0x7fc0 | ((x.to_bits() >> 16) & 0x8000);
    }
    let u = x.to_bits();
    (u.wrapping_add(0x7fff + ((u >> 16) & 1))) >> 16
}

/// One layer's weights `[d_out, d_in]` (PyTorch layout) in bf16, packed for the kernel:
/// panels of 32 outputs; in a panel, for each pair of inputs (2k, 2k + 1), 32 words holding
/// (w[o][2k], w[o][2k + 1]) for the panel's outputs o (zeros past `d_out` and `d_in`).
#[derive(Debug, Clone)]
pub(crate) struct PackedLayer {
    d_in: usize,
    d_out: usize,
    data: Vec<u32>,
}

impl PackedLayer {
    fn new(w: &[f32], d_in: usize, d_out: usize) -> Self {
        let (kp, np) = (d_in.div_ceil(2), d_out.div_ceil(COLS));
        let mut data = vec![0u32; np * kp * COLS];
        let at = |o: usize, i: usize| if o < d_out && i < d_in { to_bf16(w[o * d_in + i]) } else { 0 };
        for p in 0..np {
            for k in 0..kp {
                for c in 0..COLS {
                    let o = p * COLS + c;
                    data[(p * kp + k) * COLS + c] = at(o, 2 * k) | (at(o, 2 * k + 1) << 16);
                }
            }
        }
        Self { d_in, d_out, data }
    }
}

/// The hidden layers of `net` packed for [`matmul`] (`None` for the first and last layers,
/// which stay in f32), or `None` where the CPU lacks the instructions.
pub(crate) fn pack_hidden(net: &FusedMlp) -> Option<Vec<Option<PackedLayer>>> {
    if !supported() {
        return None;
    }
    let layers = &net.layout.layers;
    let nl = layers.len();
    Some(
        layers
            .iter()
            .enumerate()
            .map(|(k, s)| {
                (k > 0 && k + 1 < nl)
                    .then(|| PackedLayer::new(&net.params[s.w..s.w + s.d_in * s.d_out], s.d_in, s.d_out))
            })
            .collect(),
    )
}

/// out ← a · Wᵀ for `rows` rows of `a: [rows, d_in]` (f32, rounded to bf16 here, into
/// `work`), `out: [rows, d_out]` (f32 sums, no bias).
///
/// # Panics
/// If the slices are shorter than the shapes, or the CPU lacks the instructions (a
/// [`PackedLayer`] is only made where it has them).
pub(crate) fn matmul(rows: usize, a: &[f32], layer: &PackedLayer, out: &mut [f32], work: &mut Vec<u32>) {
    let (d_in, d_out) = (layer.d_in, layer.d_out);
    assert!(a.len() >= rows * d_in && out.len() >= rows * d_out);
    assert!(supported(), "bf16 products need AVX512-BF16");
    let kp = d_in.div_ceil(2);
    work.clear();
    work.resize(rows * kp, 0);
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the CPU has AVX-512F and AVX512-BF16 (asserted above); the shapes are checked.
    unsafe {
        x86::to_pairs(&a[..rows * d_in], rows, d_in, work);
        x86::product(rows, work, kp, &layer.data, d_out, out);
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{COLS, to_bf16};
    use std::arch::x86_64::*;

    /// Rows of `a` (`d_in` values each) as bf16 pairs, `kp = ⌈d_in / 2⌉` words a row (the
    /// first value of each pair in the low half, a zero past `d_in`).
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) fn to_pairs(a: &[f32], rows: usize, d_in: usize, out: &mut [u32]) {
        let kp = d_in.div_ceil(2);
        for r in 0..rows {
            let (src, dst) = (&a[r * d_in..(r + 1) * d_in], &mut out[r * kp..(r + 1) * kp]);
            let body = d_in - d_in % 32;
            let mut i = 0;
            while i < body {
                // SAFETY: i + 32 <= body <= d_in = src.len(), and dst holds i/2 + 16 words.
                unsafe {
                    let lo = _mm512_loadu_ps(src.as_ptr().add(i));
                    let hi = _mm512_loadu_ps(src.as_ptr().add(i + 16));
                    // The 32 halves in order: lo's 16 values, then hi's (`vcvtne2ps2bf16`
                    // fills the low halves from its second operand); so word k holds
                    // (src[i + 2k], src[i + 2k + 1]), the first in its low half.
                    let p: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(hi, lo));
                    _mm512_storeu_si512(dst.as_mut_ptr().add(i / 2).cast(), p);
                }
                i += 32;
            }
            let x = |j: usize| if j < d_in { to_bf16(src[j]) } else { 0 };
            for (k, d) in dst.iter_mut().enumerate().skip(body / 2) {
                *d = x(2 * k) | (x(2 * k + 1) << 16);
            }
        }
    }

    /// out[r][o] = Σₖ a[r][k]·w[o][k] over the bf16 pairs, f32 sums: for each panel of 32
    /// outputs, tiles of R rows keep 2·R sums in registers through all `kp` pairs.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) fn product(rows: usize, a: &[u32], kp: usize, w: &[u32], d_out: usize, out: &mut [f32]) {
        let np = d_out.div_ceil(COLS);
        for p in 0..np {
            let panel = &w[p * kp * COLS..(p + 1) * kp * COLS];
            let cols = (d_out - p * COLS).min(COLS);
            let mut r = 0;
            while r < rows {
                let left = rows - r;
                let done = if left >= 8 {
                    tile::<8>(a, r, kp, panel, out, d_out, p * COLS, cols)
                } else if left >= 4 {
                    tile::<4>(a, r, kp, panel, out, d_out, p * COLS, cols)
                } else if left >= 2 {
                    tile::<2>(a, r, kp, panel, out, d_out, p * COLS, cols)
                } else {
                    tile::<1>(a, r, kp, panel, out, d_out, p * COLS, cols)
                };
                r += done;
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f,avx512bf16")]
    #[inline]
    fn tile<const R: usize>(
        a: &[u32],
        r0: usize,
        kp: usize,
        panel: &[u32],
        out: &mut [f32],
        d_out: usize,
        col0: usize,
        cols: usize,
    ) -> usize {
        assert!(a.len() >= (r0 + R) * kp && panel.len() >= kp * COLS);
        assert!(out.len() >= (r0 + R - 1) * d_out + col0 + cols);
        let mut acc = [[_mm512_setzero_ps(); 2]; R];
        for k in 0..kp {
            // SAFETY: k < kp, so the panel's words k·32..k·32 + 32 and a's words
            // (r0 + r)·kp + k are inside the slices (asserted above).
            unsafe {
                let w0: __m512bh = std::mem::transmute(_mm512_loadu_si512(panel.as_ptr().add(k * COLS).cast()));
                let w1: __m512bh = std::mem::transmute(_mm512_loadu_si512(panel.as_ptr().add(k * COLS + 16).cast()));
                for (r, acc) in acc.iter_mut().enumerate() {
                    let x: __m512bh =
                        std::mem::transmute(_mm512_set1_epi32(*a.get_unchecked((r0 + r) * kp + k) as i32));
                    acc[0] = _mm512_dpbf16_ps(acc[0], x, w0);
                    acc[1] = _mm512_dpbf16_ps(acc[1], x, w1);
                }
            }
        }
        let (m0, m1) = (mask(cols), mask(cols.saturating_sub(16)));
        for (r, acc) in acc.iter().enumerate() {
            let at = (r0 + r) * d_out + col0;
            // SAFETY: the masked lanes lie within the row's `cols` outputs (asserted above).
            unsafe {
                _mm512_mask_storeu_ps(out.as_mut_ptr().add(at), m0, acc[0]);
                _mm512_mask_storeu_ps(out.as_mut_ptr().add(at + 16), m1, acc[1]);
            }
        }
        R
    }

    /// The first `n` (≤ 16) lanes.
    #[inline(always)]
    fn mask(n: usize) -> __mmask16 {
        if n >= 16 { 0xffff } else { (1u16 << n) - 1 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_to_bf16_is_to_nearest_even() {
        // 1 + 2⁻⁸ lies halfway between 1 and 1 + 2⁻⁷: ties to the even 1.
        assert_eq!(to_bf16(1.0 + 2f32.powi(-8)), 0x3f80);
        // 1 + 3·2⁻⁸ lies halfway between 1 + 2⁻⁷ (odd) and 1 + 2⁻⁶: up to 1 + 2⁻⁶.
        assert_eq!(to_bf16(1.0 + 3.0 * 2f32.powi(-8)), 0x3f82);
        assert_eq!(to_bf16(-2.5), 0xc020);
        assert_eq!(f32::from_bits(to_bf16(3.0) << 16), 3.0);
        // A NaN whose payload sits in the low bits stays a NaN (rounding would make it ∞).
        assert!(f32::from_bits(to_bf16(f32::from_bits(0x7f80_0001)) << 16).is_nan());
        assert_eq!(to_bf16(f32::INFINITY), 0x7f80);
    }

    /// The bf16 product against f64 sums of the same (unrounded) operands, on shapes with
    /// partial panels, odd inputs and every row-tile size: within the bound of one rounding of
    /// each operand (2⁻⁸ relative each) plus f32 sums, and far from it being exact.
    #[test]
    fn bf16_products_are_within_their_rounding_bound_of_the_exact_sums() {
        if !supported() {
            eprintln!("skipped: this CPU has no AVX512-BF16");
            return;
        }
        let mut s = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        };
        for (rows, d_in, d_out) in [(15usize, 256usize, 256usize), (9, 33, 40), (1, 64, 17), (37, 7, 32)] {
            let a: Vec<f32> = (0..rows * d_in).map(|_| next() * 4.0).collect();
            let w: Vec<f32> = (0..d_out * d_in).map(|_| next()).collect();
            let layer = PackedLayer::new(&w, d_in, d_out);
            let mut out = vec![f32::NAN; rows * d_out];
            matmul(rows, &a, &layer, &mut out, &mut Vec::new());
            let mut worst_rel = 0f64;
            for r in 0..rows {
                for o in 0..d_out {
                    let (mut exact, mut mag) = (0f64, 0f64);
                    for i in 0..d_in {
                        let p = a[r * d_in + i] as f64 * w[o * d_in + i] as f64;
                        exact += p;
                        mag += p.abs();
                    }
                    let err = (out[r * d_out + o] as f64 - exact).abs();
                    // Each operand within 2⁻⁸ relative (8 significant bits, to nearest): a
                    // product within 2⁻⁷ + 2⁻¹⁶; f32 sums of d_in terms add ≤ d_in·2⁻²⁴ of the
                    // magnitude.
                    let bound = (2f64.powi(-7) + 2f64.powi(-15) + (d_in + 2) as f64 * 2f64.powi(-24)) * mag;
                    assert!(err <= bound, "rows {rows}, {d_in} → {d_out}: row {r} out {o}: error {err} > {bound}");
                    worst_rel = worst_rel.max(err / mag);
                }
            }
            // bf16 operands really were used: far coarser than f32 sums alone would be.
            assert!(worst_rel > 2f64.powi(-14), "{rows}, {d_in} → {d_out}: worst relative error {worst_rel}");
        }
    }
}
