//! The fused CPU engine against the burn path (the reference): forward, gradients, Adam,
//! samplers, checkpoints both ways, thread counts and bit-for-bit reproducibility.

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Int, Tensor, TensorData};
use ferroflow::backend::{Cpu, Cpu64, CpuAutodiff};
use ferroflow::checkpoint::Checkpoint;
use ferroflow::data::{GaussianSource, PointSource, Points, World};
use ferroflow::engine::{
    EngineChoice, FusedField, FusedMlp, FusedTrainer, HostCondition, Isa, Precision, Threads, bf16, loss_and_grad,
};
use ferroflow::guidance::{GuidanceConfig, Guided, divergence_gradient};
use ferroflow::likelihood::DivergenceMethod;
use ferroflow::likelihood::divergence::{exact_divergence, exact_divergence_by_jvp};
use ferroflow::model::{
    Activation, Condition, ConditionConfig, HostTensor, JvpField, MlpField, MlpFieldConfig, TimeEmbeddingConfig,
    VelocityField,
};
use ferroflow::objective::cfm_loss;
use ferroflow::rng;
use ferroflow::solver::{Diffusion, OdeMethod, SdeConfig, TimeGrid, ode};
use ferroflow::train::{LrSchedule, OptimizerConfig, TrainConfig, Trainer, step_rng};

/// max |a − b| / max |b|: the error relative to the scale of the reference.
fn rel(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0f64, |m, v| m.max(v.abs() as f64)).max(1e-30);
    a.iter().zip(b).fold(0f64, |m, (x, y)| m.max((*x as f64 - *y as f64).abs())) / scale
}

/// Shapes covering every code path: narrow and wide first layers (d0 ≤ 16 loops, > 16 gemm),
/// narrow and wide output layers, every activation, time embedding and condition kind.
fn shapes() -> Vec<MlpFieldConfig> {
    vec![
        MlpFieldConfig { d_input: 2, d_hidden: 32, n_hidden: 3, ..Default::default() },
        MlpFieldConfig {
            d_input: 3,
            d_hidden: 24,
            n_hidden: 2,
            activation: Activation::Tanh,
            time_embedding: TimeEmbeddingConfig::Sinusoidal { dim: 20, max_period: 10_000.0, scale: 1000.0 },
            condition: ConditionConfig::Class { n_classes: 3, d_embed: 4 },
        },
        MlpFieldConfig {
            d_input: 10,
            d_hidden: 40,
            n_hidden: 1,
            activation: Activation::Gelu,
            time_embedding: TimeEmbeddingConfig::Fourier { dim: 8, std: 1.0 },
            condition: ConditionConfig::Vector { d_cond: 5 },
        },
        // Wider than one parameter block (64 units): two full blocks and a partial one.
        MlpFieldConfig {
            d_input: 2,
            d_hidden: 150,
            n_hidden: 2,
            condition: ConditionConfig::Class { n_classes: 2, d_embed: 3 },
            ..Default::default()
        },
        MlpFieldConfig {
            d_input: 2,
            d_hidden: 20,
            n_hidden: 2,
            activation: Activation::Relu,
            condition: ConditionConfig::Class { n_classes: 2, d_embed: 3 },
            ..Default::default()
        },
    ]
}

/// A batch: points, times in (0, 1), targets and a condition fitting `cfg`.
struct Batch {
    x: Vec<f32>,
    t: Vec<f32>,
    u: Vec<f32>,
    labels: Vec<u32>,
    cvec: Vec<f32>,
    n: usize,
}

fn batch(cfg: &MlpFieldConfig, n: usize, seed: u64) -> Batch {
    let mut r = rng::seeded(seed);
    let d = cfg.d_input;
    let x = rng::normal_vec(&mut r, n * d);
    let u = rng::normal_vec(&mut r, n * d);
    let t: Vec<f32> = (0..n).map(|i| (i as f32 + 0.5) / n as f32).collect();
    let (labels, cvec) = match cfg.condition {
        // Include the null class (label n_classes).
        ConditionConfig::Class { n_classes, .. } => ((0..n).map(|i| (i % (n_classes + 1)) as u32).collect(), vec![]),
        ConditionConfig::Vector { d_cond } => (vec![], rng::normal_vec(&mut r, n * d_cond)),
        ConditionConfig::None => (vec![], vec![]),
    };
    Batch { x, t, u, labels, cvec, n }
}

