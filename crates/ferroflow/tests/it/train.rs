//! The trainer: gradients, Adam, determinism, exact resume, NaN stop, checkpoints.

use burn::backend::Autodiff;
use burn::module::AutodiffModule;
use burn::optim::GradientsParams;
use burn::tensor::Tensor;
use ferroflow::backend::{Cpu, Cpu64, CpuAutodiff};
use ferroflow::checkpoint::Checkpoint;
use ferroflow::data::{GaussianSource, PointSource, Points, World};
use ferroflow::model::{HostTensor, MlpFieldConfig, VelocityField, params::collect_params};
use ferroflow::objective::cfm_loss;
use ferroflow::rng;
use ferroflow::train::{Adam, Control, LrSchedule, OptimizerConfig, TrainConfig, Trainer, load_sampling_model};

type Ad64 = Autodiff<Cpu64>;

fn small() -> MlpFieldConfig {
    MlpFieldConfig { d_input: 2, d_hidden: 12, n_hidden: 2, ..Default::default() }
}

fn batch(
    d: &<Cpu64 as burn::tensor::backend::BackendTypes>::Device,
) -> (Tensor<Ad64, 2>, Tensor<Ad64, 1>, Tensor<Ad64, 2>) {
    let x = Tensor::from_floats([[0.3, -1.0], [1.5, 0.2], [-0.4, 0.8]], d);
    let t = Tensor::from_floats([0.1, 0.5, 0.93], d);
    let u = Tensor::from_floats([[1.0, 0.0], [-0.5, 2.0], [0.3, 0.3]], d);
    (x, t, u)
}

#[test]
fn cfm_loss_gradients_match_central_differences_in_f64() {
    let d = Default::default();
    let cfg = small();
    let model = cfg.init::<Ad64>(&d, &mut rng::seeded(1));
    let (x, t, u) = batch(&d);
    let loss = cfm_loss(model.velocity(x.clone(), t.clone(), None), u.clone());
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    let base = model.valid().to_tensors(); // PyTorch layout
    let specs = cfg.tensor_specs();
    // Gradients in burn layout, in visit order, converted to PyTorch layout.
    let mut g_host = Vec::new();
    for (k, l) in model.layers.iter().enumerate() {
        let gw = grads.get::<Cpu64, 2>(l.weight.id).unwrap();
        let gb = grads.get::<Cpu64, 1>(l.bias.as_ref().unwrap().id).unwrap();
        g_host.push(HostTensor::from_tensor(gw).transposed());
        g_host.push(HostTensor::from_tensor(gb));
        assert_eq!(g_host[2 * k].shape, specs[2 * k].shape);
    }
    let loss_at = |tensors: &[HostTensor]| -> f64 {
        let m = cfg.from_tensors::<Cpu64>(tensors, &d);
        let (x, t, u) = batch(&d);
        cfm_loss(m.velocity(x.inner(), t.inner(), None), u.inner()).into_scalar()
    };
    let mut worst: f64 = 0.0;
    for (k, g) in g_host.iter().enumerate() {
        for i in (0..g.data.len()).step_by(7) {
            // HostTensor stores f32: perturb in f32 is too coarse, so rebuild with f64 loss of
            // an f32 perturbation h·scale large enough to be exact in f32.
            let mut plus = base.clone();
            let mut minus = base.clone();
            // 2⁻¹³ ≈ 1.2e-4: the perturbed f32 values are read back, so dp and dm are exact;
            // the loss is evaluated in f64.
            let step = 1.0f32 / 8192.0;
            plus[k].data[i] += step;
            minus[k].data[i] -= step;
            let dp = (plus[k].data[i] - base[k].data[i]) as f64;
            let dm = (base[k].data[i] - minus[k].data[i]) as f64;
            let fd = (loss_at(&plus) - loss_at(&minus)) / (dp + dm);
            let an = g.data[i] as f64;
            let err = (fd - an).abs() / (1e-3 + an.abs());
            if err > 1e-4 {
                eprintln!("k={k} i={i} fd={fd:e} an={an:e} dp={dp:e} dm={dm:e}");
            }
            worst = worst.max(err);
        }
    }
    // central differences with step 1.2e-4 on a smooth loss: truncation O(h²·f''') ≈ 1e-7,
    // against a 1e-3 floor in the relative error; f32 storage of the gradient 1e-7 relative.
    assert!(worst < 1e-4, "worst relative error {worst}");
}

