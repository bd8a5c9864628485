//! The adaptive Dormand–Prince 5(4) method with error control and dense output.

use burn::tensor::{ElementConversion, Tensor, backend::Backend};

use super::{Solution, SolverError, check_dim, check_span};
use crate::data::Points;
use crate::error::ConfigError;
use crate::model::{Condition, VelocityField};

/// Dormand–Prince 5(4) nodes cᵢ (Dormand & Prince 1980; Hairer, Nørsett & Wanner, *Solving
/// ODEs I*, Table II.5.2).
const C: [f64; 7] = [0.0, 1.0 / 5.0, 3.0 / 10.0, 4.0 / 5.0, 8.0 / 9.0, 1.0, 1.0];
/// The Runge–Kutta matrix, row i giving a_{i,1..i-1}; row 7 equals the 5th-order weights (FSAL).
const A: [&[f64]; 7] = [
    &[],
    &[1.0 / 5.0],
    &[3.0 / 40.0, 9.0 / 40.0],
    &[44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0],
    &[19372.0 / 6561.0, -25360.0 / 2187.0, 64448.0 / 6561.0, -212.0 / 729.0],
    &[9017.0 / 3168.0, -355.0 / 33.0, 46732.0 / 5247.0, 49.0 / 176.0, -5103.0 / 18656.0],
    &[35.0 / 384.0, 0.0, 500.0 / 1113.0, 125.0 / 192.0, -2187.0 / 6784.0, 11.0 / 84.0],
];
/// e = b − b̂: the 5th-order weights minus the embedded 4th-order ones
/// (b̂ = 5179/57600, 0, 7571/16695, 393/640, −92097/339200, 187/2100, 1/40).
const E: [f64; 7] =
    [71.0 / 57600.0, 0.0, -71.0 / 16695.0, 71.0 / 1920.0, -17253.0 / 339200.0, 22.0 / 525.0, -1.0 / 40.0];
/// Dense-output weights d₁, d₃…d₇ of the 4th-order continuous extension (Hairer's `dopri5.f`,
/// Shampine 1986); d₂ = 0.
const D: [f64; 7] = [
    -12715105075.0 / 11282082432.0,
    0.0,
    87487479700.0 / 32700410799.0,
    -10690763975.0 / 1880347072.0,
    701980252875.0 / 199316789632.0,
    -1453857185.0 / 822651844.0,
    69997945.0 / 29380423.0,
];

/// Adaptive Dormand–Prince 5(4) with PI step-size control and dense output.
///
/// # Formula
/// Each step evaluates k₁…k₇ (k₇ at the new point is the next step's k₁: "first same as last",
/// 6 evaluations a step) and advances with the 5th-order weights. The embedded 4th-order
/// solution gives the error estimate err = h·Σ eᵢkᵢ, measured with one RMS norm over the
/// whole batch (torchdiffeq's convention; Hairer II.4 eq. 4.11):
///
/// ‖err‖ = √( mean over all entries of (errⱼ / (atol + rtol·max(|xⱼ|, |x̂ⱼ|)))² ).
///
/// The step is accepted when ‖err‖ ≤ 1. The next step is h·fac with the PI controller of
/// Hairer & Wanner (*Solving ODEs II*, IV.2 eq. 2.43c; Gustafsson 1991), as in `dopri5.f`:
///
/// fac = clamp(safety · ‖err‖^{−(1/5 − 0.75β)} · ‖err_prev‖^{β}, fac_min, fac_max),
///
/// β = 0.04 (β = 0 is the standard controller ‖err‖^{−1/5}), safety 0.9, fac ∈ [0.2, 10], and
/// no growth right after a rejection. The first step is chosen by Hairer's algorithm
/// (*Solving ODEs I*, II.4, "starting step size"; 1 extra evaluation).
///
/// # Shapes
/// `x0: [batch, dim]` → `x: [batch, dim]`; one step size for the whole batch.
///
/// ```
/// use burn::tensor::Tensor;
/// use ferroflow::backend::Cpu64;
/// use ferroflow::model::GaussianToGaussian;
/// use ferroflow::path::SchedulerConfig;
/// use ferroflow::solver::Dopri5;
/// // Data N(2, 0.5²): x₀ = 1 flows to 2.5 at t = 1, and back.
/// let g = GaussianToGaussian::new(SchedulerConfig::CondOt { sigma_min: 0.0 }, vec![2.0], vec![0.5]);
/// let x0 = Tensor::<Cpu64, 2>::from_floats([[1.0]], &Default::default());
/// let solver = Dopri5::new(1e-8, 1e-8, 1000).unwrap();
/// let sol = solver.integrate(&g, x0, None, 0.0, 1.0, false).unwrap();
/// let x1: f64 = sol.x.clone().into_scalar();
/// assert!((x1 - 2.5).abs() < 1e-7);
/// let back: f64 = solver.integrate(&g, sol.x, None, 1.0, 0.0, false).unwrap().x.into_scalar();
/// assert!((back - 1.0).abs() < 1e-7);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dopri5 {
    /// Absolute tolerance (> 0).
    pub atol: f64,
    /// Relative tolerance (> 0).
    pub rtol: f64,
    /// Budget of steps, accepted plus rejected (≥ 1).
    pub max_steps: usize,
    /// The PI controller's β (0 = standard controller; 0.04 by default, Hairer's choice).
    pub beta: f64,
    /// The safety factor (0.9).
    pub safety: f64,
    /// The smallest step-size ratio (0.2).
    pub fac_min: f64,
    /// The largest step-size ratio (10).
    pub fac_max: f64,
    /// The first step size; `None` selects it automatically.
    pub h0: Option<f64>,
}

