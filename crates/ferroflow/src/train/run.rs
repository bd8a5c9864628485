use std::path::Path;

use burn::module::AutodiffModule;
use burn::optim::GradientsParams;
use burn::tensor::{ElementConversion, Int, Tensor, TensorData, backend::AutodiffBackend};
use rand::SeedableRng;

use super::config::TrainConfig;
use super::ema::Ema;
use super::optim::{Adam, grad_norm};
use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::data::{PointSource, Points};
use crate::engine::{FusedMlp, FusedTrainer};
use crate::error::{ConfigError, Error, Result};
use crate::model::{Condition, FieldConfig, HostTensor, MlpField, MlpFieldConfig, TensorSpec, VelocityField};
use crate::objective::cfm_loss;
use crate::path::AffinePath;
use crate::rng::Rng;

/// What the trainer reports as it goes.
#[derive(Debug)]
pub enum TrainEvent<'a, M = MlpField<crate::backend::Cpu>> {
    /// An optimizer step finished (`step` counts steps done, from 1).
    Step {
        /// Steps done.
        step: u64,
        /// The loss of this step's batch.
        loss: f64,
        /// The learning rate used.
        lr: f64,
    },
    /// Every `eval_every` steps (see [`Trainer::run`]): the sampling model (EMA weights if
    /// EMA is on), on the inner backend, for the caller to evaluate.
    Eval {
        /// Steps done.
        step: u64,
        /// The model to sample from.
        model: &'a M,
    },
    /// A checkpoint was written.
    Checkpoint {
        /// Steps done.
        step: u64,
        /// Where.
        path: &'a Path,
    },
}

/// The callback of [`Trainer::run`]: told of every event, says whether to go on.
pub type OnEvent<'f, M> = dyn FnMut(TrainEvent<'_, M>) -> Control + 'f;

/// Whether to go on after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Go on.
    Continue,
    /// Stop after this step (a checkpoint is written if a path was given).
    Stop,
}

/// Trains a velocity field (an [`MlpField`] by default, or any [`FieldConfig`]'s network, such as
/// the U-Net) by conditional flow matching on an autodiff backend.
///
/// With `config.engine` = `auto` (the default) on [`crate::backend::CpuAutodiff`], or `fused`
/// on any backend, every step runs on the fused CPU engine ([`crate::engine::FusedTrainer`]):
/// the same random draws, options and checkpoint files, several times faster. The methods
/// below then return the engine's state.
#[derive(Debug)]
pub struct Trainer<B: AutodiffBackend, C: FieldConfig = MlpFieldConfig> {
    model_config: C,
    config: TrainConfig,
    model: C::Field<B>,
    optim: Adam<B::InnerBackend>,
    ema: Option<Ema<C::Field<B::InnerBackend>>>,
    step: u64,
    device: B::Device,
    /// The fused CPU engine, when it trains this run (see [`crate::engine::EngineChoice`]);
    /// then it holds the state and the fields above keep the initial weights only.
    fused: Option<Box<FusedTrainer>>,
    /// Extra JSON stored in checkpoints (e.g. the data settings of the command line).
    pub run_info: serde_json::Value,
}

/// One step's paired batch and the random stream the step goes on drawing from.
struct Batch {
    x0: Points,
    x1: Points,
    labels: Option<Vec<u32>>,
    rng: Rng,
}

/// What a step's batch depends on besides the sources.
#[derive(Clone, Copy)]
struct BatchPrep {
    seed: u64,
    batch: usize,
    coupling: crate::coupling::CouplingConfig,
}

/// Step `step`'s draws, before the coupling pairs them.
struct Draws {
    x0: Points,
    x1: Points,
    labels: Option<Vec<u32>>,
    rng: Rng,
}

impl BatchPrep {
    /// Step `step`'s batch: x₀ and x₁ drawn from the step's stream, paired by the coupling.
    fn make(&self, source: &mut dyn PointSource, target: &mut dyn PointSource, step: u64) -> Result<Batch> {
        self.pair(self.draw(source, target, step))
    }

    /// Step `step`'s draws (the sources are used on the calling thread only).
    fn draw(&self, source: &mut dyn PointSource, target: &mut dyn PointSource, step: u64) -> Draws {
        let mut rng = step_rng(self.seed, step);
        let (x0, _) = source.sample(self.batch, &mut rng);
        let (x1, labels) = target.sample(self.batch, &mut rng);
        Draws { x0, x1, labels, rng }
    }

