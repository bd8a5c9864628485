//! The divergence ∇·v = tr(∂v/∂x) of a velocity field: exactly, from `dim` one-hot tangents in
//! one batched JVP pass, or by Hutchinson's unbiased estimator from k random probes.
//!
//! Both are built on [`quadratic_forms`]: for tangents u, uᵀ(∂v/∂x)u from one
//! [`JvpField::forward_jvp`] call on the batch tiled k times. The one-hot tangents e₁…e_D give
//! the diagonal of the Jacobian, whose sum is the trace; random u with E(uuᵀ) = I give
//! E(uᵀJu) = tr J (Hutchinson 1989; used for CNFs by Grathwohl et al. 2019, FFJORD §3.1).

use burn::tensor::{Tensor, TensorData, backend::Backend};
use rand::Rng as _;
use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use crate::model::{Condition, JvpField};

/// At most this many tangent rows (directions × batch) go through one JVP pass of the exact
/// divergence; more directions are split into several passes (bounding memory at large D).
pub const EXACT_MAX_ROWS: usize = 1 << 16;

/// The distribution of Hutchinson probes; both have E(uuᵀ) = I.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeKind {
    /// Each entry ±1 with probability ½: Var(uᵀJu) = 2 Σ_{i≠j} S_ij² with S = (J + Jᵀ)/2, the
    /// smallest variance of all probe laws, and zero for a diagonal Jacobian (Hutchinson 1989).
    #[default]
    Rademacher,
    /// Each entry N(0, 1): Var(uᵀJu) = 2 ‖S‖²_F with S = (J + Jᵀ)/2 (Girard 1989).
    Gaussian,
}

/// Hutchinson's trace estimator with `probes` probes per point, drawn from `seed`.
///
/// # Formula
/// ∇·v(x) ≈ (1/k) Σ_{p=1}^{k} u_pᵀ (∂v/∂x) u_p, u_p i.i.d. with E(u uᵀ) = I (unbiased)
///
/// # Fixed per trajectory
/// [`Hutchinson::draw`] is a pure function of (seed, batch, dim): every call with the same batch
/// shape gives the same probes, so an ODE solver that evaluates the divergence many times along
/// a trajectory sees one smooth integrand (FFJORD §3.1), and runs are reproducible.
///
/// ```
/// use ferroflow::backend::Cpu64;
/// use ferroflow::likelihood::divergence::{Hutchinson, ProbeKind};
/// let h = Hutchinson { probes: 2, kind: ProbeKind::Rademacher, seed: 7 };
/// let u = h.draw::<Cpu64>(3, 4, &Default::default());
/// assert_eq!(u.dims(), [6, 4]); // 2 probes × 3 points, in blocks
/// let v: Vec<f64> = u.into_data().into_vec().unwrap();
/// assert!(v.iter().all(|x| x.abs() == 1.0));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hutchinson {
    /// Probes per point, k ≥ 1.
    pub probes: usize,
    /// Their distribution.
    #[serde(default)]
    pub kind: ProbeKind,
    /// The seed of the probes.
    #[serde(default)]
    pub seed: u64,
}

impl Hutchinson {
    /// Checks the settings.
    ///
    /// # Errors
    /// [`ConfigError::OutOfRange`] unless 1 ≤ probes ≤ 4096.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if (1..=4096).contains(&self.probes) {
            Ok(())
        } else {
            Err(ConfigError::OutOfRange {
                name: "hutchinson.probes",
                value: self.probes.to_string(),
                expected: "1..=4096",
            })
        }
    }

    /// The probes for a batch of `n` points in `dim` dimensions: block p (rows p·n … p·n + n − 1)
    /// is the p-th probe of each point.
    ///
    /// # Shapes
    /// → `[probes·n, dim]`
    pub fn draw<B: Backend>(&self, n: usize, dim: usize, device: &B::Device) -> Tensor<B, 2> {
        let mut rng = crate::rng::seeded(self.seed);
        let len = self.probes * n * dim;
        let u: Vec<f64> = match self.kind {
            ProbeKind::Rademacher => (0..len).map(|_| if rng.random::<bool>() { 1.0 } else { -1.0 }).collect(),
            ProbeKind::Gaussian => {
                use rand_distr::{Distribution, StandardNormal};
                (0..len).map(|_| StandardNormal.sample(&mut rng)).collect()
            }
        };
        Tensor::from_data(TensorData::new(u, [self.probes * n, dim]), device)
    }
}

