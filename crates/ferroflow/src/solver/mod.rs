//! ODE and SDE solvers: they carry points along dx/dt = v(x, t | c) for any
//! [`VelocityField`].
//!
//! - [`ode`]: fixed-step Runge–Kutta methods ([`OdeMethod`]) on a [`TimeGrid`];
//! - [`dopri5`]: the adaptive Dormand–Prince 5(4) method ([`Dopri5`]);
//! - [`sde`]: the Euler–Maruyama sampler of the marginal-preserving SDE ([`SdeConfig`]).
//!
//! [`SolverConfig`] is the one serialisable entry point for the ODE solvers.
//!
//! # Conventions
//! t = 0 is the source (noise), t = 1 the data. The ODE solvers integrate in either direction:
//! t₀ < t₁ samples (0 → 1), t₀ > t₁ runs the flow backwards (1 → 0, for likelihoods). Solvers
//! are generic over `B: Backend` and never track gradients themselves: pass an inner-backend
//! model.
//!
//! # Shapes
//! `x0: [batch, dim]` → [`Solution::x`]: `[batch, dim]`. Adaptive step sizes are shared by the
//! whole batch (the error is measured with an RMS norm over every entry, as torchdiffeq does).

use burn::tensor::{Tensor, backend::Backend};
use serde::{Deserialize, Serialize};

use crate::data::Points;
use crate::error::ConfigError;
use crate::model::{Condition, VelocityField};

pub mod dopri5;
pub mod ode;
pub mod sde;

pub use dopri5::Dopri5;
pub use ode::{OdeMethod, TimeGrid};
pub use sde::{Diffusion, SdeConfig};

/// Why a solver failed.
#[derive(Debug, thiserror::Error)]
pub enum SolverError {
    /// The options are invalid; nothing was run.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The points do not have the field's dimension.
    #[error("solver: x0 has {got} columns but the field has dimension {expected}")]
    Dim {
        /// The field's dimension.
        expected: usize,
        /// The number of columns of `x0`.
        got: usize,
    },
    /// The adaptive solver used up its step budget (accepted plus rejected steps).
    #[error("dopri5: {max_steps} steps used at t = {t} before reaching t1 = {t1}; raise max_steps or loosen atol/rtol")]
    MaxSteps {
        /// The budget.
        max_steps: usize,
        /// How far it got.
        t: f64,
        /// Where it had to go.
        t1: f64,
    },
    /// The adaptive step size became negligible against t (the field is stiff, singular or
    /// returned NaN/∞).
    #[error("dopri5: step size {h:e} underflowed at t = {t} (is the velocity finite here?)")]
    StepSizeUnderflow {
        /// Where it stopped.
        t: f64,
        /// The last step size tried.
        h: f64,
    },
    /// The SDE needs the score at a time where it does not exist (σ_t = 0) with g_t ≠ 0.
    #[error(
        "sde: the score is singular at t = {t} (sigma_t = 0) but g_t = {g}; use a diffusion that vanishes there (sigma_scaled, or constant_until with t_max < {t})"
    )]
    SingularScore {
        /// The time.
        t: f64,
        /// The diffusion coefficient there.
        g: f64,
    },
}

/// What a solver returns: the end points, and optionally the states along the way.
#[derive(Debug, Clone)]
pub struct Solution<B: Backend> {
    /// The points at the final time, `[batch, dim]`.
    pub x: Tensor<B, 2>,
    /// The times of the steps, from t₀ to t₁ inclusive: the grid for fixed-step solvers and
    /// the SDE, t₀ then the end of every accepted step for Dopri5 (whether or not it records),
    /// the requested times for Dopri5's dense output.
    pub times: Vec<f64>,
    /// The states at each of [`Solution::times`] (when recording was asked for), on the host.
    pub trajectory: Option<Vec<Points>>,
    /// Number of evaluations of the velocity field.
    pub nfe: usize,
    /// Accepted steps (every step for fixed-step solvers).
    pub accepted_steps: usize,
    /// Rejected steps (adaptive solvers only; 0 otherwise).
    pub rejected_steps: usize,
}

