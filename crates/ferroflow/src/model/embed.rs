//! Time embeddings: how the scalar t enters an MLP.

use burn::module::Module;
use burn::tensor::{Tensor, TensorData, backend::Backend};
use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// How t is fed to the network.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum TimeEmbeddingConfig {
    #[default]
    /// t itself, one feature (torchcfm's and the W2D workload's `cat([x, t])`).
    Raw,
    /// Fixed sinusoidal features (Vaswani et al. 2017; DDPM's time embedding).
    ///
    /// # Formula
    /// with h = dim/2, f_k = exp(−ln(max_period)·k/h) for k = 0…h−1 and θ_k = scale·t·f_k:
    /// e(t) = [cos θ₀ … cos θ_{h−1}, sin θ₀ … sin θ_{h−1}]
    Sinusoidal {
        /// Number of features (even).
        dim: usize,
        /// Longest period, in units of scale·t.
        max_period: f64,
        /// Multiplies t before the frequencies (1000 maps t ∈ [0, 1] to DDPM's step range).
        scale: f64,
    },
    /// Random Fourier features (Tancik et al. 2020), frequencies drawn once from the seed
    /// and stored in checkpoints.
    ///
    /// # Formula
    /// b_k ~ N(0, std²), k = 0…dim/2−1: e(t) = [cos 2πb₀t … , sin 2πb₀t …]
    Fourier {
        /// Number of features (even).
        dim: usize,
        /// Standard deviation of the frequencies.
        std: f64,
    },
}

impl TimeEmbeddingConfig {
    /// Number of features the embedding produces.
    pub fn d_output(&self) -> usize {
        match *self {
            TimeEmbeddingConfig::Raw => 1,
            TimeEmbeddingConfig::Sinusoidal { dim, .. } | TimeEmbeddingConfig::Fourier { dim, .. } => dim,
        }
    }

    /// Checks the settings.
    ///
    /// # Errors
    /// [`ConfigError::OutOfRange`] for an odd or zero `dim`, a non-positive period, scale or std.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |name, value: String, expected| Err(ConfigError::OutOfRange { name, value, expected });
        match *self {
            TimeEmbeddingConfig::Raw => Ok(()),
            TimeEmbeddingConfig::Sinusoidal { dim, max_period, scale } => {
                if dim == 0 || dim % 2 == 1 || dim > 65_536 {
                    return bad("time_embedding.dim", dim.to_string(), "an even number in 2..=65536");
                }
                if !(max_period > 1.0 && max_period.is_finite()) {
                    return bad("time_embedding.max_period", max_period.to_string(), "a finite number > 1");
                }
                if !(scale > 0.0 && scale.is_finite()) {
                    return bad("time_embedding.scale", scale.to_string(), "a finite number > 0");
                }
                Ok(())
            }
            TimeEmbeddingConfig::Fourier { dim, std } => {
                if dim == 0 || dim % 2 == 1 || dim > 65_536 {
                    return bad("time_embedding.dim", dim.to_string(), "an even number in 2..=65536");
                }
                if !(std > 0.0 && std.is_finite()) {
                    return bad("time_embedding.std", std.to_string(), "a finite number > 0");
                }
                Ok(())
            }
        }
    }

    /// Builds the embedding. Fourier frequencies are drawn from `rng`.
    pub fn init<B: Backend>(&self, device: &B::Device, rng: &mut crate::rng::Rng) -> TimeEmbedding<B> {
        let freqs = match *self {
            TimeEmbeddingConfig::Raw => vec![],
            TimeEmbeddingConfig::Sinusoidal { dim, max_period, scale } => {
                let h = dim / 2;
                (0..h).map(|k| (scale * (-(max_period.ln()) * k as f64 / h as f64).exp()) as f32).collect()
            }
            TimeEmbeddingConfig::Fourier { dim, std } => crate::rng::normal_vec(rng, dim / 2)
                .into_iter()
                .map(|b| (2.0 * std::f64::consts::PI * std * b as f64) as f32)
                .collect(),
        };
        let n = freqs.len();
        TimeEmbedding { freqs: (n > 0).then(|| Tensor::from_data(TensorData::new(freqs, [1, n]), device)) }
    }
}

/// A time embedding: t ↦ features. Its angular frequencies (if any) are constants, not
/// trained, and are saved in checkpoints as `time_embedding.freqs`.
#[derive(Module, Debug)]
pub struct TimeEmbedding<B: Backend> {
    /// Angular frequencies ω_k, `[1, dim/2]`; `None` for the raw embedding. e(t) = [cos ωt, sin ωt].
    pub freqs: Option<Tensor<B, 2>>,
}

impl<B: Backend> TimeEmbedding<B> {
    /// Embeds times.
    ///
    /// # Shapes
    /// `t: [batch]` → `[batch, d_output]`
    pub fn forward(&self, t: Tensor<B, 1>) -> Tensor<B, 2> {
        let [n] = t.dims();
        let t = t.reshape([n, 1]);
        match &self.freqs {
            None => t,
            Some(w) => {
                let theta = t.mul(w.clone());
                Tensor::cat(vec![theta.clone().cos(), theta.sin()], 1)
            }
        }
    }
}
