use serde::{Deserialize, Serialize};

use crate::coupling::CouplingConfig;
use crate::engine::EngineChoice;
use crate::error::ConfigError;
use crate::objective::TimeSampler;
use crate::path::SchedulerConfig;

/// The optimizer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum OptimizerConfig {
    /// Adam (Kingma & Ba 2015) with PyTorch's update p ← p − lr·m̂/(√v̂ + ε).
    Adam {
        /// β₁.
        beta1: f64,
        /// β₂.
        beta2: f64,
        /// ε.
        eps: f64,
    },
    /// AdamW (Loshchilov & Hutter 2019): Adam with decoupled weight decay p ← p(1 − lr·λ) first.
    AdamW {
        /// β₁.
        beta1: f64,
        /// β₂.
        beta2: f64,
        /// ε.
        eps: f64,
        /// λ.
        weight_decay: f64,
    },
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        OptimizerConfig::Adam { beta1: 0.9, beta2: 0.999, eps: 1e-8 }
    }
}

/// How the learning rate changes after the warm-up.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum LrSchedule {
    /// Constant.
    #[default]
    Constant,
    /// Cosine decay from `lr` to `final_fraction · lr` at the last step.
    Cosine {
        /// The final learning rate as a fraction of the peak.
        final_fraction: f64,
    },
}

/// Settings of a training run (everything but the model and the data). The defaults are the
/// W2D workload's (Adam 1e-3, batch 256, CondOT, independent coupling, uniform t) plus an EMA
/// of the weights (0.999) for sampling.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// The seed of every random draw.
    pub seed: u64,
    /// Total optimizer steps.
    pub steps: u64,
    /// Pairs per step.
    pub batch_size: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// The optimizer.
    pub optimizer: OptimizerConfig,
    /// Linear warm-up from 0 over this many steps.
    pub warmup_steps: u64,
    /// The schedule after the warm-up.
    pub lr_schedule: LrSchedule,
    /// Clip the global gradient norm to this value.
    pub grad_clip: Option<f64>,
    /// Decay of the exponential moving average of the weights that sampling uses (default
    /// 0.999); `None` turns it off, written `ema_decay = 0.0` in config files.
    #[serde(with = "ema_off_is_zero")]
    pub ema_decay: Option<f64>,
    /// The probability path's scheduler.
    pub scheduler: SchedulerConfig,
    /// How x₀ and x₁ are paired.
    pub coupling: CouplingConfig,
    /// The distribution of t.
    pub time_sampler: TimeSampler,
    /// Probability of replacing a class label by the null class (classifier-free guidance).
    pub label_dropout: f64,
    /// Write a checkpoint every this many steps (0: only at the end).
    pub checkpoint_every: u64,
    /// Which implementation trains (the fused CPU engine or burn; see [`crate::engine`]).
    pub engine: EngineChoice,
    /// Threads of the fused engine (0: one per core). The engine's results do not depend on
    /// it: the same seed gives the same weights bit for bit on any thread count.
    pub threads: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            steps: 20_000,
            batch_size: 256,
            lr: 1e-3,
            optimizer: OptimizerConfig::default(),
            warmup_steps: 0,
            lr_schedule: LrSchedule::Constant,
            grad_clip: None,
            ema_decay: Some(0.999),
            scheduler: SchedulerConfig::default(),
            coupling: CouplingConfig::default(),
            time_sampler: TimeSampler::Uniform,
            label_dropout: 0.0,
            checkpoint_every: 0,
            engine: EngineChoice::Auto,
            threads: 0,
        }
    }
}

fn range(name: &'static str, v: f64, ok: bool, expected: &'static str) -> Result<(), ConfigError> {
    if ok { Ok(()) } else { Err(ConfigError::OutOfRange { name, value: v.to_string(), expected }) }
}