/// The ODE solver to use, as a serialisable choice.
///
/// ```
/// use ferroflow::solver::{OdeMethod, SolverConfig};
/// let c: SolverConfig = toml::from_str("kind = 'fixed'\nmethod = 'rk4'\nsteps = 20").unwrap();
/// assert_eq!(c, SolverConfig::Fixed { method: OdeMethod::Rk4, steps: 20 });
/// // RK4 costs 4 evaluations a step.
/// assert_eq!(c.nominal_nfe(), Some(80));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SolverConfig {
    /// A fixed-step method on `steps` uniform steps from t₀ to t₁.
    Fixed {
        /// The Runge–Kutta method.
        method: OdeMethod,
        /// Number of steps (≥ 1).
        steps: usize,
    },
    /// Adaptive Dormand–Prince 5(4); see [`Dopri5`].
    Dopri5 {
        /// Absolute tolerance (> 0).
        atol: f64,
        /// Relative tolerance (> 0).
        rtol: f64,
        /// Budget of steps, accepted plus rejected (≥ 1).
        max_steps: usize,
    },
}

impl Default for SolverConfig {
    /// Dopri5 with atol = rtol = 1e-5 (the flow_matching examples' setting), 10 000 steps.
    fn default() -> Self {
        SolverConfig::Dopri5 { atol: 1e-5, rtol: 1e-5, max_steps: 10_000 }
    }
}

impl SolverConfig {
    /// Checks the options.
    ///
    /// # Errors
    /// [`ConfigError::OutOfRange`] for `steps = 0`, a tolerance that is not a finite
    /// positive number, or `max_steps = 0`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match *self {
            SolverConfig::Fixed { steps, .. } => ode::check_steps(steps),
            SolverConfig::Dopri5 { atol, rtol, max_steps } => Dopri5::new(atol, rtol, max_steps).map(|_| ()),
        }
    }

    /// The number of field evaluations a fixed-step solve costs (`None` for adaptive solvers).
    pub fn nominal_nfe(&self) -> Option<usize> {
        match *self {
            SolverConfig::Fixed { method, steps } => Some(method.evals_per_step() * steps),
            SolverConfig::Dopri5 { .. } => None,
        }
    }

    /// Integrates dx/dt = v(x, t | cond) from `t0` to `t1` (either direction), starting at
    /// `x0`. With `record`, [`Solution::trajectory`] holds the state at every step.
    ///
    /// # Shapes
    /// `x0: [batch, dim]` → `x: [batch, dim]`
    ///
    /// # Errors
    /// [`SolverError::Config`] for invalid options or `t0 = t1`, [`SolverError::Dim`] if `x0`
    /// does not have `field.dim()` columns, [`SolverError::MaxSteps`] and
    /// [`SolverError::StepSizeUnderflow`] from Dopri5.
    pub fn solve<B: Backend, F: VelocityField<B> + ?Sized>(
        &self,
        field: &F,
        x0: Tensor<B, 2>,
        cond: Option<&Condition<B>>,
        t0: f64,
        t1: f64,
        record: bool,
    ) -> Result<Solution<B>, SolverError> {
        match *self {
            SolverConfig::Fixed { method, steps } => {
                let grid = TimeGrid::uniform(t0, t1, steps)?;
                ode::integrate(field, method, x0, cond, &grid, record)
            }
            SolverConfig::Dopri5 { atol, rtol, max_steps } => {
                Dopri5::new(atol, rtol, max_steps)?.integrate(field, x0, cond, t0, t1, record)
            }
        }
    }
}

/// Fails with [`SolverError::Dim`] unless `x` has `field.dim()` columns.
pub(crate) fn check_dim<B: Backend, F: VelocityField<B> + ?Sized>(
    field: &F,
    x: &Tensor<B, 2>,
) -> Result<(), SolverError> {
    let [_, got] = x.dims();
    let expected = field.dim();
    if got == expected { Ok(()) } else { Err(SolverError::Dim { expected, got }) }
}

/// Checks that `t0`, `t1` are finite and distinct.
pub(crate) fn check_span(t0: f64, t1: f64) -> Result<(), ConfigError> {
    if !t0.is_finite() || !t1.is_finite() || t0 == t1 {
        return Err(ConfigError::Inconsistent(format!(
            "solver: the time span must be two distinct finite times, got t0 = {t0}, t1 = {t1}"
        )));
    }
    Ok(())
}
