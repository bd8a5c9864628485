//! Element-wise kernels of the engine, compiled three times and picked at run time.
//!
//! Each kernel is written once as plain Rust over slices (straight-line, branch-free bodies that
//! LLVM vectorises) and instantiated inside `#[target_feature]` wrappers for AVX-512 and
//! AVX2 + FMA, plus a portable build without FMA. [`Isa::detect`] picks the best the CPU has,
//! once (`is_x86_feature_detected!`).
//!
//! The exponential is a Cephes-style `expf`: range reduction x = n·ln2 + r with n found by
//! the "magic number" rounding trick (no float→int cast: a saturating `as i32` would scalarise
//! the loop), a degree-6 polynomial for eʳ on |r| ≤ ln2/2 and 2ⁿ built from the exponent
//! bits. Relative error ≈ 2e-7 on [−87, 88]; inputs outside are clamped there.

use crate::model::Activation;

/// The instruction set the kernels run with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// AVX-512F (+ AVX2, FMA), 16 lanes.
    Avx512,
    /// AVX2 + FMA, 8 lanes.
    Avx2,
    /// Whatever the compile target allows, without fused multiply-add.
    Portable,
}

impl Isa {
    /// The best instruction set of this CPU (detected once).
    pub fn detect() -> Isa {
        static ISA: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
        *ISA.get_or_init(|| {
            #[cfg(target_arch = "x86_64")]
            {
                if is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx512vl")
                    && is_x86_feature_detected!("avx2")
                    && is_x86_feature_detected!("fma")
                {
                    return Isa::Avx512;
                }
                if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                    return Isa::Avx2;
                }
            }
            Isa::Portable
        })
    }

    /// Every instruction set this CPU can run (best first), for tests.
    pub fn available() -> Vec<Isa> {
        let best = Isa::detect();
        [Isa::Avx512, Isa::Avx2, Isa::Portable]
            .into_iter()
            .filter(|i| match (best, i) {
                (Isa::Avx512, _) => true,
                (Isa::Avx2, i) => *i != Isa::Avx512,
                (Isa::Portable, i) => *i == Isa::Portable,
            })
            .collect()
    }

    /// A short name (`avx512`, `avx2`, `portable`).
    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx512 => "avx512",
            Isa::Avx2 => "avx2",
            Isa::Portable => "portable",
        }
    }
}

/// How a body computes a·b + c: fused where the ISA has FMA, two roundings otherwise (a
/// `mul_add` without hardware FMA is a slow libm call).
pub(crate) trait MulAdd {
    fn mul_add(a: f32, b: f32, c: f32) -> f32;
}
pub(crate) struct Fused;
pub(crate) struct Unfused;
impl MulAdd for Fused {
    #[inline(always)]
    fn mul_add(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
}
impl MulAdd for Unfused {
    #[inline(always)]
    fn mul_add(a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
}

/// Declares `pub fn name(isa, args) -> ret` dispatching to `body::<Fused|Unfused>(args)`.
macro_rules! kernel {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($a:ident : $t:ty),* $(,)?) $(-> $r:ty)? => $body:ident) => {
        $(#[$m])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name(isa: Isa, $($a: $t),*) $(-> $r)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                fn v4($($a: $t),*) $(-> $r)? { $body::<$crate::engine::simd::Fused>($($a),*) }
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                fn v3($($a: $t),*) $(-> $r)? { $body::<$crate::engine::simd::Fused>($($a),*) }
                match isa {
                    // SAFETY: `Isa::detect` found these features on this CPU (callers only
                    // pass an `Isa` from `detect` or `available`).
                    Isa::Avx512 => return unsafe { v4($($a),*) },
                    // SAFETY: as above.
                    Isa::Avx2 => return unsafe { v3($($a),*) },
                    Isa::Portable => {}
                }
            }
            let _ = isa;
            $body::<$crate::engine::simd::Unfused>($($a),*)
        }
    };
}
pub(crate) use kernel;

const LOG2E: f32 = std::f32::consts::LOG2_E;
const MAGIC: f32 = 12_582_912.0; // 1.5·2²³: adding it rounds to an integer in the low mantissa bits
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;

