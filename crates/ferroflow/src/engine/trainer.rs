//! [`FusedTrainer`]: conditional flow matching on the fused engine, with the options, random
//! draws and checkpoint format of [`crate::train::Trainer`].
//!
//! A step draws exactly what the burn trainer draws, in the same order (times, then label
//! dropout), forms x_t and u_t in f32 as burn does, then, on the calling thread and the
//! engine's helpers, runs forward + backward ([`super::mlp`]: row blocks, then parameter
//! blocks), checks the loss, and clipping + Adam + EMA over fixed slices of the parameters.

use crate::checkpoint::Checkpoint;
use crate::data::Points;
use crate::error::{Error, Result};
use crate::model::{ConditionConfig, HostTensor, MlpField, MlpFieldConfig};
use crate::path::Scheduler as _;
use crate::rng::Rng;
use crate::train::{TrainConfig, configs_from};

use super::mlp::{FusedMlp, HostCondition, TrainRows, TrainWork, forward_backward, tensors_of, transposed_weights};
use super::optim::{AdamStep, adam_update, grad_norm};
use super::simd::Isa;
use super::threads::Threads;

/// Trains an MLP field by conditional flow matching on the fused CPU engine.
#[derive(Debug)]
pub struct FusedTrainer {
    config: TrainConfig,
    net: FusedMlp,
    m: Vec<f32>,
    v: Vec<f32>,
    optim_t: u64,
    ema: Option<Vec<f32>>,
    step: u64,
    threads: Threads,
    isa: Isa,
    work: TrainWork,
    wt: Vec<Vec<f32>>,
    xt: Vec<f32>,
    ut: Vec<f32>,
    t: Vec<f32>,
    labels: Vec<u32>,
    /// Extra JSON stored in checkpoints (as [`crate::train::Trainer::run_info`]).
    pub run_info: serde_json::Value,
}

/// The CFM loss mean ‖v − u_t‖²/d over a batch and its gradient with respect to every trained
/// parameter (flat, PyTorch layout), by the engine on `threads` threads with `isa`.
///
/// # Shapes
/// `xt, ut: [n, d]`, `t: [n]` → (loss, `[layout.len]`)
pub fn loss_and_grad(
    net: &FusedMlp,
    xt: &[f32],
    t: &[f32],
    ut: &[f32],
    cond: HostCondition<'_>,
    threads: &Threads,
    isa: Isa,
) -> (f64, Vec<f32>) {
    let mut wt = Vec::new();
    let mut work = TrainWork::new(&net.layout);
    let n = t.len();
    let rows = TrainRows { xt, t, ut, cond, rows: n };
    let scale = 1.0 / (n * net.config.d_input) as f32;
    threads.install(|| {
        transposed_weights(net, threads, &mut wt);
        forward_backward(isa, threads, net, &wt, rows, scale, &mut work);
    });
    let loss = work.sq_err() / (n * net.config.d_input) as f64;
    (loss, work.grad)
}

impl FusedTrainer {
    /// A new run: weights initialised from the seed exactly as [`crate::train::Trainer::new`]
    /// does, on `config.threads` threads (0: one per core).
    ///
    /// # Errors
    /// [`crate::error::ConfigError`] for invalid settings.
    pub fn new(model_config: MlpFieldConfig, config: TrainConfig) -> Result<Self> {
        model_config.validate()?;
        config.validate()?;
        let net = FusedMlp::init(model_config, &mut crate::rng::seeded(config.seed));
        Ok(Self::from_parts(config, net, None, 0, 0))
    }

    /// Starts from given weights (e.g. a burn field's), step 0, fresh optimizer.
    ///
    /// # Errors
    /// [`crate::error::ConfigError`] for invalid settings.
    pub fn from_model(net: FusedMlp, config: TrainConfig) -> Result<Self> {
        net.config.validate()?;
        config.validate()?;
        Ok(Self::from_parts(config, net, None, 0, 0))
    }

    fn from_parts(config: TrainConfig, net: FusedMlp, opt: Option<(Vec<f32>, Vec<f32>)>, t: u64, step: u64) -> Self {
        let len = net.layout.len;
        let (m, v) = opt.unwrap_or_else(|| (vec![0.0; len], vec![0.0; len]));
        let ema = config.ema_decay.map(|_| net.params.clone());
        let threads = Threads::new(config.threads);
        let work = TrainWork::new(&net.layout);
        Self {
            config,
            net,
            m,
            v,
            optim_t: t,
            ema,
            step,
            threads,
            isa: Isa::detect(),
            work,
            wt: Vec::new(),
            xt: Vec::new(),
            ut: Vec::new(),
            t: Vec::new(),
            labels: Vec::new(),
            run_info: serde_json::Value::Null,
        }
    }

    /// Steps done so far.
    pub fn step(&self) -> u64 {
        self.step
    }

    /// The training settings.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// Changes the total number of steps.
    pub fn set_total_steps(&mut self, steps: u64) {
        self.config.steps = steps;
    }