/// How the divergence is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum DivergenceMethod {
    /// Exact: `dim` one-hot tangents (cost ≈ forward + `dim` tangent passes).
    #[default]
    Exact,
    /// Hutchinson's estimator (cost ≈ forward + k tangent passes).
    Hutchinson(Hutchinson),
}

impl DivergenceMethod {
    /// Checks the settings.
    ///
    /// # Errors
    /// As [`Hutchinson::validate`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self {
            DivergenceMethod::Exact => Ok(()),
            DivergenceMethod::Hutchinson(h) => h.validate(),
        }
    }

    /// The velocity and the divergence (exact or estimated) at each row.
    ///
    /// # Shapes
    /// `x: [batch, dim]`, `t: [batch]` → `(v: [batch, dim], div: [batch])`
    pub fn velocity_and_divergence<B: Backend, F: JvpField<B> + ?Sized>(
        &self,
        field: &F,
        x: Tensor<B, 2>,
        t: Tensor<B, 1>,
        cond: Option<&Condition<B>>,
    ) -> (Tensor<B, 2>, Tensor<B, 1>) {
        match self {
            DivergenceMethod::Exact => exact_divergence(field, x, t, cond),
            DivergenceMethod::Hutchinson(h) => hutchinson_divergence(field, x, t, cond, h),
        }
    }
}

/// uᵀ(∂v/∂x)u for k tangents per point, in one JVP pass (the primal is computed once and the
/// tangents are propagated in blocks, see [`crate::model::jvp`]).
///
/// # Formula
/// q_{p,i} = u_{p,i}ᵀ ∂v/∂x(x_i, t_i) u_{p,i}
///
/// # Shapes
/// `x: [n, dim]`, `t: [n]`, `u: [k·n, dim]` (block p = the p-th tangent of every point)
/// → `(v: [n, dim], q: [k, n])`
pub fn quadratic_forms<B: Backend, F: JvpField<B> + ?Sized>(
    field: &F,
    x: Tensor<B, 2>,
    t: Tensor<B, 1>,
    cond: Option<&Condition<B>>,
    u: Tensor<B, 2>,
) -> (Tensor<B, 2>, Tensor<B, 2>) {
    let [n, _] = x.dims();
    let [kn, _] = u.dims();
    debug_assert_eq!(kn % n, 0);
    let (v, du) = field.forward_jvp(x, t, cond, u.clone(), None);
    let q = (du * u).sum_dim(1).reshape([kn / n, n]);
    (v, q)
}

/// The exact divergence from `dim` one-hot tangents, batched (at most [`EXACT_MAX_ROWS`]
/// tangent rows a pass).
///
/// # Formula
/// ∇·v(x) = Σ_{j=1}^{D} e_jᵀ (∂v/∂x) e_j
///
/// # Shapes
/// `x: [n, dim]`, `t: [n]` → `(v: [n, dim], div: [n])`
///
/// ```
/// use burn::tensor::Tensor;
/// use ferroflow::backend::Cpu64;
/// use ferroflow::likelihood::divergence::exact_divergence;
/// use ferroflow::model::GaussianToGaussian;
/// use ferroflow::path::SchedulerConfig;
/// // CondOT from N(0, 1) to N(0, 0.5²) in 1D: u_t(x) = x (t s² − (1 − t))/v_t, at t = 0 the
/// // gain is −1/1 = −1.
/// let g = GaussianToGaussian::new(SchedulerConfig::CondOt { sigma_min: 0.0 }, vec![0.0], vec![0.5]);
/// let d = Default::default();
/// let (_, div) = exact_divergence::<Cpu64, _>(&g, Tensor::from_floats([[0.3]], &d), Tensor::from_floats([0.0], &d), None);
/// assert!((div.into_scalar() + 1.0).abs() < 1e-12);
/// ```
///
/// It asks the field ([`JvpField::velocity_and_divergence`]): the default is
/// [`exact_divergence_by_jvp`]; the fused CPU engine has a cheaper route to the same numbers.
pub fn exact_divergence<B: Backend, F: JvpField<B> + ?Sized>(
    field: &F,
    x: Tensor<B, 2>,
    t: Tensor<B, 1>,
    cond: Option<&Condition<B>>,
) -> (Tensor<B, 2>, Tensor<B, 1>) {
    field.velocity_and_divergence(x, t, cond)
}

