//! End-to-end figures of the W2D workload (MLP 3→256→256→256→2 SiLU, Adam 1e-3, batch 256,
//! N(0, I) → moons) on the default CPU backend, printed as JSON next to the keys of the
//! PyTorch peers' scripts (`../shared/bench/peers_2d.py`, `peers_latency.py`).
//!
//! Run: `cargo bench -p ferroflow --bench w2d -- [steps]` (default 2000 training steps per
//! coupling). Medians of interleaved rounds; see BENCHMARKS.md for the figures.

use std::time::Instant;

use ferroflow::backend::{Cpu, CpuAutodiff};
use ferroflow::coupling::CouplingConfig;
use ferroflow::data::{GaussianSource, PointSource, World};
use ferroflow::engine::EngineChoice;
use ferroflow::model::{MlpFieldConfig, VelocityField};
use ferroflow::solver::{OdeMethod, SolverConfig};
use ferroflow::train::{Control, TrainConfig, Trainer};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn train_steps_per_s(coupling: CouplingConfig, steps: u64, rounds: usize) -> (f64, Trainer<CpuAutodiff>) {
    // No EMA: the peers do not average weights either.
    // The burn path explicitly: `auto` would pick the fused engine (see benches/engine.rs).
    let cfg =
        TrainConfig { steps: 50, coupling, ema_decay: None, engine: EngineChoice::Burn, ..TrainConfig::default() };
    let mut tr = Trainer::<CpuAutodiff>::new(MlpFieldConfig::default(), cfg, &Default::default()).expect("valid");
    let mut src = GaussianSource { dim: 2, std: 1.0 };
    let mut moons = World::Moons;
    tr.run(&mut src, &mut moons, None, 0, &mut |_| Control::Continue).expect("warm-up"); // warm-up
    let mut rates = Vec::new();
    for _ in 0..rounds {
        let start = tr.step();
        tr.set_total_steps(start + steps / rounds as u64);
        let t0 = Instant::now();
        tr.run(&mut src, &mut moons, None, 0, &mut |_| Control::Continue).expect("train");
        rates.push((tr.step() - start) as f64 / t0.elapsed().as_secs_f64());
    }
    (median(rates), tr)
}

fn main() {
    let steps: u64 = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(2000);
    let dev = Default::default();
    let mut out = serde_json::Map::new();
    out.insert("backend".into(), "burn-flex".into());
    out.insert("steps".into(), steps.into());
    let mut model = None;
    for (name, c) in [("independent", CouplingConfig::Independent), ("exact_ot", CouplingConfig::ExactOt)] {
        let (sps, tr) = train_steps_per_s(c, steps, 5);
        out.insert(format!("train_steps_per_s_{name}"), sps.into());
        model = Some(tr.sampling_model());
    }
    let model = model.expect("trained");
    // Euler-100 on 10k points: point·NFE/s.
    let x0 = GaussianSource { dim: 2, std: 1.0 }.sample(10_000, &mut ferroflow::rng::seeded(0)).0;
    let euler100 = SolverConfig::Fixed { method: OdeMethod::Euler, steps: 100 };
    let mut rates = Vec::new();
    for _ in 0..3 {
        let t0 = Instant::now();
        let sol = euler100.solve(&model, x0.to_tensor::<Cpu>(&dev), None, 0.0, 1.0, false).expect("solve");
        let _ = sol.x.into_data(); // sync
        rates.push(10_000.0 * 100.0 / t0.elapsed().as_secs_f64());
    }
    out.insert("euler100_points_nfe_per_s".into(), median(rates).into());
    // Latency of 10 Euler steps at batch 1 and 32.
    let euler10 = SolverConfig::Fixed { method: OdeMethod::Euler, steps: 10 };
    for batch in [1usize, 32] {
        let x = x0.head(batch);
        for _ in 0..20 {
            let _ =
                euler10.solve(&model, x.to_tensor::<Cpu>(&dev), None, 0.0, 1.0, false).expect("solve").x.into_data();
        }
        let reps = 300;
        let mut lat = Vec::new();
        for _ in 0..5 {
            let t0 = Instant::now();
            for _ in 0..reps / 5 {
                let _ = euler10
                    .solve(&model, x.to_tensor::<Cpu>(&dev), None, 0.0, 1.0, false)
                    .expect("solve")
                    .x
                    .into_data();
            }
            lat.push(t0.elapsed().as_secs_f64() / (reps / 5) as f64 * 1e6);
        }
        out.insert(format!("euler10_latency_us_batch{batch}"), median(lat).into());
    }
    let _ = model.dim();
    println!("{}", serde_json::to_string_pretty(&serde_json::Value::Object(out)).expect("json"));
}