    /// The model settings.
    pub fn model_config(&self) -> &MlpFieldConfig {
        &self.net.config
    }

    /// Number of threads in use.
    pub fn threads(&self) -> usize {
        self.threads.count()
    }

    /// The engine's threads: [`Threads::ahead`] queues work for a helper that is idle
    /// between two jobs (the trainer's next batch plan, the explorer's snapshots).
    pub fn pool(&self) -> &Threads {
        &self.threads
    }

    /// Changes the thread count (0: one per core); the results stay the same bit for bit.
    pub fn set_threads(&mut self, threads: usize) {
        self.config.threads = threads;
        self.threads = Threads::new(threads);
    }

    /// Runs on another instruction set (tests compare them; [`Isa::detect`] is the default).
    pub fn set_isa(&mut self, isa: Isa) {
        self.isa = isa;
    }

    /// The current weights.
    pub fn net(&self) -> &FusedMlp {
        &self.net
    }

    /// The weights to sample from: the EMA if on, the current weights otherwise.
    pub fn sampling_net(&self) -> FusedMlp {
        match &self.ema {
            Some(e) => FusedMlp { params: e.clone(), ..self.net.clone() },
            None => self.net.clone(),
        }
    }

    /// [`Self::sampling_net`] as a burn field on `device`.
    pub fn sampling_model<B: burn::tensor::backend::Backend>(&self, device: &B::Device) -> MlpField<B> {
        self.sampling_net().to_field(device)
    }

    /// The current weights as a burn field on `device`.
    pub fn current_model<B: burn::tensor::backend::Backend>(&self, device: &B::Device) -> MlpField<B> {
        self.net.to_field(device)
    }

    /// One optimizer step on the pairs `(x0[i], x1[i])`, drawing times (and label dropout)
    /// from `rng` as [`crate::train::Trainer::train_step`] does. Returns the batch loss.
    ///
    /// # Errors
    /// [`Error::NonFinite`] if the loss is NaN or infinite (no update is applied);
    /// [`Error::Shape`] if the batches disagree.
    pub fn train_step(&mut self, x0: &Points, x1: &Points, labels: Option<&[u32]>, rng: &mut Rng) -> Result<f64> {
        self.train_step_with(x0, x1, labels, None, rng)
    }

    /// As [`Self::train_step`], with a condition vector per row for vector-conditioned fields
    /// (`cond: [batch, d_cond]`, row-major).
    ///
    /// # Errors
    /// As [`Self::train_step`].
    pub fn train_step_with(
        &mut self,
        x0: &Points,
        x1: &Points,
        labels: Option<&[u32]>,
        cond: Option<&[f32]>,
        rng: &mut Rng,
    ) -> Result<f64> {
        let n = x0.n;
        let d = self.net.config.d_input;
        if x1.n != n || x0.dim != d || x1.dim != d {
            return Err(Error::Shape {
                op: "FusedTrainer::train_step",
                expected: format!("x0 and x1 of the same size with {d} columns"),
                got: format!("{}×{} and {}×{}", x0.n, x0.dim, x1.n, x1.dim),
            });
        }
        let t = self.config.time_sampler.sample(n, rng);
        let sched = self.config.scheduler;
        self.xt.resize(n * d, 0.0);
        self.ut.resize(n * d, 0.0);
        self.t.clear();
        for (i, &ti) in t.iter().enumerate() {
            let s = sched.at(ti);
            let (a, sg, da, ds) = (s.alpha_t as f32, s.sigma_t as f32, s.d_alpha_t as f32, s.d_sigma_t as f32);
            for j in 0..d {
                let (u0, u1) = (x0.data[i * d + j], x1.data[i * d + j]);
                self.xt[i * d + j] = u1 * a + u0 * sg;
                self.ut[i * d + j] = u1 * da + u0 * ds;
            }
            self.t.push(ti as f32);
        }
        let host_cond = match (self.net.config.condition, labels, cond) {
            (ConditionConfig::Class { n_classes, .. }, Some(l), _) => {
                crate::train::drop_labels_into(l, self.config.label_dropout, n_classes, rng, &mut self.labels);
                HostCondition::Class(&self.labels)
            }
            (ConditionConfig::Vector { d_cond }, _, Some(c)) if c.len() == n * d_cond => HostCondition::Vector(c),
            (ConditionConfig::Vector { d_cond }, _, c) => {
                return Err(Error::Shape {
                    op: "FusedTrainer::train_step",
                    expected: format!("a condition of {n}×{d_cond} values"),
                    got: format!("{:?} values", c.map(<[f32]>::len)),
                });
            }
            _ => HostCondition::None,
        };
        let rows = TrainRows { xt: &self.xt, t: &self.t, ut: &self.ut, cond: host_cond, rows: n };
        let scale = 1.0 / (n * d) as f32;
        let Self { isa, threads, net, wt, work, m, v, ema, config, .. } = self;
        let isa = *isa;
        let lr = config.lr_at(self.step);
        let ema_decay = config.ema_decay_at(self.step + 1);
        let grad_clip = config.grad_clip;
        let optimizer = config.optimizer;
        let optim_t = self.optim_t + 1;
        // The phases run on this thread and the engine's helpers (no hand-over).
        let loss = threads.install(|| {
            transposed_weights(net, threads, wt);
            forward_backward(isa, threads, net, wt, rows, scale, work);
            let loss = work.sq_err() / (n * d) as f64;
            if !loss.is_finite() {
                return loss;
            }
            let grad_scale = match grad_clip {
                Some(c) => {
                    let norm = grad_norm(isa, threads, &work.grad);
                    if norm > c { c / norm } else { 1.0 }
                }
                None => 1.0,
            };
            let step = AdamStep::new(optimizer, optim_t, lr, grad_scale, ema_decay);
            adam_update(isa, threads, &work.grad, &mut net.params, m, v, ema.as_deref_mut(), step);
            loss
        });
        if !loss.is_finite() {
            return Err(Error::NonFinite { step: self.step + 1, value: loss });
        }
        self.optim_t = optim_t;
        self.step += 1;
        Ok(loss)
    }

