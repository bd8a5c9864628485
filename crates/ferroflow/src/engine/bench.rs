//! The fused CPU engine against the burn path on the W2D workload (MLP 3→256→256→256→2 SiLU,
//! Adam 1e-3, batch 256, N(0, I) → moons) and a control-style field, printed as one JSON
//! object. Every figure is a median of interleaved rounds (engine, burn, engine, …).
//!
//! Run: `ferroflow bench w2d [--rounds R] [--threads N] [--json]` or
//! `cargo bench -p ferroflow --bench engine -- [rounds] [--threads N]`
//! (default 7 rounds, threads = one per core). Put the output beside
//! `~/peers-venv/bin/python ../shared/bench/peers_2d.py 2000`, `peers_latency.py` and
//! `benches/peers/control_latency.py` run in the same session.
//!
//! Keys: `{engine,burn}_train_steps_per_s_{independent,exact_ot}`,
//! `{engine,burn}_euler10_latency_us_batch{1,32}`, `{engine,burn}_euler100_points_nfe_per_s`,
//! `engine_bf16_euler100_points_nfe_per_s` ([`crate::engine::Precision::Bf16`]; null without
//! AVX512-BF16),
//! `engine_seam_*` (the engine through the `VelocityField` seam and the generic solver),
//! `control_*` (112-d action, 256-d condition, 3×512), `peak_gflops_{avx512,avx2}` (12
//! independent FMA chains per thread, one thread per core; `peak_gflops_1core` on one),
//! `engine_share_of_peak` (steps/s × 202.9 MFLOP / the peak of the cores the engine uses),
//! `load_avg_{start,end}`.

use std::time::Instant;

use crate::backend::{Cpu, CpuAutodiff};
use crate::coupling::CouplingConfig;
use crate::data::{GaussianSource, PointSource, World};
use crate::engine::{EngineChoice, FusedField, FusedMlp, HostCondition, Isa, Precision};
use crate::model::{Condition, ConditionConfig, MlpFieldConfig};
use crate::solver::{OdeMethod, SolverConfig, TimeGrid};
use crate::train::{Control, TrainConfig, Trainer};
use burn::tensor::{Tensor, TensorData};

/// FLOP in the matmuls of one W2D training step (MEASURING.md).
const STEP_FLOP: f64 = 202.9e6;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn load_avg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