/// The exact divergence by `dim` one-hot JVPs, `k` tangents a pass with k·n ≤
/// [`EXACT_MAX_ROWS`]: any [`JvpField`]'s default [`JvpField::velocity_and_divergence`].
///
/// # Shapes
/// `x: [n, dim]`, `t: [n]` → `(v: [n, dim], div: [n])`
pub fn exact_divergence_by_jvp<B: Backend, F: JvpField<B> + ?Sized>(
    field: &F,
    x: Tensor<B, 2>,
    t: Tensor<B, 1>,
    cond: Option<&Condition<B>>,
) -> (Tensor<B, 2>, Tensor<B, 1>) {
    let [n, d] = x.dims();
    let dev = x.device();
    let per_pass = (EXACT_MAX_ROWS / n.max(1)).clamp(1, d);
    let eye = Tensor::<B, 2>::eye(d, &dev);
    let mut v_out = None;
    let mut div: Option<Tensor<B, 1>> = None;
    let mut j0 = 0;
    while j0 < d {
        let j1 = (j0 + per_pass).min(d);
        let k = j1 - j0;
        // Block p holds e_{j0+p} for every point.
        let u = eye.clone().slice(j0..j1).unsqueeze_dim::<3>(1).repeat_dim(1, n).reshape([k * n, d]);
        let (vk, du) = field.forward_jvp(x.clone(), t.clone(), cond, u.clone(), None);
        let part: Tensor<B, 1> = (du * u).sum_dim(1).reshape([k, n]).sum_dim(0).reshape([n]);
        div = Some(match div {
            None => part,
            Some(acc) => acc + part,
        });
        v_out.get_or_insert(vk);
        j0 = j1;
    }
    (v_out.expect("dim ≥ 1"), div.expect("dim ≥ 1"))
}

