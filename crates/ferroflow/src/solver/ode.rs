//! Fixed-step explicit Runge–Kutta methods on a time grid.

use burn::tensor::{Tensor, backend::Backend};
use serde::{Deserialize, Serialize};

use super::{Solution, SolverError, check_dim};
use crate::data::Points;
use crate::error::ConfigError;
use crate::model::{Condition, VelocityField};

/// A fixed-step explicit Runge–Kutta method.
///
/// # Formula
/// One step of size h from (x, t), with kᵢ velocities (Hairer, Nørsett & Wanner, *Solving
/// Ordinary Differential Equations I*, §II.1):
/// - `Euler` (order 1): x + h·v(x, t)
/// - `Midpoint` (order 2): k₁ = v(x, t); x + h·v(x + (h/2)k₁, t + h/2)
/// - `Heun` (order 2, explicit trapezoid): k₁ = v(x, t), k₂ = v(x + h k₁, t + h); x + (h/2)(k₁ + k₂)
/// - `Rk4` (order 4, classical): k₁ = v(x, t), k₂ = v(x + (h/2)k₁, t + h/2),
///   k₃ = v(x + (h/2)k₂, t + h/2), k₄ = v(x + h k₃, t + h); x + (h/6)(k₁ + 2k₂ + 2k₃ + k₄)
///
/// h may be negative (integration from t = 1 back to t = 0).
///
/// ```
/// use ferroflow::solver::OdeMethod;
/// let m: OdeMethod = "rk4".parse().unwrap();
/// assert_eq!((m.order(), m.evals_per_step()), (4, 4));
/// assert_eq!(OdeMethod::Heun.name(), "heun");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OdeMethod {
    /// Forward Euler, order 1, 1 evaluation a step.
    Euler,
    /// Explicit midpoint, order 2, 2 evaluations a step.
    #[default]
    Midpoint,
    /// Heun's method (explicit trapezoid), order 2, 2 evaluations a step.
    Heun,
    /// Classical Runge–Kutta, order 4, 4 evaluations a step.
    Rk4,
}

impl OdeMethod {
    /// Every method, in a fixed order.
    pub const ALL: [OdeMethod; 4] = [OdeMethod::Euler, OdeMethod::Midpoint, OdeMethod::Heun, OdeMethod::Rk4];

    /// The name used in configs and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            OdeMethod::Euler => "euler",
            OdeMethod::Midpoint => "midpoint",
            OdeMethod::Heun => "heun",
            OdeMethod::Rk4 => "rk4",
        }
    }

    /// The order p: the global error is O(hᵖ).
    pub fn order(self) -> usize {
        match self {
            OdeMethod::Euler => 1,
            OdeMethod::Midpoint | OdeMethod::Heun => 2,
            OdeMethod::Rk4 => 4,
        }
    }

    /// Field evaluations per step.
    pub fn evals_per_step(self) -> usize {
        match self {
            OdeMethod::Euler => 1,
            OdeMethod::Midpoint | OdeMethod::Heun => 2,
            OdeMethod::Rk4 => 4,
        }
    }

    /// One step of size `h` (either sign) from `x` at time `t`.
    ///
    /// # Shapes
    /// `x: [batch, dim]` → `[batch, dim]`
    pub fn step<B: Backend, F: VelocityField<B> + ?Sized>(
        self,
        field: &F,
        x: Tensor<B, 2>,
        t: f64,
        h: f64,
        cond: Option<&Condition<B>>,
    ) -> Tensor<B, 2> {
        let v = |x: Tensor<B, 2>, t: f64| field.velocity_at(x, t, cond);
        match self {
            OdeMethod::Euler => {
                let k1 = v(x.clone(), t);
                x + k1.mul_scalar(h)
            }
            OdeMethod::Midpoint => {
                let k1 = v(x.clone(), t);
                let k2 = v(x.clone() + k1.mul_scalar(h / 2.0), t + h / 2.0);
                x + k2.mul_scalar(h)
            }
            OdeMethod::Heun => {
                let k1 = v(x.clone(), t);
                let k2 = v(x.clone() + k1.clone().mul_scalar(h), t + h);
                x + (k1 + k2).mul_scalar(h / 2.0)
            }
            OdeMethod::Rk4 => {
                let k1 = v(x.clone(), t);
                let k2 = v(x.clone() + k1.clone().mul_scalar(h / 2.0), t + h / 2.0);
                let k3 = v(x.clone() + k2.clone().mul_scalar(h / 2.0), t + h / 2.0);
                let k4 = v(x.clone() + k3.clone().mul_scalar(h), t + h);
                x + (k1 + (k2 + k3).mul_scalar(2.0) + k4).mul_scalar(h / 6.0)
            }
        }
    }
}