/// What to keep along the way.
enum Output<'a> {
    Final,
    Steps,
    At(&'a [f64]),
}

impl Dopri5 {
    /// A solver with these tolerances and the default controller.
    ///
    /// # Errors
    /// [`ConfigError::OutOfRange`] unless `atol` and `rtol` are finite and positive and
    /// `max_steps ≥ 1`.
    pub fn new(atol: f64, rtol: f64, max_steps: usize) -> Result<Self, ConfigError> {
        let s = Self { atol, rtol, max_steps, beta: 0.04, safety: 0.9, fac_min: 0.2, fac_max: 10.0, h0: None };
        s.validate()?;
        Ok(s)
    }

    /// Checks every option.
    ///
    /// # Errors
    /// [`ConfigError::OutOfRange`] naming the first bad option and its value.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |name: &'static str, value: f64, expected: &'static str| {
            Err(ConfigError::OutOfRange { name, value: value.to_string(), expected })
        };
        let positive = |v: f64| v.is_finite() && v > 0.0;
        if !positive(self.atol) {
            return bad("atol", self.atol, "a finite number > 0");
        }
        if !positive(self.rtol) {
            return bad("rtol", self.rtol, "a finite number > 0");
        }
        if self.max_steps == 0 {
            return bad("max_steps", 0.0, "at least 1");
        }
        if !(self.beta.is_finite() && (0.0..0.2).contains(&self.beta)) {
            return bad("beta", self.beta, "in [0, 0.2)");
        }
        if !(self.safety.is_finite() && self.safety > 0.0 && self.safety <= 1.0) {
            return bad("safety", self.safety, "in (0, 1]");
        }
        if !(positive(self.fac_min) && self.fac_min < 1.0) {
            return bad("fac_min", self.fac_min, "in (0, 1)");
        }
        if !(self.fac_max.is_finite() && self.fac_max > 1.0) {
            return bad("fac_max", self.fac_max, "a finite number > 1");
        }
        if let Some(h0) = self.h0
            && !positive(h0)
        {
            return bad("h0", h0, "a finite number > 0 (its sign follows t1 − t0)");
        }
        Ok(())
    }

    /// Integrates dx/dt = v(x, t | cond) from `t0` to `t1` (either direction). With `record`,
    /// the trajectory holds x at t₀ and after every accepted step ([`Solution::times`]).
    ///
    /// # Shapes
    /// `x0: [batch, dim]` → `x: [batch, dim]`
    ///
    /// # Errors
    /// [`SolverError::Config`] for bad options or `t0 = t1`; [`SolverError::Dim`];
    /// [`SolverError::MaxSteps`] when the budget runs out; [`SolverError::StepSizeUnderflow`]
    /// when the step becomes negligible (e.g. the field returns NaN).
    pub fn integrate<B: Backend, F: VelocityField<B> + ?Sized>(
        &self,
        field: &F,
        x0: Tensor<B, 2>,
        cond: Option<&Condition<B>>,
        t0: f64,
        t1: f64,
        record: bool,
    ) -> Result<Solution<B>, SolverError> {
        let out = if record { Output::Steps } else { Output::Final };
        self.run(field, x0, cond, t0, t1, out)
    }

    /// Integrates from `t0` to `t1` and returns the states at `times` (which must lie in the
    /// span, ordered in the direction of integration), interpolated with the 4th-order dense
    /// output; the steps themselves are chosen by the error control alone, so asking for more
    /// times costs no extra evaluations. [`Solution::times`] is `times`.
    ///
    /// # Errors
    /// As [`Dopri5::integrate`], and [`ConfigError::Inconsistent`] for times outside the span
    /// or out of order.
    pub fn integrate_at<B: Backend, F: VelocityField<B> + ?Sized>(
        &self,
        field: &F,
        x0: Tensor<B, 2>,
        cond: Option<&Condition<B>>,
        t0: f64,
        t1: f64,
        times: &[f64],
    ) -> Result<Solution<B>, SolverError> {
        check_span(t0, t1)?;
        let dir = (t1 - t0).signum();
        let inside = times.iter().all(|&t| t.is_finite() && (t - t0) * dir >= 0.0 && (t1 - t) * dir >= 0.0);
        let ordered = times.windows(2).all(|w| (w[1] - w[0]) * dir >= 0.0);
        if !inside || !ordered {
            return Err(ConfigError::Inconsistent(format!(
                "dopri5: output times {times:?} must lie in [{t0}, {t1}] and be ordered from t0 to t1"
            ))
            .into());
        }
        self.run(field, x0, cond, t0, t1, Output::At(times))
    }

    fn run<B: Backend, F: VelocityField<B> + ?Sized>(
        &self,
        field: &F,
        x0: Tensor<B, 2>,
        cond: Option<&Condition<B>>,
        t0: f64,
        t1: f64,
        out: Output<'_>,
    ) -> Result<Solution<B>, SolverError> {
        self.validate()?;
        check_span(t0, t1)?;
        check_dim(field, &x0)?;
        let f = |x: Tensor<B, 2>, t: f64| field.velocity_at(x, t, cond);
        let dir = (t1 - t0).signum();
        let span = (t1 - t0).abs();

        let mut times = vec![];
        let mut traj = vec![];
        let mut next_out = 0;
        match out {
            Output::Final => times.push(t0),
            Output::Steps => {
                times.push(t0);
                traj.push(Points::from_tensor(x0.clone()));
            }
            Output::At(ts) => times = ts.to_vec(),
        }

        let mut x = x0;
        let mut t = t0;
        let mut k1 = f(x.clone(), t);
        let mut nfe = 1;
        let mut h = match self.h0 {
            Some(h0) => h0.min(span),
            None => {
                nfe += 1;
                self.initial_step(&f, &x, &k1, t, span, dir)
            }
        } * dir;
        let (mut accepted, mut rejected) = (0usize, 0usize);
        let mut err_prev = 1e-4_f64;
        let mut just_rejected = false;
        let expo = 0.2 - 0.75 * self.beta;

        loop {
            if accepted + rejected >= self.max_steps {
                return Err(SolverError::MaxSteps { max_steps: self.max_steps, t, t1 });
            }
            if 0.1 * h.abs() <= f64::EPSILON * t.abs().max(span) {
                return Err(SolverError::StepSizeUnderflow { t, h });
            }
            // Land on t1 exactly, and avoid a sliver of a last step (Hairer's 1.01 rule).
            let last = (t + 1.01 * h - t1) * dir >= 0.0;
            if last {
                h = t1 - t;
            }

            let mut k = vec![k1.clone()];
            for i in 1..7 {
                let mut xi = x.clone();
                for (j, &a) in A[i].iter().enumerate() {
                    if a != 0.0 {
                        xi = xi + k[j].clone().mul_scalar(h * a);
                    }
                }
                let t_i = if i == 6 { t + h } else { t + C[i] * h };
                if i == 6 {
                    // Row 7 of A is the 5th-order solution; keep it as the candidate.
                    k.push(f(xi.clone(), t_i));
                    k.push(xi);
                } else {
                    k.push(f(xi, t_i));
                }
            }
            nfe += 6;
            let x_new = k.pop().expect("the candidate was pushed last");

            let mut err = k[0].clone().mul_scalar(h * E[0]);
            for (i, &e) in E.iter().enumerate().skip(2) {
                err = err + k[i].clone().mul_scalar(h * e);
            }
            let scale = x.clone().abs().max_pair(x_new.clone().abs()).mul_scalar(self.rtol).add_scalar(self.atol);
            let ratio: f64 = (err / scale).square().mean().sqrt().into_scalar().elem::<f64>();

            if ratio.is_finite() && ratio <= 1.0 {
                if let Output::At(ts) = out {
                    let t_end = if last { t1 } else { t + h };
                    let mut coeffs = None;
                    while next_out < ts.len() && (ts[next_out] - t_end) * dir <= 0.0 {
                        let c = coeffs.get_or_insert_with(|| dense_coefficients(&x, &x_new, &k, h));
                        let theta = (ts[next_out] - t) / h;
                        traj.push(Points::from_tensor(dense_eval(c, theta)));
                        next_out += 1;
                    }
                }
                t = if last { t1 } else { t + h };
                x = x_new;
                k1 = k.swap_remove(6);
                accepted += 1;
                match out {
                    Output::Final => times.push(t),
                    Output::Steps => {
                        times.push(t);
                        traj.push(Points::from_tensor(x.clone()));
                    }
                    Output::At(_) => {}
                }
                if last {
                    break;
                }
                let fac = (self.safety * ratio.max(1e-10).powf(-expo) * err_prev.powf(self.beta))
                    .clamp(self.fac_min, self.fac_max);
                let fac = if just_rejected { fac.min(1.0) } else { fac };
                err_prev = ratio.max(1e-4);
                h *= fac;
                just_rejected = false;
            } else {
                rejected += 1;
                let fac = if ratio.is_finite() {
                    (self.safety * ratio.powf(-0.2)).clamp(self.fac_min, 1.0)
                } else {
                    self.fac_min
                };
                h *= fac;
                just_rejected = true;
            }
        }

        let trajectory = match out {
            Output::Final => None,
            _ => Some(traj),
        };
        Ok(Solution { x, times, trajectory, nfe, accepted_steps: accepted, rejected_steps: rejected })
    }

    /// Hairer's starting step size (*Solving ODEs I*, II.4; `hinit` in `dopri5.f`), with the
    /// same RMS norm as the error control. Costs one field evaluation.
    ///
    /// # Formula
    /// d₀ = ‖x₀‖, d₁ = ‖f₀‖; h₀ = 0.01·d₀/d₁ (1e-6 if either is < 1e-5);
    /// d₂ = ‖f(x₀ + h₀f₀, t₀ + h₀) − f₀‖/h₀; h₁ = (0.01/max(d₁, d₂))^{1/5};
    /// h = min(100 h₀, h₁, |t₁ − t₀|).
    fn initial_step<B: Backend>(
        &self,
        f: &impl Fn(Tensor<B, 2>, f64) -> Tensor<B, 2>,
        x: &Tensor<B, 2>,
        k1: &Tensor<B, 2>,
        t: f64,
        span: f64,
        dir: f64,
    ) -> f64 {
        let scale = x.clone().abs().mul_scalar(self.rtol).add_scalar(self.atol);
        let norm = |y: Tensor<B, 2>| -> f64 { (y / scale.clone()).square().mean().sqrt().into_scalar().elem::<f64>() };
        let d0 = norm(x.clone());
        let d1 = norm(k1.clone());
        let h0 = if d0 < 1e-5 || d1 < 1e-5 { 1e-6 } else { 0.01 * d0 / d1 }.min(span);
        let x1 = x.clone() + k1.clone().mul_scalar(h0 * dir);
        let k2 = f(x1, t + h0 * dir);
        let d2 = norm(k2 - k1.clone()) / h0;
        let dmax = d1.max(d2);
        let h1 = if dmax <= 1e-15 { (h0 * 1e-3).max(1e-6) } else { (0.01 / dmax).powf(0.2) };
        let h = (100.0 * h0).min(h1).min(span);
        if h.is_finite() && h > 0.0 { h } else { span.min(1e-6) }
    }
}

