//! The Fréchet distance between two feature sets, each summarised by a Gaussian (the "FID"
//! formula of Heusel et al. 2017, applied to any features).

use nalgebra::{DMatrix, DVector, SymmetricEigen};

/// Why a Fréchet distance could not be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FrechetError {
    /// A feature dimension of 0.
    #[error("Fréchet distance: the feature dimension must be at least 1, got {d}")]
    ZeroDimension {
        /// The dimension given.
        d: usize,
    },
    /// A set's length is not a multiple of the dimension.
    #[error("Fréchet distance: set {set} holds {len} values, not a multiple of the dimension {d}")]
    Ragged {
        /// `"a"` or `"b"`.
        set: &'static str,
        /// Its number of values.
        len: usize,
        /// The dimension.
        d: usize,
    },
    /// A set has fewer than two rows (its covariance is undefined).
    #[error("Fréchet distance: set {set} has {n} rows; a covariance needs at least 2")]
    TooFewRows {
        /// `"a"` or `"b"`.
        set: &'static str,
        /// Its number of rows.
        n: usize,
    },
    /// A set holds a NaN or an infinity.
    #[error("Fréchet distance: set {set} holds the non-finite value {value} at index {index}")]
    NonFinite {
        /// `"a"` or `"b"`.
        set: &'static str,
        /// The first bad index (row-major).
        index: usize,
        /// The value there.
        value: f32,
    },
}

/// Fréchet (2-Wasserstein) distance between the Gaussians fitted to two feature sets.
///
/// # Formula
/// FD = ‖μa − μb‖² + tr(Σa + Σb − 2 (Σa^{1/2} Σb Σa^{1/2})^{1/2})
///
/// with the sample means μ and the unbiased sample covariances Σ (divisor n − 1, as `np.cov`
/// and pytorch-fid). This is the squared 2-Wasserstein distance between N(μa, Σa) and
/// N(μb, Σb) (Dowson & Landau 1982); Heusel et al. 2017 ("GANs trained by a two time-scale
/// update rule converge to a local Nash equilibrium", eq. 6) use it on Inception features as
/// the FID. tr((Σa Σb)^{1/2}) (pytorch-fid's `sqrtm(sigma1 @ sigma2)`) equals the trace here.
///
/// Computed in f64 with two symmetric eigendecompositions (nalgebra's `SymmetricEigen`):
/// Σa = V diag(λ) Vᵀ gives Σa^{1/2} = V diag(√λ) Vᵀ, and the trace of the square root of the
/// symmetric positive semi-definite M = Σa^{1/2} Σb Σa^{1/2} is Σᵢ √μᵢ over M's eigenvalues.
/// Eigenvalues that rounding makes slightly negative are clamped to 0, and so is the result.
///
/// # Shapes
/// `a: [n, d]`, `b: [m, d]`, row-major; n and m may differ.
///
/// FD grows as the count falls (the sample covariances' noise adds to it): compare only at
/// equal counts, next to the real-vs-real figure at that count (MEASURING.md).
///
/// # Errors
/// [`FrechetError`] for d = 0, a length that is not a multiple of d, fewer than 2 rows in a
/// set, or a non-finite value.
///
/// ```
/// use ferroflow::metrics::frechet_distance;
/// // Two point sets of N(0, 1)-like spread, one shifted by 3 in x: FD = 3² (equal covariances).
/// let a = [-1.0f32, 0.0, 1.0, 0.0, 0.0, -1.0, 0.0, 1.0];
/// let b: Vec<f32> = a.chunks(2).flat_map(|r| [r[0] + 3.0, r[1]]).collect();
/// let fd = frechet_distance(&a, &b, 2).unwrap();
/// assert!((fd - 9.0).abs() < 1e-12);
/// ```
pub fn frechet_distance(a: &[f32], b: &[f32], d: usize) -> Result<f64, FrechetError> {
    let (mu_a, cov_a) = mean_and_covariance("a", a, d)?;
    let (mu_b, cov_b) = mean_and_covariance("b", b, d)?;
    let mean_term = (&mu_a - &mu_b).norm_squared();
    let sqrt_a = psd_sqrt(cov_a.clone());
    let m = &sqrt_a * &cov_b * &sqrt_a;
    // Exactly symmetric, so the eigensolver (which reads one triangle) sees the true matrix.
    let m = (&m + m.transpose()) * 0.5;
    let tr_sqrt: f64 = SymmetricEigen::new(m).eigenvalues.iter().map(|&l| l.max(0.0).sqrt()).sum();
    Ok((mean_term + cov_a.trace() + cov_b.trace() - 2.0 * tr_sqrt).max(0.0))
}

