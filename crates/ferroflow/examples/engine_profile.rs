//! Profiling driver for the fused engine (perf record this): `engine_profile MODE THREADS N`
//! with MODE = train (N steps of W2D) or sample:B (N runs of 10 Euler steps at batch B).
use ferroflow::data::{GaussianSource, PointSource, World};
use ferroflow::engine::{FusedField, FusedMlp, FusedTrainer, HostCondition};
use ferroflow::model::MlpFieldConfig;
use ferroflow::solver::{OdeMethod, TimeGrid};
use ferroflow::train::{TrainConfig, step_rng};

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "train".into());
    let threads: usize = std::env::args().nth(2).and_then(|s| s.parse().ok()).unwrap_or(1);
    let n: u64 = std::env::args().nth(3).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let t0 = std::time::Instant::now();
    if let Some(b) = mode.strip_prefix("sample:") {
        let b: usize = b.parse().unwrap_or(1);
        let f = FusedField::new(FusedMlp::random(MlpFieldConfig::default(), 0), threads);
        let x0 = GaussianSource { dim: 2, std: 1.0 }.sample(b, &mut ferroflow::rng::seeded(0)).0;
        let g = TimeGrid::uniform(0.0, 1.0, 10).unwrap();
        for _ in 0..n {
            let mut x = x0.data.clone();
            f.integrate(OdeMethod::Euler, &mut x, HostCondition::None, g.as_slice());
            std::hint::black_box(&x);
        }
        eprintln!("{:.1} us per 10 Euler steps at batch {b}", t0.elapsed().as_secs_f64() / n as f64 * 1e6);
        return;
    }
    let tc = TrainConfig { threads, ..Default::default() };
    let mut tr = FusedTrainer::new(MlpFieldConfig::default(), tc).unwrap();
    let (mut src, mut data) = (GaussianSource { dim: 2, std: 1.0 }, World::Moons);
    while tr.step() < n {
        let mut r = step_rng(0, tr.step());
        let (x0, _) = src.sample(256, &mut r);
        let (x1, _) = data.sample(256, &mut r);
        tr.train_step(&x0, &x1, None, &mut r).unwrap();
    }
    eprintln!("{:.1} steps/s", n as f64 / t0.elapsed().as_secs_f64());
}
