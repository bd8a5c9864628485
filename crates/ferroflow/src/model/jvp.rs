//! Forward-mode derivatives (Jacobian–vector products) of velocity fields by tangent
//! propagation.
//!
//! Every layer maps a primal h and a tangent ḣ to (f(h), J_f(h)·ḣ); chaining the rules gives
//! the JVP of the whole field, v̇ = ∂v/∂x·ẋ + ∂v/∂t·ṫ (+ ∂v/∂c·ċ for a condition vector), in one
//! pass at about twice the cost of the forward pass. The rules are written with ordinary
//! differentiable burn tensor ops, so reverse-mode autodiff can run *through* a JVP: that is how
//! [`crate::guidance`] differentiates uᵀJu with respect to x.
//!
//! # Several tangents per point
//! `dx` may hold k tangents for each of the `batch` points, stacked in blocks: rows
//! p·batch … (p+1)·batch − 1 are the p-th tangent of every point. The primal is computed once
//! on `[batch, ·]` and the derivative factors (σ'(h), the embedding's cos/sin) are broadcast over
//! the k blocks, so k tangents cost one forward pass plus k tangent passes. k = `dim` one-hot
//! tangents give the whole Jacobian ([`crate::likelihood::divergence`]).
//!
//! # Shapes
//! `x: [batch, dim]`, `t: [batch]`, `dx: [k·batch, dim]`, `dt: [k·batch]` → `v: [batch, dim]`,
//! `dv: [k·batch, dim]`.

use burn::nn::Linear;
use burn::tensor::{DType, Tensor, TensorData, activation, backend::Backend};

use super::analytic::GaussianToGaussian;
use super::embed::TimeEmbedding;
use super::field::{Condition, VelocityField};
use super::mlp::{Activation, ConditionConfig, MlpField};

/// A velocity field with an exact forward-mode derivative.
///
/// # Formula
/// (v, v̇) = (v(x, t | c), ∂v/∂x(x, t | c)·ẋ + ∂v/∂t(x, t | c)·ṫ)
///
/// # Shapes
/// `x: [batch, dim]`, `t: [batch]`, `dx: [k·batch, dim]` (k tangents per point, in blocks, see
/// the [module docs](self)), `dt: [k·batch]` (`None`: ṫ = 0) → `v: [batch, dim]`,
/// `dv: [k·batch, dim]`.
pub trait JvpField<B: Backend>: VelocityField<B> {
    /// The velocity and its directional derivative along the tangents (`dx`, `dt`).
    fn forward_jvp(
        &self,
        x: Tensor<B, 2>,
        t: Tensor<B, 1>,
        cond: Option<&Condition<B>>,
        dx: Tensor<B, 2>,
        dt: Option<Tensor<B, 1>>,
    ) -> (Tensor<B, 2>, Tensor<B, 2>);

    /// The velocity and its exact divergence ∇·v = Σᵢ ∂vᵢ/∂xᵢ, for
    /// [`crate::likelihood::exact_divergence`].
    ///
    /// The default propagates the `dim` one-hot tangents
    /// ([`crate::likelihood::divergence::exact_divergence_by_jvp`]); a field with a cheaper
    /// route to the same numbers overrides it ([`crate::engine::FusedField`] skips the first
    /// layer's tangent product and the last layer's off-diagonal outputs).
    ///
    /// # Shapes
    /// `x: [batch, dim]`, `t: [batch]` → `(v: [batch, dim], div: [batch])`
    fn velocity_and_divergence(
        &self,
        x: Tensor<B, 2>,
        t: Tensor<B, 1>,
        cond: Option<&Condition<B>>,
    ) -> (Tensor<B, 2>, Tensor<B, 1>) {
        crate::likelihood::divergence::exact_divergence_by_jvp(self, x, t, cond)
    }
}

impl<B: Backend, F: JvpField<B> + ?Sized> JvpField<B> for &F {
    fn forward_jvp(
        &self,
        x: Tensor<B, 2>,
        t: Tensor<B, 1>,
        cond: Option<&Condition<B>>,
        dx: Tensor<B, 2>,
        dt: Option<Tensor<B, 1>>,
    ) -> (Tensor<B, 2>, Tensor<B, 2>) {
        (**self).forward_jvp(x, t, cond, dx, dt)
    }
    fn velocity_and_divergence(
        &self,
        x: Tensor<B, 2>,
        t: Tensor<B, 1>,
        cond: Option<&Condition<B>>,
    ) -> (Tensor<B, 2>, Tensor<B, 1>) {
        (**self).velocity_and_divergence(x, t, cond)
    }
}

