//! Log-likelihoods of data points by the instantaneous change of variables.
//!
//! # Formula
//! Along a trajectory of dx/dt = v(x, t), d/dt log p_t(x(t)) = −∇·v(x(t), t) (Chen et al. 2018,
//! *Neural ODEs*, Thm. 1; Lipman et al. 2023, eq. 10 with t reversed). With **t = 0 the source
//! and t = 1 the data**, the augmented state z = [x, ℓ] is integrated *backwards* from
//! z(1) = [x₁, 0] to t = 0 under
//!
//! dz/dt = [v(x, t), ∇·v(x, t)],
//!
//! so ℓ(0) = −∫₀¹ ∇·v(x(t), t) dt and
//!
//! log p₁(x₁) = log p₀(x(0)) + ℓ(0) = log p₀(x(0)) − ∫₀¹ ∇·v dt,
//!
//! with p₀ = N(0, σ₀² I), σ₀ = [`crate::path::SchedulerConfig::source_std`]. Results are in
//! nats; [`LogLikelihood::bits_per_dim`] converts (with [`Dequantization`] for 8-bit images).
//!
//! With Hutchinson's estimator the probes are fixed along each trajectory, so ℓ(0) is an
//! unbiased estimate of −∫₀¹ ∇·v dt and the log-likelihood is unbiased (FFJORD, §3.1); its
//! exponential, the density, is not.

use burn::tensor::{Tensor, backend::Backend};
use serde::{Deserialize, Serialize};

use super::divergence::DivergenceMethod;
use crate::data::Points;
use crate::error::{ConfigError, Error};
use crate::model::{Condition, JvpField, VelocityField};
use crate::solver::SolverConfig;

/// The augmented field [v, ∇·v] on the state z = [x, ℓ] (`dim + 1` columns), for any solver.
///
/// # Shapes
/// `z: [batch, dim + 1]`, `t: [batch]` → `[batch, dim + 1]`
#[derive(Debug, Clone, Copy)]
pub struct Augmented<'a, F: ?Sized> {
    /// The velocity field.
    pub field: &'a F,
    /// How its divergence is computed.
    pub divergence: DivergenceMethod,
}

impl<B: Backend, F: JvpField<B> + ?Sized> VelocityField<B> for Augmented<'_, F> {
    fn dim(&self) -> usize {
        self.field.dim() + 1
    }

    fn velocity(&self, z: Tensor<B, 2>, t: Tensor<B, 1>, cond: Option<&Condition<B>>) -> Tensor<B, 2> {
        let [n, d1] = z.dims();
        let x = z.slice([0..n, 0..d1 - 1]);
        let (v, div) = self.divergence.velocity_and_divergence(self.field, x, t, cond);
        Tensor::cat(vec![v, div.reshape([n, 1])], 1)
    }
}

/// Settings of a log-likelihood computation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LikelihoodConfig {
    /// The ODE solver (Dopri5 with atol = rtol = 1e-5 by default).
    pub solver: SolverConfig,
    /// How the divergence is computed.
    pub divergence: DivergenceMethod,
    /// σ₀ of the source N(0, σ₀² I) (the scheduler's `source_std()`).
    pub source_std: f64,
}

impl Default for LikelihoodConfig {
    fn default() -> Self {
        Self { solver: SolverConfig::default(), divergence: DivergenceMethod::Exact, source_std: 1.0 }
    }
}

impl LikelihoodConfig {
    /// Checks the settings.
    ///
    /// # Errors
    /// [`ConfigError`] for a bad solver or divergence setting or σ₀ not a finite positive number.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.solver.validate()?;
        self.divergence.validate()?;
        if !(self.source_std > 0.0 && self.source_std.is_finite()) {
            return Err(ConfigError::OutOfRange {
                name: "likelihood.source_std",
                value: self.source_std.to_string(),
                expected: "a finite number > 0",
            });
        }
        Ok(())
    }
}

