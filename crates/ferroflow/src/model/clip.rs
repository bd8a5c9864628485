//! Sampling with the x₁-prediction clipped to the data's range (guided-diffusion's
//! `clip_denoised`, diffusers' `clip_sample`, written for velocities).
//!
//! A trained field can be extremely stiff in narrow regions (a Jacobian eigenvalue of 10³–10⁵
//! where a fixed-step solver needs h·|λ| < 2); a trajectory that meets one leaves the data range
//! and a fixed-step sample blows up. Where the data lie in a known box (pixels in [−1, 1]),
//! clipping the model's estimate of the end point keeps every path bounded. It changes the ODE:
//! the samples are no longer the model's flow wherever the clip is active.

use burn::tensor::{Tensor, backend::Backend};

use super::field::{Condition, VelocityField};
use crate::path::convert::{velocity_from_x1, x1_from_velocity};
use crate::path::{PathCoefficients, SchedulerConfig};

/// A field whose x₁-prediction is clipped to `[lo, hi]` before it is turned back into a velocity.
///
/// # Formula
/// x̂₁ = x1_from_velocity(v(x, t)),  ṽ = velocity_from_x1(clamp(x̂₁, lo, hi))  (the conversions of
/// [`crate::path::convert`] for the path the field was trained on). Where σ_t = 0 (CondOT with
/// σ_min = 0 at t = 1) the conversion back is singular and ṽ = v.
///
/// For CondOT (σ_min = 0) this is ṽ = (clamp(x + (1 − t)v, lo, hi) − x)/(1 − t), so an Euler step
/// from t_k to t_k + h is x + a·(clamp(x̂₁) − x) with a = h/(1 − t_k) ≤ 1 on a grid ending at 1:
/// a convex combination of x and a point of the box. A path that starts in a box [−r, r]
/// (r ≥ max(|lo|, |hi|)) never leaves it, however stiff the field.
///
/// # Shapes
/// `x: [batch, dim]`, `t: [batch]` → `[batch, dim]`
///
/// ```
/// use burn::tensor::{Tensor, TensorData};
/// use ferroflow::backend::Cpu64;
/// use ferroflow::model::{ClipX1, GaussianToGaussian, VelocityField};
/// use ferroflow::path::SchedulerConfig;
/// let d = Default::default();
/// // The exact CondOT field from N(0, 1) to N(3, 0.1²): at x = 0, t = 0.5, v ≈ 5.94, x̂₁ ≈ 2.97.
/// let exact = GaussianToGaussian::new(SchedulerConfig::CondOt { sigma_min: 0.0 }, vec![3.0], vec![0.1]);
/// let clipped = ClipX1::new(&exact, SchedulerConfig::CondOt { sigma_min: 0.0 }, -1.0, 1.0);
/// let x = Tensor::<Cpu64, 2>::from_data(TensorData::new(vec![0.0], [1, 1]), &d);
/// let v: Vec<f64> = clipped.velocity_at(x, 0.5, None).into_data().into_vec().unwrap();
/// // x̂₁ clipped to 1: ṽ = (1 − 0)/(1 − 0.5) = 2.
/// assert!((v[0] - 2.0).abs() < 1e-12);
/// ```
#[derive(Debug, Clone)]
pub struct ClipX1<F> {
    field: F,
    scheduler: SchedulerConfig,
    lo: f64,
    hi: f64,
}

impl<F> ClipX1<F> {
    /// Clips `field`'s x₁-prediction on the path of `scheduler` to `[lo, hi]` (`lo < hi`).
    pub fn new(field: F, scheduler: SchedulerConfig, lo: f64, hi: f64) -> Self {
        debug_assert!(lo < hi);
        Self { field, scheduler, lo, hi }
    }
}

impl<B: Backend, F: VelocityField<B>> VelocityField<B> for ClipX1<F> {
    fn dim(&self) -> usize {
        self.field.dim()
    }

    fn velocity(&self, x: Tensor<B, 2>, t: Tensor<B, 1>, cond: Option<&Condition<B>>) -> Tensor<B, 2> {
        let v = self.field.velocity(x.clone(), t.clone(), cond);
        let th: Vec<f64> = t.into_data().convert::<f64>().to_vec().expect("a float time column");
        let c = PathCoefficients::<B>::new(&self.scheduler, &th, &x.device());
        let singular = c.sigma_t.clone().equal_elem(0.0).expand(v.dims());
        let x1 = x1_from_velocity(v.clone(), x.clone(), &c).clamp(self.lo, self.hi);
        velocity_from_x1(x1, x, &c).mask_where(singular, v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Cpu64;
    use crate::model::GaussianToGaussian;
    use crate::test_util::ScaledX;
    use burn::tensor::TensorData;

    fn euler(f: &dyn VelocityField<Cpu64>, x0: Vec<f64>, steps: usize) -> Vec<f64> {
        let d = Default::default();
        let mut x = Tensor::<Cpu64, 2>::from_data(TensorData::new(x0, [2, 3]), &d);
        let h = 1.0 / steps as f64;
        for k in 0..steps {
            x = x.clone() + f.velocity_at(x, k as f64 * h, None).mul_scalar(h);
        }
        x.into_data().into_vec().unwrap()
    }

    #[test]
    fn clipping_keeps_stiff_euler_paths_in_the_box_and_leaves_inner_predictions_alone() {
        let ot = SchedulerConfig::CondOt { sigma_min: 0.0 };
        let x0 = vec![0.3, -0.9, 0.0, 1.0, -0.2, 0.7];
        // v = λ·x, λ = 10⁴: unclipped, at h = 1/100 explodes (|1 + hλ|¹⁰⁰ = 101¹⁰⁰).
        let raw = euler(&ScaledX { dim: 3, c: 1e4 }, x0.clone(), 100);
        assert!(raw.iter().any(|a| !a.is_finite() || a.abs() > 1e100));
        // Clipped to [−1, 1], every iterate stays in the box; the last step lands on clamp(x̂₁).
        let clipped = ClipX1::new(ScaledX { dim: 3, c: 1e4 }, ot, -1.0, 1.0);
        let out = euler(&clipped, x0.clone(), 100);
        assert!(out.iter().all(|a| a.is_finite() && a.abs() <= 1.0 + 1e-12), "{out:?}");
        assert!(out.iter().all(|a| a.abs() == 1.0 || *a == 0.0), "x̂₁ = x(1 + 10⁴·(1 − t)) is clipped to ±1: {out:?}");
        // Where x̂₁ stays inside the box the clip changes nothing: the exact Gaussian field
        // N(0, 1) → N(0.2, 0.05²) at points whose x̂₁ is within [−1, 1].
        let exact = GaussianToGaussian::new(ot, vec![0.2; 3], vec![0.05; 3]);
        let d = Default::default();
        let x = Tensor::<Cpu64, 2>::from_data(TensorData::new(x0, [2, 3]), &d);
        for t in [0.0, 0.3, 0.9, 1.0] {
            let a: Vec<f64> = exact.velocity_at(x.clone(), t, None).into_data().into_vec().unwrap();
            let b: Vec<f64> =
                ClipX1::new(&exact, ot, -1.0, 1.0).velocity_at(x.clone(), t, None).into_data().into_vec().unwrap();
            for (p, q) in a.iter().zip(&b) {
                assert!((p - q).abs() < 1e-12, "t = {t}: {p} vs {q}");
            }
        }
    }
}
