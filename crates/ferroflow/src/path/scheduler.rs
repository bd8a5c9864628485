//! Schedulers: α_t, σ_t and their time derivatives.

use serde::{Deserialize, Serialize};

/// α_t, σ_t and their derivatives at one time t.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SchedulerOutput {
    /// α_t, the weight of the data sample x₁.
    pub alpha_t: f64,
    /// σ_t, the weight of the source sample x₀.
    pub sigma_t: f64,
    /// dα_t/dt.
    pub d_alpha_t: f64,
    /// dσ_t/dt.
    pub d_sigma_t: f64,
}

/// A scheduler gives (α_t, σ_t) and their derivatives for t ∈ [0, 1].
pub trait Scheduler: std::fmt::Debug + Send + Sync {
    /// The coefficients at time `t` (t = 0 source, t = 1 data).
    fn at(&self, t: f64) -> SchedulerOutput;
}

/// The schedulers ferroflow ships, as a serialisable choice.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SchedulerConfig {
    /// CondOT: α_t = t, σ_t = 1 − (1 − σ_min) t.
    CondOt {
        /// σ at t = 1.
        sigma_min: f64,
    },
}

impl Scheduler for SchedulerConfig {
    fn at(&self, t: f64) -> SchedulerOutput {
        match *self {
            SchedulerConfig::CondOt { sigma_min } => SchedulerOutput {
                alpha_t: t,
                sigma_t: 1.0 - (1.0 - sigma_min) * t,
                d_alpha_t: 1.0,
                d_sigma_t: -(1.0 - sigma_min),
            },
        }
    }
}
impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig::CondOt { sigma_min: 0.0 }
    }
}
impl SchedulerConfig {
    /// TEMP.
    pub fn validate(&self) -> Result<(), crate::error::ConfigError> {
        Ok(())
    }
}