impl std::fmt::Display for OdeMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for OdeMethod {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OdeMethod::ALL.into_iter().find(|m| m.name() == s).ok_or_else(|| ConfigError::Unknown {
            kind: "ODE method",
            name: s.to_string(),
            valid: OdeMethod::ALL.map(|m| m.name()).join(", "),
        })
    }
}

/// The times a fixed-step solver visits: strictly increasing (0 → 1) or strictly decreasing
/// (1 → 0), at least two of them, all finite. Built only through its checked constructors.
///
/// ```
/// use ferroflow::solver::TimeGrid;
/// let g = TimeGrid::uniform(1.0, 0.0, 4).unwrap();
/// assert_eq!(g.times(), vec![1.0, 0.75, 0.5, 0.25, 0.0]);
/// assert!(TimeGrid::from_times(vec![0.0, 0.5, 0.4]).is_err());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct TimeGrid {
    times: Vec<f64>,
}

impl TimeGrid {
    /// `steps` equal steps from `t0` to `t1` (t₀ > t₁ integrates backwards).
    ///
    /// # Formula
    /// tᵢ = t₀ + (t₁ − t₀)·i/steps, i = 0..=steps (the last time is t₁ exactly).
    ///
    /// # Errors
    /// [`ConfigError::OutOfRange`] if `steps = 0`; [`ConfigError::Inconsistent`] unless `t0`
    /// and `t1` are finite and distinct.
    pub fn uniform(t0: f64, t1: f64, steps: usize) -> Result<Self, ConfigError> {
        check_steps(steps)?;
        super::check_span(t0, t1)?;
        let mut times: Vec<f64> = (0..steps).map(|i| t0 + (t1 - t0) * (i as f64 / steps as f64)).collect();
        times.push(t1);
        Ok(Self { times })
    }

    /// An explicit list of times.
    ///
    /// # Errors
    /// [`ConfigError::Inconsistent`] unless there are at least two finite times, strictly
    /// increasing or strictly decreasing.
    pub fn from_times(times: Vec<f64>) -> Result<Self, ConfigError> {
        let bad = |why: &str| ConfigError::Inconsistent(format!("time grid {times:?}: {why}"));
        if times.len() < 2 {
            return Err(bad("needs at least two times"));
        }
        if times.iter().any(|t| !t.is_finite()) {
            return Err(bad("every time must be finite"));
        }
        let up = times.windows(2).all(|w| w[1] > w[0]);
        let down = times.windows(2).all(|w| w[1] < w[0]);
        if !up && !down {
            return Err(bad("times must be strictly increasing or strictly decreasing"));
        }
        Ok(Self { times })
    }

    /// The times, first to last.
    pub fn times(&self) -> Vec<f64> {
        self.times.clone()
    }

    /// The times as a slice.
    pub fn as_slice(&self) -> &[f64] {
        &self.times
    }

    /// Number of steps (times − 1).
    pub fn steps(&self) -> usize {
        self.times.len() - 1
    }

    /// Whether the grid runs forwards in time (t₀ < t₁).
    pub fn is_increasing(&self) -> bool {
        self.times[1] > self.times[0]
    }
}

/// Checks `steps ≥ 1`.
pub(crate) fn check_steps(steps: usize) -> Result<(), ConfigError> {
    if steps == 0 {
        return Err(ConfigError::OutOfRange { name: "steps", value: steps.to_string(), expected: "at least 1" });
    }
    Ok(())
}

/// Integrates dx/dt = v(x, t | cond) over `grid` with a fixed-step `method`, starting at `x0`
/// at the grid's first time. With `record`, the trajectory holds the state at every grid time
/// (`grid.steps() + 1` point sets, the first being `x0`).
///
/// # Shapes
/// `x0: [batch, dim]` → `x: [batch, dim]`
///
/// # Errors
/// [`SolverError::Dim`] if `x0` does not have `field.dim()` columns.
///
/// ```
/// use burn::tensor::Tensor;
/// use ferroflow::backend::Cpu64;
/// use ferroflow::model::GaussianToGaussian;
/// use ferroflow::path::SchedulerConfig;
/// use ferroflow::solver::{ode, OdeMethod, TimeGrid};
/// // Data N(2, 0.5²): the flow map sends x₀ = 1 to 2 + 0.5·1 = 2.5 at t = 1.
/// let g = GaussianToGaussian::new(SchedulerConfig::CondOt { sigma_min: 0.0 }, vec![2.0], vec![0.5]);
/// let x0 = Tensor::<Cpu64, 2>::from_floats([[1.0]], &Default::default());
/// let grid = TimeGrid::uniform(0.0, 1.0, 50).unwrap();
/// let sol = ode::integrate(&g, OdeMethod::Rk4, x0, None, &grid, false).unwrap();
/// let x: f64 = sol.x.into_scalar();
/// assert!((x - 2.5).abs() < 1e-8);
/// assert_eq!(sol.nfe, 200);
/// ```
pub fn integrate<B: Backend, F: VelocityField<B> + ?Sized>(
    field: &F,
    method: OdeMethod,
    x0: Tensor<B, 2>,
    cond: Option<&Condition<B>>,
    grid: &TimeGrid,
    record: bool,
) -> Result<Solution<B>, SolverError> {
    check_dim(field, &x0)?;
    let mut trajectory = record.then(|| vec![Points::from_tensor(x0.clone())]);
    let mut x = x0;
    for w in grid.times.windows(2) {
        x = method.step(field, x, w[0], w[1] - w[0], cond);
        if let Some(tr) = trajectory.as_mut() {
            tr.push(Points::from_tensor(x.clone()));
        }
    }
    Ok(Solution {
        x,
        times: grid.times(),
        trajectory,
        nfe: grid.steps() * method.evals_per_step(),
        accepted_steps: grid.steps(),
        rejected_steps: 0,
    })
}