/// The five coefficient arrays r₁…r₅ of the continuous extension on one accepted step.
///
/// # Formula
/// r₁ = x, r₂ = x̂ − x, r₃ = h k₁ − r₂, r₄ = r₂ − h k₇ − r₃, r₅ = h Σ dᵢkᵢ (Hairer's `dopri5.f`);
/// x(t + θh) ≈ r₁ + θ(r₂ + (1−θ)(r₃ + θ(r₄ + (1−θ) r₅))), θ ∈ [0, 1].
fn dense_coefficients<B: Backend>(
    x: &Tensor<B, 2>,
    x_new: &Tensor<B, 2>,
    k: &[Tensor<B, 2>],
    h: f64,
) -> [Tensor<B, 2>; 5] {
    let r2 = x_new.clone() - x.clone();
    let r3 = k[0].clone().mul_scalar(h) - r2.clone();
    let r4 = r2.clone() - k[6].clone().mul_scalar(h) - r3.clone();
    let mut r5 = k[0].clone().mul_scalar(h * D[0]);
    for (i, &d) in D.iter().enumerate().skip(2) {
        r5 = r5 + k[i].clone().mul_scalar(h * d);
    }
    [x.clone(), r2, r3, r4, r5]
}

/// The continuous extension at θ ∈ [0, 1] (see [`dense_coefficients`]).
fn dense_eval<B: Backend>(r: &[Tensor<B, 2>; 5], theta: f64) -> Tensor<B, 2> {
    let th1 = 1.0 - theta;
    let inner = r[3].clone() + r[4].clone().mul_scalar(th1);
    let inner = r[2].clone() + inner.mul_scalar(theta);
    let inner = r[1].clone() + inner.mul_scalar(th1);
    r[0].clone() + inner.mul_scalar(theta)
}

