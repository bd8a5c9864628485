//! Profiling driver (temporary): trains W2D on the engine for N steps.
use ferroflow::data::{GaussianSource, PointSource, World};
use ferroflow::engine::FusedTrainer;
use ferroflow::model::MlpFieldConfig;
use ferroflow::train::{TrainConfig, step_rng};
fn main() {
    let threads: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(1);
    let steps: u64 = std::env::args().nth(2).and_then(|s| s.parse().ok()).unwrap_or(2000);
    let tc = TrainConfig { threads, ..Default::default() };
    let mut tr = FusedTrainer::new(MlpFieldConfig::default(), tc).unwrap();
    let (mut src, mut data) = (GaussianSource { dim: 2, std: 1.0 }, World::Moons);
    let t0 = std::time::Instant::now();
    while tr.step() < steps {
        let mut r = step_rng(0, tr.step());
        let (x0, _) = src.sample(256, &mut r);
        let (x1, _) = data.sample(256, &mut r);
        tr.train_step(&x0, &x1, None, &mut r).unwrap();
    }
    eprintln!("{:.1} steps/s", steps as f64 / t0.elapsed().as_secs_f64());
}