    /// The draws paired by the coupling, which goes on drawing from their stream.
    fn pair(&self, d: Draws) -> Result<Batch> {
        let Draws { x0, x1, labels, mut rng } = d;
        let pairing = self.coupling.pair(&x0, &x1, labels.as_deref(), &mut rng)?;
        let labels = labels.map(|l| pairing.i1.iter().map(|&i| l[i]).collect::<Vec<_>>());
        Ok(Batch { x0: x0.select(&pairing.i0), x1: x1.select(&pairing.i1), labels, rng })
    }
}

/// The random stream of step `step` of a run with `seed` (stream 0 initialises the weights).
pub fn step_rng(seed: u64, step: u64) -> Rng {
    let mut r = Rng::seed_from_u64(seed);
    r.set_stream(step + 1);
    r
}

impl<B, C> Trainer<B, C>
where
    B: AutodiffBackend,
    C: FieldConfig,
    C::Field<B>: AutodiffModule<B, InnerModule = C::Field<B::InnerBackend>>,
{
    /// A new run: weights initialised from the seed.
    ///
    /// # Errors
    /// [`ConfigError`] for invalid settings.
    pub fn new(model_config: C, config: TrainConfig, device: &B::Device) -> Result<Self> {
        model_config.validate()?;
        config.validate()?;
        let model = model_config.init::<B>(device, &mut crate::rng::seeded(config.seed));
        let ema = config.ema_decay.map(|d| Ema::new(model.valid(), d));
        let fused = match model_config.as_mlp() {
            Some(mlp) if config.engine.uses_engine::<B>() => {
                let net = FusedMlp::from_tensors(mlp, &C::tensors_of(&model));
                Some(Box::new(FusedTrainer::from_model(net, config)?))
            }
            _ => None,
        };
        Ok(Self {
            model_config,
            config,
            model,
            optim: Adam::new(config.optimizer),
            ema,
            step: 0,
            device: device.clone(),
            fused,
            run_info: serde_json::Value::Null,
        })
    }

    /// Sets the fused engine's thread count (0: one per core); no effect on the burn path.
    pub fn set_threads(&mut self, threads: usize) {
        self.config.threads = threads;
        if let Some(f) = &mut self.fused {
            f.set_threads(threads);
        }
    }

    /// The fused engine's threads, when it trains this run: work queued there with
    /// [`crate::engine::Threads::ahead`] runs on a helper between the steps' jobs instead of
    /// on a thread of its own that would preempt an engine thread mid-block.
    pub fn engine_threads(&self) -> Option<&crate::engine::Threads> {
        self.fused.as_ref().map(|f| f.pool())
    }

    /// Whether the fused CPU engine trains this run.
    pub fn uses_engine(&self) -> bool {
        self.fused.is_some()
    }

    /// Steps done so far.
    pub fn step(&self) -> u64 {
        self.step
    }

    /// The training settings.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// Changes the total number of steps (to train further after resuming).
    pub fn set_total_steps(&mut self, steps: u64) {
        self.config.steps = steps;
        if let Some(f) = &mut self.fused {
            f.set_total_steps(steps);
        }
    }

    /// The model settings.
    pub fn model_config(&self) -> &C {
        &self.model_config
    }

    /// The model for sampling, on the inner backend (no autodiff graph): the EMA weights if
    /// EMA is on, the current weights otherwise.
    pub fn sampling_model(&self) -> C::Field<B::InnerBackend> {
        if let Some(f) = &self.fused {
            return self.model_config.build_from_tensors(&f.sampling_net().to_tensors(), &self.device);
        }
        match &self.ema {
            Some(e) => e.module.clone(),
            None => self.model.valid(),
        }
    }

    /// The current (not averaged) weights on the inner backend.
    pub fn current_model(&self) -> C::Field<B::InnerBackend> {
        if let Some(f) = &self.fused {
            return self.model_config.build_from_tensors(&f.net().to_tensors(), &self.device);
        }
        self.model.valid()
    }

    /// One optimizer step on the given pairs' batch. Returns the batch loss.
    ///
    /// # Errors
    /// [`Error::NonFinite`] if the loss is NaN or infinite (no update is applied).
    pub fn train_step(&mut self, x0: &Points, x1: &Points, labels: Option<&[u32]>, rng: &mut Rng) -> Result<f64> {
        if let Some(f) = &mut self.fused {
            let loss = f.train_step(x0, x1, labels, rng)?;
            self.step = f.step();
            return Ok(loss);
        }
        let n = x0.n;
        let t = self.config.time_sampler.sample(n, rng);
        let path = AffinePath::new(self.config.scheduler);
        let s = path.sample::<B>(x0.to_tensor(&self.device), x1.to_tensor(&self.device), &t);
        let cond = match (self.model_config.n_classes(), labels) {
            (Some(n_classes), Some(l)) => {
                let l: Vec<i64> = super::drop_labels(l, self.config.label_dropout, n_classes, rng)
                    .into_iter()
                    .map(i64::from)
                    .collect();
                Some(Condition::Class(Tensor::<B, 1, Int>::from_data(TensorData::new(l, [n]), &self.device)))
            }
            _ => None,
        };
        let v = self.model.velocity(s.xt, s.t, cond.as_ref());
        let loss = cfm_loss(v, s.ut);
        let loss_value: f64 = loss.clone().into_scalar().elem::<f64>();
        if !loss_value.is_finite() {
            return Err(Error::NonFinite { step: self.step + 1, value: loss_value });
        }
        let mut grads = GradientsParams::from_grads(loss.backward(), &self.model);
        let scale = match self.config.grad_clip {
            Some(c) => {
                let norm = grad_norm(&self.model, &grads);
                if norm > c { c / norm } else { 1.0 }
            }
            None => 1.0,
        };
        let lr = self.config.lr_at(self.step);
        let model = self.model.clone();
        self.model = self.optim.step(model, &mut grads, lr, scale);
        self.step += 1;
        if let (Some(ema), Some(d)) = (&mut self.ema, self.config.ema_decay_at(self.step)) {
            ema.decay = d;
            ema.update(&self.model.valid());
        }
        Ok(loss_value)
    }

    /// Trains until `config.steps` steps are done, drawing each step's batch from `source`
    /// (x₀) and `target` (x₁, with labels for class-conditional fields), pairing them with the
    /// configured coupling. Writes a checkpoint to `checkpoint` every `checkpoint_every` steps
    /// and at the end. Every `eval_every` steps (0: never) it reports [`TrainEvent::Eval`].
    ///
    /// # Errors
    /// [`Error::NonFinite`] on a NaN/Inf loss (the last checkpoint written is kept);
    /// [`ConfigError`] if the sources do not fit the model; checkpoint I/O errors.
    pub fn run(
        &mut self,
        source: &mut dyn PointSource,
        target: &mut dyn PointSource,
        checkpoint: Option<&Path>,
        eval_every: u64,
        on_event: &mut OnEvent<'_, C::Field<B::InnerBackend>>,
    ) -> Result<()> {
        let d = self.model_config.dim();
        if source.dim() != d || target.dim() != d {
            return Err(ConfigError::Inconsistent(format!(
                "the model's dimension is {d} but the source has {} and the data {}",
                source.dim(),
                target.dim()
            ))
            .into());
        }
        if let Some(n_classes) = self.model_config.n_classes() {
            match target.n_classes() {
                Some(k) if k as usize <= n_classes => {}
                Some(k) => {
                    return Err(ConfigError::Inconsistent(format!(
                        "the data has {k} classes but the model was built for {n_classes}"
                    ))
                    .into());
                }
                None => {
                    return Err(
                        ConfigError::Inconsistent("a class-conditional model needs labelled data".into()).into()
                    );
                }
            }
        }
        if self.model_config.takes_vector_condition() {
            return Err(ConfigError::Inconsistent(
                "vector-conditioned fields are trained through the library with train_step".into(),
            )
            .into());
        }
        // Batches (draws, coupling, gathers) are a pure function of (seed, step), so they can
        // be made ahead on another thread with the same results: done for the burn path, for
        // big batches (images), where a step is long, and for couplings that solve a plan (an
        // exact OT plan at batch 256 costs half an engine step; made ahead, W2D with exact OT
        // trains 11–14 % faster on the engine: BENCHMARKS.md). Inline only for the engine's
        // small steps with independent pairs, whose own threads keep both cores busy.
        let solves_plan = !matches!(self.config.coupling, crate::coupling::CouplingConfig::Independent);
        let ahead = !self.uses_engine() || self.config.batch_size * d >= 1 << 14 || solves_plan;
        let prep = BatchPrep { seed: self.config.seed, batch: self.config.batch_size, coupling: self.config.coupling };
        if !ahead {
            let mut step = self.step;
            return self.consume(
                &mut || {
                    let b = prep.make(&mut *source, &mut *target, step);
                    step += 1;
                    b
                },
                checkpoint,
                eval_every,
                on_event,
            );
        }
        let (first, total) = (self.step, self.config.steps);
        // On the engine with helpers, the next step's pairing is a task for the first helper
        // that is idle between two jobs of this step (`Threads::ahead`): the draws stay on
        // this thread, only the plan moves. A thread of its own would preempt an engine
        // thread in the middle of a block and hold the step up (BENCHMARKS.md, exact OT).
        if solves_plan
            && let Some(pool) = self.fused.as_ref().map(|f| f.pool().clone())
            && pool.count() > 1
        {
            // A panicking source or coupling becomes an error of the run, as on the thread
            // below; a draw that panics fails the step it was for, not the one before.
            let stopped = || Error::ThreadStopped("the batch queue");
            let mut queue = |step: u64| {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    let d = prep.draw(&mut *source, &mut *target, step);
                    pool.ahead(move || prep.pair(d))
                }))
                .map_err(|_| stopped())
            };
            let mut step = first;
            let mut pending = (step < total).then(|| queue(step));
            return self.consume(
                &mut || {
                    let b = match pending.take() {
                        Some(Ok(a)) => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| a.wait()))
                            .unwrap_or_else(|_| Err(stopped())),
                        Some(Err(e)) => Err(e),
                        None => Err(stopped()),
                    };
                    step += 1;
                    if step < total {
                        pending = Some(queue(step));
                    }
                    b
                },
                checkpoint,
                eval_every,
                on_event,
            );
        }
        std::thread::scope(|scope| {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Batch>>(2);
            scope.spawn(move || {
                for step in first..total {
                    // A panicking source becomes an error of the run, not of the process.
                    let batch = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        prep.make(&mut *source, &mut *target, step)
                    }))
                    .unwrap_or(Err(Error::ThreadStopped("the batch thread")));
                    let failed = batch.is_err();
                    // A closed channel means the trainer stopped: so do we.
                    if tx.send(batch).is_err() || failed {
                        break;
                    }
                }
            });
            let mut next = || rx.recv().unwrap_or_else(|_| Err(Error::ThreadStopped("the batch thread")));
            self.consume(&mut next, checkpoint, eval_every, on_event)
        })
    }

    /// The training loop of [`Self::run`], taking each step's batch from `next`.
    fn consume(
        &mut self,
        next: &mut dyn FnMut() -> Result<Batch>,
        checkpoint: Option<&Path>,
        eval_every: u64,
        on_event: &mut OnEvent<'_, C::Field<B::InnerBackend>>,
    ) -> Result<()> {
        while self.step < self.config.steps {
            let Batch { x0, x1, labels, mut rng } = next()?;
            let lr = self.config.lr_at(self.step);
            let loss = self.train_step(&x0, &x1, labels.as_deref(), &mut rng)?;
            let step = self.step;
            let mut control = on_event(TrainEvent::Step { step, loss, lr });
            if eval_every > 0 && (step.is_multiple_of(eval_every) || step == self.config.steps) {
                let model = self.sampling_model();
                if on_event(TrainEvent::Eval { step, model: &model }) == Control::Stop {
                    control = Control::Stop;
                }
            }
            let every = self.config.checkpoint_every;
            let periodic = every > 0 && step.is_multiple_of(every);
            let last = step == self.config.steps || control == Control::Stop;
            if let Some(p) = checkpoint
                && (periodic || last)
            {
                self.save(p)?;
                if on_event(TrainEvent::Checkpoint { step, path: p }) == Control::Stop {
                    control = Control::Stop;
                }
            }
            if control == Control::Stop {
                break;
            }
        }
        Ok(())
    }

    /// The full state as a checkpoint (model, EMA, optimizer moments, configuration, step).
    pub fn to_checkpoint(&self) -> Checkpoint {
        if let Some(f) = &self.fused {
            let mut c = f.to_checkpoint();
            c.metadata.insert("ferroflow.run".into(), self.run_info.to_string());
            return c;
        }
        let specs = self.model_config.tensor_specs();
        let mut c = Checkpoint::default();
        for (s, t) in specs.iter().zip(C::tensors_of(&self.model)) {
            c.tensors.insert(s.name.clone(), t);
        }
        if let Some(e) = &self.ema {
            for (s, t) in specs.iter().zip(C::tensors_of(&e.module)) {
                if s.trained {
                    c.tensors.insert(format!("ema.{}", s.name), t);
                }
            }
        }
        let trained: Vec<_> = specs.iter().filter(|s| s.trained).collect();
        for (s, m) in trained.iter().zip(&self.optim.moments) {
            if let Some((m, v)) = m {
                let burn_shape: Vec<usize> =
                    if s.transposed { s.shape.iter().rev().copied().collect() } else { s.shape.clone() };
                for (key, t) in [("exp_avg", m), ("exp_avg_sq", v)] {
                    let mut h = HostTensor::from_tensor(t.clone());
                    h.shape = burn_shape.clone();
                    if s.transposed {
                        h = h.transposed();
                    }
                    c.tensors.insert(format!("optim.{key}.{}", s.name), h);
                }
            }
        }
        c.metadata.insert("ferroflow.field".into(), C::KIND.into());
        c.metadata.insert("ferroflow.model".into(), serde_json::to_string(&self.model_config).expect("json"));
        c.metadata.insert("ferroflow.train".into(), serde_json::to_string(&self.config).expect("json"));
        c.metadata.insert("ferroflow.step".into(), self.step.to_string());
        c.metadata.insert("ferroflow.optim_t".into(), self.optim.t.to_string());
        c.metadata.insert("ferroflow.run".into(), self.run_info.to_string());
        c
    }

    /// Writes a checkpoint atomically.
    ///
    /// # Errors
    /// [`CheckpointError::Io`].
    pub fn save(&self, path: &Path) -> Result<()> {
        Ok(self.to_checkpoint().write(path)?)
    }

    /// Resumes the run saved in `ckpt`: weights, EMA, optimizer state and step.
    ///
    /// # Errors
    /// [`CheckpointError`] if the file lacks a tensor or metadata, or a shape disagrees.
    pub fn resume(ckpt: &Checkpoint, device: &B::Device) -> Result<Self> {
        let (model_config, config) = field_configs_from::<C>(ckpt)?;
        let step = ckpt.meta_u64("ferroflow.step")?;
        let optim_t = ckpt.meta_u64("ferroflow.optim_t")?;
        let specs = model_config.tensor_specs();
        let model = model_config.build_from_tensors::<B>(&ckpt.tensors_for(&specs, "")?, device);
        let ema = match config.ema_decay {
            Some(d) => Some(Ema::new(
                model_config.build_from_tensors::<B::InnerBackend>(&ema_tensors(ckpt, &specs)?, device),
                d,
            )),
            None => None,
        };
        let mut optim = Adam::new(config.optimizer);
        optim.t = optim_t;
        if optim_t > 0 {
            let trained: Vec<_> = specs.iter().filter(|s| s.trained).cloned().collect();
            let m = ckpt.tensors_for(&trained, "optim.exp_avg.")?;
            let v = ckpt.tensors_for(&trained, "optim.exp_avg_sq.")?;
            let flat = |h: &HostTensor, s: &crate::model::TensorSpec| -> Tensor<B::InnerBackend, 1> {
                let h = if s.transposed { h.transposed() } else { h.clone() };
                let n = h.data.len();
                Tensor::from_data(TensorData::new(h.data, [n]), device)
            };
            optim.moments =
                trained.iter().zip(m.iter().zip(&v)).map(|(s, (m, v))| Some((flat(m, s), flat(v, s)))).collect();
        }
        let fused = if model_config.as_mlp().is_some() && config.engine.uses_engine::<B>() {
            Some(Box::new(FusedTrainer::resume(ckpt, None)?))
        } else {
            None
        };
        Ok(Self {
            model_config,
            config,
            model,
            optim,
            ema,
            step,
            device: device.clone(),
            fused,
            run_info: run_info(ckpt),
        })
    }
}

