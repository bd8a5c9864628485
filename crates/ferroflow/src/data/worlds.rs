//! The 2D worlds.

/// A named 2D distribution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum World {
    /// N(0, I₂).
    Gaussian,
}
