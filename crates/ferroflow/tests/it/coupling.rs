//! Couplings through the public API: optimality against baselines, class-aware pairing, errors.

use ferroflow::coupling::{CouplingConfig, CouplingError, exact_ot};
use ferroflow::data::Points;
use ferroflow::rng::{normal_vec, seeded};
use rand::Rng as _;

fn cloud(n: usize, dim: usize, seed: u64) -> Points {
    Points::new(normal_vec(&mut seeded(seed), n * dim), n, dim).unwrap()
}

fn mean_cost(x0: &Points, x1: &Points, i0: &[usize], i1: &[usize]) -> f64 {
    i0.iter()
        .zip(i1)
        .map(|(&a, &b)| x0.row(a).iter().zip(x1.row(b)).map(|(p, q)| ((p - q) as f64).powi(2)).sum::<f64>())
        .sum::<f64>()
        / i0.len() as f64
}

/// Greedy nearest neighbour: each x0 row in turn takes its closest unused x1 row.
fn greedy(x0: &Points, x1: &Points) -> Vec<usize> {
    let mut used = vec![false; x1.n];
    (0..x0.n)
        .map(|i| {
            let d = |j: usize| x0.row(i).iter().zip(x1.row(j)).map(|(p, q)| (p - q) * (p - q)).sum::<f32>();
            let j = (0..x1.n).filter(|&j| !used[j]).min_by(|&a, &b| d(a).total_cmp(&d(b))).unwrap();
            used[j] = true;
            j
        })
        .collect()
}

#[test]
fn exact_ot_pairing_is_a_permutation_that_beats_random_and_greedy_pairings() {
    for (seed, n) in [(1u64, 200usize), (2, 333), (3, 512)] {
        let (x0, x1) = (cloud(n, 2, seed), cloud(n, 2, seed + 100));
        let p = CouplingConfig::ExactOt.pair(&x0, &x1, None, &mut seeded(0)).unwrap();
        assert_eq!(p.i0, (0..n).collect::<Vec<_>>());
        let mut sorted = p.i1.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..n).collect::<Vec<_>>(), "a permutation");
        let ot = mean_cost(&x0, &x1, &p.i0, &p.i1);
        let w2sq = exact_ot::transport_cost(&x0, &x1).unwrap();
        // Same pairs, costs summed in f32 vs f64: 1e-5 relative.
        assert!((ot - w2sq).abs() < 1e-5 * w2sq, "{ot} vs {w2sq}");
        let id: Vec<usize> = (0..n).collect();
        let random = mean_cost(&x0, &x1, &id, &id);
        let gr = mean_cost(&x0, &x1, &id, &greedy(&x0, &x1));
        // Independent N(0, I₂) pairs cost E‖x0 − x1‖² = 4; OT at these n costs ≈ 0.1–0.2.
        assert!(ot < 0.1 * random, "OT {ot} vs random {random}");
        assert!(ot < gr, "OT {ot} vs greedy {gr}");
        // Any swap of two pairs cannot lower an optimal cost (2-opt optimality).
        let c = exact_ot::cost_matrix(&x0, &x1).unwrap();
        let s = &p.i1;
        let mut rng = seeded(seed);
        for _ in 0..2000 {
            let (a, b) = (rng.random_range(0..n), rng.random_range(0..n));
            let before = c[a * n + s[a]] + c[b * n + s[b]];
            let after = c[a * n + s[b]] + c[b * n + s[a]];
            assert!(after >= before - 1e-12, "swap {a} {b} improves");
        }
    }
}

#[test]
fn class_exact_ot_pairs_only_within_classes_and_equals_per_class_exact_ot() {
    let n = 120;
    let (x0, x1) = (cloud(n, 2, 7), cloud(n, 2, 8));
    let mut rng = seeded(9);
    let labels: Vec<u32> = (0..n).map(|_| rng.random_range(0..3)).collect();
    let p = CouplingConfig::ClassExactOt.pair(&x0, &x1, Some(&labels), &mut seeded(0)).unwrap();
    let mut s0 = p.i0.clone();
    s0.sort_unstable();
    assert_eq!(s0, (0..n).collect::<Vec<_>>(), "each x0 row once");
    let mut s1 = p.i1.clone();
    s1.sort_unstable();
    assert_eq!(s1, (0..n).collect::<Vec<_>>(), "each x1 row once");
    let mut next0 = 0;
    for k in 0..3u32 {
        let rows1: Vec<usize> = (0..n).filter(|&j| labels[j] == k).collect();
        // x0 rows of class k: the next consecutive block, in row order.
        let rows0: Vec<usize> = (next0..next0 + rows1.len()).collect();
        next0 += rows1.len();
        let pairs: Vec<(usize, usize)> =
            p.i0.iter().zip(&p.i1).filter(|(_, j)| labels[**j] == k).map(|(&a, &b)| (a, b)).collect();
        assert!(pairs.iter().all(|(a, _)| rows0.contains(a)), "class {k}: x0 rows from its block");
        let (a, b) = (x0.select(&rows0), x1.select(&rows1));
        let want = exact_ot::transport_cost(&a, &b).unwrap();
        let (i0, i1): (Vec<usize>, Vec<usize>) = pairs.into_iter().unzip();
        let got = mean_cost(&x0, &x1, &i0, &i1);
        assert!((got - want).abs() < 1e-5 * want, "class {k}: {got} vs {want}");
    }
    // Pooling the classes costs more than unconstrained OT.
    let all = exact_ot::transport_cost(&x0, &x1).unwrap();
    assert!(mean_cost(&x0, &x1, &p.i0, &p.i1) > all);
}