fn run_info(ckpt: &Checkpoint) -> serde_json::Value {
    ckpt.metadata.get("ferroflow.run").and_then(|s| serde_json::from_str(s).ok()).unwrap_or_default()
}

/// The EMA weights of a checkpoint in [`TensorSpec`] order; constants (never averaged) come
/// from the model's own tensors.
fn ema_tensors(ckpt: &Checkpoint, specs: &[TensorSpec]) -> Result<Vec<HostTensor>> {
    let mut t = ckpt.tensors_for(&specs.iter().filter(|s| s.trained).cloned().collect::<Vec<_>>(), "ema.")?;
    t.extend(ckpt.tensors_for(&specs.iter().filter(|s| !s.trained).cloned().collect::<Vec<_>>(), "")?);
    Ok(t)
}

/// The kind of network a checkpoint holds (metadata `ferroflow.field`; files written before
/// it existed hold an MLP).
pub fn field_kind(ckpt: &Checkpoint) -> &str {
    ckpt.metadata.get("ferroflow.field").map_or(MlpFieldConfig::KIND, String::as_str)
}

/// The model and training settings stored in a checkpoint of an MLP field.
///
/// # Errors
/// [`CheckpointError::Metadata`] if absent or invalid, or the file holds another kind of
/// network; [`ConfigError`] if out of range.
pub fn configs_from(ckpt: &Checkpoint) -> Result<(MlpFieldConfig, TrainConfig)> {
    field_configs_from::<MlpFieldConfig>(ckpt)
}

