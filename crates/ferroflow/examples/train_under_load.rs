//! W2D training steps/s with and without a bursty neighbour: a thread that sleeps to the next
//! tick of a fixed period and then keeps a core busy for a burst, as a browser drawing 60
//! frames a second does. The trainer is measured free, loaded, then free again (the host's
//! drift shows in the two free figures), and the loaded rate is divided by their mean.
//!
//!     cargo run --release -p ferroflow --example train_under_load [seconds, default 4] [burst ms, default 5.5] [period ms, default 16.667] [engine threads, default 2]
//!
//! A neighbour busy a fraction f of one core leaves 1 − f/2 of two cores; a trainer whose
//! threads meet at the end of every phase keeps less, because a thread that loses its core
//! mid-block holds the phase up for the other (BENCHMARKS.md, "Web explorer").

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ferroflow::backend::CpuAutodiff;
use ferroflow::data::{GaussianSource, World};
use ferroflow::model::MlpFieldConfig;
use ferroflow::train::{Control, TrainConfig, Trainer};

fn steps_per_s(seconds: f64, threads: usize) -> f64 {
    let device = Default::default();
    let config = TrainConfig { steps: 1_000_000, threads, ..TrainConfig::default() };
    let mut t = Trainer::<CpuAutodiff>::new(MlpFieldConfig::default(), config, &device).expect("trainer");
    let mut source = GaussianSource { dim: 2, std: 1.0 };
    let mut target = World::Moons;
    let t0 = Instant::now();
    t.run(&mut source, &mut target, None, 0, &mut |_| {
        if t0.elapsed().as_secs_f64() < seconds { Control::Continue } else { Control::Stop }
    })
    .expect("training");
    t.step() as f64 / t0.elapsed().as_secs_f64()
}

/// A thread busy `burst_ms` from each tick of `period_ms` until `stop`.
fn neighbour(stop: Arc<AtomicBool>, period_ms: f64, burst_ms: f64) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let t0 = Instant::now();
        let mut x = 0u64;
        for k in 1u64.. {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let next = t0 + Duration::from_secs_f64(k as f64 * period_ms / 1e3);
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
            }
            let b = Instant::now();
            while b.elapsed().as_secs_f64() * 1e3 < burst_ms {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            }
        }
        std::hint::black_box(x);
    })
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let arg = |i: usize, default: f64| a.get(i).map_or(default, |s| s.parse().expect("a number"));
    let (seconds, burst, period, threads) = (arg(1, 4.0), arg(2, 5.5), arg(3, 16.667), arg(4, 2.0) as usize);
    let free = steps_per_s(seconds, threads);
    let stop = Arc::new(AtomicBool::new(false));
    let h = neighbour(stop.clone(), period, burst);
    let loaded = steps_per_s(seconds, threads);
    stop.store(true, Ordering::Relaxed);
    h.join().unwrap();
    let free_after = steps_per_s(seconds, threads);
    let mean = 0.5 * (free + free_after);
    println!(
        "threads {threads}, neighbour {burst} ms of every {period} ms: free {free:.0} / {free_after:.0}, loaded {loaded:.0} steps/s, ratio {:.3} (cores left: {:.3})",
        loaded / mean,
        1.0 - burst / period / 2.0
    );
}
