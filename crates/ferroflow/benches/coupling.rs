//! Exact minibatch OT: `exact_ot::plan` (cost matrix + assignment) on three 2D point families.
//!
//! Run: `cargo bench -p ferroflow --bench coupling -- --warm-up-time 1 --measurement-time 3`
//! Peer (same families and sizes, POT's network simplex `ot.emd`), right after ours:
//! `python3 crates/ferroflow/benches/peers/pot_emd.py`
//!
//! Families: `common/ot_families.rs` (x0 and x1 are independent draws of the same family):
//! - `uniform`: U([0, 1]²);
//! - `clustered`: 8 tight gaussians, centres 4·(cos 2πk/8, sin 2πk/8), std 0.1, k uniform;
//! - `duplicated`: n/4 points of U([0, 1]²), each repeated 4 times (rows i and i + n/4 … equal).
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use ferroflow::coupling::exact_ot;
use ferroflow::rng::seeded;
use std::hint::black_box;

#[path = "common/ot_families.rs"]
mod ot_families;
use ot_families::{KINDS, family};

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("exact_ot_plan");
    for n in [256usize, 1024] {
        for kind in KINDS {
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
