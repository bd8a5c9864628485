//! Entropic optimal transport by log-domain Sinkhorn iterations, and pairs drawn from the plan.
//!
//! # Formula
//! P* = argmin_{P ∈ Π(a, b)} ⟨P, C⟩ − ε_abs H(P),  Cᵢⱼ = ‖x0ᵢ − x1ⱼ‖²,  aᵢ = 1/n, bⱼ = 1/m,
//! with ε_abs = ε · mean(C) (ε is **relative to the mean cost**, so the same ε means the same
//! amount of blur whatever the data's scale). In the log domain (Peyré & Cuturi 2019,
//! "Computational optimal transport", §4.4, eq. 4.43; Schmitzer 2019) with potentials f, g:
//!
//! fᵢ ← ε_abs (ln aᵢ − LSEⱼ((gⱼ − Cᵢⱼ)/ε_abs)),  gⱼ ← ε_abs (ln bⱼ − LSEᵢ((fᵢ − Cᵢⱼ)/ε_abs)),
//! Pᵢⱼ = exp((fᵢ + gⱼ − Cᵢⱼ)/ε_abs),
//!
//! which never overflows or underflows to a zero row however small ε is. After each g update
//! the column marginals are exact; iterations stop when the row marginals' L1 error
//! Σᵢ |Σⱼ Pᵢⱼ − aᵢ| is below `tol`, or after `max_iters` iterations.
//! As ε → 0, ⟨P*, C⟩ tends to the exact OT cost; as ε → ∞, P* → a bᵀ (independent).
//!
//! # Pairing
//! [`pairing`] keeps every x1 row once and draws its partner from the plan's conditional:
//! for each column j, i ~ Pᵢⱼ / Σᵢ Pᵢⱼ. torchcfm's `OTPlanSampler` instead draws n pairs from
//! the flattened plan with replacement, which repeats some data points and drops others
//! (≈ 1/e of the batch). Drawing per column gives the same pair distribution (the column
//! marginal of P* is uniform, so j ~ bⱼ then i ~ P(i | j) is a draw from P*), while using each
//! data point — and so each class label — exactly once, like the exact couplings.

use rand::Rng as _;

use super::exact_ot::{check_finite_dims, cost_matrix};
use super::{CouplingError, Pairing};
use crate::data::Points;
use crate::rng::Rng;

/// A dense transport plan between n source and m data points.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Rows (source points).
    pub n: usize,
    /// Columns (data points).
    pub m: usize,
    /// Row-major masses Pᵢⱼ, summing to 1.
    pub p: Vec<f64>,
    /// Its transport cost ⟨P, C⟩ = Σᵢⱼ Pᵢⱼ ‖x0ᵢ − x1ⱼ‖² (without the entropy term).
    pub cost: f64,
    /// The absolute regularisation used, ε · mean(C).
    pub epsilon_abs: f64,
    /// Iterations run.
    pub iters: usize,
    /// The final row-marginal L1 error Σᵢ |Σⱼ Pᵢⱼ − 1/n| (the columns are exact).
    pub marginal_error: f64,
}

impl Plan {
    /// Σⱼ Pᵢⱼ for each row i.
    pub fn row_sums(&self) -> Vec<f64> {
        self.p.chunks_exact(self.m.max(1)).take(self.n).map(|r| r.iter().sum()).collect()
    }

    /// Σᵢ Pᵢⱼ for each column j.
    pub fn col_sums(&self) -> Vec<f64> {
        let mut s = vec![0.0; self.m];
        for r in self.p.chunks_exact(self.m.max(1)).take(self.n) {
            for (sj, &pj) in s.iter_mut().zip(r) {
                *sj += pj;
            }
        }
        s
    }
}

/// ln Σ exp(zₖ), computed stably from the terms' maximum.
fn log_sum_exp(max: f64, sum_shifted: f64) -> f64 {
    max + sum_shifted.ln()
}