// ---- FLOP peak: 12 independent FMA chains per thread ----

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn fma_chains_avx512(iters: usize) -> f32 {
    use std::arch::x86_64::*;
    let mut acc = [_mm512_set1_ps(0.0); 12];
    let a = _mm512_set1_ps(0.999_999);
    let b = _mm512_set1_ps(1e-7);
    for _ in 0..iters {
        for r in acc.iter_mut() {
            *r = _mm512_fmadd_ps(*r, a, b);
        }
    }
    let mut s = _mm512_set1_ps(0.0);
    for r in acc {
        s = _mm512_add_ps(s, r);
    }
    _mm512_reduce_add_ps(s)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn fma_chains_avx2(iters: usize) -> f32 {
    use std::arch::x86_64::*;
    let mut acc = [_mm256_set1_ps(0.0); 12];
    let a = _mm256_set1_ps(0.999_999);
    let b = _mm256_set1_ps(1e-7);
    for _ in 0..iters {
        for r in acc.iter_mut() {
            *r = _mm256_fmadd_ps(*r, a, b);
        }
    }
    let mut s = _mm256_set1_ps(0.0);
    for r in acc {
        s = _mm256_add_ps(s, r);
    }
    let mut out = [0f32; 8];
    // SAFETY: `out` holds 8 floats.
    unsafe { _mm256_storeu_ps(out.as_mut_ptr(), s) };
    out.iter().sum()
}

/// GFLOP/s of `threads` threads each running 12 FMA chains of `lanes` lanes.
fn peak_gflops(threads: usize, lanes: usize, f: fn(usize) -> f32) -> f64 {
    let iters = 20_000_000;
    let mut best = 0f64;
    for _ in 0..3 {
        let t0 = Instant::now();
        let s: f32 = std::thread::scope(|sc| {
            let hs: Vec<_> = (0..threads).map(|_| sc.spawn(move || f(iters))).collect();
            hs.into_iter().map(|h| h.join().unwrap_or(0.0)).sum()
        });
        let dt = t0.elapsed().as_secs_f64();
        std::hint::black_box(s);
        best = best.max(threads as f64 * iters as f64 * 12.0 * lanes as f64 * 2.0 / dt / 1e9);
    }
    best
}

// ---- training ----

fn trainer(engine: EngineChoice, coupling: CouplingConfig, threads: usize) -> Trainer<CpuAutodiff> {
    let cfg = TrainConfig { steps: 30, coupling, engine, threads, ..TrainConfig::default() };
    let mut tr = Trainer::<CpuAutodiff>::new(MlpFieldConfig::default(), cfg, &Default::default()).expect("valid");
    let (mut src, mut moons) = (GaussianSource { dim: 2, std: 1.0 }, World::Moons);
    tr.run(&mut src, &mut moons, None, 0, &mut |_| Control::Continue).expect("warm-up");
    tr
}

fn train_round(tr: &mut Trainer<CpuAutodiff>, steps: u64) -> f64 {
    let (mut src, mut moons) = (GaussianSource { dim: 2, std: 1.0 }, World::Moons);
    let start = tr.step();
    tr.set_total_steps(start + steps);
    let t0 = Instant::now();
    tr.run(&mut src, &mut moons, None, 0, &mut |_| Control::Continue).expect("train");
    (tr.step() - start) as f64 / t0.elapsed().as_secs_f64()
}

// ---- sampling ----

fn time_us(reps: usize, mut f: impl FnMut()) -> f64 {
    let t0 = Instant::now();
    for _ in 0..reps {
        f();
    }
    t0.elapsed().as_secs_f64() / reps as f64 * 1e6
}

/// Runs the W2D benchmark: `rounds` interleaved rounds of the fused engine and the burn path
/// with `threads` engine threads; returns one JSON object (keys in the module doc).
///
/// # Panics
/// If a built-in workload fails to train or sample (it cannot with these fixed settings).
pub fn w2d(rounds: usize, threads: usize) -> serde_json::Value {
    let rounds = rounds.max(1);
    let dev = Default::default();
    let mut out = serde_json::Map::new();
    out.insert("cpu".into(), cpu_model().into());
    out.insert("isa".into(), Isa::detect().name().into());
    out.insert("threads".into(), threads.into());
    out.insert("rounds".into(), rounds.into());
    out.insert("load_avg_start".into(), load_avg().into());

    #[cfg(target_arch = "x86_64")]
    {
        let cores = crate::engine::default_threads();
        let mut peak = 0f64;
        if std::is_x86_feature_detected!("avx512f") {
            // SAFETY: AVX-512F was detected.
            let p = peak_gflops(cores, 16, |n| unsafe { fma_chains_avx512(n) });
            out.insert("peak_gflops_avx512".into(), p.into());
            peak = peak.max(p);
            // SAFETY: as above.
            let p1 = peak_gflops(1, 16, |n| unsafe { fma_chains_avx512(n) });
            out.insert("peak_gflops_1core".into(), p1.into());
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: AVX2 and FMA were detected.
            let p = peak_gflops(cores, 8, |n| unsafe { fma_chains_avx2(n) });
            out.insert("peak_gflops_avx2".into(), p.into());
            peak = peak.max(p);
        }
        out.insert("peak_gflops".into(), peak.into());
    }

    // Training: interleaved rounds, engine then burn.
    let mut engine_model = None;
    for (name, c) in [("independent", CouplingConfig::Independent), ("exact_ot", CouplingConfig::ExactOt)] {
        let mut fe = trainer(EngineChoice::Fused, c, threads);
        let mut fb = trainer(EngineChoice::Burn, c, threads);
        let (mut re, mut rb) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            re.push(train_round(&mut fe, 300));
            rb.push(train_round(&mut fb, 60));
        }
        out.insert(format!("engine_train_steps_per_s_{name}"), median(re).into());
        out.insert(format!("burn_train_steps_per_s_{name}"), median(rb).into());
        engine_model = Some(fe.sampling_model());
    }
    let model = engine_model.expect("trained");
    if let (Some(peak), Some(sps)) = (
        out.get("peak_gflops").and_then(|v| v.as_f64()),
        out.get("engine_train_steps_per_s_independent").and_then(|v| v.as_f64()),
    ) {
        // Against the peak of the cores in use: all of them, or one per engine thread.
        let used = match out.get("peak_gflops_1core").and_then(|v| v.as_f64()) {
            Some(p1) if threads < crate::engine::default_threads() => p1 * threads as f64,
            _ => peak,
        };
        out.insert("engine_share_of_peak".into(), (sps * STEP_FLOP / 1e9 / used).into());
    }

    // Sampling.
    let field = FusedField::from_field(&model, threads);
    let field1 = FusedField::from_field(&model, 1);
    let x0 = GaussianSource { dim: 2, std: 1.0 }.sample(10_000, &mut crate::rng::seeded(0)).0;
    let g10 = TimeGrid::uniform(0.0, 1.0, 10).expect("grid");
    let g100 = TimeGrid::uniform(0.0, 1.0, 100).expect("grid");
    let euler10 = SolverConfig::Fixed { method: OdeMethod::Euler, steps: 10 };
    let euler100 = SolverConfig::Fixed { method: OdeMethod::Euler, steps: 100 };
    for batch in [1usize, 32] {
        let x = x0.head(batch);
        // Batch 1 on one thread (a join costs more than the work); batch 32 on all.
        let f = if batch == 1 { &field1 } else { &field };
        let (mut e, mut s, mut b) = (Vec::new(), Vec::new(), Vec::new());
        let reps = if batch == 1 { 400 } else { 60 };
        for _ in 0..rounds {
            e.push(time_us(reps, || {
                let mut xs = x.data.clone();
                f.integrate(OdeMethod::Euler, &mut xs, HostCondition::None, g10.as_slice());
                std::hint::black_box(&xs);
            }));
            s.push(time_us(reps / 4, || {
                let sol = euler10.solve(f, x.to_tensor::<Cpu>(&dev), None, 0.0, 1.0, false).expect("solve");
                std::hint::black_box(sol.x.into_data());
            }));
            b.push(time_us(reps / 8, || {
                let sol = euler10.solve(&model, x.to_tensor::<Cpu>(&dev), None, 0.0, 1.0, false).expect("solve");
                std::hint::black_box(sol.x.into_data());
            }));
        }
        out.insert(format!("engine_euler10_latency_us_batch{batch}"), median(e).into());
        out.insert(format!("engine_seam_euler10_latency_us_batch{batch}"), median(s).into());
        out.insert(format!("burn_euler10_latency_us_batch{batch}"), median(b).into());
    }
    let mut field_bf16 = FusedField::from_field(&model, threads);
    field_bf16.set_precision(Precision::Bf16);
    let (mut e, mut b, mut h) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds.min(3) {
        let us = time_us(1, || {
            let mut xs = x0.data.clone();
            field.integrate(OdeMethod::Euler, &mut xs, HostCondition::None, g100.as_slice());
            std::hint::black_box(&xs);
        });
        e.push(1e6 / (us / 1e6));
        if field_bf16.precision() == Precision::Bf16 {
            let us = time_us(1, || {
                let mut xs = x0.data.clone();
                field_bf16.integrate(OdeMethod::Euler, &mut xs, HostCondition::None, g100.as_slice());
                std::hint::black_box(&xs);
            });
            h.push(1e6 / (us / 1e6));
        }
        let us = time_us(1, || {
            let sol = euler100.solve(&model, x0.to_tensor::<Cpu>(&dev), None, 0.0, 1.0, false).expect("solve");
            std::hint::black_box(sol.x.into_data());
        });
        b.push(1e6 / (us / 1e6));
    }
    out.insert("engine_euler100_points_nfe_per_s".into(), median(e).into());
    // Null where the CPU has no AVX512-BF16.
    let bf16 = if h.is_empty() { serde_json::Value::Null } else { median(h).into() };
    out.insert("engine_bf16_euler100_points_nfe_per_s".into(), bf16);
    out.insert("burn_euler100_points_nfe_per_s".into(), median(b).into());

    // Control-style field: 112-d action chunk, 256-d observation, 3 hidden layers of 512.
    let ccfg = MlpFieldConfig {
        d_input: 112,
        d_hidden: 512,
        n_hidden: 3,
        condition: ConditionConfig::Vector { d_cond: 256 },
        ..Default::default()
    };
    let cnet = FusedMlp::random(ccfg, 7);
    let cmodel = cnet.to_field::<Cpu>(&dev);
    let cf = FusedField::new(cnet, 1);
    let obs = crate::rng::normal_vec(&mut crate::rng::seeded(1), 256);
    let a0 = crate::rng::normal_vec(&mut crate::rng::seeded(2), 112);
    let cond = Condition::Vector(Tensor::<Cpu, 2>::from_data(TensorData::new(obs.clone(), [1, 256]), &dev));
    let (mut e, mut b) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        e.push(time_us(100, || {
            let mut xs = a0.clone();
            cf.integrate(OdeMethod::Euler, &mut xs, HostCondition::Vector(&obs), g10.as_slice());
            std::hint::black_box(&xs);
        }));
        b.push(time_us(10, || {
            let x = Tensor::<Cpu, 2>::from_data(TensorData::new(a0.clone(), [1, 112]), &dev);
            let sol = euler10.solve(&cmodel, x, Some(&cond), 0.0, 1.0, false).expect("solve");
            std::hint::black_box(sol.x.into_data());
        }));
    }
    out.insert("control_engine_euler10_latency_us_batch1".into(), median(e).into());
    out.insert("control_burn_euler10_latency_us_batch1".into(), median(b).into());
    out.insert("load_avg_end".into(), load_avg().into());
    serde_json::Value::Object(out)
}