impl Batch {
    fn host(&self) -> HostCondition<'_> {
        if !self.labels.is_empty() {
            HostCondition::Class(&self.labels)
        } else if !self.cvec.is_empty() {
            HostCondition::Vector(&self.cvec)
        } else {
            HostCondition::None
        }
    }
    fn burn_cond<B: burn::tensor::backend::Backend>(&self, dev: &B::Device) -> Option<Condition<B>> {
        if !self.labels.is_empty() {
            let l: Vec<i64> = self.labels.iter().map(|&v| v as i64).collect();
            Some(Condition::Class(Tensor::<B, 1, Int>::from_data(TensorData::new(l, [self.n]), dev)))
        } else if !self.cvec.is_empty() {
            let dc = self.cvec.len() / self.n;
            Some(Condition::Vector(Tensor::from_data(TensorData::new(self.cvec.clone(), [self.n, dc]), dev)))
        } else {
            None
        }
    }
}

fn tensor2<B: burn::tensor::backend::Backend>(v: &[f32], n: usize, d: usize, dev: &B::Device) -> Tensor<B, 2> {
    Tensor::from_data(TensorData::new(v.to_vec(), [n, d]), dev)
}

#[test]
fn forward_matches_the_burn_path_for_every_shape_batch_thread_count_and_isa() {
    let dev = Default::default();
    for (k, cfg) in shapes().into_iter().enumerate() {
        let model = cfg.init::<Cpu>(&dev, &mut rng::seeded(k as u64));
        for n in [1, 3, 5, 37, 300] {
            let b = batch(&cfg, n, 10 + n as u64);
            let want = model.velocity(
                tensor2::<Cpu>(&b.x, n, cfg.d_input, &dev),
                Tensor::from_data(TensorData::new(b.t.clone(), [n]), &dev),
                b.burn_cond::<Cpu>(&dev).as_ref(),
            );
            let want = Points::from_tensor(want).data;
            for threads in [1, 2] {
                for isa in Isa::available() {
                    let mut f = FusedField::from_field(&model, threads);
                    f.set_isa(isa);
                    let mut got = vec![0f32; n * cfg.d_input];
                    f.velocity_host(&b.x, &b.t, b.host(), &mut got);
                    // f32 against f32 with other summation orders and a polynomial exp:
                    // ~1e-6 in practice; 1e-5 is the bar.
                    let e = rel(&got, &want);
                    assert!(e < 1e-5, "shape {k} n {n} threads {threads} {isa:?}: rel error {e:e}");
                }
            }
        }
    }
}

/// Gradients of the CFM loss by burn's autodiff, in the engine's flat PyTorch layout.
fn burn_loss_and_grad(cfg: &MlpFieldConfig, tensors: &[HostTensor], b: &Batch) -> (f64, Vec<f32>) {
    let dev = Default::default();
    let m: MlpField<CpuAutodiff> = cfg.from_tensors(tensors, &dev);
    let d = cfg.d_input;
    let v = m.velocity(
        tensor2(&b.x, b.n, d, &dev),
        Tensor::from_data(TensorData::new(b.t.clone(), [b.n]), &dev),
        b.burn_cond::<CpuAutodiff>(&dev).as_ref(),
    );
    let loss = cfm_loss(v, tensor2(&b.u, b.n, d, &dev));
    let lv: f64 = loss.clone().into_scalar() as f64;
    let grads = GradientsParams::from_grads(loss.backward(), &m);
    let mut flat = Vec::new();
    for l in &m.layers {
        flat.extend(HostTensor::from_tensor(grads.get::<Cpu, 2>(l.weight.id).unwrap()).transposed().data);
        flat.extend(HostTensor::from_tensor(grads.get::<Cpu, 1>(l.bias.as_ref().unwrap().id).unwrap()).data);
    }
    if let Some(e) = &m.class_embedding {
        flat.extend(HostTensor::from_tensor(grads.get::<Cpu, 2>(e.id).unwrap()).data);
    }
    (lv, flat)
}

#[test]
fn gradients_equal_burn_autodiff_for_every_shape_and_thread_count() {
    for (k, cfg) in shapes().into_iter().enumerate() {
        let net = FusedMlp::random(cfg, 100 + k as u64);
        for n in [1, 7, 300] {
            let b = batch(&cfg, n, 20 + n as u64);
            let (lw, gw) = burn_loss_and_grad(&cfg, &net.to_tensors(), &b);
            for threads in [1, 2, 3] {
                for isa in Isa::available() {
                    let (l, g) = loss_and_grad(&net, &b.x, &b.t, &b.u, b.host(), &Threads::new(threads), isa);
                    assert!(((l - lw) / lw).abs() < 1e-5, "shape {k} n {n}: loss {l} vs {lw}");
                    // Per tensor, relative to the tensor's largest entry (1e-5, the bar).
                    let mut off = 0;
                    for s in cfg.tensor_specs().iter().filter(|s| s.trained) {
                        let len: usize = s.shape.iter().product();
                        let e = rel(&g[off..off + len], &gw[off..off + len]);
                        assert!(e < 1e-5, "shape {k} n {n} threads {threads} {isa:?} {}: rel error {e:e}", s.name);
                        off += len;
                    }
                }
            }
        }
    }
}

