//! The affine Gaussian path x_t = α_t x₁ + σ_t x₀.

use burn::tensor::{Tensor, TensorData, backend::Backend};

use super::scheduler::{Scheduler, SchedulerConfig};

/// Per-row path coefficients as `[batch, 1]` columns, ready to broadcast against `[batch, dim]`.
#[derive(Debug, Clone)]
pub struct PathCoefficients<B: Backend> {
    /// α_t, `[batch, 1]`.
    pub alpha_t: Tensor<B, 2>,
    /// σ_t, `[batch, 1]`.
    pub sigma_t: Tensor<B, 2>,
    /// dα_t/dt, `[batch, 1]`.
    pub d_alpha_t: Tensor<B, 2>,
    /// dσ_t/dt, `[batch, 1]`.
    pub d_sigma_t: Tensor<B, 2>,
}

impl<B: Backend> PathCoefficients<B> {
    /// Evaluates `scheduler` at each time in `t` (in f64, on the host) and uploads the columns.
    ///
    /// The columns are built from f64 host data and converted to the backend's float type on
    /// upload, so an f64 backend keeps the scheduler's full precision.
    ///
    /// # Shapes
    /// `t: [batch]` → each column `[batch, 1]`
    ///
    /// ```
    /// use ferroflow::backend::Cpu64;
    /// use ferroflow::path::{PathCoefficients, SchedulerConfig};
    /// let c = PathCoefficients::<Cpu64>::new(&SchedulerConfig::Cosine, &[1.0 / 3.0], &Default::default());
    /// let a: Vec<f64> = c.alpha_t.into_data().into_vec().unwrap();
    /// assert!((a[0] - 0.5).abs() < 1e-15); // sin(π/6), not rounded to f32
    /// ```
    pub fn new(scheduler: &dyn Scheduler, t: &[f64], device: &B::Device) -> Self {
        let n = t.len();
        let mut cols = [vec![0f64; n], vec![0f64; n], vec![0f64; n], vec![0f64; n]];
        for (i, &ti) in t.iter().enumerate() {
            let s = scheduler.at(ti);
            cols[0][i] = s.alpha_t;
            cols[1][i] = s.sigma_t;
            cols[2][i] = s.d_alpha_t;
            cols[3][i] = s.d_sigma_t;
        }
        let [a, s, da, ds] = cols.map(|c| Tensor::from_data(TensorData::new(c, [n, 1]), device));
        Self { alpha_t: a, sigma_t: s, d_alpha_t: da, d_sigma_t: ds }
    }
}

/// One draw from the path: the pair, the time, the point x_t and the conditional target u_t.
#[derive(Debug, Clone)]
pub struct PathSample<B: Backend> {
    /// Source samples, `[batch, dim]`.
    pub x0: Tensor<B, 2>,
    /// Data samples, `[batch, dim]`.
    pub x1: Tensor<B, 2>,
    /// Times, `[batch]`.
    pub t: Tensor<B, 1>,
    /// x_t = α_t x₁ + σ_t x₀, `[batch, dim]`.
    pub xt: Tensor<B, 2>,
    /// u_t = α̇_t x₁ + σ̇_t x₀, the conditional velocity, `[batch, dim]`.
    pub ut: Tensor<B, 2>,
}

/// The affine Gaussian probability path given by a scheduler.
///
/// # Formula
/// x_t = α_t x₁ + σ_t x₀,  u_t(x_t | x₀, x₁) = α̇_t x₁ + σ̇_t x₀
/// (Lipman et al. 2023, *Flow Matching for Generative Modeling*, eq. 20–21, in the t = 0 noise
/// convention).
///
/// # Shapes
/// `x0, x1: [batch, dim]`, `t: [batch]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AffinePath {
    /// The scheduler giving α_t and σ_t.
    pub scheduler: SchedulerConfig,
}

impl AffinePath {
    /// A path with this scheduler.
    pub fn new(scheduler: SchedulerConfig) -> Self {
        Self { scheduler }
    }

    /// Draws x_t and u_t for the pairs (`x0[i]`, `x1[i]`) at times `t[i]`.
    ///
    /// # Shapes
    /// `x0, x1: [batch, dim]`, `t: [batch]` (host f64) → [`PathSample`] with `xt, ut: [batch, dim]`
    ///
    /// ```
    /// use burn::tensor::{Tensor, TensorData};
    /// use ferroflow::backend::Cpu64;
    /// use ferroflow::path::{AffinePath, SchedulerConfig};
    /// let dev = Default::default();
    /// let x0 = Tensor::<Cpu64, 2>::from_data(TensorData::new(vec![1.0, -2.0], [1, 2]), &dev);
    /// let x1 = Tensor::<Cpu64, 2>::from_data(TensorData::new(vec![3.0, 4.0], [1, 2]), &dev);
    /// let s = AffinePath::new(SchedulerConfig::CondOt { sigma_min: 0.0 }).sample(x0, x1, &[0.25]);
    /// // x_t = 0.25·x1 + 0.75·x0, u_t = x1 − x0
    /// assert_eq!(s.xt.into_data().into_vec::<f64>().unwrap(), vec![1.5, -0.5]);
    /// assert_eq!(s.ut.into_data().into_vec::<f64>().unwrap(), vec![2.0, 6.0]);
    /// ```
    pub fn sample<B: Backend>(&self, x0: Tensor<B, 2>, x1: Tensor<B, 2>, t: &[f64]) -> PathSample<B> {
        let device = x0.device();
        let c = PathCoefficients::<B>::new(&self.scheduler, t, &device);
        let xt = x1.clone() * c.alpha_t + x0.clone() * c.sigma_t;
        let ut = x1.clone() * c.d_alpha_t + x0.clone() * c.d_sigma_t;
        let tt = Tensor::from_data(TensorData::new(t.to_vec(), [t.len()]), &device);
        PathSample { x0, x1, t: tt, xt, ut }
    }
}
