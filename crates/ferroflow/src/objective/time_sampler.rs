use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use crate::rng::Rng;

/// The distribution of training times t ∈ [0, 1].
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum TimeSampler {
    /// t ~ U[0, 1].
    #[default]
    Uniform,
    /// Logit-normal (Esser et al. 2024, SD3 §3.1): t = sigmoid(n), n ~ N(mean, std²).
    ///
    /// # Formula
    /// π(t) = 1/(s√(2π)) · 1/(t(1 − t)) · exp(−(logit(t) − m)² / (2s²))
    LogitNormal {
        /// m, the mean of logit(t).
        mean: f64,
        /// s, the std of logit(t).
        std: f64,
    },
}

impl TimeSampler {
    /// Draws `n` times.
    ///
    /// ```
    /// use ferroflow::{objective::TimeSampler, rng};
    /// let t = TimeSampler::LogitNormal { mean: 0.0, std: 1.0 }.sample(20_000, &mut rng::seeded(0));
    /// let mean = t.iter().sum::<f64>() / t.len() as f64;
    /// assert!((mean - 0.5).abs() < 0.01); // symmetric about 1/2 when m = 0
    /// ```
    pub fn sample(&self, n: usize, rng: &mut Rng) -> Vec<f64> {
        match *self {
            TimeSampler::Uniform => {
                use rand::Rng as _;
                (0..n).map(|_| rng.random::<f64>()).collect()
            }
            TimeSampler::LogitNormal { mean, std } => (0..n)
                .map(|_| {
                    let z: f64 = StandardNormal.sample(rng);
                    1.0 / (1.0 + (-(mean + std * z)).exp())
                })
                .collect(),
        }
    }

    /// Checks the parameters.
    ///
    /// # Errors
    /// [`ConfigError::OutOfRange`] for a non-finite mean or a std that is not > 0.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let TimeSampler::LogitNormal { mean, std } = *self {
            if !mean.is_finite() {
                return Err(ConfigError::OutOfRange {
                    name: "time_sampler.mean",
                    value: mean.to_string(),
                    expected: "a finite number",
                });
            }
            if !(std > 0.0 && std.is_finite()) {
                return Err(ConfigError::OutOfRange {
                    name: "time_sampler.std",
                    value: std.to_string(),
                    expected: "a finite number > 0",
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_has_uniform_moments() {
        let t = TimeSampler::Uniform.sample(100_000, &mut crate::rng::seeded(1));
        let m = t.iter().sum::<f64>() / t.len() as f64;
        let v = t.iter().map(|x| (x - m).powi(2)).sum::<f64>() / t.len() as f64;
        // std error of the mean: sqrt(1/12/1e5) ≈ 9e-4
        assert!((m - 0.5).abs() < 4e-3, "{m}");
        assert!((v - 1.0 / 12.0).abs() < 2e-3, "{v}");
        assert!(t.iter().all(|&x| (0.0..1.0).contains(&x)));
    }

    #[test]
    fn logit_normal_logits_are_normal() {
        let (m, s) = (0.7, 1.3);
        let t = TimeSampler::LogitNormal { mean: m, std: s }.sample(100_000, &mut crate::rng::seeded(2));
        let z: Vec<f64> = t.iter().map(|&x| (x / (1.0 - x)).ln()).collect();
        let zm = z.iter().sum::<f64>() / z.len() as f64;
        let zs = (z.iter().map(|x| (x - zm).powi(2)).sum::<f64>() / z.len() as f64).sqrt();
        // std error of the mean: 1.3/sqrt(1e5) ≈ 4e-3
        assert!((zm - m).abs() < 0.02, "{zm}");
        assert!((zs - s).abs() < 0.02, "{zs}");
    }
}