#[test]
fn gradients_match_f64_central_differences() {
    let dev = Default::default();
    for (k, cfg) in shapes().into_iter().enumerate() {
        let cfg = MlpFieldConfig { d_hidden: 12, ..cfg };
        let net = FusedMlp::random(cfg, 200 + k as u64);
        let b = batch(&cfg, 6, 30);
        let (_, g) = loss_and_grad(&net, &b.x, &b.t, &b.u, b.host(), &Threads::new(1), Isa::detect());
        let d = cfg.d_input;
        let loss64 = |params: &[f64]| -> f64 {
            // f64 burn model with these parameters (PyTorch layout, spec order).
            let mut tensors = net.to_tensors();
            let mut off = 0;
            let specs = cfg.tensor_specs();
            let mut m_tensors = Vec::new();
            for (s, t) in specs.iter().zip(tensors.iter_mut()) {
                if s.trained {
                    let len = t.data.len();
                    m_tensors.push((s.transposed, t.shape.clone(), params[off..off + len].to_vec()));
                    off += len;
                }
            }
            let m: MlpField<Cpu64> = cfg.from_tensors(&tensors, &dev);
            // Overwrite the parameters in f64 (HostTensor is f32).
            let mut it = m_tensors.into_iter();
            let mut layers = Vec::new();
            for l in m.layers {
                let (_, ws, w) = it.next().unwrap();
                let (_, _, bb) = it.next().unwrap();
                let w = Tensor::<Cpu64, 2>::from_data(TensorData::new(w, ws.clone()), &dev).transpose();
                let bias = Tensor::<Cpu64, 1>::from_data(TensorData::new(bb, [ws[0]]), &dev);
                layers.push(burn::nn::Linear {
                    weight: burn::module::Param::from_tensor(w),
                    bias: Some(burn::module::Param::from_tensor(bias)),
                });
                let _ = l;
            }
            let class_embedding = m.class_embedding.map(|e| {
                let (_, s, v) = it.next().unwrap();
                let _ = e;
                burn::module::Param::from_tensor(Tensor::<Cpu64, 2>::from_data(TensorData::new(v, s), &dev))
            });
            let m = MlpField { layers, class_embedding, ..m };
            let x = Tensor::<Cpu64, 2>::from_data(TensorData::new(b.x.clone(), [b.n, d]), &dev);
            let t = Tensor::<Cpu64, 1>::from_data(TensorData::new(b.t.clone(), [b.n]), &dev);
            let u = Tensor::<Cpu64, 2>::from_data(TensorData::new(b.u.clone(), [b.n, d]), &dev);
            let v = m.velocity(x, t, b.burn_cond::<Cpu64>(&dev).as_ref());
            cfm_loss(v, u).into_scalar()
        };
        let base: Vec<f64> = net.params.iter().map(|&v| v as f64).collect();
        let gmax = g.iter().fold(0f32, |m, v| m.max(v.abs())) as f64;
        let h = 1e-5;
        let mut worst = 0f64;
        for i in (0..base.len()).step_by(5) {
            let mut p = base.clone();
            p[i] += h;
            let lp = loss64(&p);
            p[i] -= 2.0 * h;
            let lm = loss64(&p);
            let fd = (lp - lm) / (2.0 * h);
            worst = worst.max((g[i] as f64 - fd).abs() / gmax);
        }
        // f32 forward/backward against an f64 O(h²) ≈ 1e-10 difference quotient: the error is
        // the f32 gradient's (~1e-6 of the largest entry); 1e-4 leaves room, a wrong term is O(1).
        assert!(worst < 1e-4, "shape {k}: worst FD error {worst:e} (relative to max |g|)");
    }
}

