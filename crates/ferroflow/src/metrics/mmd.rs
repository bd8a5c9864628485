use super::{check_pair, sq_dist};
use crate::data::Points;
use crate::error::ConfigError;

/// The bandwidth factors of [`median_bandwidths`]: multiples of the median pairwise distance.
///
/// A spread from a tenth to five times the typical distance makes MMD sensitive both to
/// local detail (thin rings, sharp squares) and to the global layout.
pub const MMD_BANDWIDTH_FACTORS: [f64; 6] = [0.1, 0.2, 0.5, 1.0, 2.0, 5.0];

/// Points used by [`median_pairwise_distance`]: the first this many rows.
const MEDIAN_MAX_POINTS: usize = 1000;

/// The median Euclidean distance between distinct rows among the first 1,000 rows of `points`
/// (0 if it has fewer than two rows). Deterministic: no random subset.
///
/// ```
/// use ferroflow::data::Points;
/// // pairwise distances of {0, 1, 3}: 1, 3, 2 → median 2
/// let p = Points::new(vec![0.0, 1.0, 3.0], 3, 1).unwrap();
/// assert_eq!(ferroflow::metrics::median_pairwise_distance(&p), 2.0);
/// ```
pub fn median_pairwise_distance(points: &Points) -> f64 {
    let m = points.n.min(MEDIAN_MAX_POINTS);
    let mut d = Vec::with_capacity(m * m.saturating_sub(1) / 2);
    for i in 0..m {
        for j in i + 1..m {
            d.push(sq_dist(points.row(i), points.row(j)).sqrt());
        }
    }
    if d.is_empty() {
        return 0.0;
    }
    let (k, odd) = (d.len() / 2, d.len() % 2 == 1);
    let (lower, mid, _) = d.select_nth_unstable_by(k, f64::total_cmp);
    let mid = *mid;
    if odd {
        mid
    } else {
        // the lower middle is the largest value below the upper one
        0.5 * (lower.iter().copied().fold(f64::NEG_INFINITY, f64::max) + mid)
    }
}

/// The default MMD bandwidths for a reference set: [`MMD_BANDWIDTH_FACTORS`] × the median
/// pairwise distance of `reference` ([`median_pairwise_distance`]; scale 1 if every point
/// coincides, so that each bandwidth stays positive).
pub fn median_bandwidths(reference: &Points) -> Vec<f64> {
    let med = median_pairwise_distance(reference);
    let scale = if med > 0.0 && med.is_finite() { med } else { 1.0 };
    MMD_BANDWIDTH_FACTORS.iter().map(|f| f * scale).collect()
}