    /// The full state as a checkpoint, in the same format as the burn trainer's (either
    /// trainer resumes from the other's files).
    pub fn to_checkpoint(&self) -> Checkpoint {
        let cfg = &self.net.config;
        let specs = cfg.tensor_specs();
        let mut c = Checkpoint::default();
        for (s, t) in specs.iter().zip(self.net.to_tensors()) {
            c.tensors.insert(s.name.clone(), t);
        }
        let trained = |buf: &[f32]| -> Vec<HostTensor> {
            tensors_of(cfg, buf, &self.net.freqs)
                .into_iter()
                .zip(&specs)
                .filter(|(_, s)| s.trained)
                .map(|(t, _)| t)
                .collect()
        };
        let names: Vec<&String> = specs.iter().filter(|s| s.trained).map(|s| &s.name).collect();
        if let Some(e) = &self.ema {
            for (n, t) in names.iter().zip(trained(e)) {
                c.tensors.insert(format!("ema.{n}"), t);
            }
        }
        if self.optim_t > 0 {
            for (key, buf) in [("exp_avg", &self.m), ("exp_avg_sq", &self.v)] {
                for (n, t) in names.iter().zip(trained(buf)) {
                    c.tensors.insert(format!("optim.{key}.{n}"), t);
                }
            }
        }
        c.metadata.insert("ferroflow.model".into(), serde_json::to_string(cfg).expect("json"));
        c.metadata.insert("ferroflow.train".into(), serde_json::to_string(&self.config).expect("json"));
        c.metadata.insert("ferroflow.step".into(), self.step.to_string());
        c.metadata.insert("ferroflow.optim_t".into(), self.optim_t.to_string());
        c.metadata.insert("ferroflow.run".into(), self.run_info.to_string());
        c
    }

    /// Writes a checkpoint atomically.
    ///
    /// # Errors
    /// [`crate::checkpoint::CheckpointError::Io`].
    pub fn save(&self, path: &std::path::Path) -> Result<()> {
        Ok(self.to_checkpoint().write(path)?)
    }

    /// Resumes the run saved in `ckpt` (by either trainer): weights, EMA, Adam state, step.
    /// `threads` overrides the stored thread count when given.
    ///
    /// # Errors
    /// [`crate::checkpoint::CheckpointError`] if the file lacks a tensor or metadata, or a shape disagrees.
    pub fn resume(ckpt: &Checkpoint, threads: Option<usize>) -> Result<Self> {
        let (model_config, mut config) = configs_from(ckpt)?;
        if let Some(t) = threads {
            config.threads = t;
        }
        let step = ckpt.meta_u64("ferroflow.step")?;
        let optim_t = ckpt.meta_u64("ferroflow.optim_t")?;
        let specs = model_config.tensor_specs();
        let trained: Vec<_> = specs.iter().filter(|s| s.trained).cloned().collect();
        let net = FusedMlp::from_tensors(model_config, &ckpt.tensors_for(&specs, "")?);
        let flat = |prefix: &str| -> Result<Vec<f32>> {
            Ok(ckpt.tensors_for(&trained, prefix)?.into_iter().flat_map(|t| t.data).collect())
        };
        let opt = if optim_t > 0 { Some((flat("optim.exp_avg.")?, flat("optim.exp_avg_sq.")?)) } else { None };
        let ema = match config.ema_decay {
            Some(_) => Some(flat("ema.")?),
            None => None,
        };
        let mut tr = Self::from_parts(config, net, opt, optim_t, step);
        tr.ema = ema;
        tr.run_info = ckpt.metadata.get("ferroflow.run").and_then(|s| serde_json::from_str(s).ok()).unwrap_or_default();
        Ok(tr)
    }
}
