//! Cost of the derivatives of the flow, per solver step, against a plain velocity evaluation.
//!
//! Run: `cargo bench -p ferroflow --bench derivatives` (add `-- --quick` for fewer repeats,
//! `--batch N` for another batch than 64, `--threads T` for the engine's threads, 1 by default).
//!
//! For D = 2, 256 (16×16 images) and 784 (28×28), on the same MLP kind (width 256, 3 hidden
//! layers, SiLU, raw time) and a batch of 64 points, it times one evaluation of:
//! - `velocity`: v(x, t);
//! - `exact_div`: v and the exact divergence (D one-hot tangents, one batched JVP pass);
//! - `hutchinson_1`: v and Hutchinson's estimate with 1 Rademacher probe;
//! - `guidance_hutchinson_1`: v and ∇ₓ(uᵀJu) by reverse mode through the JVP (1 probe);
//! - `guidance_exact` (D = 2 only): v and ∇ₓ(∇·v) from the exact divergence;
//! - `vjp`: one plain backward pass through v (the unit the seed's "exact ≈ D× a backward
//!   pass" estimate counts in).
//!
//! - `velocity_fused`, `exact_div_fused`, `hutchinson_1_fused`: the first three on the fused
//!   CPU engine ([`FusedField`], `--threads` threads); `exact_div_fused_jvp`: its exact
//!   divergence by the generic one-hot JVPs instead of its own route; `guidance_exact_fused`:
//!   v and ∇ₓ(∇·v) from the exact divergence by the engine's reverse pass through its tangents.
//!
//! The PyTorch twin is `benches/peers/derivatives_peer.py` (same MLP, batch and rows).
//!
//! It prints one JSON object per line: `{"dim", "what", "median_ms", "ratio_to_velocity"}`.
//! Timings are medians of repeated runs on the default CPU backend (`ferroflow::backend::Cpu`,
//! f32); every output is reduced to a host scalar before the clock stops.

use std::time::Instant;

use burn::module::Module;
use burn::tensor::{Tensor, TensorData};
use ferroflow::backend::{Cpu, CpuAutodiff};
use ferroflow::engine::{FusedField, HostCondition};
use ferroflow::guidance::divergence_gradient;
use ferroflow::likelihood::divergence::exact_divergence_by_jvp;
use ferroflow::likelihood::{DivergenceMethod, Hutchinson, ProbeKind, exact_divergence, hutchinson_divergence};
use ferroflow::model::{MlpFieldConfig, VelocityField};