#[test]
fn adam_and_adamw_follow_pytorch_update_rule() {
    let d = Default::default();
    let cfg = small();
    for opt in [
        OptimizerConfig::Adam { beta1: 0.9, beta2: 0.999, eps: 1e-8 },
        OptimizerConfig::AdamW { beta1: 0.8, beta2: 0.99, eps: 1e-6, weight_decay: 0.05 },
    ] {
        let mut model = cfg.init::<Ad64>(&d, &mut rng::seeded(2));
        let mut adam = Adam::<Cpu64>::new(opt);
        let mut p: Vec<Vec<f64>> =
            collect_params(&model.valid()).iter().map(|h| h.data.iter().map(|&v| v as f64).collect()).collect();
        let mut m = vec![vec![0.0; 0]; p.len()];
        let mut v = m.clone();
        let lr = 0.01;
        let (b1, b2, eps, wd) = match opt {
            OptimizerConfig::Adam { beta1, beta2, eps } => (beta1, beta2, eps, 0.0),
            OptimizerConfig::AdamW { beta1, beta2, eps, weight_decay } => (beta1, beta2, eps, weight_decay),
        };
        for step in 1..=3 {
            // f64 end to end: the model's params are the host's (re-uploaded each step).
            let (x, t, u) = batch(&d);
            let loss = cfm_loss(model.velocity(x, t, None), u);
            let mut grads = GradientsParams::from_grads(loss.backward(), &model);
            let mut g: Vec<Vec<f64>> = Vec::new();
            for l in &model.layers {
                let gw = grads.get::<Cpu64, 2>(l.weight.id).unwrap();
                g.push(gw.into_data().into_vec::<f64>().unwrap());
                let gb = grads.get::<Cpu64, 1>(l.bias.as_ref().unwrap().id).unwrap();
                g.push(gb.into_data().into_vec::<f64>().unwrap());
            }
            // Reference: torch.optim.Adam / AdamW (decoupled decay first).
            for k in 0..p.len() {
                if m[k].is_empty() {
                    m[k] = vec![0.0; p[k].len()];
                    v[k] = vec![0.0; p[k].len()];
                }
                for i in 0..p[k].len() {
                    p[k][i] *= 1.0 - lr * wd;
                    m[k][i] = b1 * m[k][i] + (1.0 - b1) * g[k][i];
                    v[k][i] = b2 * v[k][i] + (1.0 - b2) * g[k][i] * g[k][i];
                    let mh = m[k][i] / (1.0 - b1.powi(step));
                    let vh = v[k][i] / (1.0 - b2.powi(step));
                    p[k][i] -= lr * mh / (vh.sqrt() + eps);
                }
            }
            model = adam.step(model, &mut grads, lr, 1.0);
            let got: Vec<Vec<f64>> = model
                .layers
                .iter()
                .flat_map(|l| {
                    [
                        l.weight.val().inner().into_data().into_vec::<f64>().unwrap(),
                        l.bias.as_ref().unwrap().val().inner().into_data().into_vec::<f64>().unwrap(),
                    ]
                })
                .collect();
            for k in 0..p.len() {
                for i in 0..p[k].len() {
                    assert!(
                        (got[k][i] - p[k][i]).abs() < 1e-12,
                        "{opt:?} step {step} tensor {k}[{i}]: {} vs {}",
                        got[k][i],
                        p[k][i]
                    );
                }
            }
        }
    }
}

fn cfg_train(steps: u64) -> TrainConfig {
    TrainConfig {
        seed: 11,
        steps,
        batch_size: 64,
        lr: 3e-3,
        warmup_steps: 5,
        lr_schedule: LrSchedule::Cosine { final_fraction: 0.1 },
        grad_clip: Some(1.0),
        ema_decay: Some(0.9),
        checkpoint_every: 0,
        ..Default::default()
    }
}

fn train(cfg: TrainConfig, ckpt: Option<&std::path::Path>) -> Trainer<CpuAutodiff> {
    let mut tr = Trainer::<CpuAutodiff>::new(small(), cfg, &Default::default()).unwrap();
    tr.run(&mut GaussianSource { dim: 2, std: 1.0 }, &mut World::Moons, ckpt, 0, &mut |_| Control::Continue).unwrap();
    tr
}