#[test]
fn bad_inputs_are_coupling_errors_not_panics() {
    let mut rng = seeded(0);
    let (a, b) = (cloud(5, 2, 1), cloud(6, 2, 2));
    for c in [CouplingConfig::Independent, CouplingConfig::ExactOt, CouplingConfig::ClassExactOt] {
        let labels = vec![0u32; 6];
        let e = c.pair(&a, &b, Some(&labels), &mut rng).unwrap_err();
        assert_eq!(e, CouplingError::SizeMismatch { n0: 5, n1: 6 }, "{c:?}");
    }
    let e = exact_ot::transport_cost(&a, &b).unwrap_err();
    assert!(e.to_string().contains("equal sizes"), "{e}");
    let c3 = cloud(5, 3, 3);
    assert_eq!(exact_ot::plan(&a, &c3).unwrap_err(), CouplingError::DimMismatch { d0: 2, d1: 3 });
    let s = CouplingConfig::sinkhorn_default();
    assert_eq!(s.pair(&a, &c3, None, &mut rng).unwrap_err(), CouplingError::DimMismatch { d0: 2, d1: 3 });
    let mut nan = cloud(5, 2, 4);
    nan.data[7] = f32::NAN;
    for c in [CouplingConfig::ExactOt, s] {
        let e = c.pair(&a, &nan, None, &mut rng).unwrap_err();
        assert!(matches!(e, CouplingError::NonFinite { set: "x1", row: 3, .. }), "{c:?}: {e:?}");
    }
    let e = CouplingConfig::ClassExactOt.pair(&a, &a, None, &mut rng).unwrap_err();
    assert_eq!(e, CouplingError::MissingLabels);
    let e = CouplingConfig::ClassExactOt.pair(&a, &a, Some(&[0, 1]), &mut rng).unwrap_err();
    assert_eq!(e, CouplingError::LabelCount { labels: 2, n: 5 });
    assert!(matches!(exact_ot::try_assignment(&[1.0, 2.0, 3.0], 2), Err(CouplingError::CostShape { len: 3, n: 2 })));
    // More points than a dense cost matrix should hold: an error, not a 4.8 GB allocation.
    let max = ferroflow::coupling::MAX_PLAN_POINTS;
    let big = Points::new(vec![0.5; 2 * (max + 1)], max + 1, 2).unwrap();
    let too_large = CouplingError::TooLarge { n: max + 1, m: max + 1, max };
    assert_eq!(exact_ot::transport_cost(&big, &big).unwrap_err(), too_large);
    assert_eq!(exact_ot::plan(&big, &big).unwrap_err(), too_large);
    assert_eq!(s.pair(&big, &big, None, &mut rng).unwrap_err(), too_large);
    assert!(too_large.to_string().contains("20001×20001 cost matrix (5 GB)"), "{too_large}");
    assert!(matches!(
        exact_ot::try_assignment(&[1.0, f64::INFINITY, 3.0, 4.0], 2),
        Err(CouplingError::NonFiniteCost { row: 0, col: 1, .. })
    ));
}

#[test]
fn sinkhorn_pairing_uses_every_data_row_once_and_is_reproducible() {
    let (x0, x1) = (cloud(64, 2, 11), cloud(64, 2, 12));
    let c = CouplingConfig::Sinkhorn { epsilon: 0.01, max_iters: 2000, tol: 1e-6 };
    let p = c.pair(&x0, &x1, None, &mut seeded(5)).unwrap();
    assert_eq!(p.i1, (0..64).collect::<Vec<_>>());
    assert_eq!(p, c.pair(&x0, &x1, None, &mut seeded(5)).unwrap(), "same seed, same pairs");
    let id: Vec<usize> = (0..64).collect();
    let (sk, random, ot) =
        (mean_cost(&x0, &x1, &p.i0, &p.i1), mean_cost(&x0, &x1, &id, &id), exact_ot::transport_cost(&x0, &x1).unwrap());
    // Blurred by ε = 0.01 of the mean cost (≈ 0.04) and by sampling: far below random, near OT.
    assert!(sk < 0.25 * random && sk < 2.0 * ot, "sinkhorn {sk}, random {random}, OT {ot}");
}