#[cfg(test)]
mod tests {
    use crate::test_util::{gaussian_field as field, starts};
    use burn::tensor::TensorData;

    use super::*;
    use crate::backend::Cpu64;

    fn tensor(v: &[f64]) -> Tensor<Cpu64, 2> {
        Tensor::from_data(TensorData::new(v.to_vec(), [v.len() / 2, 2]), &Default::default())
    }

    fn host(x: Tensor<Cpu64, 2>) -> Vec<f64> {
        x.into_data().into_vec().unwrap()
    }

    fn max_err(a: &[f64], b: &[f64]) -> f64 {
        a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
    }

    #[test]
    fn the_tableau_is_consistent() {
        // Row sums of A equal the nodes; the 5th- and 4th-order weights each sum to 1, so e sums to 0.
        for i in 1..7 {
            let s: f64 = A[i].iter().sum();
            assert!((s - C[i]).abs() < 1e-14, "row {i}: {s} vs {}", C[i]);
        }
        assert!(E.iter().sum::<f64>().abs() < 1e-15);
        // Dense weights at θ = 1 reduce to the step itself: Σ dᵢ = 0 keeps r₅ = 0 for constant k.
        assert!(D.iter().sum::<f64>().abs() < 1e-12, "{}", D.iter().sum::<f64>());
    }