/// Squared maximum mean discrepancy, unbiased U-statistic, with a sum of RBF kernels.
///
/// # Formula
/// k(x, y) = Σ_h exp(−‖x − y‖² / (2h²)) over the bandwidths h;
/// MMD²ᵤ = 1/(m(m−1)) Σ_{i≠j} k(aᵢ, aⱼ) + 1/(n(n−1)) Σ_{i≠j} k(bᵢ, bⱼ) − 2/(mn) Σᵢⱼ k(aᵢ, bⱼ)
/// (Gretton et al. 2012, "A Kernel Two-Sample Test", JMLR 13, eq. 3). Its expectation is 0
/// when a and b come from the same distribution, so it can be slightly negative.
///
/// # Shapes
/// `a: [m, dim]`, `b: [n, dim]`, m, n ≥ 2. Cost O((m + n)² · dim · #bandwidths).
///
/// # Errors
/// [`crate::Error::Shape`] if the dimensions differ or a set has fewer than 2 points;
/// [`ConfigError::OutOfRange`] if `bandwidths` is empty or one is not finite and > 0.
///
/// ```
/// use ferroflow::data::Points;
/// // a = {0, 1}, b = {3, 5}, h = 1: e^{−1/2} + e^{−2} − ½(e^{−9/2} + e^{−25/2} + e^{−2} + e^{−8})
/// let a = Points::new(vec![0.0, 1.0], 2, 1).unwrap();
/// let b = Points::new(vec![3.0, 5.0], 2, 1).unwrap();
/// let e = |x: f64| x.exp();
/// let want = e(-0.5) + e(-2.0) - 0.5 * (e(-4.5) + e(-12.5) + e(-2.0) + e(-8.0));
/// assert!((ferroflow::metrics::mmd(&a, &b, &[1.0]).unwrap() - want).abs() < 1e-15);
/// ```
pub fn mmd(a: &Points, b: &Points, bandwidths: &[f64]) -> crate::Result<f64> {
    check_pair("mmd", a, b, false, 2)?;
    if bandwidths.is_empty() || bandwidths.iter().any(|h| !(h.is_finite() && *h > 0.0)) {
        return Err(ConfigError::OutOfRange {
            name: "mmd bandwidths",
            value: format!("{bandwidths:?}"),
            expected: "a non-empty list of finite values > 0",
        }
        .into());
    }
    let gammas: Vec<f64> = bandwidths.iter().map(|h| -0.5 / (h * h)).collect();
    let k = |x: &[f32], y: &[f32]| -> f64 {
        let d2 = sq_dist(x, y);
        gammas.iter().map(|g| (g * d2).exp()).sum()
    };
    let within = |p: &Points| -> f64 {
        let mut s = 0.0;
        for i in 0..p.n {
            for j in i + 1..p.n {
                s += k(p.row(i), p.row(j));
            }
        }
        2.0 * s / (p.n as f64 * (p.n as f64 - 1.0))
    };
    let mut cross = 0.0;
    for i in 0..a.n {
        for j in 0..b.n {
            cross += k(a.row(i), b.row(j));
        }
    }
    Ok(within(a) + within(b) - 2.0 * cross / (a.n as f64 * b.n as f64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::World;
    use crate::rng::seeded;

    #[test]
    fn mmd_is_zero_within_its_spread_for_one_distribution_and_large_for_a_shift() {
        let (n, reps) = (200, 20);
        let bw = median_bandwidths(&World::Moons.sample_points(n, &mut seeded(100)));
        let mut rng = seeded(1);
        let same: Vec<f64> = (0..reps)
            .map(|_| {
                mmd(&World::Moons.sample_points(n, &mut rng), &World::Moons.sample_points(n, &mut rng), &bw).unwrap()
            })
            .collect();
        let mean = same.iter().sum::<f64>() / reps as f64;
        let sd = (same.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (reps as f64 - 1.0)).sqrt();
        // unbiased: the mean of 20 draws lies within 4 standard errors of 0
        assert!(mean.abs() < 4.0 * sd / (reps as f64).sqrt(), "mean {mean}, sd {sd}");
        let mut shifted = World::Moons.sample_points(n, &mut rng);
        shifted.data.iter_mut().step_by(2).for_each(|x| *x += 1.0);
        let d = mmd(&shifted, &World::Moons.sample_points(n, &mut rng), &bw).unwrap();
        // a shift of 1 (a third of a moon's width) stands far above the same-distribution spread
        assert!(d > mean + 10.0 * sd, "shifted {d}, same {mean} ± {sd}");
    }

    #[test]
    fn mmd_sums_kernels_over_bandwidths_and_is_symmetric() {
        let a = Points::new(vec![0.0, 0.0, 1.0, 0.5, -1.0, 2.0], 3, 2).unwrap();
        let b = Points::new(vec![0.2, 0.1, 3.0, 1.0], 2, 2).unwrap();
        let (m1, m2) = (mmd(&a, &b, &[0.5]).unwrap(), mmd(&a, &b, &[2.0]).unwrap());
        // the statistic is linear in the kernel, so bandwidth sets add up
        assert!((mmd(&a, &b, &[0.5, 2.0]).unwrap() - (m1 + m2)).abs() < 1e-14);
        assert!((mmd(&b, &a, &[0.5]).unwrap() - m1).abs() < 1e-15);
        assert!(mmd(&a, &b, &[]).is_err());
        assert!(mmd(&a, &b, &[0.0]).is_err());
        assert!(mmd(&a.head(1), &b, &[1.0]).is_err());
    }

    #[test]
    fn median_distance_of_even_pair_count_averages_the_two_middles() {
        // {0, 1, 3, 7}: distances 1, 3, 7, 2, 6, 4 → sorted 1 2 3 4 6 7 → median 3.5
        let p = Points::new(vec![0.0, 1.0, 3.0, 7.0], 4, 1).unwrap();
        assert!((median_pairwise_distance(&p) - 3.5).abs() < 1e-12);
        let bw = median_bandwidths(&Points::new(vec![2.0; 4], 2, 2).unwrap());
        assert_eq!(bw, MMD_BANDWIDTH_FACTORS.to_vec());
    }
}