fn train_cfg(steps: u64) -> TrainConfig {
    TrainConfig {
        seed: 5,
        steps,
        batch_size: 64,
        lr: 2e-3,
        warmup_steps: 3,
        lr_schedule: LrSchedule::Cosine { final_fraction: 0.1 },
        ema_decay: Some(0.9),
        grad_clip: Some(0.5),
        optimizer: OptimizerConfig::AdamW { beta1: 0.9, beta2: 0.99, eps: 1e-8, weight_decay: 0.01 },
        ..Default::default()
    }
}

fn small() -> MlpFieldConfig {
    MlpFieldConfig { d_input: 2, d_hidden: 32, n_hidden: 3, ..Default::default() }
}

/// One step of both trainers from the same weights and the same random stream.
fn one_step(cfg: MlpFieldConfig, tc: TrainConfig, threads: usize) -> (Vec<HostTensor>, Vec<HostTensor>, f64, f64) {
    let dev = Default::default();
    let mut burn = Trainer::<CpuAutodiff>::new(cfg, TrainConfig { engine: EngineChoice::Burn, ..tc }, &dev).unwrap();
    let mut fused =
        Trainer::<CpuAutodiff>::new(cfg, TrainConfig { engine: EngineChoice::Fused, threads, ..tc }, &dev).unwrap();
    assert!(fused.uses_engine() && !burn.uses_engine());
    let mut data = World::Moons;
    let mut r = rng::seeded(3);
    let (x0, _) = GaussianSource { dim: 2, std: 1.0 }.sample(tc.batch_size, &mut r);
    let (x1, labels) = data.sample(tc.batch_size, &mut r);
    let labels = matches!(cfg.condition, ConditionConfig::Class { .. }).then_some(labels).flatten();
    let lb = burn.train_step(&x0, &x1, labels.as_deref(), &mut rng::seeded(9)).unwrap();
    let lf = fused.train_step(&x0, &x1, labels.as_deref(), &mut rng::seeded(9)).unwrap();
    (burn.current_model().to_tensors(), fused.current_model().to_tensors(), lb, lf)
}

#[test]
fn one_adam_step_equals_the_burn_trainers() {
    let classy = MlpFieldConfig {
        condition: ConditionConfig::Class { n_classes: 2, d_embed: 3 },
        activation: Activation::Gelu,
        ..small()
    };
    for (cfg, tc) in [
        (
            small(),
            TrainConfig { grad_clip: None, ema_decay: None, optimizer: OptimizerConfig::default(), ..train_cfg(10) },
        ),
        (small(), train_cfg(10)),
        (classy, TrainConfig { label_dropout: 0.3, ..train_cfg(10) }),
    ] {
        for threads in [1, 2] {
            let before = FusedMlp::init(cfg, &mut rng::seeded(tc.seed)).params;
            let (b, f, lb, lf) = one_step(cfg, tc, threads);
            assert!(((lb - lf) / lb).abs() < 1e-5, "loss {lb} vs {lf}");
            // Compare the updates θ₁ − θ₀ (the weights alone would hide an error below lr).
            let flat = |t: &[HostTensor]| -> Vec<f32> {
                t.iter().zip(cfg.tensor_specs()).filter(|(_, s)| s.trained).flat_map(|(t, _)| t.data.clone()).collect()
            };
            let (b, f) = (flat(&b), flat(&f));
            let db: Vec<f32> = b.iter().zip(&before).map(|(x, y)| x - y).collect();
            let df: Vec<f32> = f.iter().zip(&before).map(|(x, y)| x - y).collect();
            let e = rel(&df, &db);
            // Adam's first step is ≈ lr·sign(g): rounding of θ₀ + Δ in f32 (ulp(θ)/lr ≈ 3e-5
            // relative for |θ| ≈ 0.2, lr 2e-3) dominates, so 1e-4 on the update.
            assert!(e < 1e-4, "threads {threads}: update rel error {e:e}");
        }
    }
}

fn fused_run(tc: TrainConfig, threads: usize, steps: u64) -> FusedTrainer {
    fused_run_of(small(), tc, threads, steps)
}

fn fused_run_of(cfg: MlpFieldConfig, tc: TrainConfig, threads: usize, steps: u64) -> FusedTrainer {
    let mut tr = FusedTrainer::new(cfg, TrainConfig { threads, ..tc }).unwrap();
    let mut src = GaussianSource { dim: 2, std: 1.0 };
    let mut data = World::Moons;
    while tr.step() < steps {
        let mut r = step_rng(tc.seed, tr.step());
        let (x0, _) = src.sample(tc.batch_size, &mut r);
        let (x1, _) = data.sample(tc.batch_size, &mut r);
        tr.train_step(&x0, &x1, None, &mut r).unwrap();
    }
    tr
}