/// eˣ for x clamped to [−87.3, 88.3] (f32 range of normal numbers).
#[inline(always)]
pub(crate) fn exp<M: MulAdd>(x: f32) -> f32 {
    let x = x.clamp(-87.3, 88.3);
    let t = M::mul_add(x, LOG2E, MAGIC);
    let n = t - MAGIC;
    let r = M::mul_add(n, -LN2_HI, x);
    let r = M::mul_add(n, -LN2_LO, r);
    let mut p = 1.987_569_1e-4;
    p = M::mul_add(p, r, 1.398_2e-3);
    p = M::mul_add(p, r, 8.333_452e-3);
    p = M::mul_add(p, r, 4.166_579_6e-2);
    p = M::mul_add(p, r, 1.666_666_5e-1);
    p = M::mul_add(p, r, 0.5);
    let e = M::mul_add(p, r * r, r) + 1.0;
    // t's bits minus MAGIC's bits is n (two's complement); 2ⁿ has exponent field n + 127.
    let scale = f32::from_bits(t.to_bits().wrapping_sub(MAGIC.to_bits()).wrapping_add(127) << 23);
    e * scale
}

/// erfc(x) for x ≥ 0 with relative error < 1.2e-7 (Numerical Recipes `erfcc`, Chebyshev fit).
#[inline(always)]
fn erfc_pos<M: MulAdd>(x: f32) -> f32 {
    let t = 1.0 / M::mul_add(0.5, x, 1.0);
    let mut p = 0.170_872_77;
    p = M::mul_add(p, t, -0.822_152_23);
    p = M::mul_add(p, t, 1.488_515_9);
    p = M::mul_add(p, t, -1.135_204);
    p = M::mul_add(p, t, 0.278_868_07);
    p = M::mul_add(p, t, -0.186_288_06);
    p = M::mul_add(p, t, 0.096_784_18);
    p = M::mul_add(p, t, 0.374_091_96);
    p = M::mul_add(p, t, 1.000_023_7);
    p = M::mul_add(p, t, -1.265_512_2);
    t * exp::<M>(p - x * x)
}

/// One activation and its derivative at z.
#[inline(always)]
pub(crate) fn act_and_grad<M: MulAdd>(act: Activation, z: f32) -> (f32, f32) {
    match act {
        Activation::Silu => {
            let s = 1.0 / (1.0 + exp::<M>(-z));
            let h = z * s;
            (h, M::mul_add(h, 1.0 - s, s))
        }
        Activation::Relu => {
            let pos = z > 0.0;
            (if pos { z } else { 0.0 }, if pos { 1.0 } else { 0.0 })
        }
        Activation::Tanh => {
            let h = tanh::<M>(z);
            (h, M::mul_add(-h, h, 1.0))
        }
        Activation::Gelu => {
            let x = z.abs() * std::f32::consts::FRAC_1_SQRT_2;
            let c = 0.5 * erfc_pos::<M>(x);
            let cdf = if z < 0.0 { c } else { 1.0 - c };
            let pdf = 0.398_942_3 * exp::<M>(-0.5 * z * z);
            (z * cdf, M::mul_add(z, pdf, cdf))
        }
    }
}

/// One activation and its first two derivatives at z, (σ(z), σ′(z), σ″(z)): the gradient of
/// the divergence needs σ″.
///
/// # Formula
/// SiLU: σ′ = s + z·s(1 − s), σ″ = s(1 − s)(2 + z(1 − 2s)) with s = sigmoid(z); tanh:
/// σ′ = 1 − h², σ″ = −2h(1 − h²); GELU (exact): σ′ = Φ + zφ, σ″ = φ(2 − z²); ReLU: σ″ = 0.
#[inline(always)]
pub(crate) fn act_grad2(act: Activation, z: f32) -> (f32, f32, f32) {
    match act {
        Activation::Silu => {
            let s = 1.0 / (1.0 + exp::<Unfused>(-z));
            let q = s * (1.0 - s);
            (z * s, s + z * q, q * (2.0 + z * (1.0 - 2.0 * s)))
        }
        Activation::Relu => {
            if z > 0.0 {
                (z, 1.0, 0.0)
            } else {
                (0.0, 0.0, 0.0)
            }
        }
        Activation::Tanh => {
            let h = tanh::<Unfused>(z);
            let d = 1.0 - h * h;
            (h, d, -2.0 * h * d)
        }
        Activation::Gelu => {
            let x = z.abs() * std::f32::consts::FRAC_1_SQRT_2;
            let c = 0.5 * erfc_pos::<Unfused>(x);
            let cdf = if z < 0.0 { c } else { 1.0 - c };
            let pdf = 0.398_942_3 * exp::<Unfused>(-0.5 * z * z);
            (z * cdf, cdf + z * pdf, pdf * (2.0 - z * z))
        }
    }
}