    #[test]
    fn dopri5_meets_its_tolerance_and_spends_more_evaluations_on_tighter_ones() {
        let g = field();
        let x0 = starts();
        let want = g.flow(&x0, 0.0, 1.0);
        let mut last_nfe = 0;
        for tol in [1e-3, 1e-5, 1e-7, 1e-9] {
            let s = Dopri5::new(tol, tol, 10_000).unwrap();
            let sol = s.integrate(&g, tensor(&x0), None, 0.0, 1.0, false).unwrap();
            let err = max_err(&host(sol.x), &want);
            // atol = rtol = tol bounds each step's local error by ≈ tol·(1 + |x|) (|x| ≤ 4 here);
            // the global error measured over tol = 1e-3 … 1e-10 is at most 2.9·tol (forwards
            // and backwards), so 10·tol leaves room without hiding an order-of-magnitude miss.
            assert!(err < 10.0 * tol, "tol {tol}: error {err}");
            assert!(sol.nfe > last_nfe, "tol {tol}: nfe {} not above {last_nfe}", sol.nfe);
            // FSAL: 6 evaluations per attempted step, +1 first k₁, +1 for the initial step size.
            assert_eq!(sol.nfe, 6 * (sol.accepted_steps + sol.rejected_steps) + 2);
            last_nfe = sol.nfe;
        }
    }

