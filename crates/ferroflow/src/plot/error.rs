//! Plot errors: which picture failed, and why.

use std::path::PathBuf;

/// A picture could not be made: the destination and the cause.
///
/// Its `Display` names the file and the cause (`plot a.png: layer "samples": expected 2D
/// points, got dim 3`); [`std::error::Error::source`] continues with the underlying I/O or
/// drawing error, if any.
#[derive(Debug)]
pub struct PlotError {
    /// The picture (file or frame folder) that was to be written.
    pub path: PathBuf,
    /// What went wrong.
    pub kind: PlotErrorKind,
}

impl std::fmt::Display for PlotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "plot {}: {}", self.path.display(), self.kind)
    }
}

impl std::error::Error for PlotError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        // Skip the kind itself (its text is already in our Display) and go to its cause.
        std::error::Error::source(&self.kind)
    }
}

/// Why a picture could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PlotErrorKind {
    /// A point set is not two-dimensional.
    #[error("{what}: expected 2D points, got dim {dim}")]
    NotTwoD {
        /// Which input (e.g. `layer "samples"`, `trajectory frame 3`).
        what: String,
        /// Its dimension.
        dim: usize,
    },
    /// A point set (or a list of them) is empty.
    #[error("{what} is empty; nothing to plot")]
    Empty {
        /// Which input.
        what: String,
    },
    /// A point set holds a NaN or infinite coordinate.
    #[error("{what}: row {row} holds the non-finite value {value}")]
    NonFinite {
        /// Which input.
        what: String,
        /// The first offending row.
        row: usize,
        /// The offending value.
        value: f32,
    },
    /// The frames of a trajectory do not all have the same number of points.
    #[error("trajectory frame {frame} has {got} points, frame 0 has {expected}")]
    FrameSize {
        /// The offending frame.
        frame: usize,
        /// Points in frame 0.
        expected: usize,
        /// Points in this frame.
        got: usize,
    },
    /// A heat-map grid's values do not fill `nx × ny` cells.
    #[error("grid of {nx}×{ny} cells needs {} values, got {len}", nx * ny)]
    GridShape {
        /// Cells along x.
        nx: usize,
        /// Cells along y.
        ny: usize,
        /// Number of values given.
        len: usize,
    },
    /// A stack of images does not hold `n·h·w` pixels.
    #[error("{n} images of {h}×{w} need {} pixels, got {len}", n.saturating_mul(*h).saturating_mul(*w))]
    ImageShape {
        /// Number of images.
        n: usize,
        /// Image height.
        h: usize,
        /// Image width.
        w: usize,
        /// Number of pixels given.
        len: usize,
    },
    /// A heat-map value is NaN or +∞ (−∞, a zero density, is allowed).
    #[error("grid value {index} is {value}; only finite values and -inf are allowed")]
    GridValue {
        /// Index into `values`.
        index: usize,
        /// The offending value.
        value: f64,
    },
    /// An option is out of its valid range.
    #[error("option {name} = {value} is out of range: {expected}")]
    Option {
        /// The option (field of [`super::PlotOptions`], or of a [`super::Grid`]).
        name: &'static str,
        /// Its value, as written.
        value: String,
        /// The valid range, in words.
        expected: &'static str,
    },
    /// The destination's extension is not a supported format.
    #[error("unsupported extension {got:?}; expected {expected}")]
    Extension {
        /// The extension given (empty if none).
        got: String,
        /// The supported formats, in words.
        expected: &'static str,
    },
    /// The file (or a temporary file beside it, or the frame folder) could not be written.
    #[error("cannot {op}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// plotters failed while drawing or encoding.
    #[error("drawing failed")]
    Draw {
        /// plotters' error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The embedded font could not be loaded (a build problem, not a user error).
    #[error("the embedded font could not be loaded")]
    Font,
}
