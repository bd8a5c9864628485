//! Speed of the U-Net field on burn-flex: forward pass and training step of the default 16×16
//! config (ch 32, mult [1, 2, 2], 1 res block, attention, 10 classes; 1,063,905 parameters) at
//! batch 128, and a per-op breakdown on a representative 64-channel 8×8 feature map.
//!
//! Run: `cargo bench -p ferroflow --bench unet` (add `-- --quick` for fewer repeats; set
//! `RAYON_NUM_THREADS` to fix the thread count).
//!
//! It prints one JSON object per line: `{"what", "batch", "median_ms", "images_per_s"}`.
//! - `forward`: v(x, t | c) on `ferroflow::backend::Cpu` (f32, no autodiff);
//! - `train_step`: forward, CFM loss, backward and an Adam update on `CpuAutodiff`;
//! - `op/*`: on `[128, 64, 8, 8]`: GroupNorm(8, 64) + SiLU (the U-Net's `group_norm`), a 3×3
//!   conv 64 → 64, nearest ×2
//!   upsampling, each forward (`fwd`) and forward + backward of the sum (`fwd_bwd`);
//! - `op/parts/*`: GroupNorm + SiLU's pieces on the same map (forward), to see which burn-flex
//!   ops its time goes to; `group_norm_burn_module` is burn's `GroupNorm::forward`.
//!
//! Timings are medians of repeated runs; every output is reduced to a host scalar before the
//! clock stops.

use std::time::Instant;

use burn::optim::GradientsParams;
use burn::tensor::{Int, Tensor, TensorData};
use ferroflow::backend::{Cpu, CpuAutodiff};
use ferroflow::model::jvp_conv::{group_norm, upsample_nearest2};
use ferroflow::model::{Activation, Condition, UNetConfig, VelocityField};
use ferroflow::train::{Adam, OptimizerConfig};

const BATCH: usize = 128;

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