    #[test]
    fn dopri5_runs_backwards_to_the_exact_inverse_flow() {
        let g = field();
        let x1 = g.flow(&starts(), 0.0, 1.0);
        let s = Dopri5::new(1e-9, 1e-9, 10_000).unwrap();
        let got = host(s.integrate(&g, tensor(&x1), None, 1.0, 0.0, false).unwrap().x);
        let err = max_err(&got, &starts());
        // Same bound as forwards: 10·tol (measured 0.7·tol).
        assert!(err < 1e-8, "error {err}");
    }

    #[test]
    fn step_counts_grow_like_tol_to_the_minus_one_fifth() {
        // A 5(4) pair has local error estimates O(h⁵), so steps ∝ tol^(−1/5): from tol 1e-6 to
        // 1e-10 the accepted steps grow by 10^(4/5) ≈ 6.3 in the limit (measured 9 → 44,
        // slope 0.17 both ways). A lower-order error estimate (wrong b̂) would give a slope
        // ≥ 1/4; a tolerance that is ignored, ≈ 0.
        let g = field();
        for (t0, t1) in [(0.0, 1.0), (1.0, 0.0)] {
            let x = g.flow(&starts(), 0.0, t0);
            let steps = |tol: f64| {
                let s = Dopri5::new(tol, tol, 10_000).unwrap();
                s.integrate(&g, tensor(&x), None, t0, t1, false).unwrap().accepted_steps as f64
            };
            let slope = (steps(1e-10) / steps(1e-6)).ln() / 1e4_f64.ln();
            assert!((0.12..0.24).contains(&slope), "{t0} → {t1}: slope {slope}");
        }
    }

    #[test]
    fn dense_output_matches_the_exact_flow_between_steps() {
        let g = field();
        let x0 = starts();
        let tol = 1e-8;
        let ts = [0.0, 0.13, 0.4, 0.5, 0.77, 0.9, 1.0];
        let s = Dopri5::new(tol, tol, 10_000).unwrap();
        let sol = s.integrate_at(&g, tensor(&x0), None, 0.0, 1.0, &ts).unwrap();
        let tr = sol.trajectory.unwrap();
        assert_eq!(sol.times, ts.to_vec());
        assert_eq!(tr.len(), ts.len());
        for (p, &t) in tr.iter().zip(&ts) {
            let got: Vec<f64> = p.data.iter().map(|&v| v as f64).collect();
            // Points are f32 on the host: 1e-6 covers the f32 rounding of |x| ≤ 4 (≈ 5e-7)
            // on top of the ≈ 50·tol solver error.
            let err = max_err(&got, &g.flow(&x0, 0.0, t));
            assert!(err < 1e-6, "t = {t}: {err}");
        }
    }