/// Multiplies k stacked tangent blocks `[k·n, h]` by a per-point factor `[n, h]` (broadcast over
/// the blocks, without copying the factor k times).
pub fn mul_blocks<B: Backend>(tangent: Tensor<B, 2>, factor: Tensor<B, 2>) -> Tensor<B, 2> {
    let [kn, h] = tangent.dims();
    let [n, _] = factor.dims();
    if kn == n {
        return tangent * factor;
    }
    debug_assert_eq!(kn % n, 0, "tangent rows must be a multiple of the batch");
    let k = kn / n;
    (tangent.reshape([k, n, h]) * factor.unsqueeze_dim::<3>(0)).reshape([kn, h])
}

/// The JVP rule of a linear layer.
///
/// # Formula
/// y = xW + b, ẏ = ẋW
///
/// # Shapes
/// `x: [n, d_in]`, `dx: [k·n, d_in]` → `y: [n, d_out]`, `dy: [k·n, d_out]`
pub fn linear_jvp<B: Backend>(layer: &Linear<B>, x: Tensor<B, 2>, dx: Tensor<B, 2>) -> (Tensor<B, 2>, Tensor<B, 2>) {
    let dy = dx.matmul(layer.weight.val());
    (layer.forward(x), dy)
}

impl Activation {
    /// The JVP rule of the activation: exact derivatives for each one.
    ///
    /// # Formula
    /// with s = 1/(1 + e^{−h}), Φ the standard normal CDF and φ its density:
    /// - SiLU: a = h·s, ȧ = s·(1 + h·(1 − s))·ḣ
    /// - ReLU: a = max(0, h), ȧ = 𝟙(h > 0)·ḣ (the derivative at 0 is taken as 0, like PyTorch)
    /// - tanh: a = tanh h, ȧ = (1 − a²)·ḣ
    /// - GELU: a = h·Φ(h), ȧ = (Φ(h) + h·φ(h))·ḣ, Φ(h) = (1 + erf(h/√2))/2, φ(h) = e^{−h²/2}/√(2π)
    ///
    /// # Shapes
    /// `h: [n, d]`, `dh: [k·n, d]` → `a: [n, d]`, `da: [k·n, d]`
    ///
    /// ```
    /// use burn::tensor::Tensor;
    /// use ferroflow::backend::Cpu64;
    /// use ferroflow::model::Activation;
    /// let d = Default::default();
    /// let h = Tensor::<Cpu64, 2>::from_floats([[0.0, 1.0]], &d);
    /// let (_, da) = Activation::Gelu.jvp(h, Tensor::from_floats([[1.0, 1.0]], &d));
    /// let da: Vec<f64> = da.into_data().into_vec().unwrap();
    /// // GELU'(0) = Φ(0) = 1/2; GELU'(1) = Φ(1) + φ(1) = 0.841345 + 0.241971
    /// assert!((da[0] - 0.5).abs() < 1e-15 && (da[1] - 1.0833155).abs() < 1e-7);
    /// ```
    pub fn jvp<B: Backend>(self, h: Tensor<B, 2>, dh: Tensor<B, 2>) -> (Tensor<B, 2>, Tensor<B, 2>) {
        match self {
            Activation::Silu => {
                // The same ops as `Activation::apply` for the value, so v is bit-identical.
                let (a, s) = if h.dtype() == DType::F64 {
                    let denom = h.clone().neg().exp().add_scalar(1.0);
                    (h.clone() / denom.clone(), denom.recip())
                } else {
                    (activation::silu(h.clone()), activation::sigmoid(h.clone()))
                };
                let factor = s.clone() * (h * (s.neg().add_scalar(1.0))).add_scalar(1.0);
                (a, mul_blocks(dh, factor))
            }
            Activation::Relu => {
                let mask = h.clone().greater_elem(0.0).float();
                (activation::relu(h), mul_blocks(dh, mask))
            }
            Activation::Tanh => {
                let a = h.tanh();
                let factor = a.clone().powi_scalar(2).neg().add_scalar(1.0);
                (a, mul_blocks(dh, factor))
            }
            Activation::Gelu => {
                // Spelled out with erf (whose autodiff rule is exact) rather than burn's `gelu`,
                // whose backward pass uses the tanh approximation: reverse mode through this
                // rule must differentiate the exact GELU.
                let erf1 = (h.clone() * std::f64::consts::FRAC_1_SQRT_2).erf().add_scalar(1.0);
                let a = (h.clone() * erf1.clone()) * 0.5;
                let phi = h.clone().powi_scalar(2).mul_scalar(-0.5).exp()
                    * (0.5 * std::f64::consts::FRAC_2_SQRT_PI)
                    * std::f64::consts::FRAC_1_SQRT_2;
                let factor = erf1 * 0.5 + h * phi;
                (a, mul_blocks(dh, factor))
            }
        }
    }
}

