//! Stochastic sampling: Euler–Maruyama on the SDE that has the same marginals as the flow.

use burn::tensor::{Tensor, TensorData, backend::Backend};
use serde::{Deserialize, Serialize};

use super::ode::{TimeGrid, check_steps};
use super::{Solution, SolverError, check_dim};
use crate::data::Points;
use crate::error::ConfigError;
use crate::model::{Condition, VelocityField};
use crate::path::convert::score_from_velocity;
use crate::path::{PathCoefficients, Scheduler, SchedulerConfig};
use crate::rng::{Rng, normal_vec};

/// The diffusion coefficient g_t of the sampling SDE.
///
/// # Formula
/// - `Constant`: g_t = g
/// - `ConstantUntil`: g_t = g for t ≤ t_max, 0 after (the last stretch is the plain ODE)
/// - `SigmaScaled`: g_t = scale·σ_t, which vanishes where the score is singular (σ_t → 0 at
///   the data end t = 1 for CondOT with σ_min = 0)
///
/// g = 0 (or scale = 0) gives the ODE: the sampler is then exactly Euler.
///
/// ```
/// use ferroflow::path::SchedulerConfig;
/// use ferroflow::solver::Diffusion;
/// let s = SchedulerConfig::CondOt { sigma_min: 0.0 };
/// assert_eq!(Diffusion::SigmaScaled { scale: 2.0 }.at(0.75, &s), 0.5); // 2·(1 − 0.75)
/// assert_eq!(Diffusion::ConstantUntil { g: 1.0, t_max: 0.9 }.at(0.95, &s), 0.0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Diffusion {
    /// g_t = g everywhere.
    Constant {
        /// g ≥ 0.
        g: f64,
    },
    /// g_t = g for t ≤ t_max, 0 for t > t_max.
    ConstantUntil {
        /// g ≥ 0.
        g: f64,
        /// The time after which the noise is switched off, in [0, 1].
        t_max: f64,
    },
    /// g_t = scale·σ_t.
    SigmaScaled {
        /// scale ≥ 0.
        scale: f64,
    },
}

impl Diffusion {
    /// g_t at time `t` for the path given by `scheduler`.
    pub fn at(&self, t: f64, scheduler: &dyn Scheduler) -> f64 {
        match *self {
            Diffusion::Constant { g } => g,
            Diffusion::ConstantUntil { g, t_max } => {
                if t <= t_max {
                    g
                } else {
                    0.0
                }
            }
            Diffusion::SigmaScaled { scale } => scale * scheduler.at(t).sigma_t,
        }
    }

    /// Checks the coefficients.
    ///
    /// # Errors
    /// [`ConfigError::OutOfRange`] for a negative or non-finite `g`/`scale`, or `t_max ∉ [0, 1]`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let nonneg = |name: &'static str, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(ConfigError::OutOfRange { name, value: v.to_string(), expected: "a finite number ≥ 0" })
            }
        };
        match *self {
            Diffusion::Constant { g } => nonneg("g", g),
            Diffusion::ConstantUntil { g, t_max } => {
                nonneg("g", g)?;
                if (0.0..=1.0).contains(&t_max) {
                    Ok(())
                } else {
                    Err(ConfigError::OutOfRange { name: "t_max", value: t_max.to_string(), expected: "in [0, 1]" })
                }
            }
            Diffusion::SigmaScaled { scale } => nonneg("scale", scale),
        }
    }
}