/// One activation at z (no derivative).
#[inline(always)]
pub(crate) fn act_only<M: MulAdd>(act: Activation, z: f32) -> f32 {
    match act {
        Activation::Silu => z / (1.0 + exp::<M>(-z)),
        Activation::Relu => z.max(0.0),
        Activation::Tanh => tanh::<M>(z),
        Activation::Gelu => {
            let x = z.abs() * std::f32::consts::FRAC_1_SQRT_2;
            let c = 0.5 * erfc_pos::<M>(x);
            z * if z < 0.0 { c } else { 1.0 - c }
        }
    }
}

/// tanh(z): an odd Taylor polynomial for |z| < 0.3 (where 1 − e^{−2|z|} would cancel), the
/// exponential form beyond. Relative error < 1e-6.
#[inline(always)]
fn tanh<M: MulAdd>(z: f32) -> f32 {
    let a = z.abs();
    let e = exp::<M>(-2.0 * a);
    let big = (1.0 - e) / (1.0 + e);
    let z2 = z * z;
    let mut p = 62.0 / 2835.0;
    p = M::mul_add(p, z2, -17.0 / 315.0);
    p = M::mul_add(p, z2, 2.0 / 15.0);
    p = M::mul_add(p, z2, -1.0 / 3.0);
    let small = M::mul_add(p * z2, a, a);
    let m = if a < 0.3 { small } else { big };
    if z < 0.0 { -m } else { m }
}

/// Applies `f` to every `h + bias` of a row-major block, the activation chosen outside the
/// loop so the loop body is branch-free.
#[inline(always)]
fn map_rows2(h: &mut [f32], d: &mut [f32], bias: &[f32], f: impl Fn(f32) -> (f32, f32)) {
    let n = bias.len();
    for (hr, dr) in h.chunks_exact_mut(n).zip(d.chunks_exact_mut(n)) {
        for ((hv, dv), b) in hr.iter_mut().zip(dr.iter_mut()).zip(bias) {
            let (a, g) = f(*hv + *b);
            *hv = a;
            *dv = g;
        }
    }
}

#[inline(always)]
fn map_rows(h: &mut [f32], bias: &[f32], f: impl Fn(f32) -> f32) {
    let n = bias.len();
    for hr in h.chunks_exact_mut(n) {
        for (hv, b) in hr.iter_mut().zip(bias) {
            *hv = f(*hv + *b);
        }
    }
}

#[inline(always)]
fn bias_act_grad_body<M: MulAdd>(act: Activation, h: &mut [f32], d: &mut [f32], bias: &[f32]) {
    match act {
        Activation::Silu => map_rows2(h, d, bias, |z| act_and_grad::<M>(Activation::Silu, z)),
        Activation::Relu => map_rows2(h, d, bias, |z| act_and_grad::<M>(Activation::Relu, z)),
        Activation::Tanh => map_rows2(h, d, bias, |z| act_and_grad::<M>(Activation::Tanh, z)),
        Activation::Gelu => map_rows2(h, d, bias, |z| act_and_grad::<M>(Activation::Gelu, z)),
    }
}

#[inline(always)]
fn bias_act_body<M: MulAdd>(act: Activation, h: &mut [f32], bias: &[f32]) {
    match act {
        Activation::Silu => map_rows(h, bias, |z| act_only::<M>(Activation::Silu, z)),
        Activation::Relu => map_rows(h, bias, |z| act_only::<M>(Activation::Relu, z)),
        Activation::Tanh => map_rows(h, bias, |z| act_only::<M>(Activation::Tanh, z)),
        Activation::Gelu => map_rows(h, bias, |z| act_only::<M>(Activation::Gelu, z)),
    }
}