/// Per-point log-likelihoods and the cost of computing them.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLikelihood {
    /// log p₁(x₁) of each point, in nats.
    pub log_p: Vec<f64>,
    /// log p₀(x(0)) of each point's source end, in nats.
    pub log_p0: Vec<f64>,
    /// ℓ(0) = −∫₀¹ ∇·v dt of each point (log p₁ − log p₀).
    pub delta: Vec<f64>,
    /// The dimension D of the points.
    pub dim: usize,
    /// Evaluations of the augmented field (each is one velocity + divergence computation).
    pub nfe: usize,
}

impl LogLikelihood {
    /// The mean negative log-likelihood in nats and its standard error s/√n (s: the sample
    /// standard deviation over points; 0 for a single point).
    pub fn mean_nll(&self) -> (f64, f64) {
        mean_and_se(self.log_p.iter().map(|l| -l))
    }

    /// The mean negative log-likelihood in bits per dimension and its standard error.
    ///
    /// # Formula
    /// without dequantisation: bpd = nll / (D ln 2); with it, see [`Dequantization::bits_per_dim`].
    pub fn bits_per_dim(&self, dequantization: Option<&Dequantization>) -> (f64, f64) {
        let d = self.dim;
        let per_point = self.log_p.iter().map(|l| match dequantization {
            Some(q) => q.bits_per_dim(-l, d),
            None => -l / (d as f64 * std::f64::consts::LN_2),
        });
        mean_and_se(per_point)
    }
}

fn mean_and_se(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let v: Vec<f64> = values.collect();
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    if v.len() < 2 {
        return (mean, 0.0);
    }
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, (var / n).sqrt())
}

/// log N(z; 0, σ² I) of each row of the row-major `z` (`dim` columns), in nats.
///
/// # Formula
/// −‖z‖²/(2σ²) − (D/2)·ln(2πσ²)
///
/// ```
/// use ferroflow::likelihood::loglik::gaussian_log_density;
/// // N(0, 2²) in 1D at z = 2: −1/2 − ln(2√(2π)) = −2.1120857
/// assert!((gaussian_log_density(&[2.0], 1, 2.0)[0] + 2.1120857).abs() < 1e-7);
/// ```
pub fn gaussian_log_density(z: &[f64], dim: usize, std: f64) -> Vec<f64> {
    let norm = -0.5 * dim as f64 * (2.0 * std::f64::consts::PI * std * std).ln();
    z.chunks(dim).map(|row| norm - row.iter().map(|v| v * v).sum::<f64>() / (2.0 * std * std)).collect()
}

/// The log-likelihood of each row of `x1` under the flow of `field` (t = 1 data, t = 0 noise).
///
/// # Formula
/// log p₁(x₁) = log p₀(x(0)) − ∫₀¹ ∇·v(x(t), t) dt, integrated from t = 1 to t = 0 (see the
/// [module docs](self)).
///
/// # Shapes
/// `x1: [batch, dim]` → one value per row.
///
/// # Errors
/// [`Error::Config`] for invalid settings; [`Error::Solver`] if the solver fails (dimension
/// mismatch, step budget, non-finite velocity).
///
/// ```
/// use burn::tensor::Tensor;
/// use ferroflow::backend::Cpu64;
/// use ferroflow::likelihood::loglik::{LikelihoodConfig, log_likelihood};
/// use ferroflow::model::GaussianToGaussian;
/// use ferroflow::path::SchedulerConfig;
/// let g = GaussianToGaussian::new(SchedulerConfig::CondOt { sigma_min: 0.0 }, vec![1.0], vec![0.5]);
/// let x1 = Tensor::<Cpu64, 2>::from_floats([[1.0]], &Default::default());
/// let ll = log_likelihood(&g, x1, None, &LikelihoodConfig::default()).unwrap();
/// // N(1, 0.5²) at its mean: −ln(0.5·√(2π)) = −0.2257914
/// assert!((ll.log_p[0] + 0.2257914).abs() < 1e-5);
/// ```
pub fn log_likelihood<B: Backend, F: JvpField<B> + ?Sized>(
    field: &F,
    x1: Tensor<B, 2>,
    cond: Option<&Condition<B>>,
    config: &LikelihoodConfig,
) -> Result<LogLikelihood, Error> {
    config.validate()?;
    let [n, d] = x1.dims();
    if d != field.dim() {
        return Err(Error::Shape {
            op: "log_likelihood",
            expected: format!("{} columns (the field's dimension)", field.dim()),
            got: format!("{d} columns"),
        });
    }
    let z1 = Tensor::cat(vec![x1.clone(), x1.zeros_like().slice([0..n, 0..1])], 1);
    let aug = Augmented { field, divergence: config.divergence };
    let sol = config.solver.solve(&aug, z1, cond, 1.0, 0.0, false)?;
    let z0: Vec<f64> = sol.x.into_data().convert::<f64>().into_vec::<f64>().expect("a float tensor");
    let (mut x0, mut delta) = (Vec::with_capacity(n * d), Vec::with_capacity(n));
    for row in z0.chunks(d + 1) {
        x0.extend_from_slice(&row[..d]);
        delta.push(row[d]);
    }
    let log_p0 = gaussian_log_density(&x0, d, config.source_std);
    let log_p = log_p0.iter().zip(&delta).map(|(a, b)| a + b).collect();
    Ok(LogLikelihood { log_p, log_p0, delta, dim: d, nfe: sol.nfe })
}