/// The Euler–Maruyama sampler from t = 0 (noise) to t = 1 (data) on `steps` uniform steps.
///
/// # Formula
/// dX_t = [v(X_t, t) + (g_t²/2)·∇log p_t(X_t)] dt + g_t dW_t, discretised as
///
/// X_{n+1} = X_n + h·[v + (g²/2)·score](X_n, t_n) + g_{t_n}·√h·z_n,  z_n ~ N(0, I),
///
/// with the score obtained from the velocity for the affine path of `scheduler`
/// ([`score_from_velocity`]: score = (α v − α̇ x)/(σ(α̇σ − ασ̇))).
///
/// **It keeps the path's marginals.** If p_t solves the continuity equation
/// ∂p/∂t = −∇·(p v), then with the drift v + (g²/2)∇log p the Fokker–Planck equation reads
/// ∂p/∂t = −∇·(p v) − (g²/2)∇·(p ∇log p) + (g²/2)Δp = −∇·(p v), since p∇log p = ∇p: the same
/// equation, so X_t ~ p_t for every t and every g_t ≥ 0 (Song et al. 2021, *Score-Based
/// Generative Modeling through SDEs*, App. D.1, the family behind the probability-flow ODE;
/// Karras et al. 2022, *Elucidating the Design Space*, eq. 6; Holderrieth & Erives 2025,
/// *An Introduction to Flow Matching and Diffusion Models*, the "SDE extension trick").
/// Euler–Maruyama is weak order 1, so the marginals are matched to O(h).
///
/// **Singularity.** The score divides by σ_t; where σ_t = 0 (t = 1 on CondOT with σ_min = 0)
/// it does not exist, and close to it the term (g²/2)·score ∼ g²/σ_t² stiffens the drift when
/// the data are concentrated. The sampler evaluates the drift only at the left end t_n of each
/// step (never at t = 1 on the grid 0 → 1), refuses a step where σ_t = 0 and g_t ≠ 0
/// ([`SolverError::SingularScore`]), and [`Diffusion::SigmaScaled`] or
/// [`Diffusion::ConstantUntil`] switch the noise off near the data end.
///
/// Steps where g_t = 0 skip the score and draw no noise: they are exactly the Euler ODE step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SdeConfig {
    /// The path the field was trained on (needed to turn velocity into score).
    pub scheduler: SchedulerConfig,
    /// g_t.
    pub diffusion: Diffusion,
    /// Number of uniform steps from 0 to 1 (≥ 1).
    pub steps: usize,
}

impl SdeConfig {
    /// Checks the options.
    ///
    /// # Errors
    /// [`ConfigError`] for a bad scheduler, diffusion or `steps = 0`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.scheduler.validate()?;
        self.diffusion.validate()?;
        check_steps(self.steps)
    }

    /// Samples from t = 0 to t = 1 starting at `x0` (source samples), drawing the noise from
    /// `rng` (same seed, same samples). With `record`, the trajectory holds the state at every
    /// grid time.
    ///
    /// # Shapes
    /// `x0: [batch, dim]` → `x: [batch, dim]`
    ///
    /// # Errors
    /// [`SolverError::Config`], [`SolverError::Dim`], [`SolverError::SingularScore`].
    ///
    /// ```
    /// use burn::tensor::Tensor;
    /// use ferroflow::{backend::Cpu64, model::GaussianToGaussian, path::SchedulerConfig, rng};
    /// use ferroflow::solver::{Diffusion, SdeConfig};
    /// let s = SchedulerConfig::CondOt { sigma_min: 0.0 };
    /// let g = GaussianToGaussian::new(s, vec![2.0], vec![0.5]);
    /// let sde = SdeConfig { scheduler: s, diffusion: Diffusion::Constant { g: 1.0 }, steps: 200 };
    /// let x0 = Tensor::<Cpu64, 2>::from_data(
    ///     burn::tensor::TensorData::new(rng::normal_vec(&mut rng::seeded(1), 4000), [4000, 1]),
    ///     &Default::default(),
    /// );
    /// let sol = sde.sample(&g, x0, None, &mut rng::seeded(2)).unwrap();
    /// let mean: f64 = sol.x.mean().into_scalar();
    /// // Data mean 2; Monte Carlo standard error 0.5/√4000 ≈ 0.008.
    /// assert!((mean - 2.0).abs() < 0.04);
    /// ```
    pub fn sample<B: Backend, F: VelocityField<B> + ?Sized>(
        &self,
        field: &F,
        x0: Tensor<B, 2>,
        cond: Option<&Condition<B>>,
        rng: &mut Rng,
    ) -> Result<Solution<B>, SolverError> {
        self.sample_recorded(field, x0, cond, rng, false)
    }

    /// As [`SdeConfig::sample`], optionally recording the state at every grid time.
    ///
    /// # Errors
    /// As [`SdeConfig::sample`].
    pub fn sample_recorded<B: Backend, F: VelocityField<B> + ?Sized>(
        &self,
        field: &F,
        x0: Tensor<B, 2>,
        cond: Option<&Condition<B>>,
        rng: &mut Rng,
        record: bool,
    ) -> Result<Solution<B>, SolverError> {
        self.validate()?;
        let grid = TimeGrid::uniform(0.0, 1.0, self.steps)?;
        euler_maruyama(field, x0, cond, &self.scheduler, &self.diffusion, &grid, rng, record)
    }
}