    #[test]
    fn dense_output_is_fourth_order_within_a_step() {
        // One step of size h from t = 0.2, interpolated at θ = 0.5: a 4th-order continuous
        // extension has local error O(h⁵), so halving h divides it by ≈ 32 (a cubic Hermite
        // interpolant, i.e. wrong dᵢ, would give 16).
        let g = field();
        let x0 = starts();
        let err = |h: f64| {
            let t0 = 0.2;
            let x = tensor(&x0);
            let f = |x: Tensor<Cpu64, 2>, t: f64| VelocityField::<Cpu64>::velocity_at(&g, x, t, None);
            let mut k = vec![f(x.clone(), t0)];
            let mut x_new = x.clone();
            for i in 1..7 {
                let mut xi = x.clone();
                for (j, &a) in A[i].iter().enumerate() {
                    xi = xi + k[j].clone().mul_scalar(h * a);
                }
                if i == 6 {
                    x_new = xi.clone();
                }
                k.push(f(xi, t0 + C[i] * h));
            }
            let r = dense_coefficients(&x, &x_new, &k, h);
            max_err(&host(dense_eval(&r, 0.5)), &g.flow(&x0, t0, t0 + 0.5 * h))
        };
        let (e1, e2, e3) = (err(0.2), err(0.1), err(0.05));
        let (r1, r2) = (e1 / e2, e2 / e3);
        // log2 of the ratio is the local order + 1 = 5; ±0.5 separates it from 4.
        for r in [r1, r2] {
            assert!((r.log2() - 5.0).abs() < 0.5, "ratios {r1}, {r2} (errors {e1}, {e2}, {e3})");
        }
    }

    #[test]
    fn dopri5_reports_running_out_of_steps() {
        let g = field();
        let s = Dopri5::new(1e-12, 1e-12, 3).unwrap();
        let e = s.integrate(&g, tensor(&starts()), None, 0.0, 1.0, false).unwrap_err();
        assert!(matches!(e, SolverError::MaxSteps { max_steps: 3, t, t1 } if t < 1.0 && t1 == 1.0), "{e}");
    }

    #[test]
    fn a_field_returning_nan_ends_in_an_error_not_a_hang() {
        let nan = crate::test_util::ScaledX { dim: 2, c: f64::NAN };
        let s = Dopri5::new(1e-5, 1e-5, 10_000).unwrap();
        let e = s.integrate(&nan, tensor(&starts()), None, 0.0, 1.0, false).unwrap_err();
        assert!(matches!(e, SolverError::StepSizeUnderflow { .. }), "{e}");
    }

    #[test]
    fn recording_keeps_every_accepted_step() {
        let g = field();
        let s = Dopri5::new(1e-6, 1e-6, 10_000).unwrap();
        let sol = s.integrate(&g, tensor(&starts()), None, 1.0, 0.0, true).unwrap();
        assert_eq!(sol.times.len(), sol.accepted_steps + 1);
        assert_eq!(sol.trajectory.as_ref().map(Vec::len), Some(sol.accepted_steps + 1));
        assert_eq!((sol.times[0], *sol.times.last().unwrap()), (1.0, 0.0));
        assert!(sol.times.windows(2).all(|w| w[1] < w[0]), "{:?}", sol.times);
        // Without recording, the step times are still reported, and the steps are the same.
        let bare = s.integrate(&g, tensor(&starts()), None, 1.0, 0.0, false).unwrap();
        assert_eq!((bare.times, bare.trajectory.is_none()), (sol.times, true));
    }

    #[test]
    fn bad_options_are_rejected_with_their_values() {
        for (atol, rtol, steps, name) in [
            (0.0, 1e-5, 10, "atol"),
            (1e-5, -1.0, 10, "rtol"),
            (1e-5, f64::NAN, 10, "rtol"),
            (1e-5, 1e-5, 0, "max_steps"),
        ] {
            let e = Dopri5::new(atol, rtol, steps).unwrap_err();
            assert!(matches!(e, ConfigError::OutOfRange { name: n, .. } if n == name), "{e}");
        }
        let s = Dopri5::new(1e-5, 1e-5, 10).unwrap();
        let e = s.integrate_at(&field(), tensor(&starts()), None, 0.0, 1.0, &[0.5, 0.2]).unwrap_err();
        assert!(e.to_string().contains("ordered"), "{e}");
        let e = s.integrate_at(&field(), tensor(&starts()), None, 1.0, 0.0, &[1.2]).unwrap_err();
        assert!(e.to_string().contains("1.2"), "{e}");
    }
}