#[inline(always)]
fn bias_add_body<M: MulAdd>(h: &mut [f32], bias: &[f32]) {
    let n = bias.len();
    for hr in h.chunks_exact_mut(n) {
        for (hv, b) in hr.iter_mut().zip(bias) {
            *hv += *b;
        }
    }
}

#[inline(always)]
fn mul_in_place_body<M: MulAdd>(y: &mut [f32], d: &[f32]) {
    for (yv, dv) in y.iter_mut().zip(d) {
        *yv *= *dv;
    }
}

#[inline(always)]
fn axpy_body<M: MulAdd>(y: &mut [f32], a: f32, x: &[f32]) {
    for (yv, xv) in y.iter_mut().zip(x) {
        *yv = M::mul_add(a, *xv, *yv);
    }
}

#[inline(always)]
fn dot_body<M: MulAdd>(a: &[f32], b: &[f32]) -> f32 {
    const L: usize = 32;
    let mut acc = [0f32; L];
    let (ac, ar) = a.split_at(a.len() / L * L);
    let (bc, br) = b.split_at(ac.len());
    for (x, y) in ac.chunks_exact(L).zip(bc.chunks_exact(L)) {
        for k in 0..L {
            acc[k] = M::mul_add(x[k], y[k], acc[k]);
        }
    }
    let mut tail = 0f32;
    for (x, y) in ar.iter().zip(br) {
        tail = M::mul_add(*x, *y, tail);
    }
    // Fixed-order pairwise sum of the lanes (deterministic for a given ISA).
    let mut w = L;
    while w > 1 {
        w /= 2;
        for k in 0..w {
            acc[k] += acc[k + w];
        }
    }
    acc[0] + tail
}

