//! Couplings: how source and data samples are paired in a minibatch.

/// Why a coupling could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum CouplingError {
    /// The two sets cannot be paired as asked.
    #[error("coupling: {0}")]
    Invalid(String),
}