#[cfg(test)]
mod tests {
    use crate::test_util::{gaussian_field as field, starts};
    use burn::tensor::TensorData;

    use super::*;
    use crate::backend::Cpu64;

    /// A nonlinear closed-form field: the logistic equation with a time-varying rate,
    /// v = (1 + 2t)·x(1 − x), whose flow is x(t) = x₀e^{C}/(1 − x₀ + x₀e^{C}), C = t + t².
    struct Logistic;

    impl VelocityField<Cpu64> for Logistic {
        fn dim(&self) -> usize {
            2
        }
        fn velocity(
            &self,
            x: Tensor<Cpu64, 2>,
            t: Tensor<Cpu64, 1>,
            _c: Option<&Condition<Cpu64>>,
        ) -> Tensor<Cpu64, 2> {
            let rate = t.mul_scalar(2.0).add_scalar(1.0).unsqueeze_dim::<2>(1);
            x.clone() * (x.neg().add_scalar(1.0)) * rate
        }
    }

    /// max |x(1) − x_exact(1)| after `steps` steps of `method`, on G→G or on [`Logistic`].
    fn error(method: OdeMethod, steps: usize, gaussian: bool) -> f64 {
        let grid = TimeGrid::uniform(0.0, 1.0, steps).unwrap();
        let dev = Default::default();
        let (got, want) = if gaussian {
            let (g, x0) = (field(), starts());
            let x = Tensor::<Cpu64, 2>::from_data(TensorData::new(x0.clone(), [4, 2]), &dev);
            (integrate(&g, method, x, None, &grid, false).unwrap().x, g.flow(&x0, 0.0, 1.0))
        } else {
            let x0 = vec![0.1, 0.3, 0.5, 0.9, -0.05, 1.2];
            let x = Tensor::<Cpu64, 2>::from_data(TensorData::new(x0.clone(), [3, 2]), &dev);
            let e = 2.0_f64.exp();
            let want = x0.iter().map(|v| v * e / (1.0 - v + v * e)).collect();
            (integrate(&Logistic, method, x, None, &grid, false).unwrap().x, want)
        };
        let got: Vec<f64> = got.into_data().into_vec().unwrap();
        got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max)
    }

    /// The least-squares slope of log(error) against log(h) over the given step counts.
    fn observed_order(method: OdeMethod, steps: &[usize], gaussian: bool) -> f64 {
        let pts: Vec<(f64, f64)> =
            steps.iter().map(|&s| ((1.0 / s as f64).ln(), error(method, s, gaussian).ln())).collect();
        let n = pts.len() as f64;
        let (mx, my) = (pts.iter().map(|p| p.0).sum::<f64>() / n, pts.iter().map(|p| p.1).sum::<f64>() / n);
        let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
        let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
        sxy / sxx
    }

    // Slopes of log error vs log h over h = 1/32 … 1/256, in f64: the smallest error (RK4,
    // ≈ 3e-10 on the logistic field, 2e-11 on G→G) stays far above rounding (≈ 1e-13), and the
    // logistic field's Euler error is asymptotic only from h ≈ 1/32 on (measured local slopes
    // 0.86, 0.92, 0.96). ±0.2 allows for the remaining curvature while separating orders 1–4.
    const H: [usize; 4] = [32, 64, 128, 256];

    #[test]
    fn euler_is_first_order() {
        for gaussian in [true, false] {
            let p = observed_order(OdeMethod::Euler, &H, gaussian);
            assert!((p - 1.0).abs() < 0.2, "gaussian {gaussian}: slope {p}");
        }
    }

    #[test]
    fn midpoint_is_second_order() {
        let p = observed_order(OdeMethod::Midpoint, &H, false);
        assert!((p - 2.0).abs() < 0.2, "slope {p}");
        // On the Gaussian field the midpoint rule superconverges: its leading O(h²) error term
        // cancels for this family (measured slope 3.00 at t = 0.5 and t = 1, for σ_min = 0 and
        // 0.1), so it must come out at 3 there, not merely ≥ 2.
        let p = observed_order(OdeMethod::Midpoint, &H, true);
        assert!((p - 3.0).abs() < 0.2, "gaussian: slope {p}");
    }

    #[test]
    fn heun_is_second_order() {
        for gaussian in [true, false] {
            let p = observed_order(OdeMethod::Heun, &H, gaussian);
            assert!((p - 2.0).abs() < 0.2, "gaussian {gaussian}: slope {p}");
        }
    }

    #[test]
    fn rk4_is_fourth_order() {
        for gaussian in [true, false] {
            let p = observed_order(OdeMethod::Rk4, &H, gaussian);
            assert!((p - 4.0).abs() < 0.2, "gaussian {gaussian}: slope {p}");
        }
    }

    #[test]
    fn an_explicit_grid_equals_the_uniform_one_bit_for_bit() {
        let g = field();
        let x0 = starts();
        let dev = Default::default();
        let x = || Tensor::<Cpu64, 2>::from_data(TensorData::new(x0.clone(), [4, 2]), &dev);
        let uni = TimeGrid::uniform(0.0, 1.0, 8).unwrap();
        let expl = TimeGrid::from_times(uni.times()).unwrap();
        let a = integrate(&g, OdeMethod::Heun, x(), None, &uni, true).unwrap();
        let b = integrate(&g, OdeMethod::Heun, x(), None, &expl, true).unwrap();
        assert_eq!(a.x.into_data(), b.x.into_data());
        assert_eq!(a.trajectory.as_ref().map(Vec::len), Some(9));
        assert_eq!(a.trajectory, b.trajectory);
    }

    #[test]
    fn a_nonuniform_grid_lands_on_the_exact_flow_at_every_grid_time() {
        // t_i = 1 − (1 − i/N)²: steps shrink towards t = 1, the largest is ≈ 2/N = 1/16, where
        // uniform RK4 errs by ≈ 2e-6. Each recorded state (f32 on the host, rounding ≈ 5e-7 for
        // |x| ≤ 4) must match the exact flow at its own grid time to 1e-5; a solver stepping on
        // the wrong times would be off by ≳ 1e-2.
        let g = field();
        let x0 = starts();
        let n = 32;
        let times: Vec<f64> = (0..=n).map(|i| 1.0 - (1.0 - i as f64 / n as f64).powi(2)).collect();
        let grid = TimeGrid::from_times(times.clone()).unwrap();
        let x = Tensor::<Cpu64, 2>::from_data(TensorData::new(x0.clone(), [4, 2]), &Default::default());
        let sol = integrate(&g, OdeMethod::Rk4, x, None, &grid, true).unwrap();
        assert_eq!(sol.times, times);
        for (p, &t) in sol.trajectory.unwrap().iter().zip(&times) {
            let want = g.flow(&x0, 0.0, t);
            for (a, b) in p.data.iter().zip(&want) {
                assert!((*a as f64 - b).abs() < 1e-5, "t = {t}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn bad_grids_and_step_counts_are_rejected_with_their_values() {
        let e = TimeGrid::uniform(0.0, 1.0, 0).unwrap_err();
        assert!(matches!(e, ConfigError::OutOfRange { name: "steps", ref value, .. } if value == "0"), "{e}");
        assert!(TimeGrid::uniform(0.5, 0.5, 10).is_err());
        assert!(TimeGrid::uniform(0.0, f64::NAN, 10).is_err());
        assert!(TimeGrid::from_times(vec![0.0]).is_err());
        assert!(TimeGrid::from_times(vec![0.0, 0.0, 1.0]).is_err());
        let e = TimeGrid::from_times(vec![0.0, 0.7, 0.6]).unwrap_err();
        assert!(e.to_string().contains("0.7"), "{e}");
        assert!(TimeGrid::from_times(vec![1.0, 0.6, 0.0]).is_ok());
    }

    #[test]
    fn method_names_round_trip_and_unknown_names_list_the_valid_ones() {
        for m in OdeMethod::ALL {
            assert_eq!(m.name().parse::<OdeMethod>().unwrap(), m);
            let json = serde_json::to_string(&m).unwrap();
            assert_eq!(json, format!("\"{}\"", m.name()));
        }
        let e = "rk45".parse::<OdeMethod>().unwrap_err().to_string();
        assert!(e.contains("rk45") && e.contains("euler, midpoint, heun, rk4"), "{e}");
    }
}
