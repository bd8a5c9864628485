//! The independent coupling q(x₀, x₁) = p₀(x₀) p₁(x₁).
//!
//! # Formula
//! i0 = i1 = (0, 1, …, n − 1): the trainer draws the source and the data batches independently,
//! so pairing row k with row k is already a draw from the product measure (Lipman et al. 2023,
//! "Flow matching for generative modeling", §4; Tong et al. 2023, §3.2, the "I-CFM" baseline).

use super::{CouplingError, Pairing};
use crate::data::Points;

/// The identity pairing of two independently drawn batches of equal size.
///
/// # Shapes
/// `x0, x1: [n, dim]` → `i0, i1: [n]`
/// # Errors
/// [`CouplingError::SizeMismatch`] or [`CouplingError::DimMismatch`].
///
/// ```
/// use ferroflow::{coupling::independent::pairing, data::Points};
/// let x = Points::new(vec![0.0; 6], 3, 2).unwrap();
/// assert_eq!(pairing(&x, &x).unwrap().i1, vec![0, 1, 2]);
/// ```
pub fn pairing(x0: &Points, x1: &Points) -> Result<Pairing, CouplingError> {
    if x0.n != x1.n {
        return Err(CouplingError::SizeMismatch { n0: x0.n, n1: x1.n });
    }
    if x0.dim != x1.dim {
        return Err(CouplingError::DimMismatch { d0: x0.dim, d1: x1.dim });
    }
    Ok(Pairing::identity(x0.n))
}
