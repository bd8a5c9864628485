//! Mode-seeking guidance: push samples towards high-density regions of the flow by adding
//! λ·∇ₓ(−∇·v) to the velocity.
//!
//! Along the flow, d/dt log p_t(x(t)) = −∇·v(x(t), t) (the instantaneous change of variables,
//! Chen et al. 2018, Thm. 1), so regions where the divergence is negative are where the flow
//! concentrates mass. Following g(x, t) = ∇ₓ[−∇·v(x, t)] moves a sample towards points where
//! the flow contracts fastest, i.e. towards modes. The divergence is exact (small D) or
//! Hutchinson's estimate with fixed probes; its gradient is taken by reverse-mode autodiff
//! *through* the forward-mode JVP ([`crate::model::jvp`]).
//!
//! [`Guided`] wraps a field and is itself a [`VelocityField`], so every solver can use it.
//! For an MLP on the CPU, [`crate::engine::FusedField::guided`] gives the same field with the
//! exact divergence, its gradient taken by the fused engine's own reverse pass (no autodiff
//! backend; tested against this module's [`divergence_gradient`]).

use std::marker::PhantomData;

use burn::tensor::{Tensor, TensorData, backend::AutodiffBackend, backend::Backend};
use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use crate::likelihood::DivergenceMethod;
use crate::model::{Condition, JvpField, VelocityField};

/// Settings of mode-seeking guidance.
///
/// # Formula
/// ṽ(x, t) = v(x, t) + λ·𝟙(t_min ≤ t ≤ t_max)·g(x, t),  g(x, t) = ∇ₓ[−∇·v(x, t)]
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuidanceConfig {
    /// The strength λ (0: no guidance).
    pub lambda: f64,
    /// Guidance is applied for t ∈ [t_min, t_max] only (t = 0 noise, t = 1 data).
    pub t_min: f64,
    /// See `t_min`.
    pub t_max: f64,
    /// How ∇·v is computed (exact for small D, Hutchinson otherwise).
    pub divergence: DivergenceMethod,
}

impl Default for GuidanceConfig {
    fn default() -> Self {
        Self { lambda: 0.0, t_min: 0.0, t_max: 1.0, divergence: DivergenceMethod::Exact }
    }
}

impl GuidanceConfig {
    /// Checks the settings.
    ///
    /// # Errors
    /// [`ConfigError::OutOfRange`] for a non-finite λ or a window outside 0 ≤ t_min ≤ t_max ≤ 1;
    /// the divergence method's own errors.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.lambda.is_finite() {
            return Err(ConfigError::OutOfRange {
                name: "guidance.lambda",
                value: self.lambda.to_string(),
                expected: "a finite number",
            });
        }
        if !(0.0 <= self.t_min && self.t_min <= self.t_max && self.t_max <= 1.0) {
            return Err(ConfigError::OutOfRange {
                name: "guidance.t_min..t_max",
                value: format!("{}..{}", self.t_min, self.t_max),
                expected: "0 <= t_min <= t_max <= 1",
            });
        }
        self.divergence.validate()
    }
}

fn to_autodiff<A: AutodiffBackend>(c: &Condition<A::InnerBackend>) -> Condition<A> {
    match c {
        Condition::Class(l) => Condition::Class(Tensor::from_inner(l.clone())),
        Condition::Vector(v) => Condition::Vector(Tensor::from_inner(v.clone())),
    }
}

/// What [`divergence_gradient`] returns, on the inner backend.
#[derive(Debug, Clone)]
pub struct DivergenceGradient<B: Backend> {
    /// The velocity v, `[n, dim]`.
    pub v: Tensor<B, 2>,
    /// The divergence ∇·v (or its estimate), `[n]`.
    pub div: Tensor<B, 1>,
    /// Its gradient ∇ₓ(∇·v), `[n, dim]`.
    pub grad: Tensor<B, 2>,
}

/// The velocity, the divergence and its gradient ∇ₓ(∇·v) at each row, by reverse mode
/// through the JVP on the autodiff backend `A`. Inputs and outputs live on the inner backend.
///
/// # Formula
/// (v, ∇·v, ∇ₓ(∇·v)); with Hutchinson probes u fixed, the gradient is that of the estimate,
/// ∇ₓ (1/k) Σ_p u_pᵀ (∂v/∂x) u_p, an unbiased estimate of ∇ₓ(∇·v).
///
/// # Shapes
/// `x: [n, dim]`, `t: [n]` → `v: [n, dim]`, `div: [n]`, `grad: [n, dim]`
pub fn divergence_gradient<A: AutodiffBackend, F: JvpField<A> + ?Sized>(
    field: &F,
    method: &DivergenceMethod,
    x: Tensor<A::InnerBackend, 2>,
    t: Tensor<A::InnerBackend, 1>,
    cond: Option<&Condition<A::InnerBackend>>,
) -> DivergenceGradient<A::InnerBackend> {
    let x_ad = Tensor::<A, 2>::from_inner(x).require_grad();
    let t_ad = Tensor::<A, 1>::from_inner(t);
    let cond_ad = cond.map(to_autodiff::<A>);
    let (v, div) = method.velocity_and_divergence(field, x_ad.clone(), t_ad, cond_ad.as_ref());
    // Rows are independent, so the gradient of the sum is the per-row gradient.
    let grads = div.clone().sum().backward();
    let grad = x_ad.grad(&grads).unwrap_or_else(|| x_ad.inner().zeros_like());
    DivergenceGradient { v: v.inner(), div: div.inner(), grad }
}

