//! Exact minibatch OT: `exact_ot::plan` (cost matrix + assignment) on three 2D point families.
//!
//! Run: `cargo bench -p ferroflow --bench coupling -- --warm-up-time 1 --measurement-time 3`
//! Peer (same families and sizes, POT's network simplex `ot.emd`), right after ours:
//! `python3 crates/ferroflow/benches/peers/pot_emd.py`
//!
//! Families (x0 and x1 are independent draws of the same family, n points each):
//! - `uniform`: U([0, 1]²);
//! - `clustered`: 8 tight gaussians, centres 4·(cos 2πk/8, sin 2πk/8), std 0.1, k uniform;
//! - `duplicated`: n/4 points of U([0, 1]²), each repeated 4 times (rows i and i + n/4 … equal).
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use ferroflow::coupling::exact_ot;
use ferroflow::data::Points;
use ferroflow::rng::{Rng, normal_vec, seeded};
use rand::Rng as _;
use std::hint::black_box;

fn family(kind: &str, n: usize, rng: &mut Rng) -> Points {
    let data: Vec<f32> = match kind {
        "uniform" => (0..2 * n).map(|_| rng.random::<f32>()).collect(),
        "clustered" => (0..n)
            .flat_map(|_| {
                let k = rng.random_range(0..8) as f64;
                let a = k * std::f64::consts::PI / 4.0;
                let z = normal_vec(rng, 2);
                [(4.0 * a.cos() + 0.1 * z[0] as f64) as f32, (4.0 * a.sin() + 0.1 * z[1] as f64) as f32]
            })
            .collect(),
        "duplicated" => {
            let m = n / 4;
            let base: Vec<f32> = (0..2 * m).map(|_| rng.random::<f32>()).collect();
            (0..n).flat_map(|i| [base[2 * (i % m)], base[2 * (i % m) + 1]]).collect()
        }
        _ => unreachable!(),
    };
    Points::new(data, n, 2).expect("n × 2 values")
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("exact_ot_plan");
    for n in [256usize, 1024] {
        for kind in ["uniform", "clustered", "duplicated"] {
            let mut rng = seeded(n as u64);
            let (x0, x1) = (family(kind, n, &mut rng), family(kind, n, &mut rng));
            g.bench_with_input(BenchmarkId::new(kind, n), &(x0, x1), |b, (x0, x1)| {
                b.iter(|| exact_ot::plan(black_box(x0), black_box(x1)).expect("valid input"))
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
