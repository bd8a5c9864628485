//! Forward-mode (JVP) rules of the image layers: 2D convolution, GroupNorm, SiLU on feature
//! maps, nearest ×2 upsampling, and softmax attention; and [`group_norm`], the U-Net's
//! GroupNorm forward.
//!
//! Each rule maps a primal h and its tangents ḣ to (f(h), J_f(h)·ḣ), like the rules of
//! [`super::jvp`], with the same block convention: the tangents of a `[batch, …]` primal are
//! `[k·batch, …]`, block p (rows p·batch … (p+1)·batch − 1) holding the p-th tangent of every
//! sample, and each per-sample derivative factor is broadcast over the k blocks.
//!
//! # Shapes
//! feature maps: `x: [batch, c, h, w]`, `dx: [k·batch, c, h, w]`.

use burn::nn::GroupNorm;
use burn::nn::conv::Conv2d;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Tensor, activation, backend::Backend};

use super::jvp::mul_blocks;
use super::mlp::Activation;

/// Multiplies k stacked tangent blocks `[k·n, a, b]` by a per-sample factor `[n, a', b']`
/// (a' ∈ {1, a}, b' ∈ {1, b}; broadcast over the blocks and the unit axes), giving
/// `[k·n, max(a, a'), max(b, b')]`.
pub fn mul_blocks3<B: Backend>(tangent: Tensor<B, 3>, factor: Tensor<B, 3>) -> Tensor<B, 3> {
    let [kn, a, b] = tangent.dims();
    let [n, _, _] = factor.dims();
    if kn == n {
        return tangent * factor;
    }
    debug_assert_eq!(kn % n, 0, "tangent rows must be a multiple of the batch");
    let y = tangent.reshape([kn / n, n, a, b]) * factor.unsqueeze_dim::<4>(0);
    let [_, _, a2, b2] = y.dims();
    y.reshape([kn, a2, b2])
}

/// `x` repeated for each of the `kn / n` tangent blocks (`[n, …]` → `[kn, …]`), so that a
/// batched matmul can pair each tangent block with its primal.
fn rep<B: Backend, const D: usize>(x: Tensor<B, D>, kn: usize) -> Tensor<B, D> {
    let n = x.dims()[0];
    if kn == n { x } else { x.repeat_dim(0, kn / n) }
}

/// The JVP rule of a 2D convolution (linear in its input: the tangent is convolved without
/// the bias).
///
/// # Formula
/// y = W ⋆ x + b, ẏ = W ⋆ ẋ
///
/// # Shapes
/// `x: [n, c_in, h, w]`, `dx: [k·n, c_in, h, w]` → `y: [n, c_out, h', w']`, `dy: [k·n, c_out, h', w']`
pub fn conv2d_jvp<B: Backend>(conv: &Conv2d<B>, x: Tensor<B, 4>, dx: Tensor<B, 4>) -> (Tensor<B, 4>, Tensor<B, 4>) {
    let linear = Conv2d { bias: None, ..conv.clone() };
    (conv.forward(x), linear.forward(dx))
}

/// GroupNorm's centred values and reciprocal std: x̂ = x − μ and r = 1/√(σ² + ε) per sample
/// and group, `[n, g, m]` and `[n, g, 1]` (m = (c/G)·h·w).
fn group_stats<B: Backend>(norm: &GroupNorm<B>, x: Tensor<B, 4>) -> (Tensor<B, 3>, Tensor<B, 3>) {
    let [n, c, h, w] = x.dims();
    let g = norm.num_groups;
    let m = c / g * h * w;
    let x = x.reshape([n, g, m]);
    let mean = x.clone().sum_dim(2) / m as f64;
    let xc = x.sub(mean);
    let var = xc.clone().square().sum_dim(2) / m as f64;
    (xc, var.add_scalar(norm.epsilon).sqrt().recip())
}