/// A field with mode-seeking guidance: ṽ = v + λ·g inside the time window (see
/// [`GuidanceConfig`]). It is a [`VelocityField`] on the inner backend of `A`, so any solver can
/// integrate it.
///
/// The wrapped field lives on the autodiff backend `A` (the gradient runs through its JVP).
/// Build it without parameter gradients (`module.no_grad()` for burn modules) so that the
/// backward pass does not also compute the weights' gradients.
///
/// # Shapes
/// `x: [batch, dim]`, `t: [batch]` → `[batch, dim]`
#[derive(Debug, Clone)]
pub struct Guided<A: AutodiffBackend, F> {
    /// The field being guided.
    pub field: F,
    /// The settings.
    pub config: GuidanceConfig,
    _backend: PhantomData<A>,
}

impl<A: AutodiffBackend, F: JvpField<A>> Guided<A, F> {
    /// Wraps `field`.
    ///
    /// # Errors
    /// As [`GuidanceConfig::validate`].
    pub fn new(field: F, config: GuidanceConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self { field, config, _backend: PhantomData })
    }

    /// The plain velocity v and the guidance direction g = −∇ₓ(∇·v) (without λ or the window).
    ///
    /// # Shapes
    /// `x: [n, dim]`, `t: [n]` → `(v: [n, dim], g: [n, dim])`
    pub fn velocity_and_guidance(
        &self,
        x: Tensor<A::InnerBackend, 2>,
        t: Tensor<A::InnerBackend, 1>,
        cond: Option<&Condition<A::InnerBackend>>,
    ) -> (Tensor<A::InnerBackend, 2>, Tensor<A::InnerBackend, 2>) {
        let r = divergence_gradient(&self.field, &self.config.divergence, x, t, cond);
        (r.v, r.grad.neg())
    }
}

impl<A: AutodiffBackend, F: JvpField<A>> VelocityField<A::InnerBackend> for Guided<A, F> {
    fn dim(&self) -> usize {
        self.field.dim()
    }