#[test]
fn runs_agree_across_thread_counts_and_repeat_bit_for_bit() {
    let bits = |t: &FusedTrainer| t.net().params.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    // 200 rows: one block on one thread; 64, 64, 64 and 8 rows, claimed by whichever thread
    // is free, on two or three. The W2D network (256 wide, four parameter blocks a layer)
    // and a narrow one.
    // With and without clipping (the default W2D run has none).
    for (cfg, steps, clip) in [(small(), 30, Some(0.5)), (small(), 30, None), (MlpFieldConfig::default(), 4, None)] {
        let tc = TrainConfig { batch_size: 200, grad_clip: clip, ..train_cfg(steps) };
        let a = fused_run_of(cfg, tc, 2, steps);
        assert_eq!(a.threads(), 2);
        assert_eq!(bits(&a), bits(&fused_run_of(cfg, tc, 2, steps)), "same thread count, same bits");
        // Every sum runs in one order whatever the blocks: the thread count changes no bit.
        for threads in [1, 3] {
            assert_eq!(bits(&fused_run_of(cfg, tc, threads, steps)), bits(&a), "{threads} vs 2 threads");
        }
        // Not vacuous: the weights moved.
        let start = FusedTrainer::new(cfg, TrainConfig { threads: 1, ..tc }).unwrap();
        assert!(rel(&a.net().params, &start.net().params) > 1e-4);
    }
}

#[test]
fn checkpoints_resume_bit_for_bit_and_load_into_the_burn_trainer() {
    let dir = tempfile::tempdir().unwrap();
    let tc = train_cfg(20);
    let full = fused_run(tc, 2, 20);
    let half = fused_run(tc, 2, 10);
    let p = dir.path().join("f.safetensors");
    half.save(&p).unwrap();
    let ck = Checkpoint::read(&p).unwrap();
    // Fused → fused: exact resume.
    let mut resumed = FusedTrainer::resume(&ck, None).unwrap();
    let mut src = GaussianSource { dim: 2, std: 1.0 };
    let mut data = World::Moons;
    while resumed.step() < 20 {
        let mut r = step_rng(tc.seed, resumed.step());
        let (x0, _) = src.sample(tc.batch_size, &mut r);
        let (x1, _) = data.sample(tc.batch_size, &mut r);
        resumed.train_step(&x0, &x1, None, &mut r).unwrap();
    }
    assert_eq!(resumed.net().params, full.net().params);
    // Fused → burn: the same weights, EMA and Adam state; its next step is the fused one's.
    let dev = Default::default();
    let mut ck_burn = ck.clone();
    let mut tcb: TrainConfig = serde_json::from_str(ck.meta("ferroflow.train").unwrap()).unwrap();
    tcb.engine = EngineChoice::Burn;
    ck_burn.metadata.insert("ferroflow.train".into(), serde_json::to_string(&tcb).unwrap());
    let mut burn = Trainer::<CpuAutodiff>::resume(&ck_burn, &dev).unwrap();
    assert!(!burn.uses_engine());
    let want = half.sampling_net().to_tensors();
    assert_eq!(burn.sampling_model().to_tensors(), want, "EMA weights load bit for bit");
    let mut fused = FusedTrainer::resume(&ck, None).unwrap();
    let mut r = step_rng(tc.seed, 10);
    let (x0, _) = src.sample(tc.batch_size, &mut r);
    let (x1, _) = data.sample(tc.batch_size, &mut r);
    burn.train_step(&x0, &x1, None, &mut r.clone()).unwrap();
    fused.train_step(&x0, &x1, None, &mut r).unwrap();
    let bw: Vec<f32> = burn.current_model().to_tensors().into_iter().flat_map(|t| t.data).collect();
    // Same Adam moments in, so the step agrees to f32 rounding (1e-5 of the largest weight).
    assert!(rel(&fused.net().params, &bw) < 1e-5);
    // Burn → fused: a burn checkpoint resumes on the engine.
    let pb = dir.path().join("b.safetensors");
    burn.save(&pb).unwrap();
    let from_burn = FusedTrainer::resume(&Checkpoint::read(&pb).unwrap(), Some(1)).unwrap();
    assert_eq!(from_burn.step(), 11);
    assert_eq!(from_burn.net().params, bw);
}

