//! Errors. Configuration errors (bad settings, caught before any work starts) are kept apart
//! from run-time errors (a non-finite loss, an unreadable file).

use std::path::PathBuf;

/// Result with ferroflow's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every error the library returns.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting is invalid; nothing was run.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A data file could not be read or holds bad data.
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    /// A checkpoint could not be written or read.
    #[error(transparent)]
    Checkpoint(#[from] crate::checkpoint::CheckpointError),
    /// A coupling could not be computed.
    #[error(transparent)]
    Coupling(#[from] crate::coupling::CouplingError),
    /// A solver failed (e.g. the adaptive step size underflowed).
    #[error(transparent)]
    Solver(#[from] crate::solver::SolverError),
    /// A Fréchet distance could not be computed.
    #[error(transparent)]
    Frechet(#[from] crate::metrics::FrechetError),
    /// A picture could not be made.
    #[error(transparent)]
    Plot(#[from] crate::plot::PlotError),
    /// Training produced a NaN or infinite loss.
    #[error(
        "loss is {value} at step {step}: training stopped (the last good checkpoint is kept); lower the learning rate or enable gradient clipping"
    )]
    NonFinite {
        /// The step at which the loss stopped being finite.
        step: u64,
        /// The offending value.
        value: f64,
    },
    /// Two arrays do not have the shapes an operation needs.
    #[error("{op}: expected {expected}, got {got}")]
    Shape {
        /// The operation that checked the shapes.
        op: &'static str,
        /// What it expected.
        expected: String,
        /// What it got.
        got: String,
    },
    /// A worker thread of the library stopped before its work was done (it panicked).
    #[error("{0} stopped unexpectedly")]
    ThreadStopped(&'static str),
    /// An I/O error on a file.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// A setting that is out of range or inconsistent. Raised before any work starts.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A number is out of its valid range.
    #[error("{name} = {value} is out of range: {expected}")]
    OutOfRange {
        /// The setting.
        name: &'static str,
        /// Its value, as written.
        value: String,
        /// The valid range, in words.
        expected: &'static str,
    },
    /// A name is not one of the known choices.
    #[error("unknown {kind} {name:?}; valid: {valid}")]
    Unknown {
        /// What kind of thing (world, scheduler, …).
        kind: &'static str,
        /// The name given.
        name: String,
        /// The valid names, comma separated.
        valid: String,
    },
    /// Two settings contradict each other.
    #[error("{0}")]
    Inconsistent(String),
    /// A TOML config file could not be parsed.
    #[error("{}: {message}", path.display())]
    Toml {
        /// The file.
        path: PathBuf,
        /// The parser's message (line, column, what is wrong).
        message: String,
    },
}

impl Error {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}