fn weights(tr: &Trainer<CpuAutodiff>) -> Vec<HostTensor> {
    let mut w = tr.current_model().to_tensors();
    w.extend(tr.sampling_model().to_tensors());
    w
}

#[test]
fn same_seed_gives_the_same_weights_bit_for_bit() {
    let a = weights(&train(cfg_train(30), None));
    let b = weights(&train(cfg_train(30), None));
    assert_eq!(a, b);
    let c = weights(&train(TrainConfig { seed: 12, ..cfg_train(30) }, None));
    assert_ne!(a, c);
}

#[test]
fn resuming_from_step_k_reproduces_the_uninterrupted_run() {
    // On the fused engine (what `auto` picks on the CPU) and on the burn path.
    for engine in [ferroflow::engine::EngineChoice::Fused, ferroflow::engine::EngineChoice::Burn] {
        let on = |c: TrainConfig| TrainConfig { engine, ..c };
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("run.safetensors");
        let full = weights(&train(on(cfg_train(40)), None));
        // Stop at 20 (a checkpoint is written at the end of that run) …
        train(on(cfg_train(20)), Some(&p));
        let ck = Checkpoint::read(&p).unwrap();
        let mut tr = Trainer::<CpuAutodiff>::resume(&ck, &Default::default()).unwrap();
        assert_eq!(tr.step(), 20);
        // … then continue to 40 with the same schedule.
        tr.set_total_steps(40);
        // the cosine schedule depends on the total: the resumed run must use 40 from the start,
        // so compare against a run whose config said 40 all along, stopped at 20 by the callback.
        let mut first = Trainer::<CpuAutodiff>::new(small(), on(cfg_train(40)), &Default::default()).unwrap();
        first
            .run(&mut GaussianSource { dim: 2, std: 1.0 }, &mut World::Moons, Some(&p), 0, &mut |e| match e {
                ferroflow::train::TrainEvent::Step { step: 20, .. } => Control::Stop,
                _ => Control::Continue,
            })
            .unwrap();
        let ck = Checkpoint::read(&p).unwrap();
        let mut tr = Trainer::<CpuAutodiff>::resume(&ck, &Default::default()).unwrap();
        assert_eq!(tr.step(), 20);
        tr.run(&mut GaussianSource { dim: 2, std: 1.0 }, &mut World::Moons, None, 0, &mut |_| Control::Continue)
            .unwrap();
        assert_eq!(tr.step(), 40);
        assert_eq!(tr.uses_engine(), engine == ferroflow::engine::EngineChoice::Fused);
        assert_eq!(weights(&tr), full);
    }
}

/// A data source that turns to NaN after `good` batches.
struct Poisoned {
    calls: usize,
    good: usize,
}

impl PointSource for Poisoned {
    fn dim(&self) -> usize {
        2
    }
    fn sample(&mut self, n: usize, r: &mut rng::Rng) -> (Points, Option<Vec<u32>>) {
        self.calls += 1;
        let mut p = World::Moons.sample_labeled(n, r).points;
        if self.calls > self.good {
            p.data[0] = f32::NAN;
        }
        (p, None)
    }
}

#[test]
fn nan_loss_stops_training_and_keeps_the_last_good_checkpoint() {
    for engine in [ferroflow::engine::EngineChoice::Fused, ferroflow::engine::EngineChoice::Burn] {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("run.safetensors");
        let cfg = TrainConfig { checkpoint_every: 10, engine, ..cfg_train(100) };
        let mut tr = Trainer::<CpuAutodiff>::new(small(), cfg, &Default::default()).unwrap();
        let err = tr
            .run(
                &mut GaussianSource { dim: 2, std: 1.0 },
                &mut Poisoned { calls: 0, good: 25 },
                Some(&p),
                0,
                &mut |_| Control::Continue,
            )
            .unwrap_err();
        assert!(matches!(err, ferroflow::Error::NonFinite { step: 26, .. }), "{err}");
        assert!(err.to_string().contains("step 26"), "{err}");
        let ck = Checkpoint::read(&p).unwrap();
        assert_eq!(ck.meta("ferroflow.step").unwrap(), "20");
        assert_eq!(tr.step(), 25, "no update applied at the bad step");
        assert_eq!(tr.uses_engine(), engine == ferroflow::engine::EngineChoice::Fused);
    }
}