/// Median wall time in ms of `f`, after one warm-up call; at least `min_reps` runs and until
/// `budget_s` seconds are spent.
fn time(min_reps: usize, budget_s: f64, mut f: impl FnMut() -> f32) -> f64 {
    std::hint::black_box(f());
    let start = Instant::now();
    let mut samples = Vec::new();
    while samples.len() < min_reps || (start.elapsed().as_secs_f64() < budget_s && samples.len() < 200) {
        let t0 = Instant::now();
        std::hint::black_box(f());
        samples.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let opt = |name: &str, default: usize| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map_or(default, |v| v.parse().unwrap_or_else(|_| panic!("{name} takes a whole number, not {v:?}")))
    };
    let (batch, threads) = (opt("--batch", 64), opt("--threads", 1));
    let (min_reps, budget) = if quick { (3, 0.5) } else { (5, 3.0) };
    let dev = Default::default();
    for dim in [2usize, 256, 784] {
        let cfg = MlpFieldConfig { d_input: dim, d_hidden: 256, n_hidden: 3, ..Default::default() };
        let model = cfg.init::<Cpu>(&dev, &mut ferroflow::rng::seeded(0));
        let model_ad = cfg.init::<CpuAutodiff>(&dev, &mut ferroflow::rng::seeded(0)).no_grad();
        let mut rng = ferroflow::rng::seeded(1);
        let x = Tensor::<Cpu, 2>::from_data(
            TensorData::new(ferroflow::rng::normal_vec(&mut rng, batch * dim), [batch, dim]),
            &dev,
        );
        let t = Tensor::<Cpu, 1>::full([batch], 0.5, &dev);
        let h1 = Hutchinson { probes: 1, kind: ProbeKind::Rademacher, seed: 0 };
        let mut rows: Vec<(&str, f64)> = Vec::new();
        rows.push((
            "velocity",
            time(min_reps, budget, || model.velocity(x.clone(), t.clone(), None).sum().into_scalar()),
        ));
        rows.push((
            "exact_div",
            time(min_reps, budget, || {
                let (v, div) = exact_divergence(&model, x.clone(), t.clone(), None);
                v.sum().into_scalar() + div.sum().into_scalar()
            }),
        ));
        rows.push((
            "hutchinson_1",
            time(min_reps, budget, || {
                let (v, div) = hutchinson_divergence(&model, x.clone(), t.clone(), None, &h1);
                v.sum().into_scalar() + div.sum().into_scalar()
            }),
        ));
        rows.push((
            "guidance_hutchinson_1",
            time(min_reps, budget, || {
                let r = divergence_gradient::<CpuAutodiff, _>(
                    &model_ad,
                    &DivergenceMethod::Hutchinson(h1),
                    x.clone(),
                    t.clone(),
                    None,
                );
                r.v.sum().into_scalar() + r.grad.sum().into_scalar()
            }),
        ));
        if dim == 2 {
            rows.push((
                "guidance_exact",
                time(min_reps, budget, || {
                    let r = divergence_gradient::<CpuAutodiff, _>(
                        &model_ad,
                        &DivergenceMethod::Exact,
                        x.clone(),
                        t.clone(),
                        None,
                    );
                    r.v.sum().into_scalar() + r.grad.sum().into_scalar()
                }),
            ));
        }
        rows.push((
            "vjp",
            time(min_reps, budget, || {
                let xa = Tensor::<CpuAutodiff, 2>::from_inner(x.clone()).require_grad();
                let v = model_ad.velocity(xa.clone(), Tensor::from_inner(t.clone()), None);
                let grads = v.sum().backward();
                xa.grad(&grads).map(|g| g.sum().into_scalar()).unwrap_or(0.0)
            }),
        ));
        // The same field on the fused engine: forward-mode JVP with the tangents as extra rows;
        // the exact divergence by its own route, and by the generic one-hot JVPs for comparison.
        let fused = FusedField::from_field(&model, threads);
        rows.push((
            "velocity_fused",
            time(min_reps, budget, || fused.velocity(x.clone(), t.clone(), None).sum().into_scalar()),
        ));
        rows.push((
            "exact_div_fused",
            time(min_reps, budget, || {
                let (v, div) = exact_divergence::<Cpu, _>(&fused, x.clone(), t.clone(), None);
                v.sum().into_scalar() + div.sum().into_scalar()
            }),
        ));
        rows.push((
            "exact_div_fused_jvp",
            time(min_reps, budget, || {
                let (v, div) = exact_divergence_by_jvp::<Cpu, _>(&fused, x.clone(), t.clone(), None);
                v.sum().into_scalar() + div.sum().into_scalar()
            }),
        ));
        rows.push((
            "hutchinson_1_fused",
            time(min_reps, budget, || {
                let (v, div) = hutchinson_divergence::<Cpu, _>(&fused, x.clone(), t.clone(), None, &h1);
                v.sum().into_scalar() + div.sum().into_scalar()
            }),
        ));
        rows.push((
            "guidance_exact_fused",
            time(min_reps, budget, || {
                let xs = x.clone().into_data().into_vec::<f32>().expect("f32");
                let ts = t.clone().into_data().into_vec::<f32>().expect("f32");
                let (mut v, mut div, mut grad) = (vec![0f32; xs.len()], vec![0f32; ts.len()], vec![0f32; xs.len()]);
                fused.divergence_gradient_host(&xs, &ts, HostCondition::None, &mut v, &mut div, &mut grad);
                v.iter().sum::<f32>() + grad.iter().sum::<f32>()
            }),
        ));
        let base = rows[0].1;
        for (what, ms) in rows {
            println!(
                "{}",
                serde_json::json!({
                    "dim": dim,
                    "batch": batch,
                    "fused_threads": threads,
                    "what": what,
                    "median_ms": (ms * 1e4).round() / 1e4,
                    "ratio_to_velocity": ((ms / base) * 100.0).round() / 100.0,
                })
            );
        }
    }
}