#[test]
fn nan_loss_stops_the_engine_without_an_update() {
    let mut tr = FusedTrainer::new(small(), TrainConfig { threads: 2, ..train_cfg(5) }).unwrap();
    let before = tr.net().params.clone();
    let x0 = Points::new(vec![f32::NAN, 0.0, 1.0, 1.0], 2, 2).unwrap();
    let x1 = Points::new(vec![0.0; 4], 2, 2).unwrap();
    let e = tr.train_step(&x0, &x1, None, &mut rng::seeded(0)).unwrap_err();
    assert!(matches!(e, ferroflow::Error::NonFinite { step: 1, .. }), "{e}");
    assert_eq!(tr.net().params, before);
    assert_eq!(tr.step(), 0);
}

#[test]
fn samplers_equal_the_burn_paths_on_the_same_x0() {
    let dev = Default::default();
    for (k, cfg) in shapes().into_iter().enumerate() {
        let model = cfg.init::<Cpu>(&dev, &mut rng::seeded(50 + k as u64));
        for n in [1, 4, 300] {
            let b = batch(&cfg, n, 40);
            let d = cfg.d_input;
            let x0 = tensor2::<Cpu>(&b.x, n, d, &dev);
            let cond = b.burn_cond::<Cpu>(&dev);
            let grid = TimeGrid::uniform(0.0, 1.0, 6).unwrap();
            for threads in [1, 2] {
                let f = FusedField::from_field(&model, threads);
                for method in OdeMethod::ALL {
                    let want = ode::integrate(&model, method, x0.clone(), cond.as_ref(), &grid, false).unwrap();
                    let want = Points::from_tensor(want.x).data;
                    // The blocked sampler.
                    let mut x = b.x.clone();
                    f.integrate(method, &mut x, b.host(), grid.as_slice());
                    let e = rel(&x, &want);
                    assert!(e < 1e-5, "shape {k} n {n} {method:?} threads {threads}: {e:e}");
                    // Any solver through the VelocityField seam.
                    let got = ode::integrate(&f, method, x0.clone(), cond.as_ref(), &grid, false).unwrap();
                    let e = rel(&Points::from_tensor(got.x).data, &want);
                    assert!(e < 1e-5, "seam: shape {k} n {n} {method:?}: {e:e}");
                }
            }
            let sde =
                SdeConfig { scheduler: Default::default(), diffusion: Diffusion::SigmaScaled { scale: 0.5 }, steps: 8 };
            let f = FusedField::from_field(&model, 2);
            let want = sde.sample(&model, x0.clone(), cond.as_ref(), &mut rng::seeded(4)).unwrap();
            let got = sde.sample(&f, x0.clone(), cond.as_ref(), &mut rng::seeded(4)).unwrap();
            let e = rel(&Points::from_tensor(got.x).data, &Points::from_tensor(want.x).data);
            assert!(e < 1e-5, "sde: shape {k} n {n}: {e:e}");
        }
    }
}

/// `Precision::Bf16` against the f32 reference (the burn path): within bf16's rounding on every
/// shape (the velocity to 2 %, 32 Euler steps to 2 % of the particles' scale), measurably
/// not f32 on blocks of > 32 rows, and f32 bit for bit on small blocks and where the CPU has
/// no AVX512-BF16.
#[test]
fn bf16_precision_stays_within_its_rounding_of_the_f32_field() {
    let dev = Default::default();
    let have = bf16::supported();
    if !have {
        eprintln!("this CPU has no AVX512-BF16: checking the f32 fallback only");
    }
    for (k, cfg) in shapes().into_iter().enumerate() {
        let model = cfg.init::<Cpu>(&dev, &mut rng::seeded(70 + k as u64));
        let f32_field = FusedField::from_field(&model, 2);
        let mut f = FusedField::from_field(&model, 2);
        f.set_precision(Precision::Bf16);
        assert_eq!(f.precision(), if have { Precision::Bf16 } else { Precision::F32 });
        let n_hidden_products = cfg.n_hidden.saturating_sub(1);
        // 600 rows on 2 threads: three blocks of bf16's 256-row cap, two of f32's.
        for n in [5, 300, 600] {
            let b = batch(&cfg, n, 80 + n as u64);
            let d = cfg.d_input;
            let (mut want, mut got) = (vec![0f32; n * d], vec![0f32; n * d]);
            f32_field.velocity_host(&b.x, &b.t, b.host(), &mut want);
            f.velocity_host(&b.x, &b.t, b.host(), &mut got);
            let e = rel(&got, &want);
            if n <= 32 || !have || n_hidden_products == 0 {
                assert_eq!(got, want, "shape {k} n {n}: f32 where bf16 does not apply");
                continue;
            }
            assert!(e < 2e-2 && e > 1e-5, "shape {k} n {n}: velocity rel error {e:e}");
            let grid = TimeGrid::uniform(0.0, 1.0, 32).unwrap();
            let (mut xw, mut xg) = (b.x.clone(), b.x.clone());
            f32_field.integrate(OdeMethod::Euler, &mut xw, b.host(), grid.as_slice());
            f.integrate(OdeMethod::Euler, &mut xg, b.host(), grid.as_slice());
            let e = rel(&xg, &xw);
            assert!(e < 2e-2, "shape {k} n {n}: Euler-32 rel error {e:e}");
        }
    }
}