kernel! {
    /// In place over rows of `bias.len()` values: z = h + bias, h ← act(z), d ← act′(z).
    ///
    /// # Shapes
    /// `h, d: [rows, n]`, `bias: [n]`
    pub fn bias_act_grad(act: Activation, h: &mut [f32], d: &mut [f32], bias: &[f32]) => bias_act_grad_body
}
kernel! {
    /// In place over rows: h ← act(h + bias).
    pub fn bias_act(act: Activation, h: &mut [f32], bias: &[f32]) => bias_act_body
}
kernel! {
    /// In place over rows: h ← h + bias.
    pub fn bias_add(h: &mut [f32], bias: &[f32]) => bias_add_body
}
kernel! {
    /// y ← y ⊙ d (an activation's backward: dz = dh ⊙ act′).
    pub fn mul_in_place(y: &mut [f32], d: &[f32]) => mul_in_place_body
}
kernel! {
    /// y ← y + a·x.
    pub fn axpy(y: &mut [f32], a: f32, x: &[f32]) => axpy_body
}
kernel! {
    /// Σ aᵢbᵢ with 32 independent accumulators summed in a fixed order.
    pub fn dot(a: &[f32], b: &[f32]) -> f32 => dot_body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_accurate_to_a_few_ulp_on_every_isa() {
        for isa in Isa::available() {
            for i in 0..20_001 {
                let x = -87.0 + 175.0 * i as f32 / 20_000.0;
                let e = match isa {
                    Isa::Portable => exp::<Unfused>(x),
                    _ => exp::<Fused>(x),
                };
                let r = (x as f64).exp();
                // Cephes expf: ≤ 2 ulp (2.4e-7 relative); 4e-7 leaves room for the clamp edges.
                assert!(((e as f64 - r) / r).abs() < 4e-7, "{isa:?} exp({x}) = {e}, want {r}");
            }
        }
    }

    #[test]
    fn activations_and_derivatives_match_f64_formulas() {
        let zs: Vec<f32> =
            (0..4001).map(|i| -12.0 + 24.0 * i as f32 / 4000.0).chain([0.0, 1e-4, -1e-4, 0.29, 0.31]).collect();
        let f64_ref = |act: Activation, z: f64| -> (f64, f64) {
            match act {
                Activation::Silu => {
                    let s = 1.0 / (1.0 + (-z).exp());
                    (z * s, s * (1.0 + z * (1.0 - s)))
                }
                Activation::Relu => (z.max(0.0), if z > 0.0 { 1.0 } else { 0.0 }),
                Activation::Tanh => (z.tanh(), 1.0 - z.tanh().powi(2)),
                Activation::Gelu => {
                    let cdf = 0.5 * erfc64(-z / std::f64::consts::SQRT_2);
                    let pdf = (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt();
                    (z * cdf, cdf + z * pdf)
                }
            }
        };
        for isa in Isa::available() {
            for act in Activation::ALL {
                let mut h = zs.clone();
                let mut d = vec![0f32; zs.len()];
                bias_act_grad(isa, act, &mut h, &mut d, &[0.0]);
                let mut h2 = zs.clone();
                bias_act(isa, act, &mut h2, &[0.0]);
                for (k, &z) in zs.iter().enumerate() {
                    let (a, g) = f64_ref(act, z as f64);
                    // 2e-6 relative: f32 rounding of a few operations plus the < 1.2e-7 error
                    // of the erfc fit; 2.5e-7 absolute: tanh′ = 1 − h² and SiLU′ near their
                    // limits are differences of numbers ≈ 1, exact only to ulp(1) = 1.2e-7.
                    let tol = |r: f64| 2e-6 * r.abs() + 2.5e-7;
                    assert!((h[k] as f64 - a).abs() < tol(a), "{isa:?} {act:?}({z}) = {}, want {a}", h[k]);
                    assert!((h2[k] as f64 - a).abs() < tol(a), "{isa:?} {act:?}({z}) = {}, want {a}", h2[k]);
                    assert!((d[k] as f64 - g).abs() < tol(g), "{isa:?} {act:?}'({z}) = {}, want {g}", d[k]);
                }
            }
        }
    }

    /// erfc in f64 by its continued fraction / series (reference only).
    fn erfc64(x: f64) -> f64 {
        if x < 0.0 {
            return 2.0 - erfc64(-x);
        }
        if x < 3.0 {
            // erf series: 2/√π Σ (−1)ⁿ x^{2n+1} / (n!(2n+1))
            let mut sum = 0.0;
            let mut term = x;
            let mut n = 0.0;
            while term.abs() > 1e-17 {
                sum += term / (2.0 * n + 1.0);
                n += 1.0;
                term *= -x * x / n;
            }
            1.0 - 2.0 / std::f64::consts::PI.sqrt() * sum
        } else {
            // Continued fraction (Lentz), converges fast for x ≥ 3.
            let mut f = 0.0;
            for k in (1..60).rev() {
                f = (k as f64 / 2.0) / (x + f);
            }
            (-x * x).exp() / std::f64::consts::PI.sqrt() / (x + f)
        }
    }

    #[test]
    fn dot_and_axpy_match_plain_sums() {
        let a: Vec<f32> = (0..301).map(|i| ((i * 37 % 101) as f32 - 50.0) / 17.0).collect();
        let b: Vec<f32> = (0..301).map(|i| ((i * 53 % 97) as f32 - 48.0) / 13.0).collect();
        let want: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
        for isa in Isa::available() {
            let got = dot(isa, &a, &b) as f64;
            // 301 products of size ≤ 15: f32 accumulation error ≲ 301·15·6e-8.
            assert!((got - want).abs() < 3e-4, "{isa:?}: {got} vs {want}");
            let mut y = b.clone();
            axpy(isa, &mut y, 0.5, &a);
            for k in 0..a.len() {
                assert!((y[k] - (b[k] + 0.5 * a[k])).abs() <= 1e-6 * (1.0 + y[k].abs()));
            }
        }
    }

    #[test]
    fn mul_in_place_is_the_elementwise_product_on_every_isa() {
        let y0: Vec<f32> = (0..37).map(|i| i as f32 * 0.25 - 3.0).collect();
        let d: Vec<f32> = (0..37).map(|i| (i % 5) as f32 * 0.5).collect();
        for isa in Isa::available() {
            let mut y = y0.clone();
            mul_in_place(isa, &mut y, &d);
            let want: Vec<f32> = y0.iter().zip(&d).map(|(a, b)| a * b).collect();
            assert_eq!(y, want, "{isa:?}");
        }
    }
}
