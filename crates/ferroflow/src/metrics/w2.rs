use super::check_pair;
use crate::data::Points;

/// The exact 2-Wasserstein distance between two equal-size point sets (uniform weights).
///
/// # Formula
/// W2(a, b) = √( min over permutations σ of (1/n) Σᵢ ‖aᵢ − b_σ(i)‖² ): for equal-size uniform
/// empirical measures an optimal plan is a permutation (Birkhoff–von Neumann), found exactly by
/// [`crate::coupling::exact_ot::transport_cost`].
///
/// # Shapes
/// `a: [n, dim]`, `b: [n, dim]`
///
/// # Errors
/// [`crate::Error::Shape`] if the sizes or dimensions differ or a set is empty.
///
/// ```
/// use ferroflow::data::Points;
/// // {0, 1} to {1, 3}: the best pairing is 0→1, 1→3, costs 1 and 4, W2 = √(5/2)
/// let a = Points::new(vec![0.0, 1.0], 2, 1).unwrap();
/// let b = Points::new(vec![3.0, 1.0], 2, 1).unwrap();
/// assert!((ferroflow::metrics::w2(&a, &b).unwrap() - 2.5f64.sqrt()).abs() < 1e-12);
/// ```
pub fn w2(a: &Points, b: &Points) -> crate::Result<f64> {
    check_pair("w2", a, b, true, 1)?;
    let cost = crate::coupling::exact_ot::transport_cost(a, b)?;
    Ok(cost.max(0.0).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{normal_vec, seeded};

    #[test]
    fn w2_of_a_translate_is_the_shift_length() {
        // Translating by s: every permutation's cost is mean ‖aᵢ − a_σ(i) − s‖², minimised by σ = id
        // (cross term vanishes for σ = id, and mean ‖aᵢ − a_σ(i)‖² ≥ 0), so W2 = ‖s‖ exactly.
        let mut rng = seeded(0);
        let n = 40;
        let a = Points::new(normal_vec(&mut rng, 2 * n), n, 2).unwrap();
        let mut b = a.clone();
        b.data.chunks_exact_mut(2).for_each(|r| {
            r[0] += 3.0;
            r[1] -= 4.0;
        });
        let idx: Vec<usize> = (0..n).rev().collect();
        let w = w2(&a, &b.select(&idx)).unwrap();
        // f32 rounding of the shifted coordinates (≈ 1e-7 relative)
        assert!((w - 5.0).abs() < 1e-5, "{w}");
        assert_eq!(w2(&a, &a).unwrap(), 0.0);
    }

    #[test]
    fn w2_matches_brute_force_and_is_a_mean_not_a_sum() {
        // n = 3 in 1-D: sorted matching is optimal; {0, 1, 5} vs {2, 2, 9}: (4 + 1 + 16)/3 = 7
        let a = Points::new(vec![5.0, 0.0, 1.0], 3, 1).unwrap();
        let b = Points::new(vec![9.0, 2.0, 2.0], 3, 1).unwrap();
        assert!((w2(&a, &b).unwrap() - 7f64.sqrt()).abs() < 1e-12);
    }

    #[test]
    fn w2_rejects_mismatched_sets() {
        let a = Points::new(vec![0.0; 4], 2, 2).unwrap();
        let b = Points::new(vec![0.0; 6], 3, 2).unwrap();
        assert!(matches!(w2(&a, &b), Err(crate::Error::Shape { op: "w2", .. })));
        let c = Points::new(vec![0.0; 4], 4, 1).unwrap();
        assert!(w2(&a.head(0), &a.head(0)).is_err());
        assert!(w2(&a, &c.head(2)).is_err());
    }
}
