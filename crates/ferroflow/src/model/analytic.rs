//! Closed-form velocity fields: the reference every solver, conversion and likelihood test
//! is checked against.

use burn::tensor::{Tensor, TensorData, backend::Backend};

use super::field::{Condition, VelocityField};
use crate::path::{Scheduler, SchedulerConfig};

/// The marginal velocity field of an affine path from N(0, I) to a diagonal Gaussian
/// N(μ, diag(s²)) with the independent coupling: everything about it is known in closed form.
///
/// # Formula
/// With x_t = α_t x₁ + σ_t x₀, x₀ ~ N(0, I), x₁ ~ N(μ, diag(s²)), the marginal p_t is
/// N(m_t, diag(v_t)) with m_t = α_t μ and v_t = α_t² s² + σ_t² (per coordinate). Its velocity
/// and score are
///
/// u_t(x) = α̇_t μ + (α_t α̇_t s² + σ_t σ̇_t)/v_t · (x − m_t),   ∇log p_t(x) = −(x − m_t)/v_t,
///
/// and the flow map is x(t) = m_t + √(v_t / v_τ)·(x(τ) − m_τ) for any start time τ.
///
/// # Shapes
/// `x: [batch, dim]`, `t: [batch]` → `[batch, dim]`; `mean` and `std` have `dim` entries.
///
/// ```
/// use ferroflow::model::GaussianToGaussian;
/// use ferroflow::path::SchedulerConfig;
/// let g = GaussianToGaussian::new(SchedulerConfig::CondOt { sigma_min: 0.0 }, vec![2.0], vec![0.5]);
/// // v_{1/2} = 0.25·0.25 + 0.25 = 0.3125; m_{1/2} = 1
/// assert!((g.variance_at(0.5)[0] - 0.3125).abs() < 1e-12);
/// assert!((g.mean_at(0.5)[0] - 1.0).abs() < 1e-12);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct GaussianToGaussian {
    /// The path's scheduler.
    pub scheduler: SchedulerConfig,
    /// μ, the data mean, one entry per coordinate.
    pub mean: Vec<f64>,
    /// s, the data standard deviation, one entry per coordinate.
    pub std: Vec<f64>,
}

impl GaussianToGaussian {
    /// The field for data N(mean, diag(std²)).
    pub fn new(scheduler: SchedulerConfig, mean: Vec<f64>, std: Vec<f64>) -> Self {
        debug_assert_eq!(mean.len(), std.len());
        Self { scheduler, mean, std }
    }

    /// m_t = α_t μ.
    pub fn mean_at(&self, t: f64) -> Vec<f64> {
        let a = self.scheduler.at(t).alpha_t;
        self.mean.iter().map(|m| a * m).collect()
    }

    /// v_t = α_t² s² + σ_t², per coordinate.
    pub fn variance_at(&self, t: f64) -> Vec<f64> {
        let c = self.scheduler.at(t);
        self.std.iter().map(|s| c.alpha_t * c.alpha_t * s * s + c.sigma_t * c.sigma_t).collect()
    }

    /// The exact flow map: where the point `x` at time `from` is at time `to`.
    pub fn flow(&self, x: &[f64], from: f64, to: f64) -> Vec<f64> {
        let (m0, v0) = (self.mean_at(from), self.variance_at(from));
        let (m1, v1) = (self.mean_at(to), self.variance_at(to));
        let d = self.mean.len();
        x.iter()
            .enumerate()
            .map(|(i, xi)| {
                let k = i % d;
                m1[k] + (v1[k] / v0[k]).sqrt() * (xi - m0[k])
            })
            .collect()
    }

    /// log p_t(x) of one point, in nats.
    pub fn log_density(&self, x: &[f64], t: f64) -> f64 {
        let (m, v) = (self.mean_at(t), self.variance_at(t));
        x.iter()
            .zip(m.iter().zip(&v))
            .map(|(xi, (mi, vi))| -0.5 * ((xi - mi).powi(2) / vi + (2.0 * std::f64::consts::PI * vi).ln()))
            .sum()
    }