/// The per-(sample, channel) scale γ_c·r and the shift β_c, each `[n, c, 1]` and contiguous
/// (`None` without affine weights).
fn group_affine<B: Backend>(norm: &GroupNorm<B>, r: Tensor<B, 3>, c: usize) -> Option<(Tensor<B, 3>, Tensor<B, 3>)> {
    let [n, g, _] = r.dims();
    match (&norm.gamma, &norm.beta) {
        (Some(gamma), Some(beta)) => {
            // [n, g, 1]·[1, g, c/g]: a small tensor, so its broadcast costs nothing.
            let scale = (r * gamma.val().reshape([1, g, c / g])).reshape([n, c, 1]);
            Some((scale, beta.val().reshape([1, c, 1]).repeat_dim(0, n)))
        }
        _ => None,
    }
}

/// GroupNorm (Wu & He 2018) with the same value as burn's `GroupNorm::forward`, built only from
/// same-shape ops and per-row-scalar broadcasts.
///
/// burn's module multiplies by γ broadcast over batch and pixels, a broadcast that burn-flex runs
/// on a scalar strided path (≈ 50× a same-shape product on a 64-channel 8×8 map). Here γ·r and β
/// are folded into one `[n, c, 1]` scale and shift, which burn-flex broadcasts with SIMD.
///
/// # Formula
/// per sample and group of m = (c/G)·h·w values: μ = mean x, x̂ = x − μ, σ² = mean x̂²,
/// r = 1/√(σ² + ε); out = x̂·(γ_c·r) + β_c
///
/// # Shapes
/// `x: [n, c, h, w]` → `[n, c, h, w]`
pub fn group_norm<B: Backend>(norm: &GroupNorm<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
    let [n, c, h, w] = x.dims();
    let (xc, r) = group_stats(norm, x);
    match group_affine(norm, r.clone(), c) {
        Some((scale, shift)) => (xc.reshape([n, c, h * w]) * scale + shift).reshape([n, c, h, w]),
        None => (xc * r).reshape([n, c, h, w]),
    }
}

/// The JVP rule of GroupNorm (Wu & He 2018), with γ, β its affine weight and bias; the primal
/// is [`group_norm`].
///
/// # Formula
/// per sample and group g of m = (c/G)·h·w values: μ = mean x, x̂ = x − μ, σ² = mean x̂²,
/// r = 1/√(σ² + ε), y = x̂·r, out = γ_c·y + β_c;
/// ẏ = r·(ẋ̂ − y·mean(y ⊙ ẋ̂)) with ẋ̂ = ẋ − mean ẋ, ȯut = γ_c·ẏ
///
/// # Shapes
/// `x: [n, c, h, w]`, `dx: [k·n, c, h, w]` → `[n, c, h, w]`, `[k·n, c, h, w]`
pub fn group_norm_jvp<B: Backend>(
    norm: &GroupNorm<B>,
    x: Tensor<B, 4>,
    dx: Tensor<B, 4>,
) -> (Tensor<B, 4>, Tensor<B, 4>) {
    let [n, c, h, w] = x.dims();
    let [kn, _, _, _] = dx.dims();
    let g = norm.num_groups;
    let m = c / g * h * w;
    let (xc, r) = group_stats(norm, x);
    let y = xc.clone() * r.clone();
    // Every per-sample factor repeated over the k blocks first (cheap copies), so that the
    // products below are same-shape or per-row-scalar ones.
    let yk = rep(y.clone(), kn);
    let dx = dx.reshape([kn, g, m]);
    let dxc = dx.clone() - dx.mean_dim(2);
    let proj = (dxc.clone() * yk.clone()).mean_dim(2);
    let dyhat = (dxc - yk * proj).reshape([kn, c, h * w]);
    match group_affine(norm, r.clone(), c) {
        Some((scale, shift)) => {
            let out = xc.reshape([n, c, h * w]) * scale.clone() + shift;
            (out.reshape([n, c, h, w]), (dyhat * rep(scale, kn)).reshape([kn, c, h, w]))
        }
        None => {
            let dy = dyhat.reshape([kn, g, m]) * rep(r, kn);
            (y.reshape([n, c, h, w]), dy.reshape([kn, c, h, w]))
        }
    }
}