    fn velocity(
        &self,
        x: Tensor<A::InnerBackend, 2>,
        t: Tensor<A::InnerBackend, 1>,
        cond: Option<&Condition<A::InnerBackend>>,
    ) -> Tensor<A::InnerBackend, 2> {
        let c = &self.config;
        let [n, _] = x.dims();
        let times: Vec<f64> = t.clone().into_data().convert::<f64>().into_vec::<f64>().expect("float times");
        let weights: Vec<f64> =
            times.iter().map(|&ti| if c.t_min <= ti && ti <= c.t_max { c.lambda } else { 0.0 }).collect();
        if weights.iter().all(|&w| w == 0.0) {
            let cond_ad = cond.map(to_autodiff::<A>);
            return self.field.velocity(Tensor::from_inner(x), Tensor::from_inner(t), cond_ad.as_ref()).inner();
        }
        let dev = x.device();
        let (v, g) = self.velocity_and_guidance(x, t, cond);
        let w = Tensor::<A::InnerBackend, 2>::from_data(TensorData::new(weights, [n, 1]), &dev);
        v + g * w
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::likelihood::divergence::{Hutchinson, ProbeKind, exact_divergence, quadratic_forms};
    use crate::model::{Activation, MlpField, MlpFieldConfig};
    use crate::test_util::{B, dev, host, tensor1, tensor2};
    use burn::backend::Autodiff;
    use burn::module::{AutodiffModule, Module};

    type Ad = Autodiff<B>;

    fn models(activation: Activation) -> (MlpField<Ad>, MlpField<B>) {
        let cfg = MlpFieldConfig { d_input: 3, d_hidden: 16, n_hidden: 2, activation, ..Default::default() };
        let ad = cfg.init::<Ad>(&dev(), &mut crate::rng::seeded(21)).no_grad();
        let inner = ad.valid();
        (ad, inner)
    }

    /// Central differences of a scalar per-row function f(x) → [n], along each coordinate.
    fn fd_gradient(f: &dyn Fn(Vec<f64>) -> Vec<f64>, x: &[f64], n: usize, d: usize) -> Vec<f64> {
        let h = 1e-5;
        let mut g = vec![0.0; n * d];
        for j in 0..d {
            let shift = |s: f64| {
                let mut xs = x.to_vec();
                (0..n).for_each(|i| xs[i * d + j] += s);
                f(xs)
            };
            let (p, m) = (shift(h), shift(-h));
            (0..n).for_each(|i| g[i * d + j] = (p[i] - m[i]) / (2.0 * h));
        }
        g
    }

    const X: [f64; 6] = [0.3, -1.2, 0.8, 1.5, 0.1, -0.4];
    const T: [f64; 2] = [0.2, 0.75];

    #[test]
    fn gradient_through_the_jvp_matches_central_differences_of_utju() {
        // ReLU is piecewise linear: its uᵀJu is piecewise constant and the gradient is 0 a.e.,
        // which FD reproduces too; the smooth activations test the second derivatives.
        for act in Activation::ALL {
            let (ad, inner) = models(act);
            let h = Hutchinson { probes: 2, kind: ProbeKind::Gaussian, seed: 8 };
            let method = DivergenceMethod::Hutchinson(h);
            let grad =
                divergence_gradient::<Ad, _>(&ad, &method, tensor2(X.to_vec(), 2, 3), tensor1(T.to_vec()), None).grad;
            let utju = |xs: Vec<f64>| -> Vec<f64> {
                let u = h.draw::<B>(2, 3, &dev());
                let (_, q) = quadratic_forms(&inner, tensor2(xs, 2, 3), tensor1(T.to_vec()), None, u);
                host(q.mean_dim(0).reshape([2]))
            };
            let fd = fd_gradient(&utju, &X, 2, 3);
            let grad = host(grad);
            for (a, b) in grad.iter().zip(&fd) {
                // f64 central differences, h = 1e-5: error ≈ 1e-10 · f'''.
                assert!((a - b).abs() < 1e-6 * (1.0 + b.abs()), "{act:?}: {grad:?} vs {fd:?}");
            }
            if act != Activation::Relu {
                assert!(grad.iter().any(|g| g.abs() > 1e-3), "{act:?}: a non-trivial gradient is checked");
            }
        }
    }

    #[test]
    fn exact_divergence_gradient_matches_central_differences() {
        let (ad, inner) = models(Activation::Gelu);
        let DivergenceGradient { div, grad, .. } = divergence_gradient::<Ad, _>(
            &ad,
            &DivergenceMethod::Exact,
            tensor2(X.to_vec(), 2, 3),
            tensor1(T.to_vec()),
            None,
        );
        let div_at = |xs: Vec<f64>| host(exact_divergence(&inner, tensor2(xs, 2, 3), tensor1(T.to_vec()), None).1);
        let fd = fd_gradient(&div_at, &X, 2, 3);
        for (a, b) in host(grad).iter().zip(&fd) {
            assert!((a - b).abs() < 1e-6 * (1.0 + b.abs()), "{a} vs {b}");
        }
        let d0 = div_at(X.to_vec());
        assert!((host(div)[0] - d0[0]).abs() < 1e-12);
    }

    #[test]
    fn guided_velocity_adds_lambda_g_inside_the_window_only() {
        let (ad, inner) = models(Activation::Silu);
        let config = GuidanceConfig { lambda: 0.7, t_min: 0.5, t_max: 1.0, divergence: DivergenceMethod::Exact };
        let guided = Guided::<Ad, _>::new(ad, config).unwrap();
        // Row 0 (t = 0.2) is outside the window, row 1 (t = 0.75) inside.
        let v = host(guided.velocity(tensor2(X.to_vec(), 2, 3), tensor1(T.to_vec()), None));
        let plain = host(inner.velocity(tensor2(X.to_vec(), 2, 3), tensor1(T.to_vec()), None));
        let div_at = |xs: Vec<f64>| host(exact_divergence(&inner, tensor2(xs, 2, 3), tensor1(T.to_vec()), None).1);
        let fd = fd_gradient(&div_at, &X, 2, 3);
        for j in 0..3 {
            assert!((v[j] - plain[j]).abs() < 1e-13, "outside the window: plain velocity");
            let expected = plain[3 + j] - 0.7 * fd[3 + j];
            assert!((v[3 + j] - expected).abs() < 1e-6, "inside: v − λ∇(∇·v): {} vs {expected}", v[3 + j]);
        }
        assert!((0..3).any(|j| (v[3 + j] - plain[3 + j]).abs() > 1e-4), "the guidance moves the velocity");
        // Entirely outside the window: the plain velocity.
        let early = host(guided.velocity(tensor2(X.to_vec(), 2, 3), tensor1(vec![0.1, 0.3]), None));
        let plain_early = host(inner.velocity(tensor2(X.to_vec(), 2, 3), tensor1(vec![0.1, 0.3]), None));
        assert!(early.iter().zip(&plain_early).all(|(a, b)| (a - b).abs() < 1e-13));
    }

    #[test]
    fn guidance_rejects_bad_windows() {
        let bad = GuidanceConfig { t_min: 0.8, t_max: 0.2, ..Default::default() };
        let e = bad.validate().unwrap_err().to_string();
        assert_eq!(e, "guidance.t_min..t_max = 0.8..0.2 is out of range: 0 <= t_min <= t_max <= 1");
        assert!(GuidanceConfig { lambda: f64::NAN, ..Default::default() }.validate().is_err());
    }
}
