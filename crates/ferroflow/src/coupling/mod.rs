//! Couplings: how source and data samples are paired in a minibatch.

pub mod exact_ot;

/// Why a coupling could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum CouplingError {
    /// The two sets cannot be paired as asked.
    #[error("coupling: {0}")]
    Invalid(String),
}

/// TEMP stub until the couplings branch lands.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum CouplingConfig {
    /// Independent.
    #[default]
    Independent,
    /// Exact minibatch OT.
    ExactOt,
    /// Sinkhorn.
    Sinkhorn {
        /// Entropic regularisation, relative to the mean cost.
        epsilon: f64,
        /// Iteration cap.
        max_iters: usize,
    },
    /// Exact OT within each class of x1.
    ClassExactOt,
}
/// Pairing.
pub struct Pairing {
    /// i0.
    pub i0: Vec<usize>,
    /// i1.
    pub i1: Vec<usize>,
}
impl CouplingConfig {
    /// validate.
    pub fn validate(&self) -> Result<(), crate::error::ConfigError> {
        Ok(())
    }
    /// pair.
    pub fn pair(
        &self,
        x0: &crate::data::Points,
        _x1: &crate::data::Points,
        _labels1: Option<&[u32]>,
        _rng: &mut crate::rng::Rng,
    ) -> Result<Pairing, CouplingError> {
        Ok(Pairing { i0: (0..x0.n).collect(), i1: (0..x0.n).collect() })
    }
}