/// The JVP rule of an activation on feature maps (see [`Activation::jvp`]).
///
/// # Shapes
/// `x: [n, c, h, w]`, `dx: [k·n, c, h, w]` → `[n, c, h, w]`, `[k·n, c, h, w]`
pub fn activation_jvp4<B: Backend>(act: Activation, x: Tensor<B, 4>, dx: Tensor<B, 4>) -> (Tensor<B, 4>, Tensor<B, 4>) {
    let [n, c, h, w] = x.dims();
    let [kn, _, _, _] = dx.dims();
    let (a, da) = act.jvp(x.reshape([n, c * h * w]), dx.reshape([kn, c * h * w]));
    (a.reshape([n, c, h, w]), da.reshape([kn, c, h, w]))
}

/// Nearest-neighbour upsampling by 2 in both spatial axes (PyTorch's
/// `F.interpolate(x, scale_factor=2, mode="nearest")`). Linear, so its JVP rule is itself.
///
/// # Formula
/// y[·, ·, i, j] = x[·, ·, ⌊i/2⌋, ⌊j/2⌋]
///
/// # Shapes
/// `x: [n, c, h, w]` → `[n, c, 2h, 2w]`
pub fn upsample_nearest2<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    let [_, _, h, w] = x.dims();
    // burn's nearest maps output o to input ⌊o·in/out⌋ = ⌊o/2⌋, PyTorch's rule; its fused
    // kernel (and backward) is ~4× faster on burn-flex than a reshape/expand/reshape copy.
    interpolate(x, [2 * h, 2 * w], InterpolateOptions::new(InterpolateMode::Nearest))
}

/// Softmax along the last axis, spelled out in f64 (burn's fused kernels may round through
/// f32) and burn's own op otherwise.
pub(crate) fn softmax_last<B: Backend>(s: Tensor<B, 3>) -> Tensor<B, 3> {
    if s.dtype() == burn::tensor::DType::F64 {
        let e = (s.clone() - s.detach().max_dim(2)).exp();
        e.clone() / e.sum_dim(2)
    } else {
        activation::softmax(s, 2)
    }
}

/// The JVP rule of softmax along the last axis.
///
/// # Formula
/// A = softmax(s), Ȧ = A ⊙ (ṡ − Σ_j A_j ṡ_j)
///
/// # Shapes
/// `s: [n, r, m]`, `ds: [k·n, r, m]` → `[n, r, m]`, `[k·n, r, m]`
pub fn softmax_jvp<B: Backend>(s: Tensor<B, 3>, ds: Tensor<B, 3>) -> (Tensor<B, 3>, Tensor<B, 3>) {
    let a = softmax_last(s);
    let ads = mul_blocks3(ds, a.clone());
    let da = ads.clone() - mul_blocks3(ads.sum_dim(2), a.clone());
    (a, da)
}

/// Scaled dot-product attention over the spatial positions (Vaswani et al. 2017, eq. 1, in
/// channel-first layout).
///
/// # Formula
/// A = softmax over keys of qᵀk/√c (`[n, N, N]`, row i the query position), h = v·Aᵀ
///
/// # Shapes
/// `q, k, v: [n, c, N]` (N = h·w positions) → `[n, c, N]`
pub fn attention<B: Backend>(q: Tensor<B, 3>, k: Tensor<B, 3>, v: Tensor<B, 3>) -> Tensor<B, 3> {
    let [_, c, _] = q.dims();
    let s = q.swap_dims(1, 2).matmul(k).mul_scalar(1.0 / (c as f64).sqrt());
    v.matmul(softmax_last(s).swap_dims(1, 2))
}