impl TrainConfig {
    /// Checks every setting.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first bad setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        range("train.steps", self.steps as f64, (1..=1_000_000_000).contains(&self.steps), "1..=1e9")?;
        range("train.batch_size", self.batch_size as f64, (1..=1 << 20).contains(&self.batch_size), "1..=1048576")?;
        range("train.lr", self.lr, self.lr > 0.0 && self.lr <= 1.0, "0 < lr <= 1")?;
        let (b1, b2, eps, wd) = match self.optimizer {
            OptimizerConfig::Adam { beta1, beta2, eps } => (beta1, beta2, eps, 0.0),
            OptimizerConfig::AdamW { beta1, beta2, eps, weight_decay } => (beta1, beta2, eps, weight_decay),
        };
        range("optimizer.beta1", b1, (0.0..1.0).contains(&b1), "0 <= beta1 < 1")?;
        range("optimizer.beta2", b2, (0.0..1.0).contains(&b2), "0 <= beta2 < 1")?;
        range("optimizer.eps", eps, eps > 0.0 && eps.is_finite(), "a finite number > 0")?;
        range("optimizer.weight_decay", wd, (0.0..=1.0).contains(&wd), "0 <= weight_decay <= 1")?;
        if let LrSchedule::Cosine { final_fraction } = self.lr_schedule {
            range("lr_schedule.final_fraction", final_fraction, (0.0..=1.0).contains(&final_fraction), "0..=1")?;
        }
        if let Some(c) = self.grad_clip {
            range("train.grad_clip", c, c > 0.0 && c.is_finite(), "a finite number > 0")?;
        }
        if let Some(d) = self.ema_decay {
            range("train.ema_decay", d, (0.0..1.0).contains(&d), "0 <= ema_decay < 1")?;
        }
        range("train.label_dropout", self.label_dropout, (0.0..=1.0).contains(&self.label_dropout), "0..=1")?;
        range("train.threads", self.threads as f64, self.threads <= 1024, "0..=1024 (0: one per core)")?;
        self.scheduler.validate()?;
        self.coupling.validate()?;
        self.time_sampler.validate()
    }

    /// The EMA decay used in the update after `steps_done` optimizer steps (1 after the first):
    /// `ema_decay` ramped up as min(d, (1 + k)/(10 + k)) so that the average forgets the random
    /// initial weights within the first steps (TensorFlow's `ExponentialMovingAverage` with
    /// `num_updates`; timm's `ModelEmaV2` warm-up does the same).
    ///
    /// ```
    /// use ferroflow::train::TrainConfig;
    /// let c = TrainConfig { ema_decay: Some(0.999), ..Default::default() };
    /// assert_eq!(c.ema_decay_at(1), Some(2.0 / 11.0));
    /// assert_eq!(c.ema_decay_at(100_000), Some(0.999));
    /// ```
    pub fn ema_decay_at(&self, steps_done: u64) -> Option<f64> {
        let k = steps_done as f64;
        self.ema_decay.map(|d| d.min((1.0 + k) / (10.0 + k)))
    }

    /// The learning rate of step `step` (0-based): linear warm-up to `lr`, then the schedule.
    ///
    /// ```
    /// use ferroflow::train::{LrSchedule, TrainConfig};
    /// let c = TrainConfig { lr: 1e-3, steps: 1100, warmup_steps: 100,
    ///     lr_schedule: LrSchedule::Cosine { final_fraction: 0.0 }, ..Default::default() };
    /// assert!((c.lr_at(49) - 0.5e-3).abs() < 1e-12);   // half-way through the warm-up
    /// assert!((c.lr_at(600) - 0.5e-3).abs() < 1e-12);  // half-way through the decay
    /// assert!(c.lr_at(1099) < 1e-8);
    /// ```
    pub fn lr_at(&self, step: u64) -> f64 {
        if step < self.warmup_steps {
            return self.lr * (step + 1) as f64 / self.warmup_steps as f64;
        }
        match self.lr_schedule {
            LrSchedule::Constant => self.lr,
            LrSchedule::Cosine { final_fraction } => {
                let span = self.steps.saturating_sub(self.warmup_steps).max(1) as f64;
                let p = ((step - self.warmup_steps) as f64 / span).min(1.0);
                let f = final_fraction + (1.0 - final_fraction) * 0.5 * (1.0 + (std::f64::consts::PI * p).cos());
                self.lr * f
            }
        }
    }
}

/// `ema_decay` in files: a number, 0 meaning off (TOML has no null, and the default is on).
mod ema_off_is_zero {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(v.unwrap_or(0.0))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        // `null` (JSON) is accepted as off too.
        Ok(Option::<f64>::deserialize(d)?.filter(|&v| v != 0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ema_off_and_on_round_trip_through_toml() {
        for ema in [None, Some(0.999), Some(0.5)] {
            let c = TrainConfig { ema_decay: ema, ..TrainConfig::default() };
            let text = toml::to_string(&c).unwrap();
            let back: TrainConfig = toml::from_str(&text).unwrap();
            assert_eq!(back, c, "{text}");
        }
        // Absent: the default (on); 0: off; JSON null (old checkpoints): off.
        assert_eq!(toml::from_str::<TrainConfig>("").unwrap().ema_decay, Some(0.999));
        assert_eq!(toml::from_str::<TrainConfig>("ema_decay = 0.0").unwrap().ema_decay, None);
        assert_eq!(serde_json::from_str::<TrainConfig>(r#"{"ema_decay": null}"#).unwrap().ema_decay, None);
    }
}