    /// Per-row coefficients (a_k, b_k) such that u = a + b·x, and (m_t, v_t), as host vectors
    /// in f64 (so that f64 backends keep full precision for convergence-order tests).
    pub(super) fn rows(&self, t: &[f64]) -> (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>) {
        let d = self.mean.len();
        let (mut a, mut b, mut m, mut var) = (vec![], vec![], vec![], vec![]);
        for &ti in t {
            let c = self.scheduler.at(ti);
            for k in 0..d {
                let (mu, s2) = (self.mean[k], self.std[k] * self.std[k]);
                let v = c.alpha_t * c.alpha_t * s2 + c.sigma_t * c.sigma_t;
                let gain = (c.alpha_t * c.d_alpha_t * s2 + c.sigma_t * c.d_sigma_t) / v;
                a.push(c.d_alpha_t * mu - gain * c.alpha_t * mu);
                b.push(gain);
                m.push(c.alpha_t * mu);
                var.push(v);
            }
        }
        (a, b, m, var)
    }

    /// The marginal score ∇log p_t(x) = −(x − m_t)/v_t.
    ///
    /// # Shapes
    /// `x: [batch, dim]`, `t: [batch]` → `[batch, dim]`
    pub fn score<B: Backend>(&self, x: Tensor<B, 2>, t: Tensor<B, 1>) -> Tensor<B, 2> {
        let [n, d] = x.dims();
        let (_, _, m, v) = self.rows(&host_times(t));
        let dev = x.device();
        let m = Tensor::<B, 2>::from_data(TensorData::new(m, [n, d]), &dev);
        let v = Tensor::<B, 2>::from_data(TensorData::new(v, [n, d]), &dev);
        (m - x) / v
    }
}

fn host_times<B: Backend>(t: Tensor<B, 1>) -> Vec<f64> {
    t.into_data().convert::<f64>().into_vec::<f64>().expect("float times")
}

impl<B: Backend> VelocityField<B> for GaussianToGaussian {
    fn dim(&self) -> usize {
        self.mean.len()
    }

    fn velocity(&self, x: Tensor<B, 2>, t: Tensor<B, 1>, _cond: Option<&Condition<B>>) -> Tensor<B, 2> {
        let [n, d] = x.dims();
        let (a, b, _, _) = self.rows(&host_times(t));
        let dev = x.device();
        let a = Tensor::<B, 2>::from_data(TensorData::new(a, [n, d]), &dev);
        let b = Tensor::<B, 2>::from_data(TensorData::new(b, [n, d]), &dev);
        a + b * x
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Cpu64;

    #[test]
    fn flow_map_solves_the_velocity_ode() {
        // d/dt flow(x, 0, t) must equal u_t(flow(x, 0, t)): central differences.
        let g = GaussianToGaussian::new(SchedulerConfig::CondOt { sigma_min: 0.0 }, vec![1.5, -2.0], vec![0.3, 1.7]);
        let x0 = [0.4, -1.1];
        let dev = Default::default();
        for t in [0.1, 0.5, 0.9] {
            let h = 1e-5;
            let xp = g.flow(&x0, 0.0, t + h);
            let xm = g.flow(&x0, 0.0, t - h);
            let xt = g.flow(&x0, 0.0, t);
            let x = Tensor::<Cpu64, 2>::from_data(TensorData::new(xt.clone(), [1, 2]), &dev);
            let v: Vec<f64> = VelocityField::<Cpu64>::velocity_at(&g, x, t, None).into_data().into_vec().unwrap();
            for k in 0..2 {
                let fd = (xp[k] - xm[k]) / (2.0 * h);
                // central differences at h = 1e-5: truncation ~1e-10, rounding ~1e-11.
                assert!((fd - v[k]).abs() < 1e-8 * (1.0 + fd.abs()), "t={t} k={k}: {fd} vs {}", v[k]);
            }
        }
    }
}