/// Euler–Maruyama for dX = [v + (g_t²/2)·score] dt + g_t dW on an increasing `grid`; see
/// [`SdeConfig`] for the formula, the marginal-preservation argument and the singularity.
///
/// # Shapes
/// `x0: [batch, dim]` → `x: [batch, dim]`
///
/// # Errors
/// [`SolverError::Config`] for a bad `diffusion` or a decreasing grid (the reverse-time SDE is
/// a different equation), [`SolverError::Dim`], [`SolverError::SingularScore`] where σ_t = 0
/// with g_t ≠ 0 at a step's start.
#[allow(clippy::too_many_arguments)]
pub fn euler_maruyama<B: Backend, F: VelocityField<B> + ?Sized>(
    field: &F,
    x0: Tensor<B, 2>,
    cond: Option<&Condition<B>>,
    scheduler: &dyn Scheduler,
    diffusion: &Diffusion,
    grid: &TimeGrid,
    rng: &mut Rng,
    record: bool,
) -> Result<Solution<B>, SolverError> {
    diffusion.validate()?;
    check_dim(field, &x0)?;
    if !grid.is_increasing() {
        return Err(ConfigError::Inconsistent(format!(
            "sde: the time grid must increase (0 → 1), got {:?}",
            grid.as_slice()
        ))
        .into());
    }
    let times = grid.as_slice();
    // Check every step's g_t and σ_t once, before any work.
    let mut gs = Vec::with_capacity(grid.steps());
    for &t in &times[..grid.steps()] {
        let g = diffusion.at(t, scheduler);
        if g != 0.0 && scheduler.at(t).sigma_t == 0.0 {
            return Err(SolverError::SingularScore { t, g });
        }
        gs.push(g);
    }

    let [n, d] = x0.dims();
    let device = x0.device();
    let mut trajectory = record.then(|| vec![Points::from_tensor(x0.clone())]);
    let mut x = x0;
    for (w, &g) in times.windows(2).zip(&gs) {
        let (t, h) = (w[0], w[1] - w[0]);
        let v = field.velocity_at(x.clone(), t, cond);
        x = if g == 0.0 {
            x + v.mul_scalar(h)
        } else {
            let c = PathCoefficients::<B>::new(scheduler, &vec![t; n], &device);
            let score = score_from_velocity(v.clone(), x.clone(), &c);
            let z = Tensor::<B, 2>::from_data(TensorData::new(normal_vec(rng, n * d), [n, d]), &device);
            x + (v + score.mul_scalar(g * g / 2.0)).mul_scalar(h) + z.mul_scalar(g * h.sqrt())
        };
        if let Some(tr) = trajectory.as_mut() {
            tr.push(Points::from_tensor(x.clone()));
        }
    }
    Ok(Solution {
        x,
        times: grid.times(),
        trajectory,
        nfe: grid.steps(),
        accepted_steps: grid.steps(),
        rejected_steps: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Cpu64;
    use crate::model::GaussianToGaussian;
    use crate::rng::seeded;
    use crate::solver::{OdeMethod, ode};

    const S: SchedulerConfig = SchedulerConfig::CondOt { sigma_min: 0.0 };

    fn field() -> GaussianToGaussian {
        GaussianToGaussian::new(S, vec![1.5, -2.0], vec![0.3, 1.7])
    }

    fn source(n: usize, seed: u64) -> Tensor<Cpu64, 2> {
        Tensor::from_data(TensorData::new(normal_vec(&mut seeded(seed), n * 2), [n, 2]), &Default::default())
    }

    #[test]
    fn zero_diffusion_is_the_euler_ode_bit_for_bit() {
        let g = field();
        for diffusion in [Diffusion::Constant { g: 0.0 }, Diffusion::SigmaScaled { scale: 0.0 }] {
            let sde = SdeConfig { scheduler: S, diffusion, steps: 25 };
            let a = sde.sample_recorded(&g, source(64, 3), None, &mut seeded(9), true).unwrap();
            let grid = TimeGrid::uniform(0.0, 1.0, 25).unwrap();
            let b = ode::integrate(&g, OdeMethod::Euler, source(64, 3), None, &grid, true).unwrap();
            assert_eq!(a.x.into_data(), b.x.into_data());
            assert_eq!(a.trajectory, b.trajectory);
            assert_eq!(a.nfe, b.nfe);
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_samples_and_another_seed_does_not() {
        let g = field();
        let sde = SdeConfig { scheduler: S, diffusion: Diffusion::Constant { g: 0.7 }, steps: 10 };
        let run = |seed| sde.sample(&g, source(32, 1), None, &mut seeded(seed)).unwrap().x.into_data();
        assert_eq!(run(5), run(5));
        assert_ne!(run(5), run(6));
    }

    #[test]
    fn noise_switched_off_after_t_max_leaves_the_last_steps_deterministic() {
        // With g = 0 on (t_max, 1], the final stretch is Euler from the state at t_max: replaying
        // Euler from the recorded state there must give the end point exactly.
        let g = field();
        let sde = SdeConfig { scheduler: S, diffusion: Diffusion::ConstantUntil { g: 1.0, t_max: 0.7 }, steps: 20 };
        let sol = sde.sample_recorded(&g, source(16, 2), None, &mut seeded(4), true).unwrap();
        let tr = sol.trajectory.unwrap();
        // Grid times are i/20; t = 0.75 is index 15, the first step start with t > 0.7.
        assert!(sol.times[14] <= 0.7 && sol.times[15] > 0.7);
        let from = tr[15].to_tensor::<Cpu64>(&Default::default());
        let grid = TimeGrid::from_times(sol.times[15..].to_vec()).unwrap();
        let end = ode::integrate(&g, OdeMethod::Euler, from, None, &grid, false).unwrap();
        let (a, b) = (Points::from_tensor(end.x), tr[20].clone());
        // tr[15] went through f32 on the host; the two runs differ only by that rounding.
        let err = a.data.iter().zip(&b.data).map(|(p, q)| (p - q).abs()).fold(0.0, f32::max);
        assert!(err < 1e-5, "{err}");
        // And before t_max the noise acts: the state at 0.7 differs from the Euler ODE's.
        let ode_sol =
            ode::integrate(&g, OdeMethod::Euler, source(16, 2), None, &TimeGrid::uniform(0.0, 1.0, 20).unwrap(), true)
                .unwrap();
        assert_ne!(ode_sol.trajectory.unwrap()[15], tr[15]);
    }

    #[test]
    fn a_singular_score_with_noise_is_refused() {
        // A grid whose step starts at t = 1 (σ = 0): only possible on an explicit grid past 1.
        let g = field();
        let grid = TimeGrid::from_times(vec![0.0, 0.5, 1.0, 1.1]).unwrap();
        let e =
            euler_maruyama(&g, source(4, 0), None, &S, &Diffusion::Constant { g: 1.0 }, &grid, &mut seeded(0), false)
                .unwrap_err();
        assert!(matches!(e, SolverError::SingularScore { t, .. } if t == 1.0), "{e}");
        // σ-scaled noise vanishes there, so the same grid is fine.
        assert!(
            euler_maruyama(
                &g,
                source(4, 0),
                None,
                &S,
                &Diffusion::SigmaScaled { scale: 1.0 },
                &grid,
                &mut seeded(0),
                false
            )
            .is_ok()
        );
    }

    #[test]
    fn bad_diffusions_are_rejected_with_their_values() {
        let e = Diffusion::Constant { g: -1.0 }.validate().unwrap_err();
        assert!(e.to_string().contains("-1"), "{e}");
        assert!(Diffusion::ConstantUntil { g: 1.0, t_max: 1.5 }.validate().is_err());
        assert!(Diffusion::SigmaScaled { scale: f64::INFINITY }.validate().is_err());
        let sde = SdeConfig { scheduler: S, diffusion: Diffusion::Constant { g: 1.0 }, steps: 0 };
        assert!(matches!(sde.validate(), Err(ConfigError::OutOfRange { name: "steps", .. })));
    }
}