/// The range 8-bit pixels were scaled to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PixelRange {
    /// x = k/255 ∈ [0, 1] (torchvision's `ToTensor`).
    ZeroOne,
    /// x = 2k/255 − 1 ∈ [−1, 1] (the usual diffusion / flow matching scaling).
    #[default]
    MinusOneOne,
}

impl PixelRange {
    /// (lo, hi) of the range.
    pub fn bounds(self) -> (f64, f64) {
        match self {
            PixelRange::ZeroOne => (0.0, 1.0),
            PixelRange::MinusOneOne => (-1.0, 1.0),
        }
    }
}

/// Uniform dequantisation of L-level images and the bits/dim of the discrete data it bounds.
///
/// # Formula
/// A pixel k ∈ {0, …, L−1}, stored as x = lo + (hi − lo)·k/(L−1), is dequantised to
/// x̃ = lo + (hi − lo)·(k + u)/L, u ~ U(0, 1) (Theis et al. 2016; Ho et al. 2019, §3.1). Each bin
/// has width w = (hi − lo)/L, so the discrete model P(k) = ∫_bin p(x̃) dx̃ satisfies
/// −log P(k) ≤ E_u[−log p(x̃)] − D·ln w, and
///
/// bits/dim = (nll + D·ln(L/(hi − lo))) / (D·ln 2).
///
/// For L = 256 this adds 8 bits/dim to nll/(D ln 2) for data in [0, 1] (Glow, FFJORD) and 7 for
/// data in [−1, 1] (Song et al. 2021's `offset = 7 − inverse_scaler(−1)`), so numbers compare
/// with the literature whichever scaling the model was trained on.
///
/// ```
/// use ferroflow::likelihood::loglik::{Dequantization, PixelRange};
/// let q = Dequantization { levels: 256, range: PixelRange::MinusOneOne };
/// // nll = 0 nats: 7 bits/dim for data in [−1, 1].
/// assert!((q.bits_per_dim(0.0, 784) - 7.0).abs() < 1e-12);
/// let q01 = Dequantization { levels: 256, range: PixelRange::ZeroOne };
/// assert!((q01.bits_per_dim(0.0, 784) - 8.0).abs() < 1e-12);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dequantization {
    /// Number of levels L (256 for 8-bit images).
    pub levels: u32,
    /// The range the pixels were scaled to.
    pub range: PixelRange,
}

impl Default for Dequantization {
    fn default() -> Self {
        Self { levels: 256, range: PixelRange::MinusOneOne }
    }
}