#[test]
fn jvp_equals_the_burn_paths_tangent_propagation() {
    // The burn path's JVP is itself checked against finite differences (model::jvp); here the
    // fused one must give the same numbers for every shape, tangent count, time tangent,
    // thread count and instruction set.
    let dev = Default::default();
    for (s, cfg) in shapes().into_iter().enumerate() {
        let model = cfg.init::<Cpu>(&dev, &mut rng::seeded(70 + s as u64));
        let d = cfg.d_input;
        for n in [1, 37, 300] {
            let b = batch(&cfg, n, 90 + n as u64);
            let cond = b.burn_cond::<Cpu>(&dev);
            let t = Tensor::<Cpu, 1>::from_data(TensorData::new(b.t.clone(), [n]), &dev);
            for k in [1, 3] {
                let dx = rng::normal_vec(&mut rng::seeded(k as u64), k * n * d);
                let dt = rng::normal_vec(&mut rng::seeded(5 + k as u64), k * n);
                for with_dt in [false, true] {
                    let dtt = with_dt.then(|| Tensor::<Cpu, 1>::from_data(TensorData::new(dt.clone(), [k * n]), &dev));
                    let x = tensor2::<Cpu>(&b.x, n, d, &dev);
                    let (v_want, jv_want) = model.forward_jvp(
                        x.clone(),
                        t.clone(),
                        cond.as_ref(),
                        tensor2(&dx, k * n, d, &dev),
                        dtt.clone(),
                    );
                    let (v_want, jv_want) = (Points::from_tensor(v_want).data, Points::from_tensor(jv_want).data);
                    for threads in [1, 2] {
                        for isa in Isa::available() {
                            let mut f = FusedField::from_field(&model, threads);
                            f.set_isa(isa);
                            let (v, jv) = JvpField::<Cpu>::forward_jvp(
                                &f,
                                x.clone(),
                                t.clone(),
                                cond.as_ref(),
                                tensor2(&dx, k * n, d, &dev),
                                dtt.clone(),
                            );
                            let at = format!("shape {s} n {n} k {k} dt {with_dt} threads {threads} {isa:?}");
                            let e = rel(&Points::from_tensor(v).data, &v_want);
                            assert!(e < 1e-5, "{at}: v rel error {e:e}");
                            let e = rel(&Points::from_tensor(jv).data, &jv_want);
                            assert!(e < 1e-5, "{at}: jv rel error {e:e}");
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn divergence_equals_the_burn_paths_one_hot_jvps() {
    // The fused route skips the first layer's tangent product and the last layer's
    // off-diagonal outputs; it must give the divergence of the burn path's one-hot JVPs
    // (itself checked against finite differences in likelihood) for every shape, one hidden
    // layer included, thread count and instruction set.
    let vec1 = |t: Tensor<Cpu, 1>| t.into_data().into_vec::<f32>().unwrap();
    let dev = Default::default();
    let mut cfgs = shapes();
    cfgs.push(MlpFieldConfig { d_input: 40, d_hidden: 9, n_hidden: 1, ..Default::default() });
    for (s, cfg) in cfgs.into_iter().enumerate() {
        let model = cfg.init::<Cpu>(&dev, &mut rng::seeded(170 + s as u64));
        let d = cfg.d_input;
        for n in [1, 37, 300] {
            let b = batch(&cfg, n, 190 + n as u64);
            let cond = b.burn_cond::<Cpu>(&dev);
            let t = Tensor::<Cpu, 1>::from_data(TensorData::new(b.t.clone(), [n]), &dev);
            let x = tensor2::<Cpu>(&b.x, n, d, &dev);
            let (v_want, div_want) = exact_divergence_by_jvp(&model, x.clone(), t.clone(), cond.as_ref());
            let (v_want, div_want) = (Points::from_tensor(v_want).data, vec1(div_want));
            for threads in [1, 2] {
                for isa in Isa::available() {
                    let mut f = FusedField::from_field(&model, threads);
                    f.set_isa(isa);
                    let (v, div) = exact_divergence::<Cpu, _>(&f, x.clone(), t.clone(), cond.as_ref());
                    let at = format!("shape {s} n {n} threads {threads} {isa:?}");
                    let e = rel(&Points::from_tensor(v).data, &v_want);
                    assert!(e < 1e-5, "{at}: v rel error {e:e}");
                    let e = rel(&vec1(div), &div_want);
                    assert!(e < 1e-5, "{at}: div rel error {e:e}");
                }
            }
        }
    }
}

#[test]
fn divergence_gradient_and_guidance_equal_the_burn_paths_autodiff() {
    // ∇ₓ(∇·v) by the engine's reverse pass through the tangents against burn's reverse-mode
    // autodiff through its JVP (guidance::divergence_gradient, itself checked against finite
    // differences), then the guided velocity against guidance::Guided. Second derivatives in
    // f32: 1e-4 relative to the largest entry.
    let dev = Default::default();
    let vec1 = |t: Tensor<Cpu, 1>| t.into_data().into_vec::<f32>().unwrap();
    for (s, cfg) in shapes().into_iter().enumerate() {
        let model = cfg.init::<Cpu>(&dev, &mut rng::seeded(270 + s as u64));
        let model_ad = cfg.init::<CpuAutodiff>(&dev, &mut rng::seeded(270 + s as u64)).no_grad();
        let d = cfg.d_input;
        for n in [1, 37, 300] {
            let b = batch(&cfg, n, 290 + n as u64);
            let cond = b.burn_cond::<Cpu>(&dev);
            let t = Tensor::<Cpu, 1>::from_data(TensorData::new(b.t.clone(), [n]), &dev);
            let x = tensor2::<Cpu>(&b.x, n, d, &dev);
            let want = divergence_gradient::<CpuAutodiff, _>(
                &model_ad,
                &DivergenceMethod::Exact,
                x.clone(),
                t.clone(),
                cond.as_ref(),
            );
            let (v_want, div_want, grad_want) =
                (Points::from_tensor(want.v).data, vec1(want.div), Points::from_tensor(want.grad).data);
            let config = GuidanceConfig { lambda: 0.7, t_min: 0.2, t_max: 0.9, ..Default::default() };
            let guided_want =
                Points::from_tensor(Guided::<CpuAutodiff, _>::new(model_ad.clone(), config).unwrap().velocity(
                    x.clone(),
                    t.clone(),
                    cond.as_ref(),
                ))
                .data;
            for (threads, isa) in [1, 2].into_iter().flat_map(|th| Isa::available().into_iter().map(move |i| (th, i))) {
                let mut f = FusedField::from_field(&model, threads);
                f.set_isa(isa);
                let (mut v, mut div, mut grad) = (vec![0f32; n * d], vec![0f32; n], vec![0f32; n * d]);
                f.divergence_gradient_host(&b.x, &b.t, b.host(), &mut v, &mut div, &mut grad);
                let at = format!("shape {s} n {n} threads {threads} {isa:?}");
                let e = rel(&v, &v_want);
                assert!(e < 1e-5, "{at}: v rel error {e:e}");
                let e = rel(&div, &div_want);
                assert!(e < 1e-5, "{at}: div rel error {e:e}");
                let e = rel(&grad, &grad_want);
                assert!(e < 1e-4, "{at}: grad rel error {e:e}");
                let guided = f.guided(config).unwrap();
                let got =
                    Points::from_tensor(VelocityField::<Cpu>::velocity(&guided, x.clone(), t.clone(), cond.as_ref()))
                        .data;
                let e = rel(&got, &guided_want);
                assert!(e < 1e-4, "{at}: guided velocity rel error {e:e}");
            }
        }
    }
}

#[test]
fn auto_picks_the_engine_on_the_cpu_default_only() {
    let tc = TrainConfig { steps: 1, ..Default::default() };
    let a = Trainer::<CpuAutodiff>::new(small(), tc, &Default::default()).unwrap();
    assert!(a.uses_engine());
    let b = Trainer::<burn::backend::Autodiff<Cpu64>>::new(small(), tc, &Default::default()).unwrap();
    assert!(!b.uses_engine());
    // Engine and burn initialise the same weights from the same seed.
    let c = Trainer::<CpuAutodiff>::new(small(), TrainConfig { engine: EngineChoice::Burn, ..tc }, &Default::default())
        .unwrap();
    assert_eq!(a.current_model().to_tensors(), c.current_model().to_tensors());
}
