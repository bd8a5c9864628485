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
    /// A data file (e.g. one of the MNIST IDX files) does not exist.
    #[error("{}: no such file{}; point --data or FERROFLOW_DATA at the folder holding the MNIST IDX files", path.display(), if also_tried.is_empty() { String::new() } else { format!(" (nor {})", also_tried.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")) })]
    MissingFile {
        /// The file looked for.
        path: PathBuf,
        /// Other names tried for the same file (the plain name beside the `.gz` one).
        also_tried: Vec<PathBuf>,
    },
    /// No data folder was given: neither a command-line value nor `FERROFLOW_DATA`.
    #[error("no data folder: pass --data DIR or set FERROFLOW_DATA to the folder holding the MNIST IDX files")]
    NoDataDir,
    /// A file does not start with the magic number of the IDX kind it should be.
    #[error("{}: magic number {found:#010x} is not that of an IDX {kind} file (expected {expected:#010x}){}", path.display(), hint_for_magic(*found, *kind))]
    IdxMagic {
        /// The file.
        path: PathBuf,
        /// What the file should hold.
        kind: IdxKind,
        /// The first four bytes, big-endian.
        found: u32,
        /// The magic number of `kind`.
        expected: u32,
    },
    /// An IDX file's size does not match its header (truncated data, or trailing bytes).
    #[error("{}: the IDX header ({dims:?}) needs {expected} bytes, the {} has {found}{}", path.display(), if *gzipped { "decompressed file" } else { "file" }, if found < expected { " (truncated?)" } else { " (trailing bytes)" })]
    IdxLength {
        /// The file.
        path: PathBuf,
        /// The dimensions in the header.
        dims: Vec<u32>,
        /// Bytes the header and dimensions need (header included).
        expected: u128,
        /// Bytes present (after decompression, for a gzipped file).
        found: u128,
        /// Whether the file is gzipped.
        gzipped: bool,
    },
    /// A gzipped file could not be decompressed.
    #[error("{}: not a valid gzip stream: {source}", path.display())]
    Gzip {
        /// The file.
        path: PathBuf,
        /// The decoder's error.
        #[source]
        source: std::io::Error,
    },
    /// The images and the labels of a data set have different counts.
    #[error("{} holds {n_images} images but {} holds {n_labels} labels", images.display(), labels.display())]
    CountMismatch {
        /// The images file.
        images: PathBuf,
        /// The labels file.
        labels: PathBuf,
        /// Images in it.
        n_images: usize,
        /// Labels in it.
        n_labels: usize,
    },
    /// A label is not a digit 0–9.
    #[error("{}: label {label} at index {index} is not a digit 0-9", path.display())]
    LabelRange {
        /// The file.
        path: PathBuf,
        /// The 0-based index of the first bad label.
        index: usize,
        /// Its value.
        label: u64,
    },
    /// Images do not have the size the reader needs (e.g. MNIST's 28×28, or a `.npy` that is
    /// not `[n, h, w]`).
    #[error("{}: images of shape {shape:?}; expected {expected}", path.display())]
    ImageShape {
        /// The file.
        path: PathBuf,
        /// The shape found.
        shape: Vec<u64>,
        /// The shape needed, in words.
        expected: &'static str,
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

/// The two kinds of IDX file in a labelled image data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdxKind {
    /// `idx3-ubyte`: `[n, rows, cols]` unsigned bytes, magic `0x00000803`.
    Images,
    /// `idx1-ubyte`: `[n]` unsigned bytes, magic `0x00000801`.
    Labels,
}

impl IdxKind {
    /// The magic number: two zero bytes, the type code `0x08` (unsigned byte), the rank.
    pub fn magic(self) -> u32 {
        match self {
            IdxKind::Images => 0x0000_0803,
            IdxKind::Labels => 0x0000_0801,
        }
    }
}

impl std::fmt::Display for IdxKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            IdxKind::Images => "images (idx3-ubyte)",
            IdxKind::Labels => "labels (idx1-ubyte)",
        })
    }
}

/// A hint for a wrong magic number: the other kind swapped in, or a gzip stream that was not detected.
fn hint_for_magic(found: u32, kind: IdxKind) -> &'static str {
    let other = match kind {
        IdxKind::Images => IdxKind::Labels,
        IdxKind::Labels => IdxKind::Images,
    };
    if found == other.magic() {
        match other {
            IdxKind::Images => "; this is an images file: are the file names swapped?",
            IdxKind::Labels => "; this is a labels file: are the file names swapped?",
        }
    } else if found >> 8 == 0x08 {
        "; an IDX file of unsigned bytes but of another rank"
    } else if found >> 16 == 0 {
        "; an IDX file of another element type (MNIST is unsigned bytes, 0x08)"
    } else {
        "; not an IDX file"
    }
}