/// Hutchinson's estimate of the divergence: the mean of k quadratic forms with the probes of
/// `h` ([`Hutchinson::draw`], fixed for a given batch shape).
///
/// # Formula
/// ∇·v(x) ≈ (1/k) Σ_p u_pᵀ (∂v/∂x) u_p
///
/// # Shapes
/// `x: [n, dim]`, `t: [n]` → `(v: [n, dim], div: [n])`
pub fn hutchinson_divergence<B: Backend, F: JvpField<B> + ?Sized>(
    field: &F,
    x: Tensor<B, 2>,
    t: Tensor<B, 1>,
    cond: Option<&Condition<B>>,
    h: &Hutchinson,
) -> (Tensor<B, 2>, Tensor<B, 1>) {
    let [n, d] = x.dims();
    let u = h.draw::<B>(n, d, &x.device());
    let (v, q) = quadratic_forms(field, x, t, cond, u);
    (v, q.mean_dim(0).reshape([n]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Activation, GaussianToGaussian, MlpFieldConfig, VelocityField};
    use crate::path::{Scheduler, SchedulerConfig};
    use crate::test_util::{B, dev, host, tensor1, tensor2};

    fn mlp(activation: Activation) -> crate::model::MlpField<B> {
        MlpFieldConfig { d_input: 3, d_hidden: 16, n_hidden: 2, activation, ..Default::default() }
            .init::<B>(&dev(), &mut crate::rng::seeded(9))
    }

    /// tr of the central-difference Jacobian of `field` at each row.
    fn fd_trace(field: &impl VelocityField<B>, x: &[f64], t: &[f64], n: usize, d: usize) -> Vec<f64> {
        let h = 1e-5;
        let mut tr = vec![0.0; n];
        for j in 0..d {
            let shift = |s: f64| {
                let mut xs = x.to_vec();
                (0..n).for_each(|i| xs[i * d + j] += s);
                host(field.velocity(tensor2(xs, n, d), tensor1(t.to_vec()), None))
            };
            let (p, m) = (shift(h), shift(-h));
            (0..n).for_each(|i| tr[i] += (p[i * d + j] - m[i * d + j]) / (2.0 * h));
        }
        tr
    }

    #[test]
    fn exact_divergence_is_the_trace_of_the_fd_jacobian() {
        let x = vec![0.3, -1.2, 0.8, 1.5, 0.1, -0.4];
        let t = vec![0.2, 0.75];
        for act in Activation::ALL {
            let m = mlp(act);
            let (v, div) = exact_divergence(&m, tensor2(x.clone(), 2, 3), tensor1(t.clone()), None);
            let fd = fd_trace(&m, &x, &t, 2, 3);
            let div = host(div);
            for i in 0..2 {
                // Central differences, h = 1e-5, f64: error ≈ 1e-10 per entry.
                assert!(
                    (div[i] - fd[i]).abs() < 1e-7 * (1.0 + fd[i].abs()),
                    "{act:?} row {i}: {} vs {}",
                    div[i],
                    fd[i]
                );
            }
            // The JVP's value is `velocity` (GELU is spelled out with erf: rounding only).
            let v_plain = host(m.velocity(tensor2(x.clone(), 2, 3), tensor1(t.clone()), None));
            assert!(host(v).iter().zip(&v_plain).all(|(a, b)| (a - b).abs() < 1e-14));
        }
    }

    #[test]
    fn exact_divergence_splits_into_passes_consistently() {
        // 40 000 points × 3 directions = 120 000 rows > EXACT_MAX_ROWS: one direction a pass.
        let m = mlp(Activation::Tanh);
        let n = 40_000;
        let x: Vec<f64> = (0..3 * n).map(|i| ((i * 37 % 101) as f64 / 50.0) - 1.0).collect();
        let t: Vec<f64> = (0..n).map(|i| (i % 10) as f64 / 10.0).collect();
        let (_, div) = exact_divergence(&m, tensor2(x.clone(), n, 3), tensor1(t.clone()), None);
        let div = host(div);
        // Compare a few rows with a single-pass run on those rows alone.
        for i in [0, 17, 39_999] {
            let (_, one) = exact_divergence(&m, tensor2(x[3 * i..3 * i + 3].to_vec(), 1, 3), tensor1(vec![t[i]]), None);
            assert!((host(one)[0] - div[i]).abs() < 1e-12, "row {i}");
        }
    }

    #[test]
    fn gaussian_divergence_is_the_sum_of_the_gains() {
        let sched = SchedulerConfig::Cosine;
        let (mean, std) = (vec![1.0, -2.0, 0.5], vec![0.5, 1.5, 0.2]);
        let g = GaussianToGaussian::new(sched, mean, std.clone());
        let t = vec![0.1, 0.5, 0.9];
        let x = vec![0.3, -0.2, 1.1, 0.4, -1.0, 2.0, 0.0, 0.0, 0.0];
        let (_, div) = exact_divergence::<B, _>(&g, tensor2(x, 3, 3), tensor1(t.clone()), None);
        for (i, &ti) in t.iter().enumerate() {
            let c = sched.at(ti);
            let analytic: f64 = std
                .iter()
                .map(|s| {
                    let v = c.alpha_t * c.alpha_t * s * s + c.sigma_t * c.sigma_t;
                    (c.alpha_t * c.d_alpha_t * s * s + c.sigma_t * c.d_sigma_t) / v
                })
                .sum();
            // Same f64 formula evaluated in another order: rounding only.
            assert!((host(div.clone())[i] - analytic).abs() < 1e-12, "t = {ti}");
        }
    }

    #[test]
    fn rademacher_hutchinson_is_exact_for_a_diagonal_jacobian() {
        // uᵀ diag(b) u = Σ b_k u_k² = Σ b_k when u_k = ±1: zero variance.
        let g =
            GaussianToGaussian::new(SchedulerConfig::CondOt { sigma_min: 0.0 }, vec![0.0; 4], vec![0.3, 0.7, 1.2, 2.0]);
        let x = tensor2((0..8).map(|i| i as f64 / 4.0).collect(), 2, 4);
        let t = tensor1(vec![0.3, 0.8]);
        let (_, exact) = exact_divergence::<B, _>(&g, x.clone(), t.clone(), None);
        let h = Hutchinson { probes: 1, kind: ProbeKind::Rademacher, seed: 1 };
        let (_, est) = hutchinson_divergence::<B, _>(&g, x, t, None, &h);
        for (a, b) in host(exact).iter().zip(host(est)) {
            assert!((a - b).abs() < 1e-12);
        }
    }

    #[test]
    fn hutchinson_mean_matches_the_exact_trace_within_its_standard_error() {
        let m = mlp(Activation::Silu);
        let x = vec![0.3, -1.2, 0.8, 1.5, 0.1, -0.4];
        let t = vec![0.2, 0.75];
        let (_, exact) = exact_divergence(&m, tensor2(x.clone(), 2, 3), tensor1(t.clone()), None);
        let exact = host(exact);
        let k = 4000;
        for kind in [ProbeKind::Rademacher, ProbeKind::Gaussian] {
            let h = Hutchinson { probes: k, kind, seed: 11 };
            let u = h.draw::<B>(2, 3, &dev());
            let (_, q) = quadratic_forms(&m, tensor2(x.clone(), 2, 3), tensor1(t.clone()), None, u);
            let q = host(q); // [k, 2]
            for i in 0..2 {
                let s: Vec<f64> = (0..k).map(|p| q[p * 2 + i]).collect();
                let mean = s.iter().sum::<f64>() / k as f64;
                let var = s.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (k - 1) as f64;
                let se = (var / k as f64).sqrt();
                assert!(se > 0.0, "{kind:?}: a non-diagonal Jacobian has probe variance");
                // 4 standard errors: a false alarm has probability ≈ 6e-5 (the seed is fixed,
                // so the test is deterministic); a biased estimator (e.g. probes without
                // E(uuᵀ) = I) misses by many SE.
                assert!((mean - exact[i]).abs() < 4.0 * se, "{kind:?} row {i}: {mean} ± {se} vs {}", exact[i]);
            }
        }
        // The helper averages the same quadratic forms.
        let h = Hutchinson { probes: 3, kind: ProbeKind::Gaussian, seed: 5 };
        let (_, est) = hutchinson_divergence(&m, tensor2(x.clone(), 2, 3), tensor1(t.clone()), None, &h);
        let (_, q) = quadratic_forms(&m, tensor2(x, 2, 3), tensor1(t), None, h.draw::<B>(2, 3, &dev()));
        let q = host(q);
        let est = host(est);
        assert!((est[0] - (q[0] + q[2] + q[4]) / 3.0).abs() < 1e-12);
    }

    #[test]
    fn hutchinson_probes_are_fixed_by_the_seed() {
        let h = Hutchinson { probes: 2, kind: ProbeKind::Gaussian, seed: 3 };
        let a = host(h.draw::<B>(5, 3, &dev()));
        assert_eq!(a, host(h.draw::<B>(5, 3, &dev())));
        let other = Hutchinson { seed: 4, ..h };
        assert_ne!(a, host(other.draw::<B>(5, 3, &dev())));
        assert!(Hutchinson { probes: 0, ..h }.validate().is_err());
    }
}
