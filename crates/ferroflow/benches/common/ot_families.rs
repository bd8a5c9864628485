//! The point families of the exact-OT benchmarks (`benches/coupling.rs`, `examples/ot_tune.rs`;
//! `benches/peers/pot_emd.py` draws the same families for POT). x0 and x1 are independent
//! draws of the same family, n points each:
//! - `uniform`: U([0, 1]²);
//! - `clustered`: 8 tight gaussians, centres 4·(cos 2πk/8, sin 2πk/8), std 0.1, k uniform;
//! - `duplicated`: n/4 points of U([0, 1]²), each repeated 4 times (rows i and i + n/4 … equal).
use ferroflow::data::Points;
use ferroflow::rng::{Rng, normal_vec};
use rand::Rng as _;

/// `n` points of the family `kind` (one of [`KINDS`]).
pub fn family(kind: &str, n: usize, rng: &mut Rng) -> Points {
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

/// The families, in the order the benchmarks print them.
pub const KINDS: [&str; 3] = ["uniform", "clustered", "duplicated"];
