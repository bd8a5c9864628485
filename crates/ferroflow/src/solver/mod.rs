//! ODE and SDE solvers.

/// Why a solver failed.
#[derive(Debug, thiserror::Error)]
pub enum SolverError {
    /// The options are invalid.
    #[error("solver: {0}")]
    Invalid(String),
}