/// The entropic OT plan between two point sets (uniform weights), by log-domain Sinkhorn.
///
/// # Formula
/// See the module docs; ε_abs = `epsilon` · mean ‖x0ᵢ − x1ⱼ‖² (or `epsilon` if all costs are 0).
/// # Shapes
/// `x0: [n, dim]`, `x1: [m, dim]` → `p: [n, m]`
/// # Errors
/// [`CouplingError::InvalidEpsilon`] unless `epsilon` is finite and > 0;
/// [`CouplingError::DimMismatch`], [`CouplingError::NonFinite`], [`CouplingError::TooLarge`]
/// (more than [`super::MAX_PLAN_POINTS`] points a side).
///
/// ```
/// use ferroflow::{coupling::sinkhorn::plan, data::Points};
/// let x0 = Points::new(vec![0.0, 1.0], 2, 1).unwrap();
/// let x1 = Points::new(vec![0.0, 1.0], 2, 1).unwrap();
/// let p = plan(&x0, &x1, 0.01, 1000, 1e-9).unwrap();
/// // ε small: nearly all mass on the diagonal, each 1/2.
/// assert!((p.p[0] - 0.5).abs() < 1e-9 && p.p[1] < 1e-9);
/// ```
pub fn plan(x0: &Points, x1: &Points, epsilon: f64, max_iters: usize, tol: f64) -> Result<Plan, CouplingError> {
    if !(epsilon > 0.0 && epsilon.is_finite()) {
        return Err(CouplingError::InvalidEpsilon { value: epsilon });
    }
    check_finite_dims(x0, x1)?;
    let (n, m) = (x0.n, x1.n);
    if n == 0 || m == 0 {
        return Ok(Plan { n, m, p: vec![], cost: 0.0, epsilon_abs: epsilon, iters: 0, marginal_error: 0.0 });
    }
    let c = cost_matrix(x0, x1)?;
    let mean = c.iter().sum::<f64>() / c.len() as f64;
    let eps = if mean > 0.0 { epsilon * mean } else { epsilon };
    let (la, lb) = (-(n as f64).ln(), -(m as f64).ln());
    let (a, inv) = (1.0 / n as f64, 1.0 / eps);
    let mut f = vec![0.0f64; n];
    let mut fnew = vec![0.0f64; n];
    let mut g = vec![0.0f64; m];
    let (mut colmax, mut colsum) = (vec![0.0f64; m], vec![0.0f64; m]);
    let mut iters = 0;
    while iters < max_iters {
        // f update; the row masses of the current plan (f, g) come from the same sums.
        let mut err = 0.0;
        for i in 0..n {
            let row = &c[i * m..(i + 1) * m];
            let mx = row.iter().zip(&g).fold(f64::NEG_INFINITY, |acc, (&cij, &gj)| acc.max(gj - cij));
            let s: f64 = row.iter().zip(&g).map(|(&cij, &gj)| ((gj - cij - mx) * inv).exp()).sum();
            let lse = log_sum_exp(mx * inv, s);
            err += ((f[i] * inv + lse).exp() - a).abs();
            fnew[i] = eps * (la - lse);
        }
        if iters > 0 && err < tol {
            // Keep (f, g): g was computed from f, so the columns are exact and the rows within tol.
            break;
        }
        std::mem::swap(&mut f, &mut fnew);
        // g update (row-major passes: per-column max, then per-column sums).
        colmax.fill(f64::NEG_INFINITY);
        for i in 0..n {
            let row = &c[i * m..(i + 1) * m];
            for (mj, &cij) in colmax.iter_mut().zip(row) {
                *mj = mj.max(f[i] - cij);
            }
        }
        colsum.fill(0.0);
        for i in 0..n {
            let row = &c[i * m..(i + 1) * m];
            for ((sj, &mj), &cij) in colsum.iter_mut().zip(&colmax).zip(row) {
                *sj += ((f[i] - cij - mj) * inv).exp();
            }
        }
        for j in 0..m {
            g[j] = eps * (lb - log_sum_exp(colmax[j] * inv, colsum[j]));
        }
        iters += 1;
    }
    // Every exit leaves g computed from f: the columns of P are exact.
    let mut p = vec![0.0f64; n * m];
    for i in 0..n {
        for j in 0..m {
            p[i * m + j] = ((f[i] + g[j] - c[i * m + j]) * inv).exp();
        }
    }
    let mut rows_err = 0.0;
    for i in 0..n {
        rows_err += (p[i * m..(i + 1) * m].iter().sum::<f64>() - a).abs();
    }
    let cost = p.iter().zip(&c).map(|(&pij, &cij)| pij * cij).sum();
    Ok(Plan { n, m, p, cost, epsilon_abs: eps, iters, marginal_error: rows_err })
}