#[test]
fn checkpoint_round_trip_gives_the_same_velocities() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.safetensors");
    let tr = train(TrainConfig { ema_decay: None, ..cfg_train(5) }, Some(&p));
    let m1 = tr.sampling_model();
    let m2 = load_sampling_model::<Cpu>(&Checkpoint::read(&p).unwrap(), &Default::default()).unwrap();
    let d = Default::default();
    let x = Tensor::<Cpu, 2>::from_floats([[0.1, 0.2], [-3.0, 1.0]], &d);
    let a = m1.velocity_at(x.clone(), 0.3, None).into_data();
    let b = m2.velocity_at(x, 0.3, None).into_data();
    assert_eq!(a, b);
}

#[test]
fn batches_made_ahead_on_a_thread_give_the_same_run_as_made_inline() {
    // The burn path, and the engine with a plan coupling on one thread, make batches on a
    // second thread; the engine on two threads pairs the next batch on its helper between
    // jobs (`Threads::ahead`); the manual loop below makes the same draws inline. Any
    // difference in the draws, the pairing's random stream or their order changes the
    // weights.
    use ferroflow::coupling::CouplingConfig;
    use ferroflow::engine::EngineChoice;
    for (engine, threads) in [(EngineChoice::Burn, 2), (EngineChoice::Fused, 1), (EngineChoice::Fused, 2)] {
        for coupling in [CouplingConfig::ExactOt, CouplingConfig::sinkhorn_default()] {
            // Batch 256: on two threads the engine then cuts its row blocks finer while the
            // helper is away on the next plan (32 rows against 64 inline): same values.
            let cfg = TrainConfig { engine, coupling, threads, batch_size: 256, ..cfg_train(12) };
            made_ahead_matches_inline(cfg, engine == EngineChoice::Fused);
        }
    }
}

fn made_ahead_matches_inline(cfg: TrainConfig, fused: bool) {
    let mut ahead = Trainer::<CpuAutodiff>::new(small(), cfg, &Default::default()).unwrap();
    assert_eq!(ahead.uses_engine(), fused);
    let (mut source, mut target) = (GaussianSource { dim: 2, std: 1.0 }, World::Moons);
    ahead.run(&mut source, &mut target, None, 0, &mut |_| Control::Continue).unwrap();
    let mut inline = Trainer::<CpuAutodiff>::new(small(), cfg, &Default::default()).unwrap();
    for step in 0..12 {
        let mut rng = ferroflow::train::step_rng(cfg.seed, step);
        let (x0, _) = source.sample(cfg.batch_size, &mut rng);
        let (x1, _) = target.sample(cfg.batch_size, &mut rng);
        let p = cfg.coupling.pair(&x0, &x1, None, &mut rng).unwrap();
        inline.train_step(&x0.select(&p.i0), &x1.select(&p.i1), None, &mut rng).unwrap();
    }
    assert_eq!(weights(&ahead), weights(&inline));
}

#[test]
fn a_source_that_panics_while_batches_are_made_ahead_becomes_an_error_of_the_run() {
    // Moons until its `after`-th draw, then a panic: on the batch thread (burn path, engine on
    // one thread) and in the engine's queue (two threads) it must come back as an error.
    struct Breaks {
        after: usize,
    }
    impl PointSource for Breaks {
        fn dim(&self) -> usize {
            2
        }
        fn sample(&mut self, n: usize, rng: &mut ferroflow::rng::Rng) -> (Points, Option<Vec<u32>>) {
            assert!(self.after > 0, "the data source broke");
            self.after -= 1;
            World::Moons.sample(n, rng)
        }
    }
    use ferroflow::engine::EngineChoice;
    for (engine, threads) in [(EngineChoice::Burn, 2), (EngineChoice::Fused, 1), (EngineChoice::Fused, 2)] {
        let cfg =
            TrainConfig { engine, coupling: ferroflow::coupling::CouplingConfig::ExactOt, threads, ..cfg_train(12) };
        let mut tr = Trainer::<CpuAutodiff>::new(small(), cfg, &Default::default()).unwrap();
        let (mut source, mut target) = (GaussianSource { dim: 2, std: 1.0 }, Breaks { after: 5 });
        let err = tr.run(&mut source, &mut target, None, 0, &mut |_| Control::Continue).unwrap_err();
        assert!(matches!(err, ferroflow::Error::ThreadStopped(_)), "{engine:?}, {threads} threads: {err}");
        assert_eq!(tr.step(), 5, "{engine:?}, {threads} threads: the five good batches were trained on");
    }
}
