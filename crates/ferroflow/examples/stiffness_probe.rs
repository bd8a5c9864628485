//! How stiff is a digits MLP field along its own Euler paths? Integrates 2,000 digits (200 a
//! class, w = 0, seed 0 by default, as `stiff_trace`) with Euler on the burn path and, at t = 0.50, 0.55,
//! …, 0.95, estimates for every row the dominant eigenvalue magnitude |λ| of the Jacobian
//! ∂v/∂x by power iteration on central differences:
//!
//! J·u ≈ (v(x + εu) − v(x − εu)) / 2ε,  u ← J·u / ‖J·u‖,  |λ| ≈ ‖J·u‖  (ε = 10⁻², 6 iterations).
//!
//! Fixed-step Euler with step h is unstable along a direction where h·|λ| > 2 (|1 + hλ| > 1 for
//! real λ < 0), so the probe prints, per t, the median, 99th percentile and maximum of |λ| and
//! how many rows have h·|λ| > 2 for h = 1/100 (|λ| > 200). Rows that have already left the data
//! range (|x| > 10 somewhere) are counted apart and skipped.
//!
//! Run: `cargo run --release -p ferroflow --example stiffness_probe -- CKPT [STEPS] [SEED]`
//! (CKPT: a `ferroflow train --mnist --field mlp` checkpoint; STEPS default 100; SEED of the
//! source draws, default 0).

use burn::tensor::{Int, Tensor, TensorData};
use ferroflow::backend::Cpu;
use ferroflow::checkpoint::Checkpoint;
use ferroflow::model::{Condition, MlpFieldConfig, VelocityField};

fn host(t: Tensor<Cpu, 2>) -> Result<Vec<f32>, String> {
    t.into_data().to_vec::<f32>().map_err(|e| format!("{e:?}"))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: stiffness_probe CKPT [STEPS]")?;
    let steps: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(100);
    let seed: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(0);
    let ck = Checkpoint::read(std::path::Path::new(&path))?;
    let dev = Default::default();
    let m = ferroflow::train::load_sampling_field::<Cpu, MlpFieldConfig>(&ck, &dev)?;
    let (n, d) = (2000usize, m.dim());
    let x0 = ferroflow::rng::normal_vec(&mut ferroflow::rng::seeded(seed), n * d);
    let labels: Vec<i64> = (0..n as i64).map(|i| i / 200).collect();
    let c = Condition::Class(Tensor::<Cpu, 1, Int>::from_data(TensorData::new(labels, [n]), &dev));
    let mut x = Tensor::<Cpu, 2>::from_data(TensorData::new(x0, [n, d]), &dev);
    let h = 1.0 / steps as f32;
    let probe_every = (steps / 20).max(1);
    let eps = 1e-2f32;
    let mut worst = 0.0f32;
    println!("   t   median|λ|   p99|λ|    max|λ|   rows h|λ|>2   rows off");
    for k in 0..steps {
        let tk = k as f32 * h;
        let tt = || Tensor::<Cpu, 1>::from_data(TensorData::new(vec![tk; n], [n]), &dev);
        if k >= steps / 2 && k % probe_every == 0 {
            let xh = host(x.clone())?;
            let off: Vec<bool> = xh.chunks(d).map(|r| r.iter().any(|a| a.abs() > 10.0 || !a.is_finite())).collect();
            let mut u =
                ferroflow::rng::normal_vec(&mut ferroflow::rng::seeded(1_000_003 * (seed + 1) + k as u64), n * d);
            let mut lam = vec![0.0f32; n];
            for _ in 0..6 {
                // Normalise each row of u, then J·u by central differences.
                for r in u.chunks_mut(d) {
                    let s = r.iter().map(|a| a * a).sum::<f32>().sqrt().max(1e-30);
                    r.iter_mut().for_each(|a| *a /= s);
                }
                let ut = Tensor::<Cpu, 2>::from_data(TensorData::new(u.clone(), [n, d]), &dev).mul_scalar(eps);
                let vp = m.velocity(x.clone() + ut.clone(), tt(), Some(&c));
                let vm = m.velocity(x.clone() - ut, tt(), Some(&c));
                u = host((vp - vm).div_scalar(2.0 * eps))?;
                for (l, r) in lam.iter_mut().zip(u.chunks(d)) {
                    *l = r.iter().map(|a| a * a).sum::<f32>().sqrt();
                }
            }
            let mut on: Vec<f32> = lam.iter().zip(&off).filter(|p| !*p.1 && p.0.is_finite()).map(|p| *p.0).collect();
            on.sort_by(f32::total_cmp);
            let q = |p: f64| on.get(((on.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(f32::NAN);
            let stiff = on.iter().filter(|&&l| l * h > 2.0).count();
            worst = worst.max(q(1.0));
            println!(
                "{tk:5.2} {:10.1} {:9.1} {:9.1} {stiff:10} {:10}",
                q(0.5),
                q(0.99),
                q(1.0),
                off.iter().filter(|&&o| o).count()
            );
        }
        let v = m.velocity(x.clone(), tt(), Some(&c));
        x = x + v.mul_scalar(h);
    }
    println!("largest |λ| seen: {worst:.1} (Euler step h = {h}: stable while h·|λ| < 2); rows off at t = 1: {}", {
        let xh = host(x)?;
        xh.chunks(d).filter(|r| r.iter().any(|a| a.abs() > 10.0 || !a.is_finite())).count()
    });
    Ok(())
}