/// Pairs drawn from the entropic OT plan: each x1 row j once, with x0 row i ~ Pᵢⱼ / Σᵢ Pᵢⱼ.
///
/// # Shapes
/// `x0: [n, dim]`, `x1: [m, dim]` → `i0, i1: [m]` (`i1 = 0..m`; `i0` may repeat rows)
/// # Errors
/// Those of [`plan`].
pub fn pairing(
    x0: &Points,
    x1: &Points,
    epsilon: f64,
    max_iters: usize,
    tol: f64,
    rng: &mut Rng,
) -> Result<Pairing, CouplingError> {
    let pl = plan(x0, x1, epsilon, max_iters, tol)?;
    let (n, m) = (pl.n, pl.m);
    let mut i0 = Vec::with_capacity(m);
    if n == 0 {
        return Ok(Pairing { i0, i1: vec![] });
    }
    for j in 0..m {
        let total: f64 = (0..n).map(|i| pl.p[i * m + j]).sum();
        let mut u = rng.random::<f64>() * total;
        let mut pick = n - 1;
        for i in 0..n {
            u -= pl.p[i * m + j];
            if u < 0.0 {
                pick = i;
                break;
            }
        }
        i0.push(pick);
    }
    Ok(Pairing { i0, i1: (0..m).collect() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coupling::exact_ot::transport_cost;
    use crate::rng::{normal_vec, seeded};

    fn cloud(n: usize, seed: u64) -> Points {
        Points::new(normal_vec(&mut seeded(seed), 2 * n), n, 2).unwrap()
    }

    #[test]
    fn marginals_match_to_tolerance() {
        let (x0, x1) = (cloud(30, 1), cloud(24, 2));
        let p = plan(&x0, &x1, 0.1, 5000, 1e-9).unwrap();
        assert!(p.iters < 5000, "converged");
        for r in p.row_sums() {
            // tol bounds the L1 error, so each row is within it.
            assert!((r - 1.0 / 30.0).abs() < 1e-9);
        }
        for c in p.col_sums() {
            // Columns are exact after a g update, up to rounding of 30 terms.
            assert!((c - 1.0 / 24.0).abs() < 1e-14);
        }
        assert!((p.p.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn cost_tends_to_the_exact_ot_cost_monotonically_as_epsilon_shrinks() {
        let (x0, x1) = (cloud(20, 3), cloud(20, 4));
        let exact = transport_cost(&x0, &x1).unwrap();
        let mut prev = f64::INFINITY;
        for eps in [1.0, 0.1, 0.03, 0.01] {
            // Sinkhorn converges slowly at small ε (rate ≈ 1 − e^(−max C/ε_abs)): 20k iterations
            // leave a row-marginal error of ~1e-4 at ε = 0.01, which the bound below allows for.
            let p = plan(&x0, &x1, eps, 20_000, 1e-6).unwrap();
            assert!(p.marginal_error < 1e-3, "eps {eps}: marginal error {}", p.marginal_error);
            // A plan with exact marginals never beats the exact optimum; moving the row-marginal
            // error's mass costs at most marginal_error · max C (< 100 here).
            assert!(p.cost >= exact - 100.0 * p.marginal_error, "eps {eps}: {} < {exact}", p.cost);
            assert!(p.cost < prev, "eps {eps}: {} !< {prev}", p.cost);
            prev = p.cost;
        }
        // At ε = 0.01 of the mean cost the entropic bias is small.
        assert!((prev - exact) / exact < 0.05, "{prev} vs {exact}");
    }

    #[test]
    fn large_epsilon_gives_the_independent_plan() {
        let (x0, x1) = (cloud(10, 5), cloud(8, 6));
        let p = plan(&x0, &x1, 1e4, 1000, 1e-12).unwrap();
        for &pij in &p.p {
            // exp(−C/ε_abs) with C/ε_abs ≲ 1e-3: within 1e-3 relative of 1/(n m).
            assert!((pij * 80.0 - 1.0).abs() < 2e-3, "{pij}");
        }
    }

    #[test]
    fn pairing_keeps_each_data_row_once_and_follows_the_plan() {
        let (x0, x1) = (cloud(16, 7), cloud(16, 8));
        let mut rng = seeded(9);
        let pr = pairing(&x0, &x1, 1e-3, 100_000, 1e-10, &mut rng).unwrap();
        assert_eq!(pr.i1, (0..16).collect::<Vec<_>>());
        // At tiny ε the plan is (nearly) the exact permutation.
        let sigma = crate::coupling::exact_ot::plan(&x0, &x1).unwrap();
        let mut inv = vec![0; 16];
        for (i, &j) in sigma.iter().enumerate() {
            inv[j] = i;
        }
        let agree = pr.i0.iter().zip(&inv).filter(|(a, b)| a == b).count();
        assert!(agree >= 15, "{agree}/16 pairs agree with exact OT");
    }

    #[test]
    fn bad_epsilon_and_nan_points_are_errors() {
        let (x0, x1) = (cloud(4, 1), cloud(4, 2));
        assert!(matches!(plan(&x0, &x1, 0.0, 10, 1e-6), Err(CouplingError::InvalidEpsilon { .. })));
        let mut bad = x1.clone();
        bad.data[3] = f32::NAN;
        assert!(matches!(plan(&x0, &bad, 0.1, 10, 1e-6), Err(CouplingError::NonFinite { set: "x1", row: 1, .. })));
    }
}