/// The network and training settings stored in a checkpoint, for a network of kind `C`.
///
/// # Errors
/// [`CheckpointError::Metadata`] if absent or invalid, or the file holds another kind of
/// network; [`ConfigError`] if out of range.
pub fn field_configs_from<C: FieldConfig>(ckpt: &Checkpoint) -> Result<(C, TrainConfig)> {
    fn parse<T: serde::de::DeserializeOwned>(ckpt: &Checkpoint, key: &str) -> Result<T> {
        let s = ckpt.meta(key)?;
        serde_json::from_str(s).map_err(|e| {
            CheckpointError::Metadata { path: ckpt.path.clone(), key: key.into(), reason: e.to_string() }.into()
        })
    }
    let kind = field_kind(ckpt);
    if kind != C::KIND {
        return Err(CheckpointError::Metadata {
            path: ckpt.path.clone(),
            key: "ferroflow.field".into(),
            reason: format!("the file holds a {kind} field, not a {}", C::KIND),
        }
        .into());
    }
    let m: C = parse(ckpt, "ferroflow.model")?;
    let t: TrainConfig = parse(ckpt, "ferroflow.train")?;
    m.validate()?;
    t.validate()?;
    Ok((m, t))
}

/// Loads the MLP model for sampling from a checkpoint (the EMA weights if present), on any backend.
///
/// # Errors
/// As [`configs_from`], and [`CheckpointError`] for missing or misshapen tensors.
pub fn load_sampling_model<B: burn::tensor::backend::Backend>(
    ckpt: &Checkpoint,
    device: &B::Device,
) -> Result<MlpField<B>> {
    load_sampling_field::<B, MlpFieldConfig>(ckpt, device)
}

/// Loads the network of kind `C` for sampling from a checkpoint (the EMA weights if present).
///
/// # Errors
/// As [`field_configs_from`], and [`CheckpointError`] for missing or misshapen tensors.
pub fn load_sampling_field<B: burn::tensor::backend::Backend, C: FieldConfig>(
    ckpt: &Checkpoint,
    device: &B::Device,
) -> Result<C::Field<B>> {
    let (m, t) = field_configs_from::<C>(ckpt)?;
    let specs = m.tensor_specs();
    let tensors = if t.ema_decay.is_some() { ema_tensors(ckpt, &specs)? } else { ckpt.tensors_for(&specs, "")? };
    Ok(m.build_from_tensors::<B>(&tensors, device))
}