impl<B: Backend> TimeEmbedding<B> {
    /// The JVP rule of the time embedding.
    ///
    /// # Formula
    /// raw: e = t, ė = ṫ; with frequencies ω (sinusoidal or Fourier), θ = ωt:
    /// e = [cos θ, sin θ], ė = [−sin θ ⊙ ω ṫ, cos θ ⊙ ω ṫ]
    ///
    /// # Shapes
    /// `t: [n]`, `dt: [k·n]` → `e: [n, d_output]`, `de: [k·n, d_output]`
    pub fn forward_jvp(&self, t: Tensor<B, 1>, dt: Tensor<B, 1>) -> (Tensor<B, 2>, Tensor<B, 2>) {
        let [n] = t.dims();
        let [kn] = dt.dims();
        let t = t.reshape([n, 1]);
        let dt = dt.reshape([kn, 1]);
        match &self.freqs {
            None => (t, dt),
            Some(w) => {
                let theta = t.mul(w.clone());
                let (c, s) = (theta.clone().cos(), theta.sin());
                let dtheta = dt.mul(w.clone());
                let de =
                    Tensor::cat(vec![mul_blocks(dtheta.clone(), s.clone().neg()), mul_blocks(dtheta, c.clone())], 1);
                (Tensor::cat(vec![c, s], 1), de)
            }
        }
    }
}

impl<B: Backend> MlpField<B> {
    /// The JVP with a tangent of the condition vector too (for [`ConditionConfig::Vector`]
    /// fields; class labels are discrete and have no tangent). `dcond: [k·batch, d_cond]`.
    ///
    /// # Formula
    /// v̇ = ∂v/∂x·ẋ + ∂v/∂t·ṫ + ∂v/∂c·ċ, by the chain rule through the layers.
    ///
    /// # Shapes
    /// as [`JvpField::forward_jvp`]; `dcond: [k·batch, d_cond]`.
    pub fn forward_jvp_with_condition(
        &self,
        x: Tensor<B, 2>,
        t: Tensor<B, 1>,
        cond: Option<&Condition<B>>,
        dx: Tensor<B, 2>,
        dt: Option<Tensor<B, 1>>,
        dcond: Option<Tensor<B, 2>>,
    ) -> (Tensor<B, 2>, Tensor<B, 2>) {
        let [kn, d] = dx.dims();
        let dev = dx.device();
        let dcond = match self.config.condition {
            ConditionConfig::Vector { .. } => dcond,
            _ => None,
        };
        let first = &self.layers[0];
        let h_in = self.input(x, t.clone(), cond);
        // The tangent of the first layer's input [ẋ, ė, ċ]. Without ṫ and ċ only the first
        // `dim` rows of W₀ see a non-zero tangent.
        let dh = if dt.is_none() && dcond.is_none() {
            dx.matmul(first.weight.val().slice(0..d))
        } else {
            let dt = dt.unwrap_or_else(|| Tensor::zeros([kn], &dev));
            let (_, de) = self.time_embedding.forward_jvp(t, dt);
            let mut parts = vec![dx, de];
            let d_cond = self.config.condition.d_output();
            if d_cond > 0 {
                parts.push(dcond.unwrap_or_else(|| Tensor::zeros([kn, d_cond], &dev)));
            }
            Tensor::cat(parts, 1).matmul(first.weight.val())
        };
        let mut h = first.forward(h_in);
        let mut dh = dh;
        // Layers 1… each follow an activation (as in `velocity`).
        for layer in &self.layers[1..] {
            let (a, da) = self.activation.jvp(h, dh);
            (h, dh) = linear_jvp(layer, a, da);
        }
        (h, dh)
    }
}