fn report(what: &str, batch: usize, ms: f64) {
    println!(
        "{}",
        serde_json::json!({
            "what": what,
            "batch": batch,
            "median_ms": (ms * 1e3).round() / 1e3,
            "images_per_s": (batch as f64 / (ms / 1e3) * 10.0).round() / 10.0,
        })
    );
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (min_reps, budget) = if quick { (3, 2.0) } else { (5, 10.0) };
    let dev = Default::default();
    let cfg = UNetConfig::default();
    let dim = cfg.dim();
    let mut rng = ferroflow::rng::seeded(1);
    let x0 = ferroflow::rng::normal_vec(&mut rng, BATCH * dim);
    let x1 = ferroflow::rng::normal_vec(&mut rng, BATCH * dim);
    let t: Vec<f32> = (0..BATCH).map(|i| (i as f32 + 0.5) / BATCH as f32).collect();
    let labels: Vec<i64> = (0..BATCH as i64).map(|i| i % 11).collect();
    let xt: Vec<f32> = (0..BATCH * dim).map(|i| (1.0 - t[i / dim]) * x0[i] + t[i / dim] * x1[i]).collect();
    let ut: Vec<f32> = (0..BATCH * dim).map(|i| x1[i] - x0[i]).collect();

    // Forward on the plain backend (weights moved off the zero out_conv by one step below do
    // not change the cost: the same ops run).
    let model = cfg.init::<Cpu>(&dev, &mut ferroflow::rng::seeded(0));
    let x = Tensor::<Cpu, 2>::from_data(TensorData::new(xt.clone(), [BATCH, dim]), &dev);
    let tt = Tensor::<Cpu, 1>::from_data(TensorData::new(t.clone(), [BATCH]), &dev);
    let c = Condition::Class(Tensor::<Cpu, 1, Int>::from_data(TensorData::new(labels.clone(), [BATCH]), &dev));
    let ms = time(min_reps, budget, || model.velocity(x.clone(), tt.clone(), Some(&c)).sum().into_scalar());
    report("forward", BATCH, ms);

    // Training step.
    let mut model = cfg.init::<CpuAutodiff>(&dev, &mut ferroflow::rng::seeded(0));
    let x = Tensor::<CpuAutodiff, 2>::from_data(TensorData::new(xt, [BATCH, dim]), &dev);
    let u = Tensor::<CpuAutodiff, 2>::from_data(TensorData::new(ut, [BATCH, dim]), &dev);
    let tt = Tensor::<CpuAutodiff, 1>::from_data(TensorData::new(t, [BATCH]), &dev);
    let c = Condition::Class(Tensor::<CpuAutodiff, 1, Int>::from_data(TensorData::new(labels, [BATCH]), &dev));
    let mut optim = Adam::new(OptimizerConfig::default());
    let ms = time(min_reps, budget, || {
        let v = model.velocity(x.clone(), tt.clone(), Some(&c));
        let loss = ferroflow::objective::cfm_loss(v, u.clone());
        let value = loss.clone().into_scalar();
        let mut grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(model.clone(), &mut grads, 1e-4, 1.0);
        value
    });
    report("train_step", BATCH, ms);

    // Per-op breakdown on [128, 64, 8, 8].
    let shape = [BATCH, 64, 8, 8];
    let n: usize = shape.iter().product();
    let h = ferroflow::rng::normal_vec(&mut rng, n);
    let layers = cfg.init::<CpuAutodiff>(&dev, &mut ferroflow::rng::seeded(0));
    // A GroupNorm(8, 64) and a 3×3 conv 64 → 64 of the middle block.
    let norm = layers.mid.res1.norm1.clone();
    let conv = layers.mid.res1.conv2.clone();
    let hp = Tensor::<Cpu, 4>::from_data(TensorData::new(h.clone(), shape), &dev);
    let ha = Tensor::<CpuAutodiff, 4>::from_data(TensorData::new(h, shape), &dev);
    let norm_p = cfg.init::<Cpu>(&dev, &mut ferroflow::rng::seeded(0)).mid.res1.norm1;
    let conv_p = cfg.init::<Cpu>(&dev, &mut ferroflow::rng::seeded(0)).mid.res1.conv2;
    let rows: Vec<(&str, f64)> = vec![
        (
            "op/group_norm_silu/fwd",
            time(min_reps, budget / 4.0, || {
                Activation::Silu.apply(group_norm(&norm_p, hp.clone())).sum().into_scalar()
            }),
        ),
        ("op/conv3x3_64/fwd", time(min_reps, budget / 4.0, || conv_p.forward(hp.clone()).sum().into_scalar())),
        ("op/upsample2/fwd", time(min_reps, budget / 4.0, || upsample_nearest2(hp.clone()).sum().into_scalar())),
        (
            "op/group_norm_silu/fwd_bwd",
            time(min_reps, budget / 4.0, || {
                let a = ha.clone().require_grad();
                let g = Activation::Silu.apply(group_norm(&norm, a.clone())).sum().backward();
                a.grad(&g).map(|g| g.sum().into_scalar()).unwrap_or(0.0)
            }),
        ),
        (
            "op/conv3x3_64/fwd_bwd",
            time(min_reps, budget / 4.0, || {
                let a = ha.clone().require_grad();
                let g = conv.forward(a.clone()).sum().backward();
                a.grad(&g).map(|g| g.sum().into_scalar()).unwrap_or(0.0)
            }),
        ),
        (
            "op/upsample2/fwd_bwd",
            time(min_reps, budget / 4.0, || {
                let a = ha.clone().require_grad();
                let g = upsample_nearest2(a.clone()).sum().backward();
                a.grad(&g).map(|g| g.sum().into_scalar()).unwrap_or(0.0)
            }),
        ),
    ];
    for (what, ms) in rows {
        report(what, BATCH, ms);
    }
    // GroupNorm + SiLU's pieces on the same map, forward only (each closure also sums the
    // result, as `op/parts/sum` alone does): which burn-flex ops the time goes to.
    let g = Tensor::<Cpu, 1>::from_data(TensorData::new(ferroflow::rng::normal_vec(&mut rng, 64), [64]), &dev);
    let x3 = hp.clone().reshape([BATCH, 8, n / (BATCH * 8)]);
    let mean = x3.clone().mean_dim(2);
    let t = budget / 16.0;
    let parts: Vec<(&str, f64)> = vec![
        ("op/parts/sum", time(min_reps, t, || hp.clone().sum().into_scalar())),
        ("op/parts/group_norm", time(min_reps, t, || group_norm(&norm_p, hp.clone()).sum().into_scalar())),
        ("op/parts/group_norm_burn_module", time(min_reps, t, || norm_p.forward(hp.clone()).sum().into_scalar())),
        ("op/parts/silu", time(min_reps, t, || Activation::Silu.apply(hp.clone()).sum().into_scalar())),
        ("op/parts/mean_dim_per_group", time(min_reps, t, || x3.clone().mean_dim(2).sum().into_scalar())),
        ("op/parts/sub_group_broadcast", time(min_reps, t, || (x3.clone() - mean.clone()).sum().into_scalar())),
        ("op/parts/square", time(min_reps, t, || hp.clone().square().sum().into_scalar())),
        ("op/parts/mul_same_shape", time(min_reps, t, || (hp.clone() * hp.clone()).sum().into_scalar())),
        (
            "op/parts/mul_channel_broadcast",
            time(min_reps, t, || (hp.clone() * g.clone().reshape([1, 64, 1, 1])).sum().into_scalar()),
        ),
    ];
    for (what, ms) in parts {
        report(what, BATCH, ms);
    }
}
