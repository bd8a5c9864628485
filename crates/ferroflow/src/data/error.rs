use std::path::PathBuf;

/// Why a data file or data set could not be used. Every message is one line and starts with
/// the file (and, for text files, `:line`).
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file's extension names no format ferroflow reads.
    #[error("{}: unknown data format {:?}; expected a .csv or .npy file", path.display(), extension.as_deref().unwrap_or(""))]
    UnknownFormat {
        /// The file.
        path: PathBuf,
        /// Its extension, if it has one.
        extension: Option<String>,
    },
    /// A file has no points in it (no bytes, only blank lines, a header only, or a zero-size array).
    #[error("{}: the file is empty{}", path.display(), if detail.is_empty() { String::new() } else { format!(" ({detail})") })]
    Empty {
        /// The file.
        path: PathBuf,
        /// What was there instead of points ("" for nothing at all).
        detail: &'static str,
    },
    /// A CSV row has a different number of columns from the first row.
    #[error("{}:{line}: expected {expected} columns (as the first row), got {got}", path.display())]
    Ragged {
        /// The file.
        path: PathBuf,
        /// The 1-based line.
        line: usize,
        /// The columns of the first row.
        expected: usize,
        /// The columns of this row.
        got: usize,
    },
    /// A CSV field is not a number.
    #[error("{}:{line}: column {column}: {text:?} is not a number", path.display())]
    NotANumber {
        /// The file.
        path: PathBuf,
        /// The 1-based line.
        line: usize,
        /// The 1-based column.
        column: usize,
        /// The field's text (at most 40 characters of it).
        text: String,
    },
    /// A value is NaN or infinite, or too large for f32.
    #[error("{}: {at}: value {value} is not a finite f32", path.display())]
    NonFinite {
        /// The file.
        path: PathBuf,
        /// Where: `line 3, column 2` (CSV) or `row 3, column 2` (1-based) for arrays.
        at: String,
        /// The value (as read, in f64).
        value: f64,
    },
    /// A `.npy` array's element type is not f32 or f64.
    #[error("{}: dtype {descr:?} ({meaning}) is not supported; expected float32 or float64 ('<f4', '<f8', '>f4', '>f8')", path.display())]
    Dtype {
        /// The file.
        path: PathBuf,
        /// The array's `descr`, as written in its header.
        descr: String,
        /// What that dtype is, in words.
        meaning: &'static str,
    },
    /// A `.npy` array is not 1-D or 2-D.
    #[error("{}: array of shape {shape:?} has rank {}; expected a 2-D [n, dim] (or 1-D [n]) array", path.display(), shape.len())]
    Rank {
        /// The file.
        path: PathBuf,
        /// The shape in the header.
        shape: Vec<u64>,
    },
    /// A `.npy` header's shape does not match the bytes that follow it (a truncated file, trailing
    /// bytes, or a shape too large to be real).
    #[error("{}: shape {shape:?} of {itemsize}-byte values needs {expected} data bytes, the file has {got}{}", path.display(), if got < expected { " (truncated?)" } else { "" })]
    SizeMismatch {
        /// The file.
        path: PathBuf,
        /// The shape in the header.
        shape: Vec<u64>,
        /// Bytes per value.
        itemsize: usize,
        /// Data bytes the shape needs (saturated at `u128::MAX`: never computed by overflowing).
        expected: u128,
        /// Data bytes in the file.
        got: u128,
    },
    /// A problem at a known place in a file that no other variant describes (a bad `.npy`
    /// header, bytes that are not UTF-8, …).
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