impl<B: Backend> JvpField<B> for MlpField<B> {
    fn forward_jvp(
        &self,
        x: Tensor<B, 2>,
        t: Tensor<B, 1>,
        cond: Option<&Condition<B>>,
        dx: Tensor<B, 2>,
        dt: Option<Tensor<B, 1>>,
    ) -> (Tensor<B, 2>, Tensor<B, 2>) {
        self.forward_jvp_with_condition(x, t, cond, dx, dt, None)
    }
}

/// Step of the host finite differences of the closed-form coefficients in t (see
/// [`GaussianToGaussian`]'s [`JvpField`] impl).
const COEFF_FD_STEP: f64 = 1e-5;

impl<B: Backend> JvpField<B> for GaussianToGaussian {
    /// u = a_t + b_t ⊙ x, so u̇ = b_t ⊙ ẋ + (ȧ_t + ḃ_t ⊙ x)·ṫ. The x part is exact; ȧ_t, ḃ_t need
    /// α̈, σ̈, which the schedulers do not provide, so they are central differences of the f64
    /// coefficients with step 10⁻⁵ (one-sided second-order at the ends of [0, 1]): relative
    /// error ≈ 10⁻⁹ (truncation h²·f‴ and rounding ε/h both ≈ 10⁻¹¹ for f‴ = O(1)).
    fn forward_jvp(
        &self,
        x: Tensor<B, 2>,
        t: Tensor<B, 1>,
        _cond: Option<&Condition<B>>,
        dx: Tensor<B, 2>,
        dt: Option<Tensor<B, 1>>,
    ) -> (Tensor<B, 2>, Tensor<B, 2>) {
        let [n, d] = x.dims();
        let dev = x.device();
        let times: Vec<f64> = t.into_data().convert::<f64>().into_vec::<f64>().expect("float times");
        let (a, b, _, _) = self.rows(&times);
        let host = |v: Vec<f64>| Tensor::<B, 2>::from_data(TensorData::new(v, [n, d]), &dev);
        let (a_t, b_t) = (host(a), host(b));
        let v = a_t + b_t.clone() * x.clone();
        let mut dv = mul_blocks(dx, b_t);
        if let Some(dt) = dt {
            let h = COEFF_FD_STEP;
            let (mut da, mut db) = (vec![0.0; n * d], vec![0.0; n * d]);
            for (i, &ti) in times.iter().enumerate() {
                // Central where t ± h stays in [0, 1], otherwise one-sided of second order.
                let (stencil, w): (Vec<f64>, Vec<f64>) = if ti - h < 0.0 {
                    (vec![ti, ti + h, ti + 2.0 * h], vec![-1.5, 2.0, -0.5])
                } else if ti + h > 1.0 {
                    (vec![ti, ti - h, ti - 2.0 * h], vec![1.5, -2.0, 0.5])
                } else {
                    (vec![ti - h, ti + h], vec![-0.5, 0.5])
                };
                let (ca, cb, _, _) = self.rows(&stencil);
                for k in 0..d {
                    for (s, ws) in w.iter().enumerate() {
                        da[i * d + k] += ws * ca[s * d + k] / h;
                        db[i * d + k] += ws * cb[s * d + k] / h;
                    }
                }
            }
            let dvdt = host(da) + host(db) * x;
            let [kn] = dt.dims();
            dv = dv + mul_blocks(dt.reshape([kn, 1]).repeat_dim(1, d), dvdt);
        }
        (v, dv)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{MlpFieldConfig, TimeEmbeddingConfig};
    use crate::path::SchedulerConfig;
    use crate::test_util::{B, dev, host, tensor1, tensor2};
    use burn::tensor::Int;
    use rand::Rng as _;

    fn normal(rng: &mut crate::rng::Rng, n: usize) -> Vec<f64> {
        crate::rng::normal_vec(rng, n).into_iter().map(f64::from).collect()
    }

    /// Max |a − b| / (1 + |b|).
    fn rel_err(a: &[f64], b: &[f64]) -> f64 {
        assert_eq!(a.len(), b.len());
        a.iter().zip(b).map(|(x, y)| (x - y).abs() / (1.0 + y.abs())).fold(0.0, f64::max)
    }

    // Central differences in f64 with h = 1e-5 on functions whose third derivatives are O(10):
    // truncation h²/6·f''' ≈ 1e-10, rounding ε/h ≈ 1e-11. 1e-7 leaves room for larger f'''.
    const FD_H: f64 = 1e-5;
    const FD_TOL: f64 = 1e-7;

    #[test]
    fn activation_jvps_match_central_differences() {
        let mut rng = crate::rng::seeded(3);
        // Avoid |h| < 1e-3 for ReLU's kink: draw then push away from 0.
        let h: Vec<f64> = normal(&mut rng, 40).into_iter().map(|v| 2.5 * v + 0.01f64.copysign(v)).collect();
        let dh = normal(&mut rng, 40);
        for act in Activation::ALL {
            let (a, da) = act.jvp(tensor2(h.clone(), 4, 10), tensor2(dh.clone(), 4, 10));
            let plus: Vec<f64> = h.iter().zip(&dh).map(|(x, u)| x + FD_H * u).collect();
            let minus: Vec<f64> = h.iter().zip(&dh).map(|(x, u)| x - FD_H * u).collect();
            let fp = host(act.apply(tensor2(plus, 4, 10)));
            let fm = host(act.apply(tensor2(minus, 4, 10)));
            let fd: Vec<f64> = fp.iter().zip(&fm).map(|(p, m)| (p - m) / (2.0 * FD_H)).collect();
            let err = rel_err(&host(da), &fd);
            assert!(err < FD_TOL, "{act:?}: JVP vs FD error {err:e}");
            // The value equals the activation used by `velocity` (up to rounding for GELU,
            // spelled out with erf).
            let err_v = rel_err(&host(a), &host(act.apply(tensor2(h.clone(), 4, 10))));
            assert!(err_v < 1e-14, "{act:?}: value differs by {err_v:e}");
        }
    }

    #[test]
    fn activation_jvp_broadcasts_over_tangent_blocks() {
        // Three tangent blocks of a 2-row primal equal three separate single-tangent JVPs.
        let mut rng = crate::rng::seeded(4);
        let h = normal(&mut rng, 6);
        let dh = normal(&mut rng, 18);
        for act in Activation::ALL {
            let (_, da) = act.jvp(tensor2(h.clone(), 2, 3), tensor2(dh.clone(), 6, 3));
            let da = host(da);
            for p in 0..3 {
                let (_, one) = act.jvp(tensor2(h.clone(), 2, 3), tensor2(dh[p * 6..(p + 1) * 6].to_vec(), 2, 3));
                assert_eq!(&da[p * 6..(p + 1) * 6], host(one).as_slice(), "{act:?} block {p}");
            }
        }
    }

    #[test]
    fn linear_jvp_matches_central_differences() {
        let cfg = MlpFieldConfig { d_input: 3, d_hidden: 5, n_hidden: 1, ..Default::default() };
        let m = cfg.init::<B>(&dev(), &mut crate::rng::seeded(1));
        let layer = &m.layers[0]; // 4 → 5
        let mut rng = crate::rng::seeded(5);
        let x = normal(&mut rng, 8);
        let u = normal(&mut rng, 8);
        let (_, dy) = linear_jvp(layer, tensor2(x.clone(), 2, 4), tensor2(u.clone(), 2, 4));
        let shifted = |s: f64| -> Vec<f64> {
            let xs: Vec<f64> = x.iter().zip(&u).map(|(a, b)| a + s * b).collect();
            host(layer.forward(tensor2(xs, 2, 4)))
        };
        let (p, q) = (shifted(FD_H), shifted(-FD_H));
        let fd: Vec<f64> = p.iter().zip(&q).map(|(a, b)| (a - b) / (2.0 * FD_H)).collect();
        // Linear: central differences are exact up to rounding ε·|y|/h ≈ 1e-11.
        assert!(rel_err(&host(dy), &fd) < 1e-9);
    }

    #[test]
    fn time_embedding_jvps_match_central_differences() {
        let embeddings = [
            TimeEmbeddingConfig::Raw,
            TimeEmbeddingConfig::Sinusoidal { dim: 8, max_period: 100.0, scale: 10.0 },
            TimeEmbeddingConfig::Fourier { dim: 6, std: 2.0 },
        ];
        let t = vec![0.05, 0.4, 0.93];
        let dt = vec![1.0, -0.7, 2.0];
        for cfg in embeddings {
            let e = cfg.init::<B>(&dev(), &mut crate::rng::seeded(2));
            let (_, de) = e.forward_jvp(tensor1(t.clone()), tensor1(dt.clone()));
            let at = |s: f64| host(e.forward(tensor1(t.iter().zip(&dt).map(|(a, b)| a + s * b).collect())));
            let (p, q) = (at(FD_H), at(-FD_H));
            let fd: Vec<f64> = p.iter().zip(&q).map(|(a, b)| (a - b) / (2.0 * FD_H)).collect();
            // θ = ωt with ω ≤ 10·2π·2: f''' ~ ω³ ≈ 2e3 scales the truncation error to ≈ 1e-7 of
            // the FD value ≈ ω: relative 1e-6 is loose enough and still fails for a wrong sign.
            let err = rel_err(&host(de), &fd);
            assert!(err < 1e-6, "{cfg:?}: {err:e}");
        }
    }

    /// Checks the whole-model JVP (x, t and condition tangents) against central differences of
    /// `velocity`.
    fn check_model(cfg: MlpFieldConfig, seed: u64) {
        let m = cfg.init::<B>(&dev(), &mut crate::rng::seeded(seed));
        let (n, d) = (3, cfg.d_input);
        let mut rng = crate::rng::seeded(seed + 100);
        let x = normal(&mut rng, n * d);
        let dx = normal(&mut rng, n * d);
        let t: Vec<f64> = (0..n).map(|_| rng.random_range(0.05..0.95)).collect();
        let dt = normal(&mut rng, n);
        let (cond, dc, d_cond) = match cfg.condition {
            ConditionConfig::Class { n_classes, .. } => {
                let l: Vec<i64> = (0..n).map(|i| (i % (n_classes + 1)) as i64).collect();
                (Some(Condition::Class(Tensor::<B, 1, Int>::from_data(TensorData::new(l, [n]), &dev()))), None, 0)
            }
            ConditionConfig::Vector { d_cond } => (
                Some(Condition::Vector(tensor2(normal(&mut rng, n * d_cond), n, d_cond))),
                Some(normal(&mut rng, n * d_cond)),
                d_cond,
            ),
            ConditionConfig::None => (None, None, 0),
        };
        let (v, dv) = m.forward_jvp_with_condition(
            tensor2(x.clone(), n, d),
            tensor1(t.clone()),
            cond.as_ref(),
            tensor2(dx.clone(), n, d),
            Some(tensor1(dt.clone())),
            dc.clone().map(|c| tensor2(c, n, d_cond)),
        );
        let v_plain = host(m.velocity(tensor2(x.clone(), n, d), tensor1(t.clone()), cond.as_ref()));
        assert!(rel_err(&host(v), &v_plain) < 1e-13, "{cfg:?}: v differs from velocity()");
        let at = |s: f64| {
            let xs = x.iter().zip(&dx).map(|(a, b)| a + s * b).collect();
            let ts = t.iter().zip(&dt).map(|(a, b)| a + s * b).collect();
            let c = match (&cond, &dc) {
                (Some(Condition::Vector(c)), Some(dc)) => {
                    let c: Vec<f64> = host(c.clone()).iter().zip(dc).map(|(a, b)| a + s * b).collect();
                    Some(Condition::Vector(tensor2(c, n, d_cond)))
                }
                (c, _) => c.clone(),
            };
            host(m.velocity(tensor2(xs, n, d), tensor1(ts), c.as_ref()))
        };
        let (p, q) = (at(FD_H), at(-FD_H));
        let fd: Vec<f64> = p.iter().zip(&q).map(|(a, b)| (a - b) / (2.0 * FD_H)).collect();
        let err = rel_err(&host(dv.clone()), &fd);
        // Sinusoidal/Fourier features with ω up to ~40 raise f''' (see the embedding test).
        assert!(err < 1e-6, "{cfg:?}: JVP vs FD error {err:e}");
        // Without ṫ the JVP is ∂v/∂x·ẋ alone (the sliced-W₀ shortcut).
        let (_, dv_x) =
            m.forward_jvp(tensor2(x.clone(), n, d), tensor1(t.clone()), cond.as_ref(), tensor2(dx.clone(), n, d), None);
        let at_x = |s: f64| {
            let xs = x.iter().zip(&dx).map(|(a, b)| a + s * b).collect();
            host(m.velocity(tensor2(xs, n, d), tensor1(t.clone()), cond.as_ref()))
        };
        let (p, q) = (at_x(FD_H), at_x(-FD_H));
        let fd: Vec<f64> = p.iter().zip(&q).map(|(a, b)| (a - b) / (2.0 * FD_H)).collect();
        let err = rel_err(&host(dv_x), &fd);
        assert!(err < FD_TOL, "{cfg:?}: x-only JVP vs FD error {err:e}");
    }

    #[test]
    fn mlp_jvp_matches_central_differences_for_every_activation_and_embedding() {
        let embeddings = [
            TimeEmbeddingConfig::Raw,
            TimeEmbeddingConfig::Sinusoidal { dim: 8, max_period: 100.0, scale: 10.0 },
            TimeEmbeddingConfig::Fourier { dim: 6, std: 1.0 },
        ];
        let mut seed = 10;
        for activation in Activation::ALL {
            for time_embedding in embeddings {
                seed += 1;
                check_model(
                    MlpFieldConfig {
                        d_input: 3,
                        d_hidden: 16,
                        n_hidden: 3,
                        activation,
                        time_embedding,
                        ..Default::default()
                    },
                    seed,
                );
            }
        }
    }

    #[test]
    fn mlp_jvp_matches_central_differences_with_conditions() {
        for condition in [ConditionConfig::Class { n_classes: 2, d_embed: 4 }, ConditionConfig::Vector { d_cond: 3 }] {
            for activation in [Activation::Silu, Activation::Gelu] {
                check_model(
                    MlpFieldConfig {
                        d_input: 2,
                        d_hidden: 12,
                        n_hidden: 2,
                        activation,
                        condition,
                        ..Default::default()
                    },
                    40,
                );
            }
        }
    }

    #[test]
    fn gaussian_jvp_matches_central_differences() {
        let g = GaussianToGaussian::new(SchedulerConfig::Cosine, vec![1.0, -2.0], vec![0.5, 1.5]);
        let x = vec![0.3, -0.2, 1.1, 0.4, -1.0, 2.0];
        let dx = vec![1.0, 0.5, -0.3, 0.2, 0.7, -1.0];
        // t near both ends exercises the one-sided stencils.
        let t = vec![0.00002, 0.5, 0.99995];
        let dt = vec![0.8, -1.2, 0.5];
        let (_, dv) = JvpField::<B>::forward_jvp(
            &g,
            tensor2(x.clone(), 3, 2),
            tensor1(t.clone()),
            None,
            tensor2(dx.clone(), 3, 2),
            Some(tensor1(dt.clone())),
        );
        // FD step 1e-6 so that t − h stays inside [0, 1] for the first row.
        let h = 1e-6;
        let at = |s: f64| {
            let xs = x.iter().zip(&dx).map(|(a, b)| a + s * b).collect();
            let ts = t.iter().zip(&dt).map(|(a, b)| a + s * b).collect();
            host(VelocityField::<B>::velocity(&g, tensor2(xs, 3, 2), tensor1(ts), None))
        };
        let (p, q) = (at(h), at(-h));
        let fd: Vec<f64> = p.iter().zip(&q).map(|(a, b)| (a - b) / (2.0 * h)).collect();
        // Both sides are differences: ε/h ≈ 1e-10 rounding here, ≈ 1e-8 in the coefficients.
        let err = rel_err(&host(dv), &fd);
        assert!(err < 1e-7, "{err:e}");
    }
}
