use std::path::PathBuf;

/// Why a data file or data set could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file has nothing in it.
    #[error("{}: the file is empty", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// A problem at a known place in a file (a ragged row, a value that is not a number, …).
    #[error("{}{}: {reason}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// The 1-based line, where the format has lines.
        line: Option<usize>,
        /// What is wrong, in words.
        reason: String,
    },
}