/// The JVP rule of [`attention`].
///
/// # Formula
/// ṡ = (q̇ᵀk + qᵀk̇)/√c, Ȧ = A ⊙ (ṡ − Σ_j A_j ṡ_j), ḣ = v̇·Aᵀ + v·Ȧᵀ
///
/// # Shapes
/// `q, k, v: [n, c, N]`, `dq, dk, dv: [k·n, c, N]` → `[n, c, N]`, `[k·n, c, N]`
pub fn attention_jvp<B: Backend>(
    (q, k, v): (Tensor<B, 3>, Tensor<B, 3>, Tensor<B, 3>),
    (dq, dk, dv): (Tensor<B, 3>, Tensor<B, 3>, Tensor<B, 3>),
) -> (Tensor<B, 3>, Tensor<B, 3>) {
    let [_, c, _] = q.dims();
    let [kn, _, _] = dq.dims();
    let scale = 1.0 / (c as f64).sqrt();
    let qt = q.swap_dims(1, 2);
    let s = qt.clone().matmul(k.clone()).mul_scalar(scale);
    let ds = (dq.swap_dims(1, 2).matmul(rep(k, kn)) + rep(qt, kn).matmul(dk)).mul_scalar(scale);
    let (a, da) = softmax_jvp(s, ds);
    let at = a.swap_dims(1, 2);
    let h = v.clone().matmul(at.clone());
    let dh = dv.matmul(rep(at, kn)) + rep(v, kn).matmul(da.swap_dims(1, 2));
    (h, dh)
}

