//! TEMP: replaced by the coupling branch at merge.
//!
//! Exact optimal transport between two equal-size point sets by the Hungarian algorithm
//! (Kuhn–Munkres with potentials, O(n³)).

use super::CouplingError;
use crate::data::Points;

/// The optimal assignment's mean squared Euclidean cost.
///
/// # Formula
/// min over permutations σ of (1/n) Σᵢ ‖aᵢ − b_σ(i)‖² (the squared W2 distance between the two
/// empirical measures).
///
/// # Shapes
/// `a: [n, dim]`, `b: [n, dim]`
///
/// # Errors
/// [`CouplingError::Invalid`] if the sets differ in size or dimension, or are empty.
pub fn transport_cost(a: &Points, b: &Points) -> Result<f64, CouplingError> {
    if a.n != b.n || a.dim != b.dim || a.n == 0 {
        return Err(CouplingError::Invalid(format!(
            "exact OT needs two non-empty sets of equal size and dimension, got {}×{} and {}×{}",
            a.n, a.dim, b.n, b.dim
        )));
    }
    let n = a.n;
    let cost = |i: usize, j: usize| -> f64 {
        a.row(i).iter().zip(b.row(j)).map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2)).sum()
    };
    let c: Vec<f64> = (0..n * n).map(|k| cost(k / n, k % n)).collect();
    let assignment = hungarian(&c, n);
    Ok(assignment.iter().enumerate().map(|(i, &j)| c[i * n + j]).sum::<f64>() / n as f64)
}

/// The minimum-cost assignment row → column of an n × n row-major cost matrix.
fn hungarian(c: &[f64], n: usize) -> Vec<usize> {
    // 1-based arrays; column 0 is a virtual start. u, v: dual potentials; p[j]: row matched to j.
    let mut u = vec![0.0f64; n + 1];
    let mut v = vec![0.0f64; n + 1];
    let mut p = vec![0usize; n + 1];
    let mut way = vec![0usize; n + 1];
    for i in 1..=n {
        p[0] = i;
        let mut j0 = 0;
        let mut minv = vec![f64::INFINITY; n + 1];
        let mut used = vec![false; n + 1];
        loop {
            used[j0] = true;
            let i0 = p[j0];
            let mut delta = f64::INFINITY;
            let mut j1 = 0;
            for j in 1..=n {
                if !used[j] {
                    let cur = c[(i0 - 1) * n + (j - 1)] - u[i0] - v[j];
                    if cur < minv[j] {
                        minv[j] = cur;
                        way[j] = j0;
                    }
                    if minv[j] < delta {
                        delta = minv[j];
                        j1 = j;
                    }
                }
            }
            for j in 0..=n {
                if used[j] {
                    u[p[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
            if p[j0] == 0 {
                break;
            }
        }
        loop {
            let j1 = way[j0];
            p[j0] = p[j1];
            j0 = j1;
            if j0 == 0 {
                break;
            }
        }
    }
    let mut assignment = vec![0; n];
    for j in 1..=n {
        assignment[p[j] - 1] = j - 1;
    }
    assignment
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Brute force over all permutations (Heap's algorithm).
    fn brute(a: &Points, b: &Points) -> f64 {
        let n = a.n;
        let mut perm: Vec<usize> = (0..n).collect();
        let cost = |perm: &[usize]| -> f64 {
            (0..n)
                .map(|i| {
                    a.row(i)
                        .iter()
                        .zip(b.row(perm[i]))
                        .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
                        .sum::<f64>()
                })
                .sum::<f64>()
                / n as f64
        };
        let mut best = cost(&perm);
        let mut c = vec![0; n];
        let mut i = 0;
        while i < n {
            if c[i] < i {
                if i % 2 == 0 {
                    perm.swap(0, i)
                } else {
                    perm.swap(c[i], i)
                }
                best = best.min(cost(&perm));
                c[i] += 1;
                i = 0;
            } else {
                c[i] = 0;
                i += 1;
            }
        }
        best
    }

    #[test]
    fn hungarian_matches_brute_force_for_n_up_to_7() {
        let mut rng = crate::rng::seeded(1);
        for n in 1..=7 {
            for _ in 0..5 {
                let a = Points::new(crate::rng::normal_vec(&mut rng, 2 * n), n, 2).unwrap();
                let b = Points::new(crate::rng::normal_vec(&mut rng, 2 * n), n, 2).unwrap();
                let (h, bf) = (transport_cost(&a, &b).unwrap(), brute(&a, &b));
                // both sum the same f64 costs in different orders: rounding only
                assert!((h - bf).abs() < 1e-9 * bf.max(1.0), "n={n}: {h} vs {bf}");
            }
        }
    }
}
