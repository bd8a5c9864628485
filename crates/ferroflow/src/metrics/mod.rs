//! Metrics: exact W2, MMD, straightness of trajectories, and the evaluation of samples against
//! a reference (`ferroflow eval`).
//!
//! - [`w2`]: exact 2-Wasserstein distance between two equal-size point sets.
//! - [`mmd`]: squared maximum mean discrepancy with a sum of RBF kernels.
//! - [`kinetic_energy`], [`straightness`]: of sampled trajectories (Liu et al. 2022).
//! - [`evaluate`]: W2 against fresh reference draws next to the two-sample floor, and MMD.
//! - [`frechet_distance`]: Fréchet distance between Gaussians fitted to two feature sets
//!   (Heusel et al. 2017).
//! - [`DigitClassifier`], [`train_classifier`]: a small CNN on digits, for
//!   [`evaluate_digits`]: accuracy on the requested digit and FD in its features, next to the
//!   real-vs-real FD at the same count ([`evaluate_unconditional_digits`] for samples drawn
//!   without a class: FD and the share of each digit).

pub mod classifier;
mod digits;
mod eval;
mod frechet;
mod mmd;
mod straightness;
mod w2;

pub use classifier::{
    ClassifierConfig, ClassifierEpoch, ClassifierTrainConfig, DigitClassifier, N_CLASSES, train_classifier,
};
pub use digits::{
    DigitReport, UnconditionalReport, balanced_subset, evaluate_digits, evaluate_unconditional_digits, random_subset,
    subset_with_counts,
};
pub use eval::{EvalConfig, EvalReport, Reference, evaluate};
pub use frechet::{FrechetError, frechet_distance};
pub use mmd::{MMD_BANDWIDTH_FACTORS, median_bandwidths, median_pairwise_distance, mmd};
pub use straightness::{kinetic_energy, straightness};
pub use w2::w2;

use crate::data::Points;

/// Checks that two point sets have the same dimension (and, if `same_n`, the same size) and
/// at least `min_n` points each.
fn check_pair(op: &'static str, a: &Points, b: &Points, same_n: bool, min_n: usize) -> crate::Result<()> {
    let bad = a.dim != b.dim || (same_n && a.n != b.n) || a.n < min_n || b.n < min_n;
    if bad {
        let need = if same_n { "two sets of equal size and dimension" } else { "two sets of equal dimension" };
        return Err(crate::Error::Shape {
            op,
            expected: format!("{need}, each with at least {min_n} points"),
            got: format!("{}×{} and {}×{}", a.n, a.dim, b.n, b.dim),
        });
    }
    Ok(())
}

/// Squared Euclidean distance between two rows, in f64.
fn sq_dist(x: &[f32], y: &[f32]) -> f64 {
    x.iter().zip(y).map(|(a, b)| (f64::from(*a) - f64::from(*b)).powi(2)).sum()
}