/// Sample mean and unbiased sample covariance of the rows of `x: [n, d]`, in f64.
fn mean_and_covariance(set: &'static str, x: &[f32], d: usize) -> Result<(DVector<f64>, DMatrix<f64>), FrechetError> {
    if d == 0 {
        return Err(FrechetError::ZeroDimension { d });
    }
    if !x.len().is_multiple_of(d) {
        return Err(FrechetError::Ragged { set, len: x.len(), d });
    }
    let n = x.len() / d;
    if n < 2 {
        return Err(FrechetError::TooFewRows { set, n });
    }
    if let Some(index) = x.iter().position(|v| !v.is_finite()) {
        return Err(FrechetError::NonFinite { set, index, value: x[index] });
    }
    // Rows of x are columns of this d × n matrix (nalgebra is column-major).
    let xm = DMatrix::from_iterator(d, n, x.iter().map(|&v| f64::from(v)));
    let mean = xm.column_mean();
    let mut centred = xm;
    for mut col in centred.column_iter_mut() {
        col -= &mean;
    }
    let cov = (&centred * centred.transpose()) / (n as f64 - 1.0);
    Ok((mean, cov))
}

/// The square root of a symmetric positive semi-definite matrix, V diag(√max(λ, 0)) Vᵀ.
fn psd_sqrt(s: DMatrix<f64>) -> DMatrix<f64> {
    let eig = SymmetricEigen::new(s);
    let root = eig.eigenvalues.map(|l| l.max(0.0).sqrt());
    &eig.eigenvectors * DMatrix::from_diagonal(&root) * eig.eigenvectors.transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{normal_vec, seeded};

    /// n draws of N(mu, C) with C = R diag(var) Rᵀ, R a rotation by `angle` in the (0, 1) plane.
    fn gaussian(n: usize, mu: &[f64], var: &[f64], angle: f64, seed: u64) -> Vec<f32> {
        let d = mu.len();
        let z = normal_vec(&mut seeded(seed), n * d);
        let (c, s) = (angle.cos(), angle.sin());
        let mut out = Vec::with_capacity(n * d);
        for row in z.chunks(d) {
            let y: Vec<f64> = row.iter().zip(var).map(|(&z, &v)| f64::from(z) * v.sqrt()).collect();
            for i in 0..d {
                let rotated = match i {
                    0 => c * y[0] - s * y[1],
                    1 => s * y[0] + c * y[1],
                    _ => y[i],
                };
                out.push((rotated + mu[i]) as f32);
            }
        }
        out
    }

    /// Closed form for commuting covariances with the same eigenvectors:
    /// Σᵢ (√aᵢ − √bᵢ)² + ‖Δμ‖².
    fn commuting_fd(mu_a: &[f64], var_a: &[f64], mu_b: &[f64], var_b: &[f64]) -> f64 {
        let cov: f64 = var_a.iter().zip(var_b).map(|(a, b)| (a.sqrt() - b.sqrt()).powi(2)).sum();
        let mean: f64 = mu_a.iter().zip(mu_b).map(|(a, b)| (a - b).powi(2)).sum();
        cov + mean
    }

    #[test]
    fn gaussians_match_the_closed_form() {
        let (mu_a, var_a) = ([0.0, 1.0, -2.0], [1.0, 4.0, 0.25]);
        let (mu_b, var_b) = ([1.5, -1.0, 0.0], [9.0, 1.0, 2.0]);
        let exact = commuting_fd(&mu_a, &var_a, &mu_b, &var_b);
        let n = 200_000;
        // Diagonal covariances, and both rotated by the same angle (still commuting).
        for angle in [0.0, 0.7] {
            let a = gaussian(n, &mu_a, &var_a, angle, 1);
            let b = gaussian(n, &mu_b, &var_b, angle, 2);
            let fd = frechet_distance(&a, &b, 3).unwrap();
            // Sample means/covariances err by O(σ/√n) ≈ 0.007 per entry; a 1 % tolerance on
            // FD ≈ 9.6 is several standard errors yet far below any wrong-formula error (e.g.
            // dropping the cross term changes FD by > 5).
            assert!((fd - exact).abs() < 0.01 * exact, "angle {angle}: FD {fd}, closed form {exact}");
        }
    }

    #[test]
    fn non_commuting_covariances_differ_from_the_naive_formula() {
        // Σa = diag(4, 1) and Σb the same spectrum rotated by 45°: they do not commute, so the
        // cross term needs the matrix square root (the exact value from the population matrices).
        let n = 200_000;
        let a = gaussian(n, &[0.0, 0.0], &[4.0, 1.0], 0.0, 3);
        let b = gaussian(n, &[0.0, 0.0], &[4.0, 1.0], std::f64::consts::FRAC_PI_4, 4);
        // Σb = [[2.5, 1.5], [1.5, 2.5]], Σa^{1/2} = diag(2, 1), M = [[10, 3], [3, 2.5]],
        // tr √M = √(tr M + 2√det M) = √(12.5 + 2√16) = √20.5.
        let exact = 5.0 + 5.0 - 2.0 * 20.5f64.sqrt();
        let fd = frechet_distance(&a, &b, 2).unwrap();
        // Same sampling error as above (≈ 0.01 absolute at n = 200k); exact ≈ 0.945.
        assert!((fd - exact).abs() < 0.03, "FD {fd}, exact {exact}");
        // The commuting formula on the eigenvalues would give 0: the rotation matters.
        assert!(fd > 0.8);
    }

    #[test]
    fn distance_to_itself_is_zero_and_symmetric() {
        let a = gaussian(500, &[1.0, 2.0, 3.0, 4.0], &[1.0, 2.0, 3.0, 0.5], 0.3, 5);
        let b = gaussian(300, &[0.0, 2.0, 3.0, 5.0], &[2.0, 2.0, 1.0, 0.5], 1.1, 6);
        // FD(x, x) = 0 up to f64 rounding of eigendecompositions of a 4×4 matrix with trace ≈ 7.
        assert!(frechet_distance(&a, &a, 4).unwrap().abs() < 1e-9);
        let ab = frechet_distance(&a, &b, 4).unwrap();
        let ba = frechet_distance(&b, &a, 4).unwrap();
        // FD is symmetric in exact arithmetic; the two orders take different roundings.
        assert!((ab - ba).abs() < 1e-9 * ab.max(1.0), "{ab} vs {ba}");
        assert!(ab > 1.0);
    }

    #[test]
    fn matches_scipy_sqrtm_golden() {
        #[derive(serde::Deserialize)]
        struct Golden {
            d: usize,
            a: Vec<f32>,
            b: Vec<f32>,
            fd: f64,
        }
        // Made by tests/fixtures/frechet/frechet_golden.py (scipy.linalg.sqrtm).
        let g: Golden =
            serde_json::from_str(include_str!("../../tests/fixtures/frechet/golden.json")).expect("golden json");
        let fd = frechet_distance(&g.a, &g.b, g.d).unwrap();
        // Both in f64 from the same f32 inputs; sqrtm's Schur method and the eigen route agree
        // to ~1e-12 relative on a well-conditioned 4×4 problem.
        assert!((fd - g.fd).abs() < 1e-9 * g.fd, "ferroflow {fd}, scipy {}", g.fd);
    }

    #[test]
    fn bad_inputs_are_errors() {
        let ok = [0.0f32, 1.0, 2.0, 3.0];
        assert_eq!(frechet_distance(&ok, &ok, 0), Err(FrechetError::ZeroDimension { d: 0 }));
        assert_eq!(frechet_distance(&ok, &ok[..3], 2), Err(FrechetError::Ragged { set: "b", len: 3, d: 2 }));
        assert_eq!(frechet_distance(&ok[..2], &ok, 2), Err(FrechetError::TooFewRows { set: "a", n: 1 }));
        let nan = [0.0f32, 1.0, f32::NAN, 3.0];
        assert!(matches!(frechet_distance(&ok, &nan, 2), Err(FrechetError::NonFinite { set: "b", index: 2, .. })));
    }
}