impl Dequantization {
    /// Checks the settings.
    ///
    /// # Errors
    /// [`ConfigError::OutOfRange`] unless 2 ≤ levels ≤ 65536.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if (2..=65_536).contains(&self.levels) {
            Ok(())
        } else {
            Err(ConfigError::OutOfRange {
                name: "dequantization.levels",
                value: self.levels.to_string(),
                expected: "2..=65536",
            })
        }
    }

    /// Dequantises scaled pixels: recovers k = round((x − lo)/(hi − lo)·(L − 1)) (clamped to
    /// 0…L−1), then x̃ = lo + (hi − lo)·(k + u)/L with u ~ U(0, 1) from `rng`.
    pub fn dequantize(&self, x: &Points, rng: &mut crate::rng::Rng) -> Points {
        use rand::Rng as _;
        let (lo, hi) = self.range.bounds();
        let l = self.levels as f64;
        let data = x
            .data
            .iter()
            .map(|&v| {
                let k = ((v as f64 - lo) / (hi - lo) * (l - 1.0)).round().clamp(0.0, l - 1.0);
                (lo + (hi - lo) * (k + rng.random::<f64>()) / l) as f32
            })
            .collect();
        Points { data, n: x.n, dim: x.dim }
    }

    /// Bits per dimension of the discrete data from the continuous nll (nats) of one
    /// dequantised point of dimension `dim` (see the formula above).
    pub fn bits_per_dim(&self, nll: f64, dim: usize) -> f64 {
        let (lo, hi) = self.range.bounds();
        let d = dim as f64;
        (nll + d * (self.levels as f64 / (hi - lo)).ln()) / (d * std::f64::consts::LN_2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{Cpu, CpuAutodiff};
    use crate::likelihood::divergence::{Hutchinson, ProbeKind};
    use crate::model::{GaussianToGaussian, MlpFieldConfig};
    use crate::path::SchedulerConfig;
    use crate::test_util::tensor2;

    fn tight() -> LikelihoodConfig {
        LikelihoodConfig {
            solver: SolverConfig::Dopri5 { atol: 1e-9, rtol: 1e-9, max_steps: 10_000 },
            ..Default::default()
        }
    }

    #[test]
    fn gaussian_loglik_with_exact_divergence_equals_the_analytic_density() {
        for sched in [SchedulerConfig::CondOt { sigma_min: 0.0 }, SchedulerConfig::Cosine] {
            let g = GaussianToGaussian::new(sched, vec![1.0, -2.0, 0.5], vec![0.5, 1.5, 0.8]);
            let x = vec![1.2, -1.0, 0.3, 0.0, 0.0, 0.0, 2.5, -4.0, 1.9];
            let ll = log_likelihood(&g, tensor2(x.clone(), 3, 3), None, &tight()).unwrap();
            for i in 0..3 {
                let exact = g.log_density(&x[3 * i..3 * i + 3], 1.0);
                eprintln!("{sched:?} row {i}: |error| = {:.2e}, NFE = {}", (ll.log_p[i] - exact).abs(), ll.nfe);
                // Dopri5 at tol 1e-9 on a smooth linear ODE: the error is ≪ 1e-4 (the issue's bound).
                assert!((ll.log_p[i] - exact).abs() < 1e-4, "{sched:?} row {i}: {} vs {exact}", ll.log_p[i]);
            }
            assert!(ll.nfe > 6);
        }
    }

    #[test]
    fn gaussian_loglik_with_hutchinson_is_unbiased_within_its_standard_error() {
        // Gaussian probes (Rademacher would be exact for this diagonal Jacobian). Each copy of
        // the point gets its own probe row, so 400 copies are 400 independent estimates.
        let g = GaussianToGaussian::new(SchedulerConfig::CondOt { sigma_min: 0.0 }, vec![1.0, -2.0], vec![0.5, 1.5]);
        let p = [0.8, -1.0];
        let n = 400;
        let x: Vec<f64> = (0..n).flat_map(|_| p).collect();
        let cfg = LikelihoodConfig {
            divergence: DivergenceMethod::Hutchinson(Hutchinson { probes: 1, kind: ProbeKind::Gaussian, seed: 3 }),
            ..tight()
        };
        let ll = log_likelihood(&g, tensor2(x, n, 2), None, &cfg).unwrap();
        let (nll, se) = ll.mean_nll();
        let exact = g.log_density(&p, 1.0);
        eprintln!("Hutchinson: log p = {:.5} ± {se:.5} vs exact {exact:.5}", -nll);
        assert!(se > 1e-3, "the estimator has variance: se = {se}");
        // 4 standard errors (deterministic seed); a sign error in ℓ misses by ≫ 4 SE.
        assert!((-nll - exact).abs() < 4.0 * se, "{} ± {se} vs {exact}", -nll);
    }

    #[test]
    fn loglik_rejects_points_of_the_wrong_dimension() {
        let g = GaussianToGaussian::new(SchedulerConfig::Cosine, vec![0.0, 0.0], vec![1.0, 1.0]);
        let e = log_likelihood(&g, tensor2(vec![0.0; 3], 1, 3), None, &LikelihoodConfig::default()).unwrap_err();
        assert_eq!(e.to_string(), "log_likelihood: expected 2 columns (the field's dimension), got 3 columns");
    }

    #[test]
    fn dequantization_recovers_levels_and_stays_in_their_bins() {
        let q = Dequantization::default();
        let k = [0.0f64, 1.0, 127.0, 255.0];
        let x: Vec<f32> = k.iter().map(|k| (2.0 * k / 255.0 - 1.0) as f32).collect();
        let y = q.dequantize(&Points { data: x, n: 1, dim: 4 }, &mut crate::rng::seeded(0));
        for (yi, ki) in y.data.iter().zip(k) {
            let bin = (((*yi as f64) + 1.0) / 2.0 * 256.0).floor();
            assert_eq!(bin, ki, "x̃ = {yi} must lie in bin {ki}");
        }
    }

    #[test]
    fn trained_2d_density_integrates_to_one() {
        use crate::data::{EmpiricalSource, GaussianSource, PointSource};
        use crate::train::{TrainConfig, Trainer};
        // A two-blob target; a small MLP trained briefly. Whatever it learned, its flow's
        // density is a density: it must integrate to 1 (up to the grid and the solver).
        let mut rng = crate::rng::seeded(5);
        let n = 2048;
        let z = crate::rng::normal_vec(&mut rng, 2 * n);
        let data: Vec<f32> = (0..n)
            .flat_map(|i| {
                let s = if i % 2 == 0 { 1.0 } else { -1.0 };
                [s * 1.5 + 0.4 * z[2 * i], 0.4 * z[2 * i + 1]]
            })
            .collect();
        let mut target = EmpiricalSource::new(Points { data, n, dim: 2 });
        let mut source = GaussianSource { dim: 2, std: 1.0 };
        let model_cfg = MlpFieldConfig { d_input: 2, d_hidden: 32, n_hidden: 2, ..Default::default() };
        let train_cfg = TrainConfig { steps: 300, batch_size: 128, lr: 3e-3, ..Default::default() };
        let mut trainer = Trainer::<CpuAutodiff>::new(model_cfg, train_cfg, &Default::default()).unwrap();
        for step in 0..300 {
            let mut r = crate::train::step_rng(0, step);
            let (x0, _) = source.sample(128, &mut r);
            let (x1, _) = target.sample(128, &mut r);
            trainer.train_step(&x0, &x1, None, &mut r).unwrap();
        }
        let model = trainer.sampling_model();
        // Grid [−5, 5]² at h = 0.2: 50×50 cells, 1000 points a solve.
        let cfg = LikelihoodConfig {
            solver: SolverConfig::Fixed { method: crate::solver::OdeMethod::Rk4, steps: 20 },
            ..Default::default()
        };
        let grid = crate::likelihood::density::log_density_grid::<Cpu, _>(
            &model,
            (-5.0, 5.0),
            (-5.0, 5.0),
            50,
            50,
            &cfg,
            1000,
            &Default::default(),
        )
        .unwrap();
        let mass = crate::likelihood::density::grid_mass(&grid);
        eprintln!("trained 2D density: ∫p over the grid = {mass:.5}");
        // 5 %: the midpoint rule on a smooth density at h = 0.2, the tails beyond ±5 and RK4's
        // error with 20 steps are each ≪ 1 %; f32 arithmetic adds ~1e-6.
        assert!((mass - 1.0).abs() < 0.05, "∫p = {mass}");
    }
}