/// Multiplies tangent blocks of feature maps `[k·n, c, h, w]` by a per-sample factor
/// `[n, c, h, w]` (elementwise, broadcast over the blocks).
pub fn mul_blocks4<B: Backend>(tangent: Tensor<B, 4>, factor: Tensor<B, 4>) -> Tensor<B, 4> {
    let [kn, c, h, w] = tangent.dims();
    let [n, _, _, _] = factor.dims();
    mul_blocks(tangent.reshape([kn, c * h * w]), factor.reshape([n, c * h * w])).reshape([kn, c, h, w])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{B, dev, host};
    use burn::module::Param;
    use burn::nn::{GroupNormConfig, PaddingConfig2d};
    use burn::tensor::TensorData;

    fn normal(rng: &mut crate::rng::Rng, n: usize) -> Vec<f64> {
        crate::rng::normal_vec(rng, n).into_iter().map(f64::from).collect()
    }

    fn t4(v: Vec<f64>, s: [usize; 4]) -> Tensor<B, 4> {
        Tensor::from_data(TensorData::new(v, s), &dev())
    }

    fn t3(v: Vec<f64>, s: [usize; 3]) -> Tensor<B, 3> {
        Tensor::from_data(TensorData::new(v, s), &dev())
    }

    /// Max |a − b| / (1 + |b|).
    fn rel_err(a: &[f64], b: &[f64]) -> f64 {
        assert_eq!(a.len(), b.len());
        a.iter().zip(b).map(|(x, y)| (x - y).abs() / (1.0 + y.abs())).fold(0.0, f64::max)
    }

    // Central differences in f64 with h = 1e-5: truncation h²/6·f''' ≈ 1e-10 for the O(1)–O(10)
    // third derivatives of these layers, rounding ε·|f|/h ≈ 1e-11; 1e-7 leaves a margin and
    // still fails for any wrong term (which is O(1)).
    const H: f64 = 1e-5;
    const TOL: f64 = 1e-7;

    /// The central difference of `f` at `x` along `u`.
    fn fd(f: impl Fn(Vec<f64>) -> Vec<f64>, x: &[f64], u: &[f64]) -> Vec<f64> {
        let at = |s: f64| f(x.iter().zip(u).map(|(a, b)| a + s * b).collect());
        let (p, q) = (at(H), at(-H));
        p.iter().zip(&q).map(|(a, b)| (a - b) / (2.0 * H)).collect()
    }

    fn conv(rng: &mut crate::rng::Rng, c_in: usize, c_out: usize, k: usize, stride: usize) -> Conv2d<B> {
        let p = k / 2;
        Conv2d {
            weight: Param::from_tensor(t4(normal(rng, c_out * c_in * k * k), [c_out, c_in, k, k])),
            bias: Some(Param::from_tensor(Tensor::from_data(TensorData::new(normal(rng, c_out), [c_out]), &dev()))),
            stride: [stride, stride],
            kernel_size: [k, k],
            dilation: [1, 1],
            groups: 1,
            padding: PaddingConfig2d::Explicit(p, p, p, p),
        }
    }

    #[test]
    fn conv2d_jvp_matches_central_differences_for_3x3_strided_and_1x1() {
        let mut rng = crate::rng::seeded(1);
        for (k, stride) in [(3, 1), (3, 2), (1, 1)] {
            let layer = conv(&mut rng, 3, 4, k, stride);
            // Two tangent blocks of a 2-sample primal.
            let s = [2, 3, 6, 6];
            let x = normal(&mut rng, 2 * 3 * 36);
            let u = normal(&mut rng, 2 * 2 * 3 * 36);
            let (y, dy) = conv2d_jvp(&layer, t4(x.clone(), s), t4(u.clone(), [4, 3, 6, 6]));
            assert_eq!(host(y), host(layer.forward(t4(x.clone(), s))));
            let dy = host(dy);
            let half = dy.len() / 2;
            for p in 0..2 {
                let up = &u[p * x.len()..(p + 1) * x.len()];
                let want = fd(|v| host(layer.forward(t4(v, s))), &x, up);
                // Linear: central differences are exact up to rounding.
                let err = rel_err(&dy[p * half..(p + 1) * half], &want);
                assert!(err < 1e-9, "k {k} stride {stride} block {p}: {err:e}");
            }
        }
    }

    /// A GroupNorm(2, 4) with γ, β moved off 1 and 0, on any backend.
    fn affine_group_norm<A: Backend>(rng: &mut crate::rng::Rng) -> GroupNorm<A> {
        let mut gn = GroupNormConfig::new(2, 4).init::<A>(&Default::default());
        let v = |rng: &mut crate::rng::Rng| TensorData::new(normal(rng, 4), [4]);
        gn.gamma = Some(Param::from_tensor(Tensor::from_data(v(rng), &Default::default())));
        gn.beta = Some(Param::from_tensor(Tensor::from_data(v(rng), &Default::default())));
        gn
    }

    /// Value of `f(norm, x)`·w summed, and its gradients wrt x, γ and β.
    fn gn_grads<A: burn::tensor::backend::AutodiffBackend>(
        norm: &GroupNorm<A>,
        f: impl Fn(&GroupNorm<A>, Tensor<A, 4>) -> Tensor<A, 4>,
        x: &[f64],
        wts: &[f64],
        s: [usize; 4],
    ) -> [Vec<f64>; 4] {
        let dev = Default::default();
        let x = Tensor::<A, 4>::from_data(TensorData::new(x.to_vec(), s), &dev).require_grad();
        let wts = Tensor::<A, 4>::from_data(TensorData::new(wts.to_vec(), s), &dev);
        let y = f(norm, x.clone());
        let grads = (y.clone() * wts).sum().backward();
        let h = |t: Tensor<A::InnerBackend, 1>| t.into_data().convert::<f64>().to_vec::<f64>().unwrap();
        let g = |p: &Option<Param<Tensor<A, 1>>>| h(p.as_ref().unwrap().val().grad(&grads).unwrap());
        let y = y.inner().into_data().convert::<f64>().to_vec::<f64>().unwrap();
        let dx = x.grad(&grads).unwrap().into_data().convert::<f64>().to_vec::<f64>().unwrap();
        [y, dx, g(&norm.gamma), g(&norm.beta)]
    }

    #[test]
    fn group_norm_matches_burn_module_in_value_and_gradients() {
        let mut rng = crate::rng::seeded(4);
        let s = [3, 4, 3, 3];
        let x: Vec<f64> = normal(&mut rng, 108).into_iter().map(|v| 2.0 * v + 0.5).collect();
        let wts = normal(&mut rng, 108);
        // f64 (NdArray): the same formula up to rounding.
        let gn = affine_group_norm::<burn::backend::Autodiff<B>>(&mut crate::rng::seeded(5));
        let ours = gn_grads(&gn, group_norm, &x, &wts, s);
        let burns = gn_grads(&gn, |n, x| n.forward(x), &x, &wts, s);
        for (what, (a, b)) in ["value", "dx", "dγ", "dβ"].iter().zip(ours.iter().zip(&burns)) {
            let err = rel_err(a, b);
            assert!(err < 1e-13, "f64 {what}: {err:e}");
        }
        // f32 on burn-flex, whose broadcasting ops take SIMD paths: f32 rounding only.
        let gn = affine_group_norm::<crate::backend::CpuAutodiff>(&mut crate::rng::seeded(5));
        let ours32 = gn_grads(&gn, group_norm, &x, &wts, s);
        for (what, (a, b)) in ["value", "dx", "dγ", "dβ"].iter().zip(ours32.iter().zip(&burns)) {
            let err = rel_err(a, b);
            assert!(err < 1e-5, "f32 {what}: {err:e}");
        }
    }

    #[test]
    fn group_norm_jvp_matches_central_differences_with_affine_weights() {
        let mut rng = crate::rng::seeded(2);
        let mut gn = GroupNormConfig::new(2, 4).init::<B>(&dev());
        // Non-trivial γ, β so that a missing γ in the tangent fails.
        gn.gamma = Some(Param::from_tensor(Tensor::from_data(TensorData::new(normal(&mut rng, 4), [4]), &dev())));
        gn.beta = Some(Param::from_tensor(Tensor::from_data(TensorData::new(normal(&mut rng, 4), [4]), &dev())));
        let s = [3, 4, 3, 3];
        let x: Vec<f64> = normal(&mut rng, 108).into_iter().map(|v| 2.0 * v + 0.5).collect();
        let u = normal(&mut rng, 2 * 108);
        let (y, dy) = group_norm_jvp(&gn, t4(x.clone(), s), t4(u.clone(), [6, 4, 3, 3]));
        let err_v = rel_err(&host(y), &host(gn.forward(t4(x.clone(), s))));
        assert!(err_v < 1e-14, "value differs from GroupNorm::forward by {err_v:e}");
        let dy = host(dy);
        for p in 0..2 {
            let want = fd(|v| host(gn.forward(t4(v, s))), &x, &u[p * 108..(p + 1) * 108]);
            let err = rel_err(&dy[p * 108..(p + 1) * 108], &want);
            assert!(err < TOL, "block {p}: {err:e}");
        }
    }

    #[test]
    fn silu_jvp_on_feature_maps_matches_central_differences() {
        let mut rng = crate::rng::seeded(3);
        let s = [2, 3, 2, 2];
        let x: Vec<f64> = normal(&mut rng, 24).into_iter().map(|v| 3.0 * v).collect();
        let u = normal(&mut rng, 48);
        let (_, da) = activation_jvp4(Activation::Silu, t4(x.clone(), s), t4(u.clone(), [4, 3, 2, 2]));
        let da = host(da);
        for p in 0..2 {
            let want = fd(|v| host(Activation::Silu.apply(t4(v, s))), &x, &u[p * 24..(p + 1) * 24]);
            assert!(rel_err(&da[p * 24..(p + 1) * 24], &want) < TOL);
        }
    }

    #[test]
    fn upsample_repeats_each_pixel_in_a_2x2_square() {
        let x = t4((0..12).map(f64::from).collect(), [1, 2, 2, 3]);
        let y = host(upsample_nearest2(x));
        // The same on burn-flex (f32), whose kernel differs from burn-ndarray's.
        let xf = Tensor::<crate::backend::Cpu, 4>::from_data(
            TensorData::new((0..12).map(|v| v as f32).collect::<Vec<_>>(), [1, 2, 2, 3]),
            &Default::default(),
        );
        let yf: Vec<f32> = upsample_nearest2(xf).into_data().into_vec().unwrap();
        assert_eq!(yf.iter().map(|&v| v as f64).collect::<Vec<_>>(), y);
        // Channel 1, output row 3 (input row 1), columns 0..6 repeat input columns 0, 0, 1, 1, 2, 2.
        assert_eq!(&y[24 + 3 * 6..24 + 4 * 6], &[9.0, 9.0, 10.0, 10.0, 11.0, 11.0]);
        for c in 0..2 {
            for i in 0..4 {
                for j in 0..6 {
                    assert_eq!(y[c * 24 + i * 6 + j], (c * 6 + (i / 2) * 3 + j / 2) as f64);
                }
            }
        }
    }

    #[test]
    fn softmax_jvp_matches_central_differences() {
        let mut rng = crate::rng::seeded(4);
        let s: Vec<f64> = normal(&mut rng, 2 * 3 * 5).into_iter().map(|v| 2.0 * v).collect();
        let u = normal(&mut rng, 2 * 2 * 3 * 5);
        let (a, da) = softmax_jvp(t3(s.clone(), [2, 3, 5]), t3(u.clone(), [4, 3, 5]));
        // Rows sum to 1 and tangents to 0.
        let (a, da) = (host(a), host(da));
        for r in 0..6 {
            assert!((a[r * 5..r * 5 + 5].iter().sum::<f64>() - 1.0).abs() < 1e-15);
        }
        for r in 0..12 {
            assert!(da[r * 5..r * 5 + 5].iter().sum::<f64>().abs() < 1e-14);
        }
        for p in 0..2 {
            let want = fd(|v| host(softmax_last(t3(v, [2, 3, 5]))), &s, &u[p * 30..(p + 1) * 30]);
            assert!(rel_err(&da[p * 30..(p + 1) * 30], &want) < TOL);
        }
    }

    #[test]
    fn attention_jvp_matches_central_differences_in_q_k_and_v() {
        let mut rng = crate::rng::seeded(5);
        let m = 24;
        let qkv: Vec<f64> = normal(&mut rng, 3 * m);
        let u: Vec<f64> = normal(&mut rng, 2 * 3 * m); // two tangent blocks of (q, k, v)
        let split = |v: &[f64], o: usize, n: usize| -> (Tensor<B, 3>, Tensor<B, 3>, Tensor<B, 3>) {
            let sh = [n, 3, 4];
            let len = n * 12;
            (
                t3(v[o..o + len].to_vec(), sh),
                t3(v[o + len..o + 2 * len].to_vec(), sh),
                t3(v[o + 2 * len..o + 3 * len].to_vec(), sh),
            )
        };
        // Tangent layout: [dq (2 blocks), dk (2 blocks), dv (2 blocks)].
        let (h, dh) = attention_jvp(split(&qkv, 0, 2), split(&u, 0, 4));
        let (q, k, v) = split(&qkv, 0, 2);
        assert!(rel_err(&host(h), &host(attention(q, k, v))) < 1e-15);
        let dh = host(dh);
        for p in 0..2 {
            // Block p of each of dq, dk, dv.
            let mut up = Vec::new();
            for part in 0..3 {
                let o = part * 2 * m + p * m;
                up.extend_from_slice(&u[o..o + m]);
            }
            let want = fd(
                |w| {
                    let (q, k, v) = split(&w, 0, 2);
                    host(attention(q, k, v))
                },
                &qkv,
                &up,
            );
            let err = rel_err(&dh[p * m..(p + 1) * m], &want);
            assert!(err < TOL, "block {p}: {err:e}");
        }
    }
}
